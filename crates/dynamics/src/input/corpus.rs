//! Corpora: plain text (one document per line), JSONL (one JSON object per line, text
//! in a named field) or Parquet (text in a named string column), read lazily one
//! document at a time, with a sha256 of the file for provenance.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::array::{Array, LargeStringArray, RecordBatch, StringArray, StringViewArray};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use sha2::{Digest, Sha256};

use crate::error::{DynamicsError, Result};

/// The JSONL field or Parquet column read when a config names none.
pub const DEFAULT_TEXT_FIELD: &str = "text";

/// How a corpus file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CorpusFormat {
    /// One document per line; empty lines are skipped.
    Text,
    /// One JSON object per line; the text is in a string field.
    Jsonl,
    /// A Parquet file; the text is in a string column.
    Parquet,
}

impl CorpusFormat {
    /// The name used on the command line and in store indexes.
    pub fn name(self) -> &'static str {
        match self {
            CorpusFormat::Text => "text",
            CorpusFormat::Jsonl => "jsonl",
            CorpusFormat::Parquet => "parquet",
        }
    }

    /// `format` if given, else the one `path`'s extension implies.
    pub fn resolve(format: Option<CorpusFormat>, path: &Path) -> Self {
        format.unwrap_or_else(|| Self::from_extension(path))
    }

    /// Guesses the format from the file extension (`.jsonl`/`.json`, `.parquet`, else text).
    pub fn from_extension(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "json" | "ndjson") => CorpusFormat::Jsonl,
            Some("parquet" | "pq") => CorpusFormat::Parquet,
            _ => CorpusFormat::Text,
        }
    }
}

/// One document and its index in the corpus (line or row number, 0-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Line (text, JSONL) or row (Parquet) number, counting skipped empty ones.
    pub index: u64,
    /// The text.
    pub text: String,
}

/// A corpus file ready to be read.
#[derive(Debug, Clone)]
pub struct Corpus {
    path: PathBuf,
    format: CorpusFormat,
    field: String,
    sha256: String,
}

impl Corpus {
    /// Opens `path` and hashes it. `field` is the JSONL field or Parquet column (ignored
    /// for text). A Parquet column is checked now, so a wrong name fails before any work.
    pub fn open(path: &Path, format: CorpusFormat, field: &str) -> Result<Self> {
        // A corpus is read twice (hashed, then read), and a FIFO or a device such as
        // /dev/zero would never end: only a regular file will do.
        let meta = std::fs::metadata(path)
            .map_err(|source| DynamicsError::Io { path: path.to_path_buf(), source })?;
        if !meta.is_file() {
            return Err(DynamicsError::Corpus {
                path: path.to_path_buf(),
                location: "file".into(),
                message: "is not a regular file (a directory, FIFO or device); a corpus must be a file"
                    .into(),
            });
        }
        let corpus =
            Self { path: path.to_path_buf(), format, field: field.to_string(), sha256: sha256_of(path)? };
        if format == CorpusFormat::Parquet {
            corpus.parquet_reader()?;
        }
        Ok(corpus)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its layout.
    pub fn format(&self) -> CorpusFormat {
        self.format
    }

    /// The JSONL field or Parquet column, None for text.
    pub fn field(&self) -> Option<&str> {
        (self.format != CorpusFormat::Text).then_some(self.field.as_str())
    }

    /// sha256 of the file, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    fn error(&self, location: String, message: String) -> DynamicsError {
        DynamicsError::Corpus { path: self.path.clone(), location, message }
    }

    /// The non-empty documents, in order, read lazily.
    pub fn documents(&self) -> Result<Box<dyn Iterator<Item = Result<Document>> + '_>> {
        match self.format {
            CorpusFormat::Text | CorpusFormat::Jsonl => {
                let file = File::open(&self.path)
                    .map_err(|source| DynamicsError::Io { path: self.path.clone(), source })?;
                let lines = BoundedLines { reader: BufReader::new(file), limit: MAX_LINE_BYTES }.enumerate();
                Ok(Box::new(
                    lines.filter_map(move |(i, line)| self.line_document(i as u64, line).transpose()),
                ))
            }
            CorpusFormat::Parquet => {
                let reader = self.parquet_reader()?;
                Ok(Box::new(ParquetDocuments { corpus: self, reader, batch: None, next_row: 0, row_base: 0 }))
            }
        }
    }

    fn line_document(&self, index: u64, line: std::io::Result<String>) -> Result<Option<Document>> {
        let line =
            line.map_err(|e| self.error(format!("line {}", index + 1), format!("cannot read: {e}")))?;
        if line.trim().is_empty() {
            return Ok(None);
        }
        let text = match self.format {
            CorpusFormat::Jsonl => {
                let location = || format!("line {}", index + 1);
                let value: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| self.error(location(), format!("not valid JSON: {e}")))?;
                match value.get(&self.field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => {
                        return Err(self.error(
                            location(),
                            format!("field `{}` is {}, expected a string", self.field, json_kind(other)),
                        ))
                    }
                    None => {
                        return Err(self.error(
                            location(),
                            format!("no field `{}` (choose the text field with --field)", self.field),
                        ))
                    }
                }
            }
            _ => line,
        };
        Ok((!text.trim().is_empty()).then_some(Document { index, text }))
    }

    fn parquet_reader(&self) -> Result<ParquetRecordBatchReader> {
        // arrow and parquet panic on some corrupt footers and schemas; that is an error here.
        bae_lm::guard::catching(|| self.parquet_reader_unguarded()).unwrap_or_else(|| {
            Err(self.error("header".into(), "not a readable Parquet file: it is corrupt".into()))
        })
    }

    fn parquet_reader_unguarded(&self) -> Result<ParquetRecordBatchReader> {
        let file =
            File::open(&self.path).map_err(|source| DynamicsError::Io { path: self.path.clone(), source })?;
        let not_parquet = |e: parquet::errors::ParquetError| {
            self.error("header".into(), format!("not a Parquet file: {e}"))
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(not_parquet)?;
        let schema = builder.schema().clone();
        let Some((index, field)) = schema.column_with_name(&self.field) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(self.error(
                format!("column `{}`", self.field),
                format!("no such column (it has: {}); choose one with --field", names.join(", ")),
            ));
        };
        use arrow::datatypes::DataType;
        if !matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            return Err(self.error(
                format!("column `{}`", self.field),
                format!("has type {}, expected a string column", field.data_type()),
            ));
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
        builder.with_projection(mask).with_batch_size(1024).build().map_err(not_parquet)
    }
}

/// The longest line (one document) a text or JSONL corpus may hold.
pub const MAX_LINE_BYTES: u64 = 1 << 28;

/// Lines of at most [`MAX_LINE_BYTES`], so a file without newlines cannot take all the
/// memory; a longer one is an error (as is invalid UTF-8, like `BufRead::lines`).
struct BoundedLines {
    reader: BufReader<File>,
    /// The longest line accepted, bytes.
    limit: u64,
}

impl Iterator for BoundedLines {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = Vec::new();
        match (&mut self.reader).take(self.limit + 1).read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) if line.len() as u64 > self.limit && line.last() != Some(&b'\n') => {
                Some(Err(std::io::Error::other(format!("longer than the limit of {} bytes", self.limit))))
            }
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                Some(String::from_utf8(line).map_err(|_| std::io::Error::other("not valid UTF-8")))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

struct ParquetDocuments<'a> {
    corpus: &'a Corpus,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    next_row: usize,
    row_base: u64,
}

impl ParquetDocuments<'_> {
    fn text_at(&self, batch: &RecordBatch, row: usize) -> Option<String> {
        let column = batch.column(0);
        if column.is_null(row) {
            return None;
        }
        let any = column.as_any();
        let text = if let Some(a) = any.downcast_ref::<StringArray>() {
            a.value(row)
        } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
            a.value(row)
        } else {
            any.downcast_ref::<StringViewArray>()?.value(row)
        };
        Some(text.to_string())
    }
}

impl Iterator for ParquetDocuments<'_> {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.batch.take() {
                while self.next_row < batch.num_rows() {
                    let row = self.next_row;
                    self.next_row += 1;
                    if let Some(text) = self.text_at(&batch, row).filter(|t| !t.trim().is_empty()) {
                        let index = self.row_base + row as u64;
                        self.batch = Some(batch);
                        return Some(Ok(Document { index, text }));
                    }
                }
                self.row_base += batch.num_rows() as u64;
            }
            // arrow and parquet panic on some corrupt files; that is an error here.
            let Some(next) = bae_lm::guard::catching(|| self.reader.next()) else {
                let location = format!("rows from {}", self.row_base);
                return Some(Err(self.corpus.error(location, "cannot decode: the file is corrupt".into())));
            };
            match next? {
                Ok(batch) => {
                    self.batch = Some(batch);
                    self.next_row = 0;
                }
                Err(e) => {
                    let location = format!("rows from {}", self.row_base);
                    return Some(Err(self.corpus.error(location, format!("cannot decode: {e}"))));
                }
            }
        }
    }
}

/// sha256 of a file's bytes, hex, read in 1 MiB pieces.
pub fn sha256_of(path: &Path) -> Result<String> {
    let io = |source| DynamicsError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;

    use super::*;

    fn texts(corpus: &Corpus) -> Vec<(u64, String)> {
        corpus.documents().unwrap().map(|d| d.map(|d| (d.index, d.text))).collect::<Result<_>>().unwrap()
    }

    /// Writes a Parquet file with a nullable string column `body` and an int column `n`.
    pub(crate) fn write_parquet(path: &Path, rows: &[Option<&str>]) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("body", DataType::Utf8, true),
        ]));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows.len() as i64));
        let body: ArrayRef = Arc::new(StringArray::from(rows.to_vec()));
        let batch = RecordBatch::try_new(schema.clone(), vec![n, body]).unwrap();
        let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("corpus.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        for path in [Path::new("/dev/zero"), fifo.as_path(), dir.path()] {
            let Err(err) = Corpus::open(path, CorpusFormat::Text, "text") else { panic!("{path:?} opened") };
            let err = err.to_string();
            assert!(err.contains("not a regular file") && err.contains(&*path.to_string_lossy()), "{err}");
        }
    }

    #[test]
    fn a_line_beyond_the_limit_is_an_error_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.txt");
        let lines = |limit: u64| -> Vec<std::io::Result<String>> {
            BoundedLines { reader: BufReader::new(File::open(&path).unwrap()), limit }.take(4).collect()
        };
        std::fs::write(&path, "short line\r\nsecond\n").unwrap();
        let read: Vec<String> = lines(32).into_iter().map(|l| l.unwrap()).collect();
        assert_eq!(read, ["short line", "second"]);
        // A 64-byte line without a newline, against a 32-byte limit (the real one is
        // 256 MiB: the same code).
        std::fs::write(&path, [b'a'; 64]).unwrap();
        let err = lines(32).remove(0).unwrap_err().to_string();
        assert!(err.contains("longer than the limit of 32 bytes"), "{err}");
        assert_eq!(lines(64)[0].as_deref().unwrap(), "a".repeat(64));
    }

    #[test]
    fn the_three_formats_give_the_same_documents() {
        let dir = tempfile::tempdir().unwrap();
        let docs = ["first document", "second, with \"quotes\"", "third"];
        let text = dir.path().join("c.txt");
        std::fs::write(&text, format!("{}\n\n{}\n{}\n", docs[0], docs[1], docs[2])).unwrap();
        let jsonl = dir.path().join("c.jsonl");
        let lines: Vec<String> =
            docs.iter().map(|d| serde_json::json!({"id": 1, "content": d}).to_string()).collect();
        std::fs::write(&jsonl, format!("{}\n\n{}\n{}\n", lines[0], lines[1], lines[2])).unwrap();
        let parquet = dir.path().join("c.parquet");
        write_parquet(&parquet, &[Some(docs[0]), None, Some(docs[1]), Some(docs[2])]);

        let want: Vec<(u64, String)> = vec![(0, docs[0].into()), (2, docs[1].into()), (3, docs[2].into())];
        let a = Corpus::open(&text, CorpusFormat::from_extension(&text), "text").unwrap();
        let b = Corpus::open(&jsonl, CorpusFormat::from_extension(&jsonl), "content").unwrap();
        let c = Corpus::open(&parquet, CorpusFormat::from_extension(&parquet), "body").unwrap();
        assert_eq!(
            (a.format(), b.format(), c.format()),
            (CorpusFormat::Text, CorpusFormat::Jsonl, CorpusFormat::Parquet)
        );
        assert_eq!(texts(&a), want, "empty lines are skipped but keep their index");
        assert_eq!(texts(&b), want);
        assert_eq!(texts(&c), want, "null rows are skipped but keep their index");
        assert_eq!(a.sha256(), sha256_of(&text).unwrap());
        assert_eq!(a.sha256().len(), 64);
    }

    #[test]
    fn sha256_matches_a_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(
            sha256_of(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn first_error(path: &Path, format: CorpusFormat, field: &str) -> String {
        match Corpus::open(path, format, field) {
            Err(e) => e.to_string(),
            Ok(c) => c.documents().unwrap().find_map(|d| d.err()).expect("an error").to_string(),
        }
    }

    #[test]
    fn malformed_jsonl_is_reported_by_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"text\": \"ok\"}\n{\"text\": \"ok\"\n").unwrap();
        let err = first_error(&path, CorpusFormat::Jsonl, "text");
        assert!(err.contains("c.jsonl") && err.contains("line 2") && err.contains("not valid JSON"), "{err}");
        std::fs::write(&path, "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n").unwrap();
        let err = first_error(&path, CorpusFormat::Jsonl, "text");
        assert!(
            err.contains("line 2") && err.contains("no field `text`") && err.contains("--field"),
            "{err}"
        );
        std::fs::write(&path, "{\"text\": 3}\n").unwrap();
        let err = first_error(&path, CorpusFormat::Jsonl, "text");
        assert!(err.contains("line 1") && err.contains("is a number, expected a string"), "{err}");
    }

    #[test]
    fn a_missing_or_non_text_parquet_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        write_parquet(&path, &[Some("a")]);
        let err = first_error(&path, CorpusFormat::Parquet, "text");
        assert!(err.contains("column `text`") && err.contains("it has: n, body"), "{err}");
        let err = first_error(&path, CorpusFormat::Parquet, "n");
        assert!(
            err.contains("column `n`") && err.contains("Int64") && err.contains("expected a string"),
            "{err}"
        );
        std::fs::write(&path, b"not parquet at all").unwrap();
        let err = first_error(&path, CorpusFormat::Parquet, "text");
        assert!(err.contains("not a Parquet file"), "{err}");
    }

    #[test]
    fn fuzzed_corpora_give_errors_that_name_them_and_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<String> = (0..40).map(|i| format!("document {i}: the cat sat on the mat")).collect();
        let parquet = dir.path().join("c.parquet");
        write_parquet(&parquet, &texts.iter().map(|t| Some(t.as_str())).collect::<Vec<_>>());
        let jsonl = dir.path().join("c.jsonl");
        let lines: Vec<String> = texts.iter().map(|t| serde_json::json!({ "body": t }).to_string()).collect();
        std::fs::write(&jsonl, lines.join("\n")).unwrap();
        for (path, format) in [(parquet, CorpusFormat::Parquet), (jsonl, CorpusFormat::Jsonl)] {
            let read = || -> Option<String> {
                let read = Corpus::open(&path, format, "body")
                    .and_then(|c| c.documents()?.try_for_each(|d| d.map(|_| ())));
                read.err().map(|e| e.to_string())
            };
            assert_eq!(read(), None);
            let original = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            bae_lm::fuzz::run(&name, &original, &name, |bytes| {
                std::fs::write(&path, bytes).unwrap();
                read()
            });
        }
    }
}
