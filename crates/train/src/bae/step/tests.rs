//! The hand-written step against candle's autograd on the loss expressions, for every
//! architecture and estimator, on small odd sizes.

use candle_core::{Device, Tensor, Var};

use super::*;
use crate::bae::{binarize, loss};
use bae_lm::rng::SplitMix64;

const D: usize = 5;
const H: usize = 7;
// A prime batch: n_jk·B = n_j·n_k has no solution with 0 < n_j, n_k < B, so no
// covariance is exactly 0 (where |·|'s subgradient conventions differ).
const B: usize = 13;

fn model(architecture: Architecture, seed: u64) -> (Autoencoder, TrainConfig) {
    let config = TrainConfig {
        architecture,
        d_hidden: Some(H),
        seed,
        k: matches!(architecture, Architecture::TopK | Architecture::BatchTopK).then_some(3),
        ..TrainConfig::default()
    };
    let mut m = Autoencoder::new(&config, D);
    if architecture == Architecture::JumpRelu {
        // Thresholds around where the pre-activations lie, so some rows fall inside
        // the kernel's window.
        m.log_threshold = (0..H).map(|j| (0.05 + 0.04 * j as f32).ln()).collect();
    }
    (m, config)
}

fn rows(seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..B * D).map(|_| rng.unit_f32() * 2.0 - 1.0).collect()
}

fn tensor(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape, &Device::Cpu).unwrap()
}

fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 2e-4 * scale,
            "{name}[{i}]: hand-written {g} vs autograd {w} (scale {scale})"
        );
    }
}

/// Gradients of the architecture's loss through candle's autograd. Selections (top-k,
/// the JumpReLU gate) enter as constant masks taken from the hand-written forward pass.
fn autograd(m: &Autoencoder, x: &[f32], w: &LossWeights, act_mask: &[f32]) -> Vec<Vec<f32>> {
    let vars: Vec<Var> =
        [(&m.w_enc, vec![D, H]), (&m.b_enc, vec![H]), (&m.w_dec, vec![H, D]), (&m.b_dec, vec![D])]
            .iter()
            .map(|(p, shape)| Var::from_tensor(&tensor(p, shape)).unwrap())
            .collect();
    let xt = tensor(x, &[B, D]);
    let pre = xt.matmul(vars[0].as_tensor()).unwrap().broadcast_add(vars[1].as_tensor()).unwrap();
    let mask = tensor(act_mask, &[B, H]);
    let act = match m.architecture {
        Architecture::Binary => binarize(&pre, w.estimator).unwrap(),
        Architecture::ReluL1 => pre.relu().unwrap(),
        Architecture::TopK | Architecture::BatchTopK => (pre.relu().unwrap() * &mask).unwrap(),
        Architecture::JumpRelu => (&pre * &mask).unwrap(),
    };
    let rec = act.matmul(vars[2].as_tensor()).unwrap().broadcast_add(vars[3].as_tensor()).unwrap();
    let mut total = loss::mse(&xt, &rec).unwrap();
    match m.architecture {
        Architecture::Binary => {
            let h = (loss::entropy(&act).unwrap() * w.lambda_entropy).unwrap();
            let c = (loss::covariance(&act).unwrap() * w.lambda_covariance).unwrap();
            total = ((total + h).unwrap() + c).unwrap();
        }
        Architecture::ReluL1 => {
            let l1 = (act.sum_all().unwrap() * (w.l1 / B as f64)).unwrap();
            total = (total + l1).unwrap();
        }
        _ => {}
    }
    let grads = total.backward().unwrap();
    vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap()).collect()
}

fn weights(estimator: Estimator) -> LossWeights {
    LossWeights { lambda_entropy: 0.05, lambda_covariance: 0.05, estimator, l1: 0.3, l0: 0.2, bandwidth: 0.2 }
}

#[test]
fn bae_gradients_match_autograd_for_every_estimator() {
    for estimator in [Estimator::Identity, Estimator::SignS, Estimator::Sigmoid] {
        for (lambda_entropy, lambda_covariance) in [(0.0, 0.0), (0.05, 0.0), (0.0, 0.05), (0.05, 0.05)] {
            let (m, _) = model(Architecture::Binary, 3);
            let x = rows(4);
            let w = LossWeights { lambda_entropy, lambda_covariance, ..weights(estimator) };
            let mut grads = zero_gradients(&m);
            let mut ws = Workspace::default();
            let stats = gradients(&m, &x, &w, &mut ws, &mut grads);
            let counts = stats.codes.counts();
            assert!(counts.iter().all(|&c| c > 0 && c < B as u64), "a constant column: {counts:?}");
            let want = autograd(&m, &x, &w, ws.activations());
            let name = format!("{estimator:?} λ_H {lambda_entropy} λ_C {lambda_covariance}");
            for (i, param) in ["W_enc", "b_enc", "W_dec", "b_dec"].iter().enumerate() {
                assert_close(&format!("{name} {param}"), &grads[i], &want[i]);
            }
            assert!(grads[4].is_empty());
        }
    }
}

#[test]
fn sae_gradients_match_autograd() {
    for architecture in
        [Architecture::ReluL1, Architecture::TopK, Architecture::BatchTopK, Architecture::JumpRelu]
    {
        let (m, _) = model(architecture, 5);
        let x = rows(6);
        let w = weights(Estimator::SignS);
        let mut grads = zero_gradients(&m);
        let mut ws = Workspace::default();
        let stats = gradients(&m, &x, &w, &mut ws, &mut grads);
        let active = ws.activations().iter().filter(|&&a| a != 0.0).count();
        assert!(active > 0 && active < B * H, "{architecture:?}: {active} active");
        let pre = m.preactivations(&x);
        if architecture == Architecture::TopK {
            // The 3 largest of each row, less those that are not positive.
            for (b, row) in ws.activations().chunks(H).enumerate() {
                let mut sorted = pre[b * H..(b + 1) * H].to_vec();
                sorted.sort_by(|x, y| y.total_cmp(x));
                let want = sorted[..3].iter().filter(|&&v| v > 0.0).count();
                assert_eq!(row.iter().filter(|&&a| a != 0.0).count(), want, "row {b}");
            }
        }
        let mask: Vec<f32> = ws.activations().iter().map(|&a| f32::from(a != 0.0)).collect();
        let want = autograd(&m, &x, &w, &mask);
        for (i, param) in ["W_enc", "b_enc", "W_dec", "b_dec"].iter().enumerate() {
            assert_close(&format!("{architecture:?} {param}"), &grads[i], &want[i]);
        }
        if architecture == Architecture::JumpRelu {
            assert_close("ln θ", &grads[4], &slow_threshold_gradient(&m, &x, &w));
            assert!(grads[4].iter().any(|&g| g != 0.0), "no row fell in the kernel window");
            assert!((stats.sparsity - active as f64 / B as f64).abs() < 1e-12);
        }
    }
}

/// The JumpReLU threshold gradient written out row by row, feature by feature.
fn slow_threshold_gradient(m: &Autoencoder, x: &[f32], w: &LossWeights) -> Vec<f32> {
    let pre: Vec<f64> = m.preactivations(x).iter().map(|&v| v as f64).collect();
    let theta: Vec<f64> = m.log_threshold.iter().map(|&l| (l as f64).exp()).collect();
    let act: Vec<f64> = (0..B * H).map(|i| if pre[i] > theta[i % H] { pre[i] } else { 0.0 }).collect();
    // d MSE / d a = (2 / (B·d)) · (rec − x) · W_decᵀ.
    let mut g_act = vec![0f64; B * H];
    for b in 0..B {
        for c in 0..D {
            let rec: f64 =
                m.b_dec[c] as f64 + (0..H).map(|j| act[b * H + j] * m.w_dec[j * D + c] as f64).sum::<f64>();
            let r = 2.0 / (B * D) as f64 * (rec - x[b * D + c] as f64);
            for j in 0..H {
                g_act[b * H + j] += r * m.w_dec[j * D + c] as f64;
            }
        }
    }
    (0..H)
        .map(|j| {
            let mut d_theta = 0.0;
            for b in 0..B {
                let u = (pre[b * H + j] - theta[j]) / w.bandwidth;
                if u.abs() < 0.5 {
                    d_theta -= theta[j] / w.bandwidth * g_act[b * H + j] + w.l0 / B as f64 / w.bandwidth;
                }
            }
            (theta[j] * d_theta) as f32
        })
        .collect()
}

#[test]
fn evaluation_uses_the_batch_topk_threshold_and_training_the_batch() {
    let (mut m, _) = model(Architecture::BatchTopK, 5);
    let x = rows(6);
    let mut ws = Workspace::default();
    let mut grads = zero_gradients(&m);
    let stats = gradients(&m, &x, &weights(Estimator::SignS), &mut ws, &mut grads);
    // The batch's 3·B largest pre-activations, less those that are not positive.
    let mut sorted = m.preactivations(&x);
    sorted.sort_by(|x, y| y.total_cmp(x));
    let want = sorted[..3 * B].iter().filter(|&&v| v > 0.0).count() as u64;
    assert!(want > 2 * B as u64, "too few positive pre-activations for a test: {want}");
    assert_eq!(stats.codes.counts().iter().sum::<u64>(), want);
    let smallest = stats.smallest_kept.unwrap();
    m.batch_threshold = smallest - 1e-6;
    let eval = evaluate(&m, &x, &mut ws);
    assert_eq!(
        eval.codes, stats.codes,
        "the threshold just below the smallest kept value keeps the same set"
    );
    m.batch_threshold = 1e9;
    assert_eq!(evaluate(&m, &x, &mut ws).codes.counts().iter().sum::<u64>(), 0);
}
