//! `bae fidelity`: each autoencoder's reconstruction spliced into the model, compared
//! with the clean run and zero ablation over held-out prompts; one row per hook point.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};
use bae_dynamics::entropy::measure::tokenize;
use bae_dynamics::fidelity::fidelity;
use bae_dynamics::model_identity;

use super::measurement;
use crate::cli::FidelityArgs;
use crate::model_args::load_model;
use crate::output::ProgressDisplay;

pub fn run(args: &FidelityArgs) -> anyhow::Result<()> {
    let baes = measurement::open_selection(&args.baes)?;
    let (corpus, format, prompts) = measurement::read_prompt_set(&args.prompts)?;
    let model = load_model(&args.model)?;
    baes.check_model(model.config())?;
    let ids = tokenize(&model, &prompts, !args.no_bos)?;
    let mut progress = ProgressDisplay::new("fidelity hook points", "", baes.baes.len() as u64, 0);
    let mut results = Vec::new();
    for (i, bae) in baes.baes.iter().enumerate() {
        results.push(fidelity(&model, bae, &ids)?);
        progress.update(i as u64 + 1, "");
    }
    progress.finish();
    let run_id = measurement::run_id(&args.run_id, &args.out);
    let n = results.len();
    let f64s =
        |f: &dyn Fn(usize) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values((0..n).map(f))) };
    let columns: Vec<(String, ArrayRef)> = vec![
        ("run_id".into(), Arc::new(StringArray::from_iter_values(std::iter::repeat_n(run_id.as_str(), n)))),
        (
            "model".into(),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(args.model.model.as_str(), n))),
        ),
        (
            "hook".into(),
            Arc::new(StringArray::from_iter_values(baes.baes.iter().map(|b| b.hook.to_string()))),
        ),
        (
            "layer".into(),
            Arc::new(UInt32Array::from(
                baes.baes.iter().map(|b| b.hook.layer().map(|l| l as u32)).collect::<Vec<_>>(),
            )),
        ),
        (
            "architecture".into(),
            Arc::new(StringArray::from_iter_values(
                baes.baes.iter().map(|b| b.autoencoder.architecture.name()),
            )),
        ),
        ("tokens".into(), Arc::new(UInt64Array::from_iter_values(results.iter().map(|r| r.tokens)))),
        ("kl".into(), f64s(&|i| results[i].kl)),
        ("js".into(), f64s(&|i| results[i].js)),
        ("ce_clean".into(), f64s(&|i| results[i].ce_clean)),
        ("ce_spliced".into(), f64s(&|i| results[i].ce_spliced)),
        ("ce_zero".into(), f64s(&|i| results[i].ce_zero)),
        ("ce_recovered".into(), f64s(&|i| results[i].ce_recovered)),
    ];
    let config = serde_json::json!({
        "command": "fidelity",
        "baes": baes.describe(),
        "prompts": {"path": args.prompts.prompts, "sha256": corpus.sha256(), "format": format.name(), "field": corpus.field(), "count": prompts.len()},
        "special_tokens": !args.no_bos,
    });
    let identity = model_identity::describe(&model, &args.model.model)?;
    let gates = baes.gates(args.baes.max_fvu);
    measurement::write(
        &args.out,
        &bae_dynamics::tables::fidelity(),
        &run_id,
        &identity,
        &config,
        &gates,
        columns,
    )?;
    for (b, r) in baes.baes.iter().zip(&results) {
        eprintln!(
            "{}: KL {:.4} nats, JS {:.4} nats, CE clean {:.3} / spliced {:.3} / zero {:.3}, recovered {:.3}",
            b.hook, r.kl, r.js, r.ce_clean, r.ce_spliced, r.ce_zero, r.ce_recovered
        );
    }
    eprintln!("wrote {} rows to {}", n, args.out.display());
    Ok(())
}
