//! `bae entropy`: feature-set entropy per hook point and token position over a prompt
//! set, through trained BAEs, as a long Parquet table.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};
use bae_dynamics::entropy::{measure_prompts, EntropyOptions, EntropyRow};
use bae_dynamics::model_identity;

use super::measurement::{self, PromptProgress};
use crate::cli::EntropyArgs;
use crate::model_args::load_model;

/// The table's columns, in order (documented in README "Output tables").
pub fn columns(run_id: &str, model: &str, rows: &[EntropyRow]) -> Vec<(String, ArrayRef)> {
    let opt_u32 = |f: &dyn Fn(&EntropyRow) -> Option<usize>| -> ArrayRef {
        Arc::new(UInt32Array::from(rows.iter().map(|r| f(r).map(|v| v as u32)).collect::<Vec<_>>()))
    };
    let f64s = |f: &dyn Fn(&EntropyRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let strings = |f: &dyn Fn(&EntropyRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    vec![
        ("run_id".into(), strings(&|_| run_id.to_string())),
        ("model".into(), strings(&|_| model.to_string())),
        ("hook".into(), strings(&|r| r.hook.clone())),
        ("layer".into(), opt_u32(&|r| r.layer)),
        ("scope".into(), strings(&|r| r.scope.to_string())),
        ("position".into(), opt_u32(&|r| r.position)),
        ("prompt".into(), opt_u32(&|r| r.prompt)),
        ("samples".into(), Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.samples)))),
        ("entropy_bits".into(), f64s(&|r| r.entropy_bits)),
        ("bits_per_feature".into(), f64s(&|r| r.bits_per_feature)),
        ("active_fraction".into(), f64s(&|r| r.active_fraction)),
    ]
}

pub fn run(args: &EntropyArgs) -> anyhow::Result<()> {
    let baes = measurement::open_selection(&args.baes)?;
    let (corpus, format, prompts) = measurement::read_prompt_set(&args.prompts)?;
    let model = load_model(&args.model)?;
    let options =
        EntropyOptions { special_tokens: !args.no_bos, batch: args.batch, per_prompt: args.per_prompt };
    let mut progress = PromptProgress::new("entropy prompts", prompts.len());
    let rows = measure_prompts(&model, &baes, &prompts, options, &mut |done| progress.update(done))?;
    progress.finish();
    let run_id = measurement::run_id(&args.run_id, &args.out);
    let identity = model_identity::describe(&model, &args.model.model)?;
    let config = serde_json::json!({
        "command": "entropy",
        "baes": baes.describe(),
        "prompts": {"path": args.prompts.prompts, "sha256": corpus.sha256(), "format": format.name(), "field": corpus.field(), "count": prompts.len()},
        "special_tokens": !args.no_bos, "batch": args.batch, "per_prompt": args.per_prompt,
    });
    measurement::write(
        &args.out,
        "bae.entropy.v1",
        &run_id,
        &identity,
        &config,
        columns(&run_id, &args.model.model, &rows),
    )?;
    eprintln!(
        "wrote {} rows ({} hook points, {} prompts) to {}",
        rows.len(),
        baes.baes.len(),
        prompts.len(),
        args.out.display()
    );
    Ok(())
}
