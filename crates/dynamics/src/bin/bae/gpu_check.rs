//! `bae gpu-check`: GPU against CPU for every kernel and the training step, and the
//! fused entropy kernel's bandwidth against a device-to-device copy.

use clap::Args;

/// Arguments of `bae gpu-check`.
#[derive(Debug, Args)]
pub struct GpuCheckArgs {
    /// Rows of the pre-activation matrix the entropy kernel is timed on.
    #[arg(long, default_value_t = 512)]
    pub rows: usize,
    /// Features (columns) of that matrix.
    #[arg(long, default_value_t = 8192)]
    pub features: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "cuda")]
pub fn run(args: &GpuCheckArgs) -> anyhow::Result<()> {
    use bae_train::cuda::parity;

    use crate::shared::print;

    let checks = parity::check_all()?;
    let (kernel_gbs, copy_gbs, ratio, device) =
        parity::entropy_bandwidth(args.rows, args.features, args.iters)?;
    let failed = checks.iter().filter(|c| !c.passed).count();
    if args.json {
        let json = serde_json::json!({
            "device": device, "checks": checks, "failed": failed,
            "entropy_kernel": {"rows": args.rows, "features": args.features, "iters": args.iters,
                "kernel_gb_per_s": kernel_gbs, "copy_gb_per_s": copy_gbs, "ratio": ratio},
        });
        print(&format!("{}\n", serde_json::to_string_pretty(&json)?))?;
    } else {
        let mut text = format!("device: {device}\n\nparity (GPU vs CPU)\n");
        for c in &checks {
            let verdict = if c.passed { "ok" } else { "FAILED" };
            text += &format!(
                "  {:<6} {:<62} {:>10.3e}  (≤ {:.0e})\n",
                verdict, c.name, c.difference, c.tolerance
            );
        }
        text += &format!(
            "\nfused binarize-and-popcount, [{}, {}] f32, {} iterations\n  kernel {:.1} GB/s, device copy {:.1} GB/s, ratio {:.2}\n",
            args.rows, args.features, args.iters, kernel_gbs, copy_gbs, ratio
        );
        print(&text)?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} parity checks failed", checks.len());
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
pub fn run(_args: &GpuCheckArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this bae was built without GPU support; build it with `cargo build --release --features cuda`"
    )
}
