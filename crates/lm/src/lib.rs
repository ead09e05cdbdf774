//! bae-lm: hosts causal language models (Llama, Mistral, Qwen, Gemma) with hook points on the
//! residual stream, loaded from Hugging Face directories, the Hugging Face cache, or
//! GGUF files; with the workspace's shared pieces below the other two crates: the one
//! seeded generator ([`rng`]), the byte-flip fuzz harness every reader's tests run
//! ([`fuzz`]), and the guard that turns a dependency's panic into an error ([`guard`]).
//!
//! ```no_run
//! use bae_lm::{Batch, ForwardRequest, HookPoint, LoadOptions, Model};
//! let model = Model::load("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf", &LoadOptions::default())?;
//! let ids = model.tokenizer()?.encode("The capital of France is", true)?;
//! let batch = Batch::single(&ids, model.decoder.device())?;
//! let out = model.decoder.forward(&batch, &ForwardRequest::capture(&[HookPoint::ResidPost(5)]))?;
//! println!("{:?}", out.activations[&HookPoint::ResidPost(5)].shape());
//! # Ok::<(), bae_lm::LmError>(())
//! ```
#![deny(missing_docs)]

pub mod batch;
pub mod config;
pub mod decoder;
pub mod error;
pub mod eval;
pub mod fuzz;
pub mod gguf;
pub mod guard;
pub mod hooks;
pub mod matmul;
pub mod model;
pub mod rng;
pub mod rope;
pub mod source;
pub mod testing;
pub mod tokenizer;
pub mod weights;

pub use batch::{Batch, Padding};
pub use config::{Activation, DecoderConfig, Family, RopeScaling};
pub use decoder::{Decoder, ForwardOutput, ForwardRequest, Intervention, InterventionKind};
pub use error::{LmError, Result};
pub use hooks::{glob_match, select_hooks, HookPoint};
pub use model::{LoadOptions, Model};
pub use source::ModelSource;
pub use tokenizer::TextTokenizer;
