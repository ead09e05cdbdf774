//! End-to-end tests of the `bae` binary on tiny seeded models written inside the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bae_lm::testing::{random_weights, tiny_config, write_gguf, write_hf_dir};
use bae_lm::{Batch, Family, ForwardRequest, HookPoint, LoadOptions, Model};
use candle_core::{DType, Device, Tensor};

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

#[test]
fn inspect_describes_the_model_and_its_hook_points() {
    let f = fixture(Family::Llama);
    let out = bae(&["inspect", "--model", s(&f.hf)]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("architecture     llama"), "{text}");
    assert!(text.contains("d_model          64"), "{text}");
    assert!(text.contains("hook points      8:"), "{text}");
    assert!(text.contains("  blocks.1.hook_resid_post"), "{text}");

    let out = bae(&["inspect", "--model", s(&f.gguf), "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["layers"], 2);
    assert_eq!(json["kv_heads"], 2);
    assert_eq!(json["bos_by_default"], false);
    let cfg = tiny_config(Family::Llama);
    assert_eq!(json["parameters"], cfg.parameter_count());
    assert_eq!(json["hook_points"].as_array().unwrap().len(), 8);
}

fn read_safetensors(path: &Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

#[test]
fn hidden_states_saves_every_prompt_and_hook_like_the_library() {
    let f = fixture(Family::Mistral);
    let out_path = f.root.join("out/acts.safetensors");
    let prompts = ["the cat sat on the mat in 1999", "hi"];
    let out = bae(&[
        "hidden-states",
        "--model",
        s(&f.hf),
        "--prompt",
        prompts[0],
        "--prompt",
        prompts[1],
        "--hooks",
        "blocks.*.hook_resid_post,hook_embed",
        "--batch",
        "2",
        "--out",
        s(&out_path),
    ]);
    assert_ok(&out);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "output should be readable by others, not left private");
    }
    let saved = read_safetensors(&out_path);
    assert_eq!(saved.len(), 2 * 4, "{:?}", saved.keys().collect::<Vec<_>>());

    let model = Model::load(s(&f.hf), &LoadOptions::default()).unwrap();
    for (i, prompt) in prompts.iter().enumerate() {
        let ids = model.tokenizer().unwrap().encode(prompt, true).unwrap();
        let saved_ids: Vec<u32> = saved[&format!("p{i}.input_ids")].to_vec1().unwrap();
        assert_eq!(saved_ids, ids);
        let points = [HookPoint::Embed, HookPoint::ResidPost(0), HookPoint::ResidPost(1)];
        let run = model
            .decoder
            .forward(&Batch::single(&ids, &Device::Cpu).unwrap(), &ForwardRequest::capture(&points))
            .unwrap();
        for p in points {
            let got = &saved[&format!("p{i}.{p}")];
            assert_eq!(got.dtype(), DType::F32);
            assert_eq!(got.dims(), &[ids.len(), 64]);
            let want = run.activations[&p].get(0).unwrap();
            let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "p{i}.{p}: {diff}");
        }
    }
}

#[test]
fn hidden_states_from_gguf_equal_those_from_safetensors() {
    let f = fixture(Family::Llama);
    let a = f.root.join("a.safetensors");
    let b = f.root.join("b.safetensors");
    for (model, out) in [(&f.hf, &a), (&f.gguf, &b)] {
        assert_ok(&bae(&["hidden-states", "-m", s(model), "-p", "the theory of cats", "-o", s(out)]));
    }
    let (a, b) = (read_safetensors(&a), read_safetensors(&b));
    assert_eq!(a.len(), 1 + 8);
    for (name, t) in &a {
        let u = &b[name];
        let diff = (t.to_dtype(DType::F32).unwrap() - u.to_dtype(DType::F32).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{name}: {diff}");
    }
}

#[test]
fn generate_prints_nll_and_a_continuation() {
    let f = fixture(Family::Llama);
    let out = bae(&["generate", "-m", s(&f.gguf), "-p", "the cat", "--max-tokens", "3"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("prompt NLL:") && text.contains("the cat"), "{text}");
}

#[test]
fn bench_forward_reports_all_variants() {
    let f = fixture(Family::Llama);
    let out =
        bae(&["bench", "forward", "-m", s(&f.hf), "--batch", "2", "--seq", "8", "--iters", "1", "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["tokens_per_s"].as_f64().unwrap() > 0.0));
}

// ---- bad input: one test per case, each a clear error, exit 1, no output file ----

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

#[test]
fn hub_id_not_cached_offline_says_how_to_provide_it() {
    let home = tempfile::tempdir().unwrap();
    let out = bae_env(
        &["inspect", "-m", "someone/some-model"],
        &[("HF_HOME", s(home.path())), ("HF_HUB_OFFLINE", "1")],
    );
    assert_clean_failure(
        &out,
        &["someone/some-model", "not in the local Hugging Face cache", "HF_HUB_OFFLINE"],
    );
}

#[test]
fn hub_id_not_cached_and_unreachable_says_the_download_failed() {
    let home = tempfile::tempdir().unwrap();
    // Port 9 on loopback refuses the connection at once: the same path as no network.
    let out = bae_env(
        &["inspect", "-m", "someone/some-model"],
        &[("HF_HOME", s(home.path())), ("HF_ENDPOINT", "http://127.0.0.1:9")],
    );
    assert_clean_failure(
        &out,
        &["someone/some-model", "not in the local Hugging Face cache", "download failed"],
    );
}

#[test]
fn hub_id_resolves_from_the_local_cache_offline() {
    let f = fixture(Family::Llama);
    let home = tempfile::tempdir().unwrap();
    // The Hugging Face cache layout: hub/models--org--name/{refs/main, snapshots/<rev>/...}.
    let repo = home.path().join("hub/models--tiny-org--tiny-llama");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), rev).unwrap();
    let snapshot = repo.join("snapshots").join(rev);
    std::fs::create_dir_all(&snapshot).unwrap();
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(f.hf.join(file), snapshot.join(file)).unwrap();
    }
    let out = bae_env(
        &["inspect", "-m", "tiny-org/tiny-llama", "--json"],
        &[("HF_HOME", s(home.path())), ("HF_HUB_OFFLINE", "1")],
    );
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["layers"], 2);
    assert!(json["source"].as_str().unwrap().contains("Hugging Face cache"));
}
