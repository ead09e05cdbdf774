//! The CUDA sources of `kernels/`, embedded in the binary and compiled by NVRTC once per
//! process for the device's compute capability (or for any architecture named, which
//! needs only the NVRTC library, not a GPU: CI compiles every kernel this way).
//!
//! The device loads a CUBIN for its exact architecture, not PTX: PTX from a newer
//! NVRTC than the driver is rejected by the driver's JIT, while a CUBIN from any CUDA
//! 13 NVRTC runs on a CUDA 13.0 driver (minor-version compatibility).

use std::ffi::{c_char, CStr, CString};

use cudarc::nvrtc::{result, sys};

use crate::error::{Result, TrainError};

/// One source file and the kernels it defines.
pub struct KernelSource {
    /// File name under `kernels/`.
    pub file: &'static str,
    /// The CUDA C source.
    pub source: &'static str,
    /// Names of its `extern "C" __global__` functions.
    pub functions: &'static [&'static str],
}

/// Every kernel source the training step uses.
pub const SOURCES: [KernelSource; 2] = [
    KernelSource {
        file: "codes.cu",
        source: include_str!("../../../../kernels/codes.cu"),
        functions: &[
            "binarize_pack_count",
            "covariance_signs",
            "entropy_columns",
            "center_columns",
            "add_columns",
            "estimator_backward",
        ],
    },
    KernelSource {
        file: "step.cu",
        source: include_str!("../../../../kernels/step.cu"),
        functions: &[
            "fill_rows",
            "residual",
            "sum_values",
            "relu",
            "jumprelu",
            "mask_gradient",
            "jump_threshold_terms",
            "scale_threshold_gradient",
            "normalize_rows",
            "adam_step",
        ],
    },
];

/// Whether the NVRTC library can be loaded (the `nvidia-cuda-nvrtc` wheel or a CUDA
/// toolkit on the library path).
pub fn nvrtc_available() -> bool {
    // SAFETY: only probes for the shared library; no function is called.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// What NVRTC should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Machine code for a real architecture ("sm_90"): what the device loads.
    Cubin,
    /// PTX for a virtual architecture ("compute_90"): readable, for checks.
    Ptx,
}

/// Compiles `source` for `arch` ("sm_90" for a CUBIN, "compute_90" for PTX); the error
/// carries NVRTC's log.
pub fn compile(source: &KernelSource, arch: &str, output: Output) -> Result<Vec<u8>> {
    if !nvrtc_available() {
        return Err(TrainError::Cuda(
            "the NVRTC library (libnvrtc.so.13) is not on the library path; install the \
             nvidia-cuda-nvrtc 13.0 wheel (scripts/setup-python.sh does) or a CUDA 13 toolkit, \
             and add its lib directory to LD_LIBRARY_PATH"
                .into(),
        ));
    }
    let fail = |what: String| TrainError::Cuda(format!("kernels/{} for {arch}: {what}", source.file));
    let src = CString::new(source.source).map_err(|_| fail("a NUL byte in the source".into()))?;
    let name = CString::new(source.file).expect("file names have no NUL");
    let prog = result::create_program(&src, Some(&name)).map_err(|e| fail(format!("{e:?}")))?;
    let options = [format!("--gpu-architecture={arch}")];
    // SAFETY: prog was created above and is destroyed once, below; the buffers passed
    // to NVRTC are sized by the size queries that precede them.
    let outcome = unsafe {
        match result::compile_program(prog, &options) {
            Err(e) => {
                let log = result::get_program_log(prog).unwrap_or_default();
                let log = CStr::from_ptr(log.as_ptr()).to_string_lossy().into_owned();
                Err(fail(format!("does not compile ({e:?}):\n{log}")))
            }
            Ok(()) => match output {
                Output::Ptx => result::get_ptx(prog)
                    .map(|ptx| ptx.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect())
                    .map_err(|e| fail(format!("{e:?}"))),
                Output::Cubin => {
                    let mut size = 0usize;
                    let mut cubin: Vec<u8> = Vec::new();
                    let status = sys::nvrtcGetCUBINSize(prog, &mut size);
                    if status == sys::nvrtcResult::NVRTC_SUCCESS {
                        cubin.resize(size, 0);
                        let status = sys::nvrtcGetCUBIN(prog, cubin.as_mut_ptr() as *mut c_char);
                        if status == sys::nvrtcResult::NVRTC_SUCCESS {
                            Ok(cubin)
                        } else {
                            Err(fail(format!("no CUBIN ({status:?})")))
                        }
                    } else {
                        Err(fail(format!("no CUBIN ({status:?}); name a real architecture such as sm_90")))
                    }
                }
            },
        }
    };
    // SAFETY: created above, not destroyed before.
    unsafe { result::destroy_program(prog) }.map_err(|e| fail(format!("{e:?}")))?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs wherever the `cuda` feature is built, GPU or not: a kernel that does not
    /// compile fails here. Needs NVRTC (scripts/test.sh puts the wheel's on the path).
    #[test]
    fn every_kernel_compiles_for_the_architectures_we_target() {
        assert!(
            nvrtc_available(),
            "NVRTC is missing: run scripts/setup-python.sh and put .nvrtc/nvidia/cu13/lib on LD_LIBRARY_PATH \
             (scripts/test.sh does both)"
        );
        // Ampere (A100) and Hopper (H100/H200).
        for version in ["80", "90"] {
            for source in &SOURCES {
                let ptx = compile(source, &format!("compute_{version}"), Output::Ptx)
                    .unwrap_or_else(|e| panic!("{e}"));
                let ptx = String::from_utf8(ptx).unwrap();
                for function in source.functions {
                    assert!(
                        ptx.contains(&format!(".entry {function}(")),
                        "kernels/{}: no entry point {function} in the PTX for compute_{version}",
                        source.file
                    );
                }
                let cubin = compile(source, &format!("sm_{version}"), Output::Cubin)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    cubin.starts_with(b"\x7fELF"),
                    "kernels/{}: the sm_{version} CUBIN is not an ELF image",
                    source.file
                );
            }
        }
    }

    #[test]
    fn a_kernel_that_does_not_compile_is_reported_with_the_log() {
        let broken = KernelSource {
            file: "broken.cu",
            source: "extern \"C\" __global__ void f() { undefined_call(); }",
            functions: &["f"],
        };
        let err = compile(&broken, "compute_90", Output::Ptx).unwrap_err().to_string();
        assert!(err.contains("kernels/broken.cu") && err.contains("undefined_call"), "{err}");
    }
}
