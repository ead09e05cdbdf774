//! A folder of trained autoencoders (BAEs or SAE baselines), one per hook point: the
//! folder itself when it holds a `bae train` run (cfg.json, sae_weights.safetensors),
//! else each subfolder that does. Each is checked against the model it is about to read.

use std::path::{Path, PathBuf};

use bae_lm::hooks::pick;
use bae_lm::{DecoderConfig, HookPoint};
use bae_train::bae::Autoencoder;
use bae_train::checkpoint::{Quality, CFG_FILE};
use bae_train::store::ModelIdentity;

use crate::error::{DynamicsError, Result};

/// One trained autoencoder and where it reads.
#[derive(Debug, Clone)]
pub struct HookAutoencoder {
    /// The hook point it was trained on (cfg.json's `hook_name`).
    pub hook: HookPoint,
    /// Its run folder.
    pub dir: PathBuf,
    /// The trained autoencoder (its weights and architecture).
    pub autoencoder: Autoencoder,
    /// The model whose activations it was trained on, when recorded.
    pub trained_on: Option<ModelIdentity>,
    /// What its last validation pass measured (cfg.json's `quality`), when recorded.
    pub quality: Option<Quality>,
}

/// The autoencoders of a folder, in hook order.
#[derive(Debug, Clone)]
pub struct AutoencoderSet {
    /// One per hook point.
    pub autoencoders: Vec<HookAutoencoder>,
}

fn bad(path: &Path, message: String) -> DynamicsError {
    DynamicsError::Input(format!("{}: {message}", path.display()))
}

fn open_one(dir: &Path) -> Result<HookAutoencoder> {
    let cfg_path = dir.join(CFG_FILE);
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|source| DynamicsError::Io { path: cfg_path.clone(), source })?;
    let cfg: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(&cfg_path, format!("not JSON: {e}")))?;
    let hook_name = cfg["hook_name"].as_str().ok_or_else(|| {
        bad(
            &cfg_path,
            "no `hook_name`: the BAE was trained on a plain matrix, so which hook it reads is unknown".into(),
        )
    })?;
    let hook: HookPoint = hook_name.parse().map_err(|e| bad(&cfg_path, format!("`hook_name`: {e}")))?;
    let trained_on = match &cfg["model"] {
        serde_json::Value::Null => None,
        value => {
            Some(serde_json::from_value(value.clone()).map_err(|e| bad(&cfg_path, format!("`model`: {e}")))?)
        }
    };
    let model = Autoencoder::from_saelens(dir)?;
    // The cfg.json parsed above, not read again.
    let quality = Quality::from_cfg(&cfg, &cfg_path)?;
    Ok(HookAutoencoder { hook, dir: dir.to_path_buf(), autoencoder: model, trained_on, quality })
}

impl AutoencoderSet {
    /// Opens the BAEs in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut baes = Vec::new();
        if dir.join(CFG_FILE).is_file() {
            baes.push(open_one(dir)?);
        } else {
            let entries = std::fs::read_dir(dir)
                .map_err(|source| DynamicsError::Io { path: dir.to_path_buf(), source })?;
            let mut subdirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join(CFG_FILE).is_file())
                .collect();
            subdirs.sort();
            for sub in subdirs {
                baes.push(open_one(&sub)?);
            }
        }
        if baes.is_empty() {
            return Err(bad(
                dir,
                format!("no BAE here: expected {CFG_FILE} and sae_weights.safetensors in it or in its subfolders (one per hook point)"),
            ));
        }
        baes.sort_by_key(|b| (b.hook.layer(), b.hook.to_string()));
        for pair in baes.windows(2) {
            if pair[0].hook == pair[1].hook {
                return Err(bad(
                    dir,
                    format!(
                        "two BAEs read {} ({} and {})",
                        pair[0].hook,
                        pair[0].dir.display(),
                        pair[1].dir.display()
                    ),
                ));
            }
        }
        Ok(Self { autoencoders: baes })
    }

    /// Keeps only the BAEs of `hooks` (comma-separated names or globs, as elsewhere);
    /// a requested hook without a BAE is an error naming the folder.
    pub fn select(mut self, hooks: &str, dir: &Path) -> Result<Self> {
        let have: Vec<String> = self.autoencoders.iter().map(|b| b.hook.to_string()).collect();
        let picked = pick(hooks, &have).map_err(|item| {
            bad(dir, format!("no BAE reads {item}; the BAEs here read {}", have.join(", ")))
        })?;
        let mut i = 0;
        self.autoencoders.retain(|_| {
            i += 1;
            picked.contains(&(i - 1))
        });
        Ok(self)
    }

    /// Hook, folder, width and quality of every BAE, for a table's metadata.
    pub fn describe(&self) -> serde_json::Value {
        self.autoencoders
            .iter()
            .map(|b| {
                serde_json::json!({
                    "hook": b.hook.to_string(), "dir": b.dir, "d_hidden": b.autoencoder.d_hidden, "quality": b.quality,
                })
            })
            .collect()
    }

    /// Every BAE's gate at threshold `max_fvu`, in hook order.
    pub fn gates(&self, max_fvu: f64) -> Vec<super::gate::HookGate> {
        self.autoencoders.iter().map(|b| super::gate::HookGate::of(b, max_fvu)).collect()
    }

    /// The hook points read, in order.
    pub fn hooks(&self) -> Vec<HookPoint> {
        self.autoencoders.iter().map(|b| b.hook).collect()
    }

    /// Checks every BAE against `config`: its width must be the model's d_model, its
    /// hook must exist, and when the training model is recorded, its family, depth and
    /// parameter count must be this model's.
    pub fn check_model(&self, config: &DecoderConfig) -> Result<()> {
        for b in &self.autoencoders {
            if b.autoencoder.d != config.hidden_size {
                return Err(bad(
                    &b.dir,
                    format!(
                        "the BAE reads d = {}, this model's residual stream has d_model = {}",
                        b.autoencoder.d, config.hidden_size
                    ),
                ));
            }
            if b.hook.layer().is_some_and(|l| l >= config.num_layers) {
                return Err(bad(
                    &b.dir,
                    format!("hook {} does not exist in a {}-block model", b.hook, config.num_layers),
                ));
            }
            if let Some(m) = &b.trained_on {
                let ours = (config.family.name(), config.num_layers, config.parameter_count());
                if (m.family.as_str(), m.num_layers, m.parameters) != ours {
                    return Err(bad(
                        &b.dir,
                        format!(
                            "trained on activations of {} ({}, {} blocks, {} parameters); this model is {}, {} blocks, {} parameters",
                            m.spec, m.family, m.num_layers, m.parameters, ours.0, ours.1, ours.2
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bae_train::bae::{synthetic_bits, train_in_memory};
    use bae_train::checkpoint::{Checkpoint, WEIGHTS_FILE};
    use bae_train::config::TrainConfig;

    use super::*;

    #[test]
    fn fuzzed_autoencoder_folders_give_errors_that_name_their_files_and_never_panic() {
        let rows = synthetic_bits(512, 8, 3, 4.0, 0.05, 5).unwrap();
        let config = TrainConfig {
            hook: Some("blocks.0.hook_resid_post".into()),
            d_hidden: Some(8),
            epochs: 1,
            batch: 64,
            ..TrainConfig::default()
        };
        let trainer = train_in_memory(&rows, config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::save(dir.path(), &trainer).unwrap();
        AutoencoderSet::open(dir.path()).unwrap();
        // One weight made NaN is refused by name.
        let weights = dir.path().join(WEIGHTS_FILE);
        let mut tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
        let b_dec = tensors["b_dec"].to_vec1::<f32>().unwrap();
        let poisoned = [f32::NAN].into_iter().chain(b_dec[1..].iter().copied()).collect::<Vec<_>>();
        tensors
            .insert("b_dec".into(), candle_core::Tensor::new(poisoned, &candle_core::Device::Cpu).unwrap());
        let clean = std::fs::read(&weights).unwrap();
        candle_core::safetensors::save(&tensors, &weights).unwrap();
        let err = AutoencoderSet::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("b_dec") && err.contains("NaN") && err.contains(WEIGHTS_FILE), "{err}");
        std::fs::write(&weights, clean).unwrap();
        for file in [CFG_FILE, WEIGHTS_FILE] {
            let path = dir.path().join(file);
            let original = std::fs::read(&path).unwrap();
            bae_lm::fuzz::run(file, &original, file, |bytes| {
                std::fs::write(&path, bytes).unwrap();
                AutoencoderSet::open(dir.path()).err().map(|e| e.to_string())
            });
            std::fs::write(&path, &original).unwrap();
        }
    }
}
