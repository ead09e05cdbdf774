//! The compare stage: BAEs and SAE baselines trained on the same activations, measured
//! the same way — reconstruction, sparsity, dead/dense counts and density histogram on
//! the validation split, fidelity inside the model, feature densities and
//! interpretability on a corpus — in one table (`bae compare`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use bae_train::bae::EpochMetrics;
use bae_train::checkpoint::CHECKPOINT_FILE;
use bae_train::metrics::DENSITY_BIN_LABELS;
use serde::{Deserialize, Serialize};

use super::features::{features_stage, FeaturesConfig, FeaturesJob, FeaturesSummary, JUDGE_CACHE_FILE};
use super::measurement::{self, PromptSet, TableMetadata};
use super::train::train_stage;
use super::{Reporter, RunConfig};
use crate::error::{input_error, Result};
use crate::input::corpus::{CorpusFormat, DEFAULT_TEXT_FIELD};
use crate::input::model::ModelSpec;
use crate::input::provenance;
use crate::measure::entropy::tokenize;
use crate::measure::fidelity::{fidelity, Fidelity};
use crate::measure::AutoencoderSet;

/// The table's file name in the output folder.
pub const COMPARE_FILE: &str = "compare.parquet";

/// What is compared and on what.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    /// The activation store every autoencoder trains on.
    pub acts: PathBuf,
    /// The store's hook point.
    pub hook: String,
    /// Training configs (each a TOML with a `[train]` table, e.g.
    /// configs/train-bae.toml); each run is named by its file stem. Their `acts`, `hook`
    /// and `out` give way to the compare's.
    pub configs: Vec<PathBuf>,
    /// Held-out prompts for fidelity: text (one per line), JSONL or Parquet.
    pub prompts: PathBuf,
    /// Format of the prompts (and the corpus) [default: from the extension].
    #[serde(default)]
    pub format: Option<CorpusFormat>,
    /// The JSONL field or Parquet column holding the text [default: text].
    #[serde(default = "text_field")]
    pub field: String,
    /// Use at most this many held-out prompts for fidelity [default: 64].
    #[serde(default = "default_max_prompts")]
    pub max_prompts: usize,
    /// Text for feature densities and interpretability [default: the prompts].
    #[serde(default)]
    pub corpus: Option<PathBuf>,
    /// How each autoencoder's features are sampled and scored (its judge cache
    /// defaults to judgements.jsonl in the output folder, shared by every autoencoder).
    #[serde(default)]
    pub features: FeaturesConfig,
}

fn text_field() -> String {
    DEFAULT_TEXT_FIELD.into()
}

/// Held-out prompts for fidelity when the config names no number.
pub const DEFAULT_MAX_PROMPTS: usize = 64;

fn default_max_prompts() -> usize {
    DEFAULT_MAX_PROMPTS
}

/// What the compare stage reads and writes besides its config.
pub struct CompareJob<'a> {
    /// The model.
    pub model: &'a ModelSpec,
    /// Output folder: one training run and one features folder per config, and
    /// compare.parquet. Finished runs are reused, so a killed compare continues.
    pub out: &'a Path,
}

/// One compared autoencoder.
pub struct Row {
    name: String,
    architecture: String,
    d_hidden: usize,
    val: EpochMetrics,
    fidelity: Fidelity,
    features: FeaturesSummary,
}

/// Trains, measures and tabulates every config; returns the rows (for
/// [`markdown`]).
pub fn compare_stage(
    job: &CompareJob,
    config: &CompareConfig,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Row>> {
    config.features.validate()?;
    let mut names = std::collections::HashSet::new();
    let mut trainings = Vec::new();
    for path in &config.configs {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if !names.insert(name.clone()) {
            return Err(input_error(format!(
                "--configs: two configs are named {name:?}; runs are named by file stem"
            )));
        }
        // The config's own acts, hook and out (configs/train-*.toml set them for `bae
        // train`) give way to the compare's.
        let mut train = RunConfig::read(path)?.train;
        train.acts = Some(config.acts.clone());
        train.hook = Some(config.hook.clone());
        train.out = Some(job.out.join(&name).join("bae"));
        trainings.push((name, train));
    }
    let model = job.model.load()?;
    let fidelity_set = PromptSet {
        path: config.prompts.clone(),
        format: config.format,
        field: config.field.clone(),
        max_prompts: Some(config.max_prompts),
    };
    let prompts = fidelity_set.read()?;
    let ids = tokenize(&model, &prompts.texts, true)?;
    let corpus = PromptSet {
        path: config.corpus.clone().unwrap_or_else(|| config.prompts.clone()),
        ..fidelity_set.clone()
    };
    // One cache for every autoencoder unless one is named: an explanation prompt is only
    // shared when the samples are, so nothing is confused, and a rerun of the whole
    // compare is free.
    let mut features = config.features.clone();
    features.judging.cache = Some(features.judging.cache.unwrap_or_else(|| job.out.join(JUDGE_CACHE_FILE)));
    let mut rows = Vec::new();
    for (name, train) in trainings {
        reporter.say(&format!("== {name}"));
        let dir = train.out.clone().expect("set above");
        let val = train_stage(train, dir.join(CHECKPOINT_FILE).is_file(), reporter)?
            .ok_or_else(|| input_error(format!("{name}: training produced no validation metrics")))?;
        let baes = AutoencoderSet::open(&dir)?;
        baes.check_model(model.config())?;
        let bae = &baes.autoencoders[0];
        let fid = fidelity(&model, bae, &ids)?;
        reporter.say(&format!(
            "{name}: fidelity KL {:.4}, JS {:.4}, CE recovered {:.3}",
            fid.kl, fid.js, fid.ce_recovered
        ));
        let features_job = FeaturesJob {
            model: &model,
            model_spec: &job.model.model,
            bae: &dir,
            hook: None,
            corpus: &corpus,
            out: &job.out.join(&name).join("features"),
            run_id: Some(&name),
        };
        let summary = features_stage(&features_job, &features, reporter)?;
        rows.push(Row {
            name,
            architecture: bae.autoencoder.architecture.name().to_string(),
            d_hidden: bae.autoencoder.d_hidden,
            val,
            fidelity: fid,
            features: summary,
        });
    }
    let run_id = measurement::folder_run_id(job.out, "compare");
    let identity = provenance::describe(&model, &job.model.model)?;
    let recorded = serde_json::json!({
        "command": "compare",
        "acts": config.acts,
        "hook": config.hook,
        "configs": config.configs,
        "prompts": {"path": config.prompts, "sha256": prompts.corpus.sha256(), "format": prompts.format.name(), "count": prompts.texts.len()},
        "corpus": corpus.path,
        "max_docs": config.features.max_docs,
        "judge": format!("{:?}", config.features.judging.judge),
        "score_features": config.features.judging.score_features,
        "seed": config.features.judging.seed,
    });
    let table = job.out.join(COMPARE_FILE);
    measurement::write_measurement(
        &table,
        &crate::tables::compare(),
        // The table carries every autoencoder's own FVU, dead and dense counts.
        &TableMetadata { run_id: &run_id, model: &identity, config: &recorded, gates: &[] },
        columns(job, config, &run_id, &rows),
    )?;
    reporter.say(&format!("wrote {}", table.display()));
    Ok(rows)
}

fn columns(job: &CompareJob, config: &CompareConfig, run_id: &str, rows: &[Row]) -> Vec<(String, ArrayRef)> {
    let n = rows.len();
    let strs = |f: &dyn Fn(&Row) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let f64s = |f: &dyn Fn(&Row) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let u32s = |f: &dyn Fn(&Row) -> usize| -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| f(r) as u32)))
    };
    let layer = config.hook.parse::<bae_lm::HookPoint>().ok().and_then(|h| h.layer()).map(|l| l as u32);
    let mut columns: Vec<(String, ArrayRef)> = vec![
        ("run_id".into(), strs(&|_| run_id.to_string())),
        ("model".into(), strs(&|_| job.model.model.clone())),
        ("hook".into(), strs(&|_| config.hook.clone())),
        ("layer".into(), Arc::new(UInt32Array::from(vec![layer; n]))),
        ("config".into(), strs(&|r| r.name.clone())),
        ("architecture".into(), strs(&|r| r.architecture.clone())),
        ("d_hidden".into(), u32s(&|r| r.d_hidden)),
        ("epochs".into(), u32s(&|r| r.val.epoch + 1)),
        ("fvu".into(), f64s(&|r| r.val.fvu)),
        ("mse".into(), f64s(&|r| r.val.mse)),
        ("l0".into(), f64s(&|r| r.val.codes.l0)),
        ("entropy_bits".into(), f64s(&|r| r.val.codes.entropy_bits)),
        ("dead".into(), u32s(&|r| r.val.codes.dead)),
        ("dense".into(), u32s(&|r| r.val.codes.dense)),
    ];
    for (i, label) in DENSITY_BIN_LABELS.iter().enumerate() {
        columns.push((format!("density_{label}"), u32s(&move |r: &Row| r.val.codes.density_histogram[i])));
    }
    columns.extend([
        ("kl".to_string(), f64s(&|r| r.fidelity.kl)),
        ("js".into(), f64s(&|r| r.fidelity.js)),
        ("ce_recovered".into(), f64s(&|r| r.fidelity.ce_recovered)),
        (
            "corpus_tokens".into(),
            Arc::new(arrow::array::UInt64Array::from_iter_values(rows.iter().map(|r| r.features.tokens)))
                as ArrayRef,
        ),
        ("corpus_dead".into(), u32s(&|r| r.features.dead)),
        ("corpus_dense".into(), u32s(&|r| r.features.dense)),
        ("scored_features".into(), u32s(&|r| r.features.scored)),
        (
            "interpretability".into(),
            Arc::new(Float64Array::from(rows.iter().map(|r| r.features.mean_score).collect::<Vec<_>>())),
        ),
        (
            "judge".into(),
            Arc::new(StringArray::from(rows.iter().map(|r| r.features.judge.clone()).collect::<Vec<_>>())),
        ),
    ]);
    columns
}

/// The summary as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut text = String::from(
        "| config | architecture | FVU | L0 | entropy (bits) | dead | dense | density ≤ 1e-3 / > 0.5 | KL | CE recovered | interpretability |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let h = &r.val.codes.density_histogram;
        text.push_str(&format!(
            "| {} | {} | {:.3} | {:.1} | {:.1} | {} | {} | {} / {} | {:.3} | {:.3} | {} |\n",
            r.name,
            r.architecture,
            r.val.fvu,
            r.val.codes.l0,
            r.val.codes.entropy_bits,
            r.val.codes.dead,
            r.val.codes.dense,
            h[0] + h[1] + h[2],
            h[6] + h[7] + h[8],
            r.fidelity.kl,
            r.fidelity.ce_recovered,
            r.features
                .mean_score
                .map(|m| format!("{m:.2} ({} features)", r.features.scored))
                .unwrap_or_else(|| "–".into()),
        ));
    }
    text
}
