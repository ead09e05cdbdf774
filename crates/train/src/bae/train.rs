//! A training loop over rows held in memory: seeded shuffles, Adam, the entropy term
//! switched on from epoch E0, and per-epoch metrics on the training and validation rows
//! computed from bit-packed codes.

use candle_core::{Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use super::estimator::Estimator;
use super::loss;
use super::model::BinaryAutoencoder;
use crate::bits::{entropy_bits, PackedCodes};
use crate::rng::SplitMix64;

/// Weights of the loss terms: total = MSE + λ_H·H (from epoch `entropy_start_epoch`) + λ_C·C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    /// λ_H, weight of the entropy in bits.
    pub entropy: f64,
    /// λ_C, weight of the covariance term.
    pub covariance: f64,
    /// E0: first epoch (0-based) in which the entropy term counts.
    pub entropy_start_epoch: usize,
}

/// Everything a run needs besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    /// Number of features d'.
    pub d_hidden: usize,
    /// Gradient estimator of the binarization.
    pub estimator: Estimator,
    /// Loss weights.
    pub weights: LossWeights,
    /// Adam learning rate.
    pub lr: f64,
    /// Rows per minibatch.
    pub batch: usize,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Last fraction of the rows held out for validation (the reference uses 0.2).
    pub val_fraction: f64,
    /// Seed of the initial weights and of every epoch's shuffle.
    pub seed: u64,
}

/// Metrics of one epoch, on the training rows (means over minibatches) and the
/// validation rows (one pass, no gradient).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean minibatch MSE on the training rows.
    pub train_mse: f64,
    /// Mean minibatch entropy (bits) on the training rows.
    pub train_entropy: f64,
    /// Mean minibatch covariance term on the training rows.
    pub train_covariance: f64,
    /// MSE on the validation rows.
    pub val_mse: f64,
    /// Feature-set entropy (bits) of the validation rows' codes.
    pub val_entropy: f64,
}

/// Trains a BAE on `rows` `[n, d]`; returns the model and one metrics row per epoch.
pub fn train_in_memory(
    rows: &Tensor,
    settings: &TrainSettings,
) -> Result<(BinaryAutoencoder, Vec<EpochMetrics>)> {
    let (n, d) = rows.dims2()?;
    let n_val = ((n as f64) * settings.val_fraction).round() as usize;
    let n_train = n - n_val;
    if settings.batch < 2 || settings.batch > n_train {
        candle_core::bail!(
            "batch {} must be between 2 and the {n_train} training rows (the covariance needs two rows)",
            settings.batch
        );
    }
    let device = rows.device().clone();
    let model = BinaryAutoencoder::new(d, settings.d_hidden, settings.estimator, settings.seed, &device)?;
    let params = ParamsAdamW { lr: settings.lr, weight_decay: 0.0, ..ParamsAdamW::default() };
    let mut adam = AdamW::new(model.vars(), params)?;
    let train = rows.narrow(0, 0, n_train)?;
    let val = rows.narrow(0, n_train, n_val)?;
    let mut rng = SplitMix64::new(settings.seed ^ 0x5DEE_CE66);
    let mut order: Vec<u32> = (0..n_train as u32).collect();
    let mut history = Vec::with_capacity(settings.epochs);
    for epoch in 0..settings.epochs {
        rng.shuffle(&mut order);
        let entropy_on = epoch >= settings.weights.entropy_start_epoch;
        let (mut mse_sum, mut h_sum, mut c_sum, mut steps) = (0.0, 0.0, 0.0, 0usize);
        // Whole batches only, as the reference's DataLoader with drop_last.
        for chunk in order.chunks_exact(settings.batch) {
            let index = Tensor::from_slice(chunk, chunk.len(), &device)?;
            let x = train.index_select(&index, 0)?;
            let out = model.forward(&x)?;
            let mse = loss::mse(&x, &out.reconstruction)?;
            let entropy = loss::entropy(&out.codes)?;
            let covariance = loss::covariance(&out.codes)?;
            let mut total = (&mse + (&covariance * settings.weights.covariance)?)?;
            if entropy_on {
                total = (total + (&entropy * settings.weights.entropy)?)?;
            }
            adam.backward_step(&total)?;
            mse_sum += mse.to_scalar::<f32>()? as f64;
            h_sum += entropy.to_scalar::<f32>()? as f64;
            c_sum += covariance.to_scalar::<f32>()? as f64;
            steps += 1;
        }
        let (val_mse, val_entropy) = evaluate(&model, &val)?;
        let steps = steps.max(1) as f64;
        history.push(EpochMetrics {
            epoch,
            train_mse: mse_sum / steps,
            train_entropy: h_sum / steps,
            train_covariance: c_sum / steps,
            val_mse,
            val_entropy,
        });
    }
    Ok((model, history))
}

/// MSE and feature-set entropy (bits, from packed codes) of `rows`.
pub fn evaluate(model: &BinaryAutoencoder, rows: &Tensor) -> Result<(f64, f64)> {
    let n = rows.dim(0)?;
    if n == 0 {
        return Ok((f64::NAN, f64::NAN));
    }
    let out = model.forward(rows)?;
    let mse = loss::mse(rows, &out.reconstruction)?.to_scalar::<f32>()? as f64;
    let pre: Vec<f32> = out.pre.flatten_all()?.to_vec1()?;
    let packed = PackedCodes::from_preactivations(&pre, n, model.d_hidden());
    Ok((mse, entropy_bits(&packed.counts(), n)))
}

/// `r` independent fair bits embedded along random unit directions in R^d, scaled by
/// `scale`, plus Gaussian-ish noise of standard deviation `noise`: the sanity dataset
/// on which a BAE should report about `r` bits. Rows `[n, d]`.
pub fn synthetic_bits(
    n: usize,
    d: usize,
    r: usize,
    scale: f32,
    noise: f32,
    seed: u64,
    device: &Device,
) -> Result<Tensor> {
    let mut rng = SplitMix64::new(seed);
    // Sum of 4 uniforms, rescaled: close to normal, cheap, and seeded.
    let mut normal = move || ((0..4).map(|_| rng.unit_f32()).sum::<f32>() - 2.0) * 3f32.sqrt();
    let directions: Vec<Vec<f32>> = (0..r)
        .map(|_| {
            let v: Vec<f32> = (0..d).map(|_| normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm * scale).collect()
        })
        .collect();
    let mut bits = SplitMix64::new(seed.wrapping_add(1));
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        let mut row: Vec<f32> = (0..d).map(|_| normal() * noise).collect();
        for v in &directions {
            if bits.next_u64() & 1 == 1 {
                row.iter_mut().zip(v).for_each(|(x, vi)| *x += vi);
            }
        }
        data.extend(row);
    }
    Tensor::from_vec(data, (n, d), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        estimator: Estimator,
        lambda: f64,
        epochs: usize,
        entropy_start_epoch: usize,
    ) -> TrainSettings {
        TrainSettings {
            d_hidden: 16,
            estimator,
            weights: LossWeights { entropy: lambda, covariance: lambda, entropy_start_epoch },
            lr: 5e-3,
            batch: 128,
            epochs,
            val_fraction: 0.2,
            seed: 7,
        }
    }

    #[test]
    fn a_bae_recovers_about_r_bits_from_synthetic_data() {
        // 4 fair independent bits carry exactly 4 bits; an encoder that recovers them
        // and keeps its other 12 features constant reports 4. Half a bit of slack allows
        // one feature to be partly redundant. Measured: 3.995 bits, validation MSE 0.019
        // (the data's variance is about 1 per element, the noise's 0.0025).
        let rows = synthetic_bits(2048, 16, 4, 4.0, 0.05, 3, &Device::Cpu).unwrap();
        let (_, history) = train_in_memory(&rows, &settings(Estimator::Sigmoid, 0.1, 100, 30)).unwrap();
        let last = history.last().unwrap();
        assert!((last.val_entropy - 4.0).abs() <= 0.5, "{last:?}");
        assert!(last.val_mse < 0.05, "{last:?}");
        // Without the entropy and covariance terms the codes are far more redundant.
        let (_, free) = train_in_memory(&rows, &settings(Estimator::Sigmoid, 0.0, 100, 30)).unwrap();
        assert!(free.last().unwrap().val_entropy > 8.0, "{:?}", free.last());
    }

    #[test]
    fn the_entropy_term_has_no_effect_before_e0() {
        let rows = synthetic_bits(512, 8, 3, 4.0, 0.05, 1, &Device::Cpu).unwrap();
        let run = |lambda_h: f64, e0: usize| {
            let mut s = settings(Estimator::Identity, 0.0, 6, e0);
            s.weights.entropy = lambda_h;
            train_in_memory(&rows, &s).unwrap().1
        };
        // Before E0 a huge λ_H changes nothing, bit for bit; from E0 on it does.
        let plain = run(0.0, 3);
        let weighted = run(10.0, 3);
        assert_eq!(plain[..3], weighted[..3]);
        assert_ne!(plain[3..], weighted[3..]);
    }

    #[test]
    fn same_seed_same_run() {
        let rows = synthetic_bits(512, 8, 3, 4.0, 0.05, 1, &Device::Cpu).unwrap();
        let s = settings(Estimator::SignS, 1e-2, 3, 1);
        let (a, ha) = train_in_memory(&rows, &s).unwrap();
        let (b, hb) = train_in_memory(&rows, &s).unwrap();
        assert_eq!(ha, hb);
        let w = |m: &BinaryAutoencoder| m.w_dec.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(w(&a), w(&b));
    }
}
