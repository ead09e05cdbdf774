//! The error type of bae-train. Every variant names the file, field or value at fault.

use std::path::PathBuf;

/// Everything that can go wrong while storing, reading or training on activations.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("writing", "reading", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A store's index.json is missing a field, malformed, or inconsistent with its shards.
    #[error("invalid activation store index {path}: {message}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The output directory holds a store made with different settings.
    #[error(
        "{dir} already holds an activation store with a different {field} ({existing} there, {requested} now); \
         choose another output directory or delete that one"
    )]
    DifferentStore {
        /// The store directory.
        dir: PathBuf,
        /// The setting that differs.
        field: String,
        /// Its value in the existing store.
        existing: String,
        /// Its value in this run.
        requested: String,
    },
    /// The output directory already holds this store and resuming was not asked for.
    #[error("{dir} already holds an activation store ({state}); pass --resume to continue it, or choose another output directory")]
    StoreExists {
        /// The store directory.
        dir: PathBuf,
        /// "complete" or "N of M rows written".
        state: String,
    },
    /// The output directory holds files that are not a store, which we will not mix with one.
    #[error(
        "{dir} is not empty and holds no activation store (found {found}); choose an empty or new directory"
    )]
    NotAStore {
        /// The directory.
        dir: PathBuf,
        /// A file found there.
        found: String,
    },
    /// Another process is writing the folder (it holds the folder's lock file).
    #[error(
        "{dir} is being written by another bae process ({holder}); wait for it to finish, or choose another folder"
    )]
    Locked {
        /// The folder.
        dir: PathBuf,
        /// Who holds the lock: "PID 1234", as its lock file says.
        holder: String,
    },
    /// Resuming was asked for but there is nothing to resume.
    #[error("cannot resume: {dir} holds no activation store (no index.json)")]
    NothingToResume {
        /// The directory.
        dir: PathBuf,
    },
    /// A safetensors file (shard or plain matrix) is unreadable or lacks what is needed.
    #[error("{path}: {message}")]
    Tensors {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the tensor.
        message: String,
    },
    /// An argument is out of range.
    #[error("{0}")]
    Input(String),
    /// Training produced a value that is not a finite number: the run stops rather than
    /// write NaN weights or metrics.
    #[error(
        "training diverged: {what} is not finite in epoch {epoch} (0-based), after {step} optimiser steps; \
         lower `lr`, or look for extreme values in the activations"
    )]
    NonFinite {
        /// What was not finite ("the minibatch loss", "the weights").
        what: &'static str,
        /// The 0-based epoch.
        epoch: usize,
        /// Optimiser steps taken when it was found.
        step: u64,
    },
    /// The GPU path could not start or failed: no CUDA library or device, a kernel that
    /// does not compile, a failed launch or copy.
    #[error("CUDA: {0}")]
    Cuda(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for TrainError {
    /// Through [`bae_lm::error::without_backtrace`], as bae-lm's errors are.
    fn from(e: candle_core::Error) -> Self {
        Self::Candle(bae_lm::error::without_backtrace(e))
    }
}

/// Result with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;

/// Wraps an I/O error with the action and path.
pub(crate) fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_path_buf();
    move |source| TrainError::Io { action, path, source }
}
