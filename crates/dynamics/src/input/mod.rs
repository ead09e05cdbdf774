//! What a run reads: corpora and prompt sets ([`corpus`]), the model named by a stage's
//! config ([`model`]), and how a table records the exact model it measured
//! ([`provenance`]).

pub mod corpus;
pub mod model;
pub mod provenance;

pub use corpus::{Corpus, CorpusFormat, Document};
pub use model::{ModelDtype, ModelSpec};
