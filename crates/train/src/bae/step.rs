//! One minibatch on the CPU: forward pass, loss terms and hand-written gradients for
//! every architecture. This is the reference for the GPU path: the same GEMMs
//! (OpenBLAS when linked, else the `gemm` crate) and the same elementwise passes, with
//! the statistics of the binary codes taken from bit-packed words. Its gradients are
//! tested against candle's autograd on the loss expressions of [`super::loss`].
//!
//! Shapes: `x [B, d]`, `pre, act [B, d']`, `rec [B, d]`. Every floating-point reduction
//! runs in a fixed order, so results do not depend on the thread count.

use bae_lm::matmul::Sgemm;
use rayon::prelude::*;

use crate::bits::PackedCodes;
use crate::config::{Architecture, TrainConfig};

use super::activation;
use super::estimator::Estimator;
use super::model::Autoencoder;

/// Loss weights in force for one optimiser step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    /// BAE: λ_H, 0 before epoch E0, ramped in over the warm-up.
    pub lambda_entropy: f64,
    /// BAE: λ_C, ramped in over the warm-up.
    pub lambda_covariance: f64,
    /// BAE: the binarization's backward pass.
    pub estimator: Estimator,
    /// ReLU + L1: the L1 weight.
    pub l1: f64,
    /// JumpReLU: the L0 weight.
    pub l0: f64,
    /// JumpReLU: the straight-through kernel width ε.
    pub bandwidth: f64,
}

impl LossWeights {
    /// The weights `config` prescribes for the step after `steps_done` optimiser steps,
    /// in 0-based `epoch`: λ_H and λ_C rise linearly from 0 to their values over the
    /// first `lambda_warmup_steps` steps, and λ_H is 0 before epoch E0.
    pub fn at(config: &TrainConfig, epoch: usize, steps_done: u64) -> Self {
        let ramp = config.lambda_ramp(steps_done);
        Self {
            lambda_entropy: if epoch >= config.entropy_start_epoch {
                config.lambda_entropy * ramp
            } else {
                0.0
            },
            lambda_covariance: config.lambda_covariance * ramp,
            estimator: config.estimator,
            l1: config.l1_coefficient(),
            l0: config.l0_coefficient(),
            bandwidth: config.jumprelu_bandwidth(),
        }
    }
}

/// What one minibatch measured.
#[derive(Debug, Clone)]
pub struct BatchStats {
    /// Rows in the batch.
    pub rows: usize,
    /// Σ (x − x̂)².
    pub sse: f64,
    /// Σ_j h(p_j) in bits with the loss's 1e-10 inside the logarithms.
    pub entropy_bits: f64,
    /// Σ_{j≠k} |Cov(z_j, z_k)| of the active-feature pattern (the BAE's codes).
    pub covariance: f64,
    /// The sparsity penalty before weighting: mean over rows of Σ_j a_j (ReLU + L1) or
    /// of the active count (JumpReLU); 0 otherwise.
    pub sparsity: f64,
    /// Active-feature pattern (a ≠ 0), packed.
    pub codes: PackedCodes,
    /// BatchTopK in training: the smallest activation the batch kept.
    pub smallest_kept: Option<f32>,
}

/// Gradients, in the order of [`Autoencoder::params`].
pub type Gradients = [Vec<f32>; 5];

/// Zeroed gradients shaped like `model`'s parameters.
pub fn zero_gradients(model: &Autoencoder) -> Gradients {
    model.params().map(|p| vec![0f32; p.len()])
}

/// Buffers reused across minibatches.
#[derive(Default)]
pub struct Workspace {
    pre: Vec<f32>,
    act: Vec<f32>,
    rec: Vec<f32>,
    g_act: Vec<f32>,
    scratch: Vec<f32>,
    ones: Vec<f32>,
    /// The batch's varying features (see [`PackedCodes::varying_features`]) and the
    /// covariance's sign pattern among them, `[m, m]`.
    varying: Vec<usize>,
    signs: Vec<f32>,
    /// `[B, m]` scratch for the covariance gradient on the varying features.
    narrow: Vec<f32>,
    narrow_out: Vec<f32>,
}

impl Workspace {
    fn size(&mut self, rows: usize, d: usize, h: usize) {
        for (buf, len) in [
            (&mut self.pre, rows * h),
            (&mut self.act, rows * h),
            (&mut self.rec, rows * d),
            (&mut self.g_act, rows * h),
            (&mut self.scratch, rows * h),
        ] {
            buf.resize(len, 0.0);
        }
        self.ones.resize(rows, 1.0);
    }

    /// The last forward pass's activations `[B, d']`.
    pub fn activations(&self) -> &[f32] {
        &self.act
    }
}

fn gemm(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> Sgemm {
    Sgemm { m, n, k, trans_a, trans_b }
}

/// Rows per parallel task in elementwise passes.
const CHUNK: usize = 8192;

/// Forward pass: pre-activations, activations (training mode or not), reconstruction
/// minus input (left in `ws.rec`), and everything measured on the way.
fn forward(
    model: &Autoencoder,
    x: &[f32],
    training: bool,
    ws: &mut Workspace,
    with_covariance: bool,
) -> BatchStats {
    let (d, h) = (model.d, model.d_hidden);
    let rows = x.len() / d;
    ws.size(rows, d, h);
    for row in ws.pre.chunks_mut(h) {
        row.copy_from_slice(&model.b_enc);
    }
    gemm(rows, h, d, false, false).run(1.0, x, &model.w_enc, 1.0, &mut ws.pre);
    let smallest_kept = if training {
        activation::train(model, &ws.pre, &mut ws.act)
    } else {
        activation::infer(model, &ws.pre, &mut ws.act);
        None
    };
    for row in ws.rec.chunks_mut(d) {
        row.copy_from_slice(&model.b_dec);
    }
    gemm(rows, d, h, false, false).run(1.0, &ws.act, &model.w_dec, 1.0, &mut ws.rec);
    ws.rec.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(r, x)| {
        r.iter_mut().zip(x).for_each(|(r, x)| *r -= x);
    });
    let sse = ordered_sum(&ws.rec, |v| (v as f64) * (v as f64));
    let codes = PackedCodes::from_preactivations(&ws.act, rows, h);
    let counts = codes.counts();
    let entropy_bits = counts.iter().map(|&c| loss_entropy(c as f64 / rows as f64)).sum();
    // Only features that vary within the batch have a nonzero covariance; once most bits
    // are constant this shrinks the d'×d' pass (and the gradient's GEMM) to m×m. The sum
    // is the same integer either way.
    ws.varying = if with_covariance { codes.varying_features(&counts) } else { Vec::new() };
    let m = ws.varying.len();
    ws.signs.resize(m * m, 0.0);
    let covariance = if m > 0 { codes.select(&ws.varying).covariance_with_signs(&mut ws.signs) } else { 0.0 };
    let sparsity = match model.architecture {
        Architecture::ReluL1 => ordered_sum(&ws.act, |v| v as f64) / rows as f64,
        Architecture::JumpRelu => counts.iter().sum::<u64>() as f64 / rows as f64,
        _ => 0.0,
    };
    BatchStats { rows, sse, entropy_bits, covariance, sparsity, codes, smallest_kept }
}

/// Σ f(v) in f64, in blocks summed in order (deterministic under any thread count).
fn ordered_sum(values: &[f32], f: impl Fn(f32) -> f64 + Sync) -> f64 {
    let blocks: Vec<f64> = values.par_chunks(CHUNK).map(|c| c.iter().map(|&v| f(v)).sum::<f64>()).collect();
    blocks.iter().sum()
}

/// h(p) in bits with the reference's 1e-10 inside the logarithms.
pub(crate) fn loss_entropy(p: f64) -> f64 {
    let q = 1.0 - p;
    -(p * (p + 1e-10).log2() + q * (q + 1e-10).log2())
}

/// d h(p) / dp for [`loss_entropy`].
fn loss_entropy_derivative(p: f64) -> f64 {
    let q = 1.0 - p;
    let ln2 = std::f64::consts::LN_2;
    -((p + 1e-10).log2() + p / ((p + 1e-10) * ln2) - (q + 1e-10).log2() - q / ((q + 1e-10) * ln2))
}

/// Measures a batch without training (the BatchTopK threshold replaces selection).
pub fn evaluate(model: &Autoencoder, x: &[f32], ws: &mut Workspace) -> BatchStats {
    let rows = x.len() / model.d;
    forward(model, x, false, ws, rows >= 2)
}

/// Forward and backward pass on one training batch: fills `grads` with the gradient
/// of the architecture's loss and returns the batch's measurements.
pub fn gradients(
    model: &Autoencoder,
    x: &[f32],
    weights: &LossWeights,
    ws: &mut Workspace,
    grads: &mut Gradients,
) -> BatchStats {
    let (d, h) = (model.d, model.d_hidden);
    let binary = model.architecture == Architecture::Binary;
    let stats = forward(model, x, true, ws, true);
    let rows = stats.rows;
    let b = rows as f64;
    // d MSE / d rec, in place of the residual.
    let scale = (2.0 / (b * d as f64)) as f32;
    ws.rec.par_chunks_mut(CHUNK).for_each(|r| r.iter_mut().for_each(|v| *v *= scale));
    let [g_w_enc, g_b_enc, g_w_dec, g_b_dec, g_threshold] = grads;
    gemm(h, d, rows, true, false).run(1.0, &ws.act, &ws.rec, 0.0, g_w_dec);
    gemm(1, d, rows, false, false).run(1.0, &ws.ones, &ws.rec, 0.0, g_b_dec);
    gemm(rows, h, d, false, true).run(1.0, &ws.rec, &model.w_dec, 0.0, &mut ws.g_act);
    if binary {
        let counts = stats.codes.counts();
        let p: Vec<f64> = counts.iter().map(|&c| c as f64 / b).collect();
        if weights.lambda_entropy > 0.0 {
            let per_column: Vec<f32> =
                p.iter().map(|&p| (weights.lambda_entropy * loss_entropy_derivative(p) / b) as f32).collect();
            add_per_column(&mut ws.g_act, &per_column);
        }
        let m = ws.varying.len();
        if weights.lambda_covariance > 0.0 && m > 0 {
            // d Σ|C_jk| / dz = 2/(B − 1) · (z − p) · S with S the sign pattern; the
            // centring needs no correction since the columns of z − p sum to zero. A
            // constant feature has z − p = 0 and a zero row and column in S, so the
            // product is taken over the m varying features and added back to their
            // columns.
            let (varying, p) = (&ws.varying, &p);
            ws.narrow.resize(rows * m, 0.0);
            ws.narrow_out.resize(rows * m, 0.0);
            ws.narrow.par_chunks_mut(m).zip(ws.act.par_chunks(h)).for_each(|(c, z)| {
                c.iter_mut().zip(varying).for_each(|(c, &j)| *c = z[j] - p[j] as f32);
            });
            let alpha = (2.0 * weights.lambda_covariance / (b - 1.0)) as f32;
            gemm(rows, m, m, false, false).run(alpha, &ws.narrow, &ws.signs, 0.0, &mut ws.narrow_out);
            ws.g_act.par_chunks_mut(h).zip(ws.narrow_out.par_chunks(m)).for_each(|(g, add)| {
                varying.iter().zip(add).for_each(|(&j, a)| g[j] += a);
            });
        }
    }
    // g_act becomes d loss / d pre.
    let (pre, act) = (&ws.pre, &ws.act);
    match model.architecture {
        Architecture::Binary => {
            let estimator = weights.estimator;
            ws.g_act.par_chunks_mut(CHUNK).zip(pre.par_chunks(CHUNK)).for_each(|(g, pre)| {
                g.iter_mut().zip(pre).for_each(|(g, &x)| *g = estimator.backward(*g, x));
            });
        }
        Architecture::ReluL1 => {
            let l1 = (weights.l1 / b) as f32;
            masked(&mut ws.g_act, act, l1);
        }
        Architecture::TopK | Architecture::BatchTopK => masked(&mut ws.g_act, act, 0.0),
        Architecture::JumpRelu => {
            jump_threshold_gradient(model, weights, pre, &ws.g_act, &mut ws.scratch, &ws.ones, g_threshold);
            masked(&mut ws.g_act, act, 0.0);
        }
    }
    gemm(d, h, rows, true, false).run(1.0, x, &ws.g_act, 0.0, g_w_enc);
    gemm(1, h, rows, false, false).run(1.0, &ws.ones, &ws.g_act, 0.0, g_b_enc);
    stats
}

/// g ← (g + extra) where the activation is non-zero, 0 elsewhere.
fn masked(g: &mut [f32], act: &[f32], extra: f32) {
    g.par_chunks_mut(CHUNK).zip(act.par_chunks(CHUNK)).for_each(|(g, a)| {
        g.iter_mut().zip(a).for_each(|(g, &a)| *g = if a != 0.0 { *g + extra } else { 0.0 });
    });
}

/// g[b, j] += v[j].
fn add_per_column(g: &mut [f32], v: &[f32]) {
    g.par_chunks_mut(v.len()).for_each(|row| row.iter_mut().zip(v).for_each(|(g, v)| *g += v));
}

/// JumpReLU's threshold gradient (Rajamanoharan et al. 2024): with the rectangle
/// kernel K(u) = 1 for |u| < 1/2, the pseudo-derivatives ∂a/∂θ = −(θ/ε)·K((pre − θ)/ε)
/// and ∂H(pre − θ)/∂θ = −(1/ε)·K(·) give dL/dθ_j = −(1/ε)·Σ_b K_bj·(θ_j·g_bj + λ_0/B),
/// and dL/d ln θ_j = θ_j · dL/dθ_j.
fn jump_threshold_gradient(
    model: &Autoencoder,
    weights: &LossWeights,
    pre: &[f32],
    g_act: &[f32],
    scratch: &mut [f32],
    ones: &[f32],
    g_log_threshold: &mut [f32],
) {
    let h = model.d_hidden;
    let rows = pre.len() / h;
    let theta: Vec<f32> = model.log_threshold.iter().map(|l| l.exp()).collect();
    let (eps, l0) = (weights.bandwidth as f32, (weights.l0 / rows as f64) as f32);
    scratch.par_chunks_mut(h).zip(pre.par_chunks(h)).zip(g_act.par_chunks(h)).for_each(|((s, p), g)| {
        for j in 0..h {
            let inside = ((p[j] - theta[j]) / eps).abs() < 0.5;
            s[j] = if inside { theta[j] * g[j] + l0 } else { 0.0 };
        }
    });
    gemm(1, h, rows, false, false).run(1.0, ones, scratch, 0.0, g_log_threshold);
    g_log_threshold.iter_mut().zip(&theta).for_each(|(g, t)| *g *= -t / eps);
}

#[cfg(test)]
mod tests;
