//! Arguments of `bae icl`.

use std::path::PathBuf;

use clap::Args;

use super::inputs::BaeSelection;
use super::ModelArgs;

/// Arguments of `bae icl`.
#[derive(Debug, Args)]
pub struct IclArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub baes: BaeSelection,
    /// The task: JSONL with one labelled example per line (configs/tasks/ has three).
    #[arg(long)]
    pub task: PathBuf,
    /// The task's prompt template [default: the task file with the extension .toml].
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Numbers of demonstrations to sweep, comma-separated.
    #[arg(long, default_value = "0,1,2,4,8,16", value_delimiter = ',')]
    pub demos: Vec<usize>,
    /// Prompts per number of demonstrations (the same queries at every k).
    #[arg(long, default_value_t = 64)]
    pub samples: usize,
    /// Seed of the queries and demonstrations.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Add no special tokens (no BOS even where the tokenizer adds one).
    #[arg(long)]
    pub no_bos: bool,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Identifier of this run in the table's `run_id` column [default: the output file's stem].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The Parquet file to write (under a temporary name, renamed when complete).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}
