//! The stages, each a serde config (documented field by field, defaults written once,
//! checked before any work) and one function over it: [`harvest`], [`train`],
//! [`entropy`], [`icl`], [`fidelity`], [`features`], [`compare`], and [`run`], the main
//! job, which calls the others. A stage reports progress and what it did through a
//! [`Reporter`], so the command line, a log file and a test each see it their way.

pub mod compare;
pub mod config;
pub mod entropy;
pub mod features;
pub mod fidelity;
pub mod harvest;
pub mod icl;
pub mod measurement;
pub mod run;
pub mod train;

pub use config::RunConfig;
pub use measurement::{AutoencoderSelection, PromptSet};

/// Where a stage's progress and narrative go.
pub trait Reporter {
    /// A line of narrative: what is being done, skipped, resumed or written.
    fn say(&mut self, line: &str);
    /// A task of `total` `unit`s ("rows", "epochs", or "" for plain items) begins,
    /// `done` of them already done (a resumed run).
    fn begin(&mut self, what: &str, unit: &'static str, total: u64, done: u64);
    /// `done` of the current task's total, with `message` (a rate, metrics) beside it.
    fn advance(&mut self, done: u64, message: &str);
    /// The current task ended.
    fn end(&mut self);
}

/// A reporter that shows nothing (tests, library callers that only want the result).
pub struct Quiet;

impl Reporter for Quiet {
    fn say(&mut self, _line: &str) {}
    fn begin(&mut self, _what: &str, _unit: &'static str, _total: u64, _done: u64) {}
    fn advance(&mut self, _done: u64, _message: &str) {}
    fn end(&mut self) {}
}
