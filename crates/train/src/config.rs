//! The `[train]` table of a run config: every choice of a training run (a BAE or one of
//! the SAE baselines), with the BAE reference recipe as defaults, validated before any
//! work starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::bae::{Estimator, Normalization};
use crate::error::{Result, TrainError};

/// What is trained: the binary autoencoder or one of the sparse-autoencoder baselines.
/// All share the encoder `x·W_enc + b_enc`, the decoder `a·W_dec + b_dec`, Adam, and the
/// metrics; they differ in the activation `a` and the sparsity term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// The BAE: a = step(pre) in {0, 1}; MSE + λ_H·entropy + λ_C·covariance.
    #[serde(rename = "binary")]
    Binary,
    /// ReLU SAE: a = relu(pre); MSE + `l1_coefficient`·mean_rows Σ_j a_j.
    #[serde(rename = "relu_l1")]
    ReluL1,
    /// TopK SAE: relu of each row's `k` largest pre-activations, the rest 0; MSE only.
    #[serde(rename = "topk")]
    TopK,
    /// BatchTopK SAE: relu of the `k`·B largest pre-activations of the whole batch; MSE
    /// only. Outside training a learned threshold replaces the batch selection.
    #[serde(rename = "batch_topk")]
    BatchTopK,
    /// JumpReLU SAE: a = pre where pre > θ_j else 0, θ learned through a straight-through
    /// estimator; MSE + `l0_coefficient`·mean_rows L0.
    #[serde(rename = "jumprelu")]
    JumpRelu,
}

impl Architecture {
    /// The config spelling.
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Binary => "binary",
            Architecture::ReluL1 => "relu_l1",
            Architecture::TopK => "topk",
            Architecture::BatchTopK => "batch_topk",
            Architecture::JumpRelu => "jumprelu",
        }
    }
}

/// The decoder bias's starting value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderBiasInit {
    /// Uniform in ±1/sqrt(d'), PyTorch's `nn.Linear` default (the reference code).
    Uniform,
    /// The training rows' mean: the reconstruction starts at the data's centre, which
    /// matters when the mean is far larger than the spread (Gemma's residuals) and a
    /// short run at a small learning rate would spend itself walking there.
    Mean,
}

/// Where the training step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDevice {
    /// The CPU step (OpenBLAS or the `gemm` crate): the reference.
    Cpu,
    /// The first CUDA GPU, in a build with the `cuda` feature.
    Cuda,
}

/// Most features an autoencoder may have (16x the widest residual stream of a released
/// model).
pub const MAX_FEATURES: usize = 1 << 20;

/// Most elements of one weight matrix (8 GiB of f32).
pub const MAX_MATRIX_ELEMENTS: usize = 1 << 31;

/// A training run. Field names are the TOML keys. The defaults are the recipe chosen on
/// planted bits at normalised scale (BENCHMARKS.md, "Planted bits"): sigmoid
/// estimator, λ_H = 3e-4, λ_C = 3e-5 reached by a linear warm-up over 1,000 steps,
/// Adam lr 1e-3, batch 512, at most 200 epochs with patience 10, inputs normalised,
/// rows above 20x the median norm left out, b_dec at the mean, last 20% held out,
/// duplicate bits merged and unprofitable bits switched off after every epoch.
/// The reference recipe (Cho et al.'s code) is sign_s, λ_H = λ_C = 1e-7, E0 = 500,
/// lr 5e-4, 2000 epochs on raw activations; at SmolLM2's scale its regularisers are
/// 1e-4 of the MSE and do nothing, and on planted bits it reports 2x to 40x r.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Activations: an activation store directory or a safetensors file (`--acts`).
    pub acts: Option<PathBuf>,
    /// The store's hook point to train on (`--hook`), required with a store.
    pub hook: Option<String>,
    /// The matrix's name inside a safetensors file (`--tensor`), required with a file.
    pub tensor: Option<String>,
    /// Run directory for checkpoints and the training log (`--out`).
    pub out: Option<PathBuf>,
    /// Where the training step runs (`--device`): "cpu" (default) or "cuda" (the first
    /// GPU; needs a build with the `cuda` feature). Validation always runs on the CPU.
    /// May change when a run is resumed.
    pub device: ComputeDevice,
    /// "binary" (the BAE, default), or a baseline: "relu_l1", "topk", "batch_topk",
    /// "jumprelu". The BAE-only fields (estimator, lambda_entropy, lambda_covariance,
    /// entropy_start_epoch, lambda_warmup_steps, merge_agreement, prune_bits) must keep their
    /// defaults for a baseline; each baseline field
    /// is refused for the architectures it does not apply to.
    pub architecture: Architecture,
    /// Number of features d'; when absent, `expansion` × d.
    pub d_hidden: Option<usize>,
    /// d' = expansion × d when `d_hidden` is absent. Default 4.
    pub expansion: usize,
    /// Gradient estimator of the binarization: "identity", "sign_s" (the reference's) or
    /// "sigmoid" (default: the only one that found planted bits at d' = 4d).
    pub estimator: Estimator,
    /// λ_H, weight of the entropy term (bits). Default 3e-4 (reference 1e-7, on raw
    /// activations).
    pub lambda_entropy: f64,
    /// λ_C, weight of the covariance term. Default 3e-5 (reference 1e-7): Σ|Cov|
    /// grows with the square of the varying bits, and at 3e-4 it, not the MSE, set the
    /// size of a real hook's code (at λ_H = 3e-4, FVU 0.52 at block 25 of SmolLM2 against 0.41).
    pub lambda_covariance: f64,
    /// E0: first epoch (0-based) in which the entropy term counts. Default 0: the
    /// warm-up below brings it in instead (reference: 500 of 2000 epochs, no warm-up).
    pub entropy_start_epoch: usize,
    /// Warm-up of the two regularisers: λ_H and λ_C rise linearly from 0 to their
    /// values over the first this many optimiser steps (counted in steps, not epochs,
    /// so the schedule means the same on 8,000 rows as on 8 million). Switching them
    /// on at full weight over a dense initial code lets the entropy and covariance
    /// terms (thousands of times the MSE at d' = 2304) freeze bits off before the code
    /// has found the data's directions. 0 applies them at full weight from the first
    /// step (the reference). Default 1000.
    pub lambda_warmup_steps: usize,
    /// Duplicate bits merged after every epoch: two varying bits that agree, or
    /// disagree, on at least this fraction of a fixed sample of 8,192 training rows are
    /// one bit counted twice by a sum of marginal entropies, and the gradient cannot
    /// separate them (a copy's pre-activations are saturated). One is folded into the
    /// other so the reconstruction is unchanged wherever they agree, and switched off
    /// (see `bae::merge`); the count goes to the training log (`merged_bits`). 0 never
    /// merges (the reference); otherwise a fraction in (0.5, 1]. Default 0.999.
    pub merge_agreement: f64,
    /// Unprofitable bits switched off after every epoch (after merging): each varying
    /// bit whose reconstruction gain on the same 8,192-row sample is below its entropy
    /// cost λ_H·h(p_j) at the current λ_H is replaced by its mean (folded into b_dec) and
    /// switched off, the most unprofitable first (see `bae::prune`). The gradient cannot
    /// do this for a balanced bit, where the entropy term's derivative is zero. The count
    /// goes to the training log (`pruned_bits`). false never prunes (the reference).
    /// Default true.
    pub prune_bits: bool,
    /// relu_l1 only: weight of the L1 term, mean over rows of Σ_j a_j. Default 1e-3.
    pub l1_coefficient: Option<f64>,
    /// topk and batch_topk only: active features per row (batch_topk: on average).
    /// Default 32.
    pub k: Option<usize>,
    /// jumprelu only: weight of the L0 term, mean over rows of the active count.
    /// Default 1e-3.
    pub l0_coefficient: Option<f64>,
    /// jumprelu only: width ε of the rectangle kernel in the threshold's
    /// straight-through gradient. Default 1e-3.
    pub jumprelu_bandwidth: Option<f64>,
    /// jumprelu only: the initial threshold θ of every feature. Default 1e-3.
    pub jumprelu_initial_threshold: Option<f64>,
    /// Starting value of the decoder bias b_dec: "mean" (the normalised training rows'
    /// mean, default) or "uniform" (PyTorch's default, the reference).
    pub decoder_bias_init: DecoderBiasInit,
    /// How activations are scaled before the autoencoder sees them:
    /// "expected_average_only_in" (default: times one constant per run, measured on the
    /// training rows, that makes their mean squared norm d — SAELens's name; the
    /// constant goes to cfg.json and the checkpoint, and the saved SAELens weights have
    /// it folded in) or "none" (raw activations, the reference).
    pub normalize_activations: Normalization,
    /// Massive activations out of training: rows whose norm exceeds this multiple of
    /// the median norm of the training rows are left out of the training and the
    /// validation rows (the bound and the count go to cfg.json). A residual stream's
    /// attention sinks beyond position 0 reach 50–170x its median norm and a handful of
    /// them can hold most of a hook's variance; ordinary rows stay below about 12x. 0
    /// keeps every row (the reference). Default 20.
    pub outlier_norm_ratio: f64,
    /// Early stopping: end the run once the validation loss (the training objective on
    /// the held-out rows) has not improved by `min_improvement` for this many epochs in
    /// a row; `epochs` stays the most that run. Counted only from the epoch the
    /// objective last changed (for a BAE: the first epoch after E0 and the λ warm-up). 0 runs every epoch (the
    /// reference). Default 10.
    pub patience: usize,
    /// Relative improvement that counts for `patience`: a validation loss below
    /// best·(1 − min_improvement). Default 0.001.
    pub min_improvement: f64,
    /// Adam learning rate. Default 1e-3 (reference 5e-4). Adam moves every weight by
    /// about lr per step, so a pre-activation moves by about lr·d on inputs normalised
    /// to norm √d: at d = 576 and lr = 5e-3 the codes of planted bits froze within 250
    /// steps with no regulariser at all.
    pub lr: f64,
    /// Rows per minibatch; incomplete last batches of an epoch are dropped. Default 512.
    pub batch: usize,
    /// Passes over the training rows at most (early stopping may end sooner). Default
    /// 200 (reference 2000).
    pub epochs: usize,
    /// Fraction of rows, taken from the end, held out for validation. Default 0.2.
    pub val_fraction: f64,
    /// Seed of the initial weights and of every epoch's shuffle. Default 0.
    pub seed: u64,
    /// Rows in the shuffle buffer when reading (memory ≈ this many rows plus one
    /// chunk). Default 65536.
    pub shuffle_rows: usize,
    /// Write a checkpoint every this many epochs (and after the last). Default 10.
    pub checkpoint_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            acts: None,
            hook: None,
            tensor: None,
            out: None,
            device: ComputeDevice::Cpu,
            architecture: Architecture::Binary,
            d_hidden: None,
            expansion: 4,
            estimator: Estimator::Sigmoid,
            lambda_entropy: 3e-4,
            lambda_covariance: 3e-5,
            entropy_start_epoch: 0,
            lambda_warmup_steps: 1000,
            merge_agreement: 0.999,
            prune_bits: true,
            l1_coefficient: None,
            k: None,
            l0_coefficient: None,
            jumprelu_bandwidth: None,
            jumprelu_initial_threshold: None,
            decoder_bias_init: DecoderBiasInit::Mean,
            normalize_activations: Normalization::ExpectedAverageOnlyIn,
            outlier_norm_ratio: 20.0,
            patience: 10,
            min_improvement: 0.001,
            lr: 1e-3,
            batch: 512,
            epochs: 200,
            val_fraction: 0.2,
            seed: 0,
            shuffle_rows: 65_536,
            checkpoint_every: 10,
        }
    }
}

impl TrainConfig {
    /// d' for input width `d`.
    pub fn d_hidden_for(&self, d: usize) -> usize {
        self.d_hidden.unwrap_or(self.expansion.saturating_mul(d))
    }

    /// The L1 weight (relu_l1).
    pub fn l1_coefficient(&self) -> f64 {
        self.l1_coefficient.unwrap_or(1e-3)
    }

    /// Active features per row (topk, batch_topk).
    pub fn k(&self) -> usize {
        self.k.unwrap_or(32)
    }

    /// The L0 weight (jumprelu).
    pub fn l0_coefficient(&self) -> f64 {
        self.l0_coefficient.unwrap_or(1e-3)
    }

    /// The straight-through kernel width (jumprelu).
    pub fn jumprelu_bandwidth(&self) -> f64 {
        self.jumprelu_bandwidth.unwrap_or(1e-3)
    }

    /// The initial threshold (jumprelu).
    pub fn jumprelu_initial_threshold(&self) -> f64 {
        self.jumprelu_initial_threshold.unwrap_or(1e-3)
    }

    /// Fields set for an architecture they do not apply to.
    fn check_architecture_fields(&self) -> Result<()> {
        use Architecture::*;
        let arch = self.architecture;
        let contradiction = |field: &str, applies: &str| {
            Err(TrainError::Input(format!(
                "train config: `{field}` applies to architecture {applies}, not to architecture = \"{}\"",
                arch.name()
            )))
        };
        let sae_fields: [(&str, bool, &[Architecture], &str); 5] = [
            ("l1_coefficient", self.l1_coefficient.is_some(), &[ReluL1], "relu_l1"),
            ("k", self.k.is_some(), &[TopK, BatchTopK], "topk or batch_topk"),
            ("l0_coefficient", self.l0_coefficient.is_some(), &[JumpRelu], "jumprelu"),
            ("jumprelu_bandwidth", self.jumprelu_bandwidth.is_some(), &[JumpRelu], "jumprelu"),
            (
                "jumprelu_initial_threshold",
                self.jumprelu_initial_threshold.is_some(),
                &[JumpRelu],
                "jumprelu",
            ),
        ];
        for (field, set, applies, names) in sae_fields {
            if set && !applies.contains(&arch) {
                return contradiction(field, names);
            }
        }
        if arch != Binary {
            let defaults = Self::default();
            for (field, changed) in [
                ("estimator", self.estimator != defaults.estimator),
                ("lambda_entropy", self.lambda_entropy != defaults.lambda_entropy),
                ("lambda_covariance", self.lambda_covariance != defaults.lambda_covariance),
                ("entropy_start_epoch", self.entropy_start_epoch != defaults.entropy_start_epoch),
                ("lambda_warmup_steps", self.lambda_warmup_steps != defaults.lambda_warmup_steps),
                ("merge_agreement", self.merge_agreement != defaults.merge_agreement),
                ("prune_bits", self.prune_bits != defaults.prune_bits),
            ] {
                if changed {
                    return contradiction(field, "binary");
                }
            }
        }
        Ok(())
    }

    /// Checks every field on its own and against the data size (`rows` of width `d`).
    pub fn validate(&self, rows: u64, d: usize) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(TrainError::Input(format!("train config: `{field}` {message}")))
        };
        self.check_architecture_fields()?;
        let d_hidden = self.d_hidden_for(d);
        for (field, value) in
            [("l1_coefficient", self.l1_coefficient), ("l0_coefficient", self.l0_coefficient)]
        {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return bad(field, format!("= {v}, expected a finite number ≥ 0"));
            }
        }
        for (field, value) in [
            ("jumprelu_bandwidth", self.jumprelu_bandwidth),
            ("jumprelu_initial_threshold", self.jumprelu_initial_threshold),
        ] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return bad(field, format!("= {v}, expected a finite number > 0"));
            }
        }
        if matches!(self.architecture, Architecture::TopK | Architecture::BatchTopK)
            && !(1..=d_hidden).contains(&self.k())
        {
            return bad("k", format!("= {}, expected 1 ≤ k ≤ d' = {d_hidden}", self.k()));
        }
        let features_field = if self.d_hidden.is_some() { "d_hidden" } else { "expansion" };
        if d_hidden == 0 {
            return bad(features_field, "gives 0 features, expected at least 1".into());
        }
        // Each weight matrix holds d·d' floats; beyond these a run would abort
        // allocating instead of training.
        if d_hidden > MAX_FEATURES || d_hidden.saturating_mul(d) > MAX_MATRIX_ELEMENTS {
            return bad(
                features_field,
                format!(
                    "gives d' = {d_hidden}, expected at most {MAX_FEATURES} features and d·d' at most \
                     {MAX_MATRIX_ELEMENTS} (d = {d})"
                ),
            );
        }
        for (field, value) in
            [("lambda_entropy", self.lambda_entropy), ("lambda_covariance", self.lambda_covariance)]
        {
            if !(value.is_finite() && value >= 0.0) {
                return bad(field, format!("= {value}, expected a finite number ≥ 0"));
            }
        }
        let ratio = self.outlier_norm_ratio;
        if !(ratio.is_finite() && (ratio == 0.0 || ratio > 1.0)) {
            return bad(
                "outlier_norm_ratio",
                format!("= {ratio}, expected 0 (keep every row) or a number > 1"),
            );
        }
        let agreement = self.merge_agreement;
        if !(agreement == 0.0 || (agreement > 0.5 && agreement <= 1.0)) {
            return bad(
                "merge_agreement",
                format!("= {agreement}, expected 0 (never merge) or a fraction in (0.5, 1]"),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("= {}, expected a positive number", self.lr));
        }
        if !(self.min_improvement.is_finite() && (0.0..1.0).contains(&self.min_improvement)) {
            return bad("min_improvement", format!("= {}, expected 0 ≤ x < 1", self.min_improvement));
        }
        if self.patience > 0 && self.val_fraction == 0.0 {
            return bad(
                "patience",
                format!(
                    "= {} needs validation rows, but val_fraction is 0 (set patience = 0)",
                    self.patience
                ),
            );
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("val_fraction", format!("= {}, expected 0 ≤ x < 1", self.val_fraction));
        }
        for (field, value) in [
            ("epochs", self.epochs),
            ("shuffle_rows", self.shuffle_rows),
            ("checkpoint_every", self.checkpoint_every),
        ] {
            if value == 0 {
                return bad(field, "is 0, expected at least 1".into());
            }
        }
        let train_rows = rows - self.validation_rows(rows);
        if self.batch < 2 && self.architecture == Architecture::Binary {
            return bad(
                "batch",
                format!("= {}, expected at least 2 (the covariance needs two rows)", self.batch),
            );
        }
        if self.batch as u64 > train_rows {
            return bad(
                "batch",
                format!("= {} is larger than the {train_rows} training rows of {rows} (d = {d})", self.batch),
            );
        }
        if self.architecture == Architecture::Binary
            && self.entropy_start_epoch >= self.epochs
            && self.lambda_entropy > 0.0
        {
            return bad(
                "entropy_start_epoch",
                format!(
                    "= {} is not below epochs = {}, so lambda_entropy would never apply",
                    self.entropy_start_epoch, self.epochs
                ),
            );
        }
        Ok(())
    }

    /// The fraction of λ_H and λ_C in force after `steps_done` optimiser steps: the
    /// linear warm-up, 1 once it is over.
    pub fn lambda_ramp(&self, steps_done: u64) -> f64 {
        match self.lambda_warmup_steps {
            0 => 1.0,
            w => (steps_done as f64 / w as f64).min(1.0),
        }
    }

    /// The first epoch of the objective early stopping compares, for epochs of
    /// `steps_per_epoch` optimiser steps: for a BAE with a regulariser, the first epoch
    /// that starts with E0 passed and the warm-up over (the objective changes until
    /// then); else 0.
    pub fn objective_start_epoch(&self, steps_per_epoch: u64) -> usize {
        let regularised = self.lambda_entropy > 0.0 || self.lambda_covariance > 0.0;
        if self.architecture != Architecture::Binary || !regularised {
            return 0;
        }
        let warmup_epochs = (self.lambda_warmup_steps as u64).div_ceil(steps_per_epoch.max(1)) as usize;
        let entropy_start = if self.lambda_entropy > 0.0 { self.entropy_start_epoch } else { 0 };
        entropy_start.max(warmup_epochs)
    }

    /// Rows held out for validation out of `rows`.
    pub fn validation_rows(&self, rows: u64) -> u64 {
        (rows as f64 * self.val_fraction).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_planted_bits_recipe_and_parse_from_toml() {
        let c: TrainConfig = toml::from_str("estimator = \"sign_s\"\nbatch = 64").unwrap();
        assert_eq!(c.estimator, Estimator::SignS);
        assert_eq!((c.batch, c.epochs, c.entropy_start_epoch, c.lr), (64, 200, 0, 1e-3));
        assert_eq!((c.lambda_warmup_steps, c.outlier_norm_ratio, c.merge_agreement), (1000, 20.0, 0.999));
        assert_eq!((c.lambda_entropy, c.lambda_covariance, c.patience), (3e-4, 3e-5, 10));
        assert_eq!(c.normalize_activations, Normalization::ExpectedAverageOnlyIn);
        assert_eq!(c.decoder_bias_init, DecoderBiasInit::Mean);
        assert_eq!(c.d_hidden_for(576), 2304);
        c.validate(10_000, 576).unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let err = toml::from_str::<TrainConfig>("batchsize = 3").unwrap_err().to_string();
        assert!(err.contains("unknown field `batchsize`"), "{err}");
        let err = toml::from_str::<TrainConfig>("estimator = \"tanh\"").unwrap_err().to_string();
        assert!(err.contains("identity") && err.contains("sign_s"), "{err}");
        let check = |text: &str, needle: &str| {
            let c: TrainConfig = toml::from_str(text).unwrap();
            let err = c.validate(1000, 8).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        };
        check("d_hidden = 0", "`d_hidden` gives 0 features");
        check("d_hidden = 2147483648", "`d_hidden` gives d' = 2147483648, expected at most 1048576");
        check("d_hidden = 4611686018427387904", "`d_hidden` gives d' = 4611686018427387904");
        check("expansion = 4611686018427387904", "`expansion` gives d' = ");
        check("batch = 900", "larger than the 800 training rows");
        check("lr = -1.0", "`lr`");
        check("val_fraction = 1.0", "`val_fraction`");
        check("epochs = 10\nentropy_start_epoch = 10", "lambda_entropy would never apply");
        check(
            "outlier_norm_ratio = 0.5",
            "`outlier_norm_ratio` = 0.5, expected 0 (keep every row) or a number > 1",
        );
        check("min_improvement = 1.5", "`min_improvement`");
        check(
            "merge_agreement = 0.4",
            "`merge_agreement` = 0.4, expected 0 (never merge) or a fraction in (0.5, 1]",
        );
        check("val_fraction = 0.0", "`patience` = 10 needs validation rows");
        check("lambda_covariance = nan", "`lambda_covariance`");
        check("architecture = \"topk\"\nk = 0", "`k` = 0, expected 1 ≤ k ≤ d' = 32");
        check("architecture = \"topk\"\nk = 33", "`k` = 33");
        check("architecture = \"jumprelu\"\njumprelu_bandwidth = 0.0", "`jumprelu_bandwidth` = 0");
        check("architecture = \"relu_l1\"\nl1_coefficient = -1.0", "`l1_coefficient` = -1");
    }

    #[test]
    fn fields_of_another_architecture_are_contradictions() {
        let check = |text: &str, needle: &str| {
            let c: TrainConfig = toml::from_str(text).unwrap();
            let err = c.validate(1000, 8).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        };
        check("k = 8", "`k` applies to architecture topk or batch_topk, not to architecture = \"binary\"");
        check(
            "architecture = \"topk\"\nl1_coefficient = 0.1",
            "`l1_coefficient` applies to architecture relu_l1",
        );
        check(
            "architecture = \"relu_l1\"\nestimator = \"identity\"",
            "`estimator` applies to architecture binary",
        );
        check("architecture = \"jumprelu\"\nlambda_entropy = 0.5", "`lambda_entropy` applies");
        for ok in [
            "architecture = \"topk\"\nk = 4",
            "architecture = \"jumprelu\"\nl0_coefficient = 0.01",
            "architecture = \"batch_topk\"",
        ] {
            let c: TrainConfig = toml::from_str(ok).unwrap();
            c.validate(1000, 8).unwrap();
        }
        let err = toml::from_str::<TrainConfig>("architecture = \"gated\"").unwrap_err().to_string();
        assert!(err.contains("batch_topk") && err.contains("jumprelu"), "{err}");
    }
}
