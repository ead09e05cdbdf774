//! Text to token ids: a Hugging Face `tokenizer.json`, or a byte-level BPE tokenizer
//! rebuilt from GGUF metadata (`tokenizer.ggml.*`) when no tokenizer.json is given.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{LmError, Result};
use crate::gguf::GgufFile;

/// Llama 3's pre-tokenizer pattern (llama.cpp `llama-bpe`).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer with the model's convention on beginning-of-sequence tokens.
pub struct TextTokenizer {
    inner: Tokenizer,
    /// BOS to prepend ourselves: set for GGUF tokenizers whose metadata asks for it
    /// (tokenizer.json files carry their own post-processor instead).
    manual_bos: Option<u32>,
    bos_id: Option<u32>,
    origin: String,
}

impl TextTokenizer {
    /// Loads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path, bos_id: Option<u32>) -> Result<Self> {
        let origin = path.display().to_string();
        if !path.is_file() {
            return Err(LmError::MissingFile { path: path.to_path_buf(), what: "tokenizer".into() });
        }
        let inner = Tokenizer::from_file(path).map_err(|e| LmError::Tokenizer {
            origin: origin.clone(),
            message: format!("not a valid tokenizer.json: {e}"),
        })?;
        Ok(Self { inner, manual_bos: None, bos_id, origin })
    }

    /// Rebuilds the tokenizer stored in a GGUF file's metadata (byte-level BPE only).
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let origin = gguf.path().display().to_string();
        let err = |message: String| LmError::Tokenizer { origin: origin.clone(), message };
        let model = gguf.meta_str("tokenizer.ggml.model")?.unwrap_or("<missing>");
        if model != "gpt2" {
            return Err(err(format!(
                "tokenizer.ggml.model = {model:?}; only byte-level BPE (\"gpt2\") can be rebuilt from GGUF, \
                 pass the model's tokenizer.json with --tokenizer or put it beside the GGUF file"
            )));
        }
        let tokens = gguf
            .meta_strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| err("metadata `tokenizer.ggml.tokens` is missing".into()))?;
        let merges = gguf
            .meta_strings("tokenizer.ggml.merges")?
            .ok_or_else(|| err("metadata `tokenizer.ggml.merges` is missing".into()))?;
        let types = gguf.meta_ints("tokenizer.ggml.token_type")?.unwrap_or_default();
        let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
        let merges = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| err(format!("merge {i} ({m:?}) is not two tokens separated by a space")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| err(format!("cannot build BPE: {e}")))?;
        let byte_level = ByteLevel::new(false, true, true);
        let pre = gguf.meta_str("tokenizer.ggml.pre")?.unwrap_or("default");
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            "default" | "gpt2" => byte_level.into(),
            "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            "llama-bpe" | "llama3" => {
                let split = Split::new(
                    SplitPattern::Regex(LLAMA3_PATTERN.into()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| err(format!("cannot build the llama3 pre-tokenizer: {e}")))?;
                Sequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]).into()
            }
            other => {
                return Err(err(format!(
                    "tokenizer.ggml.pre = {other:?} is not supported (expected gpt2, smollm or llama-bpe); \
                     pass the model's tokenizer.json with --tokenizer or put it beside the GGUF file"
                )))
            }
        };
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        // Control (3) and user-defined (4) tokens are matched whole, before BPE.
        let specials: Vec<AddedToken> = types
            .iter()
            .enumerate()
            .filter(|(_, &t)| t == 3 || t == 4)
            .filter_map(|(i, _)| tokens.get(i))
            .map(|t| AddedToken::from(t.to_string(), true))
            .collect();
        inner.add_special_tokens(specials).map_err(|e| err(format!("cannot add special tokens: {e}")))?;
        let bos_id = gguf.meta_usize("tokenizer.ggml.bos_token_id")?.map(|v| v as u32);
        let add_bos = gguf.meta_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
        Ok(Self { inner, manual_bos: if add_bos { bos_id } else { None }, bos_id, origin })
    }

    /// Where the tokenizer came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Tokenizes `text`. With `specials`, the model's own convention applies (e.g. a BOS
    /// for Llama 3, none for SmolLM2); without, no special token is added.
    pub fn encode(&self, text: &str, specials: bool) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, specials).map_err(|e| LmError::Tokenizer {
            origin: self.origin.clone(),
            message: format!("cannot encode {text:?}: {e}"),
        })?;
        let mut ids = enc.get_ids().to_vec();
        if let (true, Some(bos)) = (specials, self.manual_bos) {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Whether [`encode`](Self::encode) with `specials` prepends a BOS token.
    pub fn adds_bos(&self) -> Result<bool> {
        let with = self.encode("a", true)?;
        let without = self.encode("a", false)?;
        Ok(with.len() > without.len() && Some(with[0]) == self.bos_id)
    }

    /// The BOS token id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Turns ids back into text (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| LmError::Tokenizer {
            origin: self.origin.clone(),
            message: format!("cannot decode: {e}"),
        })
    }

    /// Number of tokens including added ones.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Number of tokens of the underlying model, without added tokens.
    pub fn base_vocab_size(&self) -> usize {
        self.inner.get_vocab_size(false)
    }

    /// The underlying Hugging Face tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
