//! Tiny seeded models for tests: configs, random weights, and writers for the
//! Hugging Face layout (single or sharded safetensors) and for GGUF (with q/k rows
//! permuted the way llama.cpp stores them). Used by this crate's tests, the CLI's
//! end-to-end tests, and anyone checking a loader against the decoder.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::config::{Activation, DecoderConfig, Family, RopeScaling};
use crate::error::{LmError, Result};
use crate::gguf::{
    architecture_of_family, gguf_name, llama_cpp_permutes_qk, permute_rows, stores_norms_plus_one,
};

/// A 2-block, d_model 64 config with grouped-query attention (4 query, 2 kv heads).
pub fn tiny_config(family: Family) -> DecoderConfig {
    DecoderConfig {
        family,
        vocab_size: 300,
        hidden_size: 64,
        intermediate_size: 96,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 16,
        rms_norm_eps: 1e-5,
        rope_theta: if family == Family::Gemma3 { 1_000_000.0 } else { 10_000.0 },
        rope_scaling: None,
        max_position_embeddings: 256,
        sliding_window: match family {
            Family::Mistral | Family::Gemma2 | Family::Gemma3 => Some(6),
            _ => None,
        },
        // Gemma 2 alternates from block 0; with 2 blocks Gemma 3's pattern is set to 2.
        sliding_layers: match family {
            Family::Mistral => vec![true, true],
            Family::Gemma2 | Family::Gemma3 => vec![true, false],
            _ => vec![false, false],
        },
        rope_local_theta: (family == Family::Gemma3).then_some(10_000.0),
        activation: if family.is_gemma() { Activation::GeluTanh } else { Activation::Silu },
        norm_plus_one: family.is_gemma(),
        embed_scale: family.is_gemma().then_some(8.0),
        sandwich_norms: matches!(family, Family::Gemma2 | Family::Gemma3),
        attn_scale: 0.25,
        attn_softcap: (family == Family::Gemma2).then_some(5.0),
        final_softcap: (family == Family::Gemma2).then_some(3.0),
        // candle-transformers' Gemma models (our oracles) always tie their embeddings.
        tie_word_embeddings: family.is_gemma(),
        qkv_bias: family == Family::Qwen2,
        o_bias: false,
        qk_norm: matches!(family, Family::Qwen3 | Family::Gemma3),
        mlp_bias: false,
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
    }
}

use crate::rng::SplitMix64;

/// Every weight of `cfg` in Hugging Face naming, f32, seeded. Matrices are uniform with
/// scale `1/sqrt(fan_in)`, norm weights near 1, so activations stay O(1) through the blocks.
pub fn random_weights(cfg: &DecoderConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = SplitMix64::new(seed);
    let mut out = HashMap::new();
    let mut put = |name: String, dims: &[usize], scale: f32, offset: f32| {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| offset + scale * rng.symmetric()).collect();
        out.insert(name, Tensor::from_vec(data, dims, &Device::Cpu).expect("shape matches data"));
    };
    let (d, hd, i, v) = (cfg.hidden_size, cfg.head_dim, cfg.intermediate_size, cfg.vocab_size);
    let (qd, kvd) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
    let s = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
    put("model.embed_tokens.weight".into(), &[v, d], 1.0, 0.0);
    if !cfg.tie_word_embeddings {
        put("lm_head.weight".into(), &[v, d], s(d), 0.0);
    }
    // Gemma stores norm weights as offsets from 1.
    let norm_center = if cfg.norm_plus_one { 0.0 } else { 1.0 };
    put("model.norm.weight".into(), &[d], 0.2, norm_center);
    for l in 0..cfg.num_layers {
        let p = format!("model.layers.{l}");
        put(format!("{p}.input_layernorm.weight"), &[d], 0.2, norm_center);
        put(format!("{p}.post_attention_layernorm.weight"), &[d], 0.2, norm_center);
        if cfg.sandwich_norms {
            put(format!("{p}.pre_feedforward_layernorm.weight"), &[d], 0.2, norm_center);
            put(format!("{p}.post_feedforward_layernorm.weight"), &[d], 0.2, norm_center);
        }
        if cfg.qk_norm {
            put(format!("{p}.self_attn.q_norm.weight"), &[hd], 0.2, norm_center);
            put(format!("{p}.self_attn.k_norm.weight"), &[hd], 0.2, norm_center);
        }
        for (name, rows, cols) in [
            ("self_attn.q_proj", qd, d),
            ("self_attn.k_proj", kvd, d),
            ("self_attn.v_proj", kvd, d),
            ("self_attn.o_proj", d, qd),
            ("mlp.gate_proj", i, d),
            ("mlp.up_proj", i, d),
            ("mlp.down_proj", d, i),
        ] {
            put(format!("{p}.{name}.weight"), &[rows, cols], s(cols), 0.0);
            let has_bias = match name {
                "self_attn.o_proj" => cfg.o_bias,
                n if n.starts_with("self_attn") => cfg.qkv_bias,
                _ => cfg.mlp_bias,
            };
            if has_bias {
                put(format!("{p}.{name}.bias"), &[rows], 0.1, 0.0);
            }
        }
    }
    out
}

/// The `config.json` Hugging Face would write for `cfg`.
pub fn hf_config_json(cfg: &DecoderConfig) -> serde_json::Value {
    let arch = match cfg.family {
        Family::Llama => "LlamaForCausalLM",
        Family::Mistral => "MistralForCausalLM",
        Family::Qwen2 => "Qwen2ForCausalLM",
        Family::Qwen3 => "Qwen3ForCausalLM",
        Family::Gemma => "GemmaForCausalLM",
        Family::Gemma2 => "Gemma2ForCausalLM",
        Family::Gemma3 => "Gemma3ForCausalLM",
    };
    let mut json = serde_json::json!({
        "architectures": [arch],
        "model_type": cfg.family.name(),
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "max_position_embeddings": cfg.max_position_embeddings,
        "sliding_window": cfg.sliding_window,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "mlp_bias": cfg.mlp_bias,
        "hidden_act": if cfg.family.is_gemma() { "gelu_pytorch_tanh" } else { "silu" },
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_ids.first(),
        "torch_dtype": "float32",
    });
    if cfg.family.is_gemma() {
        // transformers 5 validates this field as an integer.
        let scalar = 1.0 / (cfg.attn_scale * cfg.attn_scale);
        json["query_pre_attn_scalar"] =
            if scalar.fract() == 0.0 { serde_json::json!(scalar as u64) } else { serde_json::json!(scalar) };
        json["attn_logit_softcapping"] = serde_json::json!(cfg.attn_softcap);
        json["final_logit_softcapping"] = serde_json::json!(cfg.final_softcap);
        json["layer_types"] = serde_json::json!(cfg
            .sliding_layers
            .iter()
            .map(|&s| if s { "sliding_attention" } else { "full_attention" })
            .collect::<Vec<_>>());
    }
    if let Some(theta) = cfg.rope_local_theta {
        json["rope_local_base_freq"] = serde_json::json!(theta);
    }
    // Qwen2 configs have no attention_bias key (its q, k, v biases are implied).
    if cfg.family != Family::Qwen2 {
        json["attention_bias"] = serde_json::json!(cfg.qkv_bias);
    }
    if let Some(RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_max_position_embeddings,
    }) = &cfg.rope_scaling
    {
        json["rope_scaling"] = serde_json::json!({
            "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_max_position_embeddings,
        });
    }
    json
}

/// Special tokens of the tiny tokenizer, at ids 0, 1, 2.
pub const TINY_SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Vocabulary and merges of a tiny byte-level BPE: 3 specials, the 256 byte symbols,
/// then a few English merges. Fits a model vocabulary of 300.
pub fn tiny_vocab_and_merges() -> (Vec<String>, Vec<(String, String)>) {
    let mut tokens: Vec<String> = TINY_SPECIALS.iter().map(|s| s.to_string()).collect();
    let mut bytes: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    bytes.sort_unstable();
    tokens.extend(bytes.iter().map(char::to_string));
    let merges: Vec<(String, String)> = [
        ("t", "h"),
        ("h", "e"),
        ("th", "e"),
        ("Ġ", "t"),
        ("Ġt", "he"),
        ("Ġ", "a"),
        ("i", "n"),
        ("e", "r"),
        ("o", "n"),
        ("Ġ", "c"),
        ("a", "t"),
        ("Ġc", "at"),
        ("Ġ", "s"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    for (a, b) in &merges {
        tokens.push(format!("{a}{b}"));
    }
    (tokens, merges)
}

/// The tiny tokenizer as a Hugging Face tokenizer (SmolLM2's pre-tokenizer: digits
/// split, then GPT-2 byte level).
pub fn tiny_tokenizer() -> Tokenizer {
    let (tokens, merges) = tiny_vocab_and_merges();
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().expect("valid tiny BPE");
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tok.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
    let specials: Vec<AddedToken> = TINY_SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect();
    tok.add_special_tokens(specials).expect("tiny specials are valid");
    tok
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LmError + '_ {
    move |source| LmError::Io { path: path.to_path_buf(), source }
}

/// Writes a Hugging Face directory: config.json, weights (in `shards` files with an
/// index when more than one) and tokenizer.json.
pub fn write_hf_dir(
    dir: &Path,
    cfg: &DecoderConfig,
    weights: &HashMap<String, Tensor>,
    shards: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let config = dir.join("config.json");
    let text = serde_json::to_string_pretty(&hf_config_json(cfg)).expect("json");
    std::fs::write(&config, text).map_err(io_err(&config))?;
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    if shards <= 1 {
        candle_core::safetensors::save(weights, dir.join("model.safetensors"))?;
    } else {
        let mut map = serde_json::Map::new();
        for k in 0..shards {
            let file = format!("model-{:05}-of-{:05}.safetensors", k + 1, shards);
            let part: HashMap<String, Tensor> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| i % shards == k)
                .map(|(_, n)| ((*n).clone(), weights[*n].clone()))
                .collect();
            for n in part.keys() {
                map.insert(n.clone(), file.clone().into());
            }
            candle_core::safetensors::save(&part, dir.join(&file))?;
        }
        let index = dir.join("model.safetensors.index.json");
        let text = serde_json::json!({"metadata": {}, "weight_map": map}).to_string();
        std::fs::write(&index, text).map_err(io_err(&index))?;
    }
    let tok_path = dir.join("tokenizer.json");
    tiny_tokenizer()
        .save(&tok_path, false)
        .map_err(|e| LmError::Tokenizer { origin: tok_path.display().to_string(), message: e.to_string() })?;
    Ok(())
}

/// Writes `weights` as a llama.cpp-style GGUF file (f32 tensors, llama.cpp names, q/k
/// rows permuted, the tiny tokenizer in the metadata).
pub fn write_gguf(path: &Path, cfg: &DecoderConfig, weights: &HashMap<String, Tensor>) -> Result<()> {
    write_gguf_with(path, cfg, weights, &[])
}

/// [`write_gguf`] with metadata entries replaced or added (full keys, e.g.
/// `("general.alignment", Value::U32(0))`): crafted files for the reader's checks.
pub fn write_gguf_with(
    path: &Path,
    cfg: &DecoderConfig,
    weights: &HashMap<String, Tensor>,
    overrides: &[(String, Value)],
) -> Result<()> {
    let arch = architecture_of_family(cfg.family);
    let u32v = |x: usize| Value::U32(x as u32);
    let (tokens, merges) = tiny_vocab_and_merges();
    let token_types: Vec<Value> = (0..tokens.len()).map(|i| Value::I32(if i < 3 { 3 } else { 1 })).collect();
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (format!("{arch}.block_count"), u32v(cfg.num_layers)),
        (format!("{arch}.embedding_length"), u32v(cfg.hidden_size)),
        (format!("{arch}.feed_forward_length"), u32v(cfg.intermediate_size)),
        (format!("{arch}.attention.head_count"), u32v(cfg.num_heads)),
        (format!("{arch}.attention.head_count_kv"), u32v(cfg.num_kv_heads)),
        (format!("{arch}.attention.key_length"), u32v(cfg.head_dim)),
        (format!("{arch}.rope.dimension_count"), u32v(cfg.head_dim)),
        (format!("{arch}.attention.layer_norm_rms_epsilon"), Value::F32(cfg.rms_norm_eps as f32)),
        (format!("{arch}.rope.freq_base"), Value::F32(cfg.rope_theta as f32)),
        (format!("{arch}.context_length"), u32v(cfg.max_position_embeddings)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens.into_iter().map(Value::String).collect())),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.into_iter().map(|(a, b)| Value::String(format!("{a} {b}"))).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(token_types)),
        ("tokenizer.ggml.bos_token_id".into(), u32v(cfg.bos_token_id.unwrap_or(1) as usize)),
        (
            "tokenizer.ggml.eos_token_id".into(),
            u32v(cfg.eos_token_ids.first().copied().unwrap_or(2) as usize),
        ),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ];
    if let Some(w) = cfg.sliding_window {
        meta.push((format!("{arch}.attention.sliding_window"), u32v(w)));
        if cfg.family.is_gemma() {
            let flags = cfg.sliding_layers.iter().map(|&s| Value::Bool(s)).collect();
            meta.push((format!("{arch}.attention.sliding_window_pattern"), Value::Array(flags)));
        }
    }
    for (key, value) in [
        ("attn_logit_softcapping", cfg.attn_softcap),
        ("final_logit_softcapping", cfg.final_softcap),
        ("rope.freq_base_swa", cfg.rope_local_theta),
    ] {
        if let Some(v) = value {
            meta.push((format!("{arch}.{key}"), Value::F32(v as f32)));
        }
    }
    for (key, value) in overrides {
        meta.retain(|(k, _)| k != key);
        meta.push((key.clone(), value.clone()));
    }
    let mut qtensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    for name in names {
        let mut t = weights[name].clone();
        let permuted = llama_cpp_permutes_qk(cfg.family);
        if permuted && name.contains("self_attn.q_proj") {
            t = permute_rows(&t, cfg.num_heads)?;
        } else if permuted && name.contains("self_attn.k_proj") {
            t = permute_rows(&t, cfg.num_kv_heads)?;
        }
        if stores_norms_plus_one(cfg.family) && name.ends_with("norm.weight") {
            t = (t + 1.0)?;
        }
        let g = gguf_name(name, cfg.family)
            .ok_or_else(|| LmError::Input(format!("no GGUF name for tensor {name}")))?;
        qtensors.push((g, QTensor::quantize(&t, candle_core::quantized::GgmlDType::F32)?));
    }
    let mut file = std::fs::File::create(path).map_err(io_err(path))?;
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &meta_refs, &tensor_refs)?;
    Ok(())
}
