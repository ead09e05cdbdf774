//! Arguments of `bae fidelity`.

use std::path::PathBuf;

use clap::Args;

use super::inputs::{BaeSelection, PromptSetArgs};
use super::ModelArgs;

/// Arguments of `bae fidelity`.
#[derive(Debug, Args)]
pub struct FidelityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub baes: BaeSelection,
    // Held-out prompts: not those the autoencoders were trained on.
    #[command(flatten)]
    pub prompts: PromptSetArgs,
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
