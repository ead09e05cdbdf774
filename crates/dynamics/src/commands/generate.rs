//! `bae generate`: greedy continuation and prompt NLL, a quick check that a model
//! loaded correctly.

use bae_lm::eval::{greedy, mean_nll};

use crate::cli::GenerateArgs;
use crate::model_args::load_model;

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let model = load_model(&args.model)?;
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
