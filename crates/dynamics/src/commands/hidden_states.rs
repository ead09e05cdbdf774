//! `bae hidden-states`: residual-stream activations of a few prompts, saved as
//! safetensors (`p{i}.{hook}` `[seq, d_model]` f32, `p{i}.input_ids` `[seq]` u32).

use std::collections::HashMap;

use anyhow::Context;
use bae_lm::{select_hooks, Batch, ForwardRequest, Padding};
use candle_core::{DType, Tensor};

use crate::cli::HiddenStatesArgs;
use crate::model_args::load_model;
use crate::output::write_atomically;

pub fn run(args: &HiddenStatesArgs) -> anyhow::Result<()> {
    if args.batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let model = load_model(&args.model)?;
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
