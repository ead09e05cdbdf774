//! bae-train: binary autoencoder training on residual-stream activations (CPU
//! reference path, and a CUDA path behind the `cuda` feature). The trainer arrives in
//! its own stage; the crate exists now so the workspace has its final shape.
#![deny(missing_docs)]
