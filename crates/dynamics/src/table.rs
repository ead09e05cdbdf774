//! Writing long ("tidy") Parquet tables: named columns, key-value metadata, and a
//! temporary name renamed when the file is complete, so a killed run never leaves a
//! truncated file under the final name.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::{DynamicsError, Result};

/// Writes `columns` (equal lengths; nullable where an array has nulls) to `path` with
/// `metadata` as the file's key-value pairs.
pub fn write_table(path: &Path, columns: Vec<(String, ArrayRef)>, metadata: &[(&str, String)]) -> Result<()> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(name, a.data_type().clone(), a.null_count() > 0))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect())
        .map_err(|e| DynamicsError::Input(format!("building the table for {}: {e}", path.display())))?;
    let kv: Vec<KeyValue> = metadata.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.clone())).collect();
    let props = WriterProperties::builder().set_key_value_metadata(Some(kv)).build();
    bae_train::files::write_atomically_with(path, |tmp| {
        let file =
            File::create(tmp).map_err(|source| DynamicsError::Io { path: tmp.to_path_buf(), source })?;
        let fail = |e: parquet::errors::ParquetError| {
            DynamicsError::Input(format!("writing {}: {e}", tmp.display()))
        };
        let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(fail)?;
        writer.write(&batch).map_err(fail)?;
        writer.close().map_err(fail)?;
        Ok(())
    })
}
