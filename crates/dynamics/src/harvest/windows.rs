//! Cutting tokenized documents into the windows fed to the model: consecutive,
//! non-overlapping pieces of at most `context_length` tokens, each starting with the
//! model's BOS token when its tokenizer adds one (Gemma's activations are meaningless
//! without it).

use bae_lm::TextTokenizer;

use crate::error::{DynamicsError, Result};
use crate::input::corpus::Document;

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

    /// The windows of one document's first `max_tokens` content tokens (at least; whole
    /// pieces are tokenized). A document over [`PIECE_BYTES`] is tokenized piece by
    /// piece, so a corpus of one huge line costs what its first windows cost.
    pub fn first_windows(
        &self,
        doc: &Document,
        tokenizer: &TextTokenizer,
        max_tokens: usize,
    ) -> Result<Vec<Window>> {
        let doc_index = u32::try_from(doc.index).map_err(|_| {
            DynamicsError::Input(format!(
                "document {} is beyond the 2^32 documents a store can index",
                doc.index
            ))
        })?;
        let mut ids = Vec::new();
        for piece in pieces(&doc.text) {
            if ids.len() >= max_tokens {
                break;
            }
            ids.extend(tokenizer.encode(piece, false)?);
        }
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

/// Documents longer than this many bytes are tokenized in pieces of at most this size.
pub const PIECE_BYTES: usize = 1 << 20;

/// `text` cut into pieces of at most [`PIECE_BYTES`], each cut placed before a
/// whitespace character where the piece's second half has one (so words stay whole and
/// byte-level BPE, which starts a word with its space, tokenizes them as in one piece),
/// else at a character boundary. A text that fits is one piece, tokenized as before.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > PIECE_BYTES {
        let mut end = PIECE_BYTES;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let cut = rest[PIECE_BYTES / 2..end]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, _)| PIECE_BYTES / 2 + i)
            .filter(|&i| i > 0 && rest.is_char_boundary(i))
            .unwrap_or(end);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_before_whitespace_into_bounded_pieces_that_rejoin() {
        assert_eq!(pieces("a short document"), ["a short document"]);
        let text = "word ".repeat(3 * PIECE_BYTES / 5 + 7) + "é".repeat(PIECE_BYTES).as_str();
        let cut = pieces(&text);
        assert!(cut.len() >= 4, "{} pieces", cut.len());
        assert!(cut.iter().all(|p| !p.is_empty() && p.len() <= PIECE_BYTES));
        assert_eq!(cut.concat(), text);
        // Within the words every piece after the first starts at a space.
        assert!(cut[1].starts_with(' ') && cut[2].starts_with(' '), "{:?}", &cut[1][..8]);
    }
}
