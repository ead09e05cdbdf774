//! The decoder's dense matmuls `[rows, in] x [in, out]`. In f32 on the CPU they go to
//! the system OpenBLAS when the build found one (see build.rs): its AVX-512 kernels
//! run about 2.5x faster than candle's pure-Rust gemm here. Everything else, and every
//! build without OpenBLAS, uses candle's own matmul.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

use crate::error::Result;

static BLAS_DISABLED: AtomicBool = AtomicBool::new(false);

/// Which implementation runs f32 CPU matmuls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulBackend {
    /// The system OpenBLAS (`cblas_sgemm`).
    OpenBlas,
    /// candle's built-in matmul (the `gemm` crate).
    Candle,
}

impl MatmulBackend {
    /// A short name for logs and benchmark tables.
    pub fn name(&self) -> &'static str {
        match self {
            MatmulBackend::OpenBlas => "openblas",
            MatmulBackend::Candle => "candle-gemm",
        }
    }
}

/// Whether this build linked OpenBLAS.
pub fn openblas_available() -> bool {
    cfg!(bae_openblas)
}

/// The backend f32 CPU matmuls use now.
pub fn backend() -> MatmulBackend {
    if openblas_available() && !BLAS_DISABLED.load(Ordering::Relaxed) {
        MatmulBackend::OpenBlas
    } else {
        MatmulBackend::Candle
    }
}

/// Chooses the backend for the whole process (for A/B benchmarks). Asking for OpenBLAS
/// in a build without it keeps candle's matmul; the return value says which is in use.
pub fn set_backend(want: MatmulBackend) -> MatmulBackend {
    BLAS_DISABLED.store(want == MatmulBackend::Candle, Ordering::Relaxed);
    backend()
}

/// `a [m, k] x b [k, n]`.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if backend() == MatmulBackend::OpenBlas
        && a.dtype() == DType::F32
        && b.dtype() == DType::F32
        && a.device().is_cpu()
        && a.rank() == 2
        && b.rank() == 2
    {
        return Ok(a.apply_op2_no_bwd(b, &BlasMatmul)?);
    }
    Ok(a.matmul(b)?)
}

struct BlasMatmul;

impl CustomOp2 for BlasMatmul {
    fn name(&self) -> &'static str {
        "bae-blas-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(a), CpuStorage::F32(b)) = (s1, s2) else {
            candle_core::bail!("{}: f32 inputs expected", self.name())
        };
        let (m, k) = l1.shape().dims2()?;
        let (k2, n) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("{}: shapes [{m}, {k}] and [{k2}, {n}] do not chain", self.name())
        }
        let (Some((a0, _)), Some((b0, _))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            // Strided inputs are rare here (weights are stored contiguous); copy them.
            let a = a_contiguous(a, l1, m, k);
            let b = a_contiguous(b, l2, k, n);
            return Ok((CpuStorage::F32(sgemm(&a, &b, m, k, n)), Shape::from((m, n))));
        };
        let out = sgemm(&a[a0..a0 + m * k], &b[b0..b0 + k * n], m, k, n);
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

fn a_contiguous(data: &[f32], layout: &Layout, rows: usize, cols: usize) -> Vec<f32> {
    let stride = layout.stride();
    let start = layout.start_offset();
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            out.push(data[start + r * stride[0] + c * stride[1]]);
        }
    }
    out
}

#[cfg(bae_openblas)]
fn sgemm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    const ROW_MAJOR: i32 = 101;
    const NO_TRANS: i32 = 111;
    #[link(name = "openblas")]
    extern "C" {
        fn cblas_sgemm(
            layout: i32,
            trans_a: i32,
            trans_b: i32,
            m: i32,
            n: i32,
            k: i32,
            alpha: f32,
            a: *const f32,
            lda: i32,
            b: *const f32,
            ldb: i32,
            beta: f32,
            c: *mut f32,
            ldc: i32,
        );
    }
    let mut c = vec![0f32; m * n];
    if m == 0 || n == 0 {
        return c;
    }
    // SAFETY: a holds m*k and b holds k*n row-major f32 values, c has room for m*n; the
    // leading dimensions match those row-major layouts, and BLAS does not keep pointers.
    unsafe {
        cblas_sgemm(
            ROW_MAJOR,
            NO_TRANS,
            NO_TRANS,
            m as i32,
            n as i32,
            k as i32,
            1.0,
            a.as_ptr(),
            k as i32,
            b.as_ptr(),
            n as i32,
            0.0,
            c.as_mut_ptr(),
            n as i32,
        );
    }
    c
}

#[cfg(not(bae_openblas))]
fn sgemm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    // Unreachable in practice (backend() never picks OpenBLAS without it), but kept
    // correct: a plain triple loop.
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for p in 0..k {
            let x = a[i * k + p];
            for j in 0..n {
                c[i * n + j] += x * b[p * n + j];
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SplitMix64;
    use candle_core::Device;

    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut rng = SplitMix64::new(seed);
        let data: Vec<f32> = (0..rows * cols).map(|_| rng.symmetric()).collect();
        Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn blas_matmul_matches_candle_on_odd_and_strided_shapes() {
        for (m, k, n) in [(1, 1, 1), (7, 13, 5), (129, 64, 257), (300, 577, 33)] {
            let a = random(m, k, 1);
            let b = random(k, n, 2);
            let want = a.matmul(&b).unwrap();
            let got = a.apply_op2_no_bwd(&b, &BlasMatmul).unwrap();
            let err = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(err < 1e-4 * k as f32, "{m}x{k}x{n}: {err}");
        }
        // Offsets (a narrowed view) and strides (a transposed view).
        let a = random(20, 9, 3).narrow(0, 5, 10).unwrap();
        let b = random(11, 9, 4).t().unwrap();
        let want = a.matmul(&b).unwrap();
        let got = a.apply_op2_no_bwd(&b, &BlasMatmul).unwrap();
        let err = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(err < 1e-4, "{err}");
    }

    #[test]
    fn the_backend_can_be_switched_for_benchmarks() {
        assert_eq!(set_backend(MatmulBackend::Candle), MatmulBackend::Candle);
        let restored = set_backend(MatmulBackend::OpenBlas);
        assert_eq!(restored == MatmulBackend::OpenBlas, openblas_available());
    }
}
