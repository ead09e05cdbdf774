//! The activation of each architecture, from pre-activations `[rows, d']` to
//! activations: in training (BatchTopK selects over the batch) and at inference
//! (BatchTopK uses its learned threshold). Rows are independent, so they run in
//! parallel; nothing here reduces across rows in floating point, so results do not
//! depend on the thread count.

use rayon::prelude::*;

use crate::config::Architecture;

use super::model::Autoencoder;

/// Rows per parallel task: large enough to amortise scheduling.
const ROWS_PER_TASK: usize = 16;

/// `act = f(pre)` elementwise, in parallel over blocks of rows.
fn map(pre: &[f32], act: &mut [f32], width: usize, f: impl Fn(usize, f32) -> f32 + Sync) {
    act.par_chunks_mut(width * ROWS_PER_TASK).zip(pre.par_chunks(width * ROWS_PER_TASK)).for_each(
        |(a, p)| {
            for (i, (a, &p)) in a.iter_mut().zip(p).enumerate() {
                *a = f(i % width, p);
            }
        },
    );
}

/// Keeps relu(pre) at the `k` largest entries of each row (ties broken by position),
/// zero elsewhere.
fn top_k_rows(pre: &[f32], act: &mut [f32], width: usize, k: usize) {
    act.par_chunks_mut(width).zip(pre.par_chunks(width)).for_each_init(Vec::new, |scratch, (a, p)| {
        scratch.clear();
        scratch.extend_from_slice(p);
        let kth = *scratch.select_nth_unstable_by(k - 1, |x, y| y.total_cmp(x)).1;
        keep_largest(p, a, kth, k);
    });
}

/// Writes relu(p) where p > `kth`, and where p == `kth` until `k` entries are kept;
/// zero elsewhere. Returns how many entries were kept.
fn keep_largest(p: &[f32], a: &mut [f32], kth: f32, k: usize) -> usize {
    let above = p.iter().filter(|&&v| v > kth).count();
    let mut ties = k.saturating_sub(above);
    let mut kept = 0;
    for (a, &v) in a.iter_mut().zip(p) {
        let keep = v > kth
            || (v == kth && ties > 0 && {
                ties -= 1;
                true
            });
        *a = if keep && v > 0.0 { v } else { 0.0 };
        kept += usize::from(keep);
    }
    kept
}

/// Training-mode activations. Returns, for BatchTopK, the smallest positive activation
/// the batch kept (what its inference threshold tracks).
pub fn train(model: &Autoencoder, pre: &[f32], act: &mut [f32]) -> Option<f32> {
    let width = model.d_hidden;
    if model.architecture != Architecture::BatchTopK {
        infer(model, pre, act);
        return None;
    }
    let rows = pre.len() / width;
    let budget = (model.k * rows).min(pre.len());
    let mut scratch = pre.to_vec();
    let kth = *scratch.select_nth_unstable_by(budget - 1, |x, y| y.total_cmp(x)).1;
    keep_largest(pre, act, kth, budget);
    act.iter().copied().filter(|&v| v > 0.0).min_by(f32::total_cmp)
}

/// Inference-mode activations.
pub fn infer(model: &Autoencoder, pre: &[f32], act: &mut [f32]) {
    let width = model.d_hidden;
    match model.architecture {
        Architecture::Binary => map(pre, act, width, |_, p| if p > 0.0 { 1.0 } else { 0.0 }),
        Architecture::ReluL1 => map(pre, act, width, |_, p| p.max(0.0)),
        Architecture::TopK => top_k_rows(pre, act, width, model.k),
        Architecture::BatchTopK => {
            let theta = model.batch_threshold.max(0.0);
            map(pre, act, width, |_, p| if p > theta { p } else { 0.0 })
        }
        Architecture::JumpRelu => {
            let theta: Vec<f32> = model.log_threshold.iter().map(|l| l.exp()).collect();
            map(pre, act, width, |j, p| if p > theta[j] { p } else { 0.0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;

    fn model(architecture: Architecture, k: usize, width: usize) -> Autoencoder {
        let config = TrainConfig { architecture, d_hidden: Some(width), ..TrainConfig::default() };
        let mut m = Autoencoder::new(&config, 2);
        m.k = k;
        m
    }

    #[test]
    fn each_activation_on_a_small_batch() {
        let pre = [0.5f32, -1.0, 2.0, 0.1, /* row 2 */ -0.3, 3.0, 3.0, 1.0];
        let mut act = [9f32; 8];
        infer(&model(Architecture::Binary, 1, 4), &pre, &mut act);
        assert_eq!(act, [1., 0., 1., 1., 0., 1., 1., 1.]);
        infer(&model(Architecture::ReluL1, 1, 4), &pre, &mut act);
        assert_eq!(act, [0.5, 0., 2., 0.1, 0., 3., 3., 1.]);
        // Top 2 per row; in row 2 the tie at 3.0 fills both places.
        infer(&model(Architecture::TopK, 2, 4), &pre, &mut act);
        assert_eq!(act, [0.5, 0., 2., 0., 0., 3., 3., 0.]);
        // Top-k never turns a negative pre-activation on.
        infer(&model(Architecture::TopK, 4, 4), &pre, &mut act);
        assert_eq!(act, [0.5, 0., 2., 0.1, 0., 3., 3., 1.]);
        // Batch top 2·2 = 4 of all 8: 3, 3, 2, 1; row 1 keeps one, row 2 three.
        let m = model(Architecture::BatchTopK, 2, 4);
        assert_eq!(train(&m, &pre, &mut act), Some(1.0));
        assert_eq!(act, [0., 0., 2., 0., 0., 3., 3., 1.]);
        let mut m = model(Architecture::JumpRelu, 1, 4);
        m.log_threshold = [0.4f32, 0.4, 2.5, 0.05].iter().map(|t| t.ln()).collect();
        infer(&m, &pre, &mut act);
        assert_eq!(act, [0.5, 0., 0., 0.1, 0., 3., 3., 1.]);
        let mut m = model(Architecture::BatchTopK, 2, 4);
        m.batch_threshold = 0.4;
        infer(&m, &pre, &mut act);
        assert_eq!(act, [0.5, 0., 2., 0., 0., 3., 3., 1.]);
    }
}
