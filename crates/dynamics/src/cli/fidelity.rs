//! Arguments of `bae fidelity`.

use std::path::PathBuf;

use clap::Args;

use super::harvest::FormatArg;
use super::ModelArgs;

/// Arguments of `bae fidelity`.
#[derive(Debug, Args)]
pub struct FidelityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Trained autoencoders (BAEs or SAE baselines): a `bae train` run folder, or a
    /// folder of them, one per hook point.
    #[arg(long)]
    pub baes: PathBuf,
    /// Only these hook points (comma-separated names or globs) [default: all].
    #[arg(long)]
    pub hooks: Option<String>,
    /// Held-out prompts: text (one per line), JSONL or Parquet.
    #[arg(long)]
    pub prompts: PathBuf,
    /// Format of --prompts; by default from its extension.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The JSONL field or Parquet column holding the text.
    #[arg(long, default_value = "text")]
    pub field: String,
    /// Use at most this many prompts (in file order).
    #[arg(long)]
    pub max_prompts: Option<usize>,
    /// Add no special tokens.
    #[arg(long)]
    pub no_bos: bool,
    /// Identifier of this run in the table's `run_id` column [default: the output file's stem].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The Parquet file to write: one row per hook point.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}
