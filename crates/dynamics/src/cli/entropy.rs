//! Arguments of `bae entropy`.

use std::path::PathBuf;

use clap::Args;

use super::harvest::FormatArg;
use super::ModelArgs;

/// Arguments of `bae entropy`.
#[derive(Debug, Args)]
pub struct EntropyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The trained BAEs: a `bae train` run folder, or a folder of them (one per hook
    /// point; each hook named by its cfg.json). Every hook point with a BAE is measured.
    #[arg(long)]
    pub baes: PathBuf,
    /// Measure only these hook points (comma-separated names or globs such as
    /// `blocks.*.hook_resid_post`) [default: every hook point with a BAE].
    #[arg(long)]
    pub hooks: Option<String>,
    /// The prompt set: one prompt per line (text), per JSON object (JSONL, text in
    /// --field) or per row (Parquet, column --field).
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
    /// Add no special tokens (no BOS even where the tokenizer adds one).
    #[arg(long)]
    pub no_bos: bool,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Also write one row per (prompt, hook point): the entropy of that prompt's states.
    #[arg(long)]
    pub per_prompt: bool,
    /// Identifier of this run in the table's `run_id` column [default: the output file's stem].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The Parquet file to write (under a temporary name, renamed when complete).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}
