//! Rows whose Euclidean norm is at most a bound: what an autoencoder trains on once the
//! massive activations are left out (see [`crate::config::TrainConfig::outlier_norm_ratio`]).
//!
//! A few tokens of a language model's residual stream carry norms hundreds of times the
//! median (attention sinks beyond position 0: in SmolLM2 the first newline of a window,
//! at position 1, reaches 170x the median at block 14). Fifteen such rows in 125,000
//! held 70% of that hook's variance, so an autoencoder trained with them spends its
//! capacity reconstructing them and fails on every other row.

use super::RowSource;
use crate::error::Result;

/// The rows of `inner` with a norm at most the bound, chunked as `inner` (a chunk may
/// keep none of its rows).
pub struct NormBoundedRows<S> {
    inner: S,
    /// Per chunk of `inner`, the indices of the rows kept; `None` keeps every row.
    kept: Option<Vec<Vec<u32>>>,
    rows: u64,
}

impl<S: RowSource> NormBoundedRows<S> {
    /// The view of `inner` without the rows whose norm exceeds `bound` (None keeps every
    /// row and reads nothing). Reads `inner` once when there is a bound.
    pub fn new(inner: S, bound: Option<f32>) -> Result<Self> {
        let Some(bound) = bound else {
            let rows = inner.rows();
            return Ok(Self { inner, kept: None, rows });
        };
        let d = inner.dim();
        let mut kept = Vec::with_capacity(inner.chunks());
        let mut rows = 0u64;
        for chunk in 0..inner.chunks() {
            let data = inner.read_chunk(chunk)?;
            let keep: Vec<u32> = data
                .chunks(d)
                .enumerate()
                .filter(|(_, row)| squared_norm(row) <= (bound as f64).powi(2))
                .map(|(i, _)| i as u32)
                .collect();
            rows += keep.len() as u64;
            kept.push(keep);
        }
        Ok(Self { inner, kept: Some(kept), rows })
    }

    /// Rows of `inner` left out.
    pub fn excluded(&self) -> u64 {
        self.inner.rows() - self.rows
    }
}

impl<S: RowSource> RowSource for NormBoundedRows<S> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn chunks(&self) -> usize {
        self.inner.chunks()
    }

    fn chunk_len(&self, i: usize) -> usize {
        match &self.kept {
            Some(kept) => kept[i].len(),
            None => self.inner.chunk_len(i),
        }
    }

    fn read_chunk(&self, i: usize) -> Result<Vec<f32>> {
        let data = self.inner.read_chunk(i)?;
        let Some(kept) = &self.kept else { return Ok(data) };
        if kept[i].len() == self.inner.chunk_len(i) {
            return Ok(data);
        }
        let d = self.inner.dim();
        Ok(kept[i].iter().flat_map(|&r| &data[r as usize * d..(r as usize + 1) * d]).copied().collect())
    }
}

fn squared_norm(row: &[f32]) -> f64 {
    row.iter().map(|&x| (x as f64) * (x as f64)).sum()
}

/// The median Euclidean norm of the rows of `source` (0 for no rows). Holds one f32 per
/// row.
pub fn median_row_norm(source: &dyn RowSource) -> Result<f32> {
    let d = source.dim();
    let mut norms = Vec::with_capacity(source.rows() as usize);
    for chunk in 0..source.chunks() {
        norms.extend(source.read_chunk(chunk)?.chunks(d).map(|row| squared_norm(row).sqrt() as f32));
    }
    if norms.is_empty() {
        return Ok(0.0);
    }
    let mid = norms.len() / 2;
    let (_, median, _) = norms.select_nth_unstable_by(mid, f32::total_cmp);
    Ok(*median)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InMemoryRows;

    #[test]
    fn rows_above_the_bound_are_left_out_in_order_and_counted() {
        // Rows of norm 1, 2, ..., 10 (one nonzero coordinate), three to a chunk.
        let data: Vec<f32> = (1..=10).flat_map(|i| [i as f32, 0.0]).collect();
        let rows = InMemoryRows::new(data, 2, 3).unwrap();
        assert_eq!(median_row_norm(&rows).unwrap(), 6.0);
        let bounded = NormBoundedRows::new(&rows, Some(4.5)).unwrap();
        assert_eq!((bounded.rows(), bounded.excluded(), bounded.chunks()), (4, 6, 4));
        let kept: Vec<f32> = (0..bounded.chunks())
            .flat_map(|c| {
                assert_eq!(bounded.read_chunk(c).unwrap().len(), bounded.chunk_len(c) * 2);
                bounded.read_chunk(c).unwrap()
            })
            .collect();
        assert_eq!(kept, vec![1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0]);
        let all = NormBoundedRows::new(&rows, None).unwrap();
        assert_eq!((all.rows(), all.excluded(), all.read_chunk(3).unwrap()), (10, 0, vec![10.0, 0.0]));
    }
}
