//! The binary autoencoder (DESIGN.md §6): model, straight-through estimators, loss
//! terms, and a training loop over in-memory rows.

pub mod estimator;
pub mod loss;
pub mod model;
pub mod train;

pub use estimator::{binarize, Estimator};
pub use model::{BaeOutput, BinaryAutoencoder};
pub use train::{synthetic_bits, train_in_memory, EpochMetrics, Split, Trainer};
