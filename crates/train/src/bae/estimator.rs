//! Step binarization with a choice of straight-through gradient estimator.
//!
//! Forward: z = 1 where pre > 0, else 0. The step has zero gradient almost everywhere,
//! so training replaces it in the backward pass (upstream gradient g, pre-activation x):
//! - `identity`: g passes through unchanged;
//! - `sign_s` (the reference implementation's default): g·(1 − g), a function of the
//!   upstream gradient itself, as the reference code computes it;
//! - `sigmoid`: g·σ(x)(1 − σ(x)), the derivative of a sigmoid surrogate.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use serde::{Deserialize, Serialize};

/// The backward-pass replacement for the step's gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// Straight-through: the gradient passes unchanged.
    Identity,
    /// The reference default: g·(1 − g).
    SignS,
    /// Sigmoid surrogate: g·σ(x)(1 − σ(x)).
    Sigmoid,
}

impl Estimator {
    /// The gradient reaching the pre-activation `x` when `g` reaches the code.
    pub fn backward(self, g: f32, x: f32) -> f32 {
        match self {
            Estimator::Identity => g,
            Estimator::SignS => g * (1.0 - g),
            Estimator::Sigmoid => {
                let s = 1.0 / (1.0 + (-x).exp());
                g * s * (1.0 - s)
            }
        }
    }
}

/// The step as a candle op whose backward is the estimator: the autograd oracle for
/// the hand-written training step.
struct Binarize(Estimator);

impl CustomOp1 for Binarize {
    fn name(&self) -> &'static str {
        "bae-binarize"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("binarize expects f32 pre-activations, got {:?}", storage.dtype())
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("binarize expects a contiguous tensor")
        };
        let z: Vec<f32> = data[start..end].iter().map(|&x| if x > 0.0 { 1.0 } else { 0.0 }).collect();
        Ok((CpuStorage::F32(z), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(match self.0 {
            Estimator::Identity => grad.clone(),
            Estimator::SignS => (grad * (1.0 - grad)?)?,
            Estimator::Sigmoid => {
                let s = candle_nn::ops::sigmoid(&arg.detach())?;
                (grad * (&s * (1.0 - &s)?)?)?
            }
        }))
    }
}

/// z = (pre > 0) as f32, with `estimator` as its gradient.
pub fn binarize(pre: &Tensor, estimator: Estimator) -> candle_core::Result<Tensor> {
    pre.contiguous()?.apply_op1(Binarize(estimator))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn forward_is_the_step_and_backward_the_chosen_estimator() {
        let dev = Device::Cpu;
        let x = Var::new(&[-2.0f32, -0.0, 0.5, 3.0], &dev).unwrap();
        // Loss = Σ w·z with fixed weights w, so the upstream gradient g equals w.
        let w = Tensor::new(&[0.3f32, -0.5, 2.0, 0.1], &dev).unwrap();
        let g: Vec<f32> = w.to_vec1().unwrap();
        let xs: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        for (estimator, want) in [
            (Estimator::Identity, g.clone()),
            (Estimator::SignS, g.iter().map(|g| g * (1.0 - g)).collect::<Vec<_>>()),
            (Estimator::Sigmoid, g.iter().zip(&xs).map(|(g, x)| g * sig(*x) * (1.0 - sig(*x))).collect()),
        ] {
            let z = binarize(x.as_tensor(), estimator).unwrap();
            assert_eq!(z.to_vec1::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 1.0]);
            let grads = (&z * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let got: Vec<f32> = grads.get(x.as_tensor()).unwrap().to_vec1().unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{estimator:?}: {got:?} vs {want:?}");
            }
            let direct: Vec<f32> = g.iter().zip(&xs).map(|(&g, &x)| estimator.backward(g, x)).collect();
            for (a, b) in direct.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{estimator:?}: {direct:?} vs {want:?}");
            }
        }
    }
}
