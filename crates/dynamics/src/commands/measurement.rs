//! What `bae entropy` and `bae icl` share: progress over prompts, the run id, and
//! writing a measurement table with its metadata.

use std::path::Path;

use anyhow::Context;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};
use bae_dynamics::corpus::{Corpus, CorpusFormat};
use bae_dynamics::entropy::{log2_states, BaeSet, HookGate};
use bae_dynamics::tables::{write_table, TableSchema};

use crate::cli::harvest::FormatArg;
use crate::cli::inputs::{BaeSelection, PromptSetArgs};

/// The autoencoders a command's --baes and --hooks select.
pub fn open_selection(selection: &BaeSelection) -> anyhow::Result<BaeSet> {
    if !(selection.max_fvu.is_finite() && selection.max_fvu > 0.0) {
        anyhow::bail!("--max-fvu must be a positive number, got {}", selection.max_fvu);
    }
    open_baes(&selection.baes, &selection.hooks)
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

/// Prints every gate, and a warning naming the hooks that fail theirs.
pub fn report_gates(gates: &[HookGate]) {
    for g in gates {
        eprintln!("gate {}", g.describe());
    }
    let failing: Vec<&str> = gates
        .iter()
        .filter(|g| g.verdict == bae_dynamics::entropy::Verdict::Fail)
        .map(|g| g.hook.as_str())
        .collect();
    if !failing.is_empty() {
        eprintln!(
            "warning: {} fail their quality gate; their rows say quality = \"fail\" and are not measurements",
            failing.join(", ")
        );
    }
}

/// The prompts a command's prompt-set flags name.
pub fn read_prompt_set(set: &PromptSetArgs) -> anyhow::Result<(Corpus, CorpusFormat, Vec<String>)> {
    read_prompts(&set.prompts, set.format, &set.field, set.max_prompts)
}

/// The BAEs in `dir`, only those of `hooks` when given.
pub fn open_baes(dir: &Path, hooks: &Option<String>) -> anyhow::Result<BaeSet> {
    let baes = BaeSet::open(dir)?;
    Ok(match hooks {
        Some(hooks) => baes.select(hooks, dir)?,
        None => baes,
    })
}

/// A prompt set: the corpus, its format, and at most `max` prompts in file order.
pub fn read_prompts(
    path: &Path,
    format: Option<FormatArg>,
    field: &str,
    max: Option<usize>,
) -> anyhow::Result<(Corpus, CorpusFormat, Vec<String>)> {
    let format = FormatArg::resolve(format, path);
    let corpus = Corpus::open(path, format, field)?;
    let prompts: Vec<String> = corpus
        .documents()?
        .take(max.unwrap_or(usize::MAX))
        .map(|d| d.map(|d| d.text))
        .collect::<Result<_, _>>()?;
    if prompts.is_empty() {
        anyhow::bail!("{}: no prompts", path.display());
    }
    Ok((corpus, format, prompts))
}

/// `--run-id`, else the output file's stem.
pub fn run_id(given: &Option<String>, out: &Path) -> String {
    given
        .clone()
        .unwrap_or_else(|| out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
}

/// A run folder's name as its tables' run id; `fallback` for a path without one (`/`).
pub fn folder_run_id(out: &Path, fallback: &str) -> String {
    out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| fallback.into())
}

/// Writes a measurement table defined by `schema` with the metadata every table
/// carries, the gates of the hooks it measured among them.
pub fn write(
    out: &Path,
    schema: &TableSchema,
    run_id: &str,
    model: &serde_json::Value,
    config: &serde_json::Value,
    gates: &[HookGate],
    columns: Vec<(String, ArrayRef)>,
) -> anyhow::Result<()> {
    let metadata = [
        ("bae_version", env!("CARGO_PKG_VERSION").to_string()),
        ("run_id", run_id.to_string()),
        ("model", model.to_string()),
        ("config", config.to_string()),
        ("gates", serde_json::to_string(gates)?),
    ];
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(write_table(out, schema, columns, &metadata)?)
}
