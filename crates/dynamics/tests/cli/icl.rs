//! `bae icl`: every aggregate and sample row against the library's full-logits forward
//! pass, one prompt at a time; seeded, nested demonstrations; bad tasks and sweeps.

use std::collections::HashMap;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use bae_dynamics::measure::icl::Task;

use super::entropy::write_bae;
use super::*;

const TEMPLATE: &str = "[task]\nname = \"pairs\"\ninput_field = \"input\"\nlabel_field = \"label\"\n\
                        input_prefix = \"In: \"\nlabel_prefix = \"\\nOut:\"\nlabel_separator = \" \"\ndemo_separator = \"\\n\\n\"\n";

pub(super) fn write_task(dir: &Path, rows: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("pairs.jsonl");
    let body: String =
        rows.iter().map(|(i, l)| serde_json::json!({"input": i, "label": l}).to_string() + "\n").collect();
    std::fs::write(&path, body).unwrap();
    std::fs::write(dir.join("pairs.toml"), TEMPLATE).unwrap();
    path
}

pub(super) const ROWS: [(&str, &str); 10] = [
    ("cat", "dog"),
    ("hot", "cold"),
    ("up", "down"),
    ("big", "small"),
    ("one", "two"),
    ("sun", "moon"),
    ("left", "right"),
    ("day", "night"),
    ("yes", "no"),
    ("in", "out"),
];

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name).unwrap_or_else(|| panic!("no column {name}")).as_any().downcast_ref::<T>().unwrap()
}

/// Per k: correct answers, summed label log-probabilities, and per hook (rows, ones).
type KTally = (usize, f64, Vec<(u64, Vec<u64>)>);

#[test]
fn icl_rows_equal_a_slow_reference() {
    let f = fixture(Family::Llama);
    let task_path = write_task(&f.root, &ROWS);
    let baes = f.root.join("baes");
    let hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"];
    let weights: Vec<_> = hooks
        .iter()
        .enumerate()
        .map(|(i, h)| write_bae(&baes.join(format!("b{i}")), h, 64, 9 + i as u64, None))
        .collect();
    let out = f.root.join("icl.parquet");
    let args = [
        "icl",
        "--model",
        s(&f.hf),
        "--baes",
        s(&baes),
        "--task",
        s(&task_path),
        "--demos",
        "0,1,3",
        "--samples",
        "5",
        "--seed",
        "7",
        "--batch",
        "4",
        "--out",
        s(&out),
    ];
    assert_ok(&bae(&args));
    check_tables_with_pyarrow(&[&out]);
    check_plot(&out, None, "demonstrations (k)");
    check_plot(&out, Some("accuracy-by-demos"), "Label log-probability");
    let (b, meta) = read_parquet(&out);
    assert_eq!(meta["format"], "bae.icl.v1");
    assert!(meta["config"].contains("\"seed\":7"), "{}", meta["config"]);
    assert_eq!(b.num_rows(), 3 * hooks.len() + 3 * 5);

    let task = Task::load(&task_path, None).unwrap();
    let model = Model::load(s(&f.hf), &LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    let points: Vec<HookPoint> = hooks.iter().map(|h| h.parse().unwrap()).collect();
    let scope = col::<StringArray>(&b, "scope");
    let demos = col::<UInt32Array>(&b, "demos");
    let (query, sample) = (col::<UInt32Array>(&b, "query"), col::<UInt32Array>(&b, "sample"));
    let demo_indices = col::<StringArray>(&b, "demo_indices");
    let (accuracy, logprob) = (col::<Float64Array>(&b, "accuracy"), col::<Float64Array>(&b, "label_logprob"));
    let prompt_tokens = col::<UInt32Array>(&b, "prompt_tokens");
    // Per k: (correct count, logprob sum, per hook (rows, ones)).
    let mut per_k: HashMap<u32, KTally> = HashMap::new();
    let mut queries_at: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
    let mut demo_lists: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
    for i in (0..b.num_rows()).filter(|&i| scope.value(i) == "sample") {
        let k = demos.value(i);
        let ds: Vec<usize> = if k == 0 {
            Vec::new()
        } else {
            demo_indices.value(i).split(',').map(|x| x.parse().unwrap()).collect()
        };
        assert_eq!(ds.len(), k as usize);
        let q = query.value(i) as usize;
        assert!(!ds.contains(&q));
        queries_at.entry(k).or_default().push((sample.value(i), q as u32));
        demo_lists.insert((k, sample.value(i)), ds.clone());
        // The slow reference: full logits of prompt + label in one sequence.
        let prompt = task.prompt(&ds, q);
        let prompt_ids = tok.encode(&prompt, true).unwrap();
        let ids = tok.encode(&format!("{prompt}{}", task.answer(q)), true).unwrap();
        assert_eq!(prompt_tokens.value(i) as usize, prompt_ids.len());
        let logits: Vec<Vec<f32>> = model.decoder.logits(&ids).unwrap().to_vec2().unwrap();
        let mut lp = 0f64;
        for (t, &token) in ids.iter().enumerate().skip(prompt_ids.len()) {
            let row = &logits[t - 1];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
            lp += row[token as usize] as f64 - z;
        }
        assert!((logprob.value(i) - lp).abs() < 1e-3, "sample row {i}: {} vs {lp}", logprob.value(i));
        let first = &logits[prompt_ids.len() - 1];
        let argmax = (0..first.len()).max_by(|&a, &c| first[a].total_cmp(&first[c])).unwrap() as u32;
        let correct = argmax == ids[prompt_ids.len()];
        assert_eq!(accuracy.value(i), f64::from(u8::from(correct)));
        // Codes at the last prompt token.
        let batch =
            Batch::new(std::slice::from_ref(&prompt_ids), 0, bae_lm::Padding::Right, &Device::Cpu).unwrap();
        let acts = model.decoder.forward(&batch, &ForwardRequest::capture(&points)).unwrap().activations;
        let entry = per_k.entry(k).or_insert_with(|| (0, 0.0, vec![(0, vec![0; 24]); hooks.len()]));
        entry.0 += usize::from(correct);
        entry.1 += lp;
        for (h, point) in points.iter().enumerate() {
            let x: Vec<f32> =
                acts[point].get(0).unwrap().get(prompt_ids.len() - 1).unwrap().to_vec1().unwrap();
            let (w, bias) = &weights[h];
            entry.2[h].0 += 1;
            for j in 0..24 {
                let pre: f32 = bias[j] + (0..64).map(|i| x[i] * w[i * 24 + j]).sum::<f32>();
                entry.2[h].1[j] += u64::from(pre > 0.0);
            }
        }
    }
    // Same queries at every k; demonstrations nested and not the file's first rows.
    assert_eq!(queries_at[&0], queries_at[&3]);
    for s_ in 0..5u32 {
        assert_eq!(demo_lists[&(1, s_)][..], demo_lists[&(3, s_)][..1]);
    }
    assert!((0..5u32).any(|s_| demo_lists[&(3, s_)] != vec![0, 1, 2]));
    let entropy_bits = col::<Float64Array>(&b, "entropy_bits");
    let hook = col::<StringArray>(&b, "hook");
    let samples = col::<UInt64Array>(&b, "states");
    for i in (0..b.num_rows()).filter(|&i| scope.value(i) == "aggregate") {
        let k = demos.value(i);
        let (correct, lp, counts) = &per_k[&k];
        let h = hooks.iter().position(|x| *x == hook.value(i)).unwrap();
        assert_eq!(samples.value(i), 5);
        assert!((accuracy.value(i) - *correct as f64 / 5.0).abs() < 1e-12);
        assert!((logprob.value(i) - lp / 5.0).abs() < 1e-3);
        let (rows, ones) = &counts[h];
        let want: f64 = ones
            .iter()
            .map(|&o| {
                let p = o as f64 / *rows as f64;
                let t = |q: f64| if q > 0.0 { -q * q.log2() } else { 0.0 };
                t(p) + t(1.0 - p)
            })
            .sum();
        assert!(
            (entropy_bits.value(i) - want).abs() < 1e-9,
            "k {k} {}: {} vs {want}",
            hook.value(i),
            entropy_bits.value(i)
        );
        assert!(col::<StringArray>(&b, "demo_indices").is_null(i));
    }
    // Same seed, same table; another seed, other demonstrations.
    let again = f.root.join("again.parquet");
    let mut args2 = args.to_vec();
    *args2.last_mut().unwrap() = s(&again);
    assert_ok(&bae(&args2));
    assert_eq!(
        read_parquet(&again).0.column_by_name("demo_indices").unwrap().to_data(),
        b.column_by_name("demo_indices").unwrap().to_data()
    );
}

#[test]
fn bad_icl_tasks_and_sweeps() {
    let f = fixture(Family::Llama);
    let baes = f.root.join("bae");
    write_bae(&baes, "blocks.0.hook_resid_post", 64, 1, None);
    let out = f.root.join("icl.parquet");
    let run = |task: &Path, demos: &str| {
        let o = bae(&[
            "icl",
            "--model",
            s(&f.hf),
            "--baes",
            s(&baes),
            "--task",
            s(task),
            "--demos",
            demos,
            "--samples",
            "3",
            "--out",
            s(&out),
        ]);
        assert!(!out.exists(), "a failed run wrote {}", out.display());
        o
    };
    let task = write_task(&f.root, &ROWS);
    assert_clean_failure(&run(&task, "0,10"), &["--demos 10 needs 11 examples", "has 10"]);
    std::fs::write(&task, "{\"input\": \"a\", \"label\": \"b\"}\n{\"input\": \"c\"}\n").unwrap();
    assert_clean_failure(&run(&task, "1"), &["pairs.jsonl", "line 2", "missing field `label`"]);
    std::fs::write(&task, "{\"input\": \"a\", \"label\": \" \"}\n{\"input\": \"c\", \"label\": \"d\"}\n")
        .unwrap();
    assert_clean_failure(&run(&task, "1"), &["line 1", "field `label` is empty"]);
    let long: Vec<(String, String)> =
        (0..10).map(|i| (format!("{} {i}", "word ".repeat(30)), "x".to_string())).collect();
    let long_refs: Vec<(&str, &str)> = long.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let task = write_task(&f.root, &long_refs);
    assert_clean_failure(
        &run(&task, "0,8"),
        &["k = 8", "more than the model's context of 256", "fewer demonstrations"],
    );
}
