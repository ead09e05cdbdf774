//! `bae compare`: BAEs and SAE baselines trained on the same activations, measured the
//! same way — reconstruction, sparsity, dead/dense counts and density histogram on the
//! validation split, fidelity inside the model, feature densities and interpretability
//! on a corpus — in one table, printed as Markdown and written as Parquet.

use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use bae_dynamics::entropy::measure::tokenize;
use bae_dynamics::entropy::BaeSet;
use bae_dynamics::fidelity::{fidelity, Fidelity};
use bae_dynamics::model_identity;
use bae_train::bae::EpochMetrics;
use bae_train::checkpoint::CHECKPOINT_FILE;
use bae_train::metrics::DENSITY_BIN_LABELS;

use super::features::{features, FeaturesSummary};
use super::measurement;
use crate::cli::compare::CompareArgs;
use crate::cli::features::{FeaturesArgs, JudgeArgs};
use crate::model_args::load_model;

/// The table's file name in the output folder.
pub const COMPARE_FILE: &str = "compare.parquet";

struct Row {
    name: String,
    architecture: String,
    d_hidden: usize,
    val: EpochMetrics,
    fidelity: Fidelity,
    features: FeaturesSummary,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let mut names = std::collections::HashSet::new();
    let mut configs = Vec::new();
    for path in &args.configs {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if !names.insert(name.clone()) {
            bail!("--configs: two configs are named {name:?}; runs are named by file stem");
        }
        // The config's own acts, hook and out (configs/train-*.toml set them for `bae
        // train`) give way to the compare's.
        let mut train = crate::run_config::read(path)?.train;
        train.acts = Some(args.acts.clone());
        train.hook = Some(args.hook.clone());
        train.out = Some(args.out.join(&name).join("bae"));
        configs.push((name, train));
    }
    let model = load_model(&args.model)?;
    let (corpus, format, prompts) =
        measurement::read_prompts(&args.prompts, args.format, &args.field, Some(args.max_prompts))?;
    let ids = tokenize(&model, &prompts, true)?;
    let mut rows = Vec::new();
    for (name, train) in configs {
        eprintln!("== {name}");
        let dir = train.out.clone().expect("set above");
        let val = crate::commands::train::train(train, dir.join(CHECKPOINT_FILE).is_file())?
            .with_context(|| format!("{name}: training produced no validation metrics"))?;
        let baes = BaeSet::open(&dir)?;
        baes.check_model(model.config())?;
        let bae = &baes.baes[0];
        let fid = fidelity(&model, bae, &ids)?;
        eprintln!(
            "{name}: fidelity KL {:.4}, JS {:.4}, CE recovered {:.3}",
            fid.kl, fid.js, fid.ce_recovered
        );
        let summary = features(&features_args(args, &name, &dir), &model)?;
        rows.push(Row {
            name,
            architecture: bae.autoencoder.architecture.name().to_string(),
            d_hidden: bae.autoencoder.d_hidden,
            val,
            fidelity: fid,
            features: summary,
        });
    }
    let run_id = measurement::folder_run_id(&args.out, "compare");
    let identity = model_identity::describe(&model, &args.model.model)?;
    let config = serde_json::json!({
        "command": "compare",
        "acts": args.acts,
        "hook": args.hook,
        "configs": args.configs,
        "prompts": {"path": args.prompts, "sha256": corpus.sha256(), "format": format.name(), "count": prompts.len()},
        "corpus": args.corpus.as_ref().unwrap_or(&args.prompts),
        "max_docs": args.max_docs,
        "judge": format!("{:?}", args.judging.judge),
        "score_features": args.judging.score_features,
        "seed": args.judging.seed,
    });
    measurement::write(
        &args.out.join(COMPARE_FILE),
        &bae_dynamics::tables::compare(),
        &run_id,
        &identity,
        &config,
        // The table carries every autoencoder's own FVU, dead and dense counts.
        &[],
        columns(args, &run_id, &rows),
    )?;
    crate::output::print(&markdown(&rows))?;
    eprintln!("wrote {}", args.out.join(COMPARE_FILE).display());
    Ok(())
}

fn features_args(args: &CompareArgs, name: &str, bae: &std::path::Path) -> FeaturesArgs {
    FeaturesArgs {
        model: args.model.clone(),
        bae: bae.to_path_buf(),
        hook: None,
        corpus: args.corpus.clone().unwrap_or_else(|| args.prompts.clone()),
        format: args.format,
        field: args.field.clone(),
        max_docs: args.max_docs,
        max_tokens: 128,
        no_bos: false,
        top_features: 10,
        samples: 20,
        top_samples: 10,
        // One cache for every autoencoder unless one is named: an explanation prompt is
        // only shared when the samples are, so nothing is confused, and a rerun of the
        // whole compare is free.
        judging: JudgeArgs {
            judge_cache: Some(
                args.judging.judge_cache.clone().unwrap_or_else(|| args.out.join("judgements.jsonl")),
            ),
            ..args.judging.clone()
        },
        run_id: Some(name.to_string()),
        out: args.out.join(name).join("features"),
    }
}

fn columns(args: &CompareArgs, run_id: &str, rows: &[Row]) -> Vec<(String, ArrayRef)> {
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
    let layer = args.hook.parse::<bae_lm::HookPoint>().ok().and_then(|h| h.layer()).map(|l| l as u32);
    let mut columns: Vec<(String, ArrayRef)> = vec![
        ("run_id".into(), strs(&|_| run_id.to_string())),
        ("model".into(), strs(&|_| args.model.model.clone())),
        ("hook".into(), strs(&|_| args.hook.clone())),
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
fn markdown(rows: &[Row]) -> String {
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
