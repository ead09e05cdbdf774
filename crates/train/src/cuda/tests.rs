//! GPU tests. Without a GPU (CI, most laptops) they print why they skip; the kernels
//! are still compiled to PTX by the test in `kernels.rs`, which needs only NVRTC.

use super::*;

/// The GPU when one can be opened, else the reason printed and None.
fn gpu_or_skip(test: &str) -> Option<Gpu> {
    match Gpu::open(0) {
        Ok(gpu) => Some(gpu),
        Err(e) => {
            eprintln!("{test}: skipped, no usable GPU here ({e})");
            None
        }
    }
}

#[test]
fn every_kernel_and_the_whole_step_match_the_cpu() {
    if gpu_or_skip("every_kernel_and_the_whole_step_match_the_cpu").is_none() {
        return;
    }
    let checks = parity::check_all().unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn a_missing_gpu_is_a_clear_error_not_a_panic() {
    // Whatever this machine has, opening must return, and a failure must say what is
    // missing.
    let opened = std::panic::catch_unwind(|| Gpu::open(0).map(|_| ()));
    match opened.expect("Gpu::open panicked") {
        Ok(()) => eprintln!("a GPU is present; the error path is not exercised here"),
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("CUDA: "), "{message}");
            assert!(
                ["not present", "CUDA device", "compile"].iter().any(|n| message.contains(n)),
                "{message}"
            );
        }
    }
}
