//! Adam (Kingma & Ba), written out so its state can be checkpointed and restored: a
//! resumed run must continue with exactly the moments it stopped with. Same update as
//! PyTorch's `torch.optim.Adam`: bias-corrected moments, eps added after the square root.

use rayon::prelude::*;

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

/// The optimiser and its state, one moment vector per parameter.
pub struct Adam {
    params: AdamParams,
    /// First moments, one per parameter.
    pub m: Vec<Vec<f32>>,
    /// Second moments.
    pub v: Vec<Vec<f32>>,
    /// Steps taken.
    pub step: u64,
}

/// Elements per parallel task.
const CHUNK: usize = 16_384;

impl Adam {
    /// Fresh state (zero moments) for parameters of the given lengths.
    pub fn new(lengths: &[usize], params: AdamParams) -> Self {
        let m: Vec<Vec<f32>> = lengths.iter().map(|&n| vec![0f32; n]).collect();
        Self { params, v: m.clone(), m, step: 0 }
    }

    /// The hyper-parameters.
    pub fn params(&self) -> AdamParams {
        self.params
    }

    /// One update of every parameter from its gradient. Elementwise, so the result does
    /// not depend on how the work is split across threads.
    pub fn update(&mut self, params: &mut [&mut Vec<f32>], grads: &[Vec<f32>]) {
        assert_eq!(params.len(), self.m.len(), "Adam holds state for {} parameters", self.m.len());
        self.step += 1;
        let AdamParams { lr, beta1, beta2, eps } = self.params;
        let scale_m = (1.0 / (1.0 - beta1.powi(self.step as i32))) as f32;
        let scale_v = (1.0 / (1.0 - beta2.powi(self.step as i32))) as f32;
        // 1 − β in f64 before rounding: (1 − 0.999f32) is 5e-5 off 0.001.
        let (one_minus_beta1, one_minus_beta2) = ((1.0 - beta1) as f32, (1.0 - beta2) as f32);
        let (lr, beta1, beta2, eps) = (lr as f32, beta1 as f32, beta2 as f32, eps as f32);
        for (((p, g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            assert_eq!((p.len(), g.len()), (m.len(), m.len()), "parameter and gradient shapes differ");
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| {
                    for i in 0..p.len() {
                        m[i] = m[i] * beta1 + g[i] * one_minus_beta1;
                        v[i] = v[i] * beta2 + (g[i] * g[i]) * one_minus_beta2;
                        let m_hat = m[i] * scale_m;
                        let v_hat = v[i] * scale_v;
                        p[i] -= (m_hat / (v_hat.sqrt() + eps)) * lr;
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};

    use super::*;

    #[test]
    fn matches_candle_adamw_without_weight_decay() {
        let dev = Device::Cpu;
        let start = [0.5f32, -1.0, 2.0, 0.1];
        let target = [1.0f32, 1.0, -1.0, 0.0];
        let theirs_var = Var::from_tensor(&Tensor::new(&start, &dev).unwrap()).unwrap();
        let params = ParamsAdamW { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
        let mut theirs = AdamW::new(vec![theirs_var.clone()], params).unwrap();
        let mut ours = Adam::new(&[4], AdamParams::with_lr(0.05));
        let mut ours_p = start.to_vec();
        let target_t = Tensor::new(&target, &dev).unwrap();
        for _ in 0..20 {
            // Loss Σ (p − t)², gradient 2 (p − t).
            let grad: Vec<f32> = ours_p.iter().zip(&target).map(|(p, t)| 2.0 * (p - t)).collect();
            ours.update(&mut [&mut ours_p], &[grad]);
            let loss = (theirs_var.as_tensor() - &target_t).unwrap().sqr().unwrap().sum_all().unwrap();
            theirs.backward_step(&loss).unwrap();
        }
        let b: Vec<f32> = theirs_var.as_tensor().to_vec1().unwrap();
        for (x, y) in ours_p.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{ours_p:?} vs {b:?}");
        }
        assert_eq!(ours.step, 20);
    }
}
