//! Feature-set entropy of a model's hidden states, read through trained BAEs: per hook
//! point and token position over a prompt set, or per prompt.

pub mod baes;
pub mod measure;

pub use baes::{BaeSet, HookBae};
pub use measure::{measure_prompts, EntropyOptions, EntropyRow};
