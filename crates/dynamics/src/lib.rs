//! bae-dynamics: feature-set entropy dynamics of language models, and the `bae`
//! command-line tool (`src/bin/bae/`, one file per command: flags, one library call,
//! printing). The library, grouped by role:
//! - [`input`]: corpora and prompt sets, the model a stage names, provenance;
//! - [`harvest`]: a corpus through a model into an activation store;
//! - [`measure`]: the trained autoencoders a measurement reads and their gates, entropy,
//!   the ICL sweep, fidelity, feature untangling;
//! - [`tables`]: every Parquet table's columns, defined once and checked before writing;
//! - [`plot`]: charts of those tables;
//! - [`pipeline`]: one serde config and one function per stage (harvest, train, entropy,
//!   icl, fidelity, features, compare) and `bae run`'s pipeline over them.
#![deny(missing_docs)]

pub mod error;
pub mod harvest;
pub mod input;
pub mod measure;
pub mod pipeline;
pub mod plot;
pub mod tables;

pub use error::{DynamicsError, Result, ResultExt};
