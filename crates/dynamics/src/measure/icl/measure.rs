//! The ICL sweep: for every number of demonstrations k and every sample, the prompt
//! and its correct label run through the model in one pass. The hidden states at the
//! prompt's last token (the label prefix's ":") are encoded with each hook's BAE and
//! pooled per (k, hook) into a feature-set entropy; the label is scored from the same
//! pass (causal attention: the label tokens cannot change the prompt's states).

use bae_lm::{Batch, ForwardRequest, HookPoint, Model, Padding};
use bae_train::bits::entropy_bits;
use bae_train::metrics::CodeCounts;
use candle_core::{DType, Tensor};

use super::plan::Sample;
use super::task::Task;
use crate::error::{DynamicsError, Result};
use crate::measure::AutoencoderSet;

/// How prompts are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IclOptions {
    /// Add the tokenizer's special tokens (its BOS convention).
    pub special_tokens: bool,
    /// Prompts per forward pass.
    pub batch: usize,
}

/// Entropy at one hook point over the k-demonstration prompts, with the model's
/// accuracy at that k.
#[derive(Debug, Clone, PartialEq)]
pub struct IclAggregate {
    /// Demonstrations per prompt.
    pub k: usize,
    /// Hook point name.
    pub hook: String,
    /// Its block.
    pub layer: Option<usize>,
    /// Prompts pooled: one state each (N; log2 N bounds the bits they can resolve).
    pub states: u64,
    /// Feature-set entropy of the last-prompt-token states, bits.
    pub entropy_bits: f64,
    /// entropy_bits / d'.
    pub bits_per_feature: f64,
    /// Mean fraction of bits on.
    pub active_fraction: f64,
    /// Fraction of prompts whose most likely next token is the label's first token.
    pub accuracy: f64,
    /// Mean over prompts of the label's log-probability (all its tokens), nats.
    pub label_logprob: f64,
}

/// One prompt of the sweep and how the model did on it.
#[derive(Debug, Clone, PartialEq)]
pub struct IclSampleResult {
    /// Demonstrations.
    pub k: usize,
    /// Sample number (same query at every k).
    pub sample: usize,
    /// The query's index in the task file (0-based, blank lines not counted).
    pub query: usize,
    /// The demonstrations' indices, in prompt order.
    pub demos: Vec<usize>,
    /// Prompt length in tokens (without the label).
    pub prompt_tokens: usize,
    /// The most likely next token is the label's first token.
    pub correct: bool,
    /// log P(label | prompt), all label tokens, nats.
    pub label_logprob: f64,
}

/// Everything the sweep measured.
#[derive(Debug, Clone, PartialEq)]
pub struct IclResult {
    /// Per (k, hook), in k then hook order.
    pub aggregates: Vec<IclAggregate>,
    /// Per (k, sample).
    pub samples: Vec<IclSampleResult>,
}

/// A prompt tokenized with and without its label.
struct Prepared {
    k: usize,
    sample: Sample,
    ids: Vec<u32>,
    prompt_len: usize,
}

fn prepare(
    model: &Model,
    task: &Task,
    sweep: &[(usize, Vec<Sample>)],
    special_tokens: bool,
) -> Result<Vec<Prepared>> {
    let tokenizer = model.tokenizer()?;
    let context = model.config().max_position_embeddings;
    let mut out = Vec::new();
    for (k, samples) in sweep {
        for s in samples {
            let prompt = task.prompt(&s.demos, s.query);
            let prompt_ids = tokenizer.encode(&prompt, special_tokens)?;
            let ids = tokenizer.encode(&format!("{prompt}{}", task.answer(s.query)), special_tokens)?;
            let example = || format!("example {} (label {:?})", s.query, task.examples[s.query].label);
            if ids.len() <= prompt_ids.len() {
                return Err(DynamicsError::Task {
                    path: task.path.clone(),
                    location: example(),
                    message: "the label adds no tokens after the prompt".into(),
                });
            }
            if ids[..prompt_ids.len()] != prompt_ids[..] {
                return Err(DynamicsError::Task {
                    path: task.path.clone(),
                    location: example(),
                    message: "the label's first token merges with the prompt's last when tokenized; \
                              end label_prefix with a separate token or change label_separator"
                        .into(),
                });
            }
            if ids.len() > context {
                return Err(DynamicsError::Input(format!(
                    "k = {k}, sample {}: prompt and label take {} tokens, more than the model's context of {context}; \
                     use fewer demonstrations (--demos)",
                    s.sample,
                    ids.len()
                )));
            }
            out.push(Prepared { k: *k, sample: s.clone(), prompt_len: prompt_ids.len(), ids });
        }
    }
    Ok(out)
}

/// Runs the sweep. `on_batch` sees how many prompts are done out of the total.
pub fn measure_icl(
    model: &Model,
    baes: &AutoencoderSet,
    task: &Task,
    sweep: &[(usize, Vec<Sample>)],
    options: IclOptions,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<IclResult> {
    if options.batch == 0 {
        return Err(DynamicsError::Input("--batch must be at least 1".into()));
    }
    baes.check_model(model.config())?;
    let prepared = prepare(model, task, sweep, options.special_tokens)?;
    let mut capture = baes.hooks();
    capture.push(HookPoint::FinalNorm);
    let request = ForwardRequest::capture(&capture);
    let device = model.decoder.device().clone();
    let ks: Vec<usize> = sweep.iter().map(|(k, _)| *k).collect();
    let mut counts: Vec<Vec<CodeCounts>> = ks
        .iter()
        .map(|_| baes.autoencoders.iter().map(|b| CodeCounts::new(b.autoencoder.d_hidden)).collect())
        .collect();
    let mut samples = Vec::with_capacity(prepared.len());
    let mut done = 0;
    for chunk in prepared.chunks(options.batch) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|p| p.ids.clone()).collect();
        let batch = Batch::new(&ids, 0, Padding::Right, &device)?;
        let out = model.decoder.forward(&batch, &request)?;
        for (b, p) in chunk.iter().enumerate() {
            let ki = ks.iter().position(|&k| k == p.k).expect("k from the sweep");
            let last = p.prompt_len - 1;
            for (h, bae) in baes.autoencoders.iter().enumerate() {
                let states = batch.unpad(&out.activations[&bae.hook], b)?;
                let row = states.get(last)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                counts[ki][h].add_row(&bae.autoencoder.encode(&row));
            }
            // Logits at the positions that predict each label token.
            let normed = batch.unpad(&out.activations[&HookPoint::FinalNorm], b)?;
            let label = &p.ids[p.prompt_len..];
            let logits = model.decoder.unembed(&normed.narrow(0, last, label.len())?)?;
            let logp = bae_lm::eval::log_softmax(&logits)?;
            let picked = logp.gather(&Tensor::new(label, &device)?.unsqueeze(1)?, 1)?;
            let label_logprob = picked.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
            let first = logits.get(0)?.argmax(0)?.to_scalar::<u32>()?;
            samples.push(IclSampleResult {
                k: p.k,
                sample: p.sample.sample,
                query: p.sample.query,
                demos: p.sample.demos.clone(),
                prompt_tokens: p.prompt_len,
                correct: first == label[0],
                label_logprob,
            });
        }
        done += chunk.len();
        on_batch(done, prepared.len());
    }
    let mut aggregates = Vec::new();
    for (ki, &k) in ks.iter().enumerate() {
        let at_k: Vec<&IclSampleResult> = samples.iter().filter(|s| s.k == k).collect();
        let n = at_k.len().max(1) as f64;
        let accuracy = at_k.iter().filter(|s| s.correct).count() as f64 / n;
        let label_logprob = at_k.iter().map(|s| s.label_logprob).sum::<f64>() / n;
        for (h, bae) in baes.autoencoders.iter().enumerate() {
            let c = &counts[ki][h];
            let bits = entropy_bits(&c.ones, c.rows as usize);
            aggregates.push(IclAggregate {
                k,
                hook: bae.hook.to_string(),
                layer: bae.hook.layer(),
                states: c.rows,
                entropy_bits: bits,
                bits_per_feature: bits / bae.autoencoder.d_hidden as f64,
                active_fraction: c.active_fraction(),
                accuracy,
                label_logprob,
            });
        }
    }
    Ok(IclResult { aggregates, samples })
}
