//! The features stage: tokens sampled per feature over a corpus, densities and
//! dead/dense counts, optional interpretability scores from an LLM judge, written as two
//! Parquet tables and a static HTML report (`bae features`, and `bae compare` per
//! autoencoder).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use bae_lm::Model;
use serde::{Deserialize, Serialize};

use super::measurement::{self, PromptSet, TableMetadata};
use super::Reporter;
use crate::error::{input_error, Result, ResultExt};
use crate::input::provenance;
use crate::measure::features::judge::cache::CachedJudge;
use crate::measure::features::judge::endpoint::{EndpointConfig, EndpointJudge};
use crate::measure::features::judge::local::LocalJudge;
use crate::measure::features::judge::Judge;
use crate::measure::features::report::{render, ReportHeader};
use crate::measure::features::{
    collect_features, interpret_features, FeatureInterpretation, FeatureOptions, FeatureSample, FeatureSet,
    InterpretOptions,
};
use crate::measure::DEFAULT_MAX_FVU;

/// The per-feature table's file name in the output folder.
pub const FEATURES_FILE: &str = "features.parquet";
/// The per-sample table's file name.
pub const SAMPLES_FILE: &str = "samples.parquet";
/// The HTML report's file name.
pub const REPORT_FILE: &str = "report.html";
/// The judge's answer cache's file name in the output folder, unless one is named.
pub const JUDGE_CACHE_FILE: &str = "judgements.jsonl";

/// Who scores interpretability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JudgeKind {
    /// No scoring: samples, densities and the report only.
    #[default]
    None,
    /// The hosted model, through its chat template.
    #[value(name = "self")]
    #[serde(rename = "self")]
    SelfModel,
    /// An OpenAI-compatible chat-completions endpoint (url, model).
    Endpoint,
}

/// Interpretability scoring: who judges and how much (`bae features`, `bae compare`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudgeConfig {
    /// Who scores: none, self (the model itself through its chat template; needs an
    /// instruction-tuned model), or endpoint [default: none].
    pub judge: JudgeKind,
    /// Base URL of an OpenAI-compatible chat-completions endpoint, e.g.
    /// `https://api.openai.com/v1` (requests go to URL/chat/completions).
    pub url: Option<String>,
    /// The model name sent to the endpoint.
    pub model: Option<String>,
    /// Environment variable holding the endpoint's API key (sent as a bearer token when
    /// set) [default: OPENAI_API_KEY].
    pub key_env: String,
    /// Seconds before a request to the endpoint is abandoned, then retried [default: 60].
    pub timeout: u64,
    /// Retries after a rate limit (HTTP 429), server error or lost connection [default: 4].
    pub retries: u32,
    /// Score at most this many features per autoencoder, chosen at random (seed) among
    /// those with enough samples; 0 scores them all (d' x 9 judge calls) [default: 50].
    pub score_features: usize,
    /// Tokens an explanation is written from (the reference's 5) [default: 5].
    pub explain_samples: usize,
    /// Later tokens judged against the explanation, at most (the reference's 8) [default: 8].
    pub judge_samples: usize,
    /// Seed of the choice of features to score [default: 0].
    pub seed: u64,
    /// The judge's answers are cached in this file [default: judgements.jsonl in the
    /// output folder].
    pub cache: Option<PathBuf>,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            judge: JudgeKind::None,
            url: None,
            model: None,
            key_env: "OPENAI_API_KEY".into(),
            timeout: 60,
            retries: 4,
            score_features: 50,
            explain_samples: 5,
            judge_samples: 8,
            seed: 0,
            cache: None,
        }
    }
}

impl JudgeConfig {
    /// Bad combinations, refused before any work.
    pub fn validate(&self) -> Result<()> {
        if self.judge == JudgeKind::Endpoint && (self.url.is_none() || self.model.is_none()) {
            return Err(input_error("--judge endpoint needs --judge-url and --judge-model"));
        }
        if self.explain_samples == 0 || self.judge_samples == 0 {
            return Err(input_error("--explain-samples and --judge-samples must be at least 1"));
        }
        Ok(())
    }
}

/// How a corpus is sampled for features.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Use at most this many documents, in file order [default: 400].
    pub max_docs: usize,
    /// Cut each document to its first this many tokens (at most the model's context)
    /// [default: 128].
    pub max_tokens: usize,
    /// Add the tokenizer's special tokens (BOS) to documents [default: true].
    pub special_tokens: bool,
    /// Features each token is handed to: its best-scoring active ones (the reference's
    /// top-k) [default: 10].
    pub top_features: usize,
    /// Tokens kept per feature, in corpus order (scoring needs explain_samples + 1)
    /// [default: 20].
    pub samples: usize,
    /// Highest-scoring tokens kept per feature, over every token it is active on (the
    /// report shows these) [default: 10].
    pub top_samples: usize,
    /// Interpretability scoring.
    pub judging: JudgeConfig,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            max_docs: 400,
            max_tokens: 128,
            special_tokens: true,
            top_features: 10,
            samples: 20,
            top_samples: 10,
            judging: JudgeConfig::default(),
        }
    }
}

impl FeaturesConfig {
    /// Bad settings, refused before any work.
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == 0 {
            return Err(input_error("--max-tokens must be at least 1"));
        }
        self.judging.validate()
    }
}

/// What the features stage reads and writes besides its config.
pub struct FeaturesJob<'a> {
    /// The loaded model (`bae compare` loads it once for every autoencoder).
    pub model: &'a Model,
    /// How the model was named, for the tables.
    pub model_spec: &'a str,
    /// A `bae train` run folder, or a folder of them with `hook` naming which.
    pub bae: &'a Path,
    /// The hook point, when `bae` holds several autoencoders.
    pub hook: Option<&'a str>,
    /// The text to sample tokens from (at most `max_docs` documents of it).
    pub corpus: &'a PromptSet,
    /// Output folder: features.parquet, samples.parquet, report.html.
    pub out: &'a Path,
    /// The tables' `run_id` [default: the output folder's name].
    pub run_id: Option<&'a str>,
}

/// What `bae compare` needs from a features run.
#[derive(Debug, Clone)]
pub struct FeaturesSummary {
    /// Features never active on the corpus.
    pub dead: usize,
    /// Features active on more than half of its tokens.
    pub dense: usize,
    /// Tokens encoded.
    pub tokens: u64,
    /// The judge's id, when features were scored.
    pub judge: Option<String>,
    /// Features scored.
    pub scored: usize,
    /// Their mean score.
    pub mean_score: Option<f64>,
}

/// Samples, measures and (optionally) scores the features of one autoencoder.
pub fn features_stage(
    job: &FeaturesJob,
    config: &FeaturesConfig,
    reporter: &mut dyn Reporter,
) -> Result<FeaturesSummary> {
    config.validate()?;
    let model = job.model;
    let judging = &config.judging;
    let baes = measurement::open_autoencoders(job.bae, job.hook)?;
    if baes.autoencoders.len() != 1 {
        return Err(input_error(format!(
            "{} holds {} autoencoders ({}); name one with --hook",
            job.bae.display(),
            baes.autoencoders.len(),
            baes.autoencoders.iter().map(|b| b.hook.to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    let bae = &baes.autoencoders[0];
    baes.check_model(model.config())?;
    let corpus_set = PromptSet { max_prompts: Some(config.max_docs), ..job.corpus.clone() };
    let prompts = corpus_set.read()?;
    let texts = &prompts.texts;
    let tokenizer = model.tokenizer()?;
    let limit = config.max_tokens.min(model.config().max_position_embeddings);
    let mut docs = Vec::with_capacity(texts.len());
    for text in texts {
        let mut ids = tokenizer.encode(text, config.special_tokens)?;
        ids.truncate(limit);
        if !ids.is_empty() {
            docs.push(ids);
        }
    }
    if docs.is_empty() {
        return Err(input_error(format!("{}: no document has any tokens", job.corpus.path.display())));
    }
    let options = FeatureOptions {
        top_features: config.top_features,
        samples_per_feature: config.samples,
        top_per_feature: config.top_samples,
        ..FeatureOptions::default()
    };
    reporter.begin("features: documents", "", docs.len() as u64, 0);
    let set = collect_features(model, bae, &docs, options, &mut |done| reporter.advance(done as u64, ""))?;
    reporter.end();

    std::fs::create_dir_all(job.out).with_context(|| format!("creating {}", job.out.display()))?;
    let identity = provenance::describe(model, job.model_spec)?;
    let (judge_id, scores) = match judging.judge {
        JudgeKind::None => (None, Vec::new()),
        judge => {
            let cache = judging.cache.clone().unwrap_or_else(|| job.out.join(JUDGE_CACHE_FILE));
            let sha = identity["weights_sha256"].as_str().unwrap_or_default();
            let (id, scores, hits, calls) = match judge {
                JudgeKind::SelfModel => {
                    let id = format!("self:{}@{}", model_name(job.model_spec), &sha[..sha.len().min(12)]);
                    score(LocalJudge::new(model, id)?, &cache, &set, judging, reporter)?
                }
                _ => {
                    let mut endpoint = EndpointConfig::new(
                        judging.url.as_deref().unwrap_or_default(),
                        judging.model.as_deref().unwrap_or_default(),
                        std::env::var(&judging.key_env).ok().filter(|k| !k.is_empty()),
                    );
                    endpoint.timeout = Duration::from_secs(judging.timeout.max(1));
                    endpoint.max_retries = judging.retries;
                    score(EndpointJudge::new(endpoint)?, &cache, &set, judging, reporter)?
                }
            };
            reporter.say(&format!(
                "judge {id}: {} features scored, {hits} answers from {}, {calls} calls",
                scores.len(),
                cache.display()
            ));
            (Some(id), scores)
        }
    };

    let run_id =
        job.run_id.map(str::to_string).unwrap_or_else(|| measurement::folder_run_id(job.out, "features"));
    let recorded = serde_json::json!({
        "command": "features",
        "bae": baes.describe(),
        "corpus": {"path": job.corpus.path, "sha256": prompts.corpus.sha256(), "format": prompts.format.name(), "field": prompts.corpus.field(), "documents": docs.len()},
        "max_tokens": limit,
        "special_tokens": config.special_tokens,
        "top_features": config.top_features,
        "samples_per_feature": config.samples,
        "top_per_feature": config.top_samples,
        "judge": judge_id,
        "explain_samples": judging.explain_samples,
        "judge_samples": judging.judge_samples,
        "score_features": judging.score_features,
        "seed": judging.seed,
    });
    let hook = bae.hook.to_string();
    let common = Common {
        run_id: &run_id,
        model: job.model_spec,
        hook: &hook,
        layer: bae.hook.layer().map(|l| l as u32),
    };
    let gates = baes.gates(DEFAULT_MAX_FVU);
    let metadata = TableMetadata { run_id: &run_id, model: &identity, config: &recorded, gates: &gates };
    measurement::write_measurement(
        &job.out.join(FEATURES_FILE),
        &crate::tables::features(),
        &metadata,
        feature_columns(&common, &set, &scores),
    )?;
    measurement::write_measurement(
        &job.out.join(SAMPLES_FILE),
        &crate::tables::feature_samples(),
        &metadata,
        sample_columns(&common, &set, &scores, judging.explain_samples),
    )?;
    let header = ReportHeader {
        model: job.model_spec.to_string(),
        hook: hook.clone(),
        bae: bae.dir.display().to_string(),
        corpus: job.corpus.path.display().to_string(),
        judge: judge_id.clone(),
    };
    let html = render(&header, &set, &scores);
    bae_train::files::write_atomically(&job.out.join(REPORT_FILE), html.as_bytes())?;
    let features = set.samples.len();
    let mean_score =
        (!scores.is_empty()).then(|| scores.iter().map(|s| s.score).sum::<f64>() / scores.len() as f64);
    reporter.say(&format!(
        "{hook}: {} tokens, {features} features: {} dead, {} dense (> 0.5), {} live{}",
        set.tokens_seen,
        set.stats.dead,
        set.stats.dense,
        features - set.stats.dead - set.stats.dense,
        mean_score
            .map(|m| format!("; interpretability {m:.3} over {} features", scores.len()))
            .unwrap_or_default()
    ));
    reporter.say(&format!("wrote {}", job.out.display()));
    Ok(FeaturesSummary {
        dead: set.stats.dead,
        dense: set.stats.dense,
        tokens: set.tokens_seen,
        judge: judge_id,
        scored: scores.len(),
        mean_score,
    })
}

fn model_name(spec: &str) -> String {
    Path::new(spec).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| spec.to_string())
}

/// Scores features with `judge` behind the cache; returns its id, the scores, cache hits
/// and calls made.
fn score<J: Judge>(
    judge: J,
    cache: &Path,
    set: &FeatureSet,
    judging: &JudgeConfig,
    reporter: &mut dyn Reporter,
) -> Result<(String, Vec<FeatureInterpretation>, u64, u64)> {
    let mut judge = CachedJudge::open(judge, cache)?;
    let options = InterpretOptions {
        explain_samples: judging.explain_samples,
        judge_samples: judging.judge_samples,
        max_features: (judging.score_features > 0).then_some(judging.score_features),
        seed: judging.seed,
        ..InterpretOptions::default()
    };
    let mut begun = false;
    let scores = interpret_features(set, &mut judge, &options, &mut |done, total| {
        if !begun {
            reporter.begin("features: judged", "", total as u64, 0);
            begun = true;
        }
        reporter.advance(done as u64, "")
    })
    .context("scoring interpretability")?;
    if begun {
        reporter.end();
    }
    Ok((judge.id(), scores, judge.hits, judge.misses))
}

struct Common<'a> {
    run_id: &'a str,
    model: &'a str,
    hook: &'a str,
    layer: Option<u32>,
}

impl Common<'_> {
    fn columns(&self, n: usize) -> Vec<(String, ArrayRef)> {
        vec![
            ("run_id".into(), Arc::new(StringArray::from_iter_values(std::iter::repeat_n(self.run_id, n)))),
            ("model".into(), Arc::new(StringArray::from_iter_values(std::iter::repeat_n(self.model, n)))),
            ("hook".into(), Arc::new(StringArray::from_iter_values(std::iter::repeat_n(self.hook, n)))),
            ("layer".into(), Arc::new(UInt32Array::from(vec![self.layer; n]))),
        ]
    }
}

fn feature_columns(
    common: &Common,
    set: &FeatureSet,
    scores: &[FeatureInterpretation],
) -> Vec<(String, ArrayRef)> {
    let n = set.samples.len();
    let mut by_feature: Vec<Option<&FeatureInterpretation>> = vec![None; n];
    for s in scores {
        by_feature[s.feature] = Some(s);
    }
    let mut columns = common.columns(n);
    columns.extend([
        (
            "architecture".to_string(),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(set.architecture.name(), n)))
                as ArrayRef,
        ),
        ("feature".into(), Arc::new(UInt32Array::from_iter_values(0..n as u32))),
        ("density".into(), Arc::new(Float64Array::from_iter_values((0..n).map(|j| set.density(j))))),
        ("class".into(), Arc::new(StringArray::from_iter_values((0..n).map(|j| set.class(j))))),
        ("active_tokens".into(), Arc::new(UInt64Array::from(set.active.clone()))),
        ("assigned_tokens".into(), Arc::new(UInt64Array::from(set.assigned.clone()))),
        (
            "samples".into(),
            Arc::new(UInt32Array::from_iter_values(set.samples.iter().map(|s| s.len() as u32))),
        ),
        (
            "explanation".into(),
            Arc::new(StringArray::from(
                by_feature.iter().map(|s| s.map(|s| s.explanation.clone())).collect::<Vec<_>>(),
            )),
        ),
        (
            "judged".into(),
            Arc::new(UInt32Array::from(
                by_feature.iter().map(|s| s.map(|s| s.verdicts.len() as u32)).collect::<Vec<_>>(),
            )),
        ),
        (
            "score".into(),
            Arc::new(Float64Array::from(by_feature.iter().map(|s| s.map(|s| s.score)).collect::<Vec<_>>())),
        ),
    ]);
    columns
}

fn sample_columns(
    common: &Common,
    set: &FeatureSet,
    scores: &[FeatureInterpretation],
    explain_samples: usize,
) -> Vec<(String, ArrayRef)> {
    // Per feature: the tokens handed to it ("assigned", corpus order), then its
    // highest-scoring tokens ("top", best first).
    let mut rows: Vec<(usize, &'static str, usize, &FeatureSample)> = Vec::new();
    for j in 0..set.samples.len() {
        rows.extend(set.samples[j].iter().enumerate().map(|(i, s)| (j, "assigned", i, s)));
        rows.extend(set.top[j].iter().enumerate().map(|(i, s)| (j, "top", i, s)));
    }
    let scored: std::collections::HashMap<usize, &FeatureInterpretation> =
        scores.iter().map(|s| (s.feature, s)).collect();
    let n = rows.len();
    let token = |r: &(usize, &str, usize, &FeatureSample)| &set.tokens[r.3.token];
    // The judge's use of an assigned sample: explain, judge (with its verdict), or none.
    let usage =
        |&(j, list, i, _): &(usize, &str, usize, &FeatureSample)| -> (Option<&'static str>, Option<bool>) {
            let Some(s) = scored.get(&j).filter(|_| list == "assigned") else { return (None, None) };
            if i < explain_samples {
                (Some("explain"), None)
            } else {
                match s.verdicts.get(i - explain_samples) {
                    Some(&v) => (Some("judge"), Some(v)),
                    None => (None, None),
                }
            }
        };
    let mut columns = common.columns(n);
    columns.extend([
        (
            "feature".to_string(),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.0 as u32))) as ArrayRef,
        ),
        ("list".into(), Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)))),
        ("sample".into(), Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.2 as u32)))),
        ("doc".into(), Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| token(r).doc)))),
        ("position".into(), Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| token(r).position)))),
        (
            "token".into(),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| token(r).token.as_str()))),
        ),
        (
            "before".into(),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| token(r).before.as_str()))),
        ),
        (
            "after".into(),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| token(r).after.as_str()))),
        ),
        ("score".into(), Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| f64::from(r.3.score))))),
        ("role".into(), Arc::new(StringArray::from(rows.iter().map(|r| usage(r).0).collect::<Vec<_>>()))),
        ("verdict".into(), Arc::new(BooleanArray::from(rows.iter().map(|r| usage(r).1).collect::<Vec<_>>()))),
    ]);
    columns
}
