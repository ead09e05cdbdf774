//! The entropy stage: feature-set entropy per hook point and token position over a
//! prompt set, through trained autoencoders, as a long Parquet table (`bae entropy`,
//! and `bae run`'s `[entropy]` table).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use serde::{Deserialize, Serialize};

use super::measurement::{self, MeasurementJob, PromptSet, TableMetadata};
use super::Reporter;
use crate::error::Result;
use crate::input::corpus::{CorpusFormat, DEFAULT_TEXT_FIELD};
use crate::input::provenance;
use crate::measure::{measure_prompts, EntropyOptions, EntropyRow, HookGate};

/// The prompt set and how it is run: the `[entropy]` table, and `bae entropy`'s flags.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntropyConfig {
    /// Prompt file (text, JSONL or Parquet); in `bae run`, none skips the stage.
    pub prompts: Option<PathBuf>,
    /// Its format [default: from the extension].
    pub format: Option<CorpusFormat>,
    /// JSONL field or Parquet column [default: text].
    pub field: String,
    /// Use at most this many prompts, in file order [default: all].
    pub max_prompts: Option<usize>,
    /// Prompts per forward pass (padded; results do not depend on it) [default: 8].
    pub batch: usize,
    /// Also write one row per (prompt, hook point): the entropy of that prompt's
    /// states [default: false].
    pub per_prompt: bool,
    /// Keep only each prompt's first this many tokens (special tokens included), so
    /// documents longer than the context can serve as prompts [default: whole prompts].
    pub max_tokens: Option<usize>,
    /// Add the tokenizer's special tokens (BOS where it adds one) [default: true].
    pub special_tokens: bool,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        Self {
            prompts: None,
            format: None,
            field: DEFAULT_TEXT_FIELD.into(),
            max_prompts: None,
            batch: measurement::DEFAULT_PROMPT_BATCH,
            per_prompt: false,
            max_tokens: None,
            special_tokens: true,
        }
    }
}

impl EntropyConfig {
    /// Settings out of range, refused before any work (`bae run` checks them before its
    /// harvest).
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(crate::error::input_error("--batch must be at least 1"));
        }
        if self.max_tokens == Some(0) {
            return Err(crate::error::input_error("--max-tokens must be at least 1"));
        }
        if self.max_prompts == Some(0) {
            return Err(crate::error::input_error("--max-prompts must be at least 1"));
        }
        Ok(())
    }

    /// The prompt set, when the config names one.
    pub fn prompt_set(&self) -> Option<PromptSet> {
        Some(PromptSet {
            path: self.prompts.clone()?,
            format: self.format,
            field: self.field.clone(),
            max_prompts: self.max_prompts,
        })
    }
}

/// Measures entropy as `config` says and writes the table.
pub fn entropy_stage(
    job: &MeasurementJob,
    config: &EntropyConfig,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    config.validate()?;
    let Some(set) = config.prompt_set() else {
        return Err(crate::error::input_error("missing --prompts (or `prompts` in [entropy])"));
    };
    let baes = job.autoencoders.open()?;
    let gates = baes.gates(job.autoencoders.max_fvu);
    measurement::report_gates(&gates, reporter);
    let prompts = set.read()?;
    let model = job.model.load()?;
    let options = EntropyOptions {
        special_tokens: config.special_tokens,
        batch: config.batch,
        per_prompt: config.per_prompt,
        max_tokens: config.max_tokens,
    };
    reporter.begin("entropy prompts", "", prompts.texts.len() as u64, 0);
    let rows = measure_prompts(&model, &baes, &prompts.texts, options, &mut |done| {
        reporter.advance(done as u64, "")
    })?;
    reporter.end();
    let run_id = measurement::run_id(job.run_id, job.out);
    let identity = provenance::describe(&model, &job.model.model)?;
    let recorded = serde_json::json!({
        "command": "entropy",
        "baes": baes.describe(),
        "prompts": prompts.describe(&set.path),
        "special_tokens": config.special_tokens, "batch": config.batch, "per_prompt": config.per_prompt,
        "max_tokens": config.max_tokens,
        "max_fvu": job.autoencoders.max_fvu,
    });
    measurement::write_measurement(
        job.out,
        &crate::tables::entropy(),
        &TableMetadata { run_id: &run_id, model: &identity, config: &recorded, gates: &gates },
        columns(&run_id, &job.model.model, &rows, &gates),
    )?;
    reporter.say(&format!(
        "wrote {} rows ({} hook points, {} prompts) to {}",
        rows.len(),
        baes.autoencoders.len(),
        prompts.texts.len(),
        job.out.display()
    ));
    Ok(())
}

/// The table's columns, in order (docs/formats/tables.md), each row with its hook's gate.
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
