//! `bae bench forward`: tokens/s of a plain forward and of one capturing every
//! `hook_resid_post`, measured alternately in the same process.

use clap::{Args, Subcommand};

use crate::bench_entropy::{self, BenchEntropyArgs, BenchSyntheticArgs, BenchTrainArgs};
use crate::shared::{MatmulArg, ModelArgs};
use std::time::Instant;

use bae_lm::rng::SplitMix64;
use bae_lm::{Batch, ForwardRequest, HookPoint, Padding};

use bae_lm::matmul::MatmulBackend;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Forward-pass throughput, plain and capturing every `hook_resid_post`.
    Forward(BenchForwardArgs),
    /// Entropy, per-feature counts and the covariance term of binary codes: the
    /// bit-packed popcount path against float tensor and reference-loop paths.
    Entropy(BenchEntropyArgs),
    /// The method's sanity check: r independent fair bits planted along random
    /// directions in R^d (plus noise); a trained BAE should report about r bits.
    SyntheticBits(BenchSyntheticArgs),
    /// Training throughput (rows/s) of `bae train`'s loop on seeded random rows:
    /// forward, the three loss terms, backward, Adam, and the per-batch metrics.
    Train(BenchTrainArgs),
}

/// Arguments of `bae bench forward`.
#[derive(Debug, Args)]
pub struct BenchForwardArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Tokens per sequence (random ids, seeded).
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Timed repetitions of each variant (alternating, median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Matmul implementation for f32 on the CPU: the system OpenBLAS when the build
    /// found one (falls back to candle otherwise), or candle's pure-Rust gemm.
    #[arg(long, value_enum, default_value = "openblas")]
    pub matmul: MatmulArg,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Runs a `bae bench` subcommand.
pub fn run(command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Forward(args) => forward(args),
        BenchCommand::Entropy(args) => bench_entropy::run(args),
        BenchCommand::SyntheticBits(args) => bench_entropy::synthetic_bits(args),
        BenchCommand::Train(args) => bench_entropy::train(args),
    }
}

pub fn forward(args: &BenchForwardArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.seq == 0 || args.iters == 0 {
        anyhow::bail!("--batch, --seq and --iters must be at least 1");
    }
    let backend = bae_lm::matmul::set_backend(match args.matmul {
        MatmulArg::Openblas => MatmulBackend::OpenBlas,
        MatmulArg::Candle => MatmulBackend::Candle,
    });
    let model = args.model.load()?;
    let cfg = model.config().clone();
    let mut rng = SplitMix64::new(0);
    let rows: Vec<Vec<u32>> =
        (0..args.batch).map(|_| (0..args.seq).map(|_| rng.below(cfg.vocab_size) as u32).collect()).collect();
    let batch = Batch::new(&rows, 0, Padding::Right, model.decoder.device())?;
    let resid_post: Vec<HookPoint> = (0..cfg.num_layers).map(HookPoint::ResidPost).collect();
    let variants = [
        ("plain (logits)", ForwardRequest::logits()),
        (
            "hooked (logits + all resid_post)",
            ForwardRequest { capture: resid_post.clone(), logits: true, ..ForwardRequest::default() },
        ),
        ("capture only (all resid_post, no unembedding)", ForwardRequest::capture(&resid_post)),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..args.warmup + args.iters {
        for (v, (_, req)) in variants.iter().enumerate() {
            let start = Instant::now();
            let out = model.decoder.forward(&batch, req)?;
            drop(out);
            if round >= args.warmup {
                times[v].push(start.elapsed().as_secs_f64());
            }
        }
    }
    let tokens = (args.batch * args.seq) as f64;
    let medians: Vec<f64> = times.iter().cloned().map(median).collect();
    // Paired per round: the two variants run back to back, so slow drift in the
    // machine's speed cancels out of their ratio.
    let overhead = median(times[1].iter().zip(&times[0]).map(|(h, p)| h / p).collect()) - 1.0;
    if args.json {
        let rows: Vec<_> = variants
            .iter()
            .zip(&medians)
            .zip(&times)
            .map(|(((name, _), s), all)| {
                serde_json::json!({"variant": name, "seconds": s, "tokens_per_s": tokens / s, "all_seconds": all})
            })
            .collect();
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        println!(
            "{}",
            serde_json::json!({
                "model": args.model.model, "matmul": backend.name(), "batch": args.batch, "seq": args.seq, "iters": args.iters,
                "threads": threads, "results": rows, "hook_overhead": overhead
            })
        );
        return Ok(());
    }
    println!(
        "model {}  batch {} x {} tokens, median of {}",
        args.model.model, args.batch, args.seq, args.iters
    );
    for ((name, _), s) in variants.iter().zip(&medians) {
        println!("{name:<48} {:>8.3} s  {:>10.1} tokens/s", s, tokens / s);
    }
    println!("hook capture overhead: {:+.1}% (median of per-round hooked/plain ratios)", overhead * 100.0);
    Ok(())
}
