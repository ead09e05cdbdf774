//! `bae fidelity`: each autoencoder's reconstruction spliced into the model, compared
//! with the clean run and zero ablation over held-out prompts; the work is the library's
//! fidelity stage.

use std::path::PathBuf;

use bae_dynamics::pipeline::fidelity::{fidelity_stage, FidelityConfig};
use bae_dynamics::pipeline::measurement::MeasurementJob;
use clap::Args;

use crate::shared::{AutoencoderArgs, ModelArgs, PromptSetArgs, Terminal};

/// Arguments of `bae fidelity`.
#[derive(Debug, Args)]
pub struct FidelityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub baes: AutoencoderArgs,
    // Held-out prompts: not those the autoencoders were trained on.
    #[command(flatten)]
    pub prompts: PromptSetArgs,
    /// Add no special tokens.
    #[arg(long)]
    pub no_bos: bool,
    /// Identifier of this run in the table's `run_id` column [default: the output file's stem].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The Parquet file to write: one row per hook point.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

pub fn run(args: &FidelityArgs) -> anyhow::Result<()> {
    let set = args.prompts.set();
    let config = FidelityConfig {
        prompts: set.path,
        format: set.format,
        field: set.field,
        max_prompts: set.max_prompts,
        special_tokens: !args.no_bos,
    };
    let job = MeasurementJob {
        model: &args.model.spec(),
        autoencoders: &args.baes.selection(),
        out: &args.out,
        run_id: args.run_id.as_deref(),
    };
    Ok(fidelity_stage(&job, &config, &mut Terminal::default())?)
}
