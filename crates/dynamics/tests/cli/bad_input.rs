//! Bad input: one test per case, each a clear error, exit 1, no output file.

use super::*;

fn hidden_states_fails(model: &Path, out_dir: &Path, extra: &[&str], needles: &[&str]) {
    let out_path = out_dir.join("never.safetensors");
    let mut args = vec!["hidden-states", "-m", s(model), "-p", "the cat", "-o", s(&out_path)];
    args.extend_from_slice(extra);
    assert_clean_failure(&bae(&args), needles);
    assert!(!out_path.exists(), "an output file was left behind");
    let leftovers: Vec<_> = std::fs::read_dir(out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files were left behind");
}

#[test]
fn bad_input_missing_weight_file() {
    let f = fixture(Family::Llama);
    std::fs::remove_file(f.hf.join("model.safetensors")).unwrap();
    hidden_states_fails(&f.hf, &f.root, &[], &["model.safetensors", "not found"]);
}

#[test]
fn bad_input_missing_shard() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(Family::Llama);
    write_hf_dir(dir.path(), &cfg, &random_weights(&cfg, 1), 2).unwrap();
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    hidden_states_fails(dir.path(), dir.path(), &[], &["model-00002-of-00002.safetensors"]);
}

#[test]
fn bad_input_truncated_weight_file() {
    let f = fixture(Family::Llama);
    let path = f.hf.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    hidden_states_fails(&f.hf, &f.root, &[], &["model.safetensors", "truncated or corrupt"]);
}

fn edit_config(f: &Fixture, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = f.hf.join("config.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, json.to_string()).unwrap();
}

#[test]
fn bad_input_config_missing_a_field() {
    let f = fixture(Family::Llama);
    edit_config(&f, |j| {
        j.as_object_mut().unwrap().remove("num_hidden_layers");
    });
    hidden_states_fails(&f.hf, &f.root, &[], &["config.json", "missing field `num_hidden_layers`"]);
}

#[test]
fn bad_input_unknown_architecture() {
    let f = fixture(Family::Llama);
    edit_config(&f, |j| j["architectures"] = serde_json::json!(["FalconForCausalLM"]));
    hidden_states_fails(&f.hf, &f.root, &[], &["FalconForCausalLM", "LlamaForCausalLM"]);
}

#[test]
fn bad_input_tensor_shape_mismatch() {
    let f = fixture(Family::Llama);
    edit_config(&f, |j| j["intermediate_size"] = serde_json::json!(80));
    hidden_states_fails(
        &f.hf,
        &f.root,
        &[],
        &["model.layers.0.mlp.gate_proj.weight", "[96, 64]", "[80, 64]"],
    );
}

#[test]
fn bad_input_corrupt_gguf_header() {
    let f = fixture(Family::Llama);
    let mut bytes = std::fs::read(&f.gguf).unwrap();
    // Keep the magic, break the version and counts.
    for b in &mut bytes[4..24] {
        *b = 0xff;
    }
    std::fs::write(&f.gguf, &bytes).unwrap();
    hidden_states_fails(&f.gguf, &f.root, &[], &["invalid GGUF file", "tiny.gguf"]);
}

#[test]
fn bad_input_truncated_gguf() {
    let f = fixture(Family::Llama);
    let bytes = std::fs::read(&f.gguf).unwrap();
    std::fs::write(&f.gguf, &bytes[..bytes.len() - 1000]).unwrap();
    hidden_states_fails(&f.gguf, &f.root, &[], &["tiny.gguf"]);
}

#[test]
fn bad_input_unreadable_tokenizer() {
    let f = fixture(Family::Llama);
    std::fs::write(f.hf.join("tokenizer.json"), "{ not json").unwrap();
    hidden_states_fails(&f.hf, &f.root, &[], &["tokenizer.json", "not a valid tokenizer.json"]);
}

#[test]
fn bad_input_unknown_hook_name() {
    let f = fixture(Family::Llama);
    hidden_states_fails(
        &f.hf,
        &f.root,
        &["--hooks", "blocks.0.hook_attn_out"],
        &["blocks.0.hook_attn_out", "expected"],
    );
    hidden_states_fails(
        &f.hf,
        &f.root,
        &["--hooks", "blocks.7.hook_resid_post"],
        &["blocks.7.hook_resid_post", "2 blocks"],
    );
}

#[test]
fn bad_input_path_that_does_not_exist() {
    let f = fixture(Family::Llama);
    let missing = f.root.join("no-such-model");
    hidden_states_fails(&missing, &f.root, &[], &["no-such-model", "no such file or directory"]);
}

// ---- Gemma-specific fields ----

#[test]
fn bad_input_gemma_with_a_silu_activation() {
    let f = fixture(Family::Gemma2);
    edit_config(&f, |j| j["hidden_act"] = serde_json::json!("silu"));
    hidden_states_fails(&f.hf, &f.root, &[], &["config.json", "hidden_act", "\"silu\"", "gelu_pytorch_tanh"]);
}

#[test]
fn bad_input_gemma3_layer_types_of_the_wrong_length() {
    let f = fixture(Family::Gemma3);
    edit_config(&f, |j| {
        j["layer_types"] = serde_json::json!(["sliding_attention", "sliding_attention", "full_attention"])
    });
    hidden_states_fails(&f.hf, &f.root, &[], &["layer_types", "lists 3 layers", "num_hidden_layers = 2"]);
}

#[test]
fn bad_input_gemma3_unknown_layer_type() {
    let f = fixture(Family::Gemma3);
    edit_config(&f, |j| j["layer_types"][1] = serde_json::json!("chunked_attention"));
    hidden_states_fails(&f.hf, &f.root, &[], &["layer_types[1]", "chunked_attention", "full_attention"]);
}

#[test]
fn bad_input_gemma3_sliding_layers_without_a_window() {
    let f = fixture(Family::Gemma3);
    edit_config(&f, |j| j["sliding_window"] = serde_json::Value::Null);
    hidden_states_fails(&f.hf, &f.root, &[], &["sliding_window", "some layers use sliding attention"]);
}

#[test]
fn bad_input_gemma3_zero_window_pattern() {
    let f = fixture(Family::Gemma3);
    edit_config(&f, |j| {
        j.as_object_mut().unwrap().remove("layer_types");
        j["sliding_window_pattern"] = serde_json::json!(0);
    });
    hidden_states_fails(&f.hf, &f.root, &[], &["sliding_window_pattern", "is 0"]);
}

#[test]
fn bad_input_gemma2_zero_query_scalar() {
    let f = fixture(Family::Gemma2);
    edit_config(&f, |j| j["query_pre_attn_scalar"] = serde_json::json!(0));
    hidden_states_fails(&f.hf, &f.root, &[], &["query_pre_attn_scalar", "positive"]);
}

#[test]
fn bad_input_gemma2_negative_softcap() {
    let f = fixture(Family::Gemma2);
    edit_config(&f, |j| j["attn_logit_softcapping"] = serde_json::json!(-50.0));
    hidden_states_fails(&f.hf, &f.root, &[], &["attn_logit_softcapping", "= -50"]);
}

#[test]
fn bad_input_gemma2_config_on_gemma1_weights() {
    // A Gemma 2 config needs the sandwich norms that Gemma (1) weights lack.
    let f = fixture(Family::Gemma);
    edit_config(&f, |j| {
        j["architectures"] = serde_json::json!(["Gemma2ForCausalLM"]);
        j["model_type"] = serde_json::json!("gemma2");
    });
    hidden_states_fails(&f.hf, &f.root, &[], &["model.layers.0.pre_feedforward_layernorm.weight"]);
}

#[test]
fn bad_input_gguf_window_pattern_of_the_wrong_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Family::Gemma3);
    let weights = random_weights(&cfg, 1);
    cfg.sliding_layers = vec![true, false, true];
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, &cfg, &weights).unwrap();
    hidden_states_fails(
        &path,
        dir.path(),
        &[],
        &["tiny.gguf", "gemma3.attention.sliding_window_pattern", "lists 3 blocks", "block_count = 2"],
    );
}

#[cfg(unix)]
#[test]
fn bad_input_gemma_gguf_without_its_tokenizer_json() {
    // The real Gemma 3 file stores a SentencePiece vocabulary, which is not rebuilt; alone
    // in a directory (no tokenizer.json beside it) it needs --tokenizer.
    let real =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    assert!(real.is_file(), "{} missing: run scripts/fetch-models.sh", real.display());
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("gemma.gguf");
    std::os::unix::fs::symlink(real.canonicalize().unwrap(), &alone).unwrap();
    hidden_states_fails(
        &alone,
        dir.path(),
        &[],
        &["gemma.gguf", "tokenizer.ggml.model = \"llama\"", "--tokenizer", "beside the GGUF file"],
    );
}

/// Byte-flipped tables that made arrow-ipc and parquet panic inside `bae plot` and
/// `bae harvest --corpus` (exit 101).
fn corrupt_table(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/fixtures").join(name)
}

#[test]
fn bad_input_corrupt_parquet_table_to_plot() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["crash_51.parquet", "crash_275.parquet"] {
        let out = dir.path().join("x.png");
        assert_clean_failure(&bae(&["plot", s(&corrupt_table(name)), "-o", s(&out)]), &[name]);
        assert!(!out.exists(), "{name}: a plot was written");
    }
}

#[test]
fn bad_input_corrupt_parquet_corpus() {
    let f = fixture(Family::Llama);
    let out = f.root.join("store");
    let corpus = corrupt_table("crash_51.parquet");
    let args = [
        "harvest",
        "-m",
        s(&f.gguf),
        "--corpus",
        s(&corpus),
        "--field",
        "hook",
        "--tokens",
        "8",
        "-o",
        s(&out),
    ];
    assert_clean_failure(&bae(&args), &["crash_51.parquet", "corrupt"]);
    assert!(!out.join("index.json").exists(), "a store was written");
}
