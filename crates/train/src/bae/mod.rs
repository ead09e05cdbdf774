//! The autoencoders (DESIGN.md §6): the BAE and the SAE baselines, their
//! activations, loss terms (as candle expressions, the autograd oracle), the
//! hand-written training step, and the training loop.

pub mod activation;
pub mod estimator;
pub mod loss;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod prune;
pub mod step;
pub mod train;

pub use estimator::{binarize, Estimator};
pub use model::Autoencoder;
pub use normalize::{activation_scale, Normalization};
pub use train::{synthetic_bits, train_in_memory, EpochMetrics, Split, Trainer};
