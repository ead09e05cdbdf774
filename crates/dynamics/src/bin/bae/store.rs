//! `bae store stats`: streaming statistics of stored activations.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bae_train::store::{ActivationStore, RowSource, SafetensorsMatrix, ShuffledRows};
use clap::{Args, Subcommand};

use crate::shared::print;

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

/// Runs a `bae store` subcommand.
pub fn run(command: &StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Stats(args) => stats(args),
    }
}

/// Opens the row source the flags name.
pub fn open_source(args: &ActivationsArgs) -> anyhow::Result<Box<dyn RowSource>> {
    match (&args.store, &args.hook, &args.acts, &args.tensor) {
        (Some(dir), Some(hook), None, None) => {
            let store =
                ActivationStore::open(dir).with_context(|| format!("opening store {}", dir.display()))?;
            Ok(Box::new(store.hook(hook)?))
        }
        (None, None, Some(file), Some(name)) => Ok(Box::new(SafetensorsMatrix::open(file, name)?)),
        _ => bail!("name the activations with --store DIR --hook NAME, or --acts FILE --tensor NAME"),
    }
}

pub fn stats(args: &StoreStatsArgs) -> anyhow::Result<()> {
    let source = open_source(&args.source)?;
    let d = source.dim();
    let limit = args.rows.unwrap_or(u64::MAX);
    let rows = ShuffledRows::new(source.as_ref(), 1024, args.source.shuffle_rows, args.source.seed)?;
    let (mut n, mut norm_sum, mut max_abs) = (0u64, 0f64, 0f32);
    let (mut sum, mut sum_sq) = (vec![0f64; d], vec![0f64; d]);
    for batch in rows {
        let batch = batch?;
        for row in batch.chunks(d).take((limit - n) as usize) {
            norm_sum += row.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            for (j, &x) in row.iter().enumerate() {
                sum[j] += x as f64;
                sum_sq[j] += (x as f64).powi(2);
                max_abs = max_abs.max(x.abs());
            }
            n += 1;
        }
        if n >= limit {
            break;
        }
    }
    if n == 0 {
        bail!("no rows to read");
    }
    let nf = n as f64;
    let mean_std =
        (0..d).map(|j| (sum_sq[j] / nf - (sum[j] / nf).powi(2)).max(0.0).sqrt()).sum::<f64>() / d as f64;
    let mean_norm = norm_sum / nf;
    let mean_of_means = sum.iter().sum::<f64>() / nf / d as f64;
    if args.json {
        let json = serde_json::json!({
            "rows": n, "total_rows": source.rows(), "d": d, "mean_l2_norm": mean_norm,
            "max_abs": max_abs, "mean_of_dimension_means": mean_of_means,
            "mean_of_dimension_stds": mean_std,
        });
        return print(&format!("{}\n", serde_json::to_string_pretty(&json)?));
    }
    print(&format!(
        "rows read        {n} of {}\nd                {d}\nmean L2 norm     {mean_norm:.4}\nmax |x|          {max_abs:.4}\n\
         mean of means    {mean_of_means:.6}\nmean of stds     {mean_std:.6}\n",
        source.rows()
    ))
}
