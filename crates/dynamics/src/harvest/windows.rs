//! Cutting tokenized documents into the windows fed to the model: consecutive,
//! non-overlapping pieces of at most `context_length` tokens, each starting with the
//! model's BOS token when its tokenizer adds one (Gemma's activations are meaningless
//! without it).

use bae_lm::TextTokenizer;

use crate::corpus::Document;
use crate::error::{DynamicsError, Result};

/// One window as fed to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Index of the document in the corpus.
    pub doc: u32,
    /// Which window of the document (0 = its start).
    pub window: u32,
    /// Token ids, BOS first when `bos`.
    pub tokens: Vec<u32>,
    /// Whether `tokens[0]` is a prepended BOS.
    pub bos: bool,
}

/// How documents become windows.
#[derive(Debug, Clone, Copy)]
pub struct WindowPlan {
    /// Longest window in tokens, BOS included.
    pub context_length: usize,
    /// The BOS id to prepend to every window, if any.
    pub bos: Option<u32>,
}

impl WindowPlan {
    /// Content tokens per window.
    fn content(&self) -> usize {
        self.context_length - usize::from(self.bos.is_some())
    }

    /// Checks the plan leaves room for content.
    pub fn validate(&self) -> Result<()> {
        if self.context_length < 1 + usize::from(self.bos.is_some()) {
            return Err(DynamicsError::Input(format!(
                "context length {} leaves no room for text{}",
                self.context_length,
                if self.bos.is_some() { " after the BOS token" } else { "" }
            )));
        }
        Ok(())
    }

    /// The windows of one document.
    pub fn windows(&self, doc: &Document, tokenizer: &TextTokenizer) -> Result<Vec<Window>> {
        let doc_index = u32::try_from(doc.index).map_err(|_| {
            DynamicsError::Input(format!(
                "document {} is beyond the 2^32 documents a store can index",
                doc.index
            ))
        })?;
        let ids = tokenizer.encode(&doc.text, false)?;
        Ok(ids
            .chunks(self.content())
            .enumerate()
            .map(|(w, piece)| {
                let mut tokens = Vec::with_capacity(piece.len() + 1);
                tokens.extend(self.bos);
                tokens.extend_from_slice(piece);
                Window { doc: doc_index, window: w as u32, tokens, bos: self.bos.is_some() }
            })
            .collect())
    }
}
