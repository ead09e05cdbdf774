//! The training log: one Parquet row per epoch and split (train, val), the metric names
//! as columns, the run's config and data source in the file's key-value metadata.
//! Rewritten whole beside every checkpoint under a temporary name, so the file on disk
//! is always complete and never ahead of the checkpoint a resume starts from.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use bae_train::bae::EpochMetrics;
use bae_train::metrics::DENSITY_BIN_LABELS;

use crate::error::Result;
use crate::tables::{training_log, write_table};

/// Writes `history` to `path` with `metadata` as key-value pairs.
pub fn write_training_log(path: &Path, history: &[EpochMetrics], metadata: &[(&str, String)]) -> Result<()> {
    let u32s = |f: &dyn Fn(&EpochMetrics) -> usize| -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(history.iter().map(|m| f(m) as u32)))
    };
    let f64s = |f: &dyn Fn(&EpochMetrics) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(history.iter().map(f)))
    };
    let mut columns: Vec<(String, ArrayRef)> = vec![
        ("epoch".into(), u32s(&|m| m.epoch)),
        (
            "split".into(),
            Arc::new(StringArray::from_iter_values(history.iter().map(|m| match m.split {
                bae_train::bae::Split::Train => "train",
                bae_train::bae::Split::Val => "val",
            }))),
        ),
        ("mse".into(), f64s(&|m| m.mse)),
        ("fvu".into(), f64s(&|m| m.fvu)),
        ("covariance".into(), f64s(&|m| m.covariance)),
        ("batch_entropy_bits".into(), f64s(&|m| m.batch_entropy_bits)),
        ("sparsity".into(), f64s(&|m| m.sparsity)),
        ("loss".into(), f64s(&|m| m.loss)),
        ("entropy_bits".into(), f64s(&|m| m.codes.entropy_bits)),
        ("entropy_bits_per_feature".into(), f64s(&|m| m.codes.entropy_bits_per_feature)),
        ("l0".into(), f64s(&|m| m.codes.l0)),
        ("dead".into(), u32s(&|m| m.codes.dead)),
        ("dense".into(), u32s(&|m| m.codes.dense)),
        ("constant".into(), u32s(&|m| m.codes.constant)),
        ("merged_bits".into(), u32s(&|m| m.merged_bits)),
        ("pruned_bits".into(), u32s(&|m| m.pruned_bits)),
    ];
    for (bin, label) in DENSITY_BIN_LABELS.iter().enumerate() {
        columns.push((format!("density_{label}"), u32s(&|m| m.codes.density_histogram[bin])));
    }
    columns.push(("seconds".into(), f64s(&|m| m.seconds)));
    write_table(path, &training_log(), columns, metadata)
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;
    use bae_train::bae::Split;
    use bae_train::metrics::CodeStats;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn metrics(epoch: usize, split: Split) -> EpochMetrics {
        EpochMetrics {
            epoch,
            split,
            mse: 0.5 + epoch as f64,
            fvu: 0.1,
            covariance: 2.0,
            batch_entropy_bits: 3.0,
            sparsity: 0.75,
            loss: 0.6,
            codes: CodeStats {
                entropy_bits: 4.0,
                entropy_bits_per_feature: 0.25,
                l0: 1.5,
                dead: 1,
                dense: 2,
                constant: 3,
                density_histogram: [1, 0, 0, 0, 0, 2, 0, 0, epoch],
            },
            merged_bits: 2 * epoch,
            pruned_bits: 3 * epoch,
            seconds: 0.01,
        }
    }

    #[test]
    fn the_log_reads_back_with_its_columns_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.parquet");
        let history = vec![metrics(0, Split::Train), metrics(0, Split::Val), metrics(1, Split::Train)];
        write_training_log(&path, &history, &[("config", "{\"lr\":0.1}".into())]).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let kv = builder.metadata().file_metadata().key_value_metadata().unwrap().clone();
        assert!(kv.iter().any(|k| k.key == "config" && k.value.as_deref() == Some("{\"lr\":0.1}")));
        let batch = builder.build().unwrap().next().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.num_columns(), 16 + 9 + 1);
        let merged =
            batch.column_by_name("merged_bits").unwrap().as_any().downcast_ref::<UInt32Array>().unwrap();
        assert_eq!(merged.value(2), 2);
        let pruned =
            batch.column_by_name("pruned_bits").unwrap().as_any().downcast_ref::<UInt32Array>().unwrap();
        assert_eq!(pruned.value(2), 3);
        let split = batch.column_by_name("split").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((split.value(1), split.value(2)), ("val", "train"));
        let mse = batch.column_by_name("mse").unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(mse.value(2), 1.5);
        let last_bin =
            batch.column_by_name("density_1").unwrap().as_any().downcast_ref::<UInt32Array>().unwrap();
        assert_eq!((last_bin.value(0), last_bin.value(2), last_bin.len()), (0, 1, 3));
        assert!(!bae_train::files::partial_path(&dir.path().join("log.parquet")).exists());
    }

    #[test]
    fn fuzzed_logs_give_plot_errors_that_name_them_and_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.parquet");
        let history: Vec<EpochMetrics> =
            (0..6).flat_map(|e| [metrics(e, Split::Train), metrics(e, Split::Val)]).collect();
        write_training_log(&path, &history, &[]).unwrap();
        let original = std::fs::read(&path).unwrap();
        let chart = dir.path().join("chart.svg");
        crate::plot::plot(&path, None, &chart).unwrap();
        bae_lm::fuzz::run("training log", &original, "log.parquet", |bytes| {
            std::fs::write(&path, bytes).unwrap();
            crate::plot::plot(&path, None, &chart).err().map(|e| e.to_string())
        });
    }
}
