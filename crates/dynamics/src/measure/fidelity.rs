//! Fidelity of an autoencoder inside the model: its reconstruction spliced into the
//! residual stream at its hook point, compared with the clean run and with zero
//! ablation of that hook, by next-token distributions (DESIGN.md §6).
//!
//! Per predicted token: KL(clean ‖ spliced) and the Jensen–Shannon divergence in nats;
//! cross-entropy of the actual next token clean, spliced and zero-ablated; and the
//! fraction of cross-entropy recovered, (CE_zero − CE_spliced) / (CE_zero − CE_clean).

use bae_lm::eval::log_softmax;
use bae_lm::{Batch, ForwardRequest, Intervention, InterventionKind, Model};
use candle_core::{DType, Tensor};

use crate::error::{DynamicsError, Result};
use crate::measure::HookAutoencoder;

/// Fidelity over a set of prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct Fidelity {
    /// Next-token predictions compared (positions with a following token).
    pub tokens: u64,
    /// Mean KL(clean ‖ spliced), nats.
    pub kl: f64,
    /// Mean Jensen–Shannon divergence between clean and spliced, nats.
    pub js: f64,
    /// Mean cross-entropy of the next token, clean run.
    pub ce_clean: f64,
    /// With the reconstruction spliced in.
    pub ce_spliced: f64,
    /// With the hook point's residual set to zero.
    pub ce_zero: f64,
    /// (ce_zero − ce_spliced) / (ce_zero − ce_clean): 1 is perfect, 0 no better than
    /// zero ablation.
    pub ce_recovered: f64,
}

/// Sums over positions: KL, JS, and the three cross-entropies.
fn compare(clean: &Tensor, spliced: &Tensor, zero: &Tensor, targets: &Tensor) -> Result<[f64; 5]> {
    let (lp, lq, lz) = (log_softmax(clean)?, log_softmax(spliced)?, log_softmax(zero)?);
    let (p, q) = (lp.exp()?, lq.exp()?);
    let kl = (&p * (&lp - &lq)?)?.sum_all()?;
    let m = ((&p + &q)? * 0.5)?;
    let lm = (m.clamp(1e-30, 1.0)?).log()?;
    let js = ((((&p * (&lp - &lm)?)?.sum_all()? + (&q * (&lq - &lm)?)?.sum_all()?)?) * 0.5)?;
    let ce = |l: &Tensor| -> Result<f64> {
        Ok(-l.gather(&targets.unsqueeze(1)?, 1)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
    };
    let scalar = |t: Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?) };
    Ok([scalar(kl)?, scalar(js)?, ce(&lp)?, ce(&lq)?, ce(&lz)?])
}

/// Runs every prompt (token ids) clean, spliced and zero-ablated at `bae`'s hook.
pub fn fidelity(model: &Model, bae: &HookAutoencoder, prompts: &[Vec<u32>]) -> Result<Fidelity> {
    let device = model.decoder.device().clone();
    let dtype = model.decoder.dtype();
    let mut sums = [0f64; 5];
    let mut tokens = 0u64;
    for ids in prompts.iter().filter(|ids| ids.len() >= 2) {
        let batch = Batch::new(std::slice::from_ref(ids), 0, bae_lm::Padding::Right, &device)?;
        let clean_req = ForwardRequest { capture: vec![bae.hook], logits: true, ..ForwardRequest::default() };
        let clean = model.decoder.forward(&batch, &clean_req)?;
        let acts = clean.activations[&bae.hook].get(0)?.to_dtype(DType::F32)?;
        let (seq, d) = acts.dims2()?;
        let rows = acts.flatten_all()?.to_vec1::<f32>()?;
        let rec =
            Tensor::from_vec(bae.autoencoder.reconstruct(&rows), (1, seq, d), &device)?.to_dtype(dtype)?;
        let with = |value: Tensor| -> Result<Tensor> {
            let req = ForwardRequest {
                interventions: vec![Intervention { point: bae.hook, kind: InterventionKind::Replace, value }],
                logits: true,
                ..ForwardRequest::default()
            };
            let out = model.decoder.forward(&batch, &req)?;
            Ok(out.logits.expect("logits requested").get(0)?.narrow(0, 0, seq - 1)?)
        };
        let spliced = with(rec)?;
        let zero = with(Tensor::zeros((1, seq, d), dtype, &device)?)?;
        let clean_logits = clean.logits.expect("logits requested").get(0)?.narrow(0, 0, seq - 1)?;
        let targets = Tensor::new(&ids[1..], &device)?;
        let part = compare(&clean_logits, &spliced, &zero, &targets)?;
        sums.iter_mut().zip(part).for_each(|(s, v)| *s += v);
        tokens += (seq - 1) as u64;
    }
    if tokens == 0 {
        return Err(DynamicsError::Input("fidelity needs prompts of at least two tokens".into()));
    }
    let n = tokens as f64;
    let [kl, js, ce_clean, ce_spliced, ce_zero] = sums.map(|s| s / n);
    Ok(Fidelity {
        tokens,
        kl,
        js,
        ce_clean,
        ce_spliced,
        ce_zero,
        ce_recovered: (ce_zero - ce_spliced) / (ce_zero - ce_clean),
    })
}

#[cfg(test)]
mod tests {
    use bae_lm::testing::{random_weights, tiny_config, write_hf_dir};
    use bae_lm::{Family, HookPoint, LoadOptions};
    use bae_train::bae::Autoencoder;
    use bae_train::config::{Architecture, TrainConfig};

    use super::*;

    /// A ReLU SAE with W_enc = [I, −I], W_dec = [I; −I] and zero biases reconstructs
    /// exactly: relu(x) − relu(−x) = x. With W_dec = 0 it reconstructs zero.
    fn sae(d: usize, exact: bool) -> Autoencoder {
        let config = TrainConfig {
            architecture: Architecture::ReluL1,
            d_hidden: Some(2 * d),
            ..TrainConfig::default()
        };
        let mut m = Autoencoder::new(&config, d);
        let h = 2 * d;
        m.w_enc = vec![0.0; d * h];
        m.w_dec = vec![0.0; h * d];
        for i in 0..d {
            m.w_enc[i * h + i] = 1.0;
            m.w_enc[i * h + d + i] = -1.0;
            if exact {
                m.w_dec[i * d + i] = 1.0;
                m.w_dec[(d + i) * d + i] = -1.0;
            }
        }
        m.b_enc = vec![0.0; h];
        m.b_dec = vec![0.0; d];
        m
    }

    #[test]
    fn an_exact_reconstruction_recovers_everything_and_zero_nothing() {
        let cfg = tiny_config(Family::Llama);
        let dir = tempfile::tempdir().unwrap();
        write_hf_dir(dir.path(), &cfg, &random_weights(&cfg, 3), 1).unwrap();
        let model = Model::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
        let prompts = vec![vec![5u32, 17, 42, 99, 3, 8], vec![1, 2, 3]];
        let hook = HookPoint::ResidPost(0);
        let bae = |exact| HookAutoencoder {
            hook,
            dir: dir.path().into(),
            autoencoder: sae(cfg.hidden_size, exact),
            trained_on: None,
            quality: None,
        };
        let f = fidelity(&model, &bae(true), &prompts).unwrap();
        assert_eq!(f.tokens, 5 + 2);
        assert!(f.kl.abs() < 1e-5 && f.js.abs() < 1e-5, "{f:?}");
        assert!((f.ce_spliced - f.ce_clean).abs() < 1e-5 && (f.ce_recovered - 1.0).abs() < 1e-3, "{f:?}");
        // (A random model is near uniform either way, so zero ablation need not hurt it;
        // it must only differ.)
        assert!((f.ce_zero - f.ce_clean).abs() > 1e-3, "{f:?}");
        let z = fidelity(&model, &bae(false), &prompts).unwrap();
        assert!((z.ce_spliced - z.ce_zero).abs() < 1e-5 && z.ce_recovered.abs() < 1e-3, "{z:?}");
        assert!(z.kl > 1e-3 && z.js > 1e-4 && z.js <= std::f64::consts::LN_2, "{z:?}");
    }
}
