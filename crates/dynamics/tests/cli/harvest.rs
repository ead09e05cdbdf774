//! `bae harvest`: corpora in three formats, config files, resume, and bad input.

use std::collections::BTreeMap;

use bae_train::store::{ActivationStore, StoreIndex};

use super::*;

const DOCS: [&str; 5] = [
    "the cat sat on the mat and looked at the hat",
    "hello there",
    "one two three four five six seven eight nine ten eleven twelve",
    "a short one",
    "the end of the corpus is near, very near",
];

fn write_text_corpus(dir: &Path) -> PathBuf {
    let path = dir.join("corpus.txt");
    std::fs::write(&path, DOCS.join("\n")).unwrap();
    path
}

fn harvest_args<'a>(model: &'a Path, corpus: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "harvest",
        "-m",
        s(model),
        "--corpus",
        s(corpus),
        "--hooks",
        "blocks.*.hook_resid_post,hook_embed",
        "--tokens",
        "60",
        "--ctx",
        "8",
        "--batch",
        "2",
        "--shard-mb",
        "0.01",
        "-o",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

/// Every file of a store directory, by name.
/// A store's files, but the lock file, which names the last writer's PID.
fn store_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != bae_train::lock::LOCK_FILE)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn shards(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    store_files(dir).into_iter().filter(|(name, _)| name.starts_with("shard-")).collect()
}

#[test]
fn harvest_stores_the_same_rows_from_text_jsonl_and_parquet() {
    let f = fixture(Family::Llama);
    let text = write_text_corpus(&f.root);
    let jsonl = f.root.join("corpus.jsonl");
    let lines: Vec<String> =
        DOCS.iter().map(|d| serde_json::json!({"body": d, "id": 7}).to_string()).collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let parquet = f.root.join("corpus.parquet");
    write_parquet(&parquet, &DOCS);

    let out_text = f.root.join("from-text");
    let run = bae(&harvest_args(&f.hf, &text, &out_text, &["--dtype", "bf16"]));
    assert_ok(&run);
    assert!(stderr(&run).contains("stored 60 rows x 3 hook points (bf16)"), "{}", stderr(&run));
    let store = ActivationStore::open(&out_text).unwrap();
    let index = store.index();
    assert!(index.complete);
    assert_eq!((index.rows, index.spec.d_model, index.spec.context_length), (60, 64, 8));
    assert_eq!(index.spec.hooks, vec!["hook_embed", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]);
    assert_eq!(index.spec.corpus.format, "text");
    assert_eq!(index.spec.corpus.sha256.len(), 64);
    assert_eq!(index.spec.model.family, "llama");

    for (corpus, field, name) in [(&jsonl, "body", "from-jsonl"), (&parquet, "text", "from-parquet")] {
        let out = f.root.join(name);
        assert_ok(&bae(&harvest_args(&f.hf, corpus, &out, &["--dtype", "bf16", "--field", field])));
        assert_eq!(shards(&out), shards(&out_text), "{name}: shards differ from the text corpus's");
    }
}

fn write_parquet(path: &Path, docs: &[&str]) {
    use std::sync::Arc;
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("text", arrow::datatypes::DataType::Utf8, false),
        arrow::datatypes::Field::new("n", arrow::datatypes::DataType::Int32, false),
    ]));
    let text: arrow::array::ArrayRef = Arc::new(arrow::array::StringArray::from(docs.to_vec()));
    let n: arrow::array::ArrayRef =
        Arc::new(arrow::array::Int32Array::from_iter_values(0..docs.len() as i32));
    let batch = arrow::array::RecordBatch::try_new(schema.clone(), vec![text, n]).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn harvest_reads_a_config_file_and_flags_override_it() {
    let f = fixture(Family::Llama);
    let corpus = write_text_corpus(&f.root);
    let config = f.root.join("run.toml");
    let out = f.root.join("store");
    std::fs::write(
        &config,
        format!(
            "[harvest]\nmodel = {:?}\ncorpus = {:?}\nhooks = \"blocks.1.hook_resid_post\"\ntokens = 30\nctx = 8\nout = {:?}\ndtype = \"f16\"\n",
            s(&f.hf),
            s(&corpus),
            s(&out)
        ),
    )
    .unwrap();
    assert_ok(&bae(&["harvest", "--config", s(&config), "--tokens", "25"]));
    let index = StoreIndex::read(&out).unwrap();
    assert_eq!((index.rows, index.spec.tokens), (25, 25), "the flag wins over the file");
    assert_eq!(index.spec.hooks, vec!["blocks.1.hook_resid_post"]);
    assert_eq!(index.spec.dtype.name(), "f16");

    std::fs::write(&config, "[harvest]\ntokenz = 3\n").unwrap();
    let run = bae(&["harvest", "--config", s(&config)]);
    assert_clean_failure(&run, &["run.toml", "unknown field `tokenz`"]);
    std::fs::write(&config, "[harvest]\ntokens = 3\n").unwrap();
    assert_clean_failure(
        &bae(&["harvest", "--config", s(&config)]),
        &["missing --model", "`model` in [harvest]"],
    );
}

#[test]
fn harvest_resumes_a_store_cut_short_and_refuses_to_overwrite_it() {
    let f = fixture(Family::Llama);
    let corpus = write_text_corpus(&f.root);
    let whole = f.root.join("whole");
    assert_ok(&bae(&harvest_args(&f.hf, &corpus, &whole, &[])));
    let full = StoreIndex::read(&whole).unwrap();
    assert!(full.shards.len() >= 2, "want several shards, got {:?}", full.shards);

    // What a kill leaves: the first shard listed, later ones absent, a half-written file.
    let cut = f.root.join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::copy(whole.join(&full.shards[0].file), cut.join(&full.shards[0].file)).unwrap();
    std::fs::write(cut.join("shard-00001.safetensors.partial"), b"half").unwrap();
    let mut partial = full.clone();
    partial.shards.truncate(1);
    partial.rows = partial.shards[0].rows as u64;
    partial.complete = false;
    partial.write(&cut).unwrap();

    let before = store_files(&cut);
    let run = bae(&harvest_args(&f.hf, &corpus, &cut, &[]));
    assert_clean_failure(&run, &["already holds an activation store", "rows written", "--resume"]);
    assert_eq!(store_files(&cut), before, "a refused run changed the store");

    let run = bae(&harvest_args(&f.hf, &corpus, &cut, &["--resume"]));
    assert_ok(&run);
    assert!(stderr(&run).contains(&format!("resuming {} at {}", s(&cut), partial.rows)), "{}", stderr(&run));
    assert_eq!(store_files(&cut), store_files(&whole), "resumed store differs from the uninterrupted one");
}

// ---- bad input: a clear error, exit 1, existing stores untouched ----

fn harvest_fails(f: &Fixture, corpus: &Path, extra: &[&str], needles: &[&str]) {
    let out = f.root.join("never");
    assert_clean_failure(&bae(&harvest_args(&f.hf, corpus, &out, extra)), needles);
    assert!(!out.exists(), "a store directory was left behind");
}

#[test]
fn bad_harvest_empty_corpus() {
    let f = fixture(Family::Llama);
    let corpus = f.root.join("empty.txt");
    std::fs::write(&corpus, "\n\n   \n").unwrap();
    harvest_fails(&f, &corpus, &[], &["empty.txt", "no text to harvest"]);
}

#[test]
fn bad_harvest_jsonl_line_is_not_json() {
    let f = fixture(Family::Llama);
    let corpus = f.root.join("c.jsonl");
    std::fs::write(&corpus, "{\"text\": \"fine\"}\n{oops}\n").unwrap();
    harvest_fails(&f, &corpus, &[], &["c.jsonl", "line 2", "not valid JSON"]);
}

#[test]
fn bad_harvest_jsonl_line_lacks_the_field() {
    let f = fixture(Family::Llama);
    let corpus = f.root.join("c.jsonl");
    std::fs::write(&corpus, "{\"content\": \"fine\"}\n").unwrap();
    harvest_fails(&f, &corpus, &[], &["c.jsonl", "line 1", "no field `text`", "--field"]);
}

#[test]
fn bad_harvest_parquet_column_missing() {
    let f = fixture(Family::Llama);
    let corpus = f.root.join("c.parquet");
    write_parquet(&corpus, &DOCS);
    harvest_fails(&f, &corpus, &["--field", "body"], &["c.parquet", "column `body`", "it has: text, n"]);
}

#[test]
fn bad_harvest_hook_the_model_lacks() {
    let f = fixture(Family::Llama);
    let corpus = write_text_corpus(&f.root);
    let out = f.root.join("never");
    let mut args = harvest_args(&f.hf, &corpus, &out, &[]);
    let hooks = args.iter().position(|a| *a == "--hooks").unwrap();
    args[hooks + 1] = "blocks.7.hook_resid_post";
    assert_clean_failure(&bae(&args), &["blocks.7", "2 blocks"]);
    assert!(!out.exists());
}

#[test]
fn bad_harvest_output_directory_holds_a_different_store() {
    let f = fixture(Family::Llama);
    let corpus = write_text_corpus(&f.root);
    let out = f.root.join("store");
    assert_ok(&bae(&harvest_args(&f.hf, &corpus, &out, &[])));
    let before = store_files(&out);
    let run = bae(&harvest_args(&f.hf, &corpus, &out, &["--dtype", "f16"]));
    assert_clean_failure(
        &run,
        &["already holds an activation store with a different dtype", "\"f32\"", "\"f16\""],
    );
    let run = bae(&harvest_args(&f.hf, &corpus, &out, &["--dtype", "bf16", "--resume"]));
    assert_clean_failure(&run, &["different dtype", "\"bf16\""]);
    assert_eq!(store_files(&out), before);
}

#[test]
fn bad_harvest_output_directory_holds_other_files() {
    let f = fixture(Family::Llama);
    let corpus = write_text_corpus(&f.root);
    let out = f.root.join("mine");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("thesis.tex"), b"precious").unwrap();
    assert_clean_failure(&bae(&harvest_args(&f.hf, &corpus, &out, &[])), &["not empty", "thesis.tex"]);
    assert_eq!(std::fs::read(out.join("thesis.tex")).unwrap(), b"precious");
}

#[test]
fn bad_harvest_zero_tokens_and_missing_corpus() {
    let f = fixture(Family::Llama);
    let corpus = write_text_corpus(&f.root);
    let out = f.root.join("never");
    let mut args = harvest_args(&f.hf, &corpus, &out, &[]);
    let tokens = args.iter().position(|a| *a == "--tokens").unwrap();
    args[tokens + 1] = "0";
    assert_clean_failure(&bae(&args), &["--tokens must be at least 1"]);
    let missing = f.root.join("nope.txt");
    assert_clean_failure(&bae(&harvest_args(&f.hf, &missing, &out, &[])), &["nope.txt"]);
    assert!(!out.exists());
}

// ---- bae store stats: both row sources, streamed ----

#[test]
fn store_stats_agree_between_a_store_and_the_same_rows_in_a_plain_file() {
    let f = fixture(Family::Llama);
    let corpus = write_text_corpus(&f.root);
    let out = f.root.join("store");
    assert_ok(&bae(&harvest_args(&f.hf, &corpus, &out, &[])));
    let hook = "blocks.1.hook_resid_post";
    let index = StoreIndex::read(&out).unwrap();
    let parts: Vec<Tensor> = index
        .shards
        .iter()
        .map(|s| candle_core::safetensors::load(out.join(&s.file), &Device::Cpu).unwrap()[hook].clone())
        .collect();
    let all = Tensor::cat(&parts, 0).unwrap();
    let file = f.root.join("acts.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("resid".to_string(), all.clone())]),
        &file,
    )
    .unwrap();
    let norms: Vec<f32> = all.sqr().unwrap().sum(1).unwrap().sqrt().unwrap().to_vec1().unwrap();
    let want_norm = norms.iter().map(|&x| x as f64).sum::<f64>() / norms.len() as f64;

    let json_of = |args: &[&str]| -> serde_json::Value {
        let run = bae(args);
        assert_ok(&run);
        serde_json::from_str(&stdout(&run)).unwrap()
    };
    let a =
        json_of(&["store", "stats", "--store", s(&out), "--hook", hook, "--shuffle-rows", "10", "--json"]);
    let b = json_of(&["store", "stats", "--acts", s(&file), "--tensor", "resid", "--json"]);
    assert_eq!(a["rows"], 60);
    assert_eq!(b["rows"], 60);
    for key in ["mean_l2_norm", "max_abs", "mean_of_dimension_stds"] {
        let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{key}: {x} vs {y}");
    }
    let got = a["mean_l2_norm"].as_f64().unwrap();
    assert!((got - want_norm).abs() <= 1e-4 * want_norm, "{got} vs {want_norm}");

    assert_clean_failure(
        &bae(&["store", "stats", "--store", s(&out), "--hook", "blocks.9.hook_resid_post"]),
        &["no hook point `blocks.9.hook_resid_post`", "hook_embed"],
    );
    assert_clean_failure(
        &bae(&["store", "stats", "--acts", s(&file), "--tensor", "x"]),
        &["no tensor `x`", "resid"],
    );
    // A usage error: clap's exit status 2 and its message naming the missing flag.
    let run = bae(&["store", "stats", "--store", s(&f.root)]);
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("--hook"), "{}", stderr(&run));
}
