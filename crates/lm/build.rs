//! Links the system OpenBLAS when it is installed (Debian/Ubuntu: libopenblas-dev), so
//! the decoder's large f32 matmuls run on its AVX-512 kernels instead of candle's
//! pure-Rust gemm (about 2.5x faster on the CPUs we test on). Without it everything
//! still builds and runs, on gemm. Set BAE_NO_OPENBLAS=1 to build without it.

use std::path::Path;

const SEARCH: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/homebrew/opt/openblas/lib",
    "/usr/local/opt/openblas/lib",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(bae_openblas)");
    println!("cargo::rerun-if-env-changed=BAE_NO_OPENBLAS");
    println!("cargo::rerun-if-env-changed=OPENBLAS_LIB_DIR");
    if std::env::var_os("BAE_NO_OPENBLAS").is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    let dirs: Vec<String> =
        std::env::var("OPENBLAS_LIB_DIR").into_iter().chain(SEARCH.iter().map(|s| s.to_string())).collect();
    for dir in dirs {
        let found = ["libopenblas.so", "libopenblas.dylib"].iter().any(|f| Path::new(&dir).join(f).exists());
        println!("cargo::rerun-if-changed={dir}/libopenblas.so");
        if found {
            println!("cargo::rustc-link-search=native={dir}");
            println!("cargo::rustc-link-lib=dylib=openblas");
            println!("cargo::rustc-cfg=bae_openblas");
            return;
        }
    }
}
