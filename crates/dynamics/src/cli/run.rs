//! Arguments of `bae run`.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `bae run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run config: `[run]`, `[harvest]`, `[train]`, `[entropy]` and `[icl]` tables
    /// (configs/smollm2-dynamics.toml documents every field). Run again after a kill:
    /// finished stages are skipped, unfinished ones resume.
    pub config: PathBuf,
}
