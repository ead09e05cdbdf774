//! The GPU training path (feature `cuda`), through cudarc: kernels from `kernels/`
//! compiled by NVRTC at run time, cuBLAS GEMMs, backward written by hand. The CPU step
//! is its reference; DESIGN.md §7.

pub mod device;
pub mod kernels;
pub mod parity;
pub mod step;

pub use device::Gpu;
pub use step::GpuTrainer;

#[cfg(test)]
mod tests;
