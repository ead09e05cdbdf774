//! `bae icl`: entropy at the last prompt token and accuracy on the label, swept over
//! the number of in-context demonstrations; the work is the library's ICL stage.

use std::path::PathBuf;

use bae_dynamics::measure::icl::Task;
use bae_dynamics::pipeline::icl::{icl_stage, IclConfig, IclJob};
use clap::Args;

use crate::shared::{AutoencoderArgs, ModelArgs, Terminal};

/// Arguments of `bae icl`.
#[derive(Debug, Args)]
pub struct IclArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub baes: AutoencoderArgs,
    /// The task: JSONL with one labelled example per line (configs/tasks/ has three).
    #[arg(long)]
    pub task: PathBuf,
    /// The task's prompt template [default: the task file with the extension .toml].
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Numbers of demonstrations to sweep, comma-separated [default: 0,1,2,4,8,16].
    #[arg(long, value_delimiter = ',')]
    pub demos: Option<Vec<usize>>,
    /// Prompts per number of demonstrations (the same queries at every k).
    #[arg(long, default_value_t = IclConfig::default().samples)]
    pub samples: usize,
    /// Seed of the queries and demonstrations.
    #[arg(long, default_value_t = IclConfig::default().seed)]
    pub seed: u64,
    /// Add no special tokens (no BOS even where the tokenizer adds one).
    #[arg(long)]
    pub no_bos: bool,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = IclConfig::default().batch)]
    pub batch: usize,
    /// Identifier of this run in the table's `run_id` column [default: the output file's stem].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The Parquet file to write (under a temporary name, renamed when complete).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

pub fn run(args: &IclArgs) -> anyhow::Result<()> {
    let defaults = IclConfig::default();
    let config = IclConfig {
        tasks: vec![args.task.clone()],
        demos: args.demos.clone().unwrap_or(defaults.demos),
        samples: args.samples,
        seed: args.seed,
        batch: args.batch,
        special_tokens: !args.no_bos,
    };
    let selection = args.baes.selection();
    // The gate is checked before the task is read, as for the other measurements.
    bae_dynamics::pipeline::measurement::check_max_fvu(selection.max_fvu)?;
    let task = Task::load(&args.task, args.template.as_deref())?;
    let job = IclJob {
        model: &args.model.spec(),
        autoencoders: &selection,
        task: &task,
        out: &args.out,
        run_id: args.run_id.as_deref(),
    };
    Ok(icl_stage(&job, &config, &mut Terminal::default())?)
}
