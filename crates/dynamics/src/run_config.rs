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
