//! The BAE's loss terms on a minibatch, as differentiable candle expressions. The
//! names double as log and Parquet column names.

use candle_core::{Result, Tensor, D};

/// Mean squared error over all elements.
pub fn mse(x: &Tensor, reconstruction: &Tensor) -> Result<Tensor> {
    (x - reconstruction)?.sqr()?.mean_all()
}

/// Σ_j h(p_j) in bits, p_j the batch mean of column j of `z` [B, d'], with the
/// reference's 1e-10 inside the logarithms (keeping the gradient finite at p ∈ {0, 1}).
pub fn entropy(z: &Tensor) -> Result<Tensor> {
    let p = z.mean(0)?;
    let q = (1.0 - &p)?;
    let log2 = |t: &Tensor| -> Result<Tensor> { (t + 1e-10)?.log()? / std::f64::consts::LN_2 };
    let h = ((&p * log2(&p)?)? + (&q * log2(&q)?)?)?;
    h.sum_all()?.neg()
}

/// Σ_{j≠k} |Cov(z_j, z_k)| over the columns of `z` [B, d'], unbiased (B − 1).
pub fn covariance(z: &Tensor) -> Result<Tensor> {
    let b = z.dim(0)?;
    let centered = z.broadcast_sub(&z.mean_keepdim(0)?)?;
    let cov = (centered.t()?.matmul(&centered)? / (b as f64 - 1.0))?;
    let diagonal = centered.sqr()?.sum(0)? / (b as f64 - 1.0);
    cov.abs()?.sum_all()? - diagonal?.abs()?.sum(D::Minus1)?
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::bits::{reference, PackedCodes};
    use bae_lm::rng::SplitMix64;

    fn random(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..rows * cols).map(|_| rng.unit_f32()).collect()
    }

    /// Central finite differences of `f` at every input element.
    fn numeric_gradient(
        f: &dyn Fn(&Tensor) -> Result<Tensor>,
        data: &[f32],
        shape: (usize, usize),
    ) -> Vec<f64> {
        let eval = |d: &[f32]| -> f64 {
            f(&Tensor::from_slice(d, shape, &Device::Cpu).unwrap()).unwrap().to_scalar::<f32>().unwrap()
                as f64
        };
        let h = 1e-3f32;
        (0..data.len())
            .map(|i| {
                let (mut up, mut down) = (data.to_vec(), data.to_vec());
                up[i] += h;
                down[i] -= h;
                (eval(&up) - eval(&down)) / (2.0 * h as f64)
            })
            .collect()
    }

    fn check_gradient(
        name: &str,
        f: &dyn Fn(&Tensor) -> Result<Tensor>,
        data: &[f32],
        shape: (usize, usize),
    ) {
        let var = Var::from_tensor(&Tensor::from_slice(data, shape, &Device::Cpu).unwrap()).unwrap();
        let grads = f(var.as_tensor()).unwrap().backward().unwrap();
        let analytic: Vec<f32> =
            grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let numeric = numeric_gradient(f, data, shape);
        for (i, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
            let tolerance = 2e-2 * n.abs().max(1.0);
            assert!(
                (*a as f64 - n).abs() <= tolerance,
                "{name}[{i}]: autograd {a} vs finite differences {n}"
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Soft codes strictly inside (0, 1), where every term is smooth.
        let z: Vec<f32> = random(6, 4, 1).iter().map(|v| 0.1 + 0.8 * v).collect();
        check_gradient("entropy", &|t| entropy(t), &z, (6, 4));
        check_gradient("covariance", &|t| covariance(t), &z, (6, 4));
        let target = Tensor::from_slice(&random(6, 4, 2), (6, 4), &Device::Cpu).unwrap();
        check_gradient("mse", &|t| mse(&target, t), &z, (6, 4));
    }

    #[test]
    fn terms_equal_the_bit_packed_statistics_on_hard_codes() {
        let (rows, cols) = (100, 7);
        let pre: Vec<f32> = random(rows, cols, 3).iter().map(|v| v - 0.4).collect();
        let z = reference::binarize(&pre);
        let packed = PackedCodes::from_preactivations(&pre, rows, cols);
        let zt = Tensor::from_slice(&z, (rows, cols), &Device::Cpu).unwrap();
        let h = entropy(&zt).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!((h - crate::bits::entropy_bits(&packed.counts(), rows)).abs() < 1e-4, "{h}");
        let c = covariance(&zt).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!(
            (c - packed.covariance_sum()).abs() < 1e-3 * c.max(1.0),
            "{c} vs {}",
            packed.covariance_sum()
        );
    }
}
