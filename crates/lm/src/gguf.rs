//! GGUF files (llama.cpp): model config from metadata, dequantized weights renamed to
//! Hugging Face names, and the llama.cpp q/k row permutation undone.
//!
//! llama.cpp's converter reorders the rows of each q and k head from Hugging Face's
//! rotate-half layout `(2, head_dim/2)` to the interleaved layout `(head_dim/2, 2)`.
//! Our decoder uses rotate-half RoPE, so the rows are put back on load; forgetting this
//! raises SmolLM2's NLL by more than 2 nats/token. The converter does this for the
//! Llama-style architectures only (llama, mistral), not for Qwen or Gemma.
//!
//! Gemma files need two more corrections: the converter stores every RMS-norm weight
//! as `1 + w` (we subtract the 1 back so the weights equal Hugging Face's), and Gemma 2/3
//! name their four block norms differently (see [`hf_name`]). Facts llama.cpp hard-codes
//! rather than writes are filled in the same way here: Gemma 3's local rope base 10,000
//! and its every-6th-block-global window layout, Gemma 2's alternating layout, and the
//! query scale of the 27B models.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};

use crate::config::{bounded_size, DecoderConfig, Family, RopeScaling};
use crate::error::{LmError, Result};
use crate::weights::WeightStore;

/// A parsed GGUF header with the path it came from.
pub struct GgufFile {
    path: PathBuf,
    content: Content,
}

impl GgufFile {
    /// Reads the header (metadata and tensor directory) of a GGUF file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|source| LmError::Io { path: path.to_path_buf(), source })?;
        let bad = |message: String| LmError::Gguf { path: path.to_path_buf(), message };
        // candle's reader divides by `general.alignment` and panics on 0; a crafted header
        // must give an error, so the panic is caught here, at our boundary.
        let mut reader = BufReader::new(file);
        let content = crate::guard::catching(|| Content::read(&mut reader))
            .ok_or_else(|| {
                bad("cannot parse the header: the reader gave up on it (is `general.alignment` 0?)".into())
            })?
            .map_err(|e| bad(format!("cannot parse the header: {e}")))?;
        if let Some(value) = content.metadata.get("general.alignment") {
            let alignment = value.to_u64().ok().filter(|a| a.is_power_of_two());
            if alignment.is_none() {
                return Err(bad(format!(
                    "metadata `general.alignment` = {value:?}, expected a power of two"
                )));
            }
        }
        // Tensor offsets count from the aligned data start, hence after the alignment.
        let file_len = reader
            .get_ref()
            .metadata()
            .map_err(|source| LmError::Io { path: path.to_path_buf(), source })?
            .len();
        check_tensor_data(&content, file_len).map_err(bad)?;
        Ok(Self { path: path.to_path_buf(), content })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: String) -> LmError {
        LmError::Gguf { path: self.path.clone(), message }
    }

    /// A metadata value, if present.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn meta_required(&self, key: &str) -> Result<&Value> {
        self.meta(key).ok_or_else(|| self.error(format!("metadata key `{key}` is missing")))
    }

    /// An integer metadata value (any integer width).
    pub fn meta_usize(&self, key: &str) -> Result<Option<usize>> {
        let Some(v) = self.meta(key) else { return Ok(None) };
        let n = match v {
            Value::U8(x) => *x as u64,
            Value::U16(x) => *x as u64,
            Value::U32(x) => *x as u64,
            Value::U64(x) => *x,
            Value::I8(x) if *x >= 0 => *x as u64,
            Value::I16(x) if *x >= 0 => *x as u64,
            Value::I32(x) if *x >= 0 => *x as u64,
            Value::I64(x) if *x >= 0 => *x as u64,
            other => {
                return Err(
                    self.error(format!("metadata `{key}` = {other:?}, expected a non-negative integer"))
                )
            }
        };
        Ok(Some(n as usize))
    }

    fn meta_usize_required(&self, key: &str) -> Result<usize> {
        self.meta_usize(key)?.ok_or_else(|| self.error(format!("metadata key `{key}` is missing")))
    }

    /// A float metadata value.
    pub fn meta_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x as f64)),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(other) => Err(self.error(format!("metadata `{key}` = {other:?}, expected a float"))),
        }
    }

    /// A string metadata value.
    pub fn meta_str(&self, key: &str) -> Result<Option<&str>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.error(format!("metadata `{key}` = {other:?}, expected a string"))),
        }
    }

    /// An array-of-strings metadata value.
    pub fn meta_strings(&self, key: &str) -> Result<Option<Vec<&str>>> {
        let Some(v) = self.meta(key) else { return Ok(None) };
        let Value::Array(items) = v else {
            return Err(self.error(format!("metadata `{key}` is not an array")));
        };
        items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.as_str()),
                other => Err(self.error(format!("metadata `{key}` holds {other:?}, expected strings"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// An array-of-integers metadata value.
    pub fn meta_ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(v) = self.meta(key) else { return Ok(None) };
        let Value::Array(items) = v else {
            return Err(self.error(format!("metadata `{key}` is not an array")));
        };
        items
            .iter()
            .map(|i| match i {
                Value::I32(x) => Ok(*x as i64),
                Value::U32(x) => Ok(*x as i64),
                Value::I64(x) => Ok(*x),
                Value::U8(x) => Ok(*x as i64),
                Value::I8(x) => Ok(*x as i64),
                other => Err(self.error(format!("metadata `{key}` holds {other:?}, expected integers"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A boolean metadata value.
    pub fn meta_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(format!("metadata `{key}` = {other:?}, expected a bool"))),
        }
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str> {
        match self.meta_required("general.architecture")? {
            Value::String(s) => Ok(s),
            other => Err(self.error(format!("`general.architecture` = {other:?}, expected a string"))),
        }
    }

    fn tensor_shape(&self, name: &str) -> Option<Vec<usize>> {
        self.content.tensor_infos.get(name).map(|t| t.shape.dims().to_vec())
    }

    /// Reads and dequantizes one tensor to f32 (shape in PyTorch order, `[out, in]`).
    pub fn dequantize(&self, name: &str) -> Result<Tensor> {
        let file =
            File::open(&self.path).map_err(|source| LmError::Io { path: self.path.clone(), source })?;
        let q = self
            .content
            .tensor(&mut BufReader::new(file), name, &Device::Cpu)
            .map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
        q.dequantize(&Device::Cpu).map_err(|e| self.error(format!("tensor `{name}`: cannot dequantize: {e}")))
    }

    /// Which blocks slide, from `{arch}.attention.sliding_window_pattern` (a period or
    /// one bool per block) or else the family's fixed layout.
    fn sliding_layers(
        &self,
        arch: &str,
        family: Family,
        num_layers: usize,
        window: bool,
    ) -> Result<Vec<bool>> {
        let key = format!("{arch}.attention.sliding_window_pattern");
        let pattern = match self.meta(&key) {
            Some(Value::Array(items)) => {
                let flags = items
                    .iter()
                    .map(|v| match v {
                        Value::Bool(b) => Ok(*b),
                        other => Err(self.error(format!("metadata `{key}` holds {other:?}, expected bools"))),
                    })
                    .collect::<Result<Vec<bool>>>()?;
                if flags.len() != num_layers {
                    return Err(self.error(format!(
                        "metadata `{key}` lists {} blocks, expected block_count = {num_layers}",
                        flags.len()
                    )));
                }
                return Ok(flags);
            }
            Some(_) => match self.meta_usize(&key)? {
                Some(0) => {
                    return Err(self.error(format!("metadata `{key}` is 0, expected a positive period")))
                }
                period => period,
            },
            None => None,
        };
        Ok(family.fixed_sliding_layers(num_layers, pattern).unwrap_or_else(|| vec![window; num_layers]))
    }

    /// The decoder config implied by the metadata and tensor shapes.
    pub fn decoder_config(&self) -> Result<DecoderConfig> {
        let arch = self.architecture()?.to_string();
        let family = family_of_architecture(&arch).ok_or_else(|| LmError::UnsupportedArchitecture {
            origin: self.path.display().to_string(),
            arch: arch.clone(),
            expected: format!(
                "{} (general.architecture of a GGUF file)",
                ARCHITECTURES.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(", ")
            ),
        })?;
        let k = |suffix: &str| format!("{arch}.{suffix}");
        let hidden_size = self.meta_usize_required(&k("embedding_length"))?;
        let num_heads = self.meta_usize_required(&k("attention.head_count"))?;
        let head_dim = match self.meta_usize(&k("attention.key_length"))? {
            Some(hd) => hd,
            None => self.meta_usize(&k("rope.dimension_count"))?.unwrap_or(hidden_size / num_heads.max(1)),
        };
        let embed_shape = self.tensor_shape("token_embd.weight").ok_or_else(|| LmError::MissingTensor {
            name: "token_embd.weight".into(),
            origin: self.path.display().to_string(),
        })?;
        let vocab_size = match (self.meta_usize(&k("vocab_size"))?, embed_shape.first()) {
            (Some(v), _) => v,
            (None, Some(&rows)) => rows,
            (None, None) => {
                return Err(self.error(format!(
                    "tensor `token_embd.weight` has no dimensions and `{}` is absent, so the vocabulary size is unknown",
                    k("vocab_size")
                )))
            }
        };
        let rope_scaling = if self.content.tensor_infos.contains_key("rope_freqs.weight") {
            let factors: Vec<f32> = self.dequantize("rope_freqs.weight")?.flatten_all()?.to_vec1()?;
            Some(RopeScaling::FreqFactors(factors.into_iter().map(f64::from).collect()))
        } else {
            match self.meta_str(&k("rope.scaling.type"))? {
                None | Some("none") => None,
                Some("linear") => Some(RopeScaling::Linear {
                    factor: self.meta_f64(&k("rope.scaling.factor"))?.unwrap_or(1.0),
                }),
                Some(other) => {
                    return Err(
                        self.error(format!("rope scaling type {other:?} is not supported, expected linear"))
                    )
                }
            }
        };
        let origin = self.path.display().to_string();
        let num_layers = bounded_size(
            &origin,
            "num_hidden_layers",
            &k("block_count"),
            self.meta_usize_required(&k("block_count"))?,
        )?;
        let sliding_window = self.meta_usize(&k("attention.sliding_window"))?;
        let sliding_layers = self.sliding_layers(&arch, family, num_layers, sliding_window.is_some())?;
        let gemma = family.is_gemma();
        // llama.cpp scales queries by 1/sqrt(d_model / heads) for the 27B Gemma 2 (46
        // blocks) and Gemma 3 (62 blocks), whose query_pre_attn_scalar says so, and by
        // 1/sqrt(head_dim) otherwise; the files carry no key for it.
        let is_27b = matches!((family, num_layers), (Family::Gemma2, 46) | (Family::Gemma3, 62));
        let attn_scale = if is_27b {
            (num_heads as f64 / hidden_size as f64).sqrt()
        } else {
            1.0 / (head_dim as f64).sqrt()
        };
        let token_id = |key: &str| -> Result<Option<u32>> { Ok(self.meta_usize(key)?.map(|v| v as u32)) };
        let cfg = DecoderConfig {
            family,
            vocab_size,
            hidden_size,
            intermediate_size: self.meta_usize_required(&k("feed_forward_length"))?,
            num_layers,
            num_heads,
            num_kv_heads: self.meta_usize(&k("attention.head_count_kv"))?.unwrap_or(num_heads),
            head_dim,
            rms_norm_eps: self.meta_f64(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
            rope_theta: self.meta_f64(&k("rope.freq_base"))?.unwrap_or(10_000.0),
            rope_scaling,
            max_position_embeddings: self.meta_usize(&k("context_length"))?.unwrap_or(4096),
            sliding_window: if sliding_layers.iter().any(|&s| s) { sliding_window } else { None },
            sliding_layers,
            rope_local_theta: if family == Family::Gemma3 {
                Some(self.meta_f64(&k("rope.freq_base_swa"))?.unwrap_or(10_000.0))
            } else {
                None
            },
            activation: family.activation(),
            norm_plus_one: gemma,
            embed_scale: gemma.then(|| (hidden_size as f64).sqrt()),
            sandwich_norms: family.has_sandwich_norms(),
            attn_scale,
            attn_softcap: self.meta_f64(&k("attn_logit_softcapping"))?,
            final_softcap: self.meta_f64(&k("final_logit_softcapping"))?,
            tie_word_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
            qkv_bias: self.content.tensor_infos.contains_key("blk.0.attn_q.bias"),
            o_bias: self.content.tensor_infos.contains_key("blk.0.attn_output.bias"),
            qk_norm: self.content.tensor_infos.contains_key("blk.0.attn_q_norm.weight"),
            mlp_bias: self.content.tensor_infos.contains_key("blk.0.ffn_up.bias"),
            bos_token_id: token_id("tokenizer.ggml.bos_token_id")?,
            eos_token_ids: token_id("tokenizer.ggml.eos_token_id")?.into_iter().collect(),
        };
        cfg.validate(&self.path.display().to_string())?;
        Ok(cfg)
    }

    /// Dequantizes every tensor, renames it to Hugging Face naming, undoes the q/k
    /// permutation and Gemma's norm offset, giving a weight store the decoder loads like
    /// safetensors.
    pub fn weights(&self, cfg: &DecoderConfig, dtype: DType, device: &Device) -> Result<WeightStore> {
        // A tensor of a block the config does not have would be read and kept for
        // nothing: a crafted file could list thousands, all aliasing one tensor's bytes.
        for name in self.content.tensor_infos.keys() {
            if let Some(block) = block_of(name).filter(|&b| b >= cfg.num_layers) {
                return Err(self.error(format!(
                    "tensor `{name}` belongs to block {block}, but the model has {} blocks (`{}.block_count`)",
                    cfg.num_layers,
                    architecture_of_family(cfg.family)
                )));
            }
        }
        let mut tensors = HashMap::new();
        let permuted = llama_cpp_permutes_qk(cfg.family);
        for name in self.content.tensor_infos.keys() {
            let Some(hf) = hf_name(name, cfg.family) else { continue };
            let mut t = self.dequantize(name)?;
            if stores_norms_plus_one(cfg.family) && name.ends_with("norm.weight") {
                t = (t - 1.0)?;
            }
            if permuted && hf.contains("self_attn.q_proj") {
                t = unpermute_rows(&t, cfg.num_heads)
                    .map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
            } else if permuted && hf.contains("self_attn.k_proj") {
                t = unpermute_rows(&t, cfg.num_kv_heads)
                    .map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
            }
            tensors.insert(hf, t);
        }
        Ok(WeightStore::from_tensors(tensors, self.path.display().to_string(), dtype, device))
    }
}

/// The block a tensor name belongs to: N in `blk.N.…`.
fn block_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// Checks, before any tensor is read, that every tensor's bytes lie inside the file,
/// that its size computes without overflow, and that no two tensors share bytes (a
/// crafted directory can point many names at one tensor's data).
fn check_tensor_data(content: &Content, file_len: u64) -> std::result::Result<(), String> {
    let mut ranges = Vec::with_capacity(content.tensor_infos.len());
    for (name, info) in &content.tensor_infos {
        let dims = info.shape.dims();
        let elements = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .ok_or_else(|| format!("tensor `{name}` has dimensions {dims:?}, whose product overflows"))?;
        let (block, block_bytes) = (info.ggml_dtype.block_size() as u64, info.ggml_dtype.type_size() as u64);
        if elements % block != 0 {
            return Err(format!(
                "tensor `{name}` has {elements} elements, not a whole number of {:?} blocks of {block}",
                info.ggml_dtype
            ));
        }
        let range = (elements / block)
            .checked_mul(block_bytes)
            .and_then(|bytes| {
                let start = content.tensor_data_offset.checked_add(info.offset)?;
                Some((start, start.checked_add(bytes)?))
            })
            .filter(|&(_, end)| end <= file_len)
            .ok_or_else(|| {
                format!(
                    "tensor `{name}` ({dims:?}, {:?}) at data offset {} does not fit in the file's {file_len} bytes (truncated or crafted?)",
                    info.ggml_dtype, info.offset
                )
            })?;
        if range.1 > range.0 {
            ranges.push((range, name));
        }
    }
    ranges.sort();
    for pair in ranges.windows(2) {
        let (((_, end), a), ((start, _), b)) = (pair[0], pair[1]);
        if start < end {
            return Err(format!(
                "tensors `{a}` and `{b}` share bytes {start}..{end}: every tensor must have its own data"
            ));
        }
    }
    Ok(())
}

/// Whether llama.cpp's converter stores this family's q/k rows in interleaved order.
pub fn llama_cpp_permutes_qk(family: Family) -> bool {
    matches!(family, Family::Llama | Family::Mistral)
}

/// Whether llama.cpp's converter stores this family's RMS-norm weights as `1 + w`.
pub fn stores_norms_plus_one(family: Family) -> bool {
    family.is_gemma()
}

/// `general.architecture` values and the family each one loads as.
pub const ARCHITECTURES: &[(&str, Family)] = &[
    ("llama", Family::Llama),
    ("mistral", Family::Mistral),
    ("qwen2", Family::Qwen2),
    ("qwen3", Family::Qwen3),
    ("gemma", Family::Gemma),
    ("gemma2", Family::Gemma2),
    ("gemma3", Family::Gemma3),
];

/// The family a GGUF `general.architecture` names.
pub fn family_of_architecture(arch: &str) -> Option<Family> {
    ARCHITECTURES.iter().find(|(a, _)| *a == arch).map(|(_, f)| *f)
}

/// The GGUF `general.architecture` of a family.
pub fn architecture_of_family(family: Family) -> &'static str {
    ARCHITECTURES.iter().find(|(_, f)| *f == family).map(|(a, _)| *a).expect("every family has a GGUF name")
}

/// Whole-model tensors: (llama.cpp name, Hugging Face name).
const MODEL_TENSORS: &[(&str, &str)] = &[
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// Gemma 2/3 block norms, looked up before [`BLOCK_TENSORS`]: llama.cpp's `ffn_norm` is
/// the pre-MLP norm in every family, which Hugging Face calls `post_attention_layernorm`
/// in Llama but `pre_feedforward_layernorm` in Gemma 2/3, where `post_attention_layernorm`
/// is the norm on the attention output.
const SANDWICH_NORM_TENSORS: &[(&str, &str)] = &[
    ("post_attention_norm", "post_attention_layernorm"),
    ("ffn_norm", "pre_feedforward_layernorm"),
    ("post_ffw_norm", "post_feedforward_layernorm"),
];

/// Per-block tensors without the `.weight`/`.bias` suffix: (llama.cpp, Hugging Face).
const BLOCK_TENSORS: &[(&str, &str)] = &[
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// Renames between the two conventions; `forward` goes llama.cpp -> Hugging Face.
fn rename(name: &str, family: Family, forward: bool) -> Option<String> {
    let pick = |(g, h): &(&'static str, &'static str)| if forward { (*g, *h) } else { (*h, *g) };
    if let Some((_, to)) = MODEL_TENSORS.iter().map(pick).find(|(from, _)| *from == name) {
        return Some(to.to_string());
    }
    let (from_prefix, to_prefix) =
        if forward { ("blk.", "model.layers.") } else { ("model.layers.", "blk.") };
    let (layer, rest) = name.strip_prefix(from_prefix)?.split_once('.')?;
    let (part, kind) = rest.rsplit_once('.')?;
    let sandwich: &[(&str, &str)] = if family.has_sandwich_norms() { SANDWICH_NORM_TENSORS } else { &[] };
    let (_, to) = sandwich.iter().chain(BLOCK_TENSORS).map(pick).find(|(from, _)| *from == part)?;
    Some(format!("{to_prefix}{layer}.{to}.{kind}"))
}

/// Maps a llama.cpp tensor name to the Hugging Face one for a model of `family`
/// (None for tensors we do not load).
pub fn hf_name(gguf: &str, family: Family) -> Option<String> {
    rename(gguf, family, true)
}

/// Maps a Hugging Face tensor name to llama.cpp's (the inverse of [`hf_name`]).
pub fn gguf_name(hf: &str, family: Family) -> Option<String> {
    rename(hf, family, false)
}

fn regroup_rows(t: &Tensor, heads: usize, from: (usize, usize)) -> candle_core::Result<Tensor> {
    let dims = t.dims().to_vec();
    let rows = dims[0];
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        candle_core::bail!("{rows} rows cannot be split into {heads} heads of even width")
    }
    let mut view = vec![heads, from.0, from.1];
    view.extend_from_slice(&dims[1..]);
    t.reshape(view)?.transpose(1, 2)?.contiguous()?.reshape(dims)
}

/// Undoes llama.cpp's q/k row order: per head, rows viewed as `(head_dim/2, 2)` are
/// transposed back to `(2, head_dim/2)`. Works for weights `[rows, in]` and biases `[rows]`.
pub fn unpermute_rows(t: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let half = t.dim(0)? / heads.max(1) / 2;
    regroup_rows(t, heads, (half, 2))
}

/// Applies llama.cpp's q/k row order (the inverse of [`unpermute_rows`]).
pub fn permute_rows(t: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let half = t.dim(0)? / heads.max(1) / 2;
    regroup_rows(t, heads, (2, half))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{random_weights, tiny_config, write_gguf_with};

    /// The tiny Llama as a GGUF file with `overrides` in its metadata, opened and
    /// turned into a config: the error, if any.
    fn crafted(overrides: &[(&str, Value)]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let cfg = tiny_config(Family::Llama);
        let weights = random_weights(&cfg, 1);
        let overrides: Vec<(String, Value)> =
            overrides.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        write_gguf_with(&path, &cfg, &weights, &overrides).unwrap();
        GgufFile::open(&path).and_then(|g| g.decoder_config()).err().map(|e| e.to_string())
    }

    #[test]
    fn crafted_headers_are_refused_by_name_without_a_panic_or_an_allocation() {
        assert_eq!(crafted(&[]), None, "the uncrafted file must load");
        let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
            (vec![("general.alignment", Value::U32(0))], "alignment"),
            (vec![("general.alignment", Value::U32(3))], "power of two"),
            (vec![("llama.block_count", Value::U64(1 << 40))], "llama.block_count"),
            (vec![("llama.attention.key_length", Value::U64(1 << 62))], "head_dim"),
            (vec![("llama.embedding_length", Value::U64(1 << 40))], "hidden_size"),
            (vec![("llama.feed_forward_length", Value::U64(1 << 40))], "intermediate_size"),
            (vec![("llama.attention.head_count", Value::U64(1 << 40))], "num_attention_heads"),
            (vec![("llama.vocab_size", Value::U64(1 << 40))], "vocab_size"),
            (vec![("llama.context_length", Value::U32(0))], "max_position_embeddings"),
            (vec![("llama.rope.freq_base", Value::F32(f32::INFINITY))], "rope_theta"),
            (vec![("llama.attention.layer_norm_rms_epsilon", Value::F32(f32::INFINITY))], "rms_norm_eps"),
        ];
        for (overrides, names) in cases {
            let error = crafted(&overrides).unwrap_or_else(|| panic!("{overrides:?} was accepted"));
            assert!(error.contains(names), "{overrides:?}: {error}");
        }
    }

    /// Where tensor `name`'s info in a GGUF v3 header keeps its first dimension and its
    /// data offset (byte positions of the u64 fields).
    fn tensor_info_fields(bytes: &[u8], name: &str) -> (usize, usize) {
        let mut needle = (name.len() as u64).to_le_bytes().to_vec();
        needle.extend_from_slice(name.as_bytes());
        let at = bytes.windows(needle.len()).position(|w| w == needle).expect("tensor info") + needle.len();
        let dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        (at + 4, at + 4 + 8 * dims + 4)
    }

    #[test]
    fn tensors_beyond_the_blocks_outside_the_file_or_sharing_bytes_are_refused_before_any_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let cfg = tiny_config(Family::Llama);
        let weights = random_weights(&cfg, 1);
        // Two blocks of tensors, one block in the metadata.
        let fewer = [("llama.block_count".to_string(), Value::U32(1))];
        write_gguf_with(&path, &cfg, &weights, &fewer).unwrap();
        let g = GgufFile::open(&path).unwrap();
        let cfg_read = g.decoder_config().unwrap();
        let err =
            g.weights(&cfg_read, DType::F32, &Device::Cpu).err().expect("extra block accepted").to_string();
        assert!(err.contains("belongs to block 1") && err.contains("llama.block_count"), "{err}");

        write_gguf_with(&path, &cfg, &weights, &[]).unwrap();
        let clean = std::fs::read(&path).unwrap();
        let (_, q_offset) = tensor_info_fields(&clean, "blk.0.attn_q.weight");
        let (k_dim, k_offset) = tensor_info_fields(&clean, "blk.0.attn_k.weight");
        let patched = |at: usize, value: u64| {
            let mut bytes = clean.clone();
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            std::fs::write(&path, bytes).unwrap();
            GgufFile::open(&path).err().map(|e| e.to_string())
        };
        let q = u64::from_le_bytes(clean[q_offset..q_offset + 8].try_into().unwrap());
        for (at, value, expected) in [
            // The header's tensor and metadata counts (after magic and version).
            (8, 1 << 40, "tensors"),
            (16, u64::MAX, "metadata"),
            (k_offset, q, "share bytes"),
            (k_offset, u64::MAX - 8, "does not fit"),
            (k_offset, clean.len() as u64, "does not fit"),
            (k_dim, 1 << 62, "overflows"),
        ] {
            let err = patched(at, value).unwrap_or_else(|| panic!("offset {value} accepted"));
            assert!(err.contains(expected) && err.contains("m.gguf"), "{err}");
        }
        // Truncated inside the tensor data (past any padding, at most 31 bytes).
        std::fs::write(&path, &clean[..clean.len() - 40]).unwrap();
        let err = GgufFile::open(&path).err().expect("truncated file accepted").to_string();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn permutation_round_trips_and_interleaves() {
        let t = Tensor::arange(0f32, 16., &Device::Cpu).unwrap().reshape((8, 2)).unwrap();
        let p = permute_rows(&t, 2).unwrap();
        // Head 0 rows (0,1,2,3) become (0,2,1,3): halves interleaved.
        let col: Vec<f32> = p.narrow(1, 0, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(col, vec![0., 4., 2., 6., 8., 12., 10., 14.]);
        let back = unpermute_rows(&p, 2).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), t.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn names_map_both_ways() {
        for hf in [
            "model.embed_tokens.weight",
            "lm_head.weight",
            "model.layers.3.self_attn.k_proj.weight",
            "model.layers.0.self_attn.q_proj.bias",
            "model.layers.11.mlp.down_proj.weight",
            "model.layers.2.post_attention_layernorm.weight",
        ] {
            let g = gguf_name(hf, Family::Llama).unwrap();
            assert_eq!(hf_name(&g, Family::Llama).as_deref(), Some(hf), "{g}");
        }
        assert_eq!(hf_name("rope_freqs.weight", Family::Llama), None);
    }

    #[test]
    fn gemma_block_norms_follow_the_family() {
        let name = |g: &str, f| hf_name(g, f).unwrap();
        assert_eq!(
            name("blk.1.ffn_norm.weight", Family::Gemma),
            "model.layers.1.post_attention_layernorm.weight"
        );
        assert_eq!(
            name("blk.1.ffn_norm.weight", Family::Gemma3),
            "model.layers.1.pre_feedforward_layernorm.weight"
        );
        assert_eq!(
            name("blk.1.post_attention_norm.weight", Family::Gemma2),
            "model.layers.1.post_attention_layernorm.weight"
        );
        assert_eq!(
            name("blk.1.post_ffw_norm.weight", Family::Gemma3),
            "model.layers.1.post_feedforward_layernorm.weight"
        );
        assert_eq!(hf_name("blk.1.post_ffw_norm.weight", Family::Llama), None);
        for hf in [
            "model.layers.0.post_attention_layernorm.weight",
            "model.layers.0.pre_feedforward_layernorm.weight",
        ] {
            let g = gguf_name(hf, Family::Gemma2).unwrap();
            assert_eq!(hf_name(&g, Family::Gemma2).as_deref(), Some(hf));
        }
        for (arch, family) in ARCHITECTURES {
            assert_eq!(architecture_of_family(*family), *arch);
        }
    }
}
