//! Input normalisation: every autoencoder trains on its hook's activations times one
//! constant, chosen so that the training rows' mean squared norm is d (SAELens's
//! `expected_average_only_in`). Residual norms differ by orders of magnitude between
//! hooks and models (SmolLM2's middle blocks ≈ 200, Gemma's ≈ 1e4); after this the MSE
//! of a mean predictor is about 1 per element everywhere, so λ_H and λ_C weigh the same
//! against it at every hook of every model.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::store::RowSource;

/// How activations are scaled before an autoencoder sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Multiply by sqrt(d / mean‖x‖²) of the training rows (SAELens's name).
    ExpectedAverageOnlyIn,
    /// Use the activations as they are (the reference code).
    None,
}

/// The constant `s` with mean‖s·x‖² = d over `source`'s rows (1 under
/// [`Normalization::None`]). All-zero rows cannot be normalised and are an error.
pub fn activation_scale(source: &dyn RowSource, normalization: Normalization) -> Result<f32> {
    if normalization == Normalization::None {
        return Ok(1.0);
    }
    let d = source.dim();
    let mut sum_sq = 0f64;
    for chunk in 0..source.chunks() {
        sum_sq += source.read_chunk(chunk)?.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>();
    }
    let mean_sq = sum_sq / source.rows().max(1) as f64;
    let scale = (d as f64 / mean_sq).sqrt();
    if !(scale.is_finite() && scale > 0.0) || scale as f32 == 0.0 || !(scale as f32).is_finite() {
        return Err(TrainError::Input(format!(
            "cannot normalise the training rows: their mean squared norm is {mean_sq:e} \
             (set normalize_activations = \"none\" to train on them as they are)"
        )));
    }
    Ok(scale as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InMemoryRows;

    #[test]
    fn the_scale_makes_the_mean_squared_norm_d() {
        // Rows (3, 4) and (0, 10): squared norms 25 and 100, mean 62.5, d = 2.
        let rows = InMemoryRows::new(vec![3.0, 4.0, 0.0, 10.0], 2, 1).unwrap();
        let s = activation_scale(&rows, Normalization::ExpectedAverageOnlyIn).unwrap();
        assert!((s as f64 - (2.0f64 / 62.5).sqrt()).abs() < 1e-7, "{s}");
        assert_eq!(activation_scale(&rows, Normalization::None).unwrap(), 1.0);
        let zeros = InMemoryRows::new(vec![0.0; 4], 2, 2).unwrap();
        let err = activation_scale(&zeros, Normalization::ExpectedAverageOnlyIn).unwrap_err().to_string();
        assert!(err.contains("normalize_activations"), "{err}");
    }
}
