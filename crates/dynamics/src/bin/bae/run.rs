//! `bae run CONFIG`: the main job end to end, through the library's pipeline.

use std::path::PathBuf;

use bae_dynamics::pipeline::run::run_pipeline;
use bae_dynamics::pipeline::RunConfig;
use clap::Args;

use crate::shared::Terminal;

/// Arguments of `bae run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run config: `[run]`, `[harvest]`, `[train]`, `[entropy]` and `[icl]` tables
    /// (configs/smollm2-dynamics.toml documents every field). Run again after a kill:
    /// finished stages are skipped, unfinished ones resume.
    pub config: PathBuf,
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let config = RunConfig::read(&args.config)?;
    Ok(run_pipeline(&config, &args.config, &mut Terminal::default())?)
}
