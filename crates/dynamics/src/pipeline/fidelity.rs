//! The fidelity stage: each autoencoder's reconstruction spliced into the model,
//! compared with the clean run and zero ablation over held-out prompts; one row per
//! hook point (`bae fidelity`).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};
use serde::{Deserialize, Serialize};

use super::measurement::{self, MeasurementJob, PromptSet, TableMetadata};
use super::Reporter;
use crate::error::Result;
use crate::input::corpus::{CorpusFormat, DEFAULT_TEXT_FIELD};
use crate::input::provenance;
use crate::measure::entropy::tokenize;
use crate::measure::fidelity::fidelity;

/// The held-out prompts (not those the autoencoders were trained on) and how they run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FidelityConfig {
    /// The prompt file: text (one per line), JSONL or Parquet.
    pub prompts: PathBuf,
    /// Its format [default: from the extension].
    #[serde(default)]
    pub format: Option<CorpusFormat>,
    /// JSONL field or Parquet column [default: text].
    #[serde(default = "text_field")]
    pub field: String,
    /// Use at most this many prompts, in file order [default: all].
    #[serde(default)]
    pub max_prompts: Option<usize>,
    /// Add the tokenizer's special tokens [default: true].
    #[serde(default = "yes")]
    pub special_tokens: bool,
}

fn text_field() -> String {
    DEFAULT_TEXT_FIELD.into()
}

fn yes() -> bool {
    true
}

impl FidelityConfig {
    /// The prompt set.
    pub fn prompt_set(&self) -> PromptSet {
        PromptSet {
            path: self.prompts.clone(),
            format: self.format,
            field: self.field.clone(),
            max_prompts: self.max_prompts,
        }
    }
}

/// Measures fidelity as `config` says and writes the table.
pub fn fidelity_stage(
    job: &MeasurementJob,
    config: &FidelityConfig,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    let baes = job.autoencoders.open()?;
    let set = config.prompt_set();
    let prompts = set.read()?;
    let model = job.model.load()?;
    baes.check_model(model.config())?;
    let ids = tokenize(&model, &prompts.texts, config.special_tokens)?;
    reporter.begin("fidelity hook points", "", baes.autoencoders.len() as u64, 0);
    let mut results = Vec::new();
    for (i, bae) in baes.autoencoders.iter().enumerate() {
        results.push(fidelity(&model, bae, &ids)?);
        reporter.advance(i as u64 + 1, "");
    }
    reporter.end();
    let run_id = measurement::run_id(job.run_id, job.out);
    let n = results.len();
    let f64s =
        |f: &dyn Fn(usize) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values((0..n).map(f))) };
    let columns: Vec<(String, ArrayRef)> = vec![
        ("run_id".into(), Arc::new(StringArray::from_iter_values(std::iter::repeat_n(run_id.as_str(), n)))),
        (
            "model".into(),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(job.model.model.as_str(), n))),
        ),
        (
            "hook".into(),
            Arc::new(StringArray::from_iter_values(baes.autoencoders.iter().map(|b| b.hook.to_string()))),
        ),
        (
            "layer".into(),
            Arc::new(UInt32Array::from(
                baes.autoencoders.iter().map(|b| b.hook.layer().map(|l| l as u32)).collect::<Vec<_>>(),
            )),
        ),
        (
            "architecture".into(),
            Arc::new(StringArray::from_iter_values(
                baes.autoencoders.iter().map(|b| b.autoencoder.architecture.name()),
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
    let recorded = serde_json::json!({
        "command": "fidelity",
        "baes": baes.describe(),
        "prompts": prompts.describe(&set.path),
        "special_tokens": config.special_tokens,
    });
    let identity = provenance::describe(&model, &job.model.model)?;
    let gates = baes.gates(job.autoencoders.max_fvu);
    measurement::write_measurement(
        job.out,
        &crate::tables::fidelity(),
        &TableMetadata { run_id: &run_id, model: &identity, config: &recorded, gates: &gates },
        columns,
    )?;
    for (b, r) in baes.autoencoders.iter().zip(&results) {
        reporter.say(&format!(
            "{}: KL {:.4} nats, JS {:.4} nats, CE clean {:.3} / spliced {:.3} / zero {:.3}, recovered {:.3}",
            b.hook, r.kl, r.js, r.ce_clean, r.ce_spliced, r.ce_zero, r.ce_recovered
        ));
    }
    reporter.say(&format!("wrote {} rows to {}", n, job.out.display()));
    Ok(())
}
