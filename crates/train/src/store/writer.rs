//! Writing a store incrementally: rows are buffered until a shard is full, and a
//! background thread serializes it, flushes it to disk under a temporary name, renames
//! it, and only then lists it in the index. A killed run therefore leaves complete
//! shards and an index that lists exactly those; `resume` continues after them.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use candle_core::{Device, Tensor};

use super::index::{ShardEntry, StoreIndex, StoreSpec, INDEX_FILE};
use crate::error::{io, Result, TrainError};
use crate::lock::{is_bookkeeping, FolderLock, LOCK_FILE};

/// A batch of rows for every hook point, plus where each row came from.
#[derive(Debug, Clone)]
pub struct RowBatch {
    /// One `[rows, d_model]` tensor per hook point, in the spec's hook order and dtype.
    pub activations: Vec<Tensor>,
    /// Document index of each row.
    pub doc: Vec<u32>,
    /// Window of the document.
    pub window: Vec<u32>,
    /// Position in the window.
    pub position: Vec<u32>,
    /// Token id at that position.
    pub token_id: Vec<u32>,
}

impl RowBatch {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.doc.len()
    }

    /// Rows `[start, start + len)`.
    pub fn narrow(&self, start: usize, len: usize) -> Result<RowBatch> {
        let slice = |v: &Vec<u32>| v[start..start + len].to_vec();
        Ok(RowBatch {
            activations: self
                .activations
                .iter()
                .map(|t| t.narrow(0, start, len))
                .collect::<candle_core::Result<_>>()?,
            doc: slice(&self.doc),
            window: slice(&self.window),
            position: slice(&self.position),
            token_id: slice(&self.token_id),
        })
    }
}

/// The file name of shard `n`.
pub fn shard_file_name(n: usize) -> String {
    format!("shard-{n:05}.safetensors")
}

enum Job {
    Shard { file: String, rows: usize, tensors: Vec<(String, Tensor)> },
    Finish,
}

/// Appends rows to a store directory, shard by shard.
pub struct StoreWriter {
    dir: PathBuf,
    spec: StoreSpec,
    pending: Vec<RowBatch>,
    pending_rows: usize,
    /// Rows already in listed shards when this writer started, plus rows handed over since.
    rows_accepted: u64,
    next_shard: usize,
    jobs: Option<SyncSender<Job>>,
    worker: Option<JoinHandle<Result<StoreIndex>>>,
    /// What to remove if this writer is dropped unfinished before its first shard:
    /// `Some(true)` for a store it created in a directory it created, `Some(false)` in
    /// an existing empty directory, None for a resumed store (never removed).
    created: Option<bool>,
    /// Held until the writer is dropped: no other process writes the store meanwhile.
    lock: FolderLock,
}

impl StoreWriter {
    /// Starts a new store in `dir` (created if needed) and locks it. Refuses a directory
    /// that already holds a store (same or different), unrelated files, or another
    /// writer.
    pub fn create(dir: &Path, spec: StoreSpec) -> Result<Self> {
        // Checked before the lock too, so that a refused folder is left untouched.
        refuse_existing(dir, &spec)?;
        let dir_existed = dir.exists();
        let lock = FolderLock::acquire(dir)?;
        // Again under the lock: another writer may have started in between.
        refuse_existing(dir, &spec)?;
        let index = StoreIndex::new(spec);
        index.write(dir)?;
        let mut writer = Self::start(dir, index, lock);
        writer.created = Some(!dir_existed);
        Ok(writer)
    }

    /// Continues the store in `dir`, which must have been made with exactly `spec`.
    /// Half-written shards of the killed run are deleted; listed shards are kept.
    pub fn resume(dir: &Path, spec: StoreSpec) -> Result<Self> {
        if !dir.join(INDEX_FILE).exists() {
            return Err(TrainError::NothingToResume { dir: dir.to_path_buf() });
        }
        // Checked before the lock too, so that a refused folder is left untouched, and
        // again under it, in case another writer moved the store on in between.
        same_store(dir, &spec)?;
        let lock = FolderLock::acquire(dir)?;
        let index = same_store(dir, &spec)?;
        index.check_shards(dir)?;
        // Safe under the lock: no live writer owns them.
        crate::files::remove_partials(&lock)?;
        Ok(Self::start(dir, index, lock))
    }

    fn start(dir: &Path, index: StoreIndex, lock: FolderLock) -> Self {
        // One shard in the channel and one being written: disk work overlaps the model's
        // forward passes while memory stays at a few shards.
        let (tx, rx) = sync_channel(1);
        let worker_dir = dir.to_path_buf();
        let spec = index.spec.clone();
        let rows_accepted = index.rows;
        let next_shard = index.shards.len();
        let worker = std::thread::spawn(move || write_shards(&worker_dir, index, rx));
        Self {
            dir: dir.to_path_buf(),
            spec,
            pending: Vec::new(),
            pending_rows: 0,
            rows_accepted,
            next_shard,
            jobs: Some(tx),
            worker: Some(worker),
            created: None,
            lock,
        }
    }

    /// The store's spec.
    pub fn spec(&self) -> &StoreSpec {
        &self.spec
    }

    /// Rows stored or queued so far, including those of earlier runs.
    pub fn rows(&self) -> u64 {
        self.rows_accepted + self.pending_rows as u64
    }

    /// Rows the store still needs to reach the spec's token count.
    pub fn rows_wanted(&self) -> u64 {
        self.spec.tokens.saturating_sub(self.rows())
    }

    /// Adds rows; full shards are handed to the writer thread. Rows beyond the spec's
    /// token count are dropped.
    pub fn push(&mut self, batch: RowBatch) -> Result<()> {
        if batch.activations.len() != self.spec.hooks.len() {
            return Err(TrainError::Input(format!(
                "row batch has {} activation tensors, the store has {} hook points",
                batch.activations.len(),
                self.spec.hooks.len()
            )));
        }
        let keep = (batch.rows() as u64).min(self.rows_wanted()) as usize;
        if keep == 0 {
            return Ok(());
        }
        let batch = if keep < batch.rows() { batch.narrow(0, keep)? } else { batch };
        self.pending_rows += batch.rows();
        self.pending.push(batch);
        while self.pending_rows >= self.spec.shard_rows {
            self.flush_shard(self.spec.shard_rows)?;
        }
        Ok(())
    }

    fn flush_shard(&mut self, rows: usize) -> Result<()> {
        let merged = merge(&self.pending)?;
        let shard = merged.narrow(0, rows)?;
        let rest = merged.rows() - rows;
        self.pending = if rest > 0 { vec![merged.narrow(rows, rest)?] } else { Vec::new() };
        self.pending_rows = rest;
        let mut tensors: Vec<(String, Tensor)> = self
            .spec
            .hooks
            .iter()
            .cloned()
            .zip(shard.activations.iter().map(|t| t.contiguous()))
            .map(|(h, t)| t.map(|t| (h, t)))
            .collect::<candle_core::Result<_>>()?;
        for (name, values) in [
            ("doc", &shard.doc),
            ("window", &shard.window),
            ("position", &shard.position),
            ("token_id", &shard.token_id),
        ] {
            tensors.push((name.to_string(), Tensor::new(values.as_slice(), &Device::Cpu)?));
        }
        let job = Job::Shard { file: shard_file_name(self.next_shard), rows, tensors };
        self.next_shard += 1;
        self.rows_accepted += rows as u64;
        self.send(job)
    }

    fn send(&mut self, job: Job) -> Result<()> {
        let sent = self.jobs.as_ref().map(|tx| tx.send(job).is_ok()).unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The worker stopped: its error says why.
            self.join().map(|_| ())
        }
    }

    fn join(&mut self) -> Result<StoreIndex> {
        self.jobs = None;
        match self.worker.take() {
            Some(handle) => match handle.join() {
                Ok(result) => {
                    let index = result?;
                    if index.complete {
                        Ok(index)
                    } else {
                        Err(TrainError::Input(format!(
                            "the shard writer for {} stopped early",
                            self.dir.display()
                        )))
                    }
                }
                Err(_) => {
                    Err(TrainError::Input(format!("the shard writer for {} panicked", self.dir.display())))
                }
            },
            None => {
                Err(TrainError::Input(format!("the store in {} is already finished", self.dir.display())))
            }
        }
    }

    /// Writes the last, possibly short, shard and marks the store complete.
    pub fn finish(mut self) -> Result<StoreIndex> {
        if self.pending_rows > 0 {
            self.flush_shard(self.pending_rows)?;
        }
        self.send(Job::Finish)?;
        self.created = None;
        self.join()
    }
}

impl Drop for StoreWriter {
    /// Dropping an unfinished writer (an error elsewhere) lets the worker write what it
    /// already has; the store stays resumable. A new store that never got a shard is
    /// removed again, so a run that failed early leaves nothing behind.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(handle) = self.worker.take() {
            let _ = handle.join();
        }
        let Some(created_dir) = self.created else { return };
        if StoreIndex::read(&self.dir).map(|index| index.rows > 0).unwrap_or(true) {
            return;
        }
        let _ = std::fs::remove_file(self.dir.join(INDEX_FILE));
        let _ = crate::files::remove_partials(&self.lock);
        // Still held while it is unlinked, so no other writer can have taken it.
        let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
        if created_dir {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// The index of the store in `dir`, if it was made with exactly `spec`.
fn same_store(dir: &Path, spec: &StoreSpec) -> Result<StoreIndex> {
    let index = StoreIndex::read(dir)?;
    if let Some((field, there, now)) = index.spec.first_difference(spec) {
        return Err(TrainError::DifferentStore {
            dir: dir.to_path_buf(),
            field,
            existing: there,
            requested: now,
        });
    }
    Ok(index)
}

/// Refuses a folder that holds a store, or files other than a lock and temporaries.
fn refuse_existing(dir: &Path, spec: &StoreSpec) -> Result<()> {
    if dir.join(INDEX_FILE).exists() {
        let existing = same_store(dir, spec)?;
        return Err(TrainError::StoreExists { dir: dir.to_path_buf(), state: describe(&existing) });
    }
    if dir.exists() {
        let entries = std::fs::read_dir(dir).map_err(io("reading", dir))?;
        let mut names = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned());
        if let Some(found) = names.find(|name| !is_bookkeeping(name)) {
            return Err(TrainError::NotAStore { dir: dir.to_path_buf(), found });
        }
    }
    Ok(())
}

fn describe(index: &StoreIndex) -> String {
    if index.complete {
        format!("complete, {} rows", index.rows)
    } else {
        format!("{} of {} rows written", index.rows, index.spec.tokens)
    }
}

fn merge(batches: &[RowBatch]) -> Result<RowBatch> {
    if batches.len() == 1 {
        return Ok(batches[0].clone());
    }
    let hooks = batches[0].activations.len();
    let activations = (0..hooks)
        .map(|h| Tensor::cat(&batches.iter().map(|b| &b.activations[h]).collect::<Vec<_>>(), 0))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let join = |f: fn(&RowBatch) -> &Vec<u32>| batches.iter().flat_map(|b| f(b).iter().copied()).collect();
    Ok(RowBatch {
        activations,
        doc: join(|b| &b.doc),
        window: join(|b| &b.window),
        position: join(|b| &b.position),
        token_id: join(|b| &b.token_id),
    })
}

/// The writer thread: each shard goes to a temporary file, is flushed, renamed, and then
/// listed in the index (also written atomically).
fn write_shards(dir: &Path, mut index: StoreIndex, jobs: Receiver<Job>) -> Result<StoreIndex> {
    for job in jobs {
        match job {
            Job::Shard { file, rows, tensors } => {
                let path = dir.join(&file);
                let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
                    .map_err(|e| TrainError::Tensors { path: path.clone(), message: e.to_string() })?;
                drop(tensors);
                crate::files::write_atomically(&path, &bytes)?;
                index.shards.push(ShardEntry { file, rows });
                index.rows += rows as u64;
                index.write(dir)?;
            }
            Job::Finish => {
                index.complete = true;
                index.write(dir)?;
                return Ok(index);
            }
        }
    }
    Ok(index)
}
