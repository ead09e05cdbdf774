//! `bae features`: tokens sampled per feature over a corpus, densities and dead/dense
//! counts, optional interpretability scores from an LLM judge, written as two Parquet
//! tables and a static HTML report.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use arrow::array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use bae_dynamics::features::judge::cache::CachedJudge;
use bae_dynamics::features::judge::endpoint::{EndpointConfig, EndpointJudge};
use bae_dynamics::features::judge::local::LocalJudge;
use bae_dynamics::features::judge::Judge;
use bae_dynamics::features::report::{render, ReportHeader};
use bae_dynamics::features::{
    collect_features, interpret_features, FeatureInterpretation, FeatureOptions, FeatureSample, FeatureSet,
    InterpretOptions,
};
use bae_dynamics::model_identity;
use bae_lm::Model;

use super::measurement;
use crate::cli::features::{FeaturesArgs, JudgeArg, JudgeArgs};
use crate::model_args::load_model;
use crate::output::ProgressDisplay;

/// The per-feature table's file name in the output folder.
pub const FEATURES_FILE: &str = "features.parquet";
/// The per-sample table's file name.
pub const SAMPLES_FILE: &str = "samples.parquet";
/// The HTML report's file name.
pub const REPORT_FILE: &str = "report.html";

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

pub fn run(args: &FeaturesArgs) -> anyhow::Result<()> {
    let model = load_model(&args.model)?;
    features(args, &model).map(|_| ())
}

/// Runs `bae features` with an already loaded model (as `bae compare` does for each
/// autoencoder).
pub fn features(args: &FeaturesArgs, model: &Model) -> anyhow::Result<FeaturesSummary> {
    let judging = &args.judging;
    let baes = measurement::open_baes(&args.bae, &args.hook)?;
    if baes.baes.len() != 1 {
        bail!(
            "{} holds {} autoencoders ({}); name one with --hook",
            args.bae.display(),
            baes.baes.len(),
            baes.baes.iter().map(|b| b.hook.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let bae = &baes.baes[0];
    baes.check_model(model.config())?;
    if judging.judge == JudgeArg::Endpoint && (judging.judge_url.is_none() || judging.judge_model.is_none()) {
        bail!("--judge endpoint needs --judge-url and --judge-model");
    }
    if judging.explain_samples == 0 || judging.judge_samples == 0 {
        bail!("--explain-samples and --judge-samples must be at least 1");
    }
    let (corpus, format, texts) =
        measurement::read_prompts(&args.corpus, args.format, &args.field, Some(args.max_docs))?;
    let tokenizer = model.tokenizer()?;
    let limit = args.max_tokens.min(model.config().max_position_embeddings);
    if limit == 0 {
        bail!("--max-tokens must be at least 1");
    }
    let mut docs = Vec::with_capacity(texts.len());
    for text in &texts {
        let mut ids = tokenizer.encode(text, !args.no_bos)?;
        ids.truncate(limit);
        if !ids.is_empty() {
            docs.push(ids);
        }
    }
    if docs.is_empty() {
        bail!("{}: no document has any tokens", args.corpus.display());
    }
    let options = FeatureOptions {
        top_features: args.top_features,
        samples_per_feature: args.samples,
        top_per_feature: args.top_samples,
        ..FeatureOptions::default()
    };
    let mut progress = ProgressDisplay::new("features: documents", "", docs.len() as u64, 0);
    let set = collect_features(model, bae, &docs, options, &mut |done| progress.update(done as u64, ""))?;
    progress.finish();

    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let identity = model_identity::describe(model, &args.model.model)?;
    let (judge_id, scores) = match judging.judge {
        JudgeArg::None => (None, Vec::new()),
        judge => {
            let cache = judging.judge_cache.clone().unwrap_or_else(|| args.out.join("judgements.jsonl"));
            let sha = identity["weights_sha256"].as_str().unwrap_or_default();
            let (id, scores, hits, calls) = match judge {
                JudgeArg::SelfModel => {
                    let id = format!("self:{}@{}", model_name(&args.model.model), &sha[..sha.len().min(12)]);
                    score(LocalJudge::new(model, id)?, &cache, &set, judging)?
                }
                _ => {
                    let mut config = EndpointConfig::new(
                        judging.judge_url.as_deref().unwrap_or_default(),
                        judging.judge_model.as_deref().unwrap_or_default(),
                        std::env::var(&judging.judge_key_env).ok().filter(|k| !k.is_empty()),
                    );
                    config.timeout = Duration::from_secs(judging.judge_timeout.max(1));
                    config.max_retries = judging.judge_retries;
                    score(EndpointJudge::new(config)?, &cache, &set, judging)?
                }
            };
            eprintln!(
                "judge {id}: {} features scored, {hits} answers from {}, {calls} calls",
                scores.len(),
                cache.display()
            );
            (Some(id), scores)
        }
    };

    let run_id = args.run_id.clone().unwrap_or_else(|| measurement::folder_run_id(&args.out, "features"));
    let config = serde_json::json!({
        "command": "features",
        "bae": baes.describe(),
        "corpus": {"path": args.corpus, "sha256": corpus.sha256(), "format": format.name(), "field": corpus.field(), "documents": docs.len()},
        "max_tokens": limit,
        "special_tokens": !args.no_bos,
        "top_features": args.top_features,
        "samples_per_feature": args.samples,
        "top_per_feature": args.top_samples,
        "judge": judge_id,
        "explain_samples": judging.explain_samples,
        "judge_samples": judging.judge_samples,
        "score_features": judging.score_features,
        "seed": judging.seed,
    });
    let hook = bae.hook.to_string();
    let common = Common {
        run_id: &run_id,
        model: &args.model.model,
        hook: &hook,
        layer: bae.hook.layer().map(|l| l as u32),
    };
    measurement::write(
        &args.out.join(FEATURES_FILE),
        &bae_dynamics::tables::features(),
        &run_id,
        &identity,
        &config,
        &baes.gates(bae_dynamics::entropy::DEFAULT_MAX_FVU),
        feature_columns(&common, &set, &scores),
    )?;
    measurement::write(
        &args.out.join(SAMPLES_FILE),
        &bae_dynamics::tables::feature_samples(),
        &run_id,
        &identity,
        &config,
        &baes.gates(bae_dynamics::entropy::DEFAULT_MAX_FVU),
        sample_columns(&common, &set, &scores, judging.explain_samples),
    )?;
    let header = ReportHeader {
        model: args.model.model.clone(),
        hook: hook.clone(),
        bae: bae.dir.display().to_string(),
        corpus: args.corpus.display().to_string(),
        judge: judge_id.clone(),
    };
    let html = render(&header, &set, &scores);
    crate::output::write_atomically(&args.out.join(REPORT_FILE), |tmp| {
        std::fs::write(tmp, &html).context("writing the report")
    })?;
    let features = set.samples.len();
    let mean_score =
        (!scores.is_empty()).then(|| scores.iter().map(|s| s.score).sum::<f64>() / scores.len() as f64);
    eprintln!(
        "{hook}: {} tokens, {features} features: {} dead, {} dense (> 0.5), {} live{}",
        set.tokens_seen,
        set.stats.dead,
        set.stats.dense,
        features - set.stats.dead - set.stats.dense,
        mean_score
            .map(|m| format!("; interpretability {m:.3} over {} features", scores.len()))
            .unwrap_or_default()
    );
    eprintln!("wrote {}", args.out.display());
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
    judging: &JudgeArgs,
) -> anyhow::Result<(String, Vec<FeatureInterpretation>, u64, u64)> {
    let mut judge = CachedJudge::open(judge, cache)?;
    let options = InterpretOptions {
        explain_samples: judging.explain_samples,
        judge_samples: judging.judge_samples,
        max_features: (judging.score_features > 0).then_some(judging.score_features),
        seed: judging.seed,
        ..InterpretOptions::default()
    };
    let mut progress: Option<ProgressDisplay> = None;
    let scores = interpret_features(set, &mut judge, &options, &mut |done, total| {
        progress
            .get_or_insert_with(|| ProgressDisplay::new("features: judged", "", total as u64, 0))
            .update(done as u64, "")
    })
    .context("scoring interpretability")?;
    if let Some(p) = &progress {
        p.finish();
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
