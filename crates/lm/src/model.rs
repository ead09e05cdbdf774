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
                check_vocabulary(tokenizer.as_ref(), &cfg, &files.config.display().to_string())?;
                let weights = WeightStore::from_safetensors(&files.weights, opts.dtype, &opts.device)?;
                // A shape the config implies may be the config's fault: name it.
                let decoder =
                    Decoder::load(&cfg, &weights, opts.dtype, &opts.device).map_err(|e| match e {
                        LmError::ShapeMismatch { .. } | LmError::MissingTensor { .. } => {
                            LmError::ImpliedByConfig {
                                config: files.config.display().to_string(),
                                source: Box::new(e),
                            }
                        }
                        other => other,
                    })?;
                (decoder, tokenizer)
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
                check_vocabulary(Some(&tokenizer), &cfg, &path.display().to_string())?;
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
fn check_vocabulary(tokenizer: Option<&TextTokenizer>, cfg: &DecoderConfig, config: &str) -> Result<()> {
    match tokenizer {
        Some(tok) if tok.base_vocab_size() > cfg.vocab_size => Err(LmError::Tokenizer {
            origin: tok.origin().to_string(),
            message: format!(
                "has {} tokens but the model's vocabulary has {} (its config, {config})",
                tok.base_vocab_size(),
                cfg.vocab_size
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::testing::{random_weights, tiny_config, write_gguf, write_hf_dir};
    use crate::Family;

    /// Loads the model at `path` and runs it on a few tokens: the error, if any.
    fn load_and_run(path: &Path) -> Option<String> {
        let loaded = Model::load(&path.display().to_string(), &LoadOptions::default()).and_then(|m| {
            let batch = crate::Batch::single(&[1, 5, 9], m.decoder.device())?;
            let last = crate::HookPoint::ResidPost(m.config().num_layers.saturating_sub(1));
            m.decoder.forward(&batch, &crate::ForwardRequest::capture(&[last]))
        });
        loaded.err().map(|e| e.to_string())
    }

    #[test]
    fn fuzzed_gguf_files_give_errors_that_name_them_and_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let cfg = tiny_config(Family::Llama);
        write_gguf(&path, &cfg, &random_weights(&cfg, 1)).unwrap();
        let original = std::fs::read(&path).unwrap();
        assert_eq!(load_and_run(&path), None);
        crate::fuzz::run("gguf", &original, "m.gguf", |bytes| {
            std::fs::write(&path, bytes).unwrap();
            load_and_run(&path)
        });
    }

    #[test]
    fn fuzzed_safetensors_and_config_json_give_errors_that_name_them_and_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("hf");
        let cfg = tiny_config(Family::Qwen2);
        write_hf_dir(&model, &cfg, &random_weights(&cfg, 2), 1).unwrap();
        assert_eq!(load_and_run(&model), None);
        for file in ["model.safetensors", "config.json"] {
            let path = model.join(file);
            let original = std::fs::read(&path).unwrap();
            crate::fuzz::run(file, &original, file, |bytes| {
                std::fs::write(&path, bytes).unwrap();
                load_and_run(&model)
            });
            std::fs::write(&path, &original).unwrap();
        }
    }
}
