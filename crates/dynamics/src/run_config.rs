//! Run config files: one TOML table per command (`[harvest]`, `[train]`, `[entropy]`,
//! `[icl]`) and `[run]` for the main job (`bae run`). Unknown tables and fields are
//! errors that name them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bae_train::config::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::cli::harvest::FormatArg;
use crate::cli::HarvestOptions;

/// A whole run config file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The main job's folder and the hook points it trains BAEs on (`bae run`).
    #[serde(default)]
    pub run: RunTable,
    /// Options of `bae harvest`.
    #[serde(default)]
    pub harvest: HarvestOptions,
    /// Options of `bae train` (for `bae run`: shared by every hook point's BAE).
    #[serde(default)]
    pub train: TrainConfig,
    /// The prompt set of `bae run`'s entropy stage.
    #[serde(default)]
    pub entropy: EntropyTable,
    /// The tasks and sweep of `bae run`'s ICL stage.
    #[serde(default)]
    pub icl: IclTable,
}

/// `[run]`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunTable {
    /// The run folder: store/, baes/HOOK/, entropy.parquet, icl-TASK.parquet,
    /// plots/, config.resolved.json.
    pub out: Option<PathBuf>,
    /// Hook points to train a BAE on and measure, e.g. ["blocks.15.hook_resid_post"].
    #[serde(default)]
    pub hooks: Vec<String>,
    /// The quality gate: a hook whose BAE ends with a validation FVU above this is
    /// marked `quality = "fail"` in the tables, greyed in the plots, and named in the
    /// run's closing summary [default: 0.5].
    pub max_fvu: Option<f64>,
}

/// `[entropy]`: the prompt set whose entropy is measured per hook and position.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntropyTable {
    /// Prompt file (text, JSONL or Parquet); none skips the stage.
    pub prompts: Option<PathBuf>,
    /// Its format [default: from the extension].
    pub format: Option<FormatArg>,
    /// JSONL field or Parquet column [default: text].
    pub field: Option<String>,
    /// Use at most this many prompts.
    pub max_prompts: Option<usize>,
    /// Prompts per forward pass [default: 8].
    pub batch: Option<usize>,
    /// Also per-prompt rows [default: false].
    #[serde(default)]
    pub per_prompt: bool,
    /// Keep only each prompt's first this many tokens [default: whole prompts].
    pub max_tokens: Option<usize>,
}

/// `[icl]`: the in-context-learning sweep, one table per task.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IclTable {
    /// Task files (JSONL with a .toml template beside each); none skips the stage.
    #[serde(default)]
    pub tasks: Vec<PathBuf>,
    /// Numbers of demonstrations [default: 0, 1, 2, 4, 8, 16].
    pub demos: Option<Vec<usize>>,
    /// Prompts per number of demonstrations [default: 64].
    pub samples: Option<usize>,
    /// Seed of queries and demonstrations [default: 42].
    pub seed: Option<u64>,
    /// Prompts per forward pass [default: 8].
    pub batch: Option<usize>,
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

    #[test]
    fn fuzzed_configs_give_errors_that_name_them_and_never_panic() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smollm2-dynamics.toml");
        let original = std::fs::read(shipped).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        bae_lm::fuzz::run("run config", &original, "run.toml", |bytes| {
            std::fs::write(&path, bytes).unwrap();
            read(&path).err().map(|e| format!("{e:#}"))
        });
    }
}
