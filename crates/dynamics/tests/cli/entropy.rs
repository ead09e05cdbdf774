//! `bae entropy`: every row against a slow reference built from the library's forward
//! pass (one prompt at a time) and plain loops; bad BAE folders and prompts.

use std::collections::HashMap;
use std::fs::File;

use arrow::array::{Array, Float64Array, StringArray, UInt32Array, UInt64Array};
use bae_lm::rng::SplitMix64;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

const D: usize = 64;
const H: usize = 24;

/// A BAE folder as another tool might write it: SAELens weights and a cfg.json.
pub(super) fn write_bae(
    dir: &Path,
    hook: &str,
    d: usize,
    seed: u64,
    model: Option<serde_json::Value>,
) -> (Vec<f32>, Vec<f32>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = SplitMix64::new(seed);
    let mut values =
        |n: usize, scale: f32| -> Vec<f32> { (0..n).map(|_| (rng.unit_f32() * 2.0 - 1.0) * scale).collect() };
    let (w_enc, b_enc) = (values(d * H, 0.3), values(H, 0.2));
    let tensors = HashMap::from([
        ("W_enc".to_string(), Tensor::from_vec(w_enc.clone(), (d, H), &Device::Cpu).unwrap()),
        ("b_enc".to_string(), Tensor::from_vec(b_enc.clone(), H, &Device::Cpu).unwrap()),
        ("W_dec".to_string(), Tensor::from_vec(values(H * d, 0.3), (H, d), &Device::Cpu).unwrap()),
        ("b_dec".to_string(), Tensor::from_vec(values(d, 0.1), d, &Device::Cpu).unwrap()),
    ]);
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors")).unwrap();
    let cfg = serde_json::json!({"bae_architecture": "binary", "hook_name": hook, "d_in": d, "d_sae": H, "k": 0, "model": model});
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
    (w_enc, b_enc)
}

fn strings(batch: &arrow::array::RecordBatch, name: &str) -> Vec<String> {
    let a = batch.column_by_name(name).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

fn optional_u32(batch: &arrow::array::RecordBatch, name: &str) -> Vec<Option<u32>> {
    let a = batch.column_by_name(name).unwrap().as_any().downcast_ref::<UInt32Array>().unwrap();
    (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect()
}

fn floats(batch: &arrow::array::RecordBatch, name: &str) -> Vec<f64> {
    let a = batch.column_by_name(name).unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
    a.values().to_vec()
}

fn h_bits(p: f64) -> f64 {
    let t = |q: f64| if q > 0.0 { -q * q.log2() } else { 0.0 };
    t(p) + t(1.0 - p)
}

#[test]
fn entropy_rows_equal_a_slow_reference() {
    let f = fixture(Family::Llama);
    let baes = f.root.join("baes");
    let hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_mid"];
    let weights: Vec<_> = hooks
        .iter()
        .enumerate()
        .map(|(i, h)| write_bae(&baes.join(format!("bae{i}")), h, D, 5 + i as u64, None))
        .collect();
    let prompts =
        ["the cat sat on the mat", "a dog", "one two three four five six seven", "hello there, cat", "x"];
    let prompt_file = f.root.join("prompts.txt");
    std::fs::write(&prompt_file, prompts.join("\n")).unwrap();
    let out = f.root.join("out/entropy.parquet");
    let o = bae(&[
        "entropy",
        "--model",
        s(&f.hf),
        "--baes",
        s(&baes),
        "--prompts",
        s(&prompt_file),
        "--batch",
        "3",
        "--per-prompt",
        "--out",
        s(&out),
    ]);
    assert_ok(&o);
    assert!(!out.with_extension("parquet.partial").exists());
    check_tables_with_pyarrow(&[&out]);
    check_plot(&out, None, "depth (blocks");
    check_plot(&out, Some("entropy-by-position"), "token position");
    let wrong = bae(&["plot", s(&out), "--kind", "accuracy-by-demos", "-o", s(&f.root.join("x.png"))]);
    assert_clean_failure(&wrong, &["bae.entropy.v1 table", "needs a bae.icl.v1 table"]);
    let wrong = bae(&["plot", s(&out), "-o", s(&f.root.join("x.jpg"))]);
    assert_clean_failure(&wrong, &["x.jpg", "must end in .png or .svg"]);

    // Reference: one prompt at a time through the library, codes by plain loops.
    let model = Model::load(s(&f.hf), &LoadOptions::default()).unwrap();
    let points: Vec<HookPoint> = hooks.iter().map(|h| h.parse().unwrap()).collect();
    // counts[hook][position] = (rows, ones per feature); per prompt likewise.
    let mut counts: Vec<Vec<(u64, Vec<u64>)>> = vec![Vec::new(); hooks.len()];
    let mut per_prompt: Vec<Vec<(u64, Vec<u64>)>> = vec![Vec::new(); prompts.len()];
    for (p, text) in prompts.iter().enumerate() {
        let ids = model.tokenizer().unwrap().encode(text, true).unwrap();
        let batch = Batch::new(&[ids], 0, bae_lm::Padding::Right, &Device::Cpu).unwrap();
        let acts = model.decoder.forward(&batch, &ForwardRequest::capture(&points)).unwrap().activations;
        for (k, point) in points.iter().enumerate() {
            let x: Vec<Vec<f32>> =
                acts[point].squeeze(0).unwrap().to_dtype(DType::F32).unwrap().to_vec2().unwrap();
            let (w, b) = &weights[k];
            let mut whole = (0u64, vec![0u64; H]);
            for (t, row) in x.iter().enumerate() {
                if counts[k].len() <= t {
                    counts[k].resize(t + 1, (0, vec![0; H]));
                }
                counts[k][t].0 += 1;
                whole.0 += 1;
                for j in 0..H {
                    let pre: f32 = b[j] + (0..D).map(|i| row[i] * w[i * H + j]).sum::<f32>();
                    let on = u64::from(pre > 0.0);
                    counts[k][t].1[j] += on;
                    whole.1[j] += on;
                }
            }
            per_prompt[p].push(whole);
        }
    }
    let entropy =
        |(rows, ones): &(u64, Vec<u64>)| ones.iter().map(|&o| h_bits(o as f64 / *rows as f64)).sum::<f64>();
    let active = |(rows, ones): &(u64, Vec<u64>)| ones.iter().sum::<u64>() as f64 / (*rows as f64 * H as f64);

    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap()).unwrap();
    let kv = reader.metadata().file_metadata().key_value_metadata().unwrap().clone();
    let meta: HashMap<String, String> =
        kv.into_iter().map(|k| (k.key, k.value.unwrap_or_default())).collect();
    assert_eq!(meta["format"], "bae.entropy.v1");
    let identity: serde_json::Value = serde_json::from_str(&meta["model"]).unwrap();
    assert_eq!(identity["num_layers"], 2);
    assert_eq!(identity["weights_sha256"].as_str().unwrap().len(), 64);
    assert!(meta["config"].contains("prompts.txt"));
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let (hook, scope, position, prompt) = (
        strings(&batch, "hook"),
        strings(&batch, "scope"),
        optional_u32(&batch, "position"),
        optional_u32(&batch, "prompt"),
    );
    let layer = optional_u32(&batch, "layer");
    let samples = batch
        .column_by_name("states")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap()
        .values()
        .to_vec();
    let (bits, per_feature, fraction) = (
        floats(&batch, "entropy_bits"),
        floats(&batch, "bits_per_feature"),
        floats(&batch, "active_fraction"),
    );
    let positions: usize = counts.iter().map(Vec::len).sum();
    assert_eq!(batch.num_rows(), positions + prompts.len() * hooks.len());
    assert!(strings(&batch, "run_id").iter().all(|r| r == "entropy"));
    let mut seen_varied = false;
    for i in 0..batch.num_rows() {
        let k = hooks.iter().position(|h| *h == hook[i]).unwrap();
        assert_eq!(layer[i], Some(k as u32), "layer of {}", hook[i]);
        let want = match scope[i].as_str() {
            "position" => &counts[k][position[i].unwrap() as usize],
            "prompt" => &per_prompt[prompt[i].unwrap() as usize][k],
            other => panic!("scope {other}"),
        };
        assert_eq!(samples[i], want.0, "row {i}");
        assert!((bits[i] - entropy(want)).abs() < 1e-9, "row {i}: {} vs {}", bits[i], entropy(want));
        assert!((per_feature[i] - entropy(want) / H as f64).abs() < 1e-12);
        assert!((fraction[i] - active(want)).abs() < 1e-12);
        seen_varied |= bits[i] > 0.5;
    }
    assert!(seen_varied, "every entropy was near 0: the reference BAEs are degenerate");
    for (i, (log2, n)) in floats(&batch, "log2_states").iter().zip(&samples).enumerate() {
        assert!((log2 - (*n as f64).log2().max(0.0)).abs() < 1e-12, "row {i}");
    }
    // These cfg.json files record no quality: the gate cannot say.
    assert!(strings(&batch, "quality").iter().all(|q| q == "unknown"));
    // Position 0 is seen by every prompt, the last position only by the longest.
    let first = (0..batch.num_rows()).find(|&i| scope[i] == "position" && position[i] == Some(0)).unwrap();
    assert_eq!(samples[first], prompts.len() as u64);
}

#[test]
fn every_row_carries_its_hooks_gate_and_a_failing_hook_is_marked() {
    let f = fixture(Family::Llama);
    let baes = f.root.join("baes");
    let hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"];
    for (i, (hook, fvu)) in hooks.iter().zip([0.2, 0.93]).enumerate() {
        let dir = baes.join(format!("bae{i}"));
        write_bae(&dir, hook, D, 9 + i as u64, None);
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("cfg.json")).unwrap()).unwrap();
        cfg["quality"] = serde_json::json!({
            "val_fvu": fvu, "dead": 3, "constant": 5, "dense": 1, "val_entropy_bits": 4.0,
            "train_rows": 1000 + i, "val_rows": 250, "epochs_done": 7, "stopped_early": true,
        });
        std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
    }
    let prompts = f.root.join("prompts.txt");
    std::fs::write(&prompts, "the cat sat on the mat\na dog ran\n").unwrap();
    let out = f.root.join("gated.parquet");
    let o =
        bae(&["entropy", "--model", s(&f.hf), "--baes", s(&baes), "--prompts", s(&prompts), "-o", s(&out)]);
    assert_ok(&o);
    assert!(stderr(&o).contains("blocks.1.hook_resid_post fail their quality gate"), "{}", stderr(&o));
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap()).unwrap();
    let gates = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .find(|k| k.key == "gates")
        .cloned();
    let gates: serde_json::Value = serde_json::from_str(gates.unwrap().value.as_deref().unwrap()).unwrap();
    assert_eq!(gates[1]["verdict"], "fail");
    assert_eq!(gates[0]["max_fvu"], 0.5);
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let (hook, quality, fvu) =
        (strings(&batch, "hook"), strings(&batch, "quality"), floats(&batch, "bae_val_fvu"));
    for i in 0..batch.num_rows() {
        let (want_quality, want_fvu) = if hook[i] == hooks[0] { ("pass", 0.2) } else { ("fail", 0.93) };
        assert_eq!((quality[i].as_str(), fvu[i]), (want_quality, want_fvu), "row {i}");
    }
    assert_eq!(optional_u32(&batch, "bae_dead")[0], Some(3));
    // A stricter gate fails both; the plot greys the failing hooks.
    let strict = f.root.join("strict.parquet");
    let o = bae(&[
        "entropy",
        "--model",
        s(&f.hf),
        "--baes",
        s(&baes),
        "--prompts",
        s(&prompts),
        "--max-fvu",
        "0.1",
        "-o",
        s(&strict),
    ]);
    assert_ok(&o);
    let (batch, _) = read_parquet(&strict);
    assert!(strings(&batch, "quality").iter().all(|q| q == "fail"));
    check_plot(&out, Some("entropy-by-position"), "(fails its gate)");
    let bad = bae(&[
        "entropy",
        "--model",
        s(&f.hf),
        "--baes",
        s(&baes),
        "--prompts",
        s(&prompts),
        "--max-fvu=-1",
        "-o",
        s(&strict),
    ]);
    assert_clean_failure(&bad, &["--max-fvu"]);
}

#[test]
fn bad_entropy_baes_and_prompts() {
    let f = fixture(Family::Llama);
    let prompts = f.root.join("prompts.txt");
    std::fs::write(&prompts, "the cat\na dog\n").unwrap();
    let run = |baes: &Path, extra: &[&str]| {
        let out = f.root.join("e.parquet");
        let mut args = vec![
            "entropy",
            "--model",
            s(&f.hf),
            "--baes",
            s(baes),
            "--prompts",
            s(&prompts),
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        let o = bae(&args);
        assert!(!out.exists(), "a failed run wrote {}", out.display());
        o
    };
    let empty = f.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_clean_failure(&run(&empty, &[]), &["empty", "no BAE here"]);
    let wide = f.root.join("wide");
    write_bae(&wide, "blocks.0.hook_resid_post", 48, 1, None);
    assert_clean_failure(&run(&wide, &[]), &["wide", "d = 48", "d_model = 64"]);
    let deep = f.root.join("deep");
    write_bae(&deep, "blocks.7.hook_resid_post", D, 1, None);
    assert_clean_failure(
        &run(&deep, &[]),
        &["deep", "blocks.7.hook_resid_post does not exist in a 2-block model"],
    );
    let other = f.root.join("other");
    let identity = serde_json::json!({"spec": "models/other.gguf", "architecture": "gemma3", "num_layers": 18, "parameters": 270000000, "dtype": "f32"});
    write_bae(&other, "blocks.0.hook_resid_post", D, 1, Some(identity));
    assert_clean_failure(
        &run(&other, &[]),
        &["other", "trained on activations of models/other.gguf", "gemma3"],
    );
    let good = f.root.join("good");
    write_bae(&good, "blocks.0.hook_resid_post", D, 1, None);
    // --hooks picks BAEs by name or glob; one without a BAE is named.
    let two = f.root.join("two");
    write_bae(&two.join("a"), "blocks.0.hook_resid_post", D, 1, None);
    write_bae(&two.join("b"), "blocks.1.hook_resid_post", D, 2, None);
    assert_clean_failure(
        &run(&two, &["--hooks", "blocks.0.hook_resid_mid"]),
        &["no BAE reads blocks.0.hook_resid_mid", "blocks.1.hook_resid_post"],
    );
    let picked = f.root.join("picked.parquet");
    let o = bae(&[
        "entropy",
        "--model",
        s(&f.hf),
        "--baes",
        s(&two),
        "--hooks",
        "blocks.1.hook_resid_post",
        "--prompts",
        s(&prompts),
        "--out",
        s(&picked),
    ]);
    assert_ok(&o);
    assert!(stderr(&o).contains("1 hook points"), "{}", stderr(&o));
    std::fs::write(&prompts, format!("the cat\n{}\n", "cat ".repeat(400))).unwrap();
    assert_clean_failure(&run(&good, &[]), &["prompt 1 has", "more than the model's context of 256"]);
}
