//! Every Parquet table bae writes, defined once: its format id (the file's `format`
//! metadata) and its columns in order, each with its type and whether it may hold
//! nulls — by definition, not by the data of one run. The writer checks a table against
//! its definition before anything reaches the disk; `bae plot` reads tables by these
//! names; `scripts/table_schemas.json`, which `scripts/check_tables.py` reads, is
//! generated from them (a test keeps it current).

mod schemas;
pub mod training_log;
mod write;

use std::collections::HashMap;

use arrow::datatypes::{DataType, Field, Schema};

pub use schemas::*;
pub use write::write_table;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// 64-bit float.
    F64,
    /// UTF-8 string.
    Utf8,
    /// Boolean.
    Bool,
}

impl Kind {
    /// The Arrow type it is stored as.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::F64 => DataType::Float64,
            Kind::Utf8 => DataType::Utf8,
            Kind::Bool => DataType::Boolean,
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: Kind,
    /// Whether a row may leave it null (a value that does not apply to that row).
    pub nullable: bool,
}

/// A table's definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableSchema {
    /// The `format` metadata value that names it, e.g. `bae.entropy.v1`.
    pub format: &'static str,
    /// Its columns, in order.
    pub columns: Vec<Column>,
}

impl TableSchema {
    /// The Arrow schema, with `metadata` as its key-value metadata (what
    /// `pyarrow.parquet.read_table(...).schema.metadata` shows).
    pub fn arrow(&self, metadata: HashMap<String, String>) -> Schema {
        let fields: Vec<Field> =
            self.columns.iter().map(|c| Field::new(&c.name, c.kind.data_type(), c.nullable)).collect();
        Schema::new_with_metadata(fields, metadata)
    }
}

/// Every table bae writes.
pub fn all() -> Vec<TableSchema> {
    vec![entropy(), icl(), fidelity(), features(), feature_samples(), compare(), training_log()]
}

/// The definitions as JSON, one column to a line: what `scripts/table_schemas.json`
/// holds (`{format: [{name, kind, nullable}, ...]}`).
pub fn schemas_json() -> String {
    let tables: Vec<String> = all()
        .iter()
        .map(|t| {
            let columns: Vec<String> = t
                .columns
                .iter()
                .map(|c| format!("    {}", serde_json::to_string(c).expect("a column serializes")))
                .collect();
            format!("  \"{}\": [\n{}\n  ]", t.format, columns.join(",\n"))
        })
        .collect();
    format!("{{\n{}\n}}\n", tables.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checker's copy is generated, never edited: rerun with `BAE_WRITE_SCHEMAS=1`
    /// after changing a table to write it.
    #[test]
    fn the_schema_file_the_python_checker_reads_is_generated_from_these_definitions() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/table_schemas.json");
        let want = schemas_json();
        if std::env::var_os("BAE_WRITE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is out of date: run `BAE_WRITE_SCHEMAS=1 cargo test -p bae-dynamics --lib tables` and commit it",
            path.display()
        );
    }

    #[test]
    fn formats_are_distinct_and_columns_unique_within_a_table() {
        let tables = all();
        let formats: std::collections::HashSet<_> = tables.iter().map(|t| t.format).collect();
        assert_eq!(formats.len(), tables.len());
        for t in &tables {
            let names: std::collections::HashSet<_> = t.columns.iter().map(|c| &c.name).collect();
            assert_eq!(names.len(), t.columns.len(), "{}", t.format);
        }
    }
}
