//! `bae run`: the main job end to end on a tiny model; a second run skips every stage,
//! a lost table is rebuilt identically, and another config is refused.

use super::icl::{write_task, ROWS};
use super::*;

fn write_config(root: &Path, model: &Path, epochs: usize) -> PathBuf {
    let corpus = root.join("corpus.txt");
    let lines: Vec<String> =
        (0..24).map(|i| format!("the cat number {i} sat on the mat and looked at the dog")).collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let task = write_task(root, &ROWS);
    let config = root.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[run]\nout = \"{out}\"\nhooks = [\"blocks.0.hook_resid_post\", \"blocks.1.hook_resid_post\"]\n\
             [harvest]\nmodel = \"{model}\"\ncorpus = \"{corpus}\"\ntokens = 300\nctx = 16\nbatch = 4\n\
             [train]\nd_hidden = 16\nepochs = {epochs}\nentropy_start_epoch = 1\nbatch = 32\nlr = 0.005\n\
             [entropy]\nprompts = \"{corpus}\"\nmax_prompts = 8\n\
             [icl]\ntasks = [\"{task}\"]\ndemos = [0, 1, 2]\nsamples = 4\n",
            out = s(&root.join("run")),
            model = s(model),
            corpus = s(&corpus),
            task = s(&task),
        ),
    )
    .unwrap();
    config
}

#[test]
fn run_does_every_stage_then_skips_them_and_rebuilds_what_is_lost() {
    let f = fixture(Family::Llama);
    let config = write_config(&f.root, &f.hf, 3);
    let out = f.root.join("run");
    assert_ok(&bae(&["run", s(&config)]));
    for file in [
        "config.resolved.json",
        "store/index.json",
        "baes/blocks.0.hook_resid_post/cfg.json",
        "baes/blocks.1.hook_resid_post/sae_weights.safetensors",
        "entropy.parquet",
        "icl-pairs.parquet",
        "plots/entropy-by-layer.png",
        "plots/entropy-by-position.png",
        "plots/icl-pairs-entropy.png",
        "plots/icl-pairs-accuracy.png",
        "plots/training-blocks.1.hook_resid_post.png",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    let (entropy, icl) = (out.join("entropy.parquet"), out.join("icl-pairs.parquet"));
    check_tables_with_pyarrow(&[&entropy, &icl]);
    // The BAEs record the model they were trained for.
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("baes/blocks.0.hook_resid_post/cfg.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["model"]["num_layers"], 2);

    let before = (std::fs::read(&entropy).unwrap(), std::fs::read(&icl).unwrap());
    let weights = std::fs::read(out.join("baes/blocks.1.hook_resid_post/sae_weights.safetensors")).unwrap();
    let again = bae(&["run", s(&config)]);
    assert_ok(&again);
    let log = stderr(&again);
    assert!(log.contains("harvest: complete, skipped") && log.contains("exists, skipped"), "{log}");
    assert_eq!(
        std::fs::read(out.join("baes/blocks.1.hook_resid_post/sae_weights.safetensors")).unwrap(),
        weights
    );

    // Lost tables are measured again, to the same values.
    std::fs::remove_file(&entropy).unwrap();
    std::fs::remove_file(&icl).unwrap();
    assert_ok(&bae(&["run", s(&config)]));
    assert_eq!((std::fs::read(&entropy).unwrap(), std::fs::read(&icl).unwrap()), before);

    // Another config is refused, and nothing changes.
    let changed = write_config(&f.root, &f.hf, 4);
    assert_clean_failure(
        &bae(&["run", s(&changed)]),
        &["holds a run made with another config", "config.resolved.json"],
    );
    assert_eq!(std::fs::read(&entropy).unwrap(), before.0);
}

#[test]
fn bad_run_configs() {
    let f = fixture(Family::Llama);
    let config = write_config(&f.root, &f.hf, 3);
    let text = std::fs::read_to_string(&config).unwrap();
    let variant = |from: &str, to: &str| {
        let path = f.root.join("variant.toml");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        bae(&["run", s(&path)])
    };
    assert_clean_failure(
        &variant("[train]\n", "[train]\nout = \"x\"\n"),
        &["[train] `out` is set by bae run"],
    );
    assert_clean_failure(&variant("hooks = [", "hookz = ["), &["variant.toml", "unknown field `hookz`"]);
    assert_clean_failure(
        &variant("[harvest]\n", "[harvest]\nout = \"x\"\n"),
        &["[harvest] `out` is set by bae run"],
    );
    // Inputs the later stages read are checked before the first runs.
    assert_clean_failure(
        &variant("[icl]\ntasks = [\"", "[icl]\ntasks = [\"missing-"),
        &["variant.toml", "[icl] tasks", "missing-"],
    );
    assert_clean_failure(
        &variant("\"blocks.0.hook_resid_post\", ", "\"blocks.*.hook_resid_post\", "),
        &["is a glob"],
    );
    assert_clean_failure(
        &variant("\"blocks.0.hook_resid_post\", ", "\"blocks.0.resid\", "),
        &["blocks.0.resid"],
    );
    let corpus = s(&f.root.join("corpus.txt")).to_string();
    assert_clean_failure(
        &variant(&format!("corpus = \"{corpus}\""), "corpus = \"no-such-corpus.txt\""),
        &["[harvest] corpus", "no-such-corpus.txt"],
    );
    assert!(!f.root.join("run").exists(), "a refused config started a run");
    // A run that fails in its first stage (a hook the 2-block model lacks) may be
    // started again with the config fixed; the folder is not locked to the bad one.
    let failed = variant("\"blocks.1.hook_resid_post\"]", "\"blocks.7.hook_resid_post\"]");
    assert_clean_failure(&failed, &["blocks.7"]);
    assert!(f.root.join("run/config.resolved.json").is_file());
    assert_ok(&bae(&["run", s(&config)]));
    assert!(f.root.join("run/entropy.parquet").is_file());
    // Once a stage has finished, another config is refused.
    assert_clean_failure(
        &variant("max_prompts = 8", "max_prompts = 7"),
        &["holds a run made with another config"],
    );
}

#[test]
fn an_undertrained_bae_fails_its_gate_in_every_table_and_the_summary() {
    use arrow::array::Array;
    let f = fixture(Family::Llama);
    let config = write_config(&f.root, &f.hf, 2);
    // Two epochs at a learning rate that cannot move the weights: the BAE explains
    // nothing, and everything measured through it must say so.
    let text = std::fs::read_to_string(&config).unwrap().replace("lr = 0.005", "lr = 1e-12");
    std::fs::write(&config, text).unwrap();
    let o = bae(&["run", s(&config)]);
    assert_ok(&o);
    let log = stderr(&o);
    assert!(log.contains("FAILING their gate: blocks.0.hook_resid_post, blocks.1.hook_resid_post"), "{log}");
    let out = f.root.join("run");
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("baes/blocks.0.hook_resid_post/cfg.json")).unwrap(),
    )
    .unwrap();
    let fvu = cfg["quality"]["val_fvu"].as_f64().unwrap();
    assert!(fvu > 0.5, "an untrained BAE with FVU {fvu}");
    assert!(cfg["activation_scale"].as_f64().unwrap() > 0.0, "{cfg}");
    for table in ["entropy.parquet", "icl-pairs.parquet"] {
        let (batch, _) = read_parquet(&out.join(table));
        let quality = batch
            .column_by_name("quality")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap()
            .clone();
        let hooks = batch.column_by_name("hook").unwrap().null_count();
        assert_eq!(quality.null_count(), hooks, "{table}: a verdict on exactly the rows with a hook");
        assert!(quality.iter().flatten().all(|q| q == "fail"), "{table}");
    }
}

/// What a finished run must hold to equal another: the store's shards, the BAEs'
/// weights (bytes) and the tables' contents (their metadata names the folder).
fn run_outputs(out: &Path) -> (Vec<(String, Vec<u8>)>, Vec<arrow::array::RecordBatch>) {
    let store = out.join("store");
    let mut files: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| format!("store/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|n| n.starts_with("store/shard-"))
        .collect();
    files.sort();
    files.extend(
        ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
            .map(|hook| format!("baes/{hook}/sae_weights.safetensors")),
    );
    let bytes = files.into_iter().map(|f| (f.clone(), std::fs::read(out.join(&f)).unwrap())).collect();
    let tables = ["entropy.parquet", "icl-pairs.parquet"].map(|t| read_parquet(&out.join(t)).0).to_vec();
    (bytes, tables)
}

/// `bae run` killed with SIGKILL at instants spread over an uninterrupted run's lifetime
/// (mid-harvest, mid-training, mid-measurement) continues with the same command to the
/// uninterrupted run's store, weights and tables.
#[test]
fn a_run_killed_at_any_instant_continues_to_the_uninterrupted_result() {
    let f = fixture(Family::Llama);
    let folder = |name: &str| {
        let root = f.root.join(name);
        std::fs::create_dir_all(&root).unwrap();
        write_config(&root, &f.hf, 3)
    };
    let reference = folder("reference");
    let started = std::time::Instant::now();
    assert_ok(&bae(&["run", s(&reference)]));
    let lifetime = started.elapsed();
    let (files, tables) = run_outputs(&f.root.join("reference/run"));
    let instants = 8;
    for i in 0..instants {
        let config = folder(&format!("killed-{i}"));
        bae_killed_after(&["run", s(&config)], lifetime.mul_f64((i as f64 + 0.5) / instants as f64));
        let out = bae(&["run", s(&config)]);
        assert_ok(&out);
        let (got_files, got_tables) = run_outputs(&f.root.join(format!("killed-{i}/run")));
        assert_eq!(got_files.len(), files.len(), "killed at instant {i}");
        for ((name, a), (_, b)) in got_files.iter().zip(&files) {
            assert!(a == b, "killed at instant {i} of {instants}: {name} differs\n{}", stderr(&out));
        }
        assert!(got_tables == tables, "killed at instant {i} of {instants}: the tables differ");
    }
}
