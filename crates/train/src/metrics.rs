//! Statistics of binary codes over a window of rows (a validation pass, or an epoch's
//! training minibatches): feature-set entropy, L0 as the method defines it for binary
//! codes, dead/dense/constant feature counts and a feature-density histogram. All come
//! from per-feature counts of ones, so they accumulate chunk by chunk.

use crate::bits::{bernoulli_entropy, PackedCodes};

/// Upper edges of the density histogram's bins: a feature with density p falls in the
/// first bin whose edge is ≥ p. Bin 0 holds never-firing features (p = 0), the last
/// always-firing ones (p = 1).
pub const DENSITY_BIN_EDGES: [f64; 9] = [0.0, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.9, 0.999_999, 1.0];

/// Labels of the histogram bins, used as Parquet column suffixes.
pub const DENSITY_BIN_LABELS: [&str; 9] =
    ["0", "le_1e-4", "le_1e-3", "le_1e-2", "le_0.1", "le_0.5", "le_0.9", "lt_1", "1"];

/// How L0 counts a row's active features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L0Rule {
    /// Binary codes: bits that differ from the feature's rounded mean, Σ_j min(p_j, 1 − p_j).
    FlipsFromMean,
    /// Sparse activations: non-zeros, Σ_j p_j.
    NonZero,
}

/// Counts of ones per feature over some rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCounts {
    /// Rows seen.
    pub rows: u64,
    /// Ones per feature.
    pub ones: Vec<u64>,
}

/// What the counts say. Field names are training-log columns.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CodeStats {
    /// Σ_j h(p_j), bits.
    pub entropy_bits: f64,
    /// entropy_bits / d'.
    pub entropy_bits_per_feature: f64,
    /// Mean active features per row: for BAE codes the bits that differ from the
    /// feature's rounded mean, Σ_j min(p_j, 1 − p_j); for SAEs the non-zeros, Σ_j p_j.
    pub l0: f64,
    /// Features that never fired in the window.
    pub dead: usize,
    /// Features that fired on more than half of the rows.
    pub dense: usize,
    /// Features with the same value on every row (never or always on): they carry no
    /// information and contribute 0 bits.
    pub constant: usize,
    /// Features per density bin (see [`DENSITY_BIN_EDGES`]).
    pub density_histogram: [usize; 9],
}

impl CodeCounts {
    /// No rows yet, `features` features.
    pub fn new(features: usize) -> Self {
        Self { rows: 0, ones: vec![0; features] }
    }

    /// Adds a chunk of packed codes.
    pub fn add(&mut self, codes: &PackedCodes) {
        assert_eq!(codes.features(), self.ones.len(), "feature count mismatch");
        self.rows += codes.rows() as u64;
        for (total, c) in self.ones.iter_mut().zip(codes.counts()) {
            *total += c;
        }
    }

    /// Adds one row of activations or codes (`a > 0` counts as active).
    pub fn add_row(&mut self, row: &[f32]) {
        assert_eq!(row.len(), self.ones.len(), "feature count mismatch");
        self.rows += 1;
        for (total, &a) in self.ones.iter_mut().zip(row) {
            *total += u64::from(a > 0.0);
        }
    }

    /// Mean fraction of features active per row, Σ_j p_j / d' (0 for no rows).
    pub fn active_fraction(&self) -> f64 {
        if self.rows == 0 || self.ones.is_empty() {
            return 0.0;
        }
        self.ones.iter().sum::<u64>() as f64 / (self.rows as f64 * self.ones.len() as f64)
    }

    /// The statistics (all zero for no rows), with L0 counted by `l0`.
    pub fn stats(&self, l0: L0Rule) -> CodeStats {
        let features = self.ones.len();
        let mut stats = CodeStats {
            entropy_bits: 0.0,
            entropy_bits_per_feature: 0.0,
            l0: 0.0,
            dead: 0,
            dense: 0,
            constant: 0,
            density_histogram: [0; 9],
        };
        if self.rows == 0 {
            return stats;
        }
        for &ones in &self.ones {
            let p = ones as f64 / self.rows as f64;
            stats.entropy_bits += bernoulli_entropy(p);
            stats.l0 += match l0 {
                L0Rule::FlipsFromMean => p.min(1.0 - p),
                L0Rule::NonZero => p,
            };
            stats.dead += usize::from(ones == 0);
            stats.dense += usize::from(p > 0.5);
            stats.constant += usize::from(ones == 0 || ones == self.rows);
            let bin = match ones {
                0 => 0,
                o if o == self.rows => 8,
                _ => DENSITY_BIN_EDGES.iter().position(|&edge| p <= edge).unwrap_or(8).clamp(1, 7),
            };
            stats.density_histogram[bin] += 1;
        }
        stats.entropy_bits_per_feature = stats.entropy_bits / features.max(1) as f64;
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_known_columns() {
        // 4 rows; features: never, always, half, one-in-four.
        let pre: Vec<f32> =
            [[-1.0, 1.0, 1.0, 1.0], [-1.0, 1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, -1.0], [-1.0, 1.0, -1.0, -1.0]]
                .concat();
        let mut counts = CodeCounts::new(4);
        counts.add(&PackedCodes::from_preactivations(&pre[..8], 2, 4));
        counts.add(&PackedCodes::from_preactivations(&pre[8..], 2, 4));
        assert_eq!(counts.ones, vec![0, 4, 2, 1]);
        let s = counts.stats(L0Rule::FlipsFromMean);
        assert!((s.entropy_bits - (1.0 + bernoulli_entropy(0.25))).abs() < 1e-12);
        assert!((s.l0 - (0.0 + 0.0 + 0.5 + 0.25)).abs() < 1e-12);
        assert!((counts.stats(L0Rule::NonZero).l0 - (0.0 + 1.0 + 0.5 + 0.25)).abs() < 1e-12);
        assert_eq!((s.dead, s.dense, s.constant), (1, 1, 2));
        assert_eq!(s.density_histogram, [1, 0, 0, 0, 0, 2, 0, 0, 1]);
    }
}
