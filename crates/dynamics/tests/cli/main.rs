//! End-to-end tests of the `bae` binary on tiny seeded models written inside the tests.
//! One test binary; one module per area.

mod bad_input;
mod commands;
mod docs;
mod entropy;
mod features;
mod fidelity;
mod harvest;
mod hub;
mod icl;
mod reference;
mod run;
mod train;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bae_lm::testing::{random_weights, tiny_config, write_gguf, write_hf_dir};
use bae_lm::{Batch, Family, ForwardRequest, HookPoint, LoadOptions, Model};
use candle_core::{DType, Device, Tensor};

/// The first record batch of a Parquet table and its key-value metadata.
fn read_parquet(path: &Path) -> (arrow::array::RecordBatch, std::collections::HashMap<String, String>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let kv = reader.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let meta = kv.into_iter().map(|k| (k.key, k.value.unwrap_or_default())).collect();
    (reader.build().unwrap().next().unwrap().unwrap(), meta)
}

fn bae(args: &[&str]) -> Output {
    bae_env(args, &[])
}

fn bae_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bae"));
    cmd.args(args).env_remove("HF_HUB_OFFLINE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run bae")
}

/// Runs `bae args` in the background with its output discarded, and kills it with
/// SIGKILL after `delay` if it is still running: what a kill at that instant leaves.
fn bae_killed_after(args: &[&str], delay: std::time::Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bae"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start bae");
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().expect("wait for bae");
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "bae failed:\n{}", stderr(o));
}

/// Fails unless bae exited non-zero, without panicking, with every `needle` in stderr.
fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "bae succeeded but should have failed:\n{}", stdout(o));
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "bae panicked:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    hf: PathBuf,
    gguf: PathBuf,
}

fn fixture(family: Family) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let cfg = tiny_config(family);
    let weights = random_weights(&cfg, 21);
    let hf = root.join("tiny-hf");
    write_hf_dir(&hf, &cfg, &weights, 1).unwrap();
    let gguf = root.join("tiny.gguf");
    write_gguf(&gguf, &cfg, &weights).unwrap();
    Fixture { _dir: dir, root, hf, gguf }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_safetensors(path: &Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// scripts/check_tables.py (pyarrow) reads `files` and checks schema and values.
fn check_tables_with_pyarrow(files: &[&Path]) {
    let script = repo_root().join("scripts/check_tables.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script);
    for f in files {
        cmd.arg(f);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "check_tables.py failed (run scripts/setup-python.sh?):\n{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), files.len());
}

/// `bae plot TABLE --kind KIND` to PNG and SVG: a PNG 1000 px wide and an SVG holding
/// `text` (an axis description or title), nothing left under a temporary name.
fn check_plot(table: &Path, kind: Option<&str>, text: &str) {
    let dir = table.parent().unwrap();
    for ext in ["png", "svg"] {
        let out = dir.join(format!("plot-{}.{ext}", kind.unwrap_or("default")));
        let mut args = vec!["plot", s(table), "-o", s(&out)];
        if let Some(k) = kind {
            args.extend(["--kind", k]);
        }
        assert_ok(&bae(&args));
        let bytes = std::fs::read(&out).unwrap();
        if ext == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", out.display());
            assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1000, "width");
        } else {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(svg.contains(text), "{} lacks {text:?}", out.display());
            assert!(svg.matches("<polyline").count() >= 1, "{}: no lines", out.display());
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with torch/transformers/safetensors: BAE_PYTHON, else the repository's
/// .venv (scripts/setup-python.sh), else python3.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("BAE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}
