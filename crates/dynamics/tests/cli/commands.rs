//! The commands on well-formed input.

use super::*;

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

#[test]
fn inspect_shows_gemma_specifics_from_either_source() {
    let f = fixture(Family::Gemma3);
    for model in [&f.hf, &f.gguf] {
        let out = bae(&["inspect", "--model", s(model), "--json"]);
        assert_ok(&out);
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["architecture"], "gemma3_text");
        assert_eq!(json["sliding_window"], 6);
        assert_eq!(json["global_blocks"], serde_json::json!([1]));
        assert_eq!(json["rope_local_theta"], 10000.0);
        assert_eq!(json["activation"], "gelu_tanh");
        assert_eq!(json["embed_scale"], 8.0);
        assert_eq!(json["parameters"], tiny_config(Family::Gemma3).parameter_count());
    }
    let f = fixture(Family::Gemma2);
    let out = bae(&["inspect", "--model", s(&f.gguf)]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("attn softcap     5.0") && text.contains("final softcap    3.0"), "{text}");
}

#[test]
fn bench_entropy_reports_equal_values_on_every_path() {
    let out = bae(&["bench", "entropy", "--rows", "130", "--features", "40", "--iters", "1", "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let value = |i: usize| results[i]["value"].as_f64().unwrap();
    assert!((value(0) - value(2)).abs() < 1e-9 && value(0) > 1.0, "{results:?}");
    assert!((value(3) - value(4)).abs() < 1e-3 * value(3), "{results:?}");
}

#[test]
fn bench_synthetic_bits_recovers_the_planted_bits() {
    // The shipped [train] defaults, unchanged, at SmolLM2's size (d = 576, d' = 2304,
    // rows of a real hook's norm, 16,384 rows: the bench's defaults) on 4 and on 16
    // planted bits: a BAE that found the bits and kept its other features constant
    // reports r; the recipe must land within ±15%. 4 bits is the case that kept exact
    // copies of each bit (12 bits) until duplicates were merged, and a fifth balanced bit
    // at λ_H = 1e-3 until unprofitable bits were switched off. Minutes, not seconds.
    let out = bae(&["bench", "synthetic-bits", "--bits", "4,16", "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((json["d"].as_u64(), json["rows"].as_u64()), (Some(576), Some(16384)), "{json}");
    for (result, r) in json["results"].as_array().unwrap().iter().zip([4.0, 16.0]) {
        let estimate = result["estimate"].as_f64().unwrap();
        assert!((estimate - r).abs() <= 0.15 * r, "{r} bits: {json}");
        assert!(result["val_fvu"].as_f64().unwrap() < 0.05, "{r} bits: {json}");
    }
    assert_eq!(json["passed"], true, "{json}");
    let recipe = &json["recipe"];
    assert_eq!(recipe["lambda_entropy"], 3e-4, "the test must run the shipped defaults");
    assert_eq!(recipe["lambda_covariance"], 3e-5);
    assert_eq!((recipe["lambda_warmup_steps"].as_u64(), recipe["lr"].as_f64()), (Some(1000), Some(1e-3)));
    assert_eq!(
        (recipe["merge_agreement"].as_f64(), recipe["prune_bits"].as_bool()),
        (Some(0.999), Some(true))
    );
}

#[test]
fn bench_train_reports_consistent_throughput() {
    let out = bae(&["bench", "train", "--d", "16", "--features", "32", "--batch", "64", "--steps", "3"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rate = json["rows_per_s"].as_f64().unwrap();
    let step = json["seconds_per_step"].as_f64().unwrap();
    assert!(rate.is_finite() && rate > 0.0, "{json}");
    assert!((rate * step - 64.0).abs() < 1e-6, "rows/s x s/step should be the batch: {json}");
}
