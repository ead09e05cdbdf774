//! Named weight tensors, from safetensors files (memory-mapped) or from memory
//! (GGUF, dequantized at load), with errors that name the tensor and the file.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use crate::error::{LmError, Result};

enum Backing {
    /// One memory map per file, and which file holds each tensor.
    Safetensors {
        files: Vec<(PathBuf, MmapedSafetensors)>,
        index: HashMap<String, usize>,
    },
    Memory(HashMap<String, Tensor>),
}

/// A set of named tensors (Hugging Face naming) the decoder is built from.
pub struct WeightStore {
    backing: Backing,
    origin: String,
    dtype: DType,
    device: Device,
}

impl WeightStore {
    /// Memory-maps safetensors files; a tensor may live in any of them (sharded checkpoints).
    pub fn from_safetensors(paths: &[PathBuf], dtype: DType, device: &Device) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut index = HashMap::new();
        for path in paths {
            if !path.is_file() {
                return Err(LmError::MissingFile { path: path.clone(), what: "weight file".into() });
            }
            // SAFETY: the file is mapped read-only; like every memory-mapped loader we rely on
            // nobody truncating it while the model is loaded.
            let mapped = unsafe { MmapedSafetensors::new(path) }.map_err(|e| LmError::Weights {
                path: path.clone(),
                message: format!("not a valid safetensors file (truncated or corrupt?): {e}"),
            })?;
            for (name, _) in mapped.tensors() {
                index.insert(name, files.len());
            }
            files.push((path.clone(), mapped));
        }
        let origin = match paths {
            [one] => one.display().to_string(),
            _ => format!(
                "{} ({} files)",
                paths.first().and_then(|p| p.parent()).map(|p| p.display().to_string()).unwrap_or_default(),
                paths.len()
            ),
        };
        Ok(Self { backing: Backing::Safetensors { files, index }, origin, dtype, device: device.clone() })
    }

    /// Wraps tensors already in memory; `origin` names their source in errors.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        origin: String,
        dtype: DType,
        device: &Device,
    ) -> Self {
        Self { backing: Backing::Memory(tensors), origin, dtype, device: device.clone() }
    }

    /// The files or source the tensors come from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        match &self.backing {
            Backing::Safetensors { index, .. } => index.contains_key(name),
            Backing::Memory(map) => map.contains_key(name),
        }
    }

    /// Shape of a tensor, if present.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        match &self.backing {
            Backing::Safetensors { files, index } => {
                let (_, st) = &files[*index.get(name)?];
                st.get(name).ok().map(|view| view.shape().to_vec())
            }
            Backing::Memory(map) => map.get(name).map(|t| t.dims().to_vec()),
        }
    }

    /// Loads a tensor, checks its shape, and converts it to the store's dtype and device.
    pub fn get(&self, name: &str, expected: &[usize]) -> Result<Tensor> {
        let got = self
            .shape_of(name)
            .ok_or_else(|| LmError::MissingTensor { name: name.to_string(), origin: self.origin.clone() })?;
        if got != expected {
            return Err(LmError::ShapeMismatch {
                name: name.to_string(),
                origin: self.origin.clone(),
                got,
                expected: expected.to_vec(),
            });
        }
        let tensor = match &self.backing {
            Backing::Safetensors { files, index } => {
                let (path, st) = &files[index[name]];
                st.load(name, &Device::Cpu).map_err(|e| LmError::Weights {
                    path: path.clone(),
                    message: format!("tensor `{name}`: {e}"),
                })?
            }
            Backing::Memory(map) => map[name].clone(),
        };
        Ok(tensor.to_dtype(self.dtype)?.to_device(&self.device)?)
    }

    /// Loads a tensor if it exists (biases that some checkpoints omit).
    pub fn get_optional(&self, name: &str, expected: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(name, expected).map(Some)
        } else {
            Ok(None)
        }
    }
}
