//! Runs prompts through the model, encodes every requested hook point's hidden states
//! with that hook's BAE, and counts active bits per (hook, token position) over the
//! prompt set — and per prompt when asked. The feature-set entropy of a set S of
//! states is Σ_j h(p̂_j), p̂_j the fraction of S with bit j on (DESIGN.md §6).

use bae_lm::{Batch, ForwardRequest, Model, Padding};
use bae_train::bits::entropy_bits;
use bae_train::metrics::CodeCounts;
use candle_core::DType;

use super::autoencoders::AutoencoderSet;
use crate::error::{DynamicsError, Result};

/// How prompts are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntropyOptions {
    /// Add the tokenizer's special tokens (its BOS convention), as `bae harvest` does.
    pub special_tokens: bool,
    /// Prompts per forward pass.
    pub batch: usize,
    /// Also one row per (prompt, hook): the entropy of that prompt's token states.
    pub per_prompt: bool,
    /// Keep only each prompt's first this many tokens (special tokens included), so
    /// long documents can serve as prompts; None keeps them whole.
    pub max_tokens: Option<usize>,
}

/// One measurement: the entropy of a set of hidden states at one hook point.
#[derive(Debug, Clone, PartialEq)]
pub struct EntropyRow {
    /// Hook point name.
    pub hook: String,
    /// Its block (None for hook_embed and the final norm).
    pub layer: Option<usize>,
    /// "position": the states at `position` across prompts; "prompt": the states of
    /// prompt `prompt` across its positions.
    pub scope: &'static str,
    /// Token position (0-based, as the model saw it; a BOS token is position 0).
    pub position: Option<usize>,
    /// 0-based prompt number (for per-prompt rows).
    pub prompt: Option<usize>,
    /// Hidden states pooled in the set (N; log2 N bounds the bits they can resolve).
    pub states: u64,
    /// Σ_j h(p̂_j), bits.
    pub entropy_bits: f64,
    /// entropy_bits / d'.
    pub bits_per_feature: f64,
    /// Σ_j p̂_j / d': the mean fraction of bits on.
    pub active_fraction: f64,
}

fn row(
    hook: &bae_lm::HookPoint,
    scope: &'static str,
    position: Option<usize>,
    prompt: Option<usize>,
    counts: &CodeCounts,
) -> EntropyRow {
    let h = entropy_bits(&counts.ones, counts.rows as usize);
    EntropyRow {
        hook: hook.to_string(),
        layer: hook.layer(),
        scope,
        position,
        prompt,
        states: counts.rows,
        entropy_bits: h,
        bits_per_feature: h / counts.ones.len().max(1) as f64,
        active_fraction: counts.active_fraction(),
    }
}

/// Token ids of `prompts`, each checked to fit the model's context.
pub fn tokenize(model: &Model, prompts: &[String], special_tokens: bool) -> Result<Vec<Vec<u32>>> {
    let tokenizer = model.tokenizer()?;
    let context = model.config().max_position_embeddings;
    prompts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let ids = tokenizer.encode(text, special_tokens)?;
            if ids.is_empty() {
                return Err(DynamicsError::Input(format!("prompt {i} has no tokens")));
            }
            if ids.len() > context {
                return Err(DynamicsError::Input(format!(
                    "prompt {i} has {} tokens, more than the model's context of {context}; shorten it",
                    ids.len()
                )));
            }
            Ok(ids)
        })
        .collect()
}

/// Token ids of `prompts`, each cut to its first `max` tokens: [`tokenize`] on the
/// prefixes, after checking the cut fits the context.
fn truncated(model: &Model, prompts: &[String], special_tokens: bool, max: usize) -> Result<Vec<Vec<u32>>> {
    let context = model.config().max_position_embeddings;
    if max > context {
        return Err(DynamicsError::Input(format!(
            "--max-tokens {max} exceeds the model's context of {context}"
        )));
    }
    let tokenizer = model.tokenizer()?;
    let mut ids = Vec::with_capacity(prompts.len());
    for (i, text) in prompts.iter().enumerate() {
        let mut one = tokenizer.encode(text, special_tokens)?;
        if one.is_empty() {
            return Err(DynamicsError::Input(format!("prompt {i} has no tokens")));
        }
        one.truncate(max);
        ids.push(one);
    }
    Ok(ids)
}

/// Entropy rows for `prompts`: per (hook, position) over all prompts long enough to
/// have that position, in hook then position order; then per (prompt, hook) if asked.
/// `on_batch` sees how many prompts are done.
pub fn measure_prompts(
    model: &Model,
    baes: &AutoencoderSet,
    prompts: &[String],
    options: EntropyOptions,
    on_batch: &mut dyn FnMut(usize),
) -> Result<Vec<EntropyRow>> {
    if options.batch == 0 {
        return Err(DynamicsError::Input("--batch must be at least 1".into()));
    }
    baes.check_model(model.config())?;
    if options.max_tokens == Some(0) {
        return Err(DynamicsError::Input("--max-tokens must be at least 1".into()));
    }
    let ids = match options.max_tokens {
        Some(n) => truncated(model, prompts, options.special_tokens, n)?,
        None => tokenize(model, prompts, options.special_tokens)?,
    };
    let hooks = baes.hooks();
    let device = model.decoder.device().clone();
    let mut per_position: Vec<Vec<CodeCounts>> = vec![Vec::new(); hooks.len()];
    let mut per_prompt: Vec<EntropyRow> = Vec::new();
    let mut done = 0;
    for chunk in ids.chunks(options.batch) {
        let batch = Batch::new(chunk, 0, Padding::Right, &device)?;
        let out = model.decoder.forward(&batch, &ForwardRequest::capture(&hooks))?;
        for (b, _) in chunk.iter().enumerate() {
            for (k, bae) in baes.autoencoders.iter().enumerate() {
                let acts = out.activations.get(&bae.hook).expect("captured every hook asked for");
                let rows = batch.unpad(acts, b)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let codes = bae.autoencoder.encode(&rows);
                let h = bae.autoencoder.d_hidden;
                let mut whole = CodeCounts::new(h);
                for (t, code) in codes.chunks(h).enumerate() {
                    let slot = &mut per_position[k];
                    if slot.len() <= t {
                        slot.resize(t + 1, CodeCounts::new(h));
                    }
                    slot[t].add_row(code);
                    whole.add_row(code);
                }
                if options.per_prompt {
                    per_prompt.push(row(&bae.hook, "prompt", None, Some(done + b), &whole));
                }
            }
        }
        done += chunk.len();
        on_batch(done);
    }
    let mut rows: Vec<EntropyRow> = Vec::new();
    for (k, bae) in baes.autoencoders.iter().enumerate() {
        for (t, counts) in per_position[k].iter().enumerate() {
            rows.push(row(&bae.hook, "position", Some(t), None, counts));
        }
    }
    per_prompt.sort_by_key(|r| (r.prompt, r.layer, r.hook.clone()));
    rows.extend(per_prompt);
    Ok(rows)
}
