//! Writing long ("tidy") Parquet tables: the columns checked against the table's
//! definition, its format and metadata in the file's key-value pairs and the Arrow
//! schema, and a temporary name renamed when the file is complete, so a killed run
//! never leaves a truncated file under the final name.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::TableSchema;
use crate::error::{DynamicsError, Result};

/// Writes `columns` (equal lengths) to `path` as a `schema` table, with `metadata`
/// beside the format. The columns must be the schema's, in order, of its types, with
/// nulls only where it allows them: a mismatch is a bug of ours, refused before writing.
pub fn write_table(
    path: &Path,
    schema: &TableSchema,
    columns: Vec<(String, ArrayRef)>,
    metadata: &[(&str, String)],
) -> Result<()> {
    let bad = |message: String| {
        DynamicsError::Input(format!("{} table for {}: {message}", schema.format, path.display()))
    };
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let defined: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    if names != defined {
        return Err(bad(format!("built columns {names:?}, the table defines {defined:?}")));
    }
    for ((name, array), column) in columns.iter().zip(&schema.columns) {
        if array.data_type() != &column.kind.data_type() {
            return Err(bad(format!(
                "column `{name}` is {}, defined as {:?}",
                array.data_type(),
                column.kind
            )));
        }
        if !column.nullable && array.null_count() > 0 {
            return Err(bad(format!(
                "column `{name}` has {} nulls but is defined without",
                array.null_count()
            )));
        }
    }
    let mut kv: Vec<(String, String)> = vec![("format".into(), schema.format.to_string())];
    kv.extend(metadata.iter().filter(|(k, _)| *k != "format").map(|(k, v)| (k.to_string(), v.clone())));
    let arrow_schema = Arc::new(schema.arrow(kv.iter().cloned().collect::<HashMap<_, _>>()));
    let batch = RecordBatch::try_new(arrow_schema.clone(), columns.into_iter().map(|(_, a)| a).collect())
        .map_err(|e| bad(format!("building the batch: {e}")))?;
    let kv: Vec<KeyValue> = kv.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
    let props = WriterProperties::builder().set_key_value_metadata(Some(kv)).build();
    bae_train::files::write_atomically_with(path, |tmp| {
        let file =
            File::create(tmp).map_err(|source| DynamicsError::Io { path: tmp.to_path_buf(), source })?;
        let fail = |e: parquet::errors::ParquetError| {
            DynamicsError::Input(format!("writing {}: {e}", tmp.display()))
        };
        let mut writer = ArrowWriter::try_new(file, arrow_schema, Some(props)).map_err(fail)?;
        writer.write(&batch).map_err(fail)?;
        writer.close().map_err(fail)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, UInt32Array};

    use super::super::{Column, Kind};
    use super::*;

    fn schema() -> TableSchema {
        TableSchema {
            format: "bae.test.v1",
            columns: vec![
                Column { name: "n".into(), kind: Kind::U32, nullable: false },
                Column { name: "x".into(), kind: Kind::F64, nullable: true },
            ],
        }
    }

    #[test]
    fn a_table_off_its_definition_is_refused_and_one_on_it_carries_its_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let n: ArrayRef = Arc::new(UInt32Array::from(vec![1, 2]));
        let x: ArrayRef = Arc::new(Float64Array::from(vec![Some(0.5), None]));
        let null_n: ArrayRef = Arc::new(UInt32Array::from(vec![Some(1), None]));
        for (columns, expected) in [
            (vec![("x".to_string(), x.clone()), ("n".into(), n.clone())], "built columns"),
            (vec![("n".to_string(), x.clone()), ("x".into(), x.clone())], "defined as U32"),
            (vec![("n".to_string(), null_n), ("x".into(), x.clone())], "1 nulls"),
        ] {
            let err = write_table(&path, &schema(), columns, &[]).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("bae.test.v1"), "{err}");
            assert!(!path.exists());
        }
        write_table(&path, &schema(), vec![("n".into(), n), ("x".into(), x)], &[("run_id", "r".into())])
            .unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(&path).unwrap(),
        )
        .unwrap();
        let kv = reader.metadata().file_metadata().key_value_metadata().unwrap().clone();
        assert!(kv.iter().any(|k| k.key == "format" && k.value.as_deref() == Some("bae.test.v1")));
        let arrow = reader.schema();
        assert_eq!(arrow.metadata().get("run_id").map(String::as_str), Some("r"));
        assert!(!arrow.field(0).is_nullable() && arrow.field(1).is_nullable());
    }
}
