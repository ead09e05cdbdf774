//! Checkpoints of a training run, in one directory:
//! - `checkpoint.safetensors`: weights, Adam's moments and step, epochs done, the
//!   config and the metrics history (metadata) — what `--resume` reads;
//! - `sae_weights.safetensors` (`W_enc [d, d']`, `b_enc [d']`, `W_dec [d', d]`,
//!   `b_dec [d]`, f32) and `cfg.json`: the SAELens layout, for use elsewhere.
//!
//! Every file is written under a temporary name, flushed and renamed when complete.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::bae::train::{EpochMetrics, Trainer};
use crate::config::TrainConfig;
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

const PARAMS: [&str; 4] = ["W_enc", "b_enc", "W_dec", "b_dec"];

/// Saving and loading checkpoints.
pub struct Checkpoint;

fn save_tensors(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .map_err(|e| TrainError::Tensors { path: path.to_path_buf(), message: e.to_string() })?;
    write_atomically(path, &bytes)
}

/// Settings that may change between a run and its resumption.
const MAY_CHANGE_ON_RESUME: [&str; 3] = ["out", "epochs", "checkpoint_every"];

impl Checkpoint {
    /// Writes the trainer's state to `dir` (created if needed).
    pub fn save(dir: &Path, trainer: &Trainer) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let model = &trainer.model;
        let params = [&model.w_enc, &model.b_enc, &model.w_dec, &model.b_dec];
        let mut tensors: Vec<(String, Tensor)> =
            PARAMS.iter().zip(params).map(|(n, v)| (n.to_string(), v.as_tensor().clone())).collect();
        let weights = tensors.clone();
        for (i, name) in PARAMS.iter().enumerate() {
            tensors.push((format!("adam.m.{name}"), trainer.adam.m[i].clone()));
            tensors.push((format!("adam.v.{name}"), trainer.adam.v[i].clone()));
        }
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("epochs_done".to_string(), trainer.epochs_done.to_string()),
            ("adam_step".to_string(), trainer.adam.step.to_string()),
            ("config".to_string(), to_json(&trainer.config)),
            ("history".to_string(), to_json(&trainer.history)),
        ]);
        save_tensors(&dir.join(CHECKPOINT_FILE), &tensors, metadata)?;
        save_tensors(&dir.join(WEIGHTS_FILE), &weights, HashMap::from([("format".into(), "pt".into())]))?;
        let cfg = serde_json::json!({
            "architecture": "binary",
            "d_in": model.d(),
            "d_sae": model.d_hidden(),
            "dtype": "float32",
            "device": "cpu",
            "hook_name": trainer.config.hook,
            "apply_b_dec_to_input": false,
            "normalize_activations": "none",
            "activation_fn": "step: 1 if x @ W_enc + b_enc > 0 else 0",
            "estimator": trainer.config.estimator,
            "epochs_done": trainer.epochs_done,
            "train_config": trainer.config,
        });
        let text = serde_json::to_string_pretty(&cfg).expect("cfg serializes");
        write_atomically(&dir.join(CFG_FILE), text.as_bytes())
    }

    /// Restores weights, optimiser state, progress and history into `trainer`, which
    /// must have been built with the same config and data width.
    pub fn load(path: &Path, trainer: &mut Trainer) -> Result<()> {
        let bad = |message: String| TrainError::Tensors { path: path.to_path_buf(), message };
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
        let device = trainer.model.w_enc.device().clone();
        let model = &trainer.model;
        let params = [&model.w_enc, &model.b_enc, &model.w_dec, &model.b_dec];
        for (i, (name, var)) in PARAMS.iter().zip(params).enumerate() {
            let get = |key: String| -> Result<Tensor> {
                let t = tensors.get(&key).ok_or_else(|| bad(format!("tensor `{key}` is missing")))?;
                if t.dims() != var.dims() {
                    return Err(bad(format!(
                        "tensor `{key}` has shape {:?}, this run needs {:?} (a checkpoint for another d or d')",
                        t.dims(),
                        var.dims()
                    )));
                }
                Ok(t.to_device(&device)?)
            };
            var.set(&get(name.to_string())?)?;
            trainer.adam.m[i] = get(format!("adam.m.{name}"))?;
            trainer.adam.v[i] = get(format!("adam.v.{name}"))?;
        }
        let number =
            |k: &str| -> Result<u64> { field(k)?.parse().map_err(|e| bad(format!("metadata `{k}`: {e}"))) };
        trainer.adam.step = number("adam_step")?;
        trainer.epochs_done = number("epochs_done")? as usize;
        trainer.history = serde_json::from_str::<Vec<EpochMetrics>>(&field("history")?)
            .map_err(|e| bad(format!("metadata `history`: {e}")))?;
        if trainer.epochs_done > trainer.config.epochs {
            return Err(bad(format!(
                "has {} epochs done, more than the {} this run asks for",
                trainer.epochs_done, trainer.config.epochs
            )));
        }
        Ok(())
    }
}

/// JSON text for a metadata value.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializes")
}
