//! GPU against CPU: every kernel and the whole training step compared with their CPU
//! twins on sizes that are not powers of two, and the fused binarize-and-popcount
//! kernel's bandwidth against a device-to-device copy. Used by `bae gpu-check` (the
//! GPU machine has the binary, not a Rust toolchain) and by the tests when a GPU is
//! present.

use std::time::Instant;

use bae_lm::matmul::Sgemm;
use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::device::{cuda, Gpu};
use super::step::GpuTrainer;
use crate::bae::step::{self, LossWeights, Workspace};
use crate::bae::{Autoencoder, Estimator};
use crate::bits::PackedCodes;
use crate::config::{Architecture, TrainConfig};
use crate::error::Result;
use crate::optim::{Adam, AdamParams};
use bae_lm::rng::SplitMix64;

/// One comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was compared.
    pub name: String,
    /// Largest difference found (relative where the check says so).
    pub difference: f64,
    /// The largest difference accepted.
    pub tolerance: f64,
    /// difference ≤ tolerance.
    pub passed: bool,
}

fn check(name: impl Into<String>, difference: f64, tolerance: f64) -> Check {
    Check { name: name.into(), difference, tolerance, passed: difference <= tolerance }
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.unit_f32() * 2.0 - 1.0).collect()
}

/// Largest |a − b| / max(1, |b|).
fn relative(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y).abs() / y.abs().max(1.0)) as f64).fold(0.0, f64::max)
}

/// Runs every parity check on device 0.
pub fn check_all() -> Result<Vec<Check>> {
    let gpu = Gpu::open(0)?;
    let mut checks = Vec::new();
    checks.extend(sgemm_checks(&gpu)?);
    checks.extend(code_checks(&gpu, 777, 333)?);
    for architecture in [
        Architecture::Binary,
        Architecture::ReluL1,
        Architecture::TopK,
        Architecture::BatchTopK,
        Architecture::JumpRelu,
    ] {
        checks.extend(step_checks(architecture)?);
    }
    Ok(checks)
}

fn sgemm_checks(gpu: &Gpu) -> Result<Vec<Check>> {
    let s = &gpu.stream;
    let (m, n, k) = (67, 45, 129);
    let mut out = Vec::new();
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let shape = Sgemm { m, n, k, trans_a, trans_b };
        let (a, b, c0) = (random(m * k, 1), random(k * n, 2), random(m * n, 3));
        let mut want = c0.clone();
        shape.run(0.5, &a, &b, 1.0, &mut want);
        let (da, db) = (s.clone_htod(&a).map_err(cuda("copy"))?, s.clone_htod(&b).map_err(cuda("copy"))?);
        let mut dc = s.clone_htod(&c0).map_err(cuda("copy"))?;
        gpu.sgemm(shape, 0.5, &da, &db, 1.0, &mut dc)?;
        let got = s.clone_dtoh(&dc).map_err(cuda("copy"))?;
        out.push(check(
            format!("sgemm {m}x{n}x{k} trans_a={trans_a} trans_b={trans_b}"),
            relative(&got, &want),
            1e-4,
        ));
    }
    Ok(out)
}

fn code_checks(gpu: &Gpu, rows: usize, features: usize) -> Result<Vec<Check>> {
    let s = &gpu.stream;
    let pre = random(rows * features, 4);
    let cpu = PackedCodes::from_preactivations(&pre, rows, features);
    let wpf = rows.div_ceil(64);
    let d_pre = s.clone_htod(&pre).map_err(cuda("copy"))?;
    let mut z = s.alloc_zeros::<f32>(rows * features).map_err(cuda("alloc"))?;
    let mut words = s.alloc_zeros::<u64>(features * wpf).map_err(cuda("alloc"))?;
    let mut counts = s.alloc_zeros::<u32>(features).map_err(cuda("alloc"))?;
    let (rows_i, h_i, wpf_i) = (rows as i32, features as i32, wpf as i32);
    let cfg = LaunchConfig {
        grid_dim: ((features as u32).div_ceil(32), (rows as u32).div_ceil(32), 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    };
    let mut b = s.launch_builder(gpu.function("binarize_pack_count"));
    b.arg(&d_pre).arg(&mut z).arg(&mut words).arg(&mut counts).arg(&rows_i).arg(&h_i).arg(&wpf_i);
    // SAFETY: buffers sized for [rows, features] and its packed words.
    unsafe { b.launch(cfg) }.map_err(cuda("binarize_pack_count"))?;
    let gpu_words = s.clone_dtoh(&words).map_err(cuda("copy"))?;
    let gpu_counts: Vec<u64> =
        s.clone_dtoh(&counts).map_err(cuda("copy"))?.into_iter().map(u64::from).collect();
    let gpu_z = s.clone_dtoh(&z).map_err(cuda("copy"))?;
    let mismatched_words = gpu_words.iter().zip(cpu.words()).filter(|(a, b)| a != b).count();
    let mismatched_counts = gpu_counts.iter().zip(cpu.counts()).filter(|(a, b)| **a != *b).count();
    let cpu_z = crate::bits::reference::binarize(&pre);
    let mut checks = vec![
        check(
            format!("binarize_pack_count words [{rows}, {features}] (mismatches)"),
            mismatched_words as f64,
            0.0,
        ),
        check("binarize_pack_count counts (mismatches)", mismatched_counts as f64, 0.0),
        check(
            "binarize_pack_count codes z (mismatches)",
            cpu_z.iter().zip(&gpu_z).filter(|(a, b)| a != b).count() as f64,
            0.0,
        ),
    ];
    // Covariance and its sign pattern from the GPU's own packed words.
    let mut signs = s.alloc_zeros::<f32>(features * features).map_err(cuda("alloc"))?;
    let mut abs_sum = s.alloc_zeros::<u64>(1).map_err(cuda("alloc"))?;
    let rows_l = rows as i64;
    let cfg = LaunchConfig {
        grid_dim: ((features as u32).div_ceil(16), (features as u32).div_ceil(16), 1),
        block_dim: (16, 16, 1),
        shared_mem_bytes: 0,
    };
    let mut b = s.launch_builder(gpu.function("covariance_signs"));
    b.arg(&words).arg(&counts).arg(&mut signs).arg(&mut abs_sum).arg(&h_i).arg(&wpf_i).arg(&rows_l);
    // SAFETY: words/counts as above, signs [features, features].
    unsafe { b.launch(cfg) }.map_err(cuda("covariance_signs"))?;
    let mut cpu_signs = vec![0f32; features * features];
    let cpu_cov = cpu.covariance_with_signs(&mut cpu_signs);
    let gpu_cov =
        s.clone_dtoh(&abs_sum).map_err(cuda("copy"))?[0] as f64 / (rows as f64 * (rows as f64 - 1.0));
    let gpu_signs = s.clone_dtoh(&signs).map_err(cuda("copy"))?;
    checks.push(check(
        "covariance_signs value (relative)",
        (gpu_cov - cpu_cov).abs() / cpu_cov.max(1.0),
        1e-12,
    ));
    checks.push(check(
        "covariance_signs pattern (mismatches)",
        gpu_signs.iter().zip(&cpu_signs).filter(|(a, b)| a != b).count() as f64,
        0.0,
    ));
    Ok(checks)
}

/// Tolerance of parameters after one step, relative: GEMMs sum in another order.
const ONE_STEP_TOLERANCE: f64 = 1e-4;
/// Tolerance of each step's reconstruction error over 50 steps, relative.
const FIFTY_STEP_TOLERANCE: f64 = 1e-3;

fn step_checks(architecture: Architecture) -> Result<Vec<Check>> {
    let (d, h, batch) = (37, 75, 129);
    let config = TrainConfig {
        architecture,
        d_hidden: Some(h),
        k: matches!(architecture, Architecture::TopK | Architecture::BatchTopK).then_some(7),
        seed: 11,
        ..TrainConfig::default()
    };
    let weights = LossWeights {
        lambda_entropy: 0.01,
        lambda_covariance: 0.01,
        estimator: Estimator::SignS,
        l1: 1e-3,
        l0: 1e-3,
        bandwidth: 0.1,
    };
    let mut cpu_model = Autoencoder::new(&config, d);
    if architecture == Architecture::JumpRelu {
        cpu_model.log_threshold.iter_mut().for_each(|t| *t = 0.05f32.ln());
    }
    let lengths = cpu_model.params().map(|p| p.len());
    let mut cpu_adam = Adam::new(&lengths, AdamParams::with_lr(1e-3));
    let mut gpu_adam = Adam::new(&lengths, AdamParams::with_lr(1e-3));
    let mut gpu = GpuTrainer::new(0, &cpu_model, &gpu_adam)?;
    let mut gpu_model = cpu_model.clone();
    let mut ws = Workspace::default();
    let mut grads = step::zero_gradients(&cpu_model);
    let name = architecture.name();
    let mut checks = Vec::new();
    let mut worst_sse: f64 = 0.0;
    for i in 0..50 {
        let x = random(batch * d, 100 + i);
        let cpu_stats = step::gradients(&cpu_model, &x, &weights, &mut ws, &mut grads);
        cpu_adam.update(&mut cpu_model.params_mut(), &grads);
        if architecture != Architecture::Binary {
            cpu_model.normalize_decoder_rows();
        }
        let gpu_stats = gpu.step(&gpu_model, &x, &weights, &mut gpu_adam)?;
        worst_sse = worst_sse.max((gpu_stats.sse - cpu_stats.sse).abs() / cpu_stats.sse.max(1e-12));
        if i == 0 {
            gpu.download(&mut gpu_model, &mut gpu_adam)?;
            let worst = cpu_model
                .params()
                .iter()
                .zip(gpu_model.params())
                .map(|(c, g)| relative(g, c))
                .fold(0.0, f64::max);
            checks.push(check(
                format!("step {name}: parameters after 1 step (relative)"),
                worst,
                ONE_STEP_TOLERANCE,
            ));
            let same_codes = cpu_stats.codes == gpu_stats.codes;
            checks.push(check(
                format!("step {name}: active pattern of step 1 (0 = equal)"),
                f64::from(u8::from(!same_codes)),
                0.0,
            ));
            checks.push(check(
                format!("step {name}: covariance term of step 1 (relative)"),
                (gpu_stats.covariance - cpu_stats.covariance).abs() / cpu_stats.covariance.max(1.0),
                1e-9,
            ));
        }
        if let Some(smallest) = cpu_stats.smallest_kept {
            // Both sides follow the CPU threshold so selections stay comparable.
            let rate = 0.01f32;
            let t = &mut cpu_model.batch_threshold;
            *t = if i == 0 { smallest } else { *t + rate * (smallest - *t) };
            gpu_model.batch_threshold = *t;
        }
    }
    checks.push(check(
        format!("step {name}: reconstruction error over 50 steps (relative)"),
        worst_sse,
        FIFTY_STEP_TOLERANCE,
    ));
    Ok(checks)
}

/// Timing of the fused binarize-and-popcount kernel against a device-to-device copy
/// of the same pre-activations: (GB/s of the kernel reading `rows · features` floats,
/// GB/s of the copy counting read and write, ratio).
pub fn entropy_bandwidth(rows: usize, features: usize, iters: usize) -> Result<(f64, f64, f64, String)> {
    let gpu = Gpu::open(0)?;
    let s = &gpu.stream;
    let n = rows * features;
    let pre = s.clone_htod(&random(n, 9)).map_err(cuda("copy"))?;
    let mut copy = s.alloc_zeros::<f32>(n).map_err(cuda("alloc"))?;
    let wpf = rows.div_ceil(64);
    let mut words = s.alloc_zeros::<u64>(features * wpf).map_err(cuda("alloc"))?;
    let mut counts = s.alloc_zeros::<u32>(features).map_err(cuda("alloc"))?;
    let (rows_i, h_i, wpf_i, null) = (rows as i32, features as i32, wpf as i32, 0u64);
    let cfg = LaunchConfig {
        grid_dim: ((features as u32).div_ceil(32), (rows as u32).div_ceil(32), 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    };
    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        f()?;
        s.synchronize().map_err(cuda("sync"))?;
        let start = Instant::now();
        for _ in 0..iters {
            f()?;
        }
        s.synchronize().map_err(cuda("sync"))?;
        Ok(start.elapsed().as_secs_f64() / iters as f64)
    };
    let kernel = time(&mut || {
        let mut b = s.launch_builder(gpu.function("binarize_pack_count"));
        b.arg(&pre).arg(&null).arg(&mut words).arg(&mut counts).arg(&rows_i).arg(&h_i).arg(&wpf_i);
        // SAFETY: buffers sized for [rows, features]; null z is not written.
        unsafe { b.launch(cfg) }.map(|_| ()).map_err(cuda("binarize_pack_count"))
    })?;
    let copied = time(&mut || s.memcpy_dtod(&pre, &mut copy).map_err(cuda("memcpy_dtod")))?;
    let bytes = (n * 4) as f64;
    let kernel_gbs = bytes / kernel / 1e9;
    let copy_gbs = 2.0 * bytes / copied / 1e9;
    let (major, minor) = gpu.compute_capability;
    Ok((kernel_gbs, copy_gbs, kernel_gbs / copy_gbs, format!("{} (sm_{major}{minor})", gpu.name)))
}
