//! The decoder loop, shared by every family, with hook points between its steps.
//!
//! One block is `x += attn(norm1(x)); x += mlp(norm2(x))`. The residual is visited at
//! each hook point in forward order: interventions at that point are applied first,
//! then the (possibly changed) value is captured, then it flows on.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};

use crate::batch::Batch;
use crate::config::{Activation, DecoderConfig};
use crate::error::{LmError, Result};
use crate::hooks::HookPoint;
use crate::matmul;
use crate::rope;
use crate::weights::WeightStore;

/// A dense layer `y = x W^T + b` applied to `[.., in]` inputs.
#[derive(Debug, Clone)]
struct Linear {
    /// `W^T`, `[in, out]`, stored contiguous so the matmul reads it row by row.
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    fn load(w: &WeightStore, prefix: &str, out_dim: usize, in_dim: usize, bias: bool) -> Result<Self> {
        let weight = w.get(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
        let bias = if bias { Some(w.get(&format!("{prefix}.bias"), &[out_dim])?) } else { None };
        Self::new(weight, bias)
    }

    fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Self { weight_t: weight.t()?.contiguous()?, bias })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Flatten to one 2-D matmul: one large GEMM is faster than a broadcast batch of small ones.
        let dims = x.dims();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let y = matmul::matmul(&x.reshape((rows, dims[dims.len() - 1]))?, &self.weight_t)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("non-empty dims") = self.weight_t.dim(1)?;
        Ok(y.reshape(out_dims)?)
    }
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    /// Loads `name`; Gemma's offset-from-1 weights get their 1 added here, once.
    fn load(w: &WeightStore, name: &str, dim: usize, cfg: &DecoderConfig) -> Result<Self> {
        let weight = w.get(name, &[dim])?;
        let weight = if cfg.norm_plus_one { (weight + 1.0)? } else { weight };
        Ok(Self { weight, eps: cfg.rms_norm_eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)?)
    }
}

fn qk_norm(w: &WeightStore, cfg: &DecoderConfig, name: &str) -> Result<Option<RmsNorm>> {
    if cfg.qk_norm {
        Ok(Some(RmsNorm::load(w, name, cfg.head_dim, cfg)?))
    } else {
        Ok(None)
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// Per-head RMS norms on queries and keys (Qwen3).
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
}

impl Attention {
    fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let (h, kvh, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |t: Tensor, n: usize| -> Result<Tensor> {
            Ok(t.reshape((b, s, n, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let q = heads(self.q.forward(x)?, h)?;
        let k = heads(self.k.forward(x)?, kvh)?;
        let v = heads(self.v.forward(x)?, kvh)?;
        let (q, k) = match (&self.q_norm, &self.k_norm) {
            (Some(qn), Some(kn)) => (qn.forward(&q)?, kn.forward(&k)?),
            _ => (q, k),
        };
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let dtype = q.dtype();
        let (q, k, v) = (q.to_dtype(DType::F32)?, k.to_dtype(DType::F32)?, v.to_dtype(DType::F32)?);
        // Grouped-query attention without copying k and v: query heads sharing a kv head
        // are adjacent, so they can be stacked along the sequence axis of one matmul.
        let rep = h / kvh;
        let q = q.reshape((b, kvh, rep * s, hd))?;
        let scores = (q.matmul(&k.t()?)? * self.scale)?;
        let scores = match self.softcap {
            Some(cap) => ((scores / cap)?.tanh()? * cap)?,
            None => scores,
        };
        let scores = scores.reshape((b, kvh, rep, s, s))?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, kvh, rep * s, s))?;
        let y = probs.matmul(&v)?.reshape((b, h, s, hd))?.transpose(1, 2)?;
        let y = y.reshape((b, s, h * hd))?.to_dtype(dtype)?;
        self.o.forward(&y)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
    activation: Activation,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = self.gate.forward(x)?;
        let gate = match self.activation {
            Activation::Silu => candle_nn::ops::silu(&gate)?,
            // candle's gelu is the tanh approximation.
            Activation::GeluTanh => gate.gelu()?,
        };
        self.down.forward(&(gate * self.up.forward(x)?)?)
    }
}

#[derive(Debug, Clone)]
struct Block {
    input_norm: RmsNorm,
    attn: Attention,
    /// Norm on the attention output before it joins the residual (Gemma 2/3).
    attn_out_norm: Option<RmsNorm>,
    mlp_norm: RmsNorm,
    mlp: Mlp,
    /// Norm on the MLP output before it joins the residual (Gemma 2/3).
    mlp_out_norm: Option<RmsNorm>,
    /// Whether this block attends within the sliding window.
    sliding: bool,
}

impl Block {
    /// `x + f(x)` around the attention, with the optional output norm.
    fn attend(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let y = self.attn.forward(&self.input_norm.forward(x)?, cos, sin, mask)?;
        let y = match &self.attn_out_norm {
            Some(n) => n.forward(&y)?,
            None => y,
        };
        Ok((x + y)?)
    }

    /// `x + f(x)` around the MLP, with the optional output norm.
    fn feed_forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.mlp.forward(&self.mlp_norm.forward(x)?)?;
        let y = match &self.mlp_out_norm {
            Some(n) => n.forward(&y)?,
            None => y,
        };
        Ok((x + y)?)
    }

    fn load(w: &WeightStore, cfg: &DecoderConfig, l: usize) -> Result<Self> {
        let p = format!("model.layers.{l}");
        let (d, hd) = (cfg.hidden_size, cfg.head_dim);
        let (qd, kvd) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
        let ab = cfg.qkv_bias;
        let mb = cfg.mlp_bias;
        let i = cfg.intermediate_size;
        let norm = |name: &str| RmsNorm::load(w, &format!("{p}.{name}.weight"), d, cfg);
        // Gemma 2/3 reuse the name post_attention_layernorm for the attention-output norm.
        let (attn_out_norm, mlp_norm, mlp_out_norm) = if cfg.sandwich_norms {
            (
                Some(norm("post_attention_layernorm")?),
                norm("pre_feedforward_layernorm")?,
                Some(norm("post_feedforward_layernorm")?),
            )
        } else {
            (None, norm("post_attention_layernorm")?, None)
        };
        Ok(Self {
            input_norm: norm("input_layernorm")?,
            attn: Attention {
                q: Linear::load(w, &format!("{p}.self_attn.q_proj"), qd, d, ab)?,
                k: Linear::load(w, &format!("{p}.self_attn.k_proj"), kvd, d, ab)?,
                v: Linear::load(w, &format!("{p}.self_attn.v_proj"), kvd, d, ab)?,
                // Llama's attention_bias covers o_proj too, but some checkpoints omit it.
                o: Linear::new(
                    w.get(&format!("{p}.self_attn.o_proj.weight"), &[d, qd])?,
                    if cfg.o_bias {
                        w.get_optional(&format!("{p}.self_attn.o_proj.bias"), &[d])?
                    } else {
                        None
                    },
                )?,
                q_norm: qk_norm(w, cfg, &format!("{p}.self_attn.q_norm.weight"))?,
                k_norm: qk_norm(w, cfg, &format!("{p}.self_attn.k_norm.weight"))?,
                num_heads: cfg.num_heads,
                num_kv_heads: cfg.num_kv_heads,
                head_dim: hd,
                scale: cfg.attn_scale,
                softcap: cfg.attn_softcap,
            },
            attn_out_norm,
            mlp_norm,
            mlp: Mlp {
                gate: Linear::load(w, &format!("{p}.mlp.gate_proj"), i, d, mb)?,
                up: Linear::load(w, &format!("{p}.mlp.up_proj"), i, d, mb)?,
                down: Linear::load(w, &format!("{p}.mlp.down_proj"), d, i, mb)?,
                activation: cfg.activation,
            },
            mlp_out_norm,
            sliding: cfg.sliding_layers.get(l).copied().unwrap_or(false),
        })
    }
}

/// How an intervention changes the residual at its hook point.
#[derive(Debug, Clone)]
pub enum InterventionKind {
    /// The residual becomes the given value.
    Replace,
    /// The given value is added to the residual.
    Add,
}

/// A change to the residual stream at one hook point.
#[derive(Debug, Clone)]
pub struct Intervention {
    /// Where to apply it.
    pub point: HookPoint,
    /// Replace or add.
    pub kind: InterventionKind,
    /// The value: `[batch, seq, d_model]`, or anything that broadcasts to it (e.g. `[d_model]`).
    pub value: Tensor,
}

/// What a forward pass should return and change.
#[derive(Debug, Clone, Default)]
pub struct ForwardRequest {
    /// Hook points whose residual values to return.
    pub capture: Vec<HookPoint>,
    /// Changes to make on the way.
    pub interventions: Vec<Intervention>,
    /// Whether to compute logits (runs every block and the unembedding).
    pub logits: bool,
}

impl ForwardRequest {
    /// Only the logits.
    pub fn logits() -> Self {
        Self { logits: true, ..Self::default() }
    }

    /// Only these hook points; the forward stops after the deepest one.
    pub fn capture(points: &[HookPoint]) -> Self {
        Self { capture: points.to_vec(), ..Self::default() }
    }
}

/// What a forward pass returned.
#[derive(Debug, Default)]
pub struct ForwardOutput {
    /// Residual values at the requested hook points, `[batch, seq, d_model]` in the model's dtype.
    pub activations: BTreeMap<HookPoint, Tensor>,
    /// Next-token logits `[batch, seq, vocab]` in f32, when requested.
    pub logits: Option<Tensor>,
    /// How many decoder blocks ran (fewer than the model has when the forward stopped early).
    pub blocks_run: usize,
}

/// A decoder-only transformer with hook points.
#[derive(Debug, Clone)]
pub struct Decoder {
    cfg: DecoderConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    final_norm: RmsNorm,
    lm_head: Linear,
    /// Rotary inverse frequencies of the global blocks.
    inv_freq: Vec<f64>,
    /// Those of the sliding-window blocks, when they differ (Gemma 3's local base).
    inv_freq_local: Option<Vec<f64>>,
    dtype: DType,
    device: Device,
}

impl Decoder {
    /// Builds the decoder from weights in Hugging Face naming.
    pub fn load(cfg: &DecoderConfig, w: &WeightStore, dtype: DType, device: &Device) -> Result<Self> {
        cfg.validate(w.origin())?;
        let (v, d) = (cfg.vocab_size, cfg.hidden_size);
        let embed = w.get("model.embed_tokens.weight", &[v, d])?;
        let lm_head = if cfg.tie_word_embeddings { embed.clone() } else { w.get("lm_head.weight", &[v, d])? };
        let lm_head = Linear::new(lm_head, None)?;
        let blocks = (0..cfg.num_layers).map(|l| Block::load(w, cfg, l)).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            final_norm: RmsNorm::load(w, "model.norm.weight", d, cfg)?,
            inv_freq: rope::inverse_frequencies(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling.as_ref()),
            inv_freq_local: cfg.rope_local_theta.map(|t| rope::inverse_frequencies(cfg.head_dim, t, None)),
            cfg: cfg.clone(),
            embed,
            blocks,
            lm_head,
            dtype,
            device: device.clone(),
        })
    }

    /// The configuration the decoder was built from.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// The dtype of weights and activations.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the model on a batch, capturing and changing the residual as requested.
    ///
    /// Without `logits`, only the blocks up to the deepest captured hook point run.
    pub fn forward(&self, batch: &Batch, req: &ForwardRequest) -> Result<ForwardOutput> {
        let n = self.cfg.num_layers;
        for p in req.capture.iter().chain(req.interventions.iter().map(|i| &i.point)) {
            p.validate(n)?;
        }
        if let Some(&bad) = batch
            .input_ids
            .flatten_all()?
            .to_vec1::<u32>()?
            .iter()
            .find(|&&t| t as usize >= self.cfg.vocab_size)
        {
            return Err(LmError::Input(format!(
                "token id {bad} is outside the vocabulary (size {})",
                self.cfg.vocab_size
            )));
        }
        if batch.seq > self.cfg.max_position_embeddings {
            return Err(LmError::Input(format!(
                "a sequence of {} tokens is longer than the model's context of {} (max_position_embeddings)",
                batch.seq, self.cfg.max_position_embeddings
            )));
        }
        let blocks_to_run =
            if req.logits { n } else { req.capture.iter().map(|p| p.blocks_needed(n)).max().unwrap_or(0) };
        let needs_final_norm = req.logits || req.capture.contains(&HookPoint::FinalNorm);
        let mut out = ForwardOutput { blocks_run: blocks_to_run, ..ForwardOutput::default() };
        let visit = |point: HookPoint, mut x: Tensor, out: &mut ForwardOutput| -> Result<Tensor> {
            for iv in req.interventions.iter().filter(|iv| iv.point == point) {
                let value = iv.value.to_dtype(x.dtype())?;
                x = match iv.kind {
                    InterventionKind::Replace => value.broadcast_as(x.shape())?.contiguous()?,
                    InterventionKind::Add => x.broadcast_add(&value)?,
                };
            }
            if req.capture.contains(&point) {
                out.activations.insert(point, x.clone());
            }
            Ok(x)
        };

        let (b, s) = (batch.batch, batch.seq);
        let ids = batch.input_ids.to_device(&self.device)?;
        let x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, s, self.cfg.hidden_size))?;
        let mut x = visit(HookPoint::Embed, x, &mut out)?;
        if let Some(scale) = self.cfg.embed_scale {
            // Like transformers, the multiplier is rounded to the model's dtype first.
            let scale = Tensor::new(scale as f32, &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&scale)?;
        }
        // Rope tables and masks are only built when a block will run.
        let mut tables = None;
        for (l, block) in self.blocks.iter().enumerate() {
            x = visit(HookPoint::ResidPre(l), x, &mut out)?;
            if l >= blocks_to_run {
                break;
            }
            let tables = match &tables {
                Some(t) => t,
                None => tables.insert(BatchTables::new(self, batch)?),
            };
            let ((cos, sin), mask) = tables.for_block(block.sliding);
            x = visit(HookPoint::ResidMid(l), block.attend(&x, cos, sin, mask)?, &mut out)?;
            x = visit(HookPoint::ResidPost(l), block.feed_forward(&x)?, &mut out)?;
        }
        if needs_final_norm && blocks_to_run == n {
            let normed = visit(HookPoint::FinalNorm, self.final_norm.forward(&x)?, &mut out)?;
            if req.logits {
                out.logits = Some(self.unembed(&normed)?);
            }
        }
        Ok(out)
    }

    /// Next-token logits (f32, soft-capped where the family does) of final-norm states
    /// `[.., d_model]` as captured at `ln_final.hook_normalized`: lets a caller unembed
    /// only the positions it needs instead of every position of a long prompt.
    pub fn unembed(&self, normed: &Tensor) -> Result<Tensor> {
        let logits = self.lm_head.forward(normed)?.to_dtype(DType::F32)?;
        Ok(match self.cfg.final_softcap {
            Some(cap) => ((logits / cap)?.tanh()? * cap)?,
            None => logits,
        })
    }

    /// Next-token logits `[vocab]` after the last token of one sequence: unembeds only
    /// that position, which for a long prompt and a large vocabulary is most of the cost
    /// of [`Decoder::logits`].
    pub fn last_logits(&self, tokens: &[u32]) -> Result<Tensor> {
        let batch = Batch::single(tokens, &self.device)?;
        let out = self.forward(&batch, &ForwardRequest::capture(&[HookPoint::FinalNorm]))?;
        let normed = out.activations[&HookPoint::FinalNorm].get(0)?;
        Ok(self.unembed(&normed.narrow(0, tokens.len() - 1, 1)?)?.get(0)?)
    }

    /// Runs the model on one sequence and returns its logits `[seq, vocab]`.
    pub fn logits(&self, tokens: &[u32]) -> Result<Tensor> {
        let batch = Batch::single(tokens, &self.device)?;
        let out = self.forward(&batch, &ForwardRequest::logits())?;
        Ok(out.logits.expect("logits were requested").get(0)?)
    }
}

/// Per-batch rope tables and attention masks, built once and shared by the blocks.
struct BatchTables {
    rope_global: (Tensor, Tensor),
    /// Sliding blocks' rope, when they use another base (Gemma 3).
    rope_local: Option<(Tensor, Tensor)>,
    mask_global: Tensor,
    /// Sliding blocks' mask, when the model has a window.
    mask_local: Option<Tensor>,
}

impl BatchTables {
    fn new(decoder: &Decoder, batch: &Batch) -> Result<Self> {
        let (b, s) = (batch.batch, batch.seq);
        let rope = |f: &[f64]| rope::cos_sin(f, &batch.positions, b, s, decoder.dtype, &decoder.device);
        Ok(Self {
            rope_global: rope(&decoder.inv_freq)?,
            rope_local: decoder.inv_freq_local.as_deref().map(rope).transpose()?,
            mask_global: attention_mask(batch, None, &decoder.device)?,
            mask_local: decoder
                .cfg
                .sliding_window
                .map(|w| attention_mask(batch, Some(w), &decoder.device))
                .transpose()?,
        })
    }

    /// The (cos, sin) tables and mask a block uses.
    fn for_block(&self, sliding: bool) -> (&(Tensor, Tensor), &Tensor) {
        let rope = self.rope_local.as_ref().filter(|_| sliding).unwrap_or(&self.rope_global);
        let mask = self.mask_local.as_ref().filter(|_| sliding).unwrap_or(&self.mask_global);
        (rope, mask)
    }
}

/// Additive attention mask `[batch, 1, 1, seq, seq]`: 0 where query `i` may see key `j`,
/// -inf elsewhere. Keys must be real tokens, not in the future, and within the sliding
/// window (`i - j < window`, the Hugging Face convention). A padding query sees only
/// itself, so that no softmax row is empty.
fn attention_mask(batch: &Batch, window: Option<usize>, device: &Device) -> Result<Tensor> {
    let (b, s) = (batch.batch, batch.seq);
    let mut mask = vec![f32::NEG_INFINITY; b * s * s];
    for r in 0..b {
        let real = &batch.mask[r * s..(r + 1) * s];
        for i in 0..s {
            let row = &mut mask[(r * s + i) * s..(r * s + i + 1) * s];
            if !real[i] {
                row[i] = 0.0;
                continue;
            }
            let first = window.map_or(0, |w| (i + 1).saturating_sub(w));
            for j in first..=i {
                if real[j] {
                    row[j] = 0.0;
                }
            }
        }
    }
    Ok(Tensor::from_vec(mask, (b, 1, 1, s, s), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Padding;

    #[test]
    fn mask_is_causal_windowed_and_respects_padding() {
        let batch = Batch::new(&[vec![1, 2, 3, 4], vec![1, 2]], 0, Padding::Left, &Device::Cpu).unwrap();
        let m = attention_mask(&batch, Some(2), &Device::Cpu).unwrap();
        let m: Vec<Vec<f32>> = m.reshape((8, 4)).unwrap().to_vec2().unwrap();
        let seen = |row: &Vec<f32>| row.iter().map(|v| *v == 0.0).collect::<Vec<_>>();
        // Row 0, query 3: window of 2 keeps keys 2 and 3.
        assert_eq!(seen(&m[3]), vec![false, false, true, true]);
        // Row 1 is left-padded by two: its pad queries see themselves only.
        assert_eq!(seen(&m[4]), vec![true, false, false, false]);
        // Its last query sees its two real tokens, not the padding.
        assert_eq!(seen(&m[7]), vec![false, false, true, true]);
    }

    #[test]
    fn last_logits_are_the_last_row_of_logits() {
        use crate::testing::{random_weights, tiny_config};
        use crate::Family;
        use candle_core::IndexOp;
        for family in [Family::Llama, Family::Gemma3] {
            let cfg = tiny_config(family);
            let weights =
                WeightStore::from_tensors(random_weights(&cfg, 7), "test".into(), DType::F32, &Device::Cpu);
            let decoder = Decoder::load(&cfg, &weights, DType::F32, &Device::Cpu).unwrap();
            let tokens = [3u32, 19, 250, 7, 42];
            let full = decoder.logits(&tokens).unwrap().i(4).unwrap().to_vec1::<f32>().unwrap();
            let last = decoder.last_logits(&tokens).unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(full.len(), cfg.vocab_size);
            let worst = full.iter().zip(&last).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "{family:?}: {worst}");
        }
    }
}
