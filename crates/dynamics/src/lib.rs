//! bae-dynamics: feature-set entropy dynamics of language models, and the `bae`
//! command-line tool. So far: reading corpora and harvesting residual-stream
//! activations into an activation store; the entropy measurements arrive in later
//! stages.
#![deny(missing_docs)]

pub mod corpus;
pub mod error;
pub mod harvest;

pub use error::{DynamicsError, Result};
