//! The binary autoencoder: encoder with bias, step binarization, decoder with bias; no
//! input normalisation, no tied weights. Weights use the SAELens layout and names.

use candle_core::{DType, Device, Result, Tensor, Var};

use super::estimator::{binarize, Estimator};
use crate::rng::SplitMix64;

/// Parameters and the gradient estimator.
pub struct BinaryAutoencoder {
    /// Encoder weights `[d, d']`.
    pub w_enc: Var,
    /// Encoder bias `[d']`.
    pub b_enc: Var,
    /// Decoder weights `[d', d]`.
    pub w_dec: Var,
    /// Decoder bias `[d]`.
    pub b_dec: Var,
    /// Backward pass of the binarization.
    pub estimator: Estimator,
}

/// One forward pass.
pub struct BaeOutput {
    /// Encoder pre-activations `[B, d']`.
    pub pre: Tensor,
    /// Codes in {0, 1} `[B, d']`.
    pub codes: Tensor,
    /// Decoder output `[B, d]`.
    pub reconstruction: Tensor,
}

/// `[rows, cols]` uniform in ±1/sqrt(fan_in), PyTorch's `nn.Linear` default.
fn uniform(rng: &mut SplitMix64, shape: &[usize], fan_in: usize, device: &Device) -> Result<Var> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (rng.unit_f32() * 2.0 - 1.0) * bound).collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
}

impl BinaryAutoencoder {
    /// A freshly initialised model for width `d` and `d_hidden` features; the seed fixes
    /// every weight.
    pub fn new(d: usize, d_hidden: usize, estimator: Estimator, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        Ok(Self {
            w_enc: uniform(&mut rng, &[d, d_hidden], d, device)?,
            b_enc: uniform(&mut rng, &[d_hidden], d, device)?,
            w_dec: uniform(&mut rng, &[d_hidden, d], d_hidden, device)?,
            b_dec: uniform(&mut rng, &[d], d_hidden, device)?,
            estimator,
        })
    }

    /// Input width d.
    pub fn d(&self) -> usize {
        self.w_enc.dim(0).expect("2-D")
    }

    /// Number of features d'.
    pub fn d_hidden(&self) -> usize {
        self.w_enc.dim(1).expect("2-D")
    }

    /// The trainable parameters.
    pub fn vars(&self) -> Vec<Var> {
        vec![self.w_enc.clone(), self.b_enc.clone(), self.w_dec.clone(), self.b_dec.clone()]
    }

    /// Encoder pre-activations of `x` `[B, d]`.
    pub fn pre(&self, x: &Tensor) -> Result<Tensor> {
        x.to_dtype(DType::F32)?.matmul(self.w_enc.as_tensor())?.broadcast_add(self.b_enc.as_tensor())
    }

    /// Decodes codes `[B, d']`.
    pub fn decode(&self, codes: &Tensor) -> Result<Tensor> {
        codes.matmul(self.w_dec.as_tensor())?.broadcast_add(self.b_dec.as_tensor())
    }

    /// Loads `sae_weights.safetensors` (SAELens layout) from a run directory.
    pub fn from_saelens(dir: &std::path::Path, estimator: Estimator, device: &Device) -> crate::Result<Self> {
        let path = dir.join(crate::checkpoint::WEIGHTS_FILE);
        let tensors = candle_core::safetensors::load(&path, device)
            .map_err(|e| crate::TrainError::Tensors { path: path.clone(), message: e.to_string() })?;
        let get = |name: &str| -> crate::Result<Var> {
            let t = tensors.get(name).ok_or_else(|| crate::TrainError::Tensors {
                path: path.clone(),
                message: format!("tensor `{name}` is missing"),
            })?;
            Ok(Var::from_tensor(&t.to_dtype(DType::F32)?)?)
        };
        let model = Self {
            w_enc: get("W_enc")?,
            b_enc: get("b_enc")?,
            w_dec: get("W_dec")?,
            b_dec: get("b_dec")?,
            estimator,
        };
        let (d, h) = (model.d(), model.d_hidden());
        if model.b_enc.dims() != [h] || model.w_dec.dims() != [h, d] || model.b_dec.dims() != [d] {
            return Err(crate::TrainError::Tensors {
                path,
                message: format!("shapes do not form a d = {d}, d' = {h} autoencoder"),
            });
        }
        Ok(model)
    }

    /// Codes in {0, 1} of `x` `[B, d]`, as u8.
    pub fn codes(&self, x: &Tensor) -> Result<Tensor> {
        self.pre(x)?.gt(0f32)
    }

    /// Encode, binarize, decode.
    pub fn forward(&self, x: &Tensor) -> Result<BaeOutput> {
        let pre = self.pre(x)?;
        let codes = binarize(&pre, self.estimator)?;
        let reconstruction = self.decode(&codes)?;
        Ok(BaeOutput { pre, codes, reconstruction })
    }
}
