//! Feature-set entropy of a model's hidden states, read through trained BAEs: per hook
//! point and token position over a prompt set, or per prompt.

pub mod baes;
pub mod gate;
pub mod measure;

pub use baes::{BaeSet, HookBae};
pub use gate::{log2_states, HookGate, Verdict, DEFAULT_MAX_FVU};
pub use measure::{measure_prompts, EntropyOptions, EntropyRow};
