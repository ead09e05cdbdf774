//! `bae inspect`: what a model is, in one screen.

use clap::Args;

use crate::shared::ModelArgs;
use bae_lm::{Activation, HookPoint, Model, ModelSource, RopeScaling};

use crate::shared::print;

/// Arguments of `bae inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let model = args.model.load()?;
    let info = describe(&model, &args.model.model)?;
    if args.json {
        return print(&format!("{}\n", serde_json::to_string_pretty(&info)?));
    }
    let field = |k: &str| match &info[k] {
        serde_json::Value::Null => "none".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut text = String::new();
    for (label, key) in [
        ("model", "model"),
        ("source", "source"),
        ("architecture", "architecture"),
        ("layers", "layers"),
        ("d_model", "d_model"),
        ("heads", "heads"),
        ("kv heads", "kv_heads"),
        ("head dim", "head_dim"),
        ("ffn", "ffn"),
        ("vocab", "vocab"),
        ("dtype", "dtype"),
        ("parameters", "parameters"),
        ("rope theta", "rope_theta"),
        ("rope scaling", "rope_scaling"),
        ("context", "context"),
        ("sliding window", "sliding_window"),
        ("global blocks", "global_blocks"),
        ("rope local", "rope_local_theta"),
        ("activation", "activation"),
        ("embed scale", "embed_scale"),
        ("attn softcap", "attn_softcap"),
        ("final softcap", "final_softcap"),
        ("tied embeddings", "tied_embeddings"),
        ("tokenizer", "tokenizer"),
        ("BOS by default", "bos_by_default"),
    ] {
        text += &format!("{label:<16} {}\n", field(key));
    }
    let hooks = info["hook_points"].as_array().map(Vec::len).unwrap_or(0);
    text += &format!("hook points      {hooks}:\n");
    for p in info["hook_points"].as_array().into_iter().flatten() {
        text += &format!("  {}\n", p.as_str().unwrap_or_default());
    }
    print(&text)
}

fn describe(model: &Model, spec: &str) -> anyhow::Result<serde_json::Value> {
    let c = model.config();
    let source = match &model.source {
        ModelSource::HfDir { hub_id: Some(_), dir, .. } => format!("Hugging Face cache ({})", dir.display()),
        ModelSource::HfDir { .. } => "Hugging Face directory".to_string(),
        ModelSource::Gguf(_) => "GGUF (dequantized at load)".to_string(),
    };
    let scaling = match &c.rope_scaling {
        None => "none".to_string(),
        Some(RopeScaling::Llama3 { factor, .. }) => format!("llama3 (factor {factor})"),
        Some(RopeScaling::Linear { factor }) => format!("linear (factor {factor})"),
        Some(RopeScaling::FreqFactors(f)) => format!("per-frequency factors ({} values)", f.len()),
    };
    let (tokenizer, bos) = match &model.tokenizer {
        Some(t) => (t.origin().to_string(), serde_json::json!(t.adds_bos()?)),
        None => ("none (pass --tokenizer)".to_string(), serde_json::Value::Null),
    };
    Ok(serde_json::json!({
        "model": spec,
        "source": source,
        "architecture": c.family.name(),
        "layers": c.num_layers,
        "d_model": c.hidden_size,
        "heads": c.num_heads,
        "kv_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "ffn": c.intermediate_size,
        "vocab": c.vocab_size,
        "dtype": format!("{:?}", model.decoder.dtype()).to_lowercase(),
        "parameters": c.parameter_count(),
        "rope_theta": c.rope_theta,
        "rope_scaling": scaling,
        "context": c.max_position_embeddings,
        "sliding_window": c.sliding_window,
        // Blocks attending to the whole prefix, listed when some blocks slide.
        "global_blocks": c.sliding_window.map(|_| {
            (0..c.num_layers).filter(|&l| !c.sliding_layers[l]).collect::<Vec<_>>()
        }),
        "rope_local_theta": c.rope_local_theta,
        "activation": match c.activation {
            Activation::Silu => "silu",
            Activation::GeluTanh => "gelu_tanh",
        },
        "embed_scale": c.embed_scale,
        "attn_softcap": c.attn_softcap,
        "final_softcap": c.final_softcap,
        "tied_embeddings": c.tie_word_embeddings,
        "tokenizer": tokenizer,
        "bos_by_default": bos,
        "hook_points": HookPoint::all(c.num_layers).iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    }))
}
