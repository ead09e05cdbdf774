//! Rows multiplied by one constant: what an autoencoder trains on when its inputs are
//! normalised (see [`crate::bae::normalize`]).

use super::RowSource;
use crate::error::Result;

/// Every value of `inner` times `scale`, chunked as `inner`.
pub struct ScaledRows<'a> {
    inner: &'a dyn RowSource,
    scale: f32,
}

impl<'a> ScaledRows<'a> {
    /// The view of `inner` scaled by `scale`.
    pub fn new(inner: &'a dyn RowSource, scale: f32) -> Self {
        Self { inner, scale }
    }
}

impl RowSource for ScaledRows<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn rows(&self) -> u64 {
        self.inner.rows()
    }

    fn chunks(&self) -> usize {
        self.inner.chunks()
    }

    fn chunk_len(&self, i: usize) -> usize {
        self.inner.chunk_len(i)
    }

    fn read_chunk(&self, i: usize) -> Result<Vec<f32>> {
        let mut data = self.inner.read_chunk(i)?;
        if self.scale != 1.0 {
            data.iter_mut().for_each(|x| *x *= self.scale);
        }
        Ok(data)
    }
}
