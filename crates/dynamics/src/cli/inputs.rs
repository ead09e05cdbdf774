//! Arguments several measurement commands share: which trained autoencoders to read and
//! which prompt set to run.

use std::path::PathBuf;

use clap::Args;

use super::harvest::FormatArg;

/// The trained autoencoders a measurement reads (`bae entropy`, `bae icl`, `bae fidelity`).
#[derive(Debug, Args, Clone)]
pub struct BaeSelection {
    /// Trained autoencoders (BAEs or SAE baselines): a `bae train` run folder, or a
    /// folder of them, one per hook point (each names its hook in cfg.json). Every hook
    /// point with one is measured.
    #[arg(long)]
    pub baes: PathBuf,
    /// Measure only these hook points (comma-separated names or globs such as
    /// `blocks.*.hook_resid_post`) [default: every hook point with an autoencoder].
    #[arg(long)]
    pub hooks: Option<String>,
    /// The quality gate: a hook whose autoencoder's validation FVU (from its cfg.json)
    /// exceeds this is marked `quality = "fail"` in every row of the table and greyed in
    /// its plots — its numbers are not measurements.
    #[arg(long, default_value_t = bae_dynamics::entropy::DEFAULT_MAX_FVU)]
    pub max_fvu: f64,
}

/// A prompt set (`bae entropy`, `bae fidelity`).
#[derive(Debug, Args, Clone)]
pub struct PromptSetArgs {
    /// The prompts: one per line (text), per JSON object (JSONL, text in --field) or per
    /// row (Parquet, column --field).
    #[arg(long)]
    pub prompts: PathBuf,
    /// Format of --prompts; by default from its extension (.jsonl, .parquet, else text).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The JSONL field or Parquet column holding the text.
    #[arg(long, default_value = "text")]
    pub field: String,
    /// Use at most this many prompts (in file order).
    #[arg(long)]
    pub max_prompts: Option<usize>,
}
