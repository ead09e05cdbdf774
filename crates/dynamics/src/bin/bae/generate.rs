//! `bae generate`: greedy continuation and prompt NLL, a quick check that a model
//! loaded correctly.

use clap::Args;

use crate::shared::ModelArgs;
use bae_lm::eval::{greedy, mean_nll};

/// Arguments of `bae generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// The prompt to continue.
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// Most tokens to add.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: usize,
    /// Do not add the tokenizer's special tokens (see `hidden-states --no-bos`).
    #[arg(long)]
    pub no_bos: bool,
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let model = args.model.load()?;
    let tok = model.tokenizer()?;
    let ids = tok.encode(&args.prompt, !args.no_bos)?;
    if ids.is_empty() {
        anyhow::bail!("the prompt {:?} has no tokens", args.prompt);
    }
    if ids.len() >= 2 {
        println!(
            "prompt NLL: {:.4} nats/token over {} tokens",
            mean_nll(&model.decoder, &ids)?,
            ids.len() - 1
        );
    }
    let new = greedy(&model.decoder, &ids, args.max_tokens, &model.config().eos_token_ids)?;
    println!("{}{}", args.prompt, tok.decode(&new)?);
    Ok(())
}
