//! The error type of the bae-dynamics library. Variants name the file, line, field or
//! value at fault and what was expected.

use std::path::PathBuf;

/// Everything that can go wrong while reading corpora or harvesting.
#[derive(Debug, thiserror::Error)]
pub enum DynamicsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The corpus is malformed at a specific place.
    #[error("corpus {path}, {location}: {message}")]
    Corpus {
        /// The corpus file.
        path: PathBuf,
        /// Where ("line 12", "row 40", "column `text`", ...).
        location: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An in-context-learning task file or its template is malformed.
    #[error("task {path}, {location}: {message}")]
    Task {
        /// The task's JSONL or template file.
        path: PathBuf,
        /// Where ("line 12", "field `label_prefix`", ...).
        location: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An LLM judge failed to answer.
    #[error("judge {judge}: {message}")]
    Judge {
        /// Which judge ("endpoint:URL#MODEL", "self:…").
        judge: String,
        /// What went wrong, with what came back.
        message: String,
    },
    /// A setting is out of range or inconsistent.
    #[error("{0}")]
    Input(String),
    /// From the model.
    #[error(transparent)]
    Lm(#[from] bae_lm::LmError),
    /// From the activation store.
    #[error(transparent)]
    Train(#[from] bae_train::TrainError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for DynamicsError {
    /// Through [`bae_lm::error::without_backtrace`], as bae-lm's errors are.
    fn from(e: candle_core::Error) -> Self {
        Self::Candle(bae_lm::error::without_backtrace(e))
    }
}

/// Result with [`DynamicsError`].
pub type Result<T> = std::result::Result<T, DynamicsError>;
