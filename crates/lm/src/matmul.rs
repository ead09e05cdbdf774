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

/// The shape of one `c = alpha · op(a) · op(b) + beta · c` on row-major slices: op(a)
/// is `[m, k]` (`a` is stored `[k, m]` when `trans_a`), op(b) is `[k, n]` (`b` is
/// stored `[n, k]` when `trans_b`), `c` is `[m, n]`. Training's forward and backward
/// passes are all of this form; transposes are read through strides, never copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sgemm {
    /// Rows of op(a) and c.
    pub m: usize,
    /// Columns of op(b) and c.
    pub n: usize,
    /// The shared dimension.
    pub k: usize,
    /// `a` is stored transposed, `[k, m]`.
    pub trans_a: bool,
    /// `b` is stored transposed, `[n, k]`.
    pub trans_b: bool,
}

impl Sgemm {
    /// `c = alpha · op(a) · op(b) + beta · c`, on OpenBLAS when linked and enabled, else
    /// on the `gemm` crate with all cores. With `beta = 0`, `c`'s old values are ignored
    /// (even NaN). Panics if a slice's length does not match the shape (a caller's bug).
    pub fn run(&self, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
        let Sgemm { m, n, k, trans_a, trans_b } = *self;
        assert_eq!(a.len(), m * k, "sgemm: a has {} values, op(a) is [{m}, {k}]", a.len());
        assert_eq!(b.len(), k * n, "sgemm: b has {} values, op(b) is [{k}, {n}]", b.len());
        assert_eq!(c.len(), m * n, "sgemm: c has {} values, expected [{m}, {n}]", c.len());
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            c.iter_mut().for_each(|v| *v = if beta == 0.0 { 0.0 } else { beta * *v });
            return;
        }
        #[cfg(bae_openblas)]
        if backend() == MatmulBackend::OpenBlas {
            blas::sgemm(self, alpha, a, b, beta, c);
            return;
        }
        let (a_rs, a_cs) = if trans_a { (1, m as isize) } else { (k as isize, 1) };
        let (b_rs, b_cs) = if trans_b { (1, k as isize) } else { (n as isize, 1) };
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        // SAFETY: the asserts above bound every index the strides reach inside the
        // slices; c is borrowed mutably and does not alias a or b.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                beta != 0.0,
                a.as_ptr(),
                a_cs,
                a_rs,
                b.as_ptr(),
                b_cs,
                b_rs,
                // The gemm crate computes dst = alpha·dst + beta·lhs·rhs.
                beta,
                alpha,
                false,
                false,
                false,
                if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None },
            );
        }
    }
}

/// `cblas_sgemm` from the system OpenBLAS, as a candle op and on slices.
#[cfg(bae_openblas)]
mod blas {
    use candle_core::{CpuStorage, CustomOp2, Layout, Shape};

    use super::Sgemm;

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
            let mut out = vec![0f32; m * n];
            if m > 0 && n > 0 && k > 0 {
                let shape = Sgemm { m, n, k, trans_a: false, trans_b: false };
                sgemm(&shape, 1.0, &a[a0..a0 + m * k], &b[b0..b0 + k * n], 0.0, &mut out);
            }
            Ok((CpuStorage::F32(out), Shape::from((m, n))))
        }
    }

    /// Rows of `c` per `cblas_sgemm` call. OpenBLAS runs single-threaded and rayon takes
    /// these blocks in parallel: one thread pool instead of two that yield to each other,
    /// and a block size fixed in advance, not derived from the thread count, so every
    /// element of `c` comes out of the same call whatever the number of threads. (With
    /// its own threads OpenBLAS splits the work in ways that change the rounding: the same
    /// training run gave different weights under OPENBLAS_NUM_THREADS = 1 and 2.)
    const ROWS_PER_CALL: usize = 128;

    /// Row-major `c = alpha · op(a) · op(b) + beta · c` in blocks of [`ROWS_PER_CALL`]
    /// rows of `c`; the caller has checked the lengths and that m, n, k > 0.
    pub(super) fn sgemm(shape: &Sgemm, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
        use rayon::prelude::*;
        static SINGLE_THREADED: std::sync::Once = std::sync::Once::new();
        SINGLE_THREADED.call_once(|| {
            // SAFETY: a plain setter of the library's thread count, called before any
            // other OpenBLAS call of ours and never concurrently with one (Once).
            unsafe { openblas_set_num_threads(1) }
        });
        let Sgemm { m, n, k, trans_a, .. } = *shape;
        // Row i of op(a) starts at a[i·k] when a is stored [m, k], at a[i] when [k, m].
        let row_stride = if trans_a { 1 } else { k };
        let a = SharedPtr(a.as_ptr());
        c.par_chunks_mut(ROWS_PER_CALL * n).enumerate().for_each(|(block, c)| {
            let first = block * ROWS_PER_CALL;
            let rows = c.len() / n;
            // SAFETY: rows first..first + rows of op(a) lie inside `a` (the caller checked
            // a.len() = m·k and first + rows ≤ m), and `c` is this block's own rows.
            unsafe {
                call(&Sgemm { m: rows, ..*shape }, m, alpha, a.get().add(first * row_stride), b, beta, c)
            }
        });
    }

    /// A read-only pointer the blocks share (`*const f32` is not `Send`).
    #[derive(Clone, Copy)]
    struct SharedPtr(*const f32);

    impl SharedPtr {
        /// The pointer (a method, so closures capture the whole `Send` wrapper).
        fn get(self) -> *const f32 {
            self.0
        }
    }
    // SAFETY: only read, and the slice it points into outlives the parallel loop.
    unsafe impl Send for SharedPtr {}
    unsafe impl Sync for SharedPtr {}

    #[link(name = "openblas")]
    extern "C" {
        fn openblas_set_num_threads(threads: i32);
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

    /// One `cblas_sgemm` over `shape.m` rows of `c`; `a` points at the first of them in
    /// an op(a) whose full height is `full_m` (the leading dimension when `a` is stored
    /// transposed).
    ///
    /// # Safety
    /// `a` must reach op(a)'s `shape.m` rows of `shape.k` values through the row-major
    /// leading dimension (`shape.k`, or `full_m` when transposed); `b` and `c` must match
    /// the shape.
    unsafe fn call(
        shape: &Sgemm,
        full_m: usize,
        alpha: f32,
        a: *const f32,
        b: &[f32],
        beta: f32,
        c: &mut [f32],
    ) {
        const ROW_MAJOR: i32 = 101;
        const NO_TRANS: i32 = 111;
        const TRANS: i32 = 112;
        let Sgemm { m, n, k, trans_a, trans_b } = *shape;
        let lda = if trans_a { full_m } else { k };
        let ldb = if trans_b { k } else { n };
        // SAFETY: the caller's contract; BLAS does not keep pointers.
        unsafe {
            cblas_sgemm(
                ROW_MAJOR,
                if trans_a { TRANS } else { NO_TRANS },
                if trans_b { TRANS } else { NO_TRANS },
                m as i32,
                n as i32,
                k as i32,
                alpha,
                a,
                lda as i32,
                b.as_ptr(),
                ldb as i32,
                beta,
                c.as_mut_ptr(),
                n as i32,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(bae_openblas)]
    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        use candle_core::Device;
        let mut rng = crate::rng::SplitMix64::new(seed);
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
    fn sgemm_matches_a_naive_product_for_every_transpose_and_beta() {
        use crate::rng::SplitMix64;
        let mut rng = SplitMix64::new(9);
        for backend in [MatmulBackend::OpenBlas, MatmulBackend::Candle] {
            let _guard = BACKEND_LOCK.lock().unwrap();
            set_backend(backend);
            for (m, n, k) in [(1, 1, 1), (7, 5, 13), (33, 65, 17), (300, 9, 21)] {
                for (trans_a, trans_b, alpha, beta) in [
                    (false, false, 1.0, 0.0),
                    (true, false, 0.5, 1.0),
                    (false, true, -2.0, 0.25),
                    (true, true, 1.0, -1.0),
                ] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.symmetric()).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.symmetric()).collect();
                    let c0: Vec<f32> = (0..m * n).map(|_| rng.symmetric()).collect();
                    let at = |i: usize, l: usize| if trans_a { a[l * m + i] } else { a[i * k + l] };
                    let bt = |l: usize, j: usize| if trans_b { b[j * k + l] } else { b[l * n + j] };
                    let want: Vec<f32> = (0..m * n)
                        .map(|ij| {
                            let (i, j) = (ij / n, ij % n);
                            alpha * (0..k).map(|l| at(i, l) * bt(l, j)).sum::<f32>() + beta * c0[ij]
                        })
                        .collect();
                    let mut got = if beta == 0.0 { vec![f32::NAN; m * n] } else { c0.clone() };
                    Sgemm { m, n, k, trans_a, trans_b }.run(alpha, &a, &b, beta, &mut got);
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() < 1e-4 * k as f32,
                            "{backend:?} {m}x{n}x{k} {trans_a} {trans_b}: {g} vs {w}"
                        );
                    }
                }
            }
        }
        set_backend(MatmulBackend::OpenBlas);
    }

    #[test]
    fn sgemm_gives_the_same_bits_on_any_number_of_threads() {
        use crate::rng::SplitMix64;
        let mut rng = SplitMix64::new(11);
        // Several row blocks, a shared dimension long enough to be split, both layouts.
        let (m, n, k) = (520, 70, 1100);
        let a: Vec<f32> = (0..m * k).map(|_| rng.symmetric()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.symmetric()).collect();
        for backend in [MatmulBackend::OpenBlas, MatmulBackend::Candle] {
            let _guard = BACKEND_LOCK.lock().unwrap();
            set_backend(backend);
            for trans_a in [false, true] {
                let product = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let mut c = vec![0f32; m * n];
                    pool.install(|| Sgemm { m, n, k, trans_a, trans_b: false }.run(1.0, &a, &b, 0.0, &mut c));
                    c
                };
                let one = product(1);
                for threads in [2, 3] {
                    assert!(
                        one == product(threads),
                        "{backend:?} trans_a {trans_a}: {threads} threads differ"
                    );
                }
            }
        }
        set_backend(MatmulBackend::OpenBlas);
    }

    /// Tests that switch the process-wide backend take turns.
    static BACKEND_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn the_backend_can_be_switched_for_benchmarks() {
        let _guard = BACKEND_LOCK.lock().unwrap();
        assert_eq!(set_backend(MatmulBackend::Candle), MatmulBackend::Candle);
        let restored = set_backend(MatmulBackend::OpenBlas);
        assert_eq!(restored == MatmulBackend::OpenBlas, openblas_available());
    }
}
