//! `bae entropy`: feature-set entropy per hook point and token position over a prompt
//! set; the work is the library's entropy stage.

use std::path::PathBuf;

use bae_dynamics::pipeline::entropy::{entropy_stage, EntropyConfig};
use bae_dynamics::pipeline::measurement::MeasurementJob;
use clap::Args;

use crate::shared::{AutoencoderArgs, ModelArgs, PromptSetArgs, Terminal};

/// Arguments of `bae entropy`.
#[derive(Debug, Args)]
pub struct EntropyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub baes: AutoencoderArgs,
    #[command(flatten)]
    pub prompts: PromptSetArgs,
    /// Add no special tokens (no BOS even where the tokenizer adds one).
    #[arg(long)]
    pub no_bos: bool,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = EntropyConfig::default().batch)]
    pub batch: usize,
    /// Also write one row per (prompt, hook point): the entropy of that prompt's states.
    #[arg(long)]
    pub per_prompt: bool,
    /// Keep only each prompt's first N tokens (special tokens included), so documents
    /// longer than the context, or than is useful, can serve as prompts [default: whole].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Identifier of this run in the table's `run_id` column [default: the output file's stem].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The Parquet file to write (under a temporary name, renamed when complete).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

pub fn run(args: &EntropyArgs) -> anyhow::Result<()> {
    let config = EntropyConfig {
        prompts: Some(args.prompts.prompts.clone()),
        format: args.prompts.format,
        field: args.prompts.field.clone(),
        max_prompts: args.prompts.max_prompts,
        batch: args.batch,
        per_prompt: args.per_prompt,
        max_tokens: args.max_tokens,
        special_tokens: !args.no_bos,
    };
    let job = MeasurementJob {
        model: &args.model.spec(),
        autoencoders: &args.baes.selection(),
        out: &args.out,
        run_id: args.run_id.as_deref(),
    };
    Ok(entropy_stage(&job, &config, &mut Terminal::default())?)
}
