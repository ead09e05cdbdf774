//! Arguments of `bae train`.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `bae train`. Everything else comes from the `[train]` table of the
/// config (see configs/train-bae.toml for every field and its default).
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A TOML run config with a `[train]` table; without one the reference recipe is used.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Activations: an activation store directory (with --hook) or a safetensors file
    /// holding a `[rows, d]` matrix (with --tensor). Overrides `acts` in the config.
    #[arg(long)]
    pub acts: Option<PathBuf>,
    /// The store's hook point to train on. Overrides `hook`.
    #[arg(long)]
    pub hook: Option<String>,
    /// The matrix's name in a safetensors file. Overrides `tensor`.
    #[arg(long)]
    pub tensor: Option<String>,
    /// Run directory: checkpoint.safetensors, sae_weights.safetensors, cfg.json and
    /// training_log.parquet. Must not hold a run unless --resume. Overrides `out`.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint; the config must match (epochs
    /// may grow). Ends with the same weights as an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
}
