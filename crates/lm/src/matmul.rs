//! The decoder's dense matmuls `[rows, in] x [in, out]`. In f32 on the CPU they go to
//! the system OpenBLAS when the build found one (see build.rs): its AVX-512 kernels
//! run about 2.5x faster than candle's pure-Rust gemm here. Everything else, and every
//! build without OpenBLAS, uses candle's own matmul.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Tensor;

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
    #[cfg(bae_openblas)]
    if backend() == MatmulBackend::OpenBlas
        && a.dtype() == candle_core::DType::F32
        && b.dtype() == candle_core::DType::F32
        && a.device().is_cpu()
        && a.rank() == 2
        && b.rank() == 2
    {
        // contiguous() is free for the decoder's operands, which already are.
        return Ok(a.contiguous()?.apply_op2_no_bwd(&b.contiguous()?, &blas::BlasMatmul)?);
    }
    Ok(a.matmul(b)?)
}

/// `cblas_sgemm` from the system OpenBLAS as a candle op.
#[cfg(bae_openblas)]
mod blas {
    use candle_core::{CpuStorage, CustomOp2, Layout, Shape};

    pub(super) struct BlasMatmul;

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
                candle_core::bail!("{}: contiguous inputs expected", self.name())
            };
            let out = sgemm(&a[a0..a0 + m * k], &b[b0..b0 + k * n], m, k, n);
            Ok((CpuStorage::F32(out), Shape::from((m, n))))
        }
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(bae_openblas)]
    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        use candle_core::Device;
        let mut rng = crate::testing::SplitMix64::new(seed);
        let data: Vec<f32> = (0..rows * cols).map(|_| rng.symmetric()).collect();
        Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
    }

    #[cfg(bae_openblas)]
    #[test]
    fn blas_matmul_matches_candle_on_odd_and_strided_shapes() {
        for (m, k, n) in [(1, 1, 1), (7, 13, 5), (129, 64, 257), (300, 577, 33)] {
            let a = random(m, k, 1);
            let b = random(k, n, 2);
            let want = a.matmul(&b).unwrap();
            let got = matmul(&a, &b).unwrap();
            let err = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(err < 1e-4 * k as f32, "{m}x{k}x{n}: {err}");
        }
        // Offsets (a narrowed view) and strides (a transposed view).
        let a = random(20, 9, 3).narrow(0, 5, 10).unwrap();
        let b = random(11, 9, 4).t().unwrap();
        let want = a.matmul(&b).unwrap();
        let got = matmul(&a, &b).unwrap();
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
