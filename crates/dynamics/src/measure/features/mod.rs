//! Feature untangling (DESIGN.md §6): which tokens each feature of a trained autoencoder
//! picks out and how often it fires ([`collect`]), a browsable report ([`report`]), and
//! interpretability scores from an LLM judge ([`judge`], [`interpret`]).

pub mod collect;
pub mod interpret;
pub mod judge;
pub mod report;

pub use collect::{collect_features, FeatureOptions, FeatureSample, FeatureSet, TokenContext};
pub use interpret::{interpret_features, FeatureInterpretation, InterpretOptions};
