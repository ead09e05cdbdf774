//! The training loop: seeded shuffled minibatches streamed from a [`RowSource`], Adam,
//! the entropy term from epoch E0 on, per-epoch metrics on the training and validation
//! rows, and checkpoints from which a killed run resumes to the same weights.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Result as CandleResult, Tensor};

use super::loss;
use super::model::{BaeOutput, BinaryAutoencoder};
use crate::bits::PackedCodes;
use crate::checkpoint::Checkpoint;
use crate::config::TrainConfig;
use crate::error::Result;
use crate::metrics::{CodeCounts, CodeStats};
use crate::optim::{Adam, AdamParams};
use crate::rng::SplitMix64;
use crate::store::{InMemoryRows, RowRange, RowSource, ShuffledRows};

/// Which rows a metrics row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training rows (means over the epoch's minibatches, codes before each step).
    Train,
    /// The held-out rows (one pass after the epoch, no gradient).
    Val,
}

/// Metrics of one epoch on one split. Field names are the training log's columns.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 0-based epoch.
    pub epoch: usize,
    /// Rows the metrics describe.
    pub split: Split,
    /// Mean squared error per element.
    pub mse: f64,
    /// Fraction of variance unexplained: Σ(x − x̂)² / Σ(x − mean_train)².
    pub fvu: f64,
    /// Mean minibatch covariance term Σ_{j≠k}|Cov(z_j, z_k)|.
    pub covariance: f64,
    /// Mean minibatch entropy term (bits), as in the loss.
    pub batch_entropy_bits: f64,
    /// Statistics of all the split's codes in the epoch (the window for dead/dense
    /// counts): feature-set entropy, L0, dead/dense/constant features, density histogram.
    #[serde(flatten)]
    pub codes: CodeStats,
    /// Wall time of the epoch (training pass plus validation), seconds.
    pub seconds: f64,
}

/// A training run over some rows: model, optimiser, progress.
pub struct Trainer {
    /// The run's settings.
    pub config: TrainConfig,
    /// The model.
    pub model: BinaryAutoencoder,
    /// The optimiser and its state.
    pub adam: Adam,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Metrics of the completed epochs, train and val per epoch.
    pub history: Vec<EpochMetrics>,
    /// Per-dimension mean of the training rows (for the FVU).
    pub train_mean: Vec<f32>,
}

fn stats_row(epoch: usize, split: Split, sums: &Sums, stats: CodeStats, seconds: f64) -> EpochMetrics {
    let batches = sums.batches.max(1) as f64;
    EpochMetrics {
        epoch,
        split,
        mse: sums.sse / sums.elements.max(1) as f64,
        fvu: sums.sse / sums.sst.max(f64::MIN_POSITIVE),
        covariance: sums.covariance / batches,
        batch_entropy_bits: sums.entropy / batches,
        codes: stats,
        seconds,
    }
}

#[derive(Default)]
struct Sums {
    sse: f64,
    sst: f64,
    elements: u64,
    covariance: f64,
    entropy: f64,
    batches: u64,
}

impl Trainer {
    /// A fresh run on `source`, after validating the config against it.
    pub fn new(config: TrainConfig, source: &dyn RowSource, device: &Device) -> Result<Self> {
        config.validate(source.rows(), source.dim())?;
        let d = source.dim();
        let model = BinaryAutoencoder::new(d, config.d_hidden_for(d), config.estimator, config.seed, device)?;
        let adam = Adam::new(model.vars(), AdamParams::with_lr(config.lr))?;
        let n_train = source.rows() - config.validation_rows(source.rows());
        let train_mean = column_mean(&RowRange::new(source, 0, n_train))?;
        Ok(Self { config, model, adam, epochs_done: 0, history: Vec::new(), train_mean })
    }

    /// Continues the run saved in `checkpoint` on the same `source` with the same config.
    pub fn resume(
        config: TrainConfig,
        source: &dyn RowSource,
        checkpoint: &Path,
        device: &Device,
    ) -> Result<Self> {
        let mut trainer = Self::new(config, source, device)?;
        Checkpoint::load(checkpoint, &mut trainer)?;
        Ok(trainer)
    }

    /// Runs the remaining epochs; after each, `on_epoch` sees the trainer, and every
    /// `checkpoint_every` epochs (and after the last) a checkpoint goes to `run_dir`.
    pub fn run(
        &mut self,
        source: &dyn RowSource,
        run_dir: Option<&Path>,
        on_epoch: &mut dyn FnMut(&Trainer) -> Result<()>,
    ) -> Result<()> {
        let n = source.rows();
        let n_train = n - self.config.validation_rows(n);
        let train = RowRange::new(source, 0, n_train);
        let val = RowRange::new(source, n_train, n);
        let device = self.model.w_enc.device().clone();
        let mean = Tensor::from_slice(&self.train_mean, self.train_mean.len(), &device)?;
        while self.epochs_done < self.config.epochs {
            let epoch = self.epochs_done;
            let started = Instant::now();
            let (sums, counts) = self.train_epoch(&train, epoch, &mean, &device)?;
            let train_row = stats_row(epoch, Split::Train, &sums, counts.stats(), 0.0);
            let (sums, counts) = self.validate(&val, &mean, &device)?;
            let seconds = started.elapsed().as_secs_f64();
            let val_row = stats_row(epoch, Split::Val, &sums, counts.stats(), seconds);
            self.history.push(EpochMetrics { seconds, ..train_row });
            self.history.push(val_row);
            self.epochs_done += 1;
            let last = self.epochs_done == self.config.epochs;
            if let Some(dir) = run_dir {
                if last || self.epochs_done % self.config.checkpoint_every == 0 {
                    Checkpoint::save(dir, self)?;
                }
            }
            on_epoch(self)?;
        }
        Ok(())
    }

    /// The seed of epoch `epoch`'s shuffle: a pure function of the run seed and the
    /// epoch, so a resumed run shuffles exactly as an uninterrupted one.
    fn epoch_seed(&self, epoch: usize) -> u64 {
        SplitMix64::new(self.config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
    }

    fn train_epoch(
        &mut self,
        train: &RowRange,
        epoch: usize,
        mean: &Tensor,
        device: &Device,
    ) -> Result<(Sums, CodeCounts)> {
        let weights_entropy =
            if epoch >= self.config.entropy_start_epoch { self.config.lambda_entropy } else { 0.0 };
        let mut tally = Tally::new(self.model.d_hidden());
        let batches = ShuffledRows::new(
            train,
            self.config.batch,
            self.config.shuffle_rows,
            self.epoch_seed(epoch),
            device,
        )?;
        for x in batches {
            let x = x?;
            // Whole batches only, as the reference's DataLoader with drop_last.
            if x.dim(0)? < self.config.batch {
                break;
            }
            let out = self.model.forward(&x)?;
            let mse = loss::mse(&x, &out.reconstruction)?;
            let entropy = loss::entropy(&out.codes)?;
            let covariance = loss::covariance(&out.codes)?;
            let mut total = (&mse + (&covariance * self.config.lambda_covariance)?)?;
            if weights_entropy > 0.0 {
                total = (total + (&entropy * weights_entropy)?)?;
            }
            self.adam.backward_step(&total)?;
            tally.add(&x, &out, mean, &entropy, &covariance)?;
        }
        Ok((tally.sums, tally.counts))
    }

    fn validate(&self, val: &RowRange, mean: &Tensor, device: &Device) -> Result<(Sums, CodeCounts)> {
        let mut tally = Tally::new(self.model.d_hidden());
        let d = val.dim();
        for chunk in 0..val.chunks() {
            let data = val.read_chunk(chunk)?;
            let rows = data.len() / d;
            let x = Tensor::from_vec(data, (rows, d), device)?;
            for start in (0..rows).step_by(self.config.batch) {
                let len = self.config.batch.min(rows - start);
                let xb = x.narrow(0, start, len)?;
                let out = self.model.forward(&xb)?;
                let entropy = loss::entropy(&out.codes)?;
                let covariance =
                    if len >= 2 { loss::covariance(&out.codes)? } else { Tensor::new(0f32, device)? };
                tally.add(&xb, &out, mean, &entropy, &covariance)?;
            }
        }
        Ok((tally.sums, tally.counts))
    }
}

/// Running sums of an epoch's minibatches on one split.
struct Tally {
    sums: Sums,
    counts: CodeCounts,
}

impl Tally {
    fn new(features: usize) -> Self {
        Self { sums: Sums::default(), counts: CodeCounts::new(features) }
    }

    fn add(
        &mut self,
        x: &Tensor,
        out: &BaeOutput,
        mean: &Tensor,
        entropy: &Tensor,
        covariance: &Tensor,
    ) -> CandleResult<()> {
        let (rows, features) = out.pre.dims2()?;
        let sums = &mut self.sums;
        sums.sse += (x - &out.reconstruction)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        sums.sst += x.broadcast_sub(mean)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        sums.elements += x.elem_count() as u64;
        sums.entropy += entropy.to_scalar::<f32>()? as f64;
        sums.covariance += covariance.to_scalar::<f32>()? as f64;
        sums.batches += 1;
        let pre: Vec<f32> = out.pre.flatten_all()?.to_vec1()?;
        self.counts.add(&PackedCodes::from_preactivations(&pre, rows, features));
        Ok(())
    }
}

/// Per-dimension mean, streamed chunk by chunk.
fn column_mean(source: &dyn RowSource) -> Result<Vec<f32>> {
    let d = source.dim();
    let mut sum = vec![0f64; d];
    for chunk in 0..source.chunks() {
        for row in source.read_chunk(chunk)?.chunks(d) {
            sum.iter_mut().zip(row).for_each(|(s, &x)| *s += x as f64);
        }
    }
    let n = source.rows().max(1) as f64;
    Ok(sum.into_iter().map(|s| (s / n) as f32).collect())
}

/// Trains on rows held in memory `[n, d]` (no checkpoints); returns the trainer.
pub fn train_in_memory(rows: &Tensor, config: TrainConfig) -> Result<Trainer> {
    let (_, d) = rows.dims2()?;
    let source = InMemoryRows::new(rows.flatten_all()?.to_vec1()?, d, 4096)?;
    let mut trainer = Trainer::new(config, &source, rows.device())?;
    trainer.run(&source, None, &mut |_| Ok(()))?;
    Ok(trainer)
}

/// `r` independent fair bits embedded along random unit directions in R^d, scaled by
/// `scale`, plus near-Gaussian noise of standard deviation `noise`: the sanity dataset
/// on which a BAE should report about `r` bits. Rows `[n, d]`.
pub fn synthetic_bits(
    n: usize,
    d: usize,
    r: usize,
    scale: f32,
    noise: f32,
    seed: u64,
    device: &Device,
) -> CandleResult<Tensor> {
    let mut rng = SplitMix64::new(seed);
    // Sum of 4 uniforms, rescaled to unit variance: close to normal, cheap, seeded.
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
mod tests;
