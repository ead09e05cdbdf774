//! A loaded model: decoder, tokenizer and where they came from.

use std::path::PathBuf;

use candle_core::{DType, Device};

use crate::config::{load_hf_config, DecoderConfig};
use crate::decoder::Decoder;
use crate::error::{LmError, Result};
use crate::gguf::GgufFile;
use crate::source::ModelSource;
use crate::tokenizer::TextTokenizer;
use crate::weights::WeightStore;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Weight and activation dtype (f32 by default; bf16 and f16 are slower on CPUs).
    pub dtype: DType,
    /// Where the weights live.
    pub device: Device,
    /// A tokenizer.json to use instead of the model's own. Without it a directory's
    /// tokenizer.json is used; for a GGUF file, a `tokenizer.json` beside it, else the
    /// tokenizer rebuilt from its metadata (byte-level BPE only).
    pub tokenizer: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, device: Device::Cpu, tokenizer: None }
    }
}

/// A model ready to run.
pub struct Model {
    /// The decoder with hook points.
    pub decoder: Decoder,
    /// Its tokenizer, when one was found.
    pub tokenizer: Option<TextTokenizer>,
    /// Where it was loaded from.
    pub source: ModelSource,
}

impl Model {
    /// Resolves `spec` (directory, GGUF file or Hub id) and loads it.
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Self> {
        Self::load_source(ModelSource::resolve(spec)?, opts)
    }

    /// Loads an already resolved source. The tokenizer is read before the weights, so a
    /// missing or unusable one is reported without waiting for a large model to load.
    pub fn load_source(source: ModelSource, opts: &LoadOptions) -> Result<Self> {
        let (decoder, tokenizer) = match &source {
            ModelSource::HfDir { files, .. } => {
                let cfg = load_hf_config(&files.config)?;
                let tokenizer = match (&opts.tokenizer, &files.tokenizer) {
                    (Some(path), _) | (None, Some(path)) => {
                        Some(TextTokenizer::from_file(path, cfg.bos_token_id)?)
                    }
                    (None, None) => None,
                };
                check_vocabulary(tokenizer.as_ref(), &cfg)?;
                let weights = WeightStore::from_safetensors(&files.weights, opts.dtype, &opts.device)?;
                (Decoder::load(&cfg, &weights, opts.dtype, &opts.device)?, tokenizer)
            }
            ModelSource::Gguf(path) => {
                let gguf = GgufFile::open(path)?;
                let cfg = gguf.decoder_config()?;
                let beside = path.with_file_name("tokenizer.json");
                let tokenizer = match &opts.tokenizer {
                    Some(path) => TextTokenizer::from_file(path, cfg.bos_token_id)?,
                    // The Hugging Face file is exact; the rebuilt one covers byte-level BPE only.
                    None if beside.is_file() => TextTokenizer::from_file(&beside, cfg.bos_token_id)?,
                    None => TextTokenizer::from_gguf(&gguf)?,
                };
                check_vocabulary(Some(&tokenizer), &cfg)?;
                let weights = gguf.weights(&cfg, opts.dtype, &opts.device)?;
                (Decoder::load(&cfg, &weights, opts.dtype, &opts.device)?, Some(tokenizer))
            }
        };
        Ok(Self { decoder, tokenizer, source })
    }

    /// The model's configuration.
    pub fn config(&self) -> &DecoderConfig {
        self.decoder.config()
    }

    /// The tokenizer, or an error saying how to provide one.
    pub fn tokenizer(&self) -> Result<&TextTokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| LmError::Tokenizer {
            origin: self.source.describe(),
            message: "the model has no tokenizer.json; pass one with --tokenizer".into(),
        })
    }
}

/// Added tokens may lie past the embedding matrix (Gemma 3's tokenizer adds an image token
/// the text model has no row for); the decoder rejects such ids if they are ever fed. A
/// base vocabulary larger than the model's means a tokenizer for another model.
fn check_vocabulary(tokenizer: Option<&TextTokenizer>, cfg: &DecoderConfig) -> Result<()> {
    match tokenizer {
        Some(tok) if tok.base_vocab_size() > cfg.vocab_size => Err(LmError::Tokenizer {
            origin: tok.origin().to_string(),
            message: format!(
                "has {} tokens but the model's vocabulary has {}",
                tok.base_vocab_size(),
                cfg.vocab_size
            ),
        }),
        _ => Ok(()),
    }
}
