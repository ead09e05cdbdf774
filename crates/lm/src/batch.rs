//! A padded batch of token sequences with its attention mask and per-token positions.

use candle_core::{Device, Tensor};

use crate::error::{LmError, Result};

/// Which side of a shorter sequence receives the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pad at the end (real tokens keep columns `0..len`).
    Right,
    /// Pad at the start (every sequence ends in the last column, handy for next-token reads).
    Left,
}

/// Token ids of several sequences, padded to one length.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Token ids, `[batch, seq]`, u32.
    pub input_ids: Tensor,
    /// `mask[b * seq + t]` is true where column `t` of row `b` is a real token.
    pub mask: Vec<bool>,
    /// Position of each token in its own sequence (0 for padding), row-major.
    pub positions: Vec<u32>,
    /// Number of rows.
    pub batch: usize,
    /// Padded length.
    pub seq: usize,
    /// Real length of each row.
    pub lengths: Vec<usize>,
    /// Side the padding is on.
    pub padding: Padding,
}

impl Batch {
    /// Pads `sequences` with `pad_id` on the given side. Empty sequences are refused.
    pub fn new(sequences: &[Vec<u32>], pad_id: u32, padding: Padding, device: &Device) -> Result<Self> {
        if sequences.is_empty() {
            return Err(LmError::Input("a batch needs at least one sequence".into()));
        }
        if let Some(i) = sequences.iter().position(Vec::is_empty) {
            return Err(LmError::Input(format!("sequence {i} of the batch has no tokens")));
        }
        let batch = sequences.len();
        let seq = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch * seq);
        let mut mask = Vec::with_capacity(batch * seq);
        let mut positions = Vec::with_capacity(batch * seq);
        for s in sequences {
            let pad = seq - s.len();
            let (before, after) = match padding {
                Padding::Right => (0, pad),
                Padding::Left => (pad, 0),
            };
            ids.extend(std::iter::repeat_n(pad_id, before));
            mask.extend(std::iter::repeat_n(false, before));
            positions.extend(std::iter::repeat_n(0, before));
            ids.extend_from_slice(s);
            mask.extend(std::iter::repeat_n(true, s.len()));
            positions.extend(0..s.len() as u32);
            ids.extend(std::iter::repeat_n(pad_id, after));
            mask.extend(std::iter::repeat_n(false, after));
            positions.extend(std::iter::repeat_n(0, after));
        }
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (batch, seq), device)?,
            mask,
            positions,
            batch,
            seq,
            lengths: sequences.iter().map(Vec::len).collect(),
            padding,
        })
    }

    /// A batch of one unpadded sequence.
    pub fn single(tokens: &[u32], device: &Device) -> Result<Self> {
        Self::new(&[tokens.to_vec()], 0, Padding::Right, device)
    }

    /// Column of token `t` of row `b` in the padded batch.
    pub fn column(&self, b: usize, t: usize) -> usize {
        match self.padding {
            Padding::Right => t,
            Padding::Left => self.seq - self.lengths[b] + t,
        }
    }

    /// Whether any row is padded.
    pub fn is_padded(&self) -> bool {
        self.lengths.iter().any(|&l| l != self.seq)
    }

    /// The rows of a `[batch, seq, ...]` tensor for row `b`'s real tokens: `[len, ...]`.
    pub fn unpad(&self, tensor: &Tensor, b: usize) -> Result<Tensor> {
        let start = self.column(b, 0);
        Ok(tensor.get(b)?.narrow(0, start, self.lengths[b])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_and_right_padding_place_tokens_and_positions() {
        let seqs = vec![vec![5, 6, 7], vec![8]];
        let right = Batch::new(&seqs, 0, Padding::Right, &Device::Cpu).unwrap();
        assert_eq!(right.input_ids.to_vec2::<u32>().unwrap(), vec![vec![5, 6, 7], vec![8, 0, 0]]);
        assert_eq!(right.positions, vec![0, 1, 2, 0, 0, 0]);
        assert_eq!(right.mask, vec![true, true, true, true, false, false]);
        let left = Batch::new(&seqs, 0, Padding::Left, &Device::Cpu).unwrap();
        assert_eq!(left.input_ids.to_vec2::<u32>().unwrap(), vec![vec![5, 6, 7], vec![0, 0, 8]]);
        assert_eq!(left.positions, vec![0, 1, 2, 0, 0, 0]);
        assert_eq!(left.column(1, 0), 2);
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(Batch::new(&[], 0, Padding::Right, &Device::Cpu).is_err());
        assert!(Batch::new(&[vec![1], vec![]], 0, Padding::Right, &Device::Cpu).is_err());
    }
}
