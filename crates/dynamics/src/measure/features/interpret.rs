//! Interpretability scores in the manner of the reference's ComSem protocol (DESIGN.md
//! §6): a judge explains a feature from its first `explain_samples` tokens and answers
//! yes or no for each of up to `judge_samples` later ones; the feature's score is the
//! fraction of yeses. A feature needs at least `explain_samples + 1` tokens to be
//! scored. Scoring every feature of a wide autoencoder takes d' × 9 judge calls, so a
//! seeded subset of the eligible features can be scored instead.

use bae_lm::rng::SplitMix64;

use super::judge::{prompts, Judge};
use super::FeatureSet;
use crate::error::Result;

/// How features are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpretOptions {
    /// Tokens the explanation is written from (the reference's 5).
    pub explain_samples: usize,
    /// Later tokens judged against it, at most (the reference's 8).
    pub judge_samples: usize,
    /// Score at most this many features, chosen at random among the eligible ones
    /// with `seed`; all eligible features when `None`.
    pub max_features: Option<usize>,
    /// Seed of that choice.
    pub seed: u64,
    /// Longest explanation, in tokens.
    pub explanation_tokens: usize,
}

impl Default for InterpretOptions {
    fn default() -> Self {
        Self { explain_samples: 5, judge_samples: 8, max_features: None, seed: 0, explanation_tokens: 24 }
    }
}

/// One scored feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureInterpretation {
    /// The feature.
    pub feature: usize,
    /// The judge's explanation.
    pub explanation: String,
    /// Yes/no for each judged sample, in sample order (samples `explain_samples..`).
    pub verdicts: Vec<bool>,
    /// Fraction of yeses.
    pub score: f64,
}

/// Features with enough samples to be scored, in index order.
pub fn eligible_features(set: &FeatureSet, options: &InterpretOptions) -> Vec<usize> {
    (0..set.samples.len()).filter(|&j| set.samples[j].len() > options.explain_samples).collect()
}

/// The features to score: all eligible ones, or a seeded random subset, in index order.
pub fn chosen_features(set: &FeatureSet, options: &InterpretOptions) -> Vec<usize> {
    let mut features = eligible_features(set, options);
    if let Some(max) = options.max_features.filter(|&m| m < features.len()) {
        SplitMix64::new(options.seed).shuffle(&mut features);
        features.truncate(max);
        features.sort_unstable();
    }
    features
}

/// Scores the chosen features with `judge`; `on_feature` sees how many are done.
pub fn interpret_features(
    set: &FeatureSet,
    judge: &mut dyn Judge,
    options: &InterpretOptions,
    on_feature: &mut dyn FnMut(usize, usize),
) -> Result<Vec<FeatureInterpretation>> {
    let features = chosen_features(set, options);
    let mut scored = Vec::with_capacity(features.len());
    for (done, &j) in features.iter().enumerate() {
        let samples = &set.samples[j];
        let shown: Vec<_> = samples[..options.explain_samples].iter().map(|s| &set.tokens[s.token]).collect();
        let explanation = judge.explain(&prompts::explain(&shown), options.explanation_tokens)?;
        let tested = samples.iter().skip(options.explain_samples).take(options.judge_samples);
        let mut verdicts = Vec::new();
        for s in tested {
            verdicts.push(judge.judge(&prompts::judge(&set.tokens[s.token], &explanation))?.yes);
        }
        let score = verdicts.iter().filter(|&&v| v).count() as f64 / verdicts.len() as f64;
        scored.push(FeatureInterpretation { feature: j, explanation, verdicts, score });
        on_feature(done + 1, features.len());
    }
    Ok(scored)
}

#[cfg(test)]
mod tests {
    use bae_train::config::Architecture;
    use bae_train::metrics::{CodeCounts, L0Rule};

    use super::super::judge::{parse_verdict, Message, Verdict};
    use super::super::{FeatureOptions, FeatureSample, TokenContext};
    use super::*;

    /// Explains with the shown tokens joined; says yes when the judged token was among
    /// them — a judge whose right answers are known.
    struct Echo {
        explained: Vec<String>,
    }

    fn marked(message: &Message) -> Vec<String> {
        message
            .content
            .match_indices("<<")
            .map(|(i, _)| {
                let rest = &message.content[i + 2..];
                rest[..rest.find(">>").unwrap()].to_string()
            })
            .collect()
    }

    impl Judge for Echo {
        fn id(&self) -> String {
            "echo".into()
        }
        fn explain(&mut self, messages: &[Message], _: usize) -> Result<String> {
            // The prompt's own examples come first; the shown tokens last.
            let tokens = marked(&messages[1]);
            let explanation = tokens[tokens.len() - 5..].join("|");
            self.explained.push(explanation.clone());
            Ok(explanation)
        }
        fn judge(&mut self, messages: &[Message]) -> Result<Verdict> {
            let user = &messages[1].content;
            let token = marked(&messages[1]).pop().unwrap();
            let explanation = user.rsplit("Candidate description: \"").next().unwrap();
            let explanation = &explanation[..explanation.find('"').unwrap()];
            Ok(parse_verdict(if explanation.split('|').any(|t| t == token) { "Yes" } else { "No" }))
        }
    }

    fn set_with(samples_per_feature: &[&[&str]]) -> FeatureSet {
        let mut tokens = Vec::new();
        let mut samples = Vec::new();
        for words in samples_per_feature {
            let mut list = Vec::new();
            for w in words.iter() {
                tokens.push(TokenContext {
                    doc: 0,
                    position: tokens.len() as u32,
                    token: w.to_string(),
                    before: "a ".into(),
                    after: " b".into(),
                });
                list.push(FeatureSample { token: tokens.len() - 1, score: 1.0 });
            }
            samples.push(list);
        }
        let n = samples.len();
        FeatureSet {
            architecture: Architecture::Binary,
            tokens,
            tokens_seen: 100,
            active: vec![1; n],
            assigned: samples.iter().map(|s| s.len() as u64).collect(),
            samples,
            top: vec![Vec::new(); n],
            stats: CodeCounts::new(n).stats(L0Rule::FlipsFromMean),
            options: FeatureOptions::default(),
        }
    }

    #[test]
    fn scores_are_the_fraction_of_yes_on_later_samples() {
        let set = set_with(&[
            // Explained from x1..x5; the 8 judged: 3 repeats of shown tokens, 5 others; the
            // 14th sample is beyond the 8 judged.
            &["x1", "x2", "x3", "x4", "x5", "x1", "y", "x2", "y", "y", "x5", "y", "y", "x1"],
            // Too few samples (5): not eligible.
            &["a", "b", "c", "d", "e"],
            // Exactly 6: one judged sample.
            &["p", "q", "r", "s", "t", "p"],
        ]);
        let mut judge = Echo { explained: vec![] };
        let options = InterpretOptions::default();
        assert_eq!(eligible_features(&set, &options), vec![0, 2]);
        let mut progress = Vec::new();
        let scored =
            interpret_features(&set, &mut judge, &options, &mut |d, n| progress.push((d, n))).unwrap();
        assert_eq!(progress, vec![(1, 2), (2, 2)]);
        assert_eq!(scored[0].feature, 0);
        assert_eq!(scored[0].explanation, "x1|x2|x3|x4|x5");
        assert_eq!(scored[0].verdicts, vec![true, false, true, false, false, true, false, false]);
        assert_eq!(scored[0].score, 3.0 / 8.0);
        assert_eq!((scored[1].feature, scored[1].score), (2, 1.0));
    }

    #[test]
    fn a_subset_is_seeded_and_sorted() {
        let words: Vec<&[&str]> = vec![&["a", "b", "c", "d", "e", "f"]; 40];
        let set = set_with(&words);
        let options = InterpretOptions { max_features: Some(7), seed: 3, ..InterpretOptions::default() };
        let a = chosen_features(&set, &options);
        assert_eq!(a.len(), 7);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, chosen_features(&set, &options));
        assert_ne!(a, chosen_features(&set, &InterpretOptions { seed: 4, ..options }));
        assert_eq!(chosen_features(&set, &InterpretOptions { max_features: Some(100), ..options }).len(), 40);
    }
}
