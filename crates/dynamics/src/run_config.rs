//! Run config files: one TOML table per command (`[harvest]`, `[train]`), each field
//! also a flag of that command. Unknown tables and fields are errors that name them.

use std::path::Path;

use anyhow::Context;
use bae_train::config::TrainConfig;
use serde::Deserialize;

use crate::cli::HarvestOptions;

/// A whole run config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Options of `bae harvest`.
    #[serde(default)]
    pub harvest: HarvestOptions,
    /// Options of `bae train`.
    #[serde(default)]
    pub train: TrainConfig,
}

/// Reads and parses a run config.
pub fn read(path: &Path) -> anyhow::Result<RunConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
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
            let config = read(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            // The demo store's size: 7,500 rows of SmolLM2's d = 576.
            config.train.validate(7500, 576).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 6, "only {seen} configs found in {}", dir.display());
    }
}
