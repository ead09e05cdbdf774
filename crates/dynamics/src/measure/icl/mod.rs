//! In-context learning: classification tasks with their prompt templates, the seeded
//! choice of demonstrations for a sweep over their number, and the sweep itself
//! (entropy at the last prompt token, accuracy on the label).

pub mod measure;
pub mod plan;
pub mod task;

pub use measure::{measure_icl, IclAggregate, IclOptions, IclResult, IclSampleResult};
pub use plan::{plan, Sample};
pub use task::{Example, Task, TaskTemplate};
