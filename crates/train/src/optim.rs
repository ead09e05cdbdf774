//! Adam (Kingma & Ba), written out so its state can be checkpointed and restored: a
//! resumed run must continue with exactly the moments it stopped with. Same update as
//! PyTorch's `torch.optim.Adam`: bias-corrected moments, eps added after the square root.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
}

impl AdamParams {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// The optimiser and its state.
pub struct Adam {
    params: AdamParams,
    vars: Vec<Var>,
    /// First moments, one per variable.
    pub m: Vec<Tensor>,
    /// Second moments.
    pub v: Vec<Tensor>,
    /// Steps taken.
    pub step: u64,
}

impl Adam {
    /// Fresh state (zero moments) for `vars`.
    pub fn new(vars: Vec<Var>, params: AdamParams) -> Result<Self> {
        let m = vars.iter().map(|v| v.zeros_like()).collect::<Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(Self { params, vars, m, v, step: 0 })
    }

    /// One update from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.apply(&grads)
    }

    /// One update from computed gradients (variables without one are left alone).
    pub fn apply(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let AdamParams { lr, beta1, beta2, eps } = self.params;
        let correction1 = 1.0 - beta1.powi(self.step as i32);
        let correction2 = 1.0 - beta2.powi(self.step as i32);
        for (i, var) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            self.m[i] = ((&self.m[i] * beta1)? + (g * (1.0 - beta1))?)?;
            self.v[i] = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&self.m[i] / correction1)?;
            let v_hat = (&self.v[i] / correction2)?;
            let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
            var.set(&(var.as_tensor() - (update * lr)?)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};

    use super::*;

    #[test]
    fn matches_candle_adamw_without_weight_decay() {
        let dev = Device::Cpu;
        let start = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.1]], &dev).unwrap();
        let target = Tensor::new(&[[1.0f32, 1.0], [-1.0, 0.0]], &dev).unwrap();
        let ours_var = Var::from_tensor(&start).unwrap();
        let theirs_var = Var::from_tensor(&start).unwrap();
        let mut ours = Adam::new(vec![ours_var.clone()], AdamParams::with_lr(0.05)).unwrap();
        let params = ParamsAdamW { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
        let mut theirs = AdamW::new(vec![theirs_var.clone()], params).unwrap();
        for _ in 0..20 {
            let loss = |v: &Var| (v.as_tensor() - &target).unwrap().sqr().unwrap().sum_all().unwrap();
            ours.backward_step(&loss(&ours_var)).unwrap();
            theirs.backward_step(&loss(&theirs_var)).unwrap();
        }
        let a: Vec<f32> = ours_var.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = theirs_var.flatten_all().unwrap().to_vec1().unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
        assert_eq!(ours.step, 20);
    }
}
