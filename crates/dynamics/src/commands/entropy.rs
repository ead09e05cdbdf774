//! `bae entropy`: feature-set entropy per hook point and token position over a prompt
//! set, through trained BAEs, as a long Parquet table.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use bae_dynamics::entropy::{measure_prompts, EntropyOptions, EntropyRow, HookGate};
use bae_dynamics::model_identity;

use super::measurement;
use crate::cli::EntropyArgs;
use crate::model_args::load_model;
use crate::output::ProgressDisplay;

/// The table's columns, in order (documented in README "Output tables"), each row with
/// its hook's gate.
pub fn columns(
    run_id: &str,
    model: &str,
    rows: &[EntropyRow],
    gates: &[HookGate],
) -> Vec<(String, ArrayRef)> {
    let opt_u32 = |f: &dyn Fn(&EntropyRow) -> Option<usize>| -> ArrayRef {
        Arc::new(UInt32Array::from(rows.iter().map(|r| f(r).map(|v| v as u32)).collect::<Vec<_>>()))
    };
    let f64s = |f: &dyn Fn(&EntropyRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let strings = |f: &dyn Fn(&EntropyRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let mut columns = vec![
        ("run_id".into(), strings(&|_| run_id.to_string())),
        ("model".into(), strings(&|_| model.to_string())),
        ("hook".into(), strings(&|r| r.hook.clone())),
        ("layer".into(), opt_u32(&|r| r.layer)),
        ("scope".into(), strings(&|r| r.scope.to_string())),
        ("position".into(), opt_u32(&|r| r.position)),
        ("prompt".into(), opt_u32(&|r| r.prompt)),
    ];
    columns.extend(measurement::state_columns(&rows.iter().map(|r| Some(r.states)).collect::<Vec<_>>()));
    columns.extend([
        ("entropy_bits".into(), f64s(&|r| r.entropy_bits)),
        ("bits_per_feature".into(), f64s(&|r| r.bits_per_feature)),
        ("active_fraction".into(), f64s(&|r| r.active_fraction)),
    ]);
    columns.extend(measurement::gate_columns(
        &rows.iter().map(|r| Some(r.hook.clone())).collect::<Vec<_>>(),
        gates,
    ));
    columns
}

pub fn run(args: &EntropyArgs) -> anyhow::Result<()> {
    let baes = measurement::open_selection(&args.baes)?;
    let gates = baes.gates(args.baes.max_fvu);
    measurement::report_gates(&gates);
    let (corpus, format, prompts) = measurement::read_prompt_set(&args.prompts)?;
    let model = load_model(&args.model)?;
    let options = EntropyOptions {
        special_tokens: !args.no_bos,
        batch: args.batch,
        per_prompt: args.per_prompt,
        max_tokens: args.max_tokens,
    };
    let mut progress = ProgressDisplay::new("entropy prompts", "", prompts.len() as u64, 0);
    let rows =
        measure_prompts(&model, &baes, &prompts, options, &mut |done| progress.update(done as u64, ""))?;
    progress.finish();
    let run_id = measurement::run_id(&args.run_id, &args.out);
    let identity = model_identity::describe(&model, &args.model.model)?;
    let config = serde_json::json!({
        "command": "entropy",
        "baes": baes.describe(),
        "prompts": {"path": args.prompts.prompts, "sha256": corpus.sha256(), "format": format.name(), "field": corpus.field(), "count": prompts.len()},
        "special_tokens": !args.no_bos, "batch": args.batch, "per_prompt": args.per_prompt, "max_tokens": args.max_tokens,
        "max_fvu": args.baes.max_fvu,
    });
    measurement::write(
        &args.out,
        &bae_dynamics::tables::entropy(),
        &run_id,
        &identity,
        &config,
        &gates,
        columns(&run_id, &args.model.model, &rows, &gates),
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
