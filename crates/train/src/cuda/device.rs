//! One GPU: its context and stream, cuBLAS, and the compiled kernels. Opening it checks
//! for every library first, so a machine without CUDA gets an error that says what is
//! missing instead of a panic inside the dynamic loader.

use std::collections::HashMap;
use std::sync::Arc;

use bae_lm::matmul::Sgemm;
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig};

use cudarc::nvrtc::Ptx;

use super::kernels::{compile, Output, SOURCES};
use crate::error::{Result, TrainError};

/// A CUDA error as ours, with what was being done.
pub(crate) fn cuda<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> TrainError {
    move |e| TrainError::Cuda(format!("{what}: {e:?}"))
}

/// An open GPU with the training kernels loaded.
pub struct Gpu {
    /// The stream every launch and copy goes to (in order).
    pub stream: Arc<CudaStream>,
    blas: CudaBlas,
    functions: HashMap<&'static str, CudaFunction>,
    /// The device's name, e.g. "NVIDIA H200".
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
}

/// Threads per block of the 1-D kernels (their shared-memory reductions assume 256).
pub(crate) const BLOCK: u32 = 256;

/// A 1-D launch over `n` elements.
pub(crate) fn grid(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((n as u32).div_ceil(BLOCK).max(1), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl Gpu {
    /// Opens device `ordinal` and compiles the kernels for its architecture.
    pub fn open(ordinal: usize) -> Result<Self> {
        // SAFETY: these only probe for the shared libraries; nothing is called.
        let (driver, blas, nvrtc) = unsafe {
            (
                cudarc::driver::sys::is_culib_present(),
                cudarc::cublas::sys::is_culib_present(),
                cudarc::nvrtc::sys::is_culib_present(),
            )
        };
        for (present, library, hint) in [
            (driver, "the CUDA driver library (libcuda.so)", "this machine has no NVIDIA driver"),
            (blas, "cuBLAS (libcublas.so.13)", "install the CUDA 13 runtime or add it to LD_LIBRARY_PATH"),
            (nvrtc, "NVRTC (libnvrtc.so.13)", "install the CUDA 13 runtime or add it to LD_LIBRARY_PATH"),
        ] {
            if !present {
                return Err(TrainError::Cuda(format!("no usable GPU: {library} is not present; {hint}")));
            }
        }
        let count = CudaContext::device_count().map_err(cuda("counting CUDA devices"))?;
        if ordinal as i32 >= count {
            return Err(TrainError::Cuda(format!(
                "no usable GPU: device {ordinal} requested, {count} CUDA device(s) present"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(cuda("opening the CUDA device"))?;
        let compute_capability = ctx.compute_capability().map_err(cuda("reading the compute capability"))?;
        let name = ctx.name().map_err(cuda("reading the device name"))?;
        let arch = format!("sm_{}{}", compute_capability.0, compute_capability.1);
        let mut functions = HashMap::new();
        for source in &SOURCES {
            let cubin = Ptx::from_binary(compile(source, &arch, Output::Cubin)?);
            let module = ctx.load_module(cubin).map_err(cuda("loading a kernel module"))?;
            for &f in source.functions {
                functions.insert(f, module.load_function(f).map_err(cuda("loading a kernel"))?);
            }
        }
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(cuda("starting cuBLAS"))?;
        Ok(Self { stream, blas, functions, name, compute_capability })
    }

    /// A loaded kernel by name.
    pub(crate) fn function(&self, name: &str) -> &CudaFunction {
        self.functions.get(name).unwrap_or_else(|| panic!("kernel {name} is not in kernels/*.cu's lists"))
    }

    /// `c = alpha·op(a)·op(b) + beta·c` on row-major device matrices, with the shape
    /// conventions of the CPU's [`Sgemm`]. cuBLAS is column-major, so it computes
    /// cᵀ = op(b)ᵀ·op(a)ᵀ, which reads the same memory.
    pub fn sgemm(
        &self,
        shape: Sgemm,
        alpha: f32,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        beta: f32,
        c: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let Sgemm { m, n, k, trans_a, trans_b } = shape;
        assert!(
            a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
            "sgemm: buffers smaller than the shape"
        );
        let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        let config = GemmConfig {
            transa: op(trans_b),
            transb: op(trans_a),
            m: n as i32,
            n: m as i32,
            k: k as i32,
            alpha,
            lda: if trans_b { k } else { n } as i32,
            ldb: if trans_a { m } else { k } as i32,
            beta,
            ldc: n as i32,
        };
        // SAFETY: the assert above guarantees the buffers hold the matrices the shape
        // and leading dimensions describe.
        unsafe { self.blas.gemm(config, b, a, c) }.map_err(cuda("cuBLAS sgemm"))
    }
}
