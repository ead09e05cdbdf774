//! Arguments of `bae entropy`.

use std::path::PathBuf;

use clap::Args;

use super::inputs::{BaeSelection, PromptSetArgs};
use super::ModelArgs;

/// Arguments of `bae entropy`.
#[derive(Debug, Args)]
pub struct EntropyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub baes: BaeSelection,
    #[command(flatten)]
    pub prompts: PromptSetArgs,
    /// Add no special tokens (no BOS even where the tokenizer adds one).
    #[arg(long)]
    pub no_bos: bool,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Also write one row per (prompt, hook point): the entropy of that prompt's states.
    #[arg(long)]
    pub per_prompt: bool,
    /// Keep only each prompt's first N tokens (special tokens included), so documents
    /// longer than the context, or than is useful, can serve as prompts [default: whole].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Identifier of this run in the table's `run_id` column [default: the output file's stem].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The Parquet file to write (under a temporary name, renamed when complete).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}
