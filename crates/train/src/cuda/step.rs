//! The training step on the GPU: the same forward pass, loss terms, gradients and Adam
//! update as [`crate::bae::step::gradients`] and [`crate::optim::Adam`], with cuBLAS
//! GEMMs and the kernels of `kernels/`. Parameters and Adam's moments live on the
//! device; [`GpuTrainer::download`] brings them back for validation and checkpoints.
//! TopK and BatchTopK select on the host (their pre-activations make a round trip).

use bae_lm::matmul::Sgemm;
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::device::{cuda, grid, Gpu};
use crate::bae::activation;
use crate::bae::model::Autoencoder;
use crate::bae::step::{loss_entropy, BatchStats, LossWeights};
use crate::bae::Estimator;
use crate::bits::PackedCodes;
use crate::config::Architecture;
use crate::error::Result;
use crate::optim::Adam;

/// Device buffers for batches of one size.
struct Buffers {
    rows: usize,
    x: CudaSlice<f32>,
    pre: CudaSlice<f32>,
    act: CudaSlice<f32>,
    rec: CudaSlice<f32>,
    g_act: CudaSlice<f32>,
    scratch: CudaSlice<f32>,
    ones: CudaSlice<f32>,
    words: CudaSlice<u64>,
    counts: CudaSlice<u32>,
}

/// A model's training state on the GPU.
pub struct GpuTrainer {
    gpu: Gpu,
    /// W_enc, b_enc, W_dec, b_dec, ln θ (at least one element each: CUDA allocations
    /// cannot be empty; `lengths` holds the real sizes).
    params: Vec<CudaSlice<f32>>,
    m: Vec<CudaSlice<f32>>,
    v: Vec<CudaSlice<f32>>,
    grads: Vec<CudaSlice<f32>>,
    lengths: [usize; 5],
    p: CudaSlice<f32>,
    col_add: CudaSlice<f32>,
    signs: CudaSlice<f32>,
    sse: CudaSlice<f64>,
    total: CudaSlice<f64>,
    abs_sum: CudaSlice<u64>,
    buffers: Option<Buffers>,
}

impl GpuTrainer {
    /// Opens device `ordinal` and uploads `model` and `adam`'s state.
    pub fn new(ordinal: usize, model: &Autoencoder, adam: &Adam) -> Result<Self> {
        let gpu = Gpu::open(ordinal)?;
        let s = gpu.stream.clone();
        let lengths = model.params().map(|p| p.len());
        let h = model.d_hidden;
        let zeros = |n: usize| s.alloc_zeros::<f32>(n.max(1)).map_err(cuda("allocating GPU memory"));
        let mut trainer = Self {
            params: lengths.iter().map(|&n| zeros(n)).collect::<Result<_>>()?,
            m: lengths.iter().map(|&n| zeros(n)).collect::<Result<_>>()?,
            v: lengths.iter().map(|&n| zeros(n)).collect::<Result<_>>()?,
            grads: lengths.iter().map(|&n| zeros(n)).collect::<Result<_>>()?,
            lengths,
            p: zeros(h)?,
            col_add: zeros(h)?,
            signs: zeros(h * h)?,
            sse: s.alloc_zeros::<f64>(1).map_err(cuda("allocating GPU memory"))?,
            total: s.alloc_zeros::<f64>(1).map_err(cuda("allocating GPU memory"))?,
            abs_sum: s.alloc_zeros::<u64>(1).map_err(cuda("allocating GPU memory"))?,
            buffers: None,
            gpu,
        };
        trainer.upload(model, adam)?;
        Ok(trainer)
    }

    /// The device's name and compute capability, for logs.
    pub fn describe(&self) -> String {
        let (major, minor) = self.gpu.compute_capability;
        format!("{} (sm_{major}{minor})", self.gpu.name)
    }

    /// Copies parameters and Adam's moments to the device (after a checkpoint load).
    pub fn upload(&mut self, model: &Autoencoder, adam: &Adam) -> Result<()> {
        let s = &self.gpu.stream;
        for (i, values) in model.params().iter().enumerate() {
            if values.is_empty() {
                continue;
            }
            s.memcpy_htod(*values, &mut self.params[i]).map_err(cuda("copying parameters to the GPU"))?;
            s.memcpy_htod(&adam.m[i], &mut self.m[i]).map_err(cuda("copying Adam state to the GPU"))?;
            s.memcpy_htod(&adam.v[i], &mut self.v[i]).map_err(cuda("copying Adam state to the GPU"))?;
        }
        Ok(())
    }

    /// Copies parameters and Adam's moments back to the host.
    pub fn download(&self, model: &mut Autoencoder, adam: &mut Adam) -> Result<()> {
        let s = &self.gpu.stream;
        for (i, values) in model.params_mut().into_iter().enumerate() {
            let n = self.lengths[i];
            if n == 0 {
                continue;
            }
            let take = |buf: &CudaSlice<f32>| -> Result<Vec<f32>> {
                let mut v = s.clone_dtoh(buf).map_err(cuda("copying from the GPU"))?;
                v.truncate(n);
                Ok(v)
            };
            *values = take(&self.params[i])?;
            adam.m[i] = take(&self.m[i])?;
            adam.v[i] = take(&self.v[i])?;
        }
        Ok(())
    }

    fn buffers(&mut self, rows: usize, d: usize, h: usize) -> Result<()> {
        if self.buffers.as_ref().is_some_and(|b| b.rows == rows) {
            return Ok(());
        }
        let s = &self.gpu.stream;
        let f = |n: usize| s.alloc_zeros::<f32>(n.max(1)).map_err(cuda("allocating GPU memory"));
        let words_per_feature = rows.div_ceil(64);
        self.buffers = Some(Buffers {
            rows,
            x: f(rows * d)?,
            pre: f(rows * h)?,
            act: f(rows * h)?,
            rec: f(rows * d)?,
            g_act: f(rows * h)?,
            scratch: f(rows * h)?,
            ones: s.clone_htod(&vec![1f32; rows]).map_err(cuda("copying to the GPU"))?,
            words: s.alloc_zeros::<u64>(h * words_per_feature).map_err(cuda("allocating GPU memory"))?,
            counts: s.alloc_zeros::<u32>(h).map_err(cuda("allocating GPU memory"))?,
        });
        Ok(())
    }

    /// One training step on `x` `[B, d]`: gradients of `model`'s loss, the Adam update
    /// (counted in `adam.step`), unit decoder rows for the baselines. `model` supplies
    /// the architecture and, for TopK/BatchTopK, what the host-side selection needs;
    /// its parameters on the host are not read (the device holds the current ones).
    pub fn step(
        &mut self,
        model: &Autoencoder,
        x: &[f32],
        weights: &LossWeights,
        adam: &mut Adam,
    ) -> Result<BatchStats> {
        let (d, h) = (model.d, model.d_hidden);
        let rows = x.len() / d;
        self.buffers(rows, d, h)?;
        let stats = self.forward_backward(model, x, weights)?;
        self.adam_update(adam)?;
        if model.architecture != Architecture::Binary {
            let (rows_i, cols_i) = (h as i32, d as i32);
            let cfg =
                LaunchConfig { grid_dim: (h as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            let mut b = self.gpu.stream.launch_builder(self.gpu.function("normalize_rows"));
            b.arg(&mut self.params[2]).arg(&rows_i).arg(&cols_i);
            // SAFETY: W_dec holds h·d floats; one block per row.
            unsafe { b.launch(cfg) }.map_err(cuda("normalize_rows"))?;
        }
        Ok(stats)
    }

    fn adam_update(&mut self, adam: &mut Adam) -> Result<()> {
        adam.step += 1;
        let p = adam.params();
        let scale_m = (1.0 / (1.0 - p.beta1.powi(adam.step as i32))) as f32;
        let scale_v = (1.0 / (1.0 - p.beta2.powi(adam.step as i32))) as f32;
        let (omb1, omb2) = ((1.0 - p.beta1) as f32, (1.0 - p.beta2) as f32);
        let (lr, beta1, beta2, eps) = (p.lr as f32, p.beta1 as f32, p.beta2 as f32, p.eps as f32);
        for i in 0..5 {
            let n = self.lengths[i] as i64;
            if n == 0 {
                continue;
            }
            let mut b = self.gpu.stream.launch_builder(self.gpu.function("adam_step"));
            b.arg(&mut self.params[i]).arg(&self.grads[i]).arg(&mut self.m[i]).arg(&mut self.v[i]).arg(&n);
            b.arg(&lr).arg(&beta1).arg(&beta2).arg(&omb1).arg(&omb2).arg(&scale_m).arg(&scale_v).arg(&eps);
            // SAFETY: all four buffers hold n floats.
            unsafe { b.launch(grid(n as usize)) }.map_err(cuda("adam_step"))?;
        }
        Ok(())
    }

    fn forward_backward(
        &mut self,
        model: &Autoencoder,
        x: &[f32],
        weights: &LossWeights,
    ) -> Result<BatchStats> {
        let (d, h) = (model.d, model.d_hidden);
        let rows = x.len() / d;
        let gpu = &self.gpu;
        let s = gpu.stream.clone();
        let bufs = self.buffers.as_mut().expect("sized above");
        let (rows_i, d_i, h_i) = (rows as i32, d as i32, h as i32);
        let (n_act, n_rec) = ((rows * h) as i64, (rows * d) as i64);
        let wpf = rows.div_ceil(64);
        let wpf_i = wpf as i32;
        let gemm = |m, n, k, trans_a, trans_b| Sgemm { m, n, k, trans_a, trans_b };
        let launch_err = |name: &'static str| cuda(name);
        s.memcpy_htod(x, &mut bufs.x).map_err(cuda("copying a batch to the GPU"))?;
        s.memset_zeros(&mut self.sse).map_err(cuda("clearing"))?;
        s.memset_zeros(&mut self.total).map_err(cuda("clearing"))?;
        s.memset_zeros(&mut self.abs_sum).map_err(cuda("clearing"))?;
        s.memset_zeros(&mut bufs.words).map_err(cuda("clearing"))?;
        s.memset_zeros(&mut bufs.counts).map_err(cuda("clearing"))?;

        // pre = x·W_enc + b_enc
        {
            let mut b = s.launch_builder(gpu.function("fill_rows"));
            b.arg(&mut bufs.pre).arg(&self.params[1]).arg(&rows_i).arg(&h_i);
            // SAFETY: pre holds rows·h floats, b_enc h.
            unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("fill_rows"))?;
        }
        gpu.sgemm(gemm(rows, h, d, false, false), 1.0, &bufs.x, &self.params[0], 1.0, &mut bufs.pre)?;

        // Activations, and the packed active pattern with its counts.
        let mut smallest_kept = None;
        let pack_cfg = LaunchConfig {
            grid_dim: ((h as u32).div_ceil(32), (rows as u32).div_ceil(32), 1),
            block_dim: (32, 8, 1),
            shared_mem_bytes: 0,
        };
        match model.architecture {
            Architecture::Binary => {
                let mut b = s.launch_builder(gpu.function("binarize_pack_count"));
                b.arg(&bufs.pre).arg(&mut bufs.act).arg(&mut bufs.words).arg(&mut bufs.counts);
                b.arg(&rows_i).arg(&h_i).arg(&wpf_i);
                // SAFETY: pre/act hold rows·h floats, words h·wpf u64, counts h.
                unsafe { b.launch(pack_cfg) }.map_err(launch_err("binarize_pack_count"))?;
            }
            architecture => {
                match architecture {
                    Architecture::ReluL1 => {
                        let mut b = s.launch_builder(gpu.function("relu"));
                        b.arg(&bufs.pre).arg(&mut bufs.act).arg(&n_act);
                        // SAFETY: rows·h floats each.
                        unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("relu"))?;
                    }
                    Architecture::JumpRelu => {
                        let mut b = s.launch_builder(gpu.function("jumprelu"));
                        b.arg(&bufs.pre).arg(&self.params[4]).arg(&mut bufs.act).arg(&rows_i).arg(&h_i);
                        // SAFETY: rows·h floats each, ln θ h.
                        unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("jumprelu"))?;
                    }
                    _ => {
                        // TopK / BatchTopK: select on the host with the CPU code.
                        let pre = s.clone_dtoh(&bufs.pre).map_err(cuda("copying from the GPU"))?;
                        let mut act = vec![0f32; rows * h];
                        smallest_kept = activation::train(model, &pre[..rows * h], &mut act);
                        s.memcpy_htod(&act, &mut bufs.act).map_err(cuda("copying to the GPU"))?;
                    }
                }
                let null: u64 = 0;
                let mut b = s.launch_builder(gpu.function("binarize_pack_count"));
                b.arg(&bufs.act).arg(&null).arg(&mut bufs.words).arg(&mut bufs.counts);
                b.arg(&rows_i).arg(&h_i).arg(&wpf_i);
                // SAFETY: as above; a null z is not written.
                unsafe { b.launch(pack_cfg) }.map_err(launch_err("binarize_pack_count"))?;
            }
        }

        // rec = act·W_dec + b_dec, then the scaled residual d MSE / d rec.
        {
            let mut b = s.launch_builder(gpu.function("fill_rows"));
            b.arg(&mut bufs.rec).arg(&self.params[3]).arg(&rows_i).arg(&d_i);
            // SAFETY: rec holds rows·d floats, b_dec d.
            unsafe { b.launch(grid(rows * d)) }.map_err(launch_err("fill_rows"))?;
        }
        gpu.sgemm(gemm(rows, d, h, false, false), 1.0, &bufs.act, &self.params[2], 1.0, &mut bufs.rec)?;
        {
            let scale = (2.0 / (rows as f64 * d as f64)) as f32;
            let mut b = s.launch_builder(gpu.function("residual"));
            b.arg(&mut bufs.rec).arg(&bufs.x).arg(&scale).arg(&n_rec).arg(&mut self.sse);
            // SAFETY: rec and x hold rows·d floats.
            unsafe { b.launch(grid(rows * d)) }.map_err(launch_err("residual"))?;
        }
        // The covariance term and its sign pattern (a metric for the baselines).
        {
            let cfg = LaunchConfig {
                grid_dim: ((h as u32).div_ceil(16), (h as u32).div_ceil(16), 1),
                block_dim: (16, 16, 1),
                shared_mem_bytes: 0,
            };
            let rows_l = rows as i64;
            let mut b = s.launch_builder(gpu.function("covariance_signs"));
            b.arg(&bufs.words).arg(&bufs.counts).arg(&mut self.signs).arg(&mut self.abs_sum);
            b.arg(&h_i).arg(&wpf_i).arg(&rows_l);
            // SAFETY: words h·wpf, counts h, signs h·h.
            unsafe { b.launch(cfg) }.map_err(launch_err("covariance_signs"))?;
        }
        // Decoder gradients and d loss / d act.
        let [g_w_enc, g_b_enc, g_w_dec, g_b_dec, g_threshold] = &mut self.grads[..] else { unreachable!() };
        gpu.sgemm(gemm(h, d, rows, true, false), 1.0, &bufs.act, &bufs.rec, 0.0, g_w_dec)?;
        gpu.sgemm(gemm(1, d, rows, false, false), 1.0, &bufs.ones, &bufs.rec, 0.0, g_b_dec)?;
        gpu.sgemm(gemm(rows, h, d, false, true), 1.0, &bufs.rec, &self.params[2], 0.0, &mut bufs.g_act)?;

        let b_rows = rows as f64;
        match model.architecture {
            Architecture::Binary => {
                {
                    let lambda = weights.lambda_entropy;
                    let mut b = s.launch_builder(gpu.function("entropy_columns"));
                    b.arg(&bufs.counts)
                        .arg(&mut self.p)
                        .arg(&mut self.col_add)
                        .arg(&h_i)
                        .arg(&rows_i)
                        .arg(&lambda);
                    // SAFETY: counts, p, col_add hold h values.
                    unsafe { b.launch(grid(h)) }.map_err(launch_err("entropy_columns"))?;
                }
                if weights.lambda_entropy > 0.0 {
                    let mut b = s.launch_builder(gpu.function("add_columns"));
                    b.arg(&mut bufs.g_act).arg(&self.col_add).arg(&rows_i).arg(&h_i);
                    // SAFETY: g_act rows·h, col_add h.
                    unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("add_columns"))?;
                }
                if weights.lambda_covariance > 0.0 {
                    {
                        let mut b = s.launch_builder(gpu.function("center_columns"));
                        b.arg(&bufs.act).arg(&self.p).arg(&mut bufs.scratch).arg(&rows_i).arg(&h_i);
                        // SAFETY: act and scratch rows·h, p h.
                        unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("center_columns"))?;
                    }
                    let alpha = (2.0 * weights.lambda_covariance / (b_rows - 1.0)) as f32;
                    gpu.sgemm(
                        gemm(rows, h, h, false, false),
                        alpha,
                        &bufs.scratch,
                        &self.signs,
                        1.0,
                        &mut bufs.g_act,
                    )?;
                }
                let kind: i32 = match weights.estimator {
                    Estimator::Identity => 0,
                    Estimator::SignS => 1,
                    Estimator::Sigmoid => 2,
                };
                let mut b = s.launch_builder(gpu.function("estimator_backward"));
                b.arg(&mut bufs.g_act).arg(&bufs.pre).arg(&n_act).arg(&kind);
                // SAFETY: rows·h floats each.
                unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("estimator_backward"))?;
            }
            architecture => {
                if architecture == Architecture::ReluL1 {
                    let mut b = s.launch_builder(gpu.function("sum_values"));
                    b.arg(&bufs.act).arg(&n_act).arg(&mut self.total);
                    // SAFETY: act holds rows·h floats.
                    unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("sum_values"))?;
                }
                if architecture == Architecture::JumpRelu {
                    let (eps, l0) = (weights.bandwidth as f32, (weights.l0 / b_rows) as f32);
                    {
                        let mut b = s.launch_builder(gpu.function("jump_threshold_terms"));
                        b.arg(&bufs.pre).arg(&self.params[4]).arg(&bufs.g_act).arg(&mut bufs.scratch);
                        b.arg(&eps).arg(&l0).arg(&rows_i).arg(&h_i);
                        // SAFETY: pre, g_act, scratch rows·h; ln θ h.
                        unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("jump_threshold_terms"))?;
                    }
                    gpu.sgemm(
                        gemm(1, h, rows, false, false),
                        1.0,
                        &bufs.ones,
                        &bufs.scratch,
                        0.0,
                        g_threshold,
                    )?;
                    let mut b = s.launch_builder(gpu.function("scale_threshold_gradient"));
                    b.arg(&mut *g_threshold).arg(&self.params[4]).arg(&eps).arg(&h_i);
                    // SAFETY: both hold h floats.
                    unsafe { b.launch(grid(h)) }.map_err(launch_err("scale_threshold_gradient"))?;
                }
                let extra =
                    if architecture == Architecture::ReluL1 { (weights.l1 / b_rows) as f32 } else { 0.0 };
                let mut b = s.launch_builder(gpu.function("mask_gradient"));
                b.arg(&mut bufs.g_act).arg(&bufs.act).arg(&extra).arg(&n_act);
                // SAFETY: rows·h floats each.
                unsafe { b.launch(grid(rows * h)) }.map_err(launch_err("mask_gradient"))?;
            }
        }
        gpu.sgemm(gemm(d, h, rows, true, false), 1.0, &bufs.x, &bufs.g_act, 0.0, g_w_enc)?;
        gpu.sgemm(gemm(1, h, rows, false, false), 1.0, &bufs.ones, &bufs.g_act, 0.0, g_b_enc)?;

        // What the batch measured, back on the host.
        let sse = s.clone_dtoh(&self.sse).map_err(cuda("copying from the GPU"))?[0];
        let abs_sum = s.clone_dtoh(&self.abs_sum).map_err(cuda("copying from the GPU"))?[0];
        let total = s.clone_dtoh(&self.total).map_err(cuda("copying from the GPU"))?[0];
        let words = s.clone_dtoh(&bufs.words).map_err(cuda("copying from the GPU"))?;
        let codes = PackedCodes::from_words(rows, h, words);
        let counts = codes.counts();
        let covariance = if rows >= 2 { abs_sum as f64 / (b_rows * (b_rows - 1.0)) } else { 0.0 };
        let sparsity = match model.architecture {
            Architecture::ReluL1 => total / b_rows,
            Architecture::JumpRelu => counts.iter().sum::<u64>() as f64 / b_rows,
            _ => 0.0,
        };
        let entropy_bits = counts.iter().map(|&c| loss_entropy(c as f64 / b_rows)).sum();
        Ok(BatchStats { rows, sse, entropy_bits, covariance, sparsity, codes, smallest_kept })
    }
}
