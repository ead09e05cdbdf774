//! `bae bench entropy`: the statistics of a minibatch of binary codes three ways — codes
//! packed 64 rows to a word with popcounts (the CPU twin of the GPU kernel), candle
//! tensor ops on f32 codes (what the loss computes), and plain loops over f32 codes
//! (the float reference) — on the same random pre-activations, with equal results.

use clap::Args;

use crate::shared::{DeviceArg, MatmulArg};
use std::time::Instant;

use anyhow::bail;
use bae_lm::matmul::MatmulBackend;
use bae_lm::rng::SplitMix64;
use bae_train::bae::{
    loss, synthetic_bits as planted_bits, train_in_memory, EpochMetrics, Estimator, Split, Trainer,
};
use bae_train::bits::{entropy_bits, reference, PackedCodes};
use bae_train::config::{Architecture, TrainConfig};
use bae_train::store::InMemoryRows;
use candle_core::{Device, Tensor};

use crate::shared::print;

/// Arguments of `bae bench train`.
#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// Input width d.
    #[arg(long, default_value_t = 576)]
    pub d: usize,
    /// Features d'.
    #[arg(long, default_value_t = 2304)]
    pub features: usize,
    /// Rows per minibatch.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Minibatches per timed epoch.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Gradient estimator (binary only).
    #[arg(long, default_value = "sign_s", value_parser = ["identity", "sign_s", "sigmoid"])]
    pub estimator: String,
    /// What to train: the BAE or a baseline, with that architecture's default settings.
    #[arg(long, default_value = "binary", value_parser = ["binary", "relu_l1", "topk", "batch_topk", "jumprelu"])]
    pub architecture: String,
    /// Matmul implementation: the system OpenBLAS when the build found one (falls back
    /// otherwise), or the pure-Rust `gemm` crate candle also uses.
    #[arg(long, value_enum, default_value = "openblas")]
    pub matmul: MatmulArg,
    /// Where the step runs: cpu, or cuda (a build with `--features cuda`).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

/// Arguments of `bae bench synthetic-bits`: r independent fair bits planted along
/// random directions, rows scaled to a real hook's norm, and a BAE trained on them with
/// the shipped `[train]` defaults (or `--config`'s `[train]`); a recipe that recovers
/// about r bits passes. Each flag below overrides one recipe field, for sweeps.
#[derive(Debug, Args)]
pub struct BenchSyntheticArgs {
    /// Numbers of planted bits, comma-separated.
    #[arg(long, default_value = "4,8,16,32", value_delimiter = ',')]
    pub bits: Vec<usize>,
    /// Width d of the data (SmolLM2's d_model by default).
    #[arg(long, default_value_t = 576)]
    pub d: usize,
    /// Features d' of the BAE [default: the recipe's, 4·d].
    #[arg(long)]
    pub features: Option<usize>,
    /// Rows of data (the last `val_fraction` held out).
    #[arg(long, default_value_t = 16384)]
    pub rows: usize,
    /// Mean row norm of the planted data. The default is the mean norm of SmolLM2's
    /// block-15 residual on non-sink rows (about 172–288 across the middle blocks), so
    /// the recipe is tried at the scale it meets (normalisation should make it moot).
    #[arg(long, default_value_t = 200.0)]
    pub row_norm: f32,
    /// Noise: per-coordinate standard deviation as a fraction of row_norm / sqrt(d).
    #[arg(long, default_value_t = 0.05)]
    pub noise: f32,
    /// A TOML config whose `[train]` table is the recipe [default: the shipped defaults].
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Override λ_H.
    #[arg(long)]
    pub lambda_entropy: Option<f64>,
    /// Override λ_C.
    #[arg(long)]
    pub lambda_covariance: Option<f64>,
    /// Override the epoch cap.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override E0.
    #[arg(long)]
    pub entropy_start_epoch: Option<usize>,
    /// Override the λ warm-up, in optimiser steps (0: full weight from the first step).
    #[arg(long)]
    pub lambda_warmup_steps: Option<usize>,
    /// Override the duplicate-bit merge: the agreement at which two bits are merged
    /// (0: never merge).
    #[arg(long)]
    pub merge_agreement: Option<f64>,
    /// Override the pruning of unprofitable bits ("true" or "false").
    #[arg(long)]
    pub prune_bits: Option<bool>,
    /// Override the learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override early stopping's patience (0: run every epoch).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Override the normalisation ("expected_average_only_in" or "none").
    #[arg(long)]
    pub normalize_activations: Option<String>,
    /// Seed of the planted data (the recipe's seed is its own).
    #[arg(long, default_value_t = 1)]
    pub data_seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bae bench entropy`.
#[derive(Debug, Args)]
pub struct BenchEntropyArgs {
    /// Rows per minibatch of codes.
    #[arg(long, default_value_t = 512)]
    pub rows: usize,
    /// Number of features d'.
    #[arg(long, default_value_t = 2304)]
    pub features: usize,
    /// Timed repetitions of each path (median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn median_seconds(iters: usize, mut f: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(iters);
    let mut value = 0.0;
    for _ in 0..iters {
        let start = Instant::now();
        value = f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[iters / 2], value))
}

pub fn run(args: &BenchEntropyArgs) -> anyhow::Result<()> {
    if args.rows < 2 || args.features == 0 || args.iters == 0 {
        bail!("--rows must be at least 2, --features and --iters at least 1");
    }
    let (rows, features) = (args.rows, args.features);
    let mut rng = SplitMix64::new(1);
    let bias: Vec<f32> = (0..features).map(|_| rng.unit_f32() * 2.0 - 1.0).collect();
    let pre: Vec<f32> =
        (0..rows * features).map(|i| rng.unit_f32() * 2.0 - 1.0 + bias[i % features]).collect();
    let pre_t = Tensor::from_slice(&pre, (rows, features), &Device::Cpu)?;

    let mut results = Vec::new();
    let (t, h) = median_seconds(args.iters, || {
        let packed = PackedCodes::from_preactivations(&pre, rows, features);
        Ok(entropy_bits(&packed.counts(), rows))
    })?;
    results.push(("entropy", "packed popcount", t, h));
    let (t, h2) = median_seconds(args.iters, || {
        let z = pre_t.gt(0f32)?.to_dtype(candle_core::DType::F32)?;
        Ok(loss::entropy(&z)?.to_scalar::<f32>()? as f64)
    })?;
    results.push(("entropy", "candle f32 tensors", t, h2));
    let (t, h3) = median_seconds(args.iters, || {
        Ok(reference::entropy_bits(&reference::binarize(&pre), rows, features))
    })?;
    results.push(("entropy", "float reference loops", t, h3));

    let (t, c) = median_seconds(args.iters, || {
        Ok(PackedCodes::from_preactivations(&pre, rows, features).covariance_sum())
    })?;
    results.push(("covariance", "packed popcount", t, c));
    let (t, c2) = median_seconds(args.iters, || {
        let z = pre_t.gt(0f32)?.to_dtype(candle_core::DType::F32)?;
        Ok(loss::covariance(&z)?.to_scalar::<f32>()? as f64)
    })?;
    results.push(("covariance", "candle f32 tensors", t, c2));
    for (term, a, b) in [("entropy", h, h2), ("entropy", h, h3), ("covariance", c, c2)] {
        if (a - b).abs() > 1e-3 * a.abs().max(1.0) {
            bail!("{term}: the paths disagree ({a} vs {b})");
        }
    }
    if args.json {
        let rows_json: Vec<_> = results
            .iter()
            .map(|(term, path, t, v)| serde_json::json!({"term": term, "path": path, "seconds": t, "value": v}))
            .collect();
        let json = serde_json::json!({"rows": rows, "features": features, "iters": args.iters, "results": rows_json});
        return print(&format!("{}\n", serde_json::to_string_pretty(&json)?));
    }
    let mut text = format!("codes {rows} x {features}, median of {}\n", args.iters);
    for (term, path, t, v) in &results {
        text += &format!("{term:<11} {path:<22} {:>10.3} ms   value {v:.4}\n", t * 1e3);
    }
    print(&text)
}

/// The recipe `bae bench synthetic-bits` tries: the config's `[train]` (or the shipped
/// defaults) with the flags' overrides.
fn synthetic_recipe(args: &BenchSyntheticArgs) -> anyhow::Result<TrainConfig> {
    let mut c = match &args.config {
        Some(path) => bae_dynamics::pipeline::RunConfig::read(path)?.train,
        None => TrainConfig::default(),
    };
    c.d_hidden = args.features.or(c.d_hidden);
    c.lambda_entropy = args.lambda_entropy.unwrap_or(c.lambda_entropy);
    c.lambda_covariance = args.lambda_covariance.unwrap_or(c.lambda_covariance);
    c.epochs = args.epochs.unwrap_or(c.epochs);
    c.entropy_start_epoch = args.entropy_start_epoch.unwrap_or(c.entropy_start_epoch);
    c.lambda_warmup_steps = args.lambda_warmup_steps.unwrap_or(c.lambda_warmup_steps);
    c.merge_agreement = args.merge_agreement.unwrap_or(c.merge_agreement);
    c.prune_bits = args.prune_bits.unwrap_or(c.prune_bits);
    c.lr = args.lr.unwrap_or(c.lr);
    c.patience = args.patience.unwrap_or(c.patience);
    if let Some(n) = &args.normalize_activations {
        c.normalize_activations = serde_json::from_value(serde_json::Value::String(n.clone()))
            .map_err(|e| anyhow::anyhow!("--normalize-activations: {e}"))?;
    }
    Ok(c)
}

/// Trains on `data` as `train_in_memory` does, printing the validation metrics to
/// stderr every 10 epochs and at the end (a full-size run takes minutes).
fn train_reporting(data: &Tensor, config: TrainConfig, r: usize) -> anyhow::Result<Trainer> {
    let (_, d) = data.dims2()?;
    let source = InMemoryRows::new(data.flatten_all()?.to_vec1()?, d, 4096)?;
    let mut trainer = Trainer::new(config, &source)?;
    trainer.run(&source, None, &mut |t, _| {
        if let (true, Some(m)) =
            (t.epochs_done % 10 == 0 || t.finished(), t.history.iter().rev().find(|m| m.split == Split::Val))
        {
            eprintln!(
                "r = {r}: epoch {} (step {}): val entropy {:.2} bits, FVU {:.4}, constant {}, loss {:.5}, \
                 merged {}, pruned {}",
                t.epochs_done,
                t.adam.step,
                m.codes.entropy_bits,
                m.fvu,
                m.codes.constant,
                m.loss,
                merged_bits(t),
                pruned_bits(t)
            );
        }
        Ok(())
    })?;
    Ok(trainer)
}

/// Duplicate bits merged over the whole run.
fn merged_bits(trainer: &Trainer) -> usize {
    run_total(trainer, |m| m.merged_bits)
}

/// Unprofitable bits switched off over the whole run.
fn pruned_bits(trainer: &Trainer) -> usize {
    run_total(trainer, |m| m.pruned_bits)
}

/// A per-epoch count summed over the run (each epoch's two rows carry the same count).
fn run_total(trainer: &Trainer, count: fn(&EpochMetrics) -> usize) -> usize {
    trainer.history.iter().filter(|m| m.split == Split::Train).map(count).sum()
}

/// Planted-bit recovery: within this relative error of r passes.
pub const SYNTHETIC_TOLERANCE: f64 = 0.15;

pub fn synthetic_bits(args: &BenchSyntheticArgs) -> anyhow::Result<()> {
    if args.bits.is_empty() || args.bits.contains(&0) || args.d == 0 || args.rows < 4 {
        bail!("--bits needs values of at least 1, --d at least 1 and --rows at least 4");
    }
    if !(args.row_norm.is_finite() && args.row_norm > 0.0 && args.noise.is_finite() && args.noise >= 0.0) {
        bail!("--row-norm must be positive and --noise non-negative");
    }
    let config = synthetic_recipe(args)?;
    let mut rows_out = Vec::new();
    for &r in &args.bits {
        // About r/2 directions are on per row: this length gives rows of norm ≈ row_norm.
        let length = args.row_norm / (r as f32 / 2.0).max(0.5).sqrt();
        let noise = args.noise * args.row_norm / (args.d as f32).sqrt();
        let data = planted_bits(args.rows, args.d, r, length, noise, args.data_seed.wrapping_add(r as u64))?;
        let start = Instant::now();
        let trained = train_reporting(&data, config.clone(), r)?;
        let seconds = start.elapsed().as_secs_f64();
        let val = trained.history.iter().rev().find(|m| m.split == Split::Val).expect("one epoch ran");
        let error = (val.codes.entropy_bits - r as f64) / r as f64;
        rows_out.push((
            r,
            val.codes.entropy_bits,
            error,
            val.fvu,
            val.codes.constant,
            trained.epochs_done,
            merged_bits(&trained),
            pruned_bits(&trained),
            seconds,
        ));
    }
    let passed = rows_out.iter().all(|row| row.2.abs() <= SYNTHETIC_TOLERANCE);
    if args.json {
        let json: Vec<_> = rows_out
            .iter()
            .map(|(r, h, err, fvu, constant, epochs, merged, pruned, s)| {
                serde_json::json!({"bits": r, "estimate": h, "relative_error": err, "val_fvu": fvu, "constant_features": constant, "epochs": epochs, "merged_bits": merged, "pruned_bits": pruned, "seconds": s})
            })
            .collect();
        let out = serde_json::json!({
            "d": args.d, "rows": args.rows, "row_norm": args.row_norm, "recipe": config,
            "tolerance": SYNTHETIC_TOLERANCE, "passed": passed, "results": json,
        });
        return print(&format!("{}\n", serde_json::to_string_pretty(&out)?));
    }
    let mut text = format!(
        "d = {}, d' = {}, {} rows of mean norm ≈ {}, λ_H = {:e}, λ_C = {:e}, E0 = {}, warm-up {} steps, lr = {:e}, normalisation {:?}\n \
         r  estimate (bits)  error   val FVU  constant  merged  pruned  epochs  seconds\n",
        args.d,
        config.d_hidden_for(args.d),
        args.rows,
        args.row_norm,
        config.lambda_entropy,
        config.lambda_covariance,
        config.entropy_start_epoch,
        config.lambda_warmup_steps,
        config.lr,
        config.normalize_activations
    );
    for (r, h, err, fvu, constant, epochs, merged, pruned, s) in &rows_out {
        text += &format!(
            "{r:>2}  {h:>15.3}  {:>+5.0}%  {fvu:>7.4}  {constant:>8}  {merged:>6}  {pruned:>6}  {epochs:>6}  {s:>7.1}\n",
            err * 100.0
        );
    }
    text += &format!(
        "{}: every estimate within ±{:.0}% of r\n",
        if passed { "PASS" } else { "FAIL" },
        SYNTHETIC_TOLERANCE * 100.0
    );
    print(&text)
}

pub fn train(args: &BenchTrainArgs) -> anyhow::Result<()> {
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let backend = bae_lm::matmul::set_backend(match args.matmul {
        MatmulArg::Openblas => MatmulBackend::OpenBlas,
        MatmulArg::Candle => MatmulBackend::Candle,
    });
    let architecture: Architecture =
        serde_json::from_value(serde_json::Value::String(args.architecture.clone()))?;
    let binary = architecture == Architecture::Binary;
    let estimator: Estimator = serde_json::from_value(serde_json::Value::String(args.estimator.clone()))?;
    let mut rng = SplitMix64::new(0);
    let rows = args.batch * args.steps;
    let data: Vec<f32> = (0..rows * args.d).map(|_| rng.unit_f32() * 2.0 - 1.0).collect();
    let data = Tensor::from_vec(data, (rows, args.d), &Device::Cpu)?;
    // Two epochs without validation rows: the first warms up, the second is timed.
    let defaults = TrainConfig::default();
    let config = TrainConfig {
        device: args.device.compute_device(),
        architecture,
        d_hidden: Some(args.features),
        estimator: if binary { estimator } else { defaults.estimator },
        entropy_start_epoch: if binary { 0 } else { defaults.entropy_start_epoch },
        batch: args.batch,
        epochs: 2,
        val_fraction: 0.0,
        patience: 0,
        ..TrainConfig::default()
    };
    let trained = train_in_memory(&data, config)?;
    let seconds = trained.history.iter().rev().find(|m| m.split == Split::Train).expect("ran").seconds;
    let json = serde_json::json!({
        "d": args.d, "features": args.features, "batch": args.batch, "steps": args.steps,
        "architecture": args.architecture, "estimator": if binary { args.estimator.as_str() } else { "-" },
        "matmul": backend.name(), "device": format!("{:?}", args.device).to_lowercase(), "seconds_per_step": seconds / args.steps as f64,
        "rows_per_s": rows as f64 / seconds,
    });
    print(&format!("{json}\n"))
}
