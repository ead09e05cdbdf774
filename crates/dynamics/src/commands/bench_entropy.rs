//! `bae bench entropy`: the statistics of a minibatch of binary codes three ways — codes
//! packed 64 rows to a word with popcounts (the CPU twin of the GPU kernel), candle
//! tensor ops on f32 codes (what the loss computes), and plain loops over f32 codes
//! (the float reference) — on the same random pre-activations, with equal results.

use std::time::Instant;

use anyhow::bail;
use bae_lm::matmul::MatmulBackend;
use bae_train::bae::{loss, synthetic_bits as planted_bits, train_in_memory, Estimator, Split};
use bae_train::bits::{entropy_bits, reference, PackedCodes};
use bae_train::config::{Architecture, TrainConfig};
use bae_train::rng::SplitMix64;
use candle_core::{Device, Tensor};

use crate::cli::{BenchEntropyArgs, BenchSyntheticArgs, BenchTrainArgs, MatmulArg};
use crate::output::print;

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

pub fn synthetic_bits(args: &BenchSyntheticArgs) -> anyhow::Result<()> {
    if args.bits.is_empty() || args.epochs < 3 {
        bail!("--bits needs at least one value and --epochs at least 3");
    }
    let mut rows_out = Vec::new();
    for &r in &args.bits {
        let data = planted_bits(args.rows, args.d, r, args.scale, 0.05, r as u64)?;
        let config = TrainConfig {
            d_hidden: Some(args.features),
            estimator: Estimator::Sigmoid,
            lambda_entropy: args.lambda,
            lambda_covariance: args.lambda,
            entropy_start_epoch: args.epochs / 3,
            lr: 5e-3,
            batch: 128,
            epochs: args.epochs,
            seed: 0,
            ..TrainConfig::default()
        };
        let start = Instant::now();
        let trained = train_in_memory(&data, config)?;
        let seconds = start.elapsed().as_secs_f64();
        let val = trained.history.iter().rev().find(|m| m.split == Split::Val).expect("one epoch ran");
        rows_out.push((r, val.codes.entropy_bits, val.fvu, val.codes.constant, args.epochs, seconds));
    }
    if args.json {
        let json: Vec<_> = rows_out
            .iter()
            .map(|(r, h, fvu, constant, epochs, s)| {
                serde_json::json!({"bits": r, "estimate": h, "val_fvu": fvu, "constant_features": constant, "epochs": epochs, "seconds": s})
            })
            .collect();
        return print(&format!("{}\n", serde_json::to_string_pretty(&json)?));
    }
    let mut text = format!(
        "d = {}, d' = {}, {} rows, λ = {}\n r  estimate (bits)  val FVU  constant  epochs  seconds\n",
        args.d, args.features, args.rows, args.lambda
    );
    for (r, h, fvu, constant, epochs, s) in rows_out {
        text += &format!("{r:>2}  {h:>15.3}  {fvu:>7.4}  {constant:>8}  {epochs:>6}  {s:>7.1}\n");
    }
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
