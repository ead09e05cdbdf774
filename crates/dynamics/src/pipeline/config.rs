//! Run config files: one TOML table per stage (`[harvest]`, `[train]`, `[entropy]`,
//! `[icl]`) and `[run]` for the main job (`bae run`). Unknown tables and fields are
//! errors that name them.

use std::path::{Path, PathBuf};

use bae_train::config::TrainConfig;
use serde::{Deserialize, Serialize};

use super::entropy::EntropyConfig;
use super::harvest::HarvestConfig;
use super::icl::IclConfig;
use crate::error::{input_error, Result, ResultExt};
use crate::measure::DEFAULT_MAX_FVU;

/// A whole run config file.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The main job's folder and the hook points it trains autoencoders on (`bae run`).
    #[serde(default)]
    pub run: RunTable,
    /// The harvest stage (`bae harvest --config`, and `bae run`'s first stage).
    #[serde(default)]
    pub harvest: HarvestConfig,
    /// The training stage (for `bae run`: shared by every hook point's autoencoder).
    #[serde(default)]
    pub train: TrainConfig,
    /// The prompt set of `bae run`'s entropy stage.
    #[serde(default)]
    pub entropy: EntropyConfig,
    /// The tasks and sweep of `bae run`'s ICL stage.
    #[serde(default)]
    pub icl: IclConfig,
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunTable {
    /// The run folder: store/, baes/HOOK/, entropy.parquet, icl-TASK.parquet, plots/,
    /// config.resolved.json.
    pub out: Option<PathBuf>,
    /// Hook points to train an autoencoder on and measure, e.g.
    /// ["blocks.15.hook_resid_post"].
    pub hooks: Vec<String>,
    /// The quality gate: a hook whose autoencoder ends with a validation FVU above this
    /// is marked `quality = "fail"` in the tables, greyed in the plots, and named in the
    /// run's closing summary [default: 0.5].
    pub max_fvu: f64,
}

impl Default for RunTable {
    fn default() -> Self {
        Self { out: None, hooks: Vec::new(), max_fvu: DEFAULT_MAX_FVU }
    }
}

impl RunConfig {
    /// Reads and parses a run config.
    pub fn read(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| crate::DynamicsError::Io { path: path.into(), source })?;
        toml::from_str(&text)
            .map_err(|e| input_error(e.to_string()))
            .with_context(|| format!("invalid config {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_config_parses_and_its_training_table_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let config = RunConfig::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The demo store's size: 7,500 rows of SmolLM2's d = 576.
            config.train.validate(7500, 576).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 6, "only {seen} configs found in {}", dir.display());
    }

    #[test]
    fn fuzzed_configs_give_errors_that_name_them_and_never_panic() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smollm2-dynamics.toml");
        let original = std::fs::read(shipped).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        bae_lm::fuzz::run("run config", &original, "run.toml", |bytes| {
            std::fs::write(&path, bytes).unwrap();
            RunConfig::read(&path).err().map(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(&format!(": {s}"));
                    source = s.source();
                }
                text
            })
        });
    }
}
