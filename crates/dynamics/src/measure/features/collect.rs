//! Token samples per feature, in the manner of the reference's ComSem protocol: every
//! token of a corpus is encoded at the autoencoder's hook point, scored per feature, and
//! handed to its `top_features` highest-scoring features; each feature keeps the first
//! tokens handed to it, in corpus order.
//!
//! Scores: for a BAE, log2(|z − z̄| + 1e-6) with z̄ the feature's mean code over the
//! corpus, so a bit scores high where it takes its rarer value; for SAE baselines the
//! activation. A token is handed only to features *active* on it — for a BAE a bit
//! that differs from its feature's rounded mean (the method's L0), for an SAE a
//! non-zero — so a token with few active features does not fill other features' lists
//! with tokens on which they are off (the reference hands every token to ten features
//! whatever their value). Ties go to the lower feature index.

use bae_lm::{Batch, ForwardRequest, Model, Padding};
use bae_train::config::Architecture;
use bae_train::metrics::{CodeCounts, CodeStats, L0Rule};
use candle_core::DType;

use crate::error::{DynamicsError, Result};
use crate::measure::HookAutoencoder;

/// How tokens are sampled per feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureOptions {
    /// Features each token is handed to (the reference's top-k, 10).
    pub top_features: usize,
    /// Tokens kept per feature, first come first kept (the judge needs 5 + 8 = 13).
    pub samples_per_feature: usize,
    /// Highest-scoring tokens kept per feature, over every token it is active on.
    pub top_per_feature: usize,
    /// Tokens of context shown before the sampled token.
    pub context_before: usize,
    /// Tokens of context shown after it.
    pub context_after: usize,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        Self {
            top_features: 10,
            samples_per_feature: 20,
            top_per_feature: 10,
            context_before: 12,
            context_after: 4,
        }
    }
}

/// A token of the corpus with its context, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenContext {
    /// The document (0-based, corpus order).
    pub doc: u64,
    /// The token's position in the document's token sequence.
    pub position: u32,
    /// The token's text.
    pub token: String,
    /// Up to `context_before` tokens before it, as text.
    pub before: String,
    /// Up to `context_after` tokens after it, as text.
    pub after: String,
}

/// A token handed to a feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureSample {
    /// Index into [`FeatureSet::tokens`].
    pub token: usize,
    /// The feature's score on the token.
    pub score: f32,
}

/// Samples, densities and counts of every feature of one autoencoder over a corpus.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// The architecture (binary or an SAE baseline).
    pub architecture: Architecture,
    /// Every token that was sampled at least once, referenced by the samples.
    pub tokens: Vec<TokenContext>,
    /// Tokens encoded in all.
    pub tokens_seen: u64,
    /// Per feature, the tokens on which it is active (density = active / tokens_seen).
    pub active: Vec<u64>,
    /// Per feature, how many tokens were handed to it in all.
    pub assigned: Vec<u64>,
    /// Per feature, the first `samples_per_feature` tokens handed to it, in corpus order:
    /// what the judge sees.
    pub samples: Vec<Vec<FeatureSample>>,
    /// Per feature, its `top_per_feature` highest-scoring tokens among all tokens it is
    /// active on, best first (ties: the earlier token). For a BAE every active token
    /// of a feature has the same score, so these are its first active tokens.
    pub top: Vec<Vec<FeatureSample>>,
    /// Dead/dense counts and the density histogram of the codes (dead: never 1 or
    /// non-zero; dense: 1 or non-zero on more than half of the tokens).
    pub stats: CodeStats,
    /// The options used.
    pub options: FeatureOptions,
}

impl FeatureSet {
    /// The fraction of tokens on which feature `j` is 1 (BAE) or non-zero (SAE).
    pub fn density(&self, j: usize) -> f64 {
        self.active[j] as f64 / self.tokens_seen.max(1) as f64
    }

    /// "dead", "dense" or "live", by the same thresholds as the training metrics.
    pub fn class(&self, j: usize) -> &'static str {
        match self.active[j] {
            0 => "dead",
            a if a as f64 / self.tokens_seen.max(1) as f64 > 0.5 => "dense",
            _ => "live",
        }
    }
}

/// Per-feature score of one token's codes or activations: log2(|z − z̄| + 1e-6) for a
/// BAE, the activation for an SAE. Whether the feature is active comes with it.
fn score_row(binary: bool, codes: &[f32], means: &[f64], out: &mut Vec<(f32, usize)>) {
    out.clear();
    for (j, (&z, &mean)) in codes.iter().zip(means).enumerate() {
        if binary {
            let active = (f64::from(z) > 0.5) != (mean > 0.5);
            if active {
                out.push((((f64::from(z) - mean).abs() + 1e-6).log2() as f32, j));
            }
        } else if z > 0.0 {
            out.push((z, j));
        }
    }
}

/// The `k` best of `candidates` (score descending, feature ascending), in that order.
fn top_k(candidates: &mut [(f32, usize)], k: usize) -> &[(f32, usize)] {
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let k = k.min(candidates.len());
    if k > 0 && k < candidates.len() {
        candidates.select_nth_unstable_by(k - 1, order);
    }
    candidates[..k].sort_by(order);
    &candidates[..k]
}

/// Runs `docs` (token ids, each within the model's context) through `model`, encodes
/// every token at `bae`'s hook point and samples tokens per feature.
pub fn collect_features(
    model: &Model,
    bae: &HookAutoencoder,
    docs: &[Vec<u32>],
    options: FeatureOptions,
    on_doc: &mut dyn FnMut(usize),
) -> Result<FeatureSet> {
    if options.top_features == 0 || options.samples_per_feature == 0 || options.top_per_feature == 0 {
        return Err(DynamicsError::Input(
            "top features, samples per feature and top tokens per feature must be at least 1".into(),
        ));
    }
    let tokenizer = model.tokenizer()?;
    let device = model.decoder.device().clone();
    let ae = &bae.autoencoder;
    let binary = ae.architecture == Architecture::Binary;
    // Pass 1: every token's activations, kept to score against the corpus means.
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(docs.len());
    let mut counts = CodeCounts::new(ae.d_hidden);
    for (i, ids) in docs.iter().enumerate() {
        let batch = Batch::new(std::slice::from_ref(ids), 0, Padding::Right, &device)?;
        let out = model.decoder.forward(&batch, &ForwardRequest::capture(&[bae.hook]))?;
        let acts =
            out.activations[&bae.hook].get(0)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        for row in ae.encode(&acts).chunks(ae.d_hidden) {
            counts.add_row(row);
        }
        rows.push(acts);
        on_doc(i + 1);
    }
    let means: Vec<f64> = counts.ones.iter().map(|&o| o as f64 / counts.rows.max(1) as f64).collect();
    let l0 = if binary { L0Rule::FlipsFromMean } else { L0Rule::NonZero };
    let mut set = FeatureSet {
        architecture: ae.architecture,
        tokens: Vec::new(),
        tokens_seen: counts.rows,
        active: counts.ones.clone(),
        assigned: vec![0; ae.d_hidden],
        samples: vec![Vec::new(); ae.d_hidden],
        top: vec![Vec::new(); ae.d_hidden],
        stats: counts.stats(l0),
        options,
    };
    // Pass 2: scores, and each token handed to its best active features.
    let mut candidates = Vec::with_capacity(ae.d_hidden);
    for (doc, (ids, acts)) in docs.iter().zip(&rows).enumerate() {
        let codes = ae.encode(acts);
        for (position, row) in codes.chunks(ae.d_hidden).enumerate() {
            score_row(binary, row, &means, &mut candidates);
            let mut token_index = None;
            let mut index = |set: &mut FeatureSet| -> Result<usize> {
                if let Some(index) = token_index {
                    return Ok(index);
                }
                set.tokens.push(token_context(tokenizer, ids, doc, position, options)?);
                Ok(*token_index.insert(set.tokens.len() - 1))
            };
            for &(score, j) in &candidates {
                let top = &set.top[j];
                if top.len() < options.top_per_feature {
                    let token = index(&mut set)?;
                    set.top[j].push(FeatureSample { token, score });
                } else if let Some(worst) = worst(top).filter(|&w| score > top[w].score) {
                    let token = index(&mut set)?;
                    set.top[j][worst] = FeatureSample { token, score };
                }
            }
            for &(score, j) in top_k(&mut candidates, options.top_features) {
                set.assigned[j] += 1;
                if set.samples[j].len() < options.samples_per_feature {
                    let token = index(&mut set)?;
                    set.samples[j].push(FeatureSample { token, score });
                }
            }
        }
    }
    for top in &mut set.top {
        top.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.token.cmp(&b.token)));
    }
    Ok(set)
}

/// The entry to evict from a full top list: the lowest score, the latest token among equals.
fn worst(top: &[FeatureSample]) -> Option<usize> {
    (0..top.len())
        .min_by(|&a, &b| top[a].score.total_cmp(&top[b].score).then(top[b].token.cmp(&top[a].token)))
}

fn token_context(
    tokenizer: &bae_lm::TextTokenizer,
    ids: &[u32],
    doc: usize,
    position: usize,
    options: FeatureOptions,
) -> Result<TokenContext> {
    let start = position.saturating_sub(options.context_before);
    let end = (position + 1 + options.context_after).min(ids.len());
    Ok(TokenContext {
        doc: doc as u64,
        position: position as u32,
        token: tokenizer.decode(&ids[position..position + 1])?,
        before: tokenizer.decode(&ids[start..position])?,
        after: tokenizer.decode(&ids[position + 1..end])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bae_scores_only_bits_off_their_usual_value() {
        // Feature 0 is usually 0 (mean 0.1), feature 1 usually 1 (mean 0.9), feature 2
        // balanced-ish (mean 0.4).
        let means = [0.1, 0.9, 0.4];
        let mut out = Vec::new();
        score_row(true, &[1.0, 0.0, 0.0], &means, &mut out);
        let expected = [(0.9f64 + 1e-6).log2() as f32, (0.9f64 + 1e-6).log2() as f32];
        assert_eq!(out, vec![(expected[0], 0), (expected[1], 1)]);
        score_row(true, &[0.0, 1.0, 1.0], &means, &mut out);
        assert_eq!(out, vec![((0.6f64 + 1e-6).log2() as f32, 2)]);
    }

    #[test]
    fn sae_scores_are_activations_of_nonzero_features() {
        let mut out = Vec::new();
        score_row(false, &[0.0, 2.5, 0.0, 0.5], &[0.0; 4], &mut out);
        assert_eq!(out, vec![(2.5, 1), (0.5, 3)]);
    }

    #[test]
    fn top_k_orders_by_score_then_lower_feature() {
        let mut c = vec![(1.0, 5), (3.0, 2), (1.0, 1), (2.0, 9), (3.0, 7)];
        assert_eq!(top_k(&mut c, 3), &[(3.0, 2), (3.0, 7), (2.0, 9)]);
        let mut c = vec![(1.0, 5), (1.0, 1)];
        assert_eq!(top_k(&mut c, 10), &[(1.0, 1), (1.0, 5)]);
        assert!(top_k(&mut Vec::new(), 3).is_empty());
    }

    /// Per feature: active tokens, assigned tokens, kept samples and top tokens as (doc,
    /// position, score).
    type Reference = (Vec<u64>, Vec<u64>, Vec<Vec<(u64, u32, f32)>>, Vec<Vec<(u64, u32, f32)>>);

    /// Brute force: every token's full feature ranking, sorted with a comparison sort.
    fn slow_reference(
        model: &Model,
        bae: &HookAutoencoder,
        docs: &[Vec<u32>],
        top: usize,
        keep: usize,
        top_n: usize,
    ) -> Reference {
        let ae = &bae.autoencoder;
        let mut all: Vec<(u64, u32, Vec<f32>)> = Vec::new();
        for (doc, ids) in docs.iter().enumerate() {
            let logits_free = ForwardRequest::capture(&[bae.hook]);
            let batch =
                Batch::new(std::slice::from_ref(ids), 0, Padding::Right, &candle_core::Device::Cpu).unwrap();
            let out = model.decoder.forward(&batch, &logits_free).unwrap();
            let acts =
                out.activations[&bae.hook].get(0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            // Encoded as one matrix per document, as the fast path does: a GEMM's
            // rounding depends on its shape (a single row takes another kernel), and a
            // ReLU score or a code at a pre-activation near 0 would follow it.
            let codes = ae.encode(&acts);
            for (pos, row) in codes.chunks(ae.d_hidden).enumerate() {
                all.push((doc as u64, pos as u32, row.to_vec()));
            }
        }
        let n = all.len() as f64;
        let h = ae.d_hidden;
        let active: Vec<u64> = (0..h).map(|j| all.iter().filter(|t| t.2[j] > 0.0).count() as u64).collect();
        let binary = ae.architecture == Architecture::Binary;
        let mut assigned = vec![0u64; h];
        let mut samples = vec![Vec::new(); h];
        // Every active (token, score) per feature, in corpus order.
        let mut scored: Vec<Vec<(u64, u32, f64)>> = vec![Vec::new(); h];
        for (doc, pos, codes) in &all {
            let mut ranked: Vec<(f64, usize)> = (0..h)
                .filter(|&j| {
                    let mean = active[j] as f64 / n;
                    if binary {
                        (codes[j] > 0.5) != (mean > 0.5)
                    } else {
                        codes[j] > 0.0
                    }
                })
                .map(|j| {
                    let mean = active[j] as f64 / n;
                    let s =
                        if binary { ((codes[j] as f64 - mean).abs() + 1e-6).log2() } else { codes[j] as f64 };
                    (s, j)
                })
                .collect();
            for &(score, j) in &ranked {
                scored[j].push((*doc, *pos, score));
            }
            ranked.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            for &(s, j) in ranked.iter().take(top) {
                assigned[j] += 1;
                if samples[j].len() < keep {
                    samples[j].push((*doc, *pos, s as f32));
                }
            }
        }
        // A stable sort by score keeps corpus order among equal scores.
        let top = scored
            .into_iter()
            .map(|mut list| {
                list.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap());
                list.into_iter().take(top_n).map(|(d, p, s)| (d, p, s as f32)).collect()
            })
            .collect();
        (active, assigned, samples, top)
    }

    #[test]
    fn samples_match_a_brute_force_ranking() {
        use bae_lm::testing::{random_weights, tiny_config, write_hf_dir};
        use bae_lm::{Family, HookPoint, LoadOptions};
        use bae_train::bae::Autoencoder;
        use bae_train::config::TrainConfig;

        let cfg = tiny_config(Family::Llama);
        let dir = tempfile::tempdir().unwrap();
        write_hf_dir(dir.path(), &cfg, &random_weights(&cfg, 11), 1).unwrap();
        let model = Model::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
        let docs: Vec<Vec<u32>> =
            (0..6u32).map(|i| (0..(20 + 7 * i)).map(|t| (t * 37 + i * 11) % 290 + 3).collect()).collect();
        for architecture in [Architecture::Binary, Architecture::ReluL1] {
            let config = TrainConfig { architecture, d_hidden: Some(96), seed: 5, ..TrainConfig::default() };
            let bae = HookAutoencoder {
                hook: HookPoint::ResidPost(1),
                dir: dir.path().into(),
                autoencoder: Autoencoder::new(&config, cfg.hidden_size),
                trained_on: None,
                quality: None,
            };
            let options = FeatureOptions {
                top_features: 4,
                samples_per_feature: 3,
                top_per_feature: 5,
                ..FeatureOptions::default()
            };
            let mut seen = 0;
            let set = collect_features(&model, &bae, &docs, options, &mut |d| seen = d).unwrap();
            assert_eq!(seen, docs.len());
            let (active, assigned, samples, top) = slow_reference(&model, &bae, &docs, 4, 3, 5);
            assert_eq!(set.tokens_seen, docs.iter().map(|d| d.len() as u64).sum::<u64>());
            assert_eq!(set.active, active, "{architecture:?}");
            assert_eq!(set.assigned, assigned, "{architecture:?}");
            assert_eq!(set.assigned.iter().sum::<u64>(), set.tokens_seen * 4, "every token fills its four");
            // Same tokens in the same order; scores equal to rounding.
            let same = |got: &[FeatureSample], want: &[(u64, u32, f32)], what: &str| {
                let got: Vec<(u64, u32, f32)> = got
                    .iter()
                    .map(|s| (set.tokens[s.token].doc, set.tokens[s.token].position, s.score))
                    .collect();
                assert_eq!(got.len(), want.len(), "{architecture:?} {what}: {got:?} vs {want:?}");
                for (g, w) in got.iter().zip(want) {
                    assert_eq!((g.0, g.1), (w.0, w.1), "{architecture:?} {what}: {got:?} vs {want:?}");
                    assert!(
                        (g.2 - w.2).abs() <= 1e-5 * w.2.abs().max(1.0),
                        "{architecture:?} {what}: {g:?} vs {w:?}"
                    );
                }
            };
            for (j, expected) in samples.iter().enumerate() {
                same(&set.samples[j], expected, &format!("feature {j}"));
                same(&set.top[j], &top[j], &format!("feature {j}: top tokens"));
            }
            let live = (0..96).filter(|&j| set.class(j) == "live").count();
            assert_eq!(live + set.stats.dead + set.stats.dense, 96);
            let t = &set.tokens[set.samples.iter().find(|s| !s.is_empty()).unwrap()[0].token];
            let ids = &docs[t.doc as usize];
            let tokenizer = model.tokenizer().unwrap();
            assert_eq!(
                t.token,
                tokenizer.decode(&ids[t.position as usize..t.position as usize + 1]).unwrap()
            );
        }
    }
}
