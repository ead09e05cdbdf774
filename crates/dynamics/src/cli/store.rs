//! Arguments of `bae store`: looking into activation stores and activation files.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Subcommands of `bae store`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Streaming statistics of one matrix of activations: a hook point of a store
    /// (`--store DIR --hook NAME`) or a `[rows, d]` tensor of any safetensors file
    /// (`--acts FILE --tensor NAME`), read shuffled through a bounded buffer, never
    /// whole, exactly as training reads it.
    Stats(StoreStatsArgs),
}

/// Where activations come from: a store's hook point, or a plain safetensors matrix.
#[derive(Debug, Args)]
pub struct ActivationsArgs {
    /// An activation store directory (written by `bae harvest`).
    #[arg(long, conflicts_with_all = ["acts", "tensor"], requires = "hook")]
    pub store: Option<PathBuf>,
    /// The hook point to read from the store, e.g. `blocks.12.hook_resid_post`.
    #[arg(long, requires = "store")]
    pub hook: Option<String>,
    /// A safetensors file holding one `[rows, d]` f32, f16 or bf16 matrix of activations.
    #[arg(long, requires = "tensor")]
    pub acts: Option<PathBuf>,
    /// The name of that matrix in the file.
    #[arg(long, requires = "acts")]
    pub tensor: Option<String>,
    /// Seed of the shuffled reading order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows held in the shuffle buffer (memory is about this many rows plus one shard).
    #[arg(long, default_value_t = 65_536)]
    pub shuffle_rows: usize,
}

/// Arguments of `bae store stats`.
#[derive(Debug, Args)]
pub struct StoreStatsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: ActivationsArgs,
    /// Read at most this many rows [default: all].
    #[arg(long)]
    pub rows: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
