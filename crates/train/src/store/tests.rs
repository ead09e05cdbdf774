//! Store round trips: write, kill, resume, read back shuffled.

use std::collections::HashSet;

use candle_core::{DType, Device, Tensor};

use super::*;

const D: usize = 3;

fn spec(tokens: u64, shard_rows: usize, dtype: StoreDtype) -> StoreSpec {
    StoreSpec {
        model: ModelIdentity {
            spec: "tiny".into(),
            family: "llama".into(),
            num_layers: 2,
            parameters: 1000,
            dtype: "f32".into(),
        },
        hooks: vec!["blocks.0.hook_resid_post".into(), "blocks.1.hook_resid_post".into()],
        dtype,
        d_model: D,
        corpus: CorpusIdentity {
            path: "c.txt".into(),
            sha256: "ab".into(),
            format: "text".into(),
            field: None,
        },
        context_length: 8,
        bos: BosHandling { prepended: true },
        sinks: SinkHandling { excluded: false },
        tokens,
        shard_rows,
    }
}

/// Rows numbered from `first`: row r of hook h holds (r, r + 0.5, h).
fn batch(first: u32, rows: u32, dtype: StoreDtype) -> RowBatch {
    let acts = (0..2)
        .map(|h| {
            let v: Vec<f32> =
                (first..first + rows).flat_map(|r| [r as f32, r as f32 + 0.5, h as f32]).collect();
            Tensor::from_vec(v, (rows as usize, D), &Device::Cpu).unwrap().to_dtype(dtype.candle()).unwrap()
        })
        .collect();
    let ids: Vec<u32> = (first..first + rows).collect();
    RowBatch {
        activations: acts,
        doc: ids.iter().map(|r| r / 10).collect(),
        window: vec![0; rows as usize],
        position: ids.iter().map(|r| r % 10).collect(),
        token_id: ids.iter().map(|r| r + 100).collect(),
    }
}

fn write_all(dir: &std::path::Path, spec: StoreSpec, batches: &[(u32, u32)]) -> StoreIndex {
    let dtype = spec.dtype;
    let mut w = StoreWriter::create(dir, spec).unwrap();
    for &(first, rows) in batches {
        w.push(batch(first, rows, dtype)).unwrap();
    }
    w.finish().unwrap()
}

fn all_rows(source: &dyn RowSource) -> Vec<Vec<f32>> {
    (0..source.chunks())
        .flat_map(|i| source.read_chunk(i).unwrap().chunks(D).map(|r| r.to_vec()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn rows_come_back_in_order_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("store");
    let index = write_all(&out, spec(100, 16, StoreDtype::F32), &[(0, 7), (7, 30), (37, 13)]);
    assert!(index.complete);
    assert_eq!(index.rows, 50, "the corpus ran out before 100 rows");
    assert_eq!(index.shards.iter().map(|s| s.rows).collect::<Vec<_>>(), vec![16, 16, 16, 2]);
    let store = ActivationStore::open(&out).unwrap();
    assert_eq!(store.index(), &index);
    let rows = all_rows(&store.hook("blocks.1.hook_resid_post").unwrap());
    assert_eq!(rows.len(), 50);
    for (r, row) in rows.iter().enumerate() {
        assert_eq!(row, &vec![r as f32, r as f32 + 0.5, 1.0]);
    }
    // Row fields trace each row to its token.
    let shard = candle_core::safetensors::load(out.join("shard-00001.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(shard["token_id"].to_vec1::<u32>().unwrap()[0], 116);
    assert_eq!(shard["doc"].to_vec1::<u32>().unwrap()[0], 1);
    assert_eq!(shard["position"].to_vec1::<u32>().unwrap()[0], 6);
}

#[test]
fn the_token_budget_cuts_the_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let index = write_all(&dir.path().join("s"), spec(20, 8, StoreDtype::F32), &[(0, 15), (15, 15), (30, 5)]);
    assert_eq!(index.rows, 20);
    assert_eq!(index.shards.iter().map(|s| s.rows).collect::<Vec<_>>(), vec![8, 8, 4]);
}

#[test]
fn half_precision_stores_round_trip_within_their_precision() {
    for dtype in [StoreDtype::F16, StoreDtype::Bf16] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s");
        write_all(&out, spec(40, 16, dtype), &[(0, 40)]);
        let store = ActivationStore::open(&out).unwrap();
        let shard =
            candle_core::safetensors::load(out.join("shard-00000.safetensors"), &Device::Cpu).unwrap();
        assert_eq!(shard["blocks.0.hook_resid_post"].dtype(), dtype.candle());
        let rows = all_rows(&store.hook("blocks.0.hook_resid_post").unwrap());
        for (r, row) in rows.iter().enumerate() {
            let want = r as f32 + 0.5;
            assert!((row[1] - want).abs() <= want * 1e-2, "{dtype:?} row {r}: {row:?}");
        }
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    write_all(&whole, spec(60, 16, StoreDtype::F32), &[(0, 20), (20, 20), (20 + 20, 20)]);

    // Run until two shards are on disk, then "die": drop the writer unfinished and
    // leave a half-written shard behind, as a kill during a write would.
    let killed = dir.path().join("killed");
    let mut w = StoreWriter::create(&killed, spec(60, 16, StoreDtype::F32)).unwrap();
    w.push(batch(0, 20, StoreDtype::F32)).unwrap();
    w.push(batch(20, 20, StoreDtype::F32)).unwrap();
    drop(w);
    // Temporaries of a killed process (another PID) and of an older version's naming.
    let left = [".shard-00002.safetensors.4000000.partial", "shard-00002.safetensors.partial"];
    for name in left {
        std::fs::write(killed.join(name), b"half a shard").unwrap();
    }
    let index = StoreIndex::read(&killed).unwrap();
    assert!(!index.complete);
    assert_eq!(index.rows, 32, "only complete shards are listed");

    // Resume: regenerate the same row stream and skip what is stored.
    let mut w = StoreWriter::resume(&killed, spec(60, 16, StoreDtype::F32)).unwrap();
    assert_eq!(w.rows(), 32);
    assert!(left.iter().all(|name| !killed.join(name).exists()));
    w.push(batch(32, 28, StoreDtype::F32)).unwrap();
    let index = w.finish().unwrap();
    assert_eq!(index, StoreIndex::read(&whole).unwrap());
    for shard in &index.shards {
        let a = std::fs::read(whole.join(&shard.file)).unwrap();
        let b = std::fs::read(killed.join(&shard.file)).unwrap();
        assert_eq!(a, b, "{} differs", shard.file);
    }
}

#[test]
fn existing_stores_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    write_all(&out, spec(10, 4, StoreDtype::F32), &[(0, 10)]);
    let before = std::fs::read(out.join(INDEX_FILE)).unwrap();
    let err = StoreWriter::create(&out, spec(10, 4, StoreDtype::F32)).err().unwrap().to_string();
    assert!(err.contains("already holds an activation store") && err.contains("--resume"), "{err}");
    let err = StoreWriter::create(&out, spec(10, 4, StoreDtype::F16)).err().unwrap().to_string();
    assert!(err.contains("different dtype") && err.contains("\"f32\"") && err.contains("\"f16\""), "{err}");
    let err = StoreWriter::resume(&out, spec(10, 5, StoreDtype::F32)).err().unwrap().to_string();
    assert!(err.contains("different shard_rows"), "{err}");
    assert_eq!(std::fs::read(out.join(INDEX_FILE)).unwrap(), before);

    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let err = StoreWriter::create(&other, spec(10, 4, StoreDtype::F32)).err().unwrap().to_string();
    assert!(err.contains("notes.txt"), "{err}");
    let err = StoreWriter::resume(&other, spec(10, 4, StoreDtype::F32)).err().unwrap().to_string();
    assert!(err.contains("no index.json"), "{err}");
}

#[test]
fn shuffled_rows_visit_every_row_once_in_a_seeded_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    write_all(&out, spec(100, 16, StoreDtype::F32), &[(0, 100)]);
    let store = ActivationStore::open(&out).unwrap();
    let rows = store.hook("blocks.0.hook_resid_post").unwrap();
    let order = |seed| -> Vec<u32> {
        ShuffledRows::new(&rows, 7, 20, seed)
            .unwrap()
            .flat_map(|b| b.unwrap().chunks(D).map(|r| r[0] as u32).collect::<Vec<_>>())
            .collect()
    };
    let a = order(1);
    assert_eq!(a.len(), 100);
    assert_eq!(a.iter().copied().collect::<HashSet<_>>().len(), 100);
    assert_eq!(a, order(1));
    assert_ne!(a, order(2));
    assert_ne!(a, (0..100).collect::<Vec<_>>());
    // Rows from different shards mix within a batch once the buffer spans shards.
    let first: HashSet<u32> = a[..7].iter().map(|r| r / 16).collect();
    assert!(first.len() > 1, "first batch all from one shard: {:?}", &a[..7]);
}

#[test]
fn plain_safetensors_matrices_are_a_row_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acts.safetensors");
    let m = Tensor::arange(0f32, 5000. * 2., &Device::Cpu).unwrap().reshape((5000, 2)).unwrap();
    let other = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([
            ("acts".to_string(), m.to_dtype(DType::BF16).unwrap()),
            ("v".to_string(), other),
        ]),
        &path,
    )
    .unwrap();
    let source = SafetensorsMatrix::open(&path, "acts").unwrap();
    assert_eq!((source.rows(), source.dim(), source.chunks()), (5000, 2, 2));
    let rows = all_rows_of(&source, 2);
    assert_eq!(rows.len(), 5000);
    assert_eq!(rows[4999], vec![9984.0, 9984.0], "bf16 rounding of 9998, 9999");
    let err = SafetensorsMatrix::open(&path, "nope").err().unwrap().to_string();
    assert!(err.contains("no tensor `nope`") && err.contains("acts, v"), "{err}");
    let err = SafetensorsMatrix::open(&path, "v").err().unwrap().to_string();
    assert!(err.contains("expected a non-empty [rows, d] matrix"), "{err}");
}

fn all_rows_of(source: &dyn RowSource, d: usize) -> Vec<Vec<f32>> {
    (0..source.chunks())
        .flat_map(|i| source.read_chunk(i).unwrap().chunks(d).map(|r| r.to_vec()).collect::<Vec<_>>())
        .collect()
}

#[cfg(unix)]
#[test]
fn a_full_disk_fails_cleanly_and_leaves_a_resumable_store() {
    // Writes to /dev/full fail with ENOSPC, as on a full disk.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let mut w = StoreWriter::create(&out, spec(40, 16, StoreDtype::F32)).unwrap();
    w.push(batch(0, 16, StoreDtype::F32)).unwrap();
    // Wait until the first shard is listed, then make the next shard's write fail.
    for _ in 0..500 {
        if StoreIndex::read(&out).unwrap().shards.len() == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let tmp = crate::files::partial_path(&out.join("shard-00001.safetensors"));
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
    let pushed = w.push(batch(16, 24, StoreDtype::F32));
    let err = pushed.and_then(|()| w.finish().map(|_| ())).unwrap_err().to_string();
    assert!(err.contains(&*tmp.to_string_lossy()) && err.contains("No space left"), "{err}");
    assert!(!tmp.exists(), "the failed temporary file stays behind");
    let index = StoreIndex::read(&out).unwrap();
    assert_eq!((index.rows, index.complete), (16, false));
    let mut w = StoreWriter::resume(&out, spec(40, 16, StoreDtype::F32)).unwrap();
    w.push(batch(16, 24, StoreDtype::F32)).unwrap();
    assert_eq!(w.finish().unwrap().rows, 40);
}

#[test]
fn a_second_writer_is_refused_while_the_first_runs_and_deletes_none_of_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let mut first = StoreWriter::create(&out, spec(40, 16, StoreDtype::F32)).unwrap();
    first.push(batch(0, 16, StoreDtype::F32)).unwrap();
    // The first writer's temporary file of a shard in progress.
    let in_progress = crate::files::partial_path(&out.join("shard-00001.safetensors"));
    std::fs::write(&in_progress, b"being written").unwrap();
    for second in [
        StoreWriter::resume(&out, spec(40, 16, StoreDtype::F32)).map(|_| ()),
        StoreWriter::create(&out, spec(40, 16, StoreDtype::F32)).map(|_| ()),
    ] {
        let err = second.unwrap_err().to_string();
        assert!(
            err.contains("another bae process") || err.contains("already holds an activation store"),
            "{err}"
        );
    }
    let err = StoreWriter::resume(&out, spec(40, 16, StoreDtype::F32)).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
    assert!(in_progress.exists(), "a refused resume removed the live writer's file");
    std::fs::remove_file(&in_progress).unwrap();
    first.push(batch(16, 24, StoreDtype::F32)).unwrap();
    assert_eq!(first.finish().unwrap().rows, 40);
    // Released once the writer is done.
    assert!(StoreWriter::resume(&out, spec(40, 16, StoreDtype::F32)).is_ok());
}

#[test]
fn row_ranges_split_across_chunks() {
    let data: Vec<f32> = (0..30).map(|v| v as f32).collect();
    let rows = InMemoryRows::new(data, 3, 4).unwrap(); // 10 rows in chunks of 4, 4, 2
    assert_eq!((rows.chunks(), rows.chunk_len(2)), (3, 2));
    let middle = RowRange::new(&rows, 3, 9);
    assert_eq!((middle.rows(), middle.chunks()), (6, 3));
    let firsts: Vec<f32> = all_rows_of(&middle, 3).iter().map(|r| r[0] / 3.0).collect();
    assert_eq!(firsts, vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert_eq!(RowRange::new(&rows, 10, 10).chunks(), 0);
}

#[test]
fn non_finite_values_are_named_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acts.safetensors");
    let mut values = vec![0.5f32; 12];
    values[7] = f32::NAN;
    let m = Tensor::from_vec(values, (4, 3), &Device::Cpu).unwrap();
    candle_core::safetensors::save(&std::collections::HashMap::from([("a".to_string(), m)]), &path).unwrap();
    let source = SafetensorsMatrix::open(&path, "a").unwrap();
    let err = source.read_chunk(0).unwrap_err().to_string();
    assert!(err.contains("NaN") && err.contains("row 2, column 1"), "{err}");
}

#[test]
fn shard_names_that_leave_the_store_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("store");
    write_all(&out, spec(20, 8, StoreDtype::F32), &[(0, 15)]);
    let index_path = out.join("index.json");
    let good = std::fs::read_to_string(&index_path).unwrap();
    let first = ActivationStore::open(&out).unwrap().index().shards[0].file.clone();
    for bad in ["../elsewhere.safetensors", "/etc/passwd", "sub/shard.safetensors", ".."] {
        std::fs::write(&index_path, good.replace(&format!("\"{first}\""), &format!("{:?}", bad))).unwrap();
        let Err(err) = ActivationStore::open(&out) else { panic!("{bad} was accepted") };
        let err = err.to_string();
        assert!(err.contains("not a plain file name") && err.contains(bad), "{bad}: {err}");
    }
    std::fs::write(&index_path, good).unwrap();
    assert!(ActivationStore::open(&out).is_ok());
}

#[test]
fn fuzzed_store_indexes_and_shards_give_errors_that_name_them_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    write_all(&store, spec(40, 16, StoreDtype::F16), &[(0, 40)]);
    let read_all = || -> Option<String> {
        let read = ActivationStore::open(&store).and_then(|s| {
            for hook in &s.index().spec.hooks {
                let rows = s.hook(hook)?;
                for i in 0..rows.chunks() {
                    rows.read_chunk(i)?;
                }
            }
            Ok(())
        });
        read.err().map(|e| e.to_string())
    };
    assert_eq!(read_all(), None);
    for file in [INDEX_FILE, "shard-00001.safetensors"] {
        let path = store.join(file);
        let original = std::fs::read(&path).unwrap();
        bae_lm::fuzz::run(file, &original, file, |bytes| {
            std::fs::write(&path, bytes).unwrap();
            read_all()
        });
        std::fs::write(&path, &original).unwrap();
    }
}
