//! `bae train`: checkpoints, training log, resume, Python interoperability, bad input.

use bae_train::bae::{synthetic_bits, Autoencoder};

use super::*;

struct Run {
    _dir: tempfile::TempDir,
    root: PathBuf,
    rows: PathBuf,
    config: PathBuf,
}

fn setup(epochs: usize) -> Run {
    setup_rows(640, epochs)
}

/// A run over `n` rows of 3 planted bits in R^12.
fn setup_rows(n: usize, epochs: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let rows = root.join("rows.safetensors");
    let x = synthetic_bits(n, 12, 3, 4.0, 0.05, 9).unwrap();
    candle_core::safetensors::save(&std::collections::HashMap::from([("acts".to_string(), x)]), &rows)
        .unwrap();
    let config = root.join("run.toml");
    write_config(&config, epochs);
    Run { _dir: dir, root, rows, config }
}

fn write_config(path: &Path, epochs: usize) {
    std::fs::write(
        path,
        format!(
            "[train]\nd_hidden = 8\nestimator = \"sigmoid\"\nlambda_entropy = 0.01\nlambda_covariance = 0.01\n\
             entropy_start_epoch = 1\nlr = 0.005\nbatch = 64\nepochs = {epochs}\ncheckpoint_every = 2\nseed = 3\n"
        ),
    )
    .unwrap();
}

/// `bae train` on the run's rows and config into `out`, with `extra` flags.
fn train_args<'a>(run: &'a Run, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--config",
        s(&run.config),
        "--acts",
        s(&run.rows),
        "--tensor",
        "acts",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

fn train(run: &Run, out: &Path, extra: &[&str]) -> Output {
    bae(&train_args(run, out, extra))
}

/// A run's files, but the lock file, which names the last writer's PID.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != bae_train::lock::LOCK_FILE)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn train_writes_a_run_refuses_to_overwrite_it_and_resumes_to_the_same_weights() {
    let run = setup(4);
    let a = run.root.join("a");
    let out = train(&run, &a, &[]);
    assert_ok(&out);
    assert!(stderr(&out).contains("d = 12 -> d' = 8 on 640 rows"), "{}", stderr(&out));
    let names: Vec<String> = files(&a).into_keys().collect();
    assert_eq!(
        names,
        ["cfg.json", "checkpoint.safetensors", "sae_weights.safetensors", "training_log.parquet"]
    );
    assert!(a.join(bae_train::lock::LOCK_FILE).is_file(), "the run's lock file");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("cfg.json")).unwrap()).unwrap();
    assert_eq!(
        (cfg["d_in"].as_u64(), cfg["d_sae"].as_u64(), cfg["epochs_done"].as_u64()),
        (Some(12), Some(8), Some(4))
    );
    let weights = candle_core::safetensors::load(a.join("sae_weights.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(weights["W_enc"].dims(), &[12, 8]);
    assert_eq!(weights["W_dec"].dims(), &[8, 12]);
    let (log, _) = read_parquet(&a.join("training_log.parquet"));
    assert_eq!(log.num_rows(), 8, "train and val rows for 4 epochs");
    check_tables_with_pyarrow(&[&a.join("training_log.parquet")]);
    check_plot(&a.join("training_log.parquet"), None, "Fraction of variance unexplained");

    let before = files(&a);
    assert_clean_failure(&train(&run, &a, &[]), &["already holds a training run", "--resume"]);
    assert_eq!(files(&a), before, "a refused run changed the files");

    // A run of 2 epochs, resumed with 4: the same weights as the 4-epoch run.
    let b = run.root.join("b");
    write_config(&run.config, 2);
    assert_ok(&train(&run, &b, &[]));
    write_config(&run.config, 4);
    let out = train(&run, &b, &["--resume"]);
    assert_ok(&out);
    assert!(stderr(&out).contains("after epoch 2"), "{}", stderr(&out));
    assert_eq!(std::fs::read(b.join("sae_weights.safetensors")).unwrap(), before["sae_weights.safetensors"]);
}

/// What a finished run must hold to equal another: the SAELens files byte for byte,
/// the checkpoint's tensors, and the log without its wall-clock column.
struct FinishedRun {
    weights: Vec<u8>,
    cfg: serde_json::Value,
    checkpoint: Vec<(String, Vec<f32>)>,
    log: Vec<(String, arrow::array::ArrayData)>,
}

fn finished_run(dir: &Path) -> FinishedRun {
    let weights = std::fs::read(dir.join("sae_weights.safetensors")).unwrap();
    // The config names its own folder: everything else must match.
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cfg.json")).unwrap()).unwrap();
    assert_eq!(cfg["train_config"]["out"].as_str(), Some(s(dir)));
    cfg["train_config"]["out"] = serde_json::Value::Null;
    let mut tensors: Vec<(String, Vec<f32>)> = read_safetensors(&dir.join("checkpoint.safetensors"))
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let (log, _) = read_parquet(&dir.join("training_log.parquet"));
    let columns = log
        .schema()
        .fields()
        .iter()
        .zip(log.columns())
        .filter(|(field, _)| field.name() != "seconds")
        .map(|(field, column)| (field.name().clone(), column.to_data()))
        .collect();
    FinishedRun { weights, cfg, checkpoint: tensors, log: columns }
}

/// Kills `bae train` with SIGKILL at instants spread over an uninterrupted run's
/// lifetime (before anything is written, mid-epoch, mid-checkpoint, after the last
/// checkpoint), then continues it with `--resume`: every continuation must end with
/// the uninterrupted run's weights, checkpoint and log.
#[test]
fn a_run_killed_at_any_instant_resumes_to_the_uninterrupted_result() {
    let run = setup_rows(60_000, 10);
    let reference = run.root.join("reference");
    let started = std::time::Instant::now();
    assert_ok(&train(&run, &reference, &[]));
    let lifetime = started.elapsed();
    let expected = finished_run(&reference);
    let instants = 12;
    for i in 0..instants {
        let dir = run.root.join(format!("killed-{i}"));
        // Twice in a row for odd i: a resumed run killed again.
        let kills = if i % 2 == 1 { 2 } else { 1 };
        for kill in 0..kills {
            let extra: &[&str] = if kill == 0 { &[] } else { &["--resume"] };
            let delay = lifetime.mul_f64((i as f64 + 0.5) / instants as f64);
            bae_killed_after(&train_args(&run, &dir, extra), delay);
        }
        let left: Vec<String> = if dir.exists() { files(&dir).into_keys().collect() } else { vec![] };
        eprintln!("instant {i}: {left:?}");
        let out = train(&run, &dir, &["--resume"]);
        assert_ok(&out);
        let got = finished_run(&dir);
        let what = format!("killed at instant {i} of {instants}: {}", stderr(&out));
        assert!(got.weights == expected.weights, "SAELens weights differ; {what}");
        assert_eq!(got.cfg, expected.cfg, "{what}");
        assert!(got.checkpoint == expected.checkpoint, "checkpoint tensors differ; {what}");
        assert!(got.log == expected.log, "training logs differ; {what}");
    }

    // The narrowest window, made by hand: killed after the last checkpoint was renamed
    // into place, before the SAELens files and the log beside it were rewritten (they
    // are an earlier checkpoint's), with a half-written temporary file left behind.
    let dir = run.root.join("after-last-checkpoint");
    write_config(&run.config, 8);
    assert_ok(&train(&run, &dir, &[]));
    write_config(&run.config, 10);
    std::fs::copy(reference.join("checkpoint.safetensors"), dir.join("checkpoint.safetensors")).unwrap();
    std::fs::write(dir.join("sae_weights.safetensors.partial"), b"half").unwrap();
    let out = train(&run, &dir, &["--resume"]);
    assert_ok(&out);
    assert!(stderr(&out).contains("after epoch 10"), "{}", stderr(&out));
    let got = finished_run(&dir);
    assert!(got.weights == expected.weights, "SAELens weights left from epoch 8");
    assert_eq!(got.cfg, expected.cfg);
    assert!(got.log == expected.log, "training log left from epoch 8");
}

/// A second `bae train --resume` on a folder another one is training into is refused at
/// once with the first one's PID, and the first finishes as if alone.
#[test]
fn a_second_writer_is_refused_while_the_first_trains() {
    let run = setup_rows(60_000, 30);
    let dir = run.root.join("busy");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_bae"))
        .args(train_args(&run, &dir, &[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The lock file names its holder once the first run holds it.
    while !std::fs::read_to_string(dir.join(".bae-lock")).is_ok_and(|holder| holder.starts_with("PID")) {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before taking its lock");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = train(&run, &dir, &["--resume"]);
    assert_clean_failure(&second, &["another bae process", &format!("PID {}", first.id()), "busy"]);
    let first = first.wait_with_output().unwrap();
    assert_ok(&first);
    let alone = run.root.join("alone");
    assert_ok(&train(&run, &alone, &[]));
    assert!(finished_run(&dir).weights == finished_run(&alone).weights, "the refused writer changed the run");
}

#[test]
fn python_reads_the_checkpoint_and_gets_bae_codes() {
    let run = setup(2);
    let baseline = |architecture: &str, extra: &str| {
        format!(
            "[train]\narchitecture = \"{architecture}\"\n{extra}d_hidden = 8\nlr = 0.005\nbatch = 64\nepochs = 2\nseed = 3\n"
        )
    };
    for (name, config) in [
        ("binary", None),
        ("relu_l1", Some(baseline("relu_l1", "l1_coefficient = 0.01\n"))),
        ("topk", Some(baseline("topk", "k = 3\n"))),
        ("batch_topk", Some(baseline("batch_topk", "k = 3\n"))),
        (
            "jumprelu",
            Some(baseline("jumprelu", "jumprelu_initial_threshold = 0.2\njumprelu_bandwidth = 0.1\n")),
        ),
    ] {
        if let Some(text) = config {
            std::fs::write(&run.config, text).unwrap();
        }
        let out_dir = run.root.join(name);
        assert_ok(&train(&run, &out_dir, &[]));
        check_with_python(&run, &out_dir, name);
    }
}

/// scripts/check_checkpoint.py encodes the rows from the run's SAELens files; its
/// activations must equal bae's own.
fn check_with_python(run: &Run, out_dir: &Path, architecture: &str) {
    let codes_path = run.root.join(format!("codes-{architecture}.safetensors"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_checkpoint.py");
    let py = Command::new(python())
        .args([
            s(&script),
            "--run",
            s(out_dir),
            "--acts",
            s(&run.rows),
            "--tensor",
            "acts",
            "--out",
            s(&codes_path),
        ])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "check_checkpoint.py failed (run scripts/setup-python.sh?):\n{}",
        stderr(&py)
    );
    assert!(String::from_utf8_lossy(&py.stdout).contains(&format!("\"architecture\": \"{architecture}\"")));
    let theirs = candle_core::safetensors::load(&codes_path, &Device::Cpu).unwrap();
    let their_codes = theirs["codes"].flatten_all().unwrap().to_vec1::<u8>().unwrap();
    let their_acts = theirs["activations"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let model = Autoencoder::from_saelens(out_dir).unwrap();
    assert_eq!(model.architecture.name(), architecture);
    let rows = candle_core::safetensors::load(&run.rows, &Device::Cpu).unwrap()["acts"].clone();
    let ours = model.encode(&rows.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    let our_codes: Vec<u8> = ours.iter().map(|&a| u8::from(a != 0.0)).collect();
    assert_eq!(our_codes, their_codes, "{architecture}: active patterns differ");
    for (i, (a, b)) in ours.iter().zip(&their_acts).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{architecture}: activation {i}: bae {a}, numpy {b}"
        );
    }
    let active = our_codes.iter().filter(|&&z| z == 1).count();
    assert!(active > 0 && active < 640 * 8, "{architecture}: degenerate codes, {active} active");
}

#[test]
fn the_thread_count_does_not_change_the_weights() {
    // Large enough that OpenBLAS and rayon split the work: [256, 64] x [64, 512].
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.safetensors");
    let x = synthetic_bits(1024, 64, 6, 4.0, 0.05, 5).unwrap();
    candle_core::safetensors::save(&std::collections::HashMap::from([("acts".to_string(), x)]), &rows)
        .unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        "[train]\nd_hidden = 512\nlambda_entropy = 0.01\nlambda_covariance = 0.01\nentropy_start_epoch = 1\n\
         lr = 0.005\nbatch = 256\nepochs = 3\n",
    )
    .unwrap();
    let weights = |threads: &str| {
        let out = dir.path().join(format!("t{threads}"));
        let args =
            ["train", "--config", s(&config), "--acts", s(&rows), "--tensor", "acts", "--out", s(&out)];
        assert_ok(&bae_env(&args, &[("RAYON_NUM_THREADS", threads), ("OPENBLAS_NUM_THREADS", threads)]));
        std::fs::read(out.join("sae_weights.safetensors")).unwrap()
    };
    let one = weights("1");
    assert_eq!(one, weights("2"));
    assert_eq!(one, weights("3"));
}

// ---- bad input ----

/// What a machine without a usable GPU says, by build.
fn no_gpu_message() -> &'static str {
    if cfg!(feature = "cuda") {
        "no usable GPU"
    } else {
        "built without GPU support"
    }
}

#[test]
fn bad_train_on_cuda_without_a_gpu() {
    let run = setup(2);
    let out = run.root.join("gpu");
    let o = train(&run, &out, &["--device", "cuda"]);
    if o.status.success() {
        eprintln!("a GPU is present: --device cuda trained, the error path is not exercised here");
        return;
    }
    let needle = if cfg!(feature = "cuda") { "no usable GPU" } else { "no GPU support" };
    assert_clean_failure(&o, &["CUDA: ", needle]);
    assert!(!out.exists(), "a failed start left {}", out.display());
    let check = bae(&["gpu-check"]);
    assert!(!check.status.success());
    assert_clean_failure(&check, &[no_gpu_message()]);
}

#[test]
fn bad_train_nan_in_the_activations() {
    let run = setup(2);
    let mut values = vec![0.5f32; 100 * 4];
    values[4 * 37 + 2] = f32::INFINITY;
    let x = Tensor::from_vec(values, (100, 4), &Device::Cpu).unwrap();
    candle_core::safetensors::save(&std::collections::HashMap::from([("acts".to_string(), x)]), &run.rows)
        .unwrap();
    let out = run.root.join("never");
    assert_clean_failure(&train(&run, &out, &[]), &["rows.safetensors", "inf", "row 37, column 2"]);
    assert!(!out.exists());
}

#[test]
fn bad_train_config_unknown_or_contradictory() {
    let run = setup(2);
    let out = run.root.join("never");
    std::fs::write(&run.config, "[train]\nlearning_rate = 0.1\n").unwrap();
    assert_clean_failure(&train(&run, &out, &[]), &["run.toml", "unknown field `learning_rate`"]);
    std::fs::write(&run.config, "[train]\nd_hidden = 0\nbatch = 64\n").unwrap();
    assert_clean_failure(&train(&run, &out, &[]), &["`d_hidden` gives 0 features"]);
    std::fs::write(&run.config, "[train]\nbatch = 600\n").unwrap();
    assert_clean_failure(&train(&run, &out, &[]), &["`batch` = 600 is larger than the 512 training rows"]);
    std::fs::write(&run.config, "[train]\nbatch = 64\nepochs = 10\nentropy_start_epoch = 10\n").unwrap();
    assert_clean_failure(&train(&run, &out, &[]), &["entropy_start_epoch", "never apply"]);
    std::fs::write(
        &run.config,
        "[train]\narchitecture = \"topk\"\nk = 8\nlambda_entropy = 0.5\nbatch = 64\n",
    )
    .unwrap();
    assert_clean_failure(
        &train(&run, &out, &[]),
        &["`lambda_entropy` applies to architecture binary", "topk"],
    );
    std::fs::write(&run.config, "[train]\narchitecture = \"topk\"\nk = 50\nd_hidden = 16\nbatch = 64\n")
        .unwrap();
    assert_clean_failure(&train(&run, &out, &[]), &["`k` = 50, expected 1 ≤ k ≤ d' = 16"]);
    std::fs::write(&run.config, "[train]\narchitecture = \"gated\"\n").unwrap();
    assert_clean_failure(&train(&run, &out, &[]), &["run.toml", "unknown variant `gated`", "jumprelu"]);
    assert!(!out.exists());
}

#[test]
fn bad_train_resume_with_activations_of_another_width() {
    let run = setup(2);
    let out = run.root.join("run");
    assert_ok(&train(&run, &out, &[]));
    let before = files(&out);
    let x = synthetic_bits(640, 10, 3, 4.0, 0.05, 9).unwrap();
    candle_core::safetensors::save(&std::collections::HashMap::from([("acts".to_string(), x)]), &run.rows)
        .unwrap();
    write_config(&run.config, 4);
    assert_clean_failure(&train(&run, &out, &["--resume"]), &["checkpoint.safetensors", "another d"]);
    assert_eq!(files(&out), before);
}

#[test]
fn bad_train_store_without_a_hook() {
    let f = fixture(Family::Llama);
    let corpus = f.root.join("c.txt");
    std::fs::write(&corpus, "one two three four five six seven eight nine ten\n".repeat(20)).unwrap();
    let store = f.root.join("store");
    assert_ok(&bae(&["harvest", "-m", s(&f.hf), "--corpus", s(&corpus), "--tokens", "100", "-o", s(&store)]));
    let out = f.root.join("never");
    assert_clean_failure(
        &bae(&["train", "--acts", s(&store), "--out", s(&out)]),
        &["activation store", "--hook"],
    );
    assert_clean_failure(
        &bae(&["train", "--acts", s(&store), "--hook", "blocks.5.hook_resid_post", "--out", s(&out)]),
        &["no hook point `blocks.5.hook_resid_post`", "blocks.1.hook_resid_post"],
    );
}
