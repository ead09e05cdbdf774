//! The store's `index.json`: what the activations are (model, hook points, dtype, corpus,
//! context length, BOS handling) and which shards are complete.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{io, Result, TrainError};

/// The `format` value of every index this version writes.
pub const FORMAT: &str = "bae.activation-store.v1";

/// The index file's name inside a store directory.
pub const INDEX_FILE: &str = "index.json";

/// Per-row u32 tensors every shard holds besides the activations, so a row can be traced
/// to its token: document index in the corpus (0-based, counting skipped empty ones),
/// window of that document (documents longer than the context are cut into consecutive
/// windows), position in the window as the model saw it, and the token id there.
pub const ROW_FIELDS: [&str; 4] = ["doc", "window", "position", "token_id"];

/// How activations are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreDtype {
    /// 4 bytes per value.
    F32,
    /// IEEE half: 2 bytes, range ±65504 (too small for Gemma's residuals).
    F16,
    /// bfloat16: 2 bytes, f32's range with 8 bits of mantissa.
    Bf16,
}

impl StoreDtype {
    /// The matching candle dtype.
    pub fn candle(self) -> candle_core::DType {
        match self {
            StoreDtype::F32 => candle_core::DType::F32,
            StoreDtype::F16 => candle_core::DType::F16,
            StoreDtype::Bf16 => candle_core::DType::BF16,
        }
    }

    /// Bytes per stored value.
    pub fn size(self) -> usize {
        match self {
            StoreDtype::F32 => 4,
            StoreDtype::F16 | StoreDtype::Bf16 => 2,
        }
    }

    /// The lowercase name used in the index and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StoreDtype::F32 => "f32",
            StoreDtype::F16 => "f16",
            StoreDtype::Bf16 => "bf16",
        }
    }
}

/// The model the activations came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// The `--model` argument as given (directory, GGUF file or Hub id).
    pub spec: String,
    /// The model family (Hugging Face `model_type`). Stored under the key
    /// `architecture`, the name the file format has always used.
    #[serde(rename = "architecture")]
    pub family: String,
    /// Number of decoder blocks.
    pub num_layers: usize,
    /// Parameter count, a cheap check that the same weights are meant.
    pub parameters: usize,
    /// dtype the model ran in.
    pub dtype: String,
}

/// The corpus the tokens came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusIdentity {
    /// Path as given.
    pub path: String,
    /// sha256 of the file's bytes, hex.
    pub sha256: String,
    /// "text" (one document per line), "jsonl" or "parquet".
    pub format: String,
    /// The JSONL field or Parquet column holding the text (None for plain text).
    pub field: Option<String>,
}

/// Whether a BOS token was fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BosHandling {
    /// Each window started with the model's BOS token.
    pub prepended: bool,
}

/// Whether attention-sink rows were stored. A sink is the row at position 0 of every
/// window (BOS or not: whatever token comes first) and every row of the BOS token.
/// Their residual norms are 15x to 130x the others' (SmolLM2's middle blocks: about
/// 23,000 against 170–290), so 1.8% of the rows carry over 99% of the variance and an
/// autoencoder trained on them fits little else; by default they are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SinkHandling {
    /// Sink rows were left out of the store (the model still saw those tokens).
    pub excluded: bool,
}

/// Everything that defines a store's contents; a resumed run must match it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSpec {
    /// The model.
    pub model: ModelIdentity,
    /// Hook point names, in the order their tensors appear.
    pub hooks: Vec<String>,
    /// Storage dtype of the activations.
    pub dtype: StoreDtype,
    /// Width of every activation row.
    pub d_model: usize,
    /// The corpus.
    pub corpus: CorpusIdentity,
    /// Longest window fed to the model, in tokens (BOS included).
    pub context_length: usize,
    /// BOS handling.
    pub bos: BosHandling,
    /// Attention-sink handling (stores written before it existed kept their sinks).
    #[serde(default)]
    pub sinks: SinkHandling,
    /// Rows to store in total (the store ends early if the corpus runs out).
    pub tokens: u64,
    /// Rows per shard (the last shard may hold fewer).
    pub shard_rows: usize,
}

impl StoreSpec {
    /// The first setting in which `self` and `other` differ, as (field, self's, other's).
    pub fn first_difference(&self, other: &StoreSpec) -> Option<(String, String, String)> {
        let a = serde_json::to_value(self).expect("spec serializes");
        let b = serde_json::to_value(other).expect("spec serializes");
        first_json_difference("", &a, &b)
    }
}

/// The first key path at which two JSON values differ, with both values.
pub(crate) fn first_json_difference(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<(String, String, String)> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => x.iter().find_map(|(k, va)| {
            let vb = y.get(k).unwrap_or(&serde_json::Value::Null);
            let key = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            first_json_difference(&key, va, vb)
        }),
        _ if a == b => None,
        _ => Some((path.to_string(), a.to_string(), b.to_string())),
    }
}

/// One complete shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name inside the store directory.
    pub file: String,
    /// Rows it holds.
    pub rows: usize,
}

/// The whole index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreIndex {
    /// Always [`FORMAT`].
    pub format: String,
    /// What the store holds.
    pub spec: StoreSpec,
    /// Complete shards, in row order. A shard is listed only once it is fully on disk.
    pub shards: Vec<ShardEntry>,
    /// Rows in all listed shards.
    pub rows: u64,
    /// Whether the run finished (all requested rows, or the corpus ran out).
    pub complete: bool,
}

impl StoreIndex {
    /// An empty index for `spec`.
    pub fn new(spec: StoreSpec) -> Self {
        Self { format: FORMAT.to_string(), spec, shards: Vec::new(), rows: 0, complete: false }
    }

    /// Checks that every shard the index lists is a file in `dir`, the store's folder.
    pub fn check_shards(&self, dir: &Path) -> Result<()> {
        match self.shards.iter().find(|s| !dir.join(&s.file).is_file()) {
            Some(shard) => Err(TrainError::Index {
                path: dir.join(INDEX_FILE),
                message: format!("lists {} but the file is missing", shard.file),
            }),
            None => Ok(()),
        }
    }

    /// Reads and checks `dir/index.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(INDEX_FILE);
        let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
        let bad = |message: String| TrainError::Index { path: path.clone(), message };
        let index: StoreIndex = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if index.format != FORMAT {
            return Err(bad(format!("format {:?}, expected {FORMAT:?}", index.format)));
        }
        let listed: u64 = index.shards.iter().map(|s| s.rows as u64).sum();
        if listed != index.rows {
            return Err(bad(format!("shards hold {listed} rows but `rows` says {}", index.rows)));
        }
        // Shard names come from a file anyone can edit: a store reads only its own folder.
        if let Some(shard) = index.shards.iter().find(|s| !is_plain_file_name(&s.file)) {
            return Err(bad(format!(
                "shard file {:?} is not a plain file name inside the store's folder",
                shard.file
            )));
        }
        if index.spec.hooks.is_empty() || index.spec.d_model == 0 || index.spec.shard_rows == 0 {
            return Err(bad("`spec` needs at least one hook, d_model > 0 and shard_rows > 0".into()));
        }
        Ok(index)
    }

    /// Writes `dir/index.json` atomically and durably.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("index serializes");
        crate::files::write_atomically(&dir.join(INDEX_FILE), text.as_bytes())
    }
}

/// Whether `name` is one path component naming a file inside its folder: not empty, no
/// separator, not `.` or `..`, not absolute.
fn is_plain_file_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!((parts.next(), parts.next()), (Some(std::path::Component::Normal(_)), None))
        && !name.contains(['/', '\\'])
}
