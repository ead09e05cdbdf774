//! Turning the shared `--model/--tokenizer/--dtype` flags into a loaded model.

use anyhow::Context;
use bae_lm::{LoadOptions, Model};
use candle_core::DType;

use crate::cli::{DtypeArg, ModelArgs};

impl DtypeArg {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            DtypeArg::F32 => DType::F32,
            DtypeArg::Bf16 => DType::BF16,
            DtypeArg::F16 => DType::F16,
        }
    }
}

/// Loads the model the flags name.
pub fn load_model(args: &ModelArgs) -> anyhow::Result<Model> {
    let opts = LoadOptions {
        dtype: args.dtype.dtype(),
        tokenizer: args.tokenizer.clone(),
        ..LoadOptions::default()
    };
    Model::load(&args.model, &opts).with_context(|| format!("loading model {}", args.model))
}
