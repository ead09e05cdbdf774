//! Reading activations without loading them all: a [`RowSource`] is a matrix split into
//! chunks read one at a time through a memory map (a store's shards for one hook point,
//! or row ranges of a plain safetensors matrix), and [`ShuffledRows`] streams seeded,
//! shuffled batches from it through a bounded shuffle buffer.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use super::index::{StoreIndex, INDEX_FILE};
use crate::error::{io, Result, TrainError};
use bae_lm::rng::SplitMix64;

/// A row-major matrix read chunk by chunk.
pub trait RowSource: Send + Sync {
    /// Row width.
    fn dim(&self) -> usize;
    /// Total rows.
    fn rows(&self) -> u64;
    /// Number of chunks.
    fn chunks(&self) -> usize;
    /// Rows in chunk `i`.
    fn chunk_len(&self, i: usize) -> usize;
    /// The rows of chunk `i` as f32, row-major.
    fn read_chunk(&self, i: usize) -> Result<Vec<f32>>;
}

/// A borrowed source reads as the source (views such as
/// [`super::NormBoundedRows`] take their inner source by value).
impl<T: RowSource + ?Sized> RowSource for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn rows(&self) -> u64 {
        (**self).rows()
    }

    fn chunks(&self) -> usize {
        (**self).chunks()
    }

    fn chunk_len(&self, i: usize) -> usize {
        (**self).chunk_len(i)
    }

    fn read_chunk(&self, i: usize) -> Result<Vec<f32>> {
        (**self).read_chunk(i)
    }
}

/// Memory-maps a safetensors file and returns rows `[start, start + len)` of the 2-D
/// tensor `name` as f32.
fn read_rows(path: &Path, name: &str, start: usize, len: usize) -> Result<Vec<f32>> {
    let bad = |message: String| TrainError::Tensors { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(io("opening", path))?;
    // SAFETY: the file is opened read-only; stores and inputs are not modified while read.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io("mapping", path))?;
    let tensors = SafeTensors::deserialize(&mmap).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let view = tensors.tensor(name).map_err(|_| bad(format!("has no tensor `{name}`")))?;
    let [rows, dim] = view.shape() else {
        return Err(bad(format!("tensor `{name}` has shape {:?}, expected [rows, d]", view.shape())));
    };
    if start + len > *rows {
        return Err(bad(format!("tensor `{name}` has {rows} rows, asked for rows {start}..{}", start + len)));
    }
    let width = match view.dtype() {
        Dtype::F32 => 4,
        Dtype::F16 | Dtype::BF16 => 2,
        other => return Err(bad(format!("tensor `{name}` is {other:?}, expected F32, F16 or BF16"))),
    };
    let bytes = &view.data()[start * dim * width..(start + len) * dim * width];
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => {
            bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        _ => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
    };
    // NaN or infinity would silently poison training: name the first one.
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!(
            "tensor `{name}` holds {} at row {}, column {}; remove or fix that row",
            values[i],
            start + i / dim,
            i % dim
        )));
    }
    Ok(values)
}

/// Shape of a 2-D tensor in a safetensors file, read from the header only.
fn matrix_shape(path: &Path, name: &str) -> Result<(usize, usize)> {
    let bad = |message: String| TrainError::Tensors { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(io("opening", path))?;
    // SAFETY: as in `read_rows`.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io("mapping", path))?;
    let (_, meta) =
        SafeTensors::read_metadata(&mmap).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let info = meta.info(name).ok_or_else(|| {
        let mut names: Vec<String> = meta.tensors().into_keys().collect();
        names.sort();
        bad(format!("has no tensor `{name}` (it has: {})", names.join(", ")))
    })?;
    match info.shape.as_slice() {
        [rows, dim] if *rows > 0 && *dim > 0 => Ok((*rows, *dim)),
        shape => {
            Err(bad(format!("tensor `{name}` has shape {shape:?}, expected a non-empty [rows, d] matrix")))
        }
    }
}

/// An activation store opened for reading.
#[derive(Debug, Clone)]
pub struct ActivationStore {
    dir: PathBuf,
    index: StoreIndex,
}

impl ActivationStore {
    /// Opens the store in `dir` (complete or still being written).
    pub fn open(dir: &Path) -> Result<Self> {
        let index = StoreIndex::read(dir)?;
        index.check_shards(dir)?;
        Ok(Self { dir: dir.to_path_buf(), index })
    }

    /// The index.
    pub fn index(&self) -> &StoreIndex {
        &self.index
    }

    /// The rows of one hook point.
    pub fn hook(&self, hook: &str) -> Result<StoreRows> {
        if !self.index.spec.hooks.iter().any(|h| h == hook) {
            return Err(TrainError::Input(format!(
                "the store in {} has no hook point `{hook}` (it has: {})",
                self.dir.display(),
                self.index.spec.hooks.join(", ")
            )));
        }
        Ok(StoreRows { store: self.clone(), hook: hook.to_string() })
    }
}

/// One hook point of a store, chunked by shard.
#[derive(Debug, Clone)]
pub struct StoreRows {
    store: ActivationStore,
    hook: String,
}

impl RowSource for StoreRows {
    fn dim(&self) -> usize {
        self.store.index.spec.d_model
    }

    fn rows(&self) -> u64 {
        self.store.index.rows
    }

    fn chunks(&self) -> usize {
        self.store.index.shards.len()
    }

    fn chunk_len(&self, i: usize) -> usize {
        self.store.index.shards[i].rows
    }

    fn read_chunk(&self, i: usize) -> Result<Vec<f32>> {
        let shard = &self.store.index.shards[i];
        let path = self.store.dir.join(&shard.file);
        // The shard and the index disagree: either may be at fault, so name both.
        let listed = |e: TrainError| match e {
            TrainError::Tensors { path, message } => TrainError::Tensors {
                path,
                message: format!("{message}, as the store's {INDEX_FILE} lists it"),
            },
            other => other,
        };
        let data = read_rows(&path, &self.hook, 0, shard.rows).map_err(listed)?;
        if data.len() != shard.rows * self.dim() {
            return Err(listed(TrainError::Tensors {
                path,
                message: format!(
                    "tensor `{}` does not hold {} rows of width {}",
                    self.hook,
                    shard.rows,
                    self.dim()
                ),
            }));
        }
        Ok(data)
    }
}

/// A `[rows, d]` matrix in any safetensors file, read in chunks of rows.
#[derive(Debug, Clone)]
pub struct SafetensorsMatrix {
    path: PathBuf,
    name: String,
    rows: usize,
    dim: usize,
    chunk_rows: usize,
}

impl SafetensorsMatrix {
    /// Rows per chunk when reading.
    pub const CHUNK_ROWS: usize = 4096;

    /// Opens tensor `name` of `path`, which must be a non-empty f32/f16/bf16 matrix.
    pub fn open(path: &Path, name: &str) -> Result<Self> {
        let (rows, dim) = matrix_shape(path, name)?;
        read_rows(path, name, 0, 0)?; // checks the dtype now rather than mid-training
        Ok(Self { path: path.to_path_buf(), name: name.to_string(), rows, dim, chunk_rows: Self::CHUNK_ROWS })
    }
}

impl RowSource for SafetensorsMatrix {
    fn dim(&self) -> usize {
        self.dim
    }

    fn rows(&self) -> u64 {
        self.rows as u64
    }

    fn chunks(&self) -> usize {
        self.rows.div_ceil(self.chunk_rows)
    }

    fn chunk_len(&self, i: usize) -> usize {
        self.chunk_rows.min(self.rows - i * self.chunk_rows)
    }

    fn read_chunk(&self, i: usize) -> Result<Vec<f32>> {
        let start = i * self.chunk_rows;
        read_rows(&self.path, &self.name, start, self.chunk_rows.min(self.rows - start))
    }
}

/// Rows held in memory, chunked like a file (for tests and small data).
#[derive(Debug, Clone)]
pub struct InMemoryRows {
    data: Vec<f32>,
    dim: usize,
    chunk_rows: usize,
}

impl InMemoryRows {
    /// Row-major `data` of width `dim`, read in chunks of `chunk_rows`.
    pub fn new(data: Vec<f32>, dim: usize, chunk_rows: usize) -> Result<Self> {
        if dim == 0 || chunk_rows == 0 || !data.len().is_multiple_of(dim) {
            return Err(TrainError::Input(format!(
                "{} values do not form rows of width {dim} (chunks of {chunk_rows})",
                data.len()
            )));
        }
        Ok(Self { data, dim, chunk_rows })
    }
}

impl RowSource for InMemoryRows {
    fn dim(&self) -> usize {
        self.dim
    }

    fn rows(&self) -> u64 {
        (self.data.len() / self.dim) as u64
    }

    fn chunks(&self) -> usize {
        (self.rows() as usize).div_ceil(self.chunk_rows)
    }

    fn chunk_len(&self, i: usize) -> usize {
        self.chunk_rows.min(self.rows() as usize - i * self.chunk_rows)
    }

    fn read_chunk(&self, i: usize) -> Result<Vec<f32>> {
        let start = i * self.chunk_rows * self.dim;
        Ok(self.data[start..start + self.chunk_len(i) * self.dim].to_vec())
    }
}

/// Rows `[start, end)` of another source, chunked along the source's chunks (the
/// train/validation split).
pub struct RowRange<'a> {
    inner: &'a dyn RowSource,
    /// (inner chunk, first row in it, rows taken).
    pieces: Vec<(usize, usize, usize)>,
    rows: u64,
}

impl<'a> RowRange<'a> {
    /// The view; `start <= end <= inner.rows()`.
    pub fn new(inner: &'a dyn RowSource, start: u64, end: u64) -> Self {
        assert!(start <= end && end <= inner.rows(), "row range {start}..{end} outside 0..{}", inner.rows());
        let mut pieces = Vec::new();
        let mut first = 0u64;
        for chunk in 0..inner.chunks() {
            let len = inner.chunk_len(chunk) as u64;
            let (lo, hi) = (start.max(first), end.min(first + len));
            if lo < hi {
                pieces.push((chunk, (lo - first) as usize, (hi - lo) as usize));
            }
            first += len;
        }
        Self { inner, pieces, rows: end - start }
    }
}

impl RowSource for RowRange<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn chunks(&self) -> usize {
        self.pieces.len()
    }

    fn chunk_len(&self, i: usize) -> usize {
        self.pieces[i].2
    }

    fn read_chunk(&self, i: usize) -> Result<Vec<f32>> {
        let (chunk, from, len) = self.pieces[i];
        let d = self.dim();
        let data = self.inner.read_chunk(chunk)?;
        Ok(data[from * d..(from + len) * d].to_vec())
    }
}

/// Seeded, shuffled batches of rows: chunks are visited in a random order and their rows
/// poured into a buffer of at most `buffer_rows` (plus one chunk), from which rows are
/// drawn at random. Every row is returned exactly once per pass; memory is bounded by
/// the buffer, not the source.
pub struct ShuffledRows<'a> {
    source: &'a dyn RowSource,
    rng: SplitMix64,
    order: Vec<usize>,
    next_chunk: usize,
    buffer: Vec<f32>,
    buffer_rows: usize,
    batch: usize,
}

impl<'a> ShuffledRows<'a> {
    /// One pass over `source` in batches of `batch` rows (the last may be smaller), each
    /// row-major `[rows, d]`.
    pub fn new(source: &'a dyn RowSource, batch: usize, buffer_rows: usize, seed: u64) -> Result<Self> {
        if batch == 0 || buffer_rows == 0 {
            return Err(TrainError::Input(format!(
                "batch ({batch}) and shuffle buffer ({buffer_rows}) must be at least 1 row"
            )));
        }
        let mut rng = SplitMix64::new(seed);
        let mut order: Vec<usize> = (0..source.chunks()).collect();
        rng.shuffle(&mut order);
        Ok(Self { source, rng, order, next_chunk: 0, buffer: Vec::new(), buffer_rows, batch })
    }

    fn rows_buffered(&self) -> usize {
        self.buffer.len() / self.source.dim()
    }

    fn refill(&mut self) -> Result<()> {
        while self.rows_buffered() < self.buffer_rows && self.next_chunk < self.order.len() {
            let chunk = self.source.read_chunk(self.order[self.next_chunk])?;
            self.next_chunk += 1;
            self.buffer.extend_from_slice(&chunk);
        }
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Option<Vec<f32>>> {
        self.refill()?;
        let available = self.rows_buffered();
        if available == 0 {
            return Ok(None);
        }
        let d = self.source.dim();
        let n = self.batch.min(available);
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            // Take a random row and move the buffer's last row into its place.
            let rows = self.rows_buffered();
            let pick = self.rng.below(rows);
            out.extend_from_slice(&self.buffer[pick * d..(pick + 1) * d]);
            let last = (rows - 1) * d;
            if pick * d != last {
                self.buffer.copy_within(last..last + d, pick * d);
            }
            self.buffer.truncate(last);
        }
        Ok(Some(out))
    }
}

impl Iterator for ShuffledRows<'_> {
    type Item = Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}
