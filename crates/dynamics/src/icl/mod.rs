//! In-context learning: classification tasks with their prompt templates, and the
//! seeded choice of demonstrations for a sweep over the number of demonstrations.

pub mod plan;
pub mod task;

pub use plan::{plan, Sample};
pub use task::{Example, Task, TaskTemplate};
