//! The training loop: seeded shuffled minibatches streamed from a [`RowSource`], Adam,
//! the entropy term from epoch E0 on, per-epoch metrics on the training and validation
//! rows, and checkpoints from which a killed run resumes to the same weights.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Result as CandleResult, Tensor};

use super::model::Autoencoder;
use super::normalize::activation_scale;
use super::step::{self, BatchStats, LossWeights, Workspace};
use super::{merge, prune};
use crate::bits::PackedCodes;
use crate::checkpoint::Checkpoint;
use crate::config::{Architecture, ComputeDevice, DecoderBiasInit, TrainConfig};
use crate::error::{Result, TrainError};
use crate::metrics::{CodeCounts, CodeStats, L0Rule};
use crate::optim::{Adam, AdamParams};
use crate::store::{
    median_row_norm, InMemoryRows, NormBoundedRows, RowRange, RowSource, ScaledRows, ShuffledRows,
};
use bae_lm::rng::SplitMix64;

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
    /// Mean minibatch sparsity penalty before weighting: Σ_j a_j per row for relu_l1,
    /// the active count per row for jumprelu, 0 for the other architectures.
    #[serde(default)]
    pub sparsity: f64,
    /// The epoch's training objective on these rows: mse + λ_H·batch_entropy_bits +
    /// λ_C·covariance for a BAE (λ_H = 0 before E0), mse + coefficient·sparsity for
    /// relu_l1 and jumprelu, mse otherwise. Early stopping watches it on `val`.
    #[serde(default)]
    pub loss: f64,
    /// Statistics of all the split's codes in the epoch (the window for dead/dense
    /// counts): feature-set entropy, L0, dead/dense/constant features, density histogram.
    #[serde(flatten)]
    pub codes: CodeStats,
    /// Duplicate bits merged at the end of this epoch's training pass, before the
    /// validation pass (see `merge_agreement`); the same on the epoch's two rows.
    #[serde(default)]
    pub merged_bits: usize,
    /// Bits switched off at the end of this epoch's training pass because they cost
    /// more entropy than they bought reconstruction (see `prune_bits`); the same on the
    /// epoch's two rows.
    #[serde(default)]
    pub pruned_bits: usize,
    /// Wall time of the epoch (training pass plus validation), seconds.
    pub seconds: f64,
}

/// A training run over some rows: autoencoder, optimiser, progress.
pub struct Trainer {
    /// The run's settings.
    pub config: TrainConfig,
    /// The autoencoder being trained.
    pub autoencoder: Autoencoder,
    /// The optimiser and its state.
    pub adam: Adam,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Metrics of the completed epochs, train and val per epoch.
    pub history: Vec<EpochMetrics>,
    /// Per-dimension mean of the normalised training rows (for the FVU).
    pub train_mean: Vec<f32>,
    /// Training rows (the first `rows − validation_rows` of the source, less the
    /// outliers).
    pub train_rows: u64,
    /// Validation rows (the last `validation_rows` of the source, less the outliers).
    pub val_rows: u64,
    /// Rows whose norm exceeds this (raw units, before normalisation) are left out of
    /// both splits: `outlier_norm_ratio` times the training rows' median norm.
    pub outlier_norm_bound: Option<f32>,
    /// Rows left out of the two splits by that bound.
    pub outlier_rows: u64,
    /// The model whose activations these are, when known (a store records it); written
    /// to cfg.json so a BAE is not used on another model.
    pub source_model: Option<crate::store::ModelIdentity>,
    /// The GPU's copy of the model and optimiser when `device = "cuda"`.
    #[cfg(feature = "cuda")]
    gpu: Option<crate::cuda::GpuTrainer>,
}

/// What one epoch's rows measured, and the objective they give under `config`.
fn stats_row(
    config: &TrainConfig,
    epoch: usize,
    steps_done: u64,
    split: Split,
    sums: &Sums,
    stats: CodeStats,
    seconds: f64,
) -> EpochMetrics {
    let batches = sums.batches.max(1) as f64;
    let mse = sums.sse / sums.elements.max(1) as f64;
    let (covariance, batch_entropy_bits, sparsity) =
        (sums.covariance / batches, sums.entropy / batches, sums.sparsity / batches);
    // The weights at the epoch's end: after the warm-up, those of every step.
    let w = LossWeights::at(config, epoch, steps_done);
    let loss = mse
        + match config.architecture {
            Architecture::Binary => w.lambda_entropy * batch_entropy_bits + w.lambda_covariance * covariance,
            Architecture::ReluL1 => w.l1 * sparsity,
            Architecture::JumpRelu => w.l0 * sparsity,
            Architecture::TopK | Architecture::BatchTopK => 0.0,
        };
    EpochMetrics {
        epoch,
        split,
        mse,
        fvu: sums.sse / sums.sst.max(f64::MIN_POSITIVE),
        covariance,
        batch_entropy_bits,
        sparsity,
        loss,
        codes: stats,
        merged_bits: 0,
        pruned_bits: 0,
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
    sparsity: f64,
    batches: u64,
}

/// Rows of the training sample duplicate and unprofitable bits are judged on.
const MERGE_SAMPLE_ROWS: usize = 8192;

/// Rows per encoder pass over that sample: a multiple of 64, so the packed codes stack.
const MERGE_CHUNK_ROWS: usize = 1024;

/// Mixed into the run seed for that sample's shuffle (the same rows every epoch).
const MERGE_SEED: u64 = 0x6475_706c_6963_6174;

/// How long BatchTopK's threshold remembers: the EMA's weight on each new batch.
const THRESHOLD_RATE: f32 = 0.01;

impl Trainer {
    /// A fresh run on `source`, after validating the config against it.
    pub fn new(config: TrainConfig, source: &dyn RowSource) -> Result<Self> {
        config.validate(source.rows(), source.dim())?;
        let mut model = Autoencoder::new(&config, source.dim());
        let lengths = model.params().map(|p| p.len());
        let adam = Adam::new(&lengths, AdamParams::with_lr(config.lr));
        let n_train = source.rows() - config.validation_rows(source.rows());
        let outlier_norm_bound = match config.outlier_norm_ratio {
            0.0 => None,
            ratio => Some((ratio * median_row_norm(&RowRange::new(source, 0, n_train))? as f64) as f32),
        };
        let (train, val) = split(source, &config, outlier_norm_bound)?;
        let outlier_rows = train.excluded() + val.excluded();
        if (train.rows() as usize) < config.batch {
            return Err(crate::TrainError::Input(format!(
                "only {} training rows are left once the {outlier_rows} rows with a norm above \
                 {:.4e} (outlier_norm_ratio = {} times the median) are left out, fewer than batch = {}",
                train.rows(),
                outlier_norm_bound.unwrap_or(f32::INFINITY),
                config.outlier_norm_ratio,
                config.batch
            )));
        }
        // Measured on the training rows only, so validation stays unseen.
        model.input_scale = activation_scale(&train, config.normalize_activations)?;
        let train_mean = column_mean(&ScaledRows::new(&train, model.input_scale))?;
        if config.decoder_bias_init == DecoderBiasInit::Mean {
            model.b_dec = train_mean.clone();
        }
        #[cfg(feature = "cuda")]
        let gpu = match config.device {
            ComputeDevice::Cuda => Some(crate::cuda::GpuTrainer::new(0, &model, &adam)?),
            ComputeDevice::Cpu => None,
        };
        #[cfg(not(feature = "cuda"))]
        if config.device == ComputeDevice::Cuda {
            return Err(crate::TrainError::Cuda(
                "this build has no GPU support; build with `cargo build --release --features cuda`".into(),
            ));
        }
        Ok(Self {
            config,
            autoencoder: model,
            adam,
            epochs_done: 0,
            history: Vec::new(),
            train_mean,
            train_rows: train.rows(),
            val_rows: val.rows(),
            outlier_norm_bound,
            outlier_rows,
            source_model: None,
            #[cfg(feature = "cuda")]
            gpu,
        })
    }

    /// Continues the run saved in `checkpoint` on the same `source` with the same config.
    pub fn resume(config: TrainConfig, source: &dyn RowSource, checkpoint: &Path) -> Result<Self> {
        let mut trainer = Self::new(config, source)?;
        Checkpoint::load(checkpoint, &mut trainer)?;
        #[cfg(feature = "cuda")]
        if let Some(gpu) = trainer.gpu.as_mut() {
            gpu.upload(&trainer.autoencoder, &trainer.adam)?;
        }
        Ok(trainer)
    }

    /// Where the step runs, for logs: "cpu (openblas)" or the GPU's name.
    pub fn device_description(&self) -> String {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            return format!("cuda: {}", gpu.describe());
        }
        format!("cpu ({})", bae_lm::matmul::backend().name())
    }

    /// Brings the GPU's parameters and optimiser state back to the host copy.
    fn sync_from_device(&mut self) -> Result<()> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            gpu.download(&mut self.autoencoder, &mut self.adam)?;
        }
        Ok(())
    }

    /// The training rows duplicate and unprofitable bits are judged on, drawn once per
    /// run: the first [`MERGE_SAMPLE_ROWS`] of a seeded shuffle. None when no bit is ever
    /// merged or pruned (a baseline, or `merge_agreement = 0` with `prune_bits` off).
    fn merge_sample(&self, train: &dyn RowSource) -> Result<Option<Vec<f32>>> {
        let simplifies = self.config.merge_agreement != 0.0 || self.config.prune_bits;
        if self.autoencoder.architecture != Architecture::Binary || !simplifies {
            return Ok(None);
        }
        let d = self.autoencoder.d;
        let mut sample = Vec::with_capacity(MERGE_SAMPLE_ROWS * d);
        for x in ShuffledRows::new(
            train,
            MERGE_CHUNK_ROWS,
            self.config.shuffle_rows,
            self.config.seed ^ MERGE_SEED,
        )? {
            sample.extend_from_slice(&x?);
            if sample.len() >= MERGE_SAMPLE_ROWS * d {
                break;
            }
        }
        Ok(Some(sample))
    }

    /// The hard codes of `sample` under the current model.
    fn sample_codes(&self, sample: &[f32]) -> PackedCodes {
        let (d, h) = (self.autoencoder.d, self.autoencoder.d_hidden);
        // Chunks of whole 64-row words, so the packed parts stack.
        let parts: Vec<PackedCodes> = sample
            .chunks(MERGE_CHUNK_ROWS * d)
            .map(|x| PackedCodes::from_preactivations(&self.autoencoder.preactivations(x), x.len() / d, h))
            .collect();
        PackedCodes::stack(&parts)
    }

    /// Folds duplicate bits into one another (see [`super::merge`]), then switches off
    /// the bits that cost more entropy than they buy (see [`super::prune`]) at the λ_H of
    /// the next step, both judged on `sample`; returns how many bits each switched off.
    fn simplify_code(&mut self, sample: &[f32], epoch: usize) -> Result<(usize, usize)> {
        let mut codes = self.sample_codes(sample);
        let mut merged = 0;
        if self.config.merge_agreement != 0.0 {
            let merges = merge::duplicate_bits(&codes, self.config.merge_agreement);
            merge::apply(&mut self.autoencoder, &mut self.adam, &merges);
            merged = merges.len();
            if merged > 0 && self.config.prune_bits {
                // The merged bits are now off on every row.
                codes = self.sample_codes(sample);
            }
        }
        let mut pruned = 0;
        if self.config.prune_bits {
            let lambda = LossWeights::at(&self.config, epoch, self.adam.step).lambda_entropy;
            let prunes = prune::unprofitable_bits(&self.autoencoder, sample, &codes, lambda);
            prune::apply(&mut self.autoencoder, &mut self.adam, &prunes);
            pruned = prunes.len();
        }
        #[cfg(feature = "cuda")]
        if let (Some(gpu), true) = (self.gpu.as_mut(), merged + pruned > 0) {
            gpu.upload(&self.autoencoder, &self.adam)?;
        }
        Ok((merged, pruned))
    }

    /// How L0 is counted for this architecture.
    fn l0_rule(&self) -> L0Rule {
        if self.autoencoder.architecture == Architecture::Binary {
            L0Rule::FlipsFromMean
        } else {
            L0Rule::NonZero
        }
    }

    /// Runs the remaining epochs (until [`Self::finished`]); every `checkpoint_every`
    /// epochs and after the last a checkpoint goes to `run_dir`; after each epoch
    /// `on_epoch` sees the trainer and whether a checkpoint was just written (so a log
    /// written only then never runs ahead of the checkpoint a resume starts from).
    pub fn run(
        &mut self,
        source: &dyn RowSource,
        run_dir: Option<&Path>,
        on_epoch: &mut dyn FnMut(&Trainer, bool) -> Result<()>,
    ) -> Result<()> {
        // A run killed after its last checkpoint was renamed into place, but before the
        // files written beside it (the SAELens export, the caller's log), is finished
        // yet incomplete on disk: write them again rather than leave older ones.
        if self.finished() && self.epochs_done > 0 {
            if let Some(dir) = run_dir {
                Checkpoint::save(dir, self)?;
            }
            return on_epoch(self, true);
        }
        let (train, val) = split(source, &self.config, self.outlier_norm_bound)?;
        let s = self.autoencoder.input_scale;
        let (train, val) = (ScaledRows::new(&train, s), ScaledRows::new(&val, s));
        let mut ws = Workspace::default();
        let merge_sample = self.merge_sample(&train)?;
        while !self.finished() {
            let epoch = self.epochs_done;
            let started = Instant::now();
            let (sums, counts) = self.train_epoch(&train, epoch, &mut ws)?;
            self.sync_from_device()?;
            if !self.autoencoder.params().iter().all(|p| p.iter().all(|v| v.is_finite())) {
                return Err(TrainError::NonFinite { what: "the weights", epoch, step: self.adam.step });
            }
            let (merged_bits, pruned_bits) = match &merge_sample {
                Some(sample) => self.simplify_code(sample, epoch)?,
                None => (0, 0),
            };
            let rule = self.l0_rule();
            let steps = self.adam.step;
            let train_row =
                stats_row(&self.config, epoch, steps, Split::Train, &sums, counts.stats(rule), 0.0);
            let (sums, counts) = self.validate(&val, &mut ws)?;
            let seconds = started.elapsed().as_secs_f64();
            let val_row =
                stats_row(&self.config, epoch, steps, Split::Val, &sums, counts.stats(rule), seconds);
            self.history.push(EpochMetrics { seconds, merged_bits, pruned_bits, ..train_row });
            self.history.push(EpochMetrics { merged_bits, pruned_bits, ..val_row });
            self.epochs_done += 1;
            let last = self.finished();
            let checkpoint = last || self.epochs_done.is_multiple_of(self.config.checkpoint_every);
            if let (Some(dir), true) = (run_dir, checkpoint) {
                Checkpoint::save(dir, self)?;
            }
            on_epoch(self, checkpoint)?;
        }
        Ok(())
    }

    /// Whether the run is over: every epoch ran, or early stopping ended it.
    pub fn finished(&self) -> bool {
        self.epochs_done >= self.config.epochs || self.stopped_early()
    }

    /// Optimiser steps in one epoch: whole batches of the training rows.
    pub fn steps_per_epoch(&self) -> u64 {
        self.train_rows / self.config.batch as u64
    }

    /// Whether the validation loss has not improved by `min_improvement` (relative) for
    /// `patience` epochs, counted from the epoch the objective last changed. A pure
    /// function of the history, so a resumed run stops where an uninterrupted one does.
    pub fn stopped_early(&self) -> bool {
        let patience = self.config.patience;
        if patience == 0 {
            return false;
        }
        let start = self.config.objective_start_epoch(self.steps_per_epoch());
        let losses: Vec<f64> = self
            .history
            .iter()
            .filter(|m| m.split == Split::Val && m.epoch >= start)
            .map(|m| m.loss)
            .collect();
        let (mut best, mut best_at) = (f64::INFINITY, 0);
        for (i, &loss) in losses.iter().enumerate() {
            if loss < best * (1.0 - self.config.min_improvement) {
                (best, best_at) = (loss, i);
            }
        }
        !losses.is_empty() && losses.len() - 1 - best_at >= patience
    }

    /// The seed of epoch `epoch`'s shuffle: a pure function of the run seed and the
    /// epoch, so a resumed run shuffles exactly as an uninterrupted one.
    fn epoch_seed(&self, epoch: usize) -> u64 {
        SplitMix64::new(self.config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
    }

    /// One optimiser step on the batch `x`; returns what the batch measured (before
    /// the step). On the GPU the host copy of the model is stale until the epoch ends.
    pub fn step(
        &mut self,
        x: &[f32],
        weights: &LossWeights,
        ws: &mut Workspace,
        grads: &mut step::Gradients,
    ) -> Result<BatchStats> {
        let stats = match self.gpu_step(x, weights)? {
            Some(stats) => stats,
            None => {
                let stats = step::gradients(&self.autoencoder, x, weights, ws, grads);
                self.adam.update(&mut self.autoencoder.params_mut(), grads);
                if self.autoencoder.architecture != Architecture::Binary {
                    self.autoencoder.normalize_decoder_rows();
                }
                stats
            }
        };
        if let Some(smallest) = stats.smallest_kept {
            let theta = &mut self.autoencoder.batch_threshold;
            // The first batch sets the threshold; later ones move it slowly.
            *theta =
                if self.adam.step == 1 { smallest } else { *theta + THRESHOLD_RATE * (smallest - *theta) };
        }
        Ok(stats)
    }

    /// The step on the GPU when there is one (the host model supplies the architecture,
    /// and for BatchTopK the threshold and k of its host-side selection).
    #[cfg(feature = "cuda")]
    fn gpu_step(&mut self, x: &[f32], weights: &LossWeights) -> Result<Option<BatchStats>> {
        match self.gpu.as_mut() {
            Some(gpu) => Ok(Some(gpu.step(&self.autoencoder, x, weights, &mut self.adam)?)),
            None => Ok(None),
        }
    }

    #[cfg(not(feature = "cuda"))]
    fn gpu_step(&mut self, _x: &[f32], _weights: &LossWeights) -> Result<Option<BatchStats>> {
        Ok(None)
    }

    fn train_epoch(
        &mut self,
        train: &dyn RowSource,
        epoch: usize,
        ws: &mut Workspace,
    ) -> Result<(Sums, CodeCounts)> {
        let mut tally = Tally::new(self.autoencoder.d_hidden);
        let mut grads = step::zero_gradients(&self.autoencoder);
        let batches =
            ShuffledRows::new(train, self.config.batch, self.config.shuffle_rows, self.epoch_seed(epoch))?;
        for x in batches {
            let x = x?;
            // Whole batches only, as the reference's DataLoader with drop_last.
            if x.len() < self.config.batch * self.autoencoder.d {
                break;
            }
            let weights = LossWeights::at(&self.config, epoch, self.adam.step);
            let stats = self.step(&x, &weights, ws, &mut grads)?;
            if ![stats.sse, stats.entropy_bits, stats.covariance, stats.sparsity]
                .iter()
                .all(|v| v.is_finite())
            {
                return Err(TrainError::NonFinite {
                    what: "the minibatch loss",
                    epoch,
                    step: self.adam.step,
                });
            }
            tally.add(&x, &stats, &self.train_mean);
        }
        Ok((tally.sums, tally.counts))
    }

    fn validate(&self, val: &dyn RowSource, ws: &mut Workspace) -> Result<(Sums, CodeCounts)> {
        let mut tally = Tally::new(self.autoencoder.d_hidden);
        let d = val.dim();
        for chunk in 0..val.chunks() {
            let data = val.read_chunk(chunk)?;
            for x in data.chunks(self.config.batch * d) {
                let stats = step::evaluate(&self.autoencoder, x, ws);
                tally.add(x, &stats, &self.train_mean);
            }
        }
        Ok((tally.sums, tally.counts))
    }
}

/// The training rows (the first `rows − validation_rows`) and the validation rows (the
/// rest) of `source`, each without the rows whose norm exceeds `bound`.
fn split<'a>(
    source: &'a dyn RowSource,
    config: &TrainConfig,
    bound: Option<f32>,
) -> Result<(NormBoundedRows<RowRange<'a>>, NormBoundedRows<RowRange<'a>>)> {
    let n = source.rows();
    let n_train = n - config.validation_rows(n);
    Ok((
        NormBoundedRows::new(RowRange::new(source, 0, n_train), bound)?,
        NormBoundedRows::new(RowRange::new(source, n_train, n), bound)?,
    ))
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

    fn add(&mut self, x: &[f32], stats: &BatchStats, mean: &[f32]) {
        let sums = &mut self.sums;
        sums.sse += stats.sse;
        sums.sst += x
            .chunks(mean.len())
            .map(|row| row.iter().zip(mean).map(|(x, m)| ((x - m) as f64).powi(2)).sum::<f64>())
            .sum::<f64>();
        sums.elements += x.len() as u64;
        sums.entropy += stats.entropy_bits;
        sums.covariance += stats.covariance;
        sums.sparsity += stats.sparsity;
        sums.batches += 1;
        self.counts.add(&stats.codes);
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
    let mut trainer = Trainer::new(config, &source)?;
    trainer.run(&source, None, &mut |_, _| Ok(()))?;
    Ok(trainer)
}

/// `r` independent fair bits embedded along random unit directions in R^d, scaled by
/// `scale`, plus near-Gaussian noise of standard deviation `noise`: the sanity dataset
/// on which a BAE should report about `r` bits. Rows `[n, d]`, on the CPU.
pub fn synthetic_bits(
    n: usize,
    d: usize,
    r: usize,
    scale: f32,
    noise: f32,
    seed: u64,
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
    Tensor::from_vec(data, (n, d), &Device::Cpu)
}

#[cfg(test)]
mod tests;
