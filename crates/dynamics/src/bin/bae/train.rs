//! `bae train`: an autoencoder on one matrix of activations, with checkpoints and a
//! training log; the work is the library's training stage.

use std::path::PathBuf;

use bae_dynamics::pipeline::train::train_stage;
use bae_dynamics::pipeline::RunConfig;
use bae_train::config::TrainConfig;
use clap::Args;

use crate::shared::{DeviceArg, Terminal};

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
    /// may grow, the device may change). Ends with the same weights as an uninterrupted
    /// run on the same device. A folder with no checkpoint yet (a run killed before its
    /// first) starts from the first epoch.
    #[arg(long)]
    pub resume: bool,
    /// Where the training step runs: cpu, or cuda (the first GPU; needs a build with
    /// `--features cuda` and the CUDA 13 driver and libraries). Overrides `device`.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => RunConfig::read(path)?.train,
        None => TrainConfig::default(),
    };
    config.acts = args.acts.clone().or(config.acts);
    config.hook = args.hook.clone().or(config.hook);
    config.tensor = args.tensor.clone().or(config.tensor);
    config.out = args.out.clone().or(config.out);
    if let Some(device) = args.device {
        config.device = device.compute_device();
    }
    train_stage(config, args.resume, &mut Terminal::default())?;
    Ok(())
}
