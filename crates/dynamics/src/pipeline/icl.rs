//! The ICL stage: entropy at the last prompt token and accuracy on the label, swept
//! over the number of in-context demonstrations, as a long Parquet table (`bae icl`, and
//! `bae run`'s `[icl]` table, one table per task).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use serde::{Deserialize, Serialize};

use super::measurement::{self, AutoencoderSelection, TableMetadata};
use super::Reporter;
use crate::error::Result;
use crate::input::model::ModelSpec;
use crate::input::provenance;
use crate::measure::icl::{measure_icl, plan, IclOptions, IclResult, Task};
use crate::measure::HookGate;

/// The sweep: the `[icl]` table, and `bae icl`'s flags.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IclConfig {
    /// Task files (JSONL with a .toml template beside each); `bae run` writes one table
    /// per task, and none skips the stage.
    pub tasks: Vec<PathBuf>,
    /// Numbers of demonstrations to sweep [default: 0, 1, 2, 4, 8, 16].
    pub demos: Vec<usize>,
    /// Prompts per number of demonstrations, the same queries at every k [default: 64].
    pub samples: usize,
    /// Seed of the queries and demonstrations [default: 42].
    pub seed: u64,
    /// Prompts per forward pass [default: 8].
    pub batch: usize,
    /// Add the tokenizer's special tokens (BOS where it adds one) [default: true].
    pub special_tokens: bool,
}

impl Default for IclConfig {
    fn default() -> Self {
        Self {
            tasks: Vec::new(),
            demos: vec![0, 1, 2, 4, 8, 16],
            samples: 64,
            seed: 42,
            batch: measurement::DEFAULT_PROMPT_BATCH,
            special_tokens: true,
        }
    }
}

impl IclConfig {
    /// Settings out of range, refused before any work (`bae run` checks them before its
    /// harvest).
    pub fn validate(&self) -> Result<()> {
        if self.demos.is_empty() || self.samples == 0 {
            return Err(crate::error::input_error(
                "--demos needs at least one value and --samples at least 1",
            ));
        }
        if self.batch == 0 {
            return Err(crate::error::input_error("--batch must be at least 1"));
        }
        Ok(())
    }
}

/// What one task's sweep reads and writes besides the config.
pub struct IclJob<'a> {
    /// The model.
    pub model: &'a ModelSpec,
    /// The autoencoders read.
    pub autoencoders: &'a AutoencoderSelection,
    /// The task, with its template.
    pub task: &'a Task,
    /// The Parquet file to write (under a temporary name, renamed when complete).
    pub out: &'a Path,
    /// The table's `run_id` [default: the output file's stem].
    pub run_id: Option<&'a str>,
}

/// Sweeps one task as `config` says and writes its table.
pub fn icl_stage(job: &IclJob, config: &IclConfig, reporter: &mut dyn Reporter) -> Result<()> {
    config.validate()?;
    let baes = job.autoencoders.open()?;
    let gates = baes.gates(job.autoencoders.max_fvu);
    measurement::report_gates(&gates, reporter);
    let task = job.task;
    let sweep = plan(task.examples.len(), &config.demos, config.samples, config.seed)?;
    let model = job.model.load()?;
    let total = config.demos.len() * config.samples;
    let options = IclOptions { special_tokens: config.special_tokens, batch: config.batch };
    reporter.begin("icl prompts", "", total as u64, 0);
    let result =
        measure_icl(&model, &baes, task, &sweep, options, &mut |done, _| reporter.advance(done as u64, ""))?;
    reporter.end();
    let run_id = measurement::run_id(job.run_id, job.out);
    let recorded = serde_json::json!({
        "command": "icl",
        "baes": baes.describe(),
        "task": {"path": task.path, "sha256": task.sha256, "examples": task.examples.len(), "template": task.template},
        "demos": config.demos, "samples": config.samples, "seed": config.seed,
        "special_tokens": config.special_tokens, "batch": config.batch,
    });
    let identity = provenance::describe(&model, &job.model.model)?;
    measurement::write_measurement(
        job.out,
        &crate::tables::icl(),
        &TableMetadata { run_id: &run_id, model: &identity, config: &recorded, gates: &gates },
        columns(&run_id, &job.model.model, &task.template.name, &result, &gates),
    )?;
    for k in &config.demos {
        if let Some(a) = result.aggregates.iter().find(|a| a.k == *k) {
            reporter.say(&format!(
                "k = {k:>2}: accuracy {:.3}, mean label log-prob {:.3}",
                a.accuracy, a.label_logprob
            ));
        }
    }
    reporter.say(&format!(
        "wrote {} rows to {}",
        result.aggregates.len() + result.samples.len(),
        job.out.display()
    ));
    Ok(())
}

/// `k` nulls.
fn nones<T: Clone>(k: usize) -> std::iter::RepeatN<Option<T>> {
    std::iter::repeat_n(None, k)
}

/// The table's columns: `aggregate` rows (per k and hook, with the hook's gate) then
/// `sample` rows (per k and prompt), null where a column does not apply (docs/formats/tables.md).
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
