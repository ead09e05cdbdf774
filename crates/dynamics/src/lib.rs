//! bae-dynamics: feature-set entropy dynamics of language models, and the `bae`
//! command-line tool: reading corpora, harvesting residual-stream activations into an
//! activation store, the training log of BAE runs, feature-set entropy per hook point
//! and position through trained BAEs, in-context-learning tasks, and Parquet tables
//! (every table's columns defined once in [`tables`], and checked there before writing).
#![deny(missing_docs)]

pub mod corpus;
pub mod entropy;
pub mod error;
pub mod features;
pub mod fidelity;
pub mod harvest;
pub mod icl;
pub mod model_identity;
pub mod plot;
pub mod tables;
pub mod training_log;

pub use error::{DynamicsError, Result};
