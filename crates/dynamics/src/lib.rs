//! bae-dynamics: feature-set entropy dynamics of language models, and the `bae`
//! command-line tool. So far: reading corpora and harvesting residual-stream
//! activations into an activation store, and the training log of BAE runs; the entropy
//! measurements arrive in later stages.
#![deny(missing_docs)]

pub mod corpus;
pub mod error;
pub mod harvest;
pub mod icl;
pub mod training_log;

pub use error::{DynamicsError, Result};
