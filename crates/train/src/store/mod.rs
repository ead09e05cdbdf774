//! The activation store: residual-stream rows harvested once and read many times.
//!
//! A store is a directory holding `index.json` ([`StoreIndex`]) and shards
//! `shard-00000.safetensors`, ... Each shard holds one `[rows, d_model]` tensor per hook
//! point (named by the hook, in the stored dtype) and the u32 row fields of
//! [`ROW_FIELDS`] that trace each row to its token. Shards are written by
//! [`StoreWriter`], listed only once complete, and read back, one hook point at a time
//! and never whole, through [`ActivationStore`] and [`ShuffledRows`].

mod bounded;
mod index;
mod reader;
mod scaled;
mod writer;

pub use bounded::{median_row_norm, NormBoundedRows};
pub(crate) use index::first_json_difference;
pub use index::{
    BosHandling, CorpusIdentity, ModelIdentity, ShardEntry, SinkHandling, StoreDtype, StoreIndex, StoreSpec,
    FORMAT, INDEX_FILE, ROW_FIELDS,
};
pub use reader::{
    ActivationStore, InMemoryRows, RowRange, RowSource, SafetensorsMatrix, ShuffledRows, StoreRows,
};
pub use scaled::ScaledRows;
pub use writer::{shard_file_name, RowBatch, StoreWriter};

#[cfg(test)]
mod tests;
