//! The autoencoders' parameters and their inference-time encoding. Every architecture
//! shares the encoder `pre = x·W_enc + b_enc` and the decoder `a·W_dec + b_dec` (no
//! input normalisation, no tied weights; SAELens layout and names); they differ in the
//! activation `a` (see [`Architecture`]). Parameters are plain row-major `f32` vectors:
//! the training step works on them directly, and checkpoints copy them out.

use std::path::Path;

use crate::config::{Architecture, TrainConfig};
use crate::error::{Result, TrainError};
use bae_lm::rng::SplitMix64;

use super::activation;

/// Parameters of one autoencoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoencoder {
    /// Which activation and sparsity term.
    pub architecture: Architecture,
    /// Input width d.
    pub d: usize,
    /// Number of features d'.
    pub d_hidden: usize,
    /// Encoder weights `[d, d']`.
    pub w_enc: Vec<f32>,
    /// Encoder bias `[d']`.
    pub b_enc: Vec<f32>,
    /// Decoder weights `[d', d]`.
    pub w_dec: Vec<f32>,
    /// Decoder bias `[d]`.
    pub b_dec: Vec<f32>,
    /// JumpReLU: ln θ per feature `[d']`, trained (the log keeps θ positive); empty for
    /// the other architectures.
    pub log_threshold: Vec<f32>,
    /// BatchTopK: the inference threshold, a running mean (EMA, rate 0.01) of the smallest
    /// activation each training batch kept; 0 for the other architectures.
    pub batch_threshold: f32,
    /// TopK and BatchTopK: active features per row (on average for BatchTopK).
    pub k: usize,
    /// The normalisation constant s: the parameters act on `s·x`. [`Self::encode`] and
    /// [`Self::reconstruct`] take raw activations and apply it (and its inverse to the
    /// reconstruction); a model loaded from SAELens files has it folded into the
    /// weights and 1 here.
    pub input_scale: f32,
}

/// `n` values uniform in ±1/sqrt(fan_in), PyTorch's `nn.Linear` default.
fn uniform(rng: &mut SplitMix64, n: usize, fan_in: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    (0..n).map(|_| (rng.unit_f32() * 2.0 - 1.0) * bound).collect()
}

impl Autoencoder {
    /// A freshly initialised model for width `d`, as `config` describes; the config's
    /// seed fixes every weight. SAE baselines start with unit-norm decoder rows.
    pub fn new(config: &TrainConfig, d: usize) -> Self {
        let d_hidden = config.d_hidden_for(d);
        let mut rng = SplitMix64::new(config.seed);
        let mut model = Self {
            architecture: config.architecture,
            d,
            d_hidden,
            w_enc: uniform(&mut rng, d * d_hidden, d),
            b_enc: uniform(&mut rng, d_hidden, d),
            w_dec: uniform(&mut rng, d_hidden * d, d_hidden),
            b_dec: uniform(&mut rng, d, d_hidden),
            log_threshold: Vec::new(),
            batch_threshold: 0.0,
            k: config.k(),
            input_scale: 1.0,
        };
        if model.architecture == Architecture::JumpRelu {
            model.log_threshold = vec![(config.jumprelu_initial_threshold() as f32).ln(); d_hidden];
        }
        if model.architecture != Architecture::Binary {
            model.normalize_decoder_rows();
        }
        model
    }

    /// Scales every row of W_dec (one feature's direction) to unit L2 norm; the SAE
    /// baselines keep this constraint after every step so their sparsity terms cannot
    /// be dodged by shrinking activations and growing decoder rows.
    pub fn normalize_decoder_rows(&mut self) {
        for row in self.w_dec.chunks_mut(self.d) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
    }

    /// The trainable parameters in a fixed order (W_enc, b_enc, W_dec, b_dec,
    /// log_threshold); the last is empty except for JumpReLU.
    pub fn params(&self) -> [&[f32]; 5] {
        [&self.w_enc, &self.b_enc, &self.w_dec, &self.b_dec, &self.log_threshold]
    }

    /// The trainable parameters, mutably, in the order of [`Self::params`].
    pub fn params_mut(&mut self) -> [&mut Vec<f32>; 5] {
        [&mut self.w_enc, &mut self.b_enc, &mut self.w_dec, &mut self.b_dec, &mut self.log_threshold]
    }

    /// Encoder pre-activations of normalised inputs `x` `[rows, d]` (already times
    /// [`Self::input_scale`]), `[rows, d']`.
    pub fn preactivations(&self, x: &[f32]) -> Vec<f32> {
        let rows = x.len() / self.d;
        let mut pre = Vec::with_capacity(rows * self.d_hidden);
        (0..rows).for_each(|_| pre.extend_from_slice(&self.b_enc));
        bae_lm::matmul::Sgemm { m: rows, n: self.d_hidden, k: self.d, trans_a: false, trans_b: false }.run(
            1.0,
            x,
            &self.w_enc,
            1.0,
            &mut pre,
        );
        pre
    }

    /// `x` times the normalisation constant (borrowed when it is 1).
    fn normalized<'a>(&self, x: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        if self.input_scale == 1.0 {
            std::borrow::Cow::Borrowed(x)
        } else {
            std::borrow::Cow::Owned(x.iter().map(|v| v * self.input_scale).collect())
        }
    }

    /// Inference-time activations of raw activations `x` `[rows, d]`, `[rows, d']`: the
    /// BAE's codes in {0, 1}, or the SAE's feature activations (BatchTopK with its
    /// learned threshold).
    pub fn encode(&self, x: &[f32]) -> Vec<f32> {
        let pre = self.preactivations(&self.normalized(x));
        let mut act = vec![0f32; pre.len()];
        activation::infer(self, &pre, &mut act);
        act
    }

    /// Reconstruction `(a·W_dec + b_dec) / s` of raw activations `x` `[rows, d]` from
    /// its inference-time activations, `[rows, d]`, in the units of `x`.
    pub fn reconstruct(&self, x: &[f32]) -> Vec<f32> {
        let act = self.encode(x);
        let rows = x.len() / self.d;
        let mut out = Vec::with_capacity(rows * self.d);
        (0..rows).for_each(|_| out.extend_from_slice(&self.b_dec));
        bae_lm::matmul::Sgemm { m: rows, n: self.d, k: self.d_hidden, trans_a: false, trans_b: false }.run(
            1.0,
            &act,
            &self.w_dec,
            1.0,
            &mut out,
        );
        if self.input_scale != 1.0 {
            out.iter_mut().for_each(|v| *v /= self.input_scale);
        }
        out
    }

    /// The same model with the normalisation folded into its weights, reading raw
    /// activations with `input_scale` 1 (SAELens's `fold_activation_norm_scaling_factor`):
    /// `W_enc·s` gives the same pre-activations (so the same codes and thresholds), and
    /// `W_dec / s`, `b_dec / s` the reconstruction in raw units.
    pub fn folded(&self) -> Self {
        let s = self.input_scale;
        let mut model = self.clone();
        if s != 1.0 {
            model.w_enc.iter_mut().for_each(|w| *w *= s);
            model.w_dec.iter_mut().for_each(|w| *w /= s);
            model.b_dec.iter_mut().for_each(|b| *b /= s);
            model.input_scale = 1.0;
        }
        model
    }

    /// Loads a run directory's `sae_weights.safetensors` and `cfg.json` (architecture
    /// and k); shapes are checked against each other.
    pub fn from_saelens(dir: &Path) -> Result<Self> {
        crate::checkpoint::load_saelens(dir)
    }

    /// Checks the parameter shapes against d and d' (for loaded files).
    pub(crate) fn check_shapes(&self) -> std::result::Result<(), String> {
        let (d, h) = (self.d, self.d_hidden);
        let want_threshold = if self.architecture == Architecture::JumpRelu { h } else { 0 };
        for (name, len, want) in [
            ("W_enc", self.w_enc.len(), d * h),
            ("b_enc", self.b_enc.len(), h),
            ("W_dec", self.w_dec.len(), h * d),
            ("b_dec", self.b_dec.len(), d),
            ("threshold", self.log_threshold.len(), want_threshold),
        ] {
            if len != want {
                return Err(format!("`{name}` has {len} values, a d = {d}, d' = {h} model needs {want}"));
            }
        }
        Ok(())
    }
}

/// Why a file does not hold a usable model.
pub(crate) fn bad_model(path: &Path, message: String) -> TrainError {
    TrainError::Tensors { path: path.to_path_buf(), message }
}
