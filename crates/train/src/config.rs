//! The `[train]` table of a run config: every choice of a BAE training run, with the
//! reference recipe as defaults, validated before any work starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::bae::Estimator;
use crate::error::{Result, TrainError};

/// A training run. Field names are the TOML keys; defaults are the reference recipe
/// (λ_H = λ_C = 1e-7, E0 = 500, Adam lr 5e-4, batch 512, 2000 epochs, last 20% held out).
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
    /// Number of features d'; when absent, `expansion` × d.
    pub d_hidden: Option<usize>,
    /// d' = expansion × d when `d_hidden` is absent. Default 4.
    pub expansion: usize,
    /// Gradient estimator of the binarization: "identity", "sign_s" (reference) or "sigmoid".
    pub estimator: Estimator,
    /// λ_H, weight of the entropy term (bits). Default 1e-7.
    pub lambda_entropy: f64,
    /// λ_C, weight of the covariance term. Default 1e-7.
    pub lambda_covariance: f64,
    /// E0: first epoch (0-based) in which the entropy term counts. Default 500.
    pub entropy_start_epoch: usize,
    /// Adam learning rate. Default 5e-4.
    pub lr: f64,
    /// Rows per minibatch; incomplete last batches of an epoch are dropped. Default 512.
    pub batch: usize,
    /// Passes over the training rows. Default 2000.
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
            d_hidden: None,
            expansion: 4,
            estimator: Estimator::SignS,
            lambda_entropy: 1e-7,
            lambda_covariance: 1e-7,
            entropy_start_epoch: 500,
            lr: 5e-4,
            batch: 512,
            epochs: 2000,
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
        self.d_hidden.unwrap_or(self.expansion * d)
    }

    /// Checks every field on its own and against the data size (`rows` of width `d`).
    pub fn validate(&self, rows: u64, d: usize) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(TrainError::Input(format!("train config: `{field}` {message}")))
        };
        if self.d_hidden == Some(0) || (self.d_hidden.is_none() && self.expansion == 0) {
            return bad(
                if self.d_hidden.is_some() { "d_hidden" } else { "expansion" },
                "gives 0 features, expected at least 1".into(),
            );
        }
        for (field, value) in
            [("lambda_entropy", self.lambda_entropy), ("lambda_covariance", self.lambda_covariance)]
        {
            if !(value.is_finite() && value >= 0.0) {
                return bad(field, format!("= {value}, expected a finite number ≥ 0"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("= {}, expected a positive number", self.lr));
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
        if self.batch < 2 {
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
        if self.entropy_start_epoch >= self.epochs && self.lambda_entropy > 0.0 {
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

    /// Rows held out for validation out of `rows`.
    pub fn validation_rows(&self, rows: u64) -> u64 {
        (rows as f64 * self.val_fraction).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_recipe_and_parse_from_toml() {
        let c: TrainConfig = toml::from_str("estimator = \"sigmoid\"\nbatch = 64").unwrap();
        assert_eq!(c.estimator, Estimator::Sigmoid);
        assert_eq!((c.batch, c.epochs, c.entropy_start_epoch, c.lr), (64, 2000, 500, 5e-4));
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
        check("batch = 900", "larger than the 800 training rows");
        check("lr = -1.0", "`lr`");
        check("val_fraction = 1.0", "`val_fraction`");
        check("epochs = 100", "lambda_entropy would never apply");
        check("lambda_covariance = nan", "`lambda_covariance`");
    }
}
