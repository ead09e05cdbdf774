//! Harvesting: documents → windows → hooked forward passes in batches → rows in an
//! activation store. The row stream is deterministic (same corpus, model and settings
//! give the same rows in the same batches), which is what makes `--resume` produce a
//! store identical to an uninterrupted run: batches whose rows are all stored are
//! skipped without running the model, and the batch that straddles the end is run in
//! full and its first rows dropped.

mod windows;

use std::time::{Duration, Instant};

use bae_lm::{Batch, ForwardRequest, HookPoint, Model, Padding};
use bae_train::store::{RowBatch, StoreDtype, StoreWriter};
use candle_core::{DType, Tensor};

pub use windows::{Window, WindowPlan, PIECE_BYTES};

use crate::error::{DynamicsError, Result};
use crate::input::corpus::Corpus;

/// What to harvest and how.
#[derive(Debug, Clone)]
pub struct HarvestSettings {
    /// Hook points, in the store's order.
    pub hooks: Vec<HookPoint>,
    /// Windows per forward pass.
    pub batch: usize,
    /// Windowing.
    pub windows: WindowPlan,
    /// Store the attention-sink rows too: position 0 of every window and every row of
    /// the BOS token (`bos`). By default they are left out (see
    /// [`bae_train::store::SinkHandling`]); the model sees those tokens either way.
    pub keep_sinks: bool,
    /// The BOS token id, whose rows are sinks wherever they occur.
    pub bos: Option<u32>,
    /// Storage dtype.
    pub dtype: StoreDtype,
}

/// Where a harvest stands, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Rows in the store (including those of an earlier, resumed run).
    pub rows: u64,
    /// Rows the store will hold when done (the corpus may run out first).
    pub rows_target: u64,
    /// Tokens run through the model in this run.
    pub tokens_run: u64,
    /// Time since this run started.
    pub elapsed: Duration,
}

/// What a finished harvest did.
#[derive(Debug, Clone, Copy)]
pub struct HarvestSummary {
    /// Rows in the store.
    pub rows: u64,
    /// Tokens run through the model in this run (padding excluded).
    pub tokens_run: u64,
    /// Documents read (in this run, including ones skipped on resume).
    pub documents: u64,
    /// Whether the corpus ran out before the token target.
    pub corpus_exhausted: bool,
}

/// Runs the harvest into `writer` (fresh or resumed) and finishes the store.
pub fn harvest(
    model: &Model,
    corpus: &Corpus,
    settings: &HarvestSettings,
    mut writer: StoreWriter,
    progress: &mut dyn FnMut(Progress),
) -> Result<HarvestSummary> {
    settings.windows.validate()?;
    if settings.batch == 0 {
        return Err(DynamicsError::Input("batch must be at least 1 window".into()));
    }
    let tokenizer = model.tokenizer()?;
    let start = Instant::now();
    let rows_target = writer.spec().tokens;
    let mut to_skip = writer.rows();
    let mut summary =
        HarvestSummary { rows: writer.rows(), tokens_run: 0, documents: 0, corpus_exhausted: false };
    let mut pending: Vec<Window> = Vec::with_capacity(settings.batch);
    let mut documents = corpus.documents()?;
    loop {
        if writer.rows_wanted() == 0 {
            break;
        }
        // Fill a batch of windows; documents may span batches.
        while pending.len() < settings.batch {
            match documents.next() {
                Some(doc) => {
                    summary.documents += 1;
                    let doc = doc?;
                    // No document needs more tokens than the store still wants.
                    let wanted = usize::try_from(writer.rows_wanted()).unwrap_or(usize::MAX);
                    pending.extend(settings.windows.first_windows(
                        &doc,
                        tokenizer,
                        wanted.saturating_add(to_skip as usize),
                    )?);
                }
                None => break,
            }
        }
        if pending.is_empty() {
            summary.corpus_exhausted = true;
            break;
        }
        let take = pending.len().min(settings.batch);
        let batch: Vec<Window> = pending.drain(..take).collect();
        let rows_in_batch: u64 = batch.iter().map(|w| stored_positions(w, settings).len() as u64).sum();
        if rows_in_batch <= to_skip {
            // Stored by the run being resumed (or nothing to store: sinks only).
            to_skip -= rows_in_batch;
            continue;
        }
        let mut rows = run_batch(model, &batch, settings)?;
        summary.tokens_run += batch.iter().map(|w| w.tokens.len() as u64).sum::<u64>();
        if to_skip > 0 {
            let skip = to_skip as usize;
            rows = rows.narrow(skip, rows.rows() - skip)?;
            to_skip = 0;
        }
        writer.push(rows)?;
        summary.rows = writer.rows();
        progress(Progress {
            rows: summary.rows,
            rows_target,
            tokens_run: summary.tokens_run,
            elapsed: start.elapsed(),
        });
    }
    if summary.rows == 0 && summary.corpus_exhausted {
        return Err(DynamicsError::Input(format!(
            "corpus {} has no text to harvest (every document is empty{})",
            corpus.path().display(),
            if settings.keep_sinks {
                ""
            } else {
                " or holds only a window's first token, an attention sink left out without --keep-sinks"
            }
        )));
    }
    let index = writer.finish()?;
    summary.rows = index.rows;
    Ok(summary)
}

/// Positions of a window whose rows are stored: all of them with `keep_sinks`, else all
/// but position 0 and the BOS token's.
fn stored_positions(window: &Window, settings: &HarvestSettings) -> Vec<usize> {
    (0..window.tokens.len())
        .filter(|&p| settings.keep_sinks || (p > 0 && Some(window.tokens[p]) != settings.bos))
        .collect()
}

/// One forward pass over a batch of windows, giving its rows for every hook point.
fn run_batch(model: &Model, windows: &[Window], settings: &HarvestSettings) -> Result<RowBatch> {
    let sequences: Vec<Vec<u32>> = windows.iter().map(|w| w.tokens.clone()).collect();
    let batch = Batch::new(&sequences, 0, Padding::Right, model.decoder.device())?;
    let out = model.decoder.forward(&batch, &ForwardRequest::capture(&settings.hooks))?;
    let mut rows =
        RowBatch { activations: Vec::new(), doc: vec![], window: vec![], position: vec![], token_id: vec![] };
    let kept: Vec<Vec<usize>> = windows.iter().map(|w| stored_positions(w, settings)).collect();
    for (w, positions) in windows.iter().zip(&kept) {
        for &position in positions {
            rows.doc.push(w.doc);
            rows.window.push(w.window);
            rows.position.push(position as u32);
            rows.token_id.push(w.tokens[position]);
        }
    }
    for hook in &settings.hooks {
        let acts = &out.activations[hook];
        let mut pieces = Vec::with_capacity(windows.len());
        for (b, positions) in kept.iter().enumerate() {
            if positions.is_empty() {
                continue;
            }
            let unpadded = batch.unpad(acts, b)?;
            // Almost always one contiguous run (1..len); a BOS token inside a
            // window splits it.
            let index: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
            let index = Tensor::from_vec(index, positions.len(), unpadded.device())?;
            pieces.push(unpadded.index_select(&index, 0)?);
        }
        let matrix = Tensor::cat(&pieces, 0)?;
        refuse_non_finite(&matrix, hook, &rows)?;
        rows.activations.push(to_store_dtype(&matrix, settings.dtype, hook)?);
    }
    Ok(rows)
}

/// Refuses a NaN or infinite activation, naming the document and position it came from
/// (`rows` lists the matrix's rows in order): stored, it would poison every statistic
/// computed from the store.
fn refuse_non_finite(matrix: &Tensor, hook: &HookPoint, rows: &RowBatch) -> Result<()> {
    let (_, d) = matrix.dims2()?;
    let values = matrix.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let r = i / d;
        return Err(DynamicsError::Input(format!(
            "{hook} gives {} for document {} of the corpus (0-based), window {}, position {}: the model's \
             activations are not finite there; check the model file and its dtype",
            values[i], rows.doc[r], rows.window[r], rows.position[r]
        )));
    }
    Ok(())
}

/// Converts to the storage dtype, refusing values f16 cannot hold rather than storing
/// infinities.
fn to_store_dtype(matrix: &Tensor, dtype: StoreDtype, hook: &HookPoint) -> Result<Tensor> {
    if dtype == StoreDtype::F16 {
        let largest = matrix.to_dtype(DType::F32)?.abs()?.max_all()?.to_scalar::<f32>()?;
        if largest > f32::from(half::f16::MAX) {
            return Err(DynamicsError::Input(format!(
                "{hook} reaches |x| = {largest:.0}, beyond f16's range (65504); store as bf16 or f32 (--dtype)"
            )));
        }
    }
    Ok(matrix.to_dtype(dtype.candle())?)
}

#[cfg(test)]
mod tests;
