//! Binary codes packed 64 rows to a `u64` word, feature by feature, and the statistics
//! the method needs from them: per-feature counts of ones (popcount), the sum of
//! per-feature Bernoulli entropies in bits, and the covariance term from pairwise
//! co-occurrence counts. This is the CPU twin of the fused binarize-and-popcount GPU
//! kernel; [`mod@reference`] holds the slow float versions it is tested against.

/// Codes of `rows` rows and `features` features, column-major: feature `j`'s bits are
/// `words[j * words_per_feature ..][..words_per_feature]`, row `r` at bit `r % 64` of
/// word `r / 64`. Bits past `rows` in the last word are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedCodes {
    rows: usize,
    features: usize,
    words_per_feature: usize,
    words: Vec<u64>,
}

impl PackedCodes {
    /// Binarizes row-major pre-activations `[rows, features]` (bit = pre > 0) and packs
    /// them in one pass over blocks of 64 rows.
    pub fn from_preactivations(pre: &[f32], rows: usize, features: usize) -> Self {
        assert_eq!(pre.len(), rows * features, "pre-activations are not [rows, features]");
        let words_per_feature = rows.div_ceil(64);
        let mut words = vec![0u64; features * words_per_feature];
        // One word per feature for the current block of 64 rows, filled with contiguous
        // reads and writes, then scattered to the column-major layout once per block.
        let mut block_words = vec![0u64; features];
        for block in 0..words_per_feature {
            let first = block * 64;
            let last = (first + 64).min(rows);
            block_words.fill(0);
            for r in first..last {
                let shift = r - first;
                let row = &pre[r * features..(r + 1) * features];
                for (word, &x) in block_words.iter_mut().zip(row) {
                    // Branch-free: the comparison is the bit.
                    *word |= ((x > 0.0) as u64) << shift;
                }
            }
            for (j, &word) in block_words.iter().enumerate() {
                words[j * words_per_feature + block] = word;
            }
        }
        Self { rows, features, words_per_feature, words }
    }

    /// Codes already packed in this layout (from the GPU), `features · ⌈rows/64⌉` words.
    /// Panics on a length mismatch or stray bits past `rows` (a caller's bug).
    pub fn from_words(rows: usize, features: usize, words: Vec<u64>) -> Self {
        let words_per_feature = rows.div_ceil(64);
        assert_eq!(words.len(), features * words_per_feature, "packed words do not match [rows, features]");
        if !rows.is_multiple_of(64) {
            let tail = !0u64 << (rows % 64);
            assert!(
                words.chunks(words_per_feature).all(|f| f[words_per_feature - 1] & tail == 0),
                "bits set past the last row"
            );
        }
        Self { rows, features, words_per_feature, words }
    }

    /// The rows of `parts` one after another (same features); every part but the last
    /// must hold a whole number of 64-row words. Panics otherwise (a caller's bug).
    pub fn stack(parts: &[PackedCodes]) -> Self {
        let features = parts.first().map_or(0, |p| p.features);
        let rows: usize = parts.iter().map(|p| p.rows).sum();
        let init = parts.split_last().map_or(&[][..], |(_, init)| init);
        assert!(init.iter().all(|p| p.rows % 64 == 0), "only the last part may end inside a word");
        assert!(parts.iter().all(|p| p.features == features), "parts with different features");
        let words_per_feature = rows.div_ceil(64);
        let mut words = Vec::with_capacity(features * words_per_feature);
        for j in 0..features {
            parts.iter().for_each(|p| words.extend_from_slice(p.feature(j)));
        }
        Self { rows, features, words_per_feature, words }
    }

    /// The packed words, feature by feature.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The packed words of feature `j`.
    pub fn feature(&self, j: usize) -> &[u64] {
        &self.words[j * self.words_per_feature..(j + 1) * self.words_per_feature]
    }

    /// Whether row `r` has feature `j` on.
    pub fn bit(&self, r: usize, j: usize) -> bool {
        self.feature(j)[r / 64] >> (r % 64) & 1 == 1
    }

    /// Ones per feature.
    pub fn counts(&self) -> Vec<u64> {
        (0..self.features).map(|j| self.feature(j).iter().map(|w| w.count_ones() as u64).sum()).collect()
    }

    /// The features that are on in some rows and off in others, from their
    /// [`Self::counts`] (a constant feature has zero covariance with every other, so the
    /// covariance term needs only these).
    pub fn varying_features(&self, counts: &[u64]) -> Vec<usize> {
        let rows = self.rows as u64;
        counts.iter().enumerate().filter(|(_, &c)| c > 0 && c < rows).map(|(j, _)| j).collect()
    }

    /// The codes of `features` only, in that order.
    pub fn select(&self, features: &[usize]) -> Self {
        let words = features.iter().flat_map(|&j| self.feature(j)).copied().collect();
        Self { rows: self.rows, features: features.len(), words_per_feature: self.words_per_feature, words }
    }

    /// Rows where both features `j` and `k` are on.
    pub fn co_count(&self, j: usize, k: usize) -> u64 {
        self.feature(j).iter().zip(self.feature(k)).map(|(a, b)| (a & b).count_ones() as u64).sum()
    }

    /// Σ_{j≠k} |Cov(z_j, z_k)| with the unbiased (rows − 1) covariance, from counts:
    /// Cov = (n_jk − n_j n_k / B) / (B − 1). Zero for fewer than two rows.
    pub fn covariance_sum(&self) -> f64 {
        self.covariance_with_signs(&mut vec![0f32; self.features * self.features])
    }

    /// The covariance term Σ_{j≠k} |Cov(z_j, z_k)| (as [`Self::covariance_sum`]) and its
    /// subgradient's sign pattern: `signs[j * features + k]` = sign(Cov(z_j, z_k)) for
    /// j ≠ k, 0 on the diagonal and where the covariance is exactly 0 (PyTorch's
    /// convention for |·| at 0). The sign comes from integers, n_jk·B − n_j·n_k, so it
    /// is exact, and so is the sum before its final scaling. Rows of the matrix are
    /// computed in parallel.
    pub fn covariance_with_signs(&self, signs: &mut [f32]) -> f64 {
        use rayon::prelude::*;
        let h = self.features;
        assert_eq!(signs.len(), h * h, "signs must be [features, features]");
        if self.rows < 2 {
            signs.fill(0.0);
            return 0.0;
        }
        let b = self.rows as i64;
        let counts = self.counts();
        let scale = 1.0 / (b as f64 * (b as f64 - 1.0));
        let popcnt = has_popcnt();
        let row_sums: Vec<i64> = signs
            .par_chunks_mut(h)
            .enumerate()
            .map(|(j, row)| {
                let (counts, words) = (&counts, &self.words);
                let args = SignRow { j, words_per_feature: self.words_per_feature, b, counts, words };
                if popcnt {
                    // SAFETY: the CPU has POPCNT (checked at run time above).
                    unsafe { sign_row_popcnt(&args, row) }
                } else {
                    sign_row(&args, row)
                }
            })
            .collect();
        // Integer sums: exact, whatever the thread count.
        row_sums.iter().sum::<i64>() as f64 * scale
    }
}

/// One row of [`PackedCodes::covariance_with_signs`]'s work.
struct SignRow<'a> {
    j: usize,
    words_per_feature: usize,
    b: i64,
    counts: &'a [u64],
    words: &'a [u64],
}

/// Fills row `j` of the sign pattern; returns Σ_k |n_jk·B − n_j·n_k|, k ≠ j, exactly
/// (at most B² per pair, so an i64 holds any realistic d'² of them).
#[inline(always)]
fn sign_row(a: &SignRow, row: &mut [f32]) -> i64 {
    let w = a.words_per_feature;
    let fj = &a.words[a.j * w..(a.j + 1) * w];
    let nj = a.counts[a.j] as i64;
    let mut sum = 0i64;
    for (k, (sign, fk)) in row.iter_mut().zip(a.words.chunks_exact(w)).enumerate() {
        let co = fj.iter().zip(fk).map(|(x, y)| (x & y).count_ones() as i64).sum::<i64>();
        let numerator = if k == a.j { 0 } else { co * a.b - nj * a.counts[k] as i64 };
        *sign = numerator.signum() as f32;
        sum += numerator.abs();
    }
    sum
}

/// [`sign_row`] compiled with the POPCNT instruction (the portable x86-64 baseline
/// lacks it, and the bit-twiddling fallback is several times slower).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn sign_row_popcnt(a: &SignRow, row: &mut [f32]) -> i64 {
    sign_row(a, row)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn sign_row_popcnt(a: &SignRow, row: &mut [f32]) -> i64 {
    sign_row(a, row)
}

fn has_popcnt() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("popcnt");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Entropy in bits of a Bernoulli(p): −p log2 p − (1−p) log2(1−p), 0 at p = 0 and 1.
pub fn bernoulli_entropy(p: f64) -> f64 {
    let term = |q: f64| if q > 0.0 { -q * q.log2() } else { 0.0 };
    term(p) + term(1.0 - p)
}

/// Sum over features of the Bernoulli entropy of each feature's frequency, in bits,
/// from counts of ones among `rows` rows (the feature-set entropy estimate).
pub fn entropy_bits(counts: &[u64], rows: usize) -> f64 {
    counts.iter().map(|&c| bernoulli_entropy(c as f64 / rows as f64)).sum()
}

/// Slow float versions, written the way the method's formulas read, to test against.
pub mod reference {
    use super::bernoulli_entropy;

    /// z = 1 where pre > 0, as f32, row-major.
    pub fn binarize(pre: &[f32]) -> Vec<f32> {
        pre.iter().map(|&x| if x > 0.0 { 1.0 } else { 0.0 }).collect()
    }

    /// Σ_j h(mean_r z_rj).
    pub fn entropy_bits(z: &[f32], rows: usize, features: usize) -> f64 {
        (0..features)
            .map(|j| {
                bernoulli_entropy((0..rows).map(|r| z[r * features + j] as f64).sum::<f64>() / rows as f64)
            })
            .sum()
    }

    /// Σ_{j≠k} |Cov(z_j, z_k)|, unbiased, by the textbook two-pass formula.
    pub fn covariance_sum(z: &[f32], rows: usize, features: usize) -> f64 {
        let col = |j: usize| (0..rows).map(move |r| z[r * features + j] as f64);
        let means: Vec<f64> = (0..features).map(|j| col(j).sum::<f64>() / rows as f64).collect();
        let mut sum = 0.0;
        for j in 0..features {
            for k in 0..features {
                if j != k {
                    let cov: f64 =
                        col(j).zip(col(k)).map(|(a, b)| (a - means[j]) * (b - means[k])).sum::<f64>()
                            / (rows as f64 - 1.0);
                    sum += cov.abs();
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bae_lm::rng::SplitMix64;

    fn random_pre(rows: usize, features: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        // Per-feature bias so frequencies vary from rare to dense.
        let bias: Vec<f32> = (0..features).map(|_| rng.unit_f32() * 2.0 - 1.0).collect();
        (0..rows * features).map(|i| rng.unit_f32() * 2.0 - 1.0 + bias[i % features] * 0.9).collect()
    }

    #[test]
    fn stacked_codes_are_the_codes_of_the_stacked_rows() {
        let (features, rows) = (5, 64 * 2 + 64 + 37);
        let pre = random_pre(rows, features, 8);
        let whole = PackedCodes::from_preactivations(&pre, rows, features);
        let parts: Vec<PackedCodes> = [0..128, 128..192, 192..rows]
            .into_iter()
            .map(|r| {
                PackedCodes::from_preactivations(
                    &pre[r.start * features..r.end * features],
                    r.len(),
                    features,
                )
            })
            .collect();
        assert_eq!(PackedCodes::stack(&parts), whole);
    }

    #[test]
    fn packing_keeps_every_bit_including_a_ragged_last_word() {
        for rows in [1, 63, 64, 65, 130] {
            let pre = random_pre(rows, 7, rows as u64);
            let packed = PackedCodes::from_preactivations(&pre, rows, 7);
            for r in 0..rows {
                for j in 0..7 {
                    assert_eq!(packed.bit(r, j), pre[r * 7 + j] > 0.0, "rows {rows}, r {r}, j {j}");
                }
            }
            // No stray bits past the last row.
            let last = packed.feature(6)[rows.div_ceil(64) - 1];
            if rows % 64 != 0 {
                assert_eq!(last >> (rows % 64), 0);
            }
        }
    }

    #[test]
    fn entropy_and_covariance_match_the_float_reference() {
        let (rows, features) = (200, 9);
        let pre = random_pre(rows, features, 3);
        let packed = PackedCodes::from_preactivations(&pre, rows, features);
        let z = reference::binarize(&pre);
        let fast = entropy_bits(&packed.counts(), rows);
        let slow = reference::entropy_bits(&z, rows, features);
        assert!((fast - slow).abs() < 1e-9, "{fast} vs {slow}");
        let fast = packed.covariance_sum();
        let slow = reference::covariance_sum(&z, rows, features);
        assert!((fast - slow).abs() < 1e-9 * slow.max(1.0), "{fast} vs {slow}");
        let mut signs = vec![f32::NAN; features * features];
        let with_signs = packed.covariance_with_signs(&mut signs);
        assert!((with_signs - slow).abs() < 1e-9 * slow.max(1.0), "{with_signs} vs {slow}");
        // Signs against the float covariance, in (j, k) order.
        let z = &z;
        let col = |j: usize| (0..rows).map(move |r| z[r * features + j] as f64);
        let mean: Vec<f64> = (0..features).map(|j| col(j).sum::<f64>() / rows as f64).collect();
        for j in 0..features {
            for k in 0..features {
                let cov: f64 = col(j).zip(col(k)).map(|(a, b)| (a - mean[j]) * (b - mean[k])).sum();
                let want = if j == k || cov.abs() < 1e-9 { 0.0 } else { cov.signum() as f32 };
                assert_eq!(signs[j * features + k], want, "({j}, {k}): cov {cov}");
            }
        }
    }

    #[test]
    fn entropy_has_the_closed_form_values() {
        // Columns with p = 1/2 carry one bit each; constant columns none.
        let rows = 128;
        let features = 5;
        let pre: Vec<f32> = (0..rows)
            .flat_map(|r| {
                (0..features).map(move |j| {
                    if j < 3 {
                        if (r >> j) & 1 == 1 {
                            1.0
                        } else {
                            -1.0
                        }
                    } else if j == 3 {
                        1.0
                    } else {
                        -1.0
                    }
                })
            })
            .collect();
        let packed = PackedCodes::from_preactivations(&pre, rows, features);
        assert_eq!(packed.counts(), vec![64, 64, 64, 128, 0]);
        assert!((entropy_bits(&packed.counts(), rows) - 3.0).abs() < 1e-12);
        assert_eq!(bernoulli_entropy(0.0), 0.0);
        assert_eq!(bernoulli_entropy(1.0), 0.0);
        assert!((bernoulli_entropy(0.25) - 0.811_278_124_459_132_8).abs() < 1e-12);
    }

    #[test]
    fn covariance_is_near_zero_for_independent_columns_and_large_for_duplicates() {
        let rows = 4096;
        let mut rng = SplitMix64::new(11);
        let independent: Vec<f32> = (0..rows * 4).map(|_| rng.unit_f32() - 0.5).collect();
        let packed = PackedCodes::from_preactivations(&independent, rows, 4);
        // 12 ordered pairs, each |cov| ~ 0.25 / sqrt(rows) = 0.004.
        assert!(packed.covariance_sum() < 12.0 * 0.02, "{}", packed.covariance_sum());
        let duplicated: Vec<f32> = (0..rows).flat_map(|r| [independent[r * 4]; 4]).collect();
        let packed = PackedCodes::from_preactivations(&duplicated, rows, 4);
        // Four copies of one fair column: each of 12 pairs has cov ≈ 1/4.
        assert!((packed.covariance_sum() - 3.0).abs() < 0.1, "{}", packed.covariance_sum());
    }

    #[test]
    fn the_covariance_over_the_varying_features_is_the_whole_one() {
        // Features 1 and 4 always on, 6 always off: the term and its sign pattern over
        // the other features equal the full d'×d' computation, whose rows and columns
        // for the constant features are zero.
        let (rows, features) = (77, 8);
        let mut pre = random_pre(rows, features, 9);
        for row in pre.chunks_mut(features) {
            (row[1], row[4], row[6]) = (1.0, 2.0, -1.0);
        }
        let packed = PackedCodes::from_preactivations(&pre, rows, features);
        let varying = packed.varying_features(&packed.counts());
        assert_eq!(varying, vec![0, 2, 3, 5, 7]);
        let mut full = vec![0f32; features * features];
        let whole = packed.covariance_with_signs(&mut full);
        let mut narrow = vec![0f32; varying.len() * varying.len()];
        let part = packed.select(&varying).covariance_with_signs(&mut narrow);
        assert!(whole > 0.0);
        assert_eq!(whole, part);
        for (a, &j) in varying.iter().enumerate() {
            for (b, &k) in varying.iter().enumerate() {
                assert_eq!(narrow[a * varying.len() + b], full[j * features + k], "({j}, {k})");
            }
        }
        for c in [1, 4, 6] {
            assert!((0..features).all(|k| full[c * features + k] == 0.0 && full[k * features + c] == 0.0));
        }
    }
}
