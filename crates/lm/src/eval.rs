//! Simple evaluations on top of the decoder: mean next-token negative log-likelihood
//! and greedy continuation.

use candle_core::{DType, Tensor, D};

use crate::decoder::Decoder;
use crate::error::{LmError, Result};

/// Log-probabilities over the last dimension, `(x - max) - log Σ exp(x - max)`: the
/// one log-softmax every measurement (NLL, ICL label scores, fidelity) uses. Shifting
/// first keeps large logits exact (1000 - 1000.69 would lose f32 digits).
pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let shifted = logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?)?;
    let log_z = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&log_z)?)
}

/// Mean negative log-likelihood (nats/token) of `tokens[1..]` given their prefixes.
pub fn mean_nll(decoder: &Decoder, tokens: &[u32]) -> Result<f64> {
    if tokens.len() < 2 {
        return Err(LmError::Input("NLL needs at least two tokens".into()));
    }
    let logits = decoder.logits(tokens)?;
    let log_probs = log_softmax(&logits.to_dtype(DType::F32)?)?;
    let rows: Vec<Vec<f32>> = log_probs.to_vec2()?;
    let total: f64 = tokens[1..].iter().enumerate().map(|(t, &next)| -(rows[t][next as usize] as f64)).sum();
    Ok(total / (tokens.len() - 1) as f64)
}

/// Appends up to `max_new` greedily chosen tokens, stopping at any of `stop`.
/// Each step reruns the whole prefix (unembedding only its last position): simple and
/// exact, fine for short continuations.
/// The prompt plus `max_new` must fit the model's context.
pub fn greedy(decoder: &Decoder, prompt: &[u32], max_new: usize, stop: &[u32]) -> Result<Vec<u32>> {
    let context = decoder.config().max_position_embeddings;
    if prompt.len().saturating_add(max_new) > context {
        return Err(LmError::Input(format!(
            "{} prompt tokens plus {max_new} new ones exceed the model's context of {context} tokens; \
             ask for at most {} new tokens",
            prompt.len(),
            context.saturating_sub(prompt.len())
        )));
    }
    let mut tokens = prompt.to_vec();
    let mut new = Vec::new();
    for _ in 0..max_new {
        let next = decoder.last_logits(&tokens)?.argmax(D::Minus1)?.to_scalar::<u32>()?;
        if stop.contains(&next) {
            break;
        }
        tokens.push(next);
        new.push(next);
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{random_weights, tiny_config};
    use crate::Family;

    #[test]
    fn log_softmax_equals_the_closed_form_and_survives_large_logits() {
        let rows = [[1.0f32, 2.0, 3.0], [1000.0, 1000.0, 990.0]];
        let logits = Tensor::new(&rows, &candle_core::Device::Cpu).unwrap();
        let got: Vec<Vec<f32>> = log_softmax(&logits).unwrap().to_vec2().unwrap();
        let z = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        for (g, x) in got[0].iter().zip([1.0, 2.0, 3.0]) {
            assert!((*g as f64 - (x - z)).abs() < 1e-6, "{got:?}");
        }
        // Shifted by the row maximum, 1000 does not overflow exp.
        let z = (2.0 + (-10f64).exp()).ln();
        assert!((got[1][0] as f64 + z).abs() < 1e-6, "{got:?}");
        assert!((got[1][2] as f64 - (-10.0 - z)).abs() < 1e-5, "{got:?}");
    }

    #[test]
    fn a_continuation_beyond_the_context_is_refused_before_any_forward() {
        let cfg = tiny_config(Family::Llama);
        let context = cfg.max_position_embeddings;
        let weights = crate::weights::WeightStore::from_tensors(
            random_weights(&cfg, 3),
            "test".into(),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        );
        let decoder =
            Decoder::load(&cfg, &weights, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let err = greedy(&decoder, &[1, 2, 3], context, &[]).unwrap_err().to_string();
        assert!(
            err.contains("exceed the model's context") && err.contains(&format!("at most {}", context - 3)),
            "{err}"
        );
        assert_eq!(greedy(&decoder, &[1, 2, 3], 2, &[]).unwrap().len(), 2);
    }
}
