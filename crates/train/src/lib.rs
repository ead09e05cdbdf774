//! bae-train: the activation store that harvested residual-stream rows live in, and
//! training of binary autoencoders and SAE baselines on them: a CPU step that is the
//! reference, and a CUDA path behind the `cuda` feature. Every folder it writes (a
//! store, a training run) is written by one process at a time ([`lock`]), every file
//! atomically ([`files`]).
#![deny(missing_docs)]

pub mod bae;
pub mod bits;
pub mod checkpoint;
pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod error;
pub mod files;
pub mod lock;
pub mod metrics;
pub mod optim;
pub mod store;

pub use error::{Result, TrainError};
