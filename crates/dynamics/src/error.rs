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
    /// From the activation store or training.
    #[error(transparent)]
    Train(#[from] bae_train::TrainError),
    /// A file could not be written or created (the path is in the context).
    #[error(transparent)]
    Write(#[from] std::io::Error),
    /// A config or metadata value could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(candle_core::Error),
    /// What was being done when `source` went wrong ("loading model …", "harvesting into
    /// …"); printed as the head of the error chain.
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// What went wrong.
        #[source]
        source: Box<DynamicsError>,
    },
}

/// `.context(...)` for results of this library, as anyhow has it for the binary: each
/// layer says what it was doing, and the top prints the chain once.
pub trait ResultExt<T> {
    /// Wraps the error in `context`.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// Wraps the error in the context `f` makes (only on failure).
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<DynamicsError>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| DynamicsError::Context { context: context.into(), source: Box::new(e.into()) })
    }

    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| DynamicsError::Context { context: f().into(), source: Box::new(e.into()) })
    }
}

/// An [`DynamicsError::Input`] from a message, for settings out of range.
pub fn input_error(message: impl Into<String>) -> DynamicsError {
    DynamicsError::Input(message.into())
}

impl From<candle_core::Error> for DynamicsError {
    /// Through [`bae_lm::error::without_backtrace`], as bae-lm's errors are.
    fn from(e: candle_core::Error) -> Self {
        Self::Candle(bae_lm::error::without_backtrace(e))
    }
}

/// Result with [`DynamicsError`].
pub type Result<T> = std::result::Result<T, DynamicsError>;
