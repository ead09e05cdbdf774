//! `bae icl`: entropy at the last prompt token and accuracy on the label, swept over
//! the number of in-context demonstrations, as a long Parquet table.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use bae_dynamics::entropy::HookGate;
use bae_dynamics::icl::{measure_icl, plan, IclOptions, IclResult, Task};
use bae_dynamics::model_identity;

use super::measurement;
use crate::cli::IclArgs;
use crate::model_args::load_model;
use crate::output::ProgressDisplay;

/// `k` nulls.
fn nones<T: Clone>(k: usize) -> std::iter::RepeatN<Option<T>> {
    std::iter::repeat_n(None, k)
}

/// The table's columns: `aggregate` rows (per k and hook, with the hook's gate) then
/// `sample` rows (per k and prompt), null where a column does not apply (README
/// "Output tables").
fn columns(
    run_id: &str,
    model: &str,
    task: &str,
    r: &IclResult,
    gates: &[HookGate],
) -> Vec<(String, ArrayRef)> {
    let (a, s) = (&r.aggregates, &r.samples);
    let n = a.len() + s.len();
    let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))) };
    let u32s = |x: Vec<Option<usize>>| -> ArrayRef {
        Arc::new(UInt32Array::from(x.into_iter().map(|v| v.map(|v| v as u32)).collect::<Vec<_>>()))
    };
    let f64s = |x: Vec<Option<f64>>| -> ArrayRef { Arc::new(Float64Array::from(x)) };
    let hooks: Vec<Option<String>> = a.iter().map(|x| Some(x.hook.clone())).chain(nones(s.len())).collect();
    let mut columns: Vec<(String, ArrayRef)> = vec![
        ("run_id".into(), text(run_id)),
        ("model".into(), text(model)),
        ("task".into(), text(task)),
        (
            "scope".into(),
            Arc::new(StringArray::from_iter_values(
                std::iter::repeat_n("aggregate", a.len()).chain(std::iter::repeat_n("sample", s.len())),
            )),
        ),
        ("demos".into(), u32s(a.iter().map(|x| Some(x.k)).chain(s.iter().map(|x| Some(x.k))).collect())),
        ("hook".into(), Arc::new(StringArray::from(hooks.clone()))),
        ("layer".into(), u32s(a.iter().map(|x| x.layer).chain(nones(s.len())).collect())),
    ];
    columns.extend(measurement::state_columns(
        &a.iter().map(|x| Some(x.states)).chain(s.iter().map(|_| Some(1))).collect::<Vec<_>>(),
    ));
    columns.extend(vec![
        ("entropy_bits".into(), f64s(a.iter().map(|x| Some(x.entropy_bits)).chain(nones(s.len())).collect())),
        (
            "bits_per_feature".into(),
            f64s(a.iter().map(|x| Some(x.bits_per_feature)).chain(nones(s.len())).collect()),
        ),
        (
            "active_fraction".into(),
            f64s(a.iter().map(|x| Some(x.active_fraction)).chain(nones(s.len())).collect()),
        ),
        (
            "accuracy".into(),
            f64s(
                a.iter()
                    .map(|x| Some(x.accuracy))
                    .chain(s.iter().map(|x| Some(f64::from(u8::from(x.correct)))))
                    .collect(),
            ),
        ),
        (
            "label_logprob".into(),
            f64s(
                a.iter()
                    .map(|x| Some(x.label_logprob))
                    .chain(s.iter().map(|x| Some(x.label_logprob)))
                    .collect(),
            ),
        ),
        ("sample".into(), u32s(nones(a.len()).chain(s.iter().map(|x| Some(x.sample))).collect())),
        ("query".into(), u32s(nones(a.len()).chain(s.iter().map(|x| Some(x.query))).collect())),
        (
            "demo_indices".into(),
            Arc::new(StringArray::from(
                nones(a.len())
                    .chain(
                        s.iter().map(|x| {
                            Some(x.demos.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
                        }),
                    )
                    .collect::<Vec<Option<String>>>(),
            )),
        ),
        (
            "prompt_tokens".into(),
            u32s(nones(a.len()).chain(s.iter().map(|x| Some(x.prompt_tokens))).collect()),
        ),
    ]);
    columns.extend(measurement::gate_columns(&hooks, gates));
    columns
}

pub fn run(args: &IclArgs) -> anyhow::Result<()> {
    let baes = measurement::open_selection(&args.baes)?;
    let gates = baes.gates(args.baes.max_fvu);
    measurement::report_gates(&gates);
    let task = Task::load(&args.task, args.template.as_deref())?;
    let sweep = plan(task.examples.len(), &args.demos, args.samples, args.seed)?;
    let model = load_model(&args.model)?;
    let total = args.demos.len() * args.samples;
    let options = IclOptions { special_tokens: !args.no_bos, batch: args.batch };
    let mut progress = ProgressDisplay::new("icl prompts", "", total as u64, 0);
    let result =
        measure_icl(&model, &baes, &task, &sweep, options, &mut |done, _| progress.update(done as u64, ""))?;
    progress.finish();
    let run_id = measurement::run_id(&args.run_id, &args.out);
    let config = serde_json::json!({
        "command": "icl",
        "baes": baes.describe(),
        "task": {"path": task.path, "sha256": task.sha256, "examples": task.examples.len(), "template": task.template},
        "demos": args.demos, "samples": args.samples, "seed": args.seed,
        "special_tokens": !args.no_bos, "batch": args.batch,
    });
    let identity = model_identity::describe(&model, &args.model.model)?;
    let columns = columns(&run_id, &args.model.model, &task.template.name, &result, &gates);
    measurement::write(
        &args.out,
        &bae_dynamics::tables::icl(),
        &run_id,
        &identity,
        &config,
        &gates,
        columns,
    )?;
    for k in &args.demos {
        if let Some(a) = result.aggregates.iter().find(|a| a.k == *k) {
            eprintln!("k = {k:>2}: accuracy {:.3}, mean label log-prob {:.3}", a.accuracy, a.label_logprob);
        }
    }
    eprintln!("wrote {} rows to {}", result.aggregates.len() + result.samples.len(), args.out.display());
    Ok(())
}
