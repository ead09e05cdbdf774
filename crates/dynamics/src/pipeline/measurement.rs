//! What the measurement stages share: the autoencoders and prompt set they read, the
//! state and gate columns of their tables, the run id, and writing a table with the
//! metadata every measurement carries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};
use serde::{Deserialize, Serialize};

use super::Reporter;
use crate::error::{input_error, Result, ResultExt};
use crate::input::corpus::{Corpus, CorpusFormat};
use crate::input::model::ModelSpec;
use crate::measure::{log2_states, AutoencoderSet, HookGate, Verdict, DEFAULT_MAX_FVU};
use crate::tables::{write_table, TableSchema};

/// Prompts per forward pass of the measurements (padded; results do not depend on it).
pub const DEFAULT_PROMPT_BATCH: usize = 8;

/// The trained autoencoders a measurement reads (entropy, icl, fidelity).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderSelection {
    /// A `bae train` run folder, or a folder of them, one per hook point (each names its
    /// hook in cfg.json). Every hook point with one is measured.
    pub baes: PathBuf,
    /// Only these hook points (comma-separated names or globs) [default: every one].
    pub hooks: Option<String>,
    /// The quality gate: a hook whose autoencoder's validation FVU exceeds this is
    /// marked `quality = "fail"` in every row and greyed in its plots.
    pub max_fvu: f64,
}

impl AutoencoderSelection {
    /// Every autoencoder in `baes`, gated at the default FVU.
    pub fn all(baes: PathBuf) -> Self {
        Self { baes, hooks: None, max_fvu: DEFAULT_MAX_FVU }
    }

    /// Opens the selected autoencoders, after checking the gate is a positive number.
    pub fn open(&self) -> Result<AutoencoderSet> {
        check_max_fvu(self.max_fvu)?;
        open_autoencoders(&self.baes, self.hooks.as_deref())
    }
}

/// Refuses a gate that is not a positive number.
pub fn check_max_fvu(max_fvu: f64) -> Result<()> {
    if !(max_fvu.is_finite() && max_fvu > 0.0) {
        return Err(input_error(format!("--max-fvu must be a positive number, got {max_fvu}")));
    }
    Ok(())
}

/// The autoencoders in `dir`, only those of `hooks` when given.
pub fn open_autoencoders(dir: &Path, hooks: Option<&str>) -> Result<AutoencoderSet> {
    let baes = AutoencoderSet::open(dir)?;
    match hooks {
        Some(hooks) => baes.select(hooks, dir),
        None => Ok(baes),
    }
}

/// What a measurement over every selected hook point reads and writes besides its
/// config (entropy, fidelity).
pub struct MeasurementJob<'a> {
    /// The model.
    pub model: &'a ModelSpec,
    /// The autoencoders read.
    pub autoencoders: &'a AutoencoderSelection,
    /// The Parquet file to write (under a temporary name, renamed when complete).
    pub out: &'a Path,
    /// The table's `run_id` [default: the output file's stem].
    pub run_id: Option<&'a str>,
}

/// A prompt set: one prompt per line (text), per JSON object (JSONL) or per row (Parquet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptSet {
    /// The file.
    pub path: PathBuf,
    /// Its format [default: from the extension].
    pub format: Option<CorpusFormat>,
    /// The JSONL field or Parquet column holding the text.
    pub field: String,
    /// Use at most this many prompts, in file order.
    pub max_prompts: Option<usize>,
}

/// A prompt set read: the corpus (for its hash), its format and the prompts.
pub struct Prompts {
    /// The file, for provenance.
    pub corpus: Corpus,
    /// Its format.
    pub format: CorpusFormat,
    /// The prompts in file order.
    pub texts: Vec<String>,
}

impl PromptSet {
    /// Reads the prompts; an empty set is an error that names the file.
    pub fn read(&self) -> Result<Prompts> {
        let format = CorpusFormat::resolve(self.format, &self.path);
        let corpus = Corpus::open(&self.path, format, &self.field)?;
        let texts: Vec<String> = corpus
            .documents()?
            .take(self.max_prompts.unwrap_or(usize::MAX))
            .map(|d| d.map(|d| d.text))
            .collect::<Result<_>>()?;
        if texts.is_empty() {
            return Err(input_error(format!("{}: no prompts", self.path.display())));
        }
        Ok(Prompts { corpus, format, texts })
    }
}

impl Prompts {
    /// The prompt set as a table's config records it.
    pub fn describe(&self, path: &Path) -> serde_json::Value {
        serde_json::json!({
            "path": path, "sha256": self.corpus.sha256(), "format": self.format.name(),
            "field": self.corpus.field(), "count": self.texts.len(),
        })
    }
}

/// `states` (how many hidden states a row pools) and `log2_states` (the most bits that
/// many samples can resolve: an entropy above it is bounded by the sample, not the
/// model), null where a row pools none.
pub fn state_columns(states: &[Option<u64>]) -> Vec<(String, ArrayRef)> {
    vec![
        ("states".into(), Arc::new(UInt64Array::from(states.to_vec())) as ArrayRef),
        (
            "log2_states".into(),
            Arc::new(Float64Array::from(states.iter().map(|s| s.map(log2_states)).collect::<Vec<_>>())),
        ),
    ]
}

/// The gate of each row's hook (null for rows without a hook): the autoencoder's
/// validation FVU, dead and constant features, training rows, and `quality`.
pub fn gate_columns(hooks: &[Option<String>], gates: &[HookGate]) -> Vec<(String, ArrayRef)> {
    let gate = |h: &Option<String>| h.as_ref().and_then(|h| gates.iter().find(|g| &g.hook == h));
    let row_gates: Vec<Option<&HookGate>> = hooks.iter().map(gate).collect();
    let u32s = |f: &dyn Fn(&HookGate) -> Option<usize>| -> ArrayRef {
        Arc::new(UInt32Array::from(
            row_gates.iter().map(|g| g.and_then(f).map(|v| v as u32)).collect::<Vec<_>>(),
        ))
    };
    vec![
        (
            "bae_val_fvu".into(),
            Arc::new(Float64Array::from(
                row_gates.iter().map(|g| g.and_then(|g| g.val_fvu)).collect::<Vec<_>>(),
            )),
        ),
        ("bae_dead".into(), u32s(&|g| g.dead)),
        ("bae_constant".into(), u32s(&|g| g.constant)),
        (
            "bae_train_rows".into(),
            Arc::new(UInt64Array::from(
                row_gates.iter().map(|g| g.and_then(|g| g.train_rows)).collect::<Vec<_>>(),
            )),
        ),
        (
            "quality".into(),
            Arc::new(StringArray::from(
                row_gates.iter().map(|g| g.map(|g| g.verdict.name())).collect::<Vec<Option<&str>>>(),
            )),
        ),
    ]
}

/// Reports every gate, and a warning naming the hooks that fail theirs.
pub fn report_gates(gates: &[HookGate], reporter: &mut dyn Reporter) {
    for g in gates {
        reporter.say(&format!("gate {}", g.describe()));
    }
    let failing: Vec<&str> =
        gates.iter().filter(|g| g.verdict == Verdict::Fail).map(|g| g.hook.as_str()).collect();
    if !failing.is_empty() {
        reporter.say(&format!(
            "warning: {} fail their quality gate; their rows say quality = \"fail\" and are not measurements",
            failing.join(", ")
        ));
    }
}

/// The given run id, else the output file's stem.
pub fn run_id(given: Option<&str>, out: &Path) -> String {
    given
        .map(str::to_string)
        .unwrap_or_else(|| out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
}

/// A run folder's name as its tables' run id; `fallback` for a path without one (`/`).
pub fn folder_run_id(out: &Path, fallback: &str) -> String {
    out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| fallback.into())
}

/// What every measurement table records beside its rows.
pub struct TableMetadata<'a> {
    /// The run's id.
    pub run_id: &'a str,
    /// The model (from [`crate::input::provenance::describe`]).
    pub model: &'a serde_json::Value,
    /// The stage's settings and inputs.
    pub config: &'a serde_json::Value,
    /// The gates of the hooks it measured.
    pub gates: &'a [HookGate],
}

/// Writes a measurement table defined by `schema` with the metadata every table
/// carries.
pub fn write_measurement(
    out: &Path,
    schema: &TableSchema,
    metadata: &TableMetadata,
    columns: Vec<(String, ArrayRef)>,
) -> Result<()> {
    let pairs = [
        ("bae_version", env!("CARGO_PKG_VERSION").to_string()),
        ("run_id", metadata.run_id.to_string()),
        ("model", metadata.model.to_string()),
        ("config", metadata.config.to_string()),
        ("gates", serde_json::to_string(metadata.gates)?),
    ];
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    write_table(out, schema, columns, &pairs)
}
