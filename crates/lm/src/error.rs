//! The error type of bae-lm. Every variant names the file, field or value at fault
//! and what was expected, so the CLI can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A required file is absent.
    #[error("{what} not found: expected {path}")]
    MissingFile {
        /// Where it was looked for.
        path: PathBuf,
        /// What the file is for (e.g. "model config").
        what: String,
    },
    /// A JSON file did not parse or lacks a required field.
    #[error("invalid {path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde's message, which names the missing or malformed field.
        message: String,
    },
    /// A configuration value is outside what the decoder supports.
    #[error("invalid model config in {origin}: field `{field}` {message}")]
    Config {
        /// The config.json or GGUF file the value came from.
        origin: String,
        /// The field.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The model's architecture is not one this decoder implements.
    #[error("unsupported architecture {arch:?} in {origin}: expected one of {expected}")]
    UnsupportedArchitecture {
        /// The config.json or GGUF file.
        origin: String,
        /// The architecture named there.
        arch: String,
        /// The architectures we support.
        expected: String,
    },
    /// A weight file is corrupt or truncated.
    #[error("invalid weight file {path}: {message}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor the architecture needs is absent from the weights.
    #[error("tensor `{name}` not found in {origin}")]
    MissingTensor {
        /// The tensor name (Hugging Face naming).
        name: String,
        /// The weight files searched.
        origin: String,
    },
    /// A tensor has the wrong shape for the config.
    #[error("tensor `{name}` in {origin} has shape {got:?}, expected {expected:?} from the config")]
    ShapeMismatch {
        /// The tensor name (Hugging Face naming).
        name: String,
        /// The weight files searched.
        origin: String,
        /// Its shape on disk.
        got: Vec<usize>,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// The weights do not match what the config implies: either may be at fault.
    #[error("{source} (as {config} implies)")]
    ImpliedByConfig {
        /// The config file.
        config: String,
        /// The mismatch: a missing tensor or a wrong shape.
        source: Box<LmError>,
    },
    /// A GGUF file is corrupt or lacks something we need.
    #[error("invalid GGUF file {path}: {message}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer could not be loaded or built.
    #[error("tokenizer {origin}: {message}")]
    Tokenizer {
        /// The tokenizer.json or GGUF file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A hook point name is not valid for this model.
    #[error("unknown hook point {name:?}: {reason}")]
    UnknownHook {
        /// The name as given.
        name: String,
        /// Why it was rejected and what was expected.
        reason: String,
    },
    /// A Hub model id is neither cached nor downloadable.
    #[error(
        "model {id:?} is not in the local Hugging Face cache ({cache}) and {why}. \
         Provide it as a local directory (config.json, *.safetensors, tokenizer.json) or a GGUF file, \
         or download it on a machine with network access (e.g. `hf download {id}`) and set HF_HOME"
    )]
    NotCached {
        /// The model id.
        id: String,
        /// The cache directory searched.
        cache: String,
        /// Why it could not be fetched (offline mode or the download error).
        why: String,
    },
    /// A model argument is neither a directory, a GGUF file nor a Hub id.
    #[error("cannot load model {spec:?}: {message}")]
    ModelSpec {
        /// The argument as given.
        spec: String,
        /// What was expected.
        message: String,
    },
    /// Bad caller input (token ids, batch shapes, intervention tensors).
    #[error("{0}")]
    Input(String),
    /// An error inside candle.
    #[error(transparent)]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for LmError {
    /// Without the backtrace candle attaches when `RUST_BACKTRACE` is set: the message
    /// is for users, and the trace of a bad input is dozens of lines of candle's frames.
    fn from(e: candle_core::Error) -> Self {
        Self::Candle(without_backtrace(e))
    }
}

/// `e` without the backtraces candle wraps errors in under `RUST_BACKTRACE`, at any
/// depth of context.
pub fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        candle_core::Error::Context { inner, context } => {
            candle_core::Error::Context { inner: Box::new(without_backtrace(*inner)), context }
        }
        other => other,
    }
}

/// Result type of bae-lm.
pub type Result<T> = std::result::Result<T, LmError>;

/// Reads a whole file, naming it on failure.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| LmError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_errors_lose_their_backtraces_and_keep_their_messages() {
        let traced = |inner: candle_core::Error| candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        let e = traced(candle_core::Error::Msg("shape mismatch".into()));
        assert!(e.to_string().lines().count() > 1, "the test needs a captured backtrace");
        assert_eq!(LmError::from(e).to_string(), "shape mismatch");
        let nested = traced(traced(candle_core::Error::Msg("inner".into())).context("while loading"));
        assert_eq!(LmError::from(nested).to_string(), "while loading\ninner");
    }
}
