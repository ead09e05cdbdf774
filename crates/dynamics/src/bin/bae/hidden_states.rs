//! `bae hidden-states`: residual-stream activations of a few prompts, saved as
//! safetensors (`p{i}.{hook}` `[seq, d_model]` f32, `p{i}.input_ids` `[seq]` u32).

use clap::Args;

use crate::shared::ModelArgs;
use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use bae_lm::{select_hooks, Batch, ForwardRequest, Padding};
use candle_core::{DType, Tensor};

use crate::shared::write_atomically;

/// Arguments of `bae hidden-states`.
#[derive(Debug, Args)]
pub struct HiddenStatesArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// A prompt; repeat the flag for several. Prompt i is saved under `p{i}.*`.
    #[arg(long = "prompt", short = 'p', required = true)]
    pub prompts: Vec<String>,
    /// Hook points to save: a comma-separated list of names or globs, e.g.
    /// `blocks.*.hook_resid_post` or `hook_embed,blocks.3.hook_resid_mid`.
    #[arg(long, default_value = "*")]
    pub hooks: String,
    /// Do not add the tokenizer's special tokens. By default the model's own convention
    /// is followed: SmolLM2 adds no BOS, Llama 2/3 tokenizers prepend one.
    #[arg(long)]
    pub no_bos: bool,
    /// Prompts run together per forward pass (padded; results do not depend on it).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Output safetensors file: one f32 tensor `p{i}.{hook}` of shape [seq, d_model] per
    /// prompt and hook point, plus `p{i}.input_ids` (u32, one per token).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

pub fn run(args: &HiddenStatesArgs) -> anyhow::Result<()> {
    if args.batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let model = args.model.load()?;
    let hooks = select_hooks(&args.hooks, model.config().num_layers)?;
    let tok = model.tokenizer()?;
    let mut prompts = Vec::with_capacity(args.prompts.len());
    for (i, text) in args.prompts.iter().enumerate() {
        let ids = tok.encode(text, !args.no_bos)?;
        if ids.is_empty() {
            anyhow::bail!("prompt {i} ({text:?}) has no tokens");
        }
        prompts.push(ids);
    }
    let device = model.decoder.device().clone();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (chunk_index, chunk) in prompts.chunks(args.batch).enumerate() {
        let batch = Batch::new(chunk, 0, Padding::Right, &device)?;
        let out = model.decoder.forward(&batch, &ForwardRequest::capture(&hooks))?;
        for (b, ids) in chunk.iter().enumerate() {
            let i = chunk_index * args.batch + b;
            tensors.insert(format!("p{i}.input_ids"), Tensor::new(ids.as_slice(), &device)?);
            for (point, acts) in &out.activations {
                let acts = batch.unpad(acts, b)?.to_dtype(DType::F32)?.contiguous()?;
                tensors.insert(format!("p{i}.{point}"), acts);
            }
        }
    }
    let metadata = HashMap::from([
        ("format".to_string(), "bae.hidden-states.v1".to_string()),
        ("model".to_string(), args.model.model.clone()),
        ("hooks".to_string(), hooks.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")),
        ("special_tokens".to_string(), (!args.no_bos).to_string()),
        ("prompts".to_string(), serde_json::to_string(&args.prompts)?),
    ]);
    write_atomically(&args.out, |tmp| {
        safetensors::serialize_to_file(&tensors, Some(metadata), tmp).context("serializing safetensors")
    })?;
    eprintln!("wrote {} prompts x {} hook points to {}", prompts.len(), hooks.len(), args.out.display());
    Ok(())
}
