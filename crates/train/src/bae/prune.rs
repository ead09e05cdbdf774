//! Switching off bits that cost more entropy than they buy reconstruction. The
//! objective MSE + λ_H·H wants a varying bit j constant when what its code adds to the
//! reconstruction is below λ_H·h(p_j), but the gradient cannot always get it there: at
//! p = 1/2 the entropy term's derivative is zero, and a bit whose code the other bits
//! already cover feels almost no pull from the MSE either, so it can sit balanced for
//! thousands of steps. On planted bits such stragglers are what a weaker λ_H leaves
//! over (4 planted bits read as 5 at λ_H = 1e-3).
//!
//! This is the discrete move the gradient misses, judged on the objective at the
//! decoder's optimum, so a bit is judged by what its code can do, not by where a decoder
//! still in training stands: with every decoder row and the bias refitted by least
//! squares to the rows, what bit j's code adds is the rise in squared error when it is
//! left out of that fit, ‖β_j‖² / (G⁻¹)_jj, with G = Z̃ᵀZ̃ the centred codes' Gram
//! matrix (G_jk = n_jk − n·p_j·p_k, from popcounts), β = G⁻¹·Z̃ᵀX the fitted rows. Per
//! element (the MSE is a mean over n·d elements) it is compared with λ_H·h(p_j). Bits
//! go one at a time, the one whose removal lowers the objective most first; after each,
//! G⁻¹ and β are downdated in closed form (the Schur complement), so of a pair of
//! near-copies at most one goes. The switched-off bit's current row is folded into
//! b_dec at its mean; the decoder keeps training. The covariance term's share is left
//! out, so the rule errs towards keeping a bit.

use crate::bits::{bernoulli_entropy, PackedCodes};

use super::merge::switch_off;
use super::model::Autoencoder;
use crate::optim::Adam;

/// Above this many varying bits the judgement is skipped for the epoch: the Gram
/// matrix's inverse costs v³, and so many bits vary only early in the λ warm-up, where
/// λ_H is too small to switch off much.
pub const MAX_JUDGED_BITS: usize = 1024;

/// Added to the Gram matrix's diagonal, times the rows: keeps the inverse finite when
/// codes are linearly dependent (one bit the sum of two disjoint others).
const RIDGE: f64 = 1e-9;

/// A bit switched off, with the frequency its decoder row was folded in at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prune {
    /// The bit switched off.
    pub bit: usize,
    /// Its frequency p_j on the rows it was judged on; b_dec gains p_j·w_j.
    pub mean: f32,
}

/// The bits to switch off, in the order they are taken: judged on normalised rows `x`
/// `[rows, d]` whose hard codes are `codes`, at entropy weight `lambda_entropy`. Empty
/// when λ_H is 0 (nothing then prices a bit's entropy), there are no rows, or more than
/// [`MAX_JUDGED_BITS`] bits vary.
pub fn unprofitable_bits(
    model: &Autoencoder,
    x: &[f32],
    codes: &PackedCodes,
    lambda_entropy: f64,
) -> Vec<Prune> {
    let (d, n) = (model.d, codes.rows());
    if lambda_entropy <= 0.0 || n == 0 {
        return Vec::new();
    }
    assert_eq!(x.len(), n * d, "rows do not match their codes");
    let counts = codes.counts();
    let varying = codes.varying_features(&counts);
    let v = varying.len();
    if v == 0 || v > MAX_JUDGED_BITS {
        return Vec::new();
    }
    let p: Vec<f64> = varying.iter().map(|&j| counts[j] as f64 / n as f64).collect();
    let Some(mut inverse) = gram_inverse(codes, &varying, &p) else { return Vec::new() };
    let cross = centred_cross_products(x, d, codes, &varying, &p);
    // β = G⁻¹·Z̃ᵀX, [v, d].
    let mut beta = vec![0f64; v * d];
    for a in 0..v {
        for b in 0..v {
            let g = inverse[a * v + b];
            beta[a * d..(a + 1) * d]
                .iter_mut()
                .zip(&cross[b * d..(b + 1) * d])
                .for_each(|(o, c)| *o += g * c);
        }
    }
    let elements = (n * d) as f64;
    let mut alive = vec![true; v];
    let mut pruned = Vec::new();
    loop {
        let score = |a: usize| {
            let added = beta[a * d..(a + 1) * d].iter().map(|b| b * b).sum::<f64>() / inverse[a * v + a];
            added / elements - lambda_entropy * bernoulli_entropy(p[a])
        };
        let best = (0..v).filter(|&a| alive[a]).map(|a| (a, score(a))).min_by(|l, r| l.1.total_cmp(&r.1));
        let Some((a, _)) = best.filter(|&(_, s)| s < 0.0) else { break };
        alive[a] = false;
        pruned.push(Prune { bit: varying[a], mean: p[a] as f32 });
        // Leaving regressor a out: G⁻¹ ← G⁻¹ − g·gᵀ / g_a and β ← β − g·β_a / g_a, with
        // g = G⁻¹'s column a (rows and columns of bits already out are dead weight).
        let pivot = inverse[a * v + a];
        let column: Vec<f64> = (0..v).map(|b| inverse[b * v + a]).collect();
        let row_a: Vec<f64> = beta[a * d..(a + 1) * d].to_vec();
        for b in (0..v).filter(|&b| alive[b]) {
            let f = column[b] / pivot;
            (0..v).for_each(|c| inverse[b * v + c] -= f * column[c]);
            beta[b * d..(b + 1) * d].iter_mut().zip(&row_a).for_each(|(o, r)| *o -= f * r);
        }
    }
    pruned
}

/// (Z̃ᵀZ̃ + ridge)⁻¹ over the varying bits, `[v, v]`, by Cholesky; None if the matrix is
/// not positive definite even with the ridge (it always is for distinct varying bits).
fn gram_inverse(codes: &PackedCodes, varying: &[usize], p: &[f64]) -> Option<Vec<f64>> {
    use rayon::prelude::*;
    let (v, n) = (varying.len(), codes.rows() as f64);
    let mut gram = vec![0f64; v * v];
    gram.par_chunks_mut(v).enumerate().for_each(|(a, row)| {
        for b in 0..=a {
            row[b] = codes.co_count(varying[a], varying[b]) as f64 - n * p[a] * p[b];
        }
        row[a] += RIDGE * n;
    });
    // Lower triangle L with L·Lᵀ = G, in place.
    for a in 0..v {
        for b in 0..=a {
            let dot: f64 = (0..b).map(|c| gram[a * v + c] * gram[b * v + c]).sum();
            let value = gram[a * v + b] - dot;
            if a == b {
                if value <= 0.0 || !value.is_finite() {
                    return None;
                }
                gram[a * v + a] = value.sqrt();
            } else {
                gram[a * v + b] = value / gram[b * v + b];
            }
        }
    }
    // L⁻¹ (lower), then G⁻¹ = L⁻ᵀ·L⁻¹.
    let mut l_inv = vec![0f64; v * v];
    for a in 0..v {
        l_inv[a * v + a] = 1.0 / gram[a * v + a];
        for b in 0..a {
            let sum: f64 = (b..a).map(|c| gram[a * v + c] * l_inv[c * v + b]).sum();
            l_inv[a * v + b] = -sum / gram[a * v + a];
        }
    }
    let mut inverse = vec![0f64; v * v];
    inverse.par_chunks_mut(v).enumerate().for_each(|(a, row)| {
        for (b, out) in row.iter_mut().enumerate() {
            *out = (a.max(b)..v).map(|c| l_inv[c * v + a] * l_inv[c * v + b]).sum();
        }
    });
    Some(inverse)
}

/// Z̃ᵀX = Σ_rows (z_j − p_j)·x for each varying bit, `[v, d]` row-major, over blocks of
/// rows.
fn centred_cross_products(
    x: &[f32],
    d: usize,
    codes: &PackedCodes,
    varying: &[usize],
    p: &[f64],
) -> Vec<f64> {
    let (v, n) = (varying.len(), codes.rows());
    let mut z_x = vec![0f32; v * d];
    let mut x_sum = vec![0f64; d];
    const BLOCK: usize = 1024;
    for first in (0..n).step_by(BLOCK) {
        let rows = BLOCK.min(n - first);
        let mut z = vec![0f32; rows * v];
        for (a, &j) in varying.iter().enumerate() {
            (0..rows).filter(|&r| codes.bit(first + r, j)).for_each(|r| z[r * v + a] = 1.0);
        }
        let block = &x[first * d..(first + rows) * d];
        bae_lm::matmul::Sgemm { m: v, n: d, k: rows, trans_a: true, trans_b: false }
            .run(1.0, &z, block, 1.0, &mut z_x);
        block.chunks(d).for_each(|row| row.iter().zip(&mut x_sum).for_each(|(&x, acc)| *acc += x as f64));
    }
    (0..v * d).map(|i| z_x[i] as f64 - p[i / d] * x_sum[i % d]).collect()
}

/// Applies `pruned` to a binary autoencoder and its optimiser state: each bit's mean
/// is folded into b_dec, then the bit is switched off as a merged one is.
pub fn apply(model: &mut Autoencoder, adam: &mut Adam, pruned: &[Prune]) {
    fold_means(model, pruned);
    pruned.iter().for_each(|p| switch_off(model, adam, p.bit));
}

/// Folds each pruned bit's mean into b_dec (b_dec += p_j·w_j), before it is switched off.
fn fold_means(model: &mut Autoencoder, pruned: &[Prune]) {
    let d = model.d;
    for &Prune { bit, mean } in pruned {
        let (w_dec, b_dec) = (&model.w_dec, &mut model.b_dec);
        b_dec.iter_mut().zip(&w_dec[bit * d..(bit + 1) * d]).for_each(|(b, w)| *b += mean * w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;
    use bae_lm::rng::SplitMix64;

    /// MSE over all elements of `x` against the hard-code reconstruction.
    fn mse(model: &Autoencoder, x: &[f32]) -> f64 {
        let pre = model.preactivations(x);
        let (d, h) = (model.d, model.d_hidden);
        let rows = x.len() / d;
        let mut sse = 0.0;
        for r in 0..rows {
            for c in 0..d {
                let on = (0..h).filter(|&j| pre[r * h + j] > 0.0);
                let x_hat = model.b_dec[c] as f64 + on.map(|j| model.w_dec[j * d + c] as f64).sum::<f64>();
                sse += (x[r * d + c] as f64 - x_hat).powi(2);
            }
        }
        sse / x.len() as f64
    }

    /// The least squared error of any affine decoder from the codes of `bits` to `x`:
    /// the normal equations of [1, z_bits], solved by Gaussian elimination.
    fn best_fit_sse(codes: &PackedCodes, x: &[f32], d: usize, bits: &[usize]) -> f64 {
        let (n, k) = (codes.rows(), bits.len() + 1);
        let design = |r: usize, c: usize| if c == 0 { 1.0 } else { codes.bit(r, bits[c - 1]) as u8 as f64 };
        // [A | Y] with A = DᵀD (k×k) and Y = DᵀX (k×d).
        let mut m = vec![0f64; k * (k + d)];
        for r in 0..n {
            for i in 0..k {
                let di = design(r, i);
                (0..k).for_each(|j| m[i * (k + d) + j] += di * design(r, j));
                (0..d).for_each(|c| m[i * (k + d) + k + c] += di * x[r * d + c] as f64);
            }
        }
        for col in 0..k {
            let pivot = (col..k)
                .max_by(|&a, &b| m[a * (k + d) + col].abs().total_cmp(&m[b * (k + d) + col].abs()))
                .unwrap();
            for c in 0..k + d {
                m.swap(col * (k + d) + c, pivot * (k + d) + c);
            }
            let diag = m[col * (k + d) + col];
            for row in (0..k).filter(|&row| row != col) {
                let f = m[row * (k + d) + col] / diag;
                (0..k + d).for_each(|c| m[row * (k + d) + c] -= f * m[col * (k + d) + c]);
            }
        }
        let coef = |i: usize, c: usize| m[i * (k + d) + k + c] / m[i * (k + d) + i];
        let mut sse = 0.0;
        for r in 0..n {
            for c in 0..d {
                let fit: f64 = (0..k).map(|i| design(r, i) * coef(i, c)).sum();
                sse += (x[r * d + c] as f64 - fit).powi(2);
            }
        }
        sse
    }

    /// Greedy on the objective MSE + λ·H at the decoder's optimum, recomputed from
    /// scratch for every candidate.
    fn brute_force(model: &Autoencoder, x: &[f32], lambda: f64) -> Vec<usize> {
        let d = model.d;
        let codes = PackedCodes::from_preactivations(&model.preactivations(x), x.len() / d, model.d_hidden);
        let counts = codes.counts();
        let mut kept = codes.varying_features(&counts);
        let mut taken = Vec::new();
        loop {
            let base = best_fit_sse(&codes, x, d, &kept);
            let best = kept
                .iter()
                .map(|&j| {
                    let others: Vec<usize> = kept.iter().copied().filter(|&k| k != j).collect();
                    let rise = (best_fit_sse(&codes, x, d, &others) - base) / x.len() as f64;
                    (j, rise - lambda * bernoulli_entropy(counts[j] as f64 / codes.rows() as f64))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((j, change)) if change < 0.0 => {
                    kept.retain(|&k| k != j);
                    taken.push(j);
                }
                _ => return taken,
            }
        }
    }

    /// A small BAE and rows with structure along a few of its bits: some bits matter,
    /// some are balanced noise with short decoder rows, two are near-copies.
    fn case(seed: u64) -> (Autoencoder, Vec<f32>) {
        let (d, h, rows) = (6, 10, 320);
        let config = TrainConfig { d_hidden: Some(h), ..TrainConfig::default() };
        let mut model = Autoencoder::new(&config, d);
        let mut rng = SplitMix64::new(seed);
        let mut normal = || {
            let (u, v) = (rng.unit_f32().max(1e-7) as f64, rng.unit_f32() as f64);
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        };
        let x: Vec<f32> = (0..rows * d).map(|i| normal() * (1.0 + (i % d) as f32)).collect();
        model.w_enc.iter_mut().for_each(|w| *w = normal());
        model.b_enc.iter_mut().for_each(|b| *b = 0.3 * normal());
        model
            .w_dec
            .iter_mut()
            .enumerate()
            .for_each(|(i, w)| *w = normal() * if i / d >= 6 { 0.02 } else { 0.6 });
        // Bit 1 nearly copies bit 0.
        for r in 0..d {
            model.w_enc[r * h + 1] = model.w_enc[r * h] + 0.05 * normal();
        }
        (model, x)
    }

    #[test]
    fn the_bits_taken_are_those_a_brute_force_greedy_on_the_objective_takes() {
        let mut most_taken = 0;
        for seed in 0..4 {
            for lambda in [0.0, 0.01, 0.3, 1.0, 3.0, 10.0] {
                let (model, x) = case(seed);
                let codes = PackedCodes::from_preactivations(
                    &model.preactivations(&x),
                    x.len() / model.d,
                    model.d_hidden,
                );
                let fast: Vec<usize> =
                    unprofitable_bits(&model, &x, &codes, lambda).iter().map(|p| p.bit).collect();
                if lambda == 0.0 {
                    assert!(fast.is_empty(), "nothing prices entropy at λ = 0");
                } else {
                    assert_eq!(fast, brute_force(&model, &x, lambda), "seed {seed}, λ {lambda}");
                }
                most_taken = most_taken.max(fast.len());
            }
        }
        // The closed-form updates between choices are exercised, not only the first.
        assert!(most_taken >= 3, "{most_taken}");
    }

    #[test]
    fn a_bit_whose_code_the_residual_does_not_need_goes_and_the_planted_bits_stay() {
        // Rows made of two planted bits, reconstructed exactly by bits 0 and 1; bit 2 is
        // on where bit 0 is and bit 1 is not (so it varies) and decodes to nothing.
        let (d, h) = (4, 3);
        let config = TrainConfig { d_hidden: Some(h), ..TrainConfig::default() };
        let mut model = Autoencoder::new(&config, d);
        let x: Vec<f32> =
            (0..256).flat_map(|r| [2.0 * (r & 1) as f32, 2.0 * (r >> 1 & 1) as f32, 0.0, 0.0]).collect();
        model.w_enc.fill(0.0);
        (model.w_enc[0], model.w_enc[h + 1], model.w_enc[2], model.w_enc[h + 2]) = (1.0, 1.0, 1.0, -1.0);
        model.b_enc.fill(-1.0);
        model.w_dec.fill(0.0);
        (model.w_dec[0], model.w_dec[d + 1]) = (2.0, 2.0);
        model.b_dec.fill(0.0);
        assert!(mse(&model, &x) < 1e-12);
        let codes = PackedCodes::from_preactivations(&model.preactivations(&x), x.len() / d, h);
        assert_eq!(codes.counts(), [128, 128, 64]);
        let pruned = unprofitable_bits(&model, &x, &codes, 1e-6);
        assert_eq!(pruned, [Prune { bit: 2, mean: 0.25 }]);
        // A bit the reconstruction needs stays even at a λ_H that prices it near its
        // worth: bit 0 explains 1/4 of the MSE's scale (1 per element of 4, p = 1/2).
        assert!(unprofitable_bits(&model, &x, &codes, 0.2).iter().all(|p| p.bit == 2));
        assert_eq!(unprofitable_bits(&model, &x, &codes, 0.3).len(), 3);
        fold_means(&mut model, &pruned);
        assert!(mse(&model, &x) < 1e-12, "bit 2's row was zero: nothing moves");
    }
}
