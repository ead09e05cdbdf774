//! bae-train: the activation store that harvested residual-stream rows live in, and
//! binary autoencoder training on them (CPU reference path, and a CUDA path behind the
//! `cuda` feature, in later stages).
#![deny(missing_docs)]

pub mod bae;
pub mod bits;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod files;
pub mod metrics;
pub mod optim;
pub mod rng;
pub mod store;

pub use error::{Result, TrainError};
