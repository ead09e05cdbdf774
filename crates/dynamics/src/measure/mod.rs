//! Measurements through trained autoencoders: the set of autoencoders a measurement
//! reads and their quality gates ([`autoencoders`], [`gate`]), feature-set entropy per
//! hook point and position ([`entropy`]), the in-context-learning sweep ([`icl`]),
//! reconstruction fidelity inside the model ([`fidelity`]), and feature untangling
//! ([`features`]).

pub mod autoencoders;
pub mod entropy;
pub mod features;
pub mod fidelity;
pub mod gate;
pub mod icl;

pub use autoencoders::{AutoencoderSet, HookAutoencoder};
pub use entropy::{measure_prompts, EntropyOptions, EntropyRow};
pub use gate::{log2_states, HookGate, Verdict, DEFAULT_MAX_FVU};
