//! Model configuration: the runtime [`DecoderConfig`] the decoder runs from, and the
//! parsing of Hugging Face `config.json` files into it. GGUF metadata is mapped to the
//! same struct in `gguf.rs`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{read_file, LmError, Result};

/// The architecture families the decoder implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama 1/2/3/3.x, SmolLM/SmolLM2, TinyLlama and other `LlamaForCausalLM` models.
    Llama,
    /// Mistral (`MistralForCausalLM`): Llama with an optional sliding attention window.
    Mistral,
    /// Qwen2 / Qwen2.5 (`Qwen2ForCausalLM`): Llama with biases on q, k and v.
    Qwen2,
    /// Qwen3 (`Qwen3ForCausalLM`): Llama with an RMS norm on each query and key head.
    Qwen3,
    /// Gemma (`GemmaForCausalLM`): GELU-tanh MLP, `(1 + w)` norms, embeddings scaled by sqrt(d_model).
    Gemma,
    /// Gemma 2: Gemma plus sandwich norms, logit soft-capping and alternating sliding windows.
    Gemma2,
    /// Gemma 3 text models: Gemma 2 without soft-capping, plus q/k norms and a local rope base.
    Gemma3,
}

impl Family {
    /// The `model_type` string Hugging Face uses for this family.
    pub fn name(&self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Gemma => "gemma",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3_text",
        }
    }

    /// Whether this is one of the Gemma families.
    pub fn is_gemma(&self) -> bool {
        matches!(self, Family::Gemma | Family::Gemma2 | Family::Gemma3)
    }

    /// Whether blocks carry Gemma 2/3's four "sandwich" norms.
    pub fn has_sandwich_norms(&self) -> bool {
        matches!(self, Family::Gemma2 | Family::Gemma3)
    }

    /// The MLP activation the family uses.
    pub fn activation(&self) -> Activation {
        if self.is_gemma() {
            Activation::GeluTanh
        } else {
            Activation::Silu
        }
    }

    /// The family's fixed layout of sliding-window blocks for `num_layers` blocks, when it
    /// has one: Gemma 2 alternates starting with a sliding block; in Gemma 3 every
    /// `pattern`-th block (default 6) is global. Block l slides unless (l + 1) is a
    /// multiple of the pattern, transformers' rule.
    pub fn fixed_sliding_layers(&self, num_layers: usize, pattern: Option<usize>) -> Option<Vec<bool>> {
        let pattern = match self {
            Family::Gemma2 => 2,
            Family::Gemma3 => pattern.unwrap_or(6).max(1),
            _ => return None,
        };
        Some((0..num_layers).map(|l| (l + 1) % pattern != 0).collect())
    }
}

/// The MLP's activation (the MLP is always gated: `down(act(gate(x)) * up(x))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (Llama, Mistral, Qwen).
    Silu,
    /// GELU with the tanh approximation (Gemma's `gelu_pytorch_tanh`).
    GeluTanh,
}

/// How rotary position frequencies are rescaled for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Llama 3.1 style: low frequencies divided by `factor`, high ones kept, smooth in between.
    Llama3 {
        /// Divisor of the low frequencies.
        factor: f64,
        /// Wavelengths above `original_max_position_embeddings / low_freq_factor` are scaled.
        low_freq_factor: f64,
        /// Wavelengths below `original_max_position_embeddings / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context length the model was pre-trained with.
        original_max_position_embeddings: f64,
    },
    /// Linear position interpolation: every frequency divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// Per-frequency divisors as llama.cpp stores them (`rope_freqs.weight` in GGUF).
    FreqFactors(Vec<f64>),
}

/// Everything the decoder needs to know about a model's shape and arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// Architecture family.
    pub family: Family,
    /// Vocabulary size (rows of the embedding matrix).
    pub vocab_size: usize,
    /// Residual stream width (d_model).
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_layers: usize,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (grouped-query attention when smaller than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one attention head.
    pub head_dim: usize,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// Base of the rotary position frequencies.
    pub rope_theta: f64,
    /// Optional rescaling of the rotary frequencies.
    pub rope_scaling: Option<RopeScaling>,
    /// Longest context the model was built for.
    pub max_position_embeddings: usize,
    /// On sliding layers, keys further back than this many positions (counting the
    /// query itself) are masked.
    pub sliding_window: Option<usize>,
    /// Which blocks use the sliding window (one entry per block); the others attend to
    /// the whole prefix.
    pub sliding_layers: Vec<bool>,
    /// Rope base of the sliding-window blocks when it differs from `rope_theta` (Gemma 3);
    /// those blocks get no rope scaling.
    pub rope_local_theta: Option<f64>,
    /// The MLP activation.
    pub activation: Activation,
    /// Norm weights are offsets from 1: `y = x / rms(x) * (1 + w)` (Gemma).
    pub norm_plus_one: bool,
    /// Multiplier of the embeddings before the first block (Gemma: sqrt(d_model)).
    pub embed_scale: Option<f64>,
    /// Gemma 2/3 "sandwich" norms: `post_attention_layernorm` on the attention output,
    /// `pre_feedforward_layernorm` before the MLP, `post_feedforward_layernorm` after it.
    /// Without them `post_attention_layernorm` is the pre-MLP norm (Llama naming).
    pub sandwich_norms: bool,
    /// Multiplier of attention scores (head_dim^-1/2, or Gemma's query_pre_attn_scalar^-1/2).
    pub attn_scale: f64,
    /// Attention scores become `cap * tanh(score / cap)` (Gemma 2).
    pub attn_softcap: Option<f64>,
    /// Logits become `cap * tanh(logit / cap)` (Gemma 2).
    pub final_softcap: Option<f64>,
    /// Whether the unembedding reuses the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Whether the q, k and v projections carry biases.
    pub qkv_bias: bool,
    /// Whether the attention output projection carries a bias.
    pub o_bias: bool,
    /// Whether each query and key head is RMS-normalised (over head_dim) before RoPE.
    pub qk_norm: bool,
    /// Whether the MLP projections carry biases.
    pub mlp_bias: bool,
    /// Beginning-of-sequence token id, when the model has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token ids.
    pub eos_token_ids: Vec<u32>,
}

/// The largest size a model file may declare for each field, far above any released
/// model's (a 405B Llama has 126 blocks, d_model 16,384, 128 heads; Gemma 3 a 262,144-token
/// vocabulary), so that a crafted file is refused by name before anything is allocated
/// from its numbers, and products of sizes cannot overflow.
pub const SIZE_LIMITS: [(&str, usize); 9] = [
    ("vocab_size", 1 << 24),
    ("hidden_size", 1 << 16),
    ("intermediate_size", 1 << 20),
    ("num_hidden_layers", 1 << 12),
    ("num_attention_heads", 1 << 12),
    ("num_key_value_heads", 1 << 12),
    ("head_dim", 1 << 14),
    ("max_position_embeddings", 1 << 26),
    ("sliding_window", 1 << 26),
];

/// `value` if it is within `field`'s entry of [`SIZE_LIMITS`] (read as `name` in the file
/// `origin`), else an error naming both.
pub fn bounded_size(origin: &str, field: &str, name: &str, value: usize) -> Result<usize> {
    let limit = SIZE_LIMITS.iter().find(|(f, _)| *f == field).map_or(usize::MAX, |(_, l)| *l);
    if value > limit {
        return Err(LmError::Config {
            origin: origin.to_string(),
            field: name.to_string(),
            message: format!("= {value} is larger than any model this tool can host (at most {limit})"),
        });
    }
    Ok(value)
}

impl DecoderConfig {
    /// Checks the relations between sizes that the decoder relies on.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(LmError::Config { origin: origin.to_string(), field: field.to_string(), message })
        };
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
        ] {
            if value == 0 {
                return bad(field, "is 0, expected a positive integer".into());
            }
            bounded_size(origin, field, field, value)?;
        }
        if self.max_position_embeddings == 0 {
            return bad("max_position_embeddings", "is 0, expected a positive context length".into());
        }
        bounded_size(
            origin,
            "max_position_embeddings",
            "max_position_embeddings",
            self.max_position_embeddings,
        )?;
        if let Some(window) = self.sliding_window {
            bounded_size(origin, "sliding_window", "sliding_window", window)?;
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(
                "num_key_value_heads",
                format!("= {} does not divide num_attention_heads = {}", self.num_kv_heads, self.num_heads),
            );
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                format!("= {} is odd, rotary embeddings need an even width", self.head_dim),
            );
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad("rms_norm_eps", format!("= {}, expected a finite number > 0", self.rms_norm_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad("rope_theta", format!("= {}, expected a finite number > 0", self.rope_theta));
        }
        if self.sliding_layers.len() != self.num_layers {
            return bad(
                "layer_types",
                format!(
                    "lists {} layers, expected num_hidden_layers = {}",
                    self.sliding_layers.len(),
                    self.num_layers
                ),
            );
        }
        if self.sliding_window.is_none() && self.sliding_layers.iter().any(|&s| s) {
            return bad("sliding_window", "is missing, but some layers use sliding attention".into());
        }
        if self.sliding_window == Some(0) {
            return bad("sliding_window", "is 0, expected a positive window or null".into());
        }
        if !(self.attn_scale.is_finite() && self.attn_scale > 0.0) {
            return bad(
                "query_pre_attn_scalar",
                format!("gives attention scale {}, expected a positive number", self.attn_scale),
            );
        }
        for (field, value) in [
            ("attn_logit_softcapping", self.attn_softcap),
            ("final_logit_softcapping", self.final_softcap),
            ("rope_local_base_freq", self.rope_local_theta),
        ] {
            if let Some(v) = value {
                if !(v.is_finite() && v > 0.0) {
                    return bad(field, format!("= {v}, expected a positive number or null"));
                }
            }
        }
        if let Some(RopeScaling::FreqFactors(f)) = &self.rope_scaling {
            if f.len() != self.head_dim / 2 {
                return bad(
                    "rope_freqs",
                    format!("has {} factors, expected head_dim / 2 = {}", f.len(), self.head_dim / 2),
                );
            }
        }
        Ok(())
    }

    /// Number of parameters, counting a tied unembedding once.
    pub fn parameter_count(&self) -> usize {
        let d = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let attn = d * q
            + 2 * d * kv
            + q * d
            + if self.qkv_bias { q + 2 * kv } else { 0 }
            + if self.o_bias { d } else { 0 }
            + if self.qk_norm { 2 * self.head_dim } else { 0 };
        let mlp =
            3 * d * self.intermediate_size + if self.mlp_bias { 2 * self.intermediate_size + d } else { 0 };
        let block = attn + mlp + if self.sandwich_norms { 4 * d } else { 2 * d };
        let embed = self.vocab_size * d;
        embed + self.num_layers * block + d + if self.tie_word_embeddings { 0 } else { embed }
    }
}

/// The fields of a Hugging Face `config.json` that Llama-family models use.
#[derive(Debug, Deserialize)]
struct HfConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_scaling: Option<HfRopeParameters>,
    /// transformers 5 folds `rope_theta` and `rope_scaling` into this one object.
    rope_parameters: Option<HfRopeParameters>,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: usize,
    sliding_window: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    /// Qwen2: whether blocks from `max_window_layers` on use the sliding window.
    #[serde(default)]
    use_sliding_window: bool,
    max_window_layers: Option<usize>,
    #[serde(default)]
    mlp_bias: bool,
    hidden_act: Option<String>,
    /// Gemma 2/3 name the activation this way.
    hidden_activation: Option<String>,
    query_pre_attn_scalar: Option<f64>,
    attn_logit_softcapping: Option<f64>,
    final_logit_softcapping: Option<f64>,
    /// Gemma 3 (older configs): every n-th block is global, the rest slide.
    sliding_window_pattern: Option<usize>,
    /// transformers 5: "sliding_attention" or "full_attention" per block.
    layer_types: Option<Vec<String>>,
    rope_local_base_freq: Option<f64>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<EosIds>,
}

fn default_max_positions() -> usize {
    4096
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EosIds {
    One(u32),
    Many(Vec<u32>),
}

#[derive(Debug, Deserialize)]
struct HfRopeParameters {
    rope_type: Option<String>,
    /// Older configs name the kind `type`.
    #[serde(rename = "type")]
    kind: Option<String>,
    rope_theta: Option<f64>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<f64>,
}

impl HfRopeParameters {
    fn to_scaling(&self, origin: &str) -> Result<Option<RopeScaling>> {
        let kind = self.rope_type.as_deref().or(self.kind.as_deref()).unwrap_or("default");
        let need = |name: &str, v: Option<f64>| {
            v.ok_or_else(|| LmError::Config {
                origin: origin.to_string(),
                field: format!("rope_scaling.{name}"),
                message: format!("is missing, required for rope_type {kind:?}"),
            })
        };
        match kind {
            "default" => Ok(None),
            "linear" => Ok(Some(RopeScaling::Linear { factor: need("factor", self.factor)? })),
            "llama3" => Ok(Some(RopeScaling::Llama3 {
                factor: need("factor", self.factor)?,
                low_freq_factor: need("low_freq_factor", self.low_freq_factor)?,
                high_freq_factor: need("high_freq_factor", self.high_freq_factor)?,
                original_max_position_embeddings: need(
                    "original_max_position_embeddings",
                    self.original_max_position_embeddings,
                )?,
            })),
            other => Err(LmError::Config {
                origin: origin.to_string(),
                field: "rope_scaling.rope_type".into(),
                message: format!(
                    "= {other:?} is not supported, expected \"default\", \"linear\" or \"llama3\""
                ),
            }),
        }
    }
}

/// Architectures (from `architectures` or `model_type`) this decoder loads.
pub const SUPPORTED_ARCHITECTURES: &str = "LlamaForCausalLM (llama), MistralForCausalLM (mistral), \
    Qwen2ForCausalLM (qwen2), Qwen3ForCausalLM (qwen3), GemmaForCausalLM (gemma), \
    Gemma2ForCausalLM (gemma2), Gemma3ForCausalLM (gemma3_text)";

fn family_of(cfg: &HfConfig, origin: &str) -> Result<Family> {
    let arch = cfg.architectures.first().map(String::as_str);
    let family = match (arch, cfg.model_type.as_deref()) {
        (Some("LlamaForCausalLM"), _) | (None, Some("llama")) => Some(Family::Llama),
        (Some("MistralForCausalLM"), _) | (None, Some("mistral")) => Some(Family::Mistral),
        (Some("Qwen2ForCausalLM"), _) | (None, Some("qwen2")) => Some(Family::Qwen2),
        (Some("Qwen3ForCausalLM"), _) | (None, Some("qwen3")) => Some(Family::Qwen3),
        (Some("GemmaForCausalLM"), _) | (None, Some("gemma")) => Some(Family::Gemma),
        (Some("Gemma2ForCausalLM"), _) | (None, Some("gemma2")) => Some(Family::Gemma2),
        (Some("Gemma3ForCausalLM"), _) | (None, Some("gemma3_text")) => Some(Family::Gemma3),
        _ => None,
    };
    family.ok_or_else(|| LmError::UnsupportedArchitecture {
        origin: origin.to_string(),
        arch: arch
            .or(cfg.model_type.as_deref())
            .unwrap_or("<none: no `architectures` or `model_type` field>")
            .to_string(),
        expected: SUPPORTED_ARCHITECTURES.to_string(),
    })
}

fn activation_of(cfg: &HfConfig, family: Family, origin: &str) -> Result<Activation> {
    let (field, name) = match (&cfg.hidden_activation, &cfg.hidden_act) {
        (Some(a), _) => ("hidden_activation", a.as_str()),
        (None, Some(a)) => ("hidden_act", a.as_str()),
        (None, None) => return Ok(family.activation()),
    };
    match (name, family.is_gemma()) {
        ("silu", false) => Ok(Activation::Silu),
        // transformers runs Gemma's legacy "gelu" as the tanh approximation too.
        ("gelu_pytorch_tanh" | "gelu", true) => Ok(Activation::GeluTanh),
        _ => Err(LmError::Config {
            origin: origin.to_string(),
            field: field.into(),
            message: format!(
                "= {name:?}, expected {} for {}",
                if family.is_gemma() { "\"gelu_pytorch_tanh\"" } else { "\"silu\"" },
                family.name()
            ),
        }),
    }
}

/// Which blocks use the sliding window, from `layer_types`, a Gemma 3 pattern, or the
/// family's fixed layout.
fn sliding_layers_of(cfg: &HfConfig, family: Family, origin: &str) -> Result<Vec<bool>> {
    let n = bounded_size(origin, "num_hidden_layers", "num_hidden_layers", cfg.num_hidden_layers)?;
    if let Some(types) = &cfg.layer_types {
        return types
            .iter()
            .enumerate()
            .map(|(i, t)| match t.as_str() {
                "sliding_attention" => Ok(true),
                "full_attention" => Ok(false),
                other => Err(LmError::Config {
                    origin: origin.to_string(),
                    field: format!("layer_types[{i}]"),
                    message: format!("= {other:?}, expected \"sliding_attention\" or \"full_attention\""),
                }),
            })
            .collect();
    }
    Ok(match family {
        Family::Mistral => vec![cfg.sliding_window.is_some(); n],
        // transformers: block l slides when use_sliding_window and l >= max_window_layers.
        Family::Qwen2 | Family::Qwen3 if cfg.use_sliding_window => {
            let first = cfg.max_window_layers.unwrap_or(0);
            (0..n).map(|l| l >= first).collect()
        }
        _ => {
            if cfg.sliding_window_pattern == Some(0) {
                return Err(LmError::Config {
                    origin: origin.to_string(),
                    field: "sliding_window_pattern".into(),
                    message: "is 0, expected a positive period (every n-th block is global)".into(),
                });
            }
            family.fixed_sliding_layers(n, cfg.sliding_window_pattern).unwrap_or_else(|| vec![false; n])
        }
    })
}

/// Parses a Hugging Face `config.json` given as text; `origin` names it in errors.
pub fn parse_hf_config(text: &str, origin: &str) -> Result<DecoderConfig> {
    let cfg: HfConfig = serde_json::from_str(text)
        .map_err(|e| LmError::Json { path: origin.into(), message: e.to_string() })?;
    let family = family_of(&cfg, origin)?;
    let activation = activation_of(&cfg, family, origin)?;
    let sliding_layers = sliding_layers_of(&cfg, family, origin)?;
    let rope = cfg.rope_parameters.as_ref().or(cfg.rope_scaling.as_ref());
    let rope_theta = cfg
        .rope_theta
        .or_else(|| cfg.rope_parameters.as_ref().and_then(|p| p.rope_theta))
        .unwrap_or(10_000.0);
    let rope_scaling = match rope {
        Some(p) => p.to_scaling(origin)?,
        None => None,
    };
    // A zero head count yields head_dim 0, which validate() reports by name.
    let head_dim = cfg.head_dim.unwrap_or(cfg.hidden_size.checked_div(cfg.num_attention_heads).unwrap_or(0));
    if cfg.head_dim.is_none()
        && cfg.num_attention_heads > 0
        && !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
    {
        return Err(LmError::Config {
            origin: origin.to_string(),
            field: "num_attention_heads".into(),
            message: format!(
                "= {} does not divide hidden_size = {} and no head_dim is given",
                cfg.num_attention_heads, cfg.hidden_size
            ),
        });
    }
    // Qwen2's config has no attention_bias key: its q, k and v always carry biases.
    let qkv_bias = cfg.attention_bias.unwrap_or(family == Family::Qwen2);
    let config = DecoderConfig {
        family,
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_layers: cfg.num_hidden_layers,
        num_heads: cfg.num_attention_heads,
        num_kv_heads: cfg.num_key_value_heads.unwrap_or(cfg.num_attention_heads),
        head_dim,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta,
        rope_scaling,
        max_position_embeddings: cfg.max_position_embeddings,
        // Llama configs sometimes carry a `sliding_window` key too, unused.
        sliding_window: if sliding_layers.iter().any(|&s| s) { cfg.sliding_window } else { None },
        sliding_layers,
        rope_local_theta: if family == Family::Gemma3 {
            cfg.rope_local_base_freq.or(Some(10_000.0))
        } else {
            None
        },
        activation,
        norm_plus_one: family.is_gemma(),
        embed_scale: family.is_gemma().then(|| (cfg.hidden_size as f64).sqrt()),
        sandwich_norms: family.has_sandwich_norms(),
        attn_scale: 1.0 / cfg.query_pre_attn_scalar.unwrap_or(head_dim as f64).sqrt(),
        attn_softcap: cfg.attn_logit_softcapping,
        final_softcap: cfg.final_logit_softcapping,
        // Gemma ties its embeddings unless told otherwise; the others do not.
        tie_word_embeddings: cfg.tie_word_embeddings.unwrap_or(family.is_gemma()),
        qkv_bias,
        o_bias: qkv_bias && family != Family::Qwen2,
        qk_norm: matches!(family, Family::Qwen3 | Family::Gemma3),
        mlp_bias: cfg.mlp_bias,
        bos_token_id: cfg.bos_token_id,
        eos_token_ids: match cfg.eos_token_id {
            Some(EosIds::One(id)) => vec![id],
            Some(EosIds::Many(ids)) => ids,
            None => vec![],
        },
    };
    config.validate(origin)?;
    Ok(config)
}

/// Reads and parses a Hugging Face `config.json`.
pub fn load_hf_config(path: &Path) -> Result<DecoderConfig> {
    let bytes = read_file(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| LmError::Json { path: path.to_path_buf(), message: format!("not UTF-8: {e}") })?;
    parse_hf_config(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536,
      "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
      "rms_norm_eps": 1e-5, "rope_theta": 100000, "vocab_size": 49152,
      "max_position_embeddings": 8192, "tie_word_embeddings": true, "bos_token_id": 1,
      "eos_token_id": 2, "hidden_act": "silu"
    }"#;

    #[test]
    fn parses_a_smollm2_config() {
        let c = parse_hf_config(SMOL, "config.json").unwrap();
        assert_eq!(c.family, Family::Llama);
        assert_eq!(c.head_dim, 64);
        assert_eq!(c.num_kv_heads, 3);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.eos_token_ids, vec![2]);
        // SmolLM2-135M has 134,515,008 parameters.
        assert_eq!(c.parameter_count(), 134_515_008);
    }

    #[test]
    fn parses_llama3_rope_scaling_in_both_layouts() {
        let old = SMOL.replace(
            "\"hidden_act\": \"silu\"",
            r#""hidden_act": "silu", "rope_scaling": {"rope_type": "llama3", "factor": 32.0,
               "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#,
        );
        let new = SMOL.replace("\"rope_theta\": 100000,", "").replace(
            "\"hidden_act\": \"silu\"",
            r#""hidden_act": "silu", "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,
               "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}"#,
        );
        let a = parse_hf_config(&old, "a").unwrap();
        let b = parse_hf_config(&new, "b").unwrap();
        assert_eq!(a.rope_scaling, b.rope_scaling);
        assert!(matches!(a.rope_scaling, Some(RopeScaling::Llama3 { factor, .. }) if factor == 32.0));
        assert_eq!(b.rope_theta, 500000.0);
    }

    #[test]
    fn missing_field_is_named() {
        let text = SMOL.replace("\"hidden_size\": 576,", "");
        let err = parse_hf_config(&text, "cfg/config.json").unwrap_err().to_string();
        assert!(err.contains("hidden_size") && err.contains("cfg/config.json"), "{err}");
    }

    #[test]
    fn unknown_architecture_is_named() {
        let text = SMOL.replace("LlamaForCausalLM", "GPTNeoXForCausalLM");
        let err = parse_hf_config(&text, "config.json").unwrap_err().to_string();
        assert!(err.contains("GPTNeoXForCausalLM") && err.contains("LlamaForCausalLM"), "{err}");
    }

    #[test]
    fn sizes_beyond_any_model_and_non_finite_numbers_are_refused_by_name() {
        for (from, to, field) in [
            ("\"num_hidden_layers\": 30", "\"num_hidden_layers\": 1099511627776", "num_hidden_layers"),
            ("\"hidden_size\": 576", "\"hidden_size\": 1099511627776, \"head_dim\": 64", "hidden_size"),
            (
                "\"num_attention_heads\": 9",
                "\"num_attention_heads\": 9, \"head_dim\": 4611686018427387904",
                "head_dim",
            ),
            ("\"vocab_size\": 49152", "\"vocab_size\": 1099511627776", "vocab_size"),
            (
                "\"max_position_embeddings\": 8192",
                "\"max_position_embeddings\": 0",
                "max_position_embeddings",
            ),
        ] {
            let text = SMOL.replace(from, to);
            assert_ne!(text, SMOL, "{from} is not in the fixture");
            let err = parse_hf_config(&text, "config.json").unwrap_err().to_string();
            assert!(err.contains(field) && err.contains("config.json"), "{to}: {err}");
        }
        let infinite =
            DecoderConfig { rope_theta: f64::INFINITY, ..parse_hf_config(SMOL, "config.json").unwrap() };
        assert!(infinite.validate("config.json").unwrap_err().to_string().contains("rope_theta"));
    }

    #[test]
    fn inconsistent_heads_are_rejected() {
        let text = SMOL.replace("\"num_key_value_heads\": 3", "\"num_key_value_heads\": 4");
        let err = parse_hf_config(&text, "config.json").unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads"), "{err}");
    }

    #[test]
    fn sliding_window_only_applies_to_mistral() {
        let llama = SMOL.replace("\"hidden_act\"", "\"sliding_window\": 16, \"hidden_act\"");
        assert_eq!(parse_hf_config(&llama, "x").unwrap().sliding_window, None);
        let mistral = llama.replace("LlamaForCausalLM", "MistralForCausalLM");
        assert_eq!(parse_hf_config(&mistral, "x").unwrap().sliding_window, Some(16));
    }

    #[test]
    fn qwen_families_get_their_switches() {
        let qwen2 = SMOL.replace("LlamaForCausalLM", "Qwen2ForCausalLM");
        let c = parse_hf_config(&qwen2, "x").unwrap();
        assert_eq!(c.family, Family::Qwen2);
        assert!(c.qkv_bias && !c.o_bias && !c.qk_norm, "{c:?}");
        let qwen3 = SMOL.replace("LlamaForCausalLM", "Qwen3ForCausalLM");
        let c = parse_hf_config(&qwen3, "x").unwrap();
        assert!(!c.qkv_bias && c.qk_norm, "{c:?}");
        let windowed = qwen2.replace(
            "\"hidden_act\"",
            "\"use_sliding_window\": true, \"max_window_layers\": 28, \"sliding_window\": 64, \"hidden_act\"",
        );
        let c = parse_hf_config(&windowed, "x").unwrap();
        assert_eq!(c.sliding_window, Some(64));
        assert_eq!(c.sliding_layers.iter().filter(|&&s| s).count(), 2, "blocks 28 and 29 slide");
        let unwindowed = windowed.replace("\"sliding_window\": 64, ", "");
        let err = parse_hf_config(&unwindowed, "x").unwrap_err().to_string();
        assert!(err.contains("sliding_window"), "{err}");
    }

    const GEMMA3_270M: &str = r#"{
      "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 640,
      "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4,
      "num_key_value_heads": 1, "head_dim": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
      "rope_local_base_freq": 10000.0, "vocab_size": 262144, "max_position_embeddings": 32768,
      "sliding_window": 512, "query_pre_attn_scalar": 256, "hidden_activation": "gelu_pytorch_tanh",
      "sliding_window_pattern": 6, "attn_logit_softcapping": null, "final_logit_softcapping": null
    }"#;

    #[test]
    fn parses_a_gemma3_270m_config() {
        let c = parse_hf_config(GEMMA3_270M, "x").unwrap();
        assert_eq!(c.family, Family::Gemma3);
        assert!(c.tie_word_embeddings && c.norm_plus_one && c.sandwich_norms && c.qk_norm);
        assert_eq!(c.activation, Activation::GeluTanh);
        assert_eq!(c.embed_scale, Some(640f64.sqrt()));
        assert_eq!(c.rope_local_theta, Some(10000.0));
        assert_eq!(c.attn_scale, 1.0 / 16.0);
        // Every 6th block is global.
        let global: Vec<usize> = (0..18).filter(|&l| !c.sliding_layers[l]).collect();
        assert_eq!(global, vec![5, 11, 17]);
        // transformers 5 lists the layer types instead; both give the same layout.
        let types: Vec<&str> = c
            .sliding_layers
            .iter()
            .map(|&s| if s { "sliding_attention" } else { "full_attention" })
            .collect();
        let listed = GEMMA3_270M.replace(
            "\"sliding_window_pattern\": 6",
            &format!("\"layer_types\": {}", serde_json::to_string(&types).unwrap()),
        );
        assert_eq!(parse_hf_config(&listed, "x").unwrap().sliding_layers, c.sliding_layers);
        let bad = GEMMA3_270M.replace("gelu_pytorch_tanh", "silu");
        assert!(parse_hf_config(&bad, "x").unwrap_err().to_string().contains("hidden_activation"));
    }
}
