//! Checkpoints of a training run, in one directory:
//! - `checkpoint.safetensors`: parameters, Adam's moments and step, epochs done, the
//!   config and the metrics history (metadata) — what `--resume` reads;
//! - `sae_weights.safetensors` (`W_enc [d, d']`, `b_enc [d']`, `W_dec [d', d]`,
//!   `b_dec [d]`, plus `threshold [d']` for JumpReLU and BatchTopK, f32) and `cfg.json`:
//!   the SAELens layout, for use elsewhere.
//!
//! Every file is written under a temporary name, flushed and renamed when complete.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::bae::model::bad_model;
use crate::bae::train::{EpochMetrics, Trainer};
use crate::bae::Autoencoder;
use crate::config::{Architecture, TrainConfig};
use crate::error::{io, Result, TrainError};
use crate::files::write_atomically;
use crate::store::first_json_difference;

/// The `format` metadata value of checkpoints this version writes.
pub const FORMAT: &str = "bae.checkpoint.v1";
/// The resumable checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The SAELens weights file name.
pub const WEIGHTS_FILE: &str = "sae_weights.safetensors";
/// The SAELens config file name.
pub const CFG_FILE: &str = "cfg.json";

/// Names of the trainable parameters in `checkpoint.safetensors`, in the order of
/// [`Autoencoder::params`].
const PARAMS: [&str; 5] = ["W_enc", "b_enc", "W_dec", "b_dec", "log_threshold"];

/// Saving and loading checkpoints.
pub struct Checkpoint;

fn save_tensors(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .map_err(|e| TrainError::Tensors { path: path.to_path_buf(), message: e.to_string() })?;
    write_atomically(path, &bytes)
}

/// Settings that may change between a run and its resumption.
const MAY_CHANGE_ON_RESUME: [&str; 6] =
    ["out", "epochs", "checkpoint_every", "device", "patience", "min_improvement"];

/// Parameter shapes of `model`, in the order of [`PARAMS`].
fn shapes(model: &Autoencoder) -> [Vec<usize>; 5] {
    let (d, h) = (model.d, model.d_hidden);
    [vec![d, h], vec![h], vec![h, d], vec![d], vec![model.log_threshold.len()]]
}

fn tensor(values: &[f32], shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, shape, &Device::Cpu)?)
}

/// SAELens's name for how the model encodes at inference: BatchTopK encodes as a
/// JumpReLU with one threshold for every feature.
fn saelens_architecture(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::Binary => "binary",
        Architecture::ReluL1 => "standard",
        Architecture::TopK => "topk",
        Architecture::BatchTopK | Architecture::JumpRelu => "jumprelu",
    }
}

/// The SAELens file's tensors: the four weights, and per-feature thresholds where the
/// activation has them.
fn saelens_tensors(model: &Autoencoder) -> Result<Vec<(String, Tensor)>> {
    let shapes = shapes(model);
    let mut tensors = Vec::new();
    for (i, (name, values)) in PARAMS.iter().zip(model.params()).take(4).enumerate() {
        tensors.push((name.to_string(), tensor(values, &shapes[i])?));
    }
    let threshold: Option<Vec<f32>> = match model.architecture {
        Architecture::JumpRelu => Some(model.log_threshold.iter().map(|l| l.exp()).collect()),
        Architecture::BatchTopK => Some(vec![model.batch_threshold; model.d_hidden]),
        _ => None,
    };
    if let Some(t) = threshold {
        tensors.push(("threshold".into(), tensor(&t, &[model.d_hidden])?));
    }
    Ok(tensors)
}

impl Checkpoint {
    /// Writes the trainer's state to `dir` (created if needed).
    pub fn save(dir: &Path, trainer: &Trainer) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let model = &trainer.autoencoder;
        let shapes = shapes(model);
        let mut tensors = Vec::new();
        for (i, (name, values)) in PARAMS.iter().zip(model.params()).enumerate() {
            if values.is_empty() {
                continue;
            }
            tensors.push((name.to_string(), tensor(values, &shapes[i])?));
            tensors.push((format!("adam.m.{name}"), tensor(&trainer.adam.m[i], &shapes[i])?));
            tensors.push((format!("adam.v.{name}"), tensor(&trainer.adam.v[i], &shapes[i])?));
        }
        tensors.push(("batch_threshold".into(), tensor(&[model.batch_threshold], &[1])?));
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("epochs_done".to_string(), trainer.epochs_done.to_string()),
            ("adam_step".to_string(), trainer.adam.step.to_string()),
            ("config".to_string(), to_json(&trainer.config)),
            ("history".to_string(), to_json(&trainer.history)),
            ("input_scale".to_string(), to_json(&model.input_scale)),
        ]);
        save_tensors(&dir.join(CHECKPOINT_FILE), &tensors, metadata)?;
        // SAELens's convention for a finished SAE: the normalisation folded into the
        // weights, so the file reads raw activations.
        let weights = saelens_tensors(&model.folded())?;
        save_tensors(&dir.join(WEIGHTS_FILE), &weights, HashMap::from([("format".into(), "pt".into())]))?;
        let activation = match model.architecture {
            Architecture::Binary => "step: 1 if x @ W_enc + b_enc > 0 else 0",
            Architecture::ReluL1 => "relu",
            Architecture::TopK => "topk: relu of each row's k largest pre-activations",
            Architecture::BatchTopK | Architecture::JumpRelu => "jumprelu: pre if pre > threshold else 0",
        };
        let cfg = serde_json::json!({
            "architecture": saelens_architecture(model.architecture),
            "bae_architecture": model.architecture,
            "d_in": model.d,
            "d_sae": model.d_hidden,
            "dtype": "float32",
            "device": "cpu",
            "hook_name": trainer.config.hook,
            "model": trainer.source_model,
            "apply_b_dec_to_input": false,
            // "none" for the weights in the file: the constant is folded into them.
            "normalize_activations": "none",
            "activation_scale": model.input_scale,
            "activation_scale_folded_into_weights": true,
            "training_normalization": trainer.config.normalize_activations,
            // Raw units: rows above this norm were left out of training and validation.
            "outlier_norm_bound": trainer.outlier_norm_bound,
            "quality": Quality::of(trainer),
            "activation_fn": activation,
            "activation_fn_kwargs": if model.architecture == Architecture::TopK {
                serde_json::json!({ "k": model.k })
            } else {
                serde_json::json!({})
            },
            "k": model.k,
            "estimator": trainer.config.estimator,
            "epochs_done": trainer.epochs_done,
            "train_config": trainer.config,
        });
        let text = serde_json::to_string_pretty(&cfg).expect("cfg serializes");
        write_atomically(&dir.join(CFG_FILE), text.as_bytes())
    }

    /// Restores parameters, optimiser state, progress and history into `trainer`, which
    /// must have been built with the same config and data width.
    pub fn load(path: &Path, trainer: &mut Trainer) -> Result<()> {
        let bad = |message: String| bad_model(path, message);
        let bytes = std::fs::read(path).map_err(io("reading", path))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a checkpoint: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let field = |k: &str| meta.get(k).cloned().ok_or_else(|| bad(format!("metadata `{k}` is missing")));
        if field("format")? != FORMAT {
            return Err(bad(format!("format {:?}, expected {FORMAT:?}", field("format")?)));
        }
        let saved: TrainConfig =
            serde_json::from_str(&field("config")?).map_err(|e| bad(format!("metadata `config`: {e}")))?;
        let mut a = serde_json::to_value(&saved).expect("config serializes");
        let mut b = serde_json::to_value(&trainer.config).expect("config serializes");
        for key in MAY_CHANGE_ON_RESUME {
            a[key] = serde_json::Value::Null;
            b[key] = serde_json::Value::Null;
        }
        if let Some((key, then, now)) = first_json_difference("", &a, &b) {
            return Err(bad(format!(
                "was trained with {key} = {then}, this run has {now}; resume with the same config"
            )));
        }
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let get = |key: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = tensors.get(key).ok_or_else(|| bad(format!("tensor `{key}` is missing")))?;
            if t.dims() != shape {
                return Err(bad(format!(
                    "tensor `{key}` has shape {:?}, this run needs {shape:?} (a checkpoint for another d or d')",
                    t.dims()
                )));
            }
            Ok(t.flatten_all()?.to_vec1()?)
        };
        let shapes = shapes(&trainer.autoencoder);
        for (i, name) in PARAMS.iter().enumerate() {
            if shapes[i].iter().product::<usize>() == 0 {
                continue;
            }
            *trainer.autoencoder.params_mut()[i] = get(name, &shapes[i])?;
            trainer.adam.m[i] = get(&format!("adam.m.{name}"), &shapes[i])?;
            trainer.adam.v[i] = get(&format!("adam.v.{name}"), &shapes[i])?;
        }
        trainer.autoencoder.batch_threshold = get("batch_threshold", &[1])?[0];
        let number =
            |k: &str| -> Result<u64> { field(k)?.parse().map_err(|e| bad(format!("metadata `{k}`: {e}"))) };
        trainer.adam.step = number("adam_step")?;
        trainer.epochs_done = number("epochs_done")? as usize;
        trainer.history = serde_json::from_str::<Vec<EpochMetrics>>(&field("history")?)
            .map_err(|e| bad(format!("metadata `history`: {e}")))?;
        let scale: f32 = serde_json::from_str(&field("input_scale")?)
            .map_err(|e| bad(format!("metadata `input_scale`: {e}")))?;
        let measured = trainer.autoencoder.input_scale;
        if (scale - measured).abs() > 1e-5 * measured.abs() {
            return Err(bad(format!(
                "was normalised with the constant {scale}, these rows give {measured}: the activations changed"
            )));
        }
        trainer.autoencoder.input_scale = scale;
        if trainer.epochs_done > trainer.config.epochs {
            return Err(bad(format!(
                "has {} epochs done, more than the {} this run asks for",
                trainer.epochs_done, trainer.config.epochs
            )));
        }
        Ok(())
    }
}

/// What a trained autoencoder's last validation pass says about it, in cfg.json
/// (`quality`): the gates a measurement made with it reports beside its numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    /// Fraction of variance unexplained on the validation rows (which, like the
    /// training rows, leave attention sinks out when the store does).
    pub val_fvu: f64,
    /// Features that never fired on the validation rows.
    pub dead: usize,
    /// Features with one value on every validation row (dead or always on).
    pub constant: usize,
    /// Features on for more than half of the validation rows.
    pub dense: usize,
    /// Σ_j h(p_j) over the validation rows, bits.
    pub val_entropy_bits: f64,
    /// Rows trained on.
    pub train_rows: u64,
    /// Rows validated on.
    pub val_rows: u64,
    /// Rows left out of both for a norm above `outlier_norm_bound` (massive
    /// activations; see `outlier_norm_ratio`).
    #[serde(default)]
    pub outlier_rows: u64,
    /// Epochs run.
    pub epochs_done: usize,
    /// Whether early stopping ended the run (else it ran every epoch).
    pub stopped_early: bool,
}

impl Quality {
    /// The trainer's latest validation metrics (None before the first epoch).
    pub fn of(trainer: &Trainer) -> Option<Self> {
        let m = trainer.history.iter().rev().find(|m| m.split == crate::bae::Split::Val)?;
        Some(Self {
            val_fvu: m.fvu,
            dead: m.codes.dead,
            constant: m.codes.constant,
            dense: m.codes.dense,
            val_entropy_bits: m.codes.entropy_bits,
            train_rows: trainer.train_rows,
            val_rows: trainer.val_rows,
            outlier_rows: trainer.outlier_rows,
            epochs_done: trainer.epochs_done,
            stopped_early: trainer.stopped_early(),
        })
    }

    /// The `quality` entry of a parsed cfg.json (read from `cfg_path`), when it has one.
    pub fn from_cfg(cfg: &serde_json::Value, cfg_path: &Path) -> Result<Option<Self>> {
        match &cfg["quality"] {
            serde_json::Value::Null => Ok(None),
            q => serde_json::from_value(q.clone())
                .map(Some)
                .map_err(|e| bad_model(cfg_path, format!("`quality`: {e}"))),
        }
    }
}

/// Reads a run directory's SAELens files into a model for inference.
pub(crate) fn load_saelens(dir: &Path) -> Result<Autoencoder> {
    let cfg_path = dir.join(CFG_FILE);
    let text = std::fs::read_to_string(&cfg_path).map_err(io("reading", &cfg_path))?;
    let cfg: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad_model(&cfg_path, format!("not JSON: {e}")))?;
    let architecture: Architecture = serde_json::from_value(cfg["bae_architecture"].clone())
        .map_err(|e| bad_model(&cfg_path, format!("`bae_architecture`: {e}")))?;
    let path = dir.join(WEIGHTS_FILE);
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
        .map_err(|e| TrainError::Tensors { path: path.clone(), message: e.to_string() })?;
    let get = |name: &str| -> Result<Tensor> {
        tensors.get(name).cloned().ok_or_else(|| bad_model(&path, format!("tensor `{name}` is missing")))
    };
    let values = |t: Tensor| -> Result<Vec<f32>> {
        Ok(t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?)
    };
    let w_enc = get("W_enc")?;
    let (d, d_hidden) = w_enc.dims2().map_err(|_| bad_model(&path, "`W_enc` is not a matrix".into()))?;
    let threshold = match architecture {
        Architecture::JumpRelu | Architecture::BatchTopK => values(get("threshold")?)?,
        _ => Vec::new(),
    };
    let model = Autoencoder {
        architecture,
        d,
        d_hidden,
        w_enc: values(w_enc)?,
        b_enc: values(get("b_enc")?)?,
        w_dec: values(get("W_dec")?)?,
        b_dec: values(get("b_dec")?)?,
        log_threshold: if architecture == Architecture::JumpRelu {
            threshold.iter().map(|t| t.ln()).collect()
        } else {
            Vec::new()
        },
        batch_threshold: if architecture == Architecture::BatchTopK {
            threshold.first().copied().unwrap_or(0.0)
        } else {
            0.0
        },
        k: cfg["k"].as_u64().unwrap_or(0) as usize,
        // The files hold the folded weights, which read raw activations.
        input_scale: 1.0,
    };
    model.check_shapes().map_err(|m| bad_model(&path, m))?;
    // A NaN weight would turn every code it touches into noise without an error.
    for (name, values) in
        [("W_enc", &model.w_enc), ("b_enc", &model.b_enc), ("W_dec", &model.w_dec), ("b_dec", &model.b_dec)]
    {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad_model(&path, format!("tensor `{name}` holds {} at element {i}", values[i])));
        }
    }
    if threshold.iter().any(|t| !t.is_finite() || *t < 0.0) {
        return Err(bad_model(&path, "tensor `threshold` holds a negative or non-finite value".into()));
    }
    if matches!(architecture, Architecture::TopK) && !(1..=d_hidden).contains(&model.k) {
        return Err(bad_model(&cfg_path, format!("`k` = {}, expected 1 ≤ k ≤ {d_hidden}", model.k)));
    }
    Ok(model)
}

/// JSON text for a metadata value.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializes")
}
