//! The model a stage runs: how it is named, which tokenizer, and the dtype it runs in.

use std::path::PathBuf;

use bae_lm::{LoadOptions, Model};
use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultExt};

/// Weight and activation dtype of the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelDtype {
    /// 32-bit float (default; fastest on CPUs).
    #[default]
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision. Beware: Gemma-class residuals overflow it.
    F16,
}

impl ModelDtype {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            ModelDtype::F32 => DType::F32,
            ModelDtype::Bf16 => DType::BF16,
            ModelDtype::F16 => DType::F16,
        }
    }

    /// As written in configs and tables.
    pub fn name(self) -> &'static str {
        match self {
            ModelDtype::F32 => "f32",
            ModelDtype::Bf16 => "bf16",
            ModelDtype::F16 => "f16",
        }
    }
}

/// Which model to load and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// A directory in Hugging Face layout, a GGUF file, or a Hub id.
    pub model: String,
    /// A tokenizer.json to use instead of the model's own.
    pub tokenizer: Option<PathBuf>,
    /// The dtype weights and activations run in.
    pub dtype: ModelDtype,
}

impl ModelSpec {
    /// Loads the model.
    pub fn load(&self) -> Result<Model> {
        let opts = LoadOptions {
            dtype: self.dtype.dtype(),
            tokenizer: self.tokenizer.clone(),
            ..LoadOptions::default()
        };
        Model::load(&self.model, &opts).with_context(|| format!("loading model {}", self.model))
    }
}
