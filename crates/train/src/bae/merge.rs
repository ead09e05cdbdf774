//! Merging duplicate bits. Two bits that agree on (almost) every row — or disagree on
//! (almost) every row — encode one bit of information twice, and a sum of marginal
//! entropies counts it twice. The covariance term is meant to push such pairs apart,
//! but it cannot reach them: a copy of a well-separated bit has saturated
//! pre-activations, where the estimator's derivative is about zero, and at p = 1/2 the
//! entropy term's derivative is zero too. On planted bits, copies made in the first
//! steps stay to the end (4 planted bits read as 12).
//!
//! Merging folds one bit of a pair into the other so that the decoder computes the same
//! reconstruction wherever the pair agrees: for a copy, z_k·w_k + z_j·w_j =
//! z_j·(w_j + w_k); for a complement (z_k = 1 − z_j), z_k·w_k = w_k − z_j·w_k, so w_j
//! loses w_k and b_dec gains it. Bit k is then switched off for good: a zero encoder
//! column, a negative bias, a zero decoder row, and fresh optimiser moments.

use crate::bits::PackedCodes;
use crate::optim::Adam;

use super::model::Autoencoder;

/// Pre-activation of a switched-off bit: below zero on every row, since its encoder
/// column is zero. Any negative value does; the entropy term only pushes it lower.
const OFF_BIAS: f32 = -1.0;

/// One bit folded into another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    /// The bit that stays.
    pub kept: usize,
    /// The bit folded into it and switched off.
    pub removed: usize,
    /// Whether `removed` was the complement of `kept` (else a copy).
    pub complement: bool,
}

/// The pairs of varying bits in `codes` that agree, or disagree, on at least
/// `agreement` of the rows, chosen greedily: each bit in ascending order keeps every
/// later bit that duplicates it and is not yet taken. A bit that is taken is not itself
/// a keeper, so chains resolve to their first bit.
pub fn duplicate_bits(codes: &PackedCodes, agreement: f64) -> Vec<Merge> {
    use rayon::prelude::*;
    let rows = codes.rows() as u64;
    if rows == 0 {
        return Vec::new();
    }
    let counts = codes.counts();
    let varying = codes.varying_features(&counts);
    // Rows on which two bits differ: n_j + n_k − 2·n_jk. A copy differs on at most
    // `slack` rows, a complement on at least rows − slack. (The tolerance keeps
    // 1 − 0.9 from rounding 1 row in 10 down to none.)
    let slack = ((1.0 - agreement) * rows as f64 + 1e-6).floor() as u64;
    let candidates: Vec<Vec<(usize, bool)>> = (0..varying.len())
        .into_par_iter()
        .map(|a| {
            let j = varying[a];
            varying[a + 1..]
                .iter()
                .filter_map(|&k| {
                    let differ = counts[j] + counts[k] - 2 * codes.co_count(j, k);
                    if differ <= slack {
                        Some((k, false))
                    } else if differ >= rows - slack {
                        Some((k, true))
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect();
    let mut taken = vec![false; codes.features()];
    let mut merges = Vec::new();
    for (a, partners) in candidates.into_iter().enumerate() {
        let j = varying[a];
        if taken[j] {
            continue;
        }
        for (k, complement) in partners {
            if !taken[k] {
                taken[k] = true;
                merges.push(Merge { kept: j, removed: k, complement });
            }
        }
    }
    merges
}

/// Applies `merges` to a binary autoencoder and its optimiser state (parameters in
/// [`Autoencoder::params`] order).
pub fn apply(model: &mut Autoencoder, adam: &mut Adam, merges: &[Merge]) {
    let d = model.d;
    for &Merge { kept, removed, complement } in merges {
        let moved: Vec<f32> = model.w_dec[removed * d..(removed + 1) * d].to_vec();
        let target = &mut model.w_dec[kept * d..(kept + 1) * d];
        if complement {
            target.iter_mut().zip(&moved).for_each(|(t, m)| *t -= m);
            model.b_dec.iter_mut().zip(&moved).for_each(|(b, m)| *b += m);
        } else {
            target.iter_mut().zip(&moved).for_each(|(t, m)| *t += m);
        }
        switch_off(model, adam, removed);
    }
}

/// Switches bit `bit` off for good: a zero encoder column and decoder row, a negative
/// bias, and fresh optimiser moments (parameters in [`Autoencoder::params`] order).
pub fn switch_off(model: &mut Autoencoder, adam: &mut Adam, bit: usize) {
    let (d, h) = (model.d, model.d_hidden);
    model.w_dec[bit * d..(bit + 1) * d].fill(0.0);
    (0..d).for_each(|r| model.w_enc[r * h + bit] = 0.0);
    model.b_enc[bit] = OFF_BIAS;
    for moments in [&mut adam.m, &mut adam.v] {
        (0..d).for_each(|r| moments[0][r * h + bit] = 0.0);
        moments[1][bit] = 0.0;
        moments[2][bit * d..(bit + 1) * d].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;
    use crate::optim::AdamParams;

    /// Codes from a row-major 0/1 matrix `[rows, features]`.
    fn codes(bits: &[&[u8]]) -> PackedCodes {
        let features = bits[0].len();
        let pre: Vec<f32> =
            bits.iter().flat_map(|r| r.iter().map(|&b| if b == 1 { 1.0 } else { -1.0 })).collect();
        PackedCodes::from_preactivations(&pre, bits.len(), features)
    }

    #[test]
    fn copies_and_complements_are_found_and_chains_resolve_to_their_first_bit() {
        // Bit 0 varies; 2 copies it, 3 is its complement, 4 copies 2 (so 0 too); 1 is
        // independent of 0, 5 is constant and copies nothing.
        let rows: Vec<[u8; 6]> =
            (0..8u8).map(|r| [r & 1, r >> 1 & 1, r & 1, 1 - (r & 1), r & 1, 1]).collect();
        let rows: Vec<&[u8]> = rows.iter().map(|r| &r[..]).collect();
        let merges = duplicate_bits(&codes(&rows), 1.0);
        assert_eq!(
            merges,
            [
                Merge { kept: 0, removed: 2, complement: false },
                Merge { kept: 0, removed: 3, complement: true },
                Merge { kept: 0, removed: 4, complement: false },
            ]
        );
    }

    #[test]
    fn the_agreement_threshold_counts_differing_rows() {
        // Bit 1 differs from bit 0 on 1 row of 10.
        let rows: Vec<[u8; 2]> = (0..10u8).map(|r| [r % 2, if r == 0 { 1 } else { r % 2 }]).collect();
        let rows: Vec<&[u8]> = rows.iter().map(|r| &r[..]).collect();
        let codes = codes(&rows);
        assert!(duplicate_bits(&codes, 0.95).is_empty());
        assert_eq!(duplicate_bits(&codes, 0.9), [Merge { kept: 0, removed: 1, complement: false }]);
    }

    #[test]
    fn merging_keeps_the_reconstruction_where_the_pair_agrees() {
        let config = TrainConfig { d_hidden: Some(4), ..TrainConfig::default() };
        let mut model = Autoencoder::new(&config, 3);
        let lengths: Vec<usize> = model.params().iter().map(|p| p.len()).collect();
        let mut adam = Adam::new(&lengths, AdamParams::with_lr(1e-3));
        adam.m.iter_mut().chain(adam.v.iter_mut()).for_each(|m| m.fill(0.5));
        // Codes with bit 1 a copy of bit 0 and bit 3 the complement of bit 0.
        let rows = [[1f32, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]];
        let decode = |m: &Autoencoder, z: &[f32; 4]| -> Vec<f32> {
            (0..3).map(|c| m.b_dec[c] + (0..4).map(|j| z[j] * m.w_dec[j * 3 + c]).sum::<f32>()).collect()
        };
        let before: Vec<Vec<f32>> = rows.iter().map(|z| decode(&model, z)).collect();
        let merges = [
            Merge { kept: 0, removed: 1, complement: false },
            Merge { kept: 0, removed: 3, complement: true },
        ];
        apply(&mut model, &mut adam, &merges);
        for (z, want) in rows.iter().zip(&before) {
            // The removed bits are off from now on.
            let after = decode(&model, &[z[0], 0.0, z[2], 0.0]);
            for (a, w) in after.iter().zip(want) {
                assert!((a - w).abs() < 1e-6, "{after:?} vs {want:?}");
            }
        }
        for removed in [1, 3] {
            assert_eq!(model.b_enc[removed], OFF_BIAS);
            assert!((0..3).all(|r| model.w_enc[r * 4 + removed] == 0.0 && adam.m[0][r * 4 + removed] == 0.0));
            assert!(model.w_dec[removed * 3..removed * 3 + 3].iter().all(|&w| w == 0.0));
            assert_eq!((adam.m[1][removed], adam.v[2][removed * 3]), (0.0, 0.0));
        }
        // The kept bits' state is untouched.
        assert_eq!((adam.m[1][0], adam.m[1][2]), (0.5, 0.5));
    }
}
