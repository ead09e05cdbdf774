//! `bae features` and `bae compare`: tables read back with pyarrow, the HTML report
//! rendered in headless Chromium, judges that cannot answer reported without caching
//! anything.

use std::net::TcpListener;

use super::fidelity::write_sae;
use super::*;

const HOOK: &str = "blocks.1.hook_resid_post";

fn corpus(root: &Path) -> PathBuf {
    let path = root.join("corpus.txt");
    std::fs::write(
        &path,
        "the cat sat on the mat\na dog and a cat ran to the park\nthe mat was red and the dog was brown\n\
         she said that the cat would sit on the mat again\n",
    )
    .unwrap();
    path
}

/// The exact ReLU SAE of the fidelity test; as a BAE (`binary`), its codes are the
/// signs of the residual's coordinates.
fn write_autoencoder(dir: &Path, architecture: &str) {
    write_sae(dir, HOOK, 64, true);
    let cfg_path = dir.join("cfg.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["bae_architecture"] = architecture.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(std::env::var("BAE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.is_file(),
        "{} not found: install Debian's chromium (scripts/setup-chromium.sh) or set BAE_CHROMIUM",
        path.display()
    );
    path
}

/// Runs headless Chromium on a local file: its DOM after loading, and a screenshot.
fn render_in_chromium(page: &Path, screenshot: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let common = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut shot = Command::new(chromium());
    common(&mut shot);
    shot.arg("--window-size=1200,1600")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()));
    let o = shot.output().unwrap();
    assert!(o.status.success(), "chromium --screenshot failed: {}", stderr(&o));
    let mut dom = Command::new(chromium());
    common(&mut dom);
    dom.arg("--dump-dom").arg(format!("file://{}", page.display()));
    let o = dom.output().unwrap();
    assert!(o.status.success(), "chromium --dump-dom failed: {}", stderr(&o));
    stdout(&o)
}

/// `bae features --model MODEL --bae AE --corpus TEXT EXTRA... -o OUT`.
fn features(model: &Path, ae: &Path, text: &Path, extra: &[&str], out: &Path) -> Output {
    let mut args = vec!["features", "--model", s(model), "--bae", s(ae), "--corpus", s(text)];
    args.extend_from_slice(extra);
    args.extend(["-o", s(out)]);
    bae(&args)
}

#[test]
fn features_of_a_bae_and_an_sae_with_their_report() {
    let f = fixture(Family::Llama);
    let text = corpus(&f.root);
    for architecture in ["binary", "relu_l1"] {
        let ae = f.root.join(format!("ae-{architecture}"));
        write_autoencoder(&ae, architecture);
        let out = f.root.join(format!("features-{architecture}"));
        let o = features(&f.hf, &ae, &text, &["--samples", "6"], &out);
        assert_ok(&o);
        let (features, samples, report) =
            (out.join("features.parquet"), out.join("samples.parquet"), out.join("report.html"));
        check_tables_with_pyarrow(&[&features, &samples]);
        let html = std::fs::read_to_string(&report).unwrap();
        assert!(
            html.contains(&format!("Features of the {architecture} autoencoder at {HOOK}")),
            "{architecture}"
        );
        let screenshot = out.join("report.png");
        let dom = render_in_chromium(&report, &screenshot);
        let png = std::fs::read(&screenshot).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1200, "screenshot width");
        // The browser built the page: headings, one <details> per feature that fired,
        // highlighted tokens.
        assert!(dom.contains("<h2>Counts</h2>") && dom.contains("<h2>Feature density</h2>"), "{dom}");
        assert!(
            dom.matches("<details").count() >= 10 && dom.contains("<mark>"),
            "{architecture}: too few features shown"
        );
        // An SAE's feature i and i + d are never both active on a token (x_i > 0 or < 0).
        if architecture == "relu_l1" {
            assert!(!dom.contains("score 0.000"), "an inactive feature was sampled");
        }
    }
}

#[test]
fn judges_that_cannot_answer_fail_cleanly() {
    let f = fixture(Family::Llama);
    let text = corpus(&f.root);
    let ae = f.root.join("ae");
    write_autoencoder(&ae, "binary");
    // The tiny model speaks ChatML, but the judge's prompts exceed its context of 256.
    let out = f.root.join("self");
    let o = features(&f.hf, &ae, &text, &["--judge", "self", "--samples", "6"], &out);
    assert_clean_failure(&o, &["judge prompt has", "context of 256"]);
    assert!(!out.join("features.parquet").exists());
    // An endpoint where nothing listens.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = f.root.join("down");
    let url = format!("http://127.0.0.1:{port}/v1");
    let o = features(
        &f.hf,
        &ae,
        &text,
        &[
            "--judge",
            "endpoint",
            "--judge-url",
            &url,
            "--judge-model",
            "m",
            "--judge-retries",
            "0",
            "--samples",
            "6",
        ],
        &out,
    );
    assert_clean_failure(&o, &[&format!("endpoint:{url}#m"), "gave up after 1 attempts"]);
    assert!(!out.join("features.parquet").exists() && !out.join("report.html").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("judgements.jsonl")).unwrap(),
        "",
        "a failed call was cached"
    );
    // Endpoint without a URL.
    let o = features(&f.hf, &ae, &text, &["--judge", "endpoint"], &out);
    assert_clean_failure(&o, &["--judge-url"]);
    // An autoencoder of another width than the model's.
    let other = f.root.join("other");
    write_sae(&other, HOOK, 32, true);
    let o = features(&f.hf, &other, &text, &[], &f.root.join("x"));
    assert_clean_failure(&o, &["32"]);
}

/// The tiny model (ChatML tokens, context raised to 4096) judges its own features end
/// to end; a second run with the same cache makes no calls and gives the same scores.
#[test]
fn the_model_judges_itself_and_a_rerun_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Family::Llama);
    cfg.max_position_embeddings = 4096;
    let model = dir.path().join("tiny-chat");
    write_hf_dir(&model, &cfg, &random_weights(&cfg, 21), 1).unwrap();
    let text = corpus(dir.path());
    let ae = dir.path().join("ae");
    write_autoencoder(&ae, "binary");
    let cache = dir.path().join("judgements.jsonl");
    let run = |out: &Path| {
        let o = features(
            &model,
            &ae,
            &text,
            &[
                "--judge",
                "self",
                "--score-features",
                "3",
                "--samples",
                "7",
                "--judge-samples",
                "2",
                "--judge-cache",
                s(&cache),
            ],
            out,
        );
        assert_ok(&o);
        check_tables_with_pyarrow(&[&out.join("features.parquet"), &out.join("samples.parquet")]);
        (stderr(&o), read_scores(&out.join("features.parquet")))
    };
    let (first, scores) = run(&dir.path().join("a"));
    // 3 explanations and 3 × 2 judgements; identical questions are asked once.
    assert!(first.contains("3 features scored") && !first.contains(", 0 calls"), "{first}");
    assert_eq!(scores.len(), 3, "{scores:?}");
    let (second, again) = run(&dir.path().join("b"));
    assert!(second.contains("9 answers from") && second.contains(", 0 calls"), "{second}");
    assert_eq!(scores, again);
    let report = std::fs::read_to_string(dir.path().join("b/report.html")).unwrap();
    assert!(report.contains("Judge <b>self:tiny-chat@"), "the report does not name the judge");
}

/// (feature, explanation, score) of the scored features.
fn read_scores(path: &Path) -> Vec<(u32, String, f64)> {
    let (b, _) = read_parquet(path);
    let feature =
        b.column_by_name("feature").unwrap().as_any().downcast_ref::<arrow::array::UInt32Array>().unwrap();
    let explanation = b
        .column_by_name("explanation")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let score =
        b.column_by_name("score").unwrap().as_any().downcast_ref::<arrow::array::Float64Array>().unwrap();
    (0..b.num_rows())
        .filter(|&i| !arrow::array::Array::is_null(score, i))
        .map(|i| (feature.value(i), explanation.value(i).to_string(), score.value(i)))
        .collect()
}

#[test]
fn compare_trains_every_config_on_the_same_activations() {
    let f = fixture(Family::Llama);
    let text = corpus(&f.root);
    let store = f.root.join("store");
    assert_ok(&bae(&[
        "harvest",
        "--model",
        s(&f.hf),
        "--corpus",
        s(&text),
        "--hooks",
        HOOK,
        "--ctx",
        "16",
        "--tokens",
        "200",
        "--out",
        s(&store),
    ]));
    let mut configs = Vec::new();
    for (name, extra) in [("bae", "entropy_start_epoch = 1\n"), ("topk", "architecture = \"topk\"\nk = 8\n")]
    {
        let path = f.root.join(format!("{name}.toml"));
        std::fs::write(&path, format!("[train]\nd_hidden = 96\nepochs = 2\nbatch = 16\nseed = 3\n{extra}"))
            .unwrap();
        configs.push(path);
    }
    let list = format!("{},{}", s(&configs[0]), s(&configs[1]));
    let out = f.root.join("compare");
    let args = [
        "compare",
        "--model",
        s(&f.hf),
        "--acts",
        s(&store),
        "--hook",
        HOOK,
        "--configs",
        &list,
        "--prompts",
        s(&text),
        "--out",
        s(&out),
    ];
    let o = bae(&args);
    assert_ok(&o);
    let table = stdout(&o);
    assert!(table.lines().any(|l| l.starts_with("| bae | binary |")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("| topk | topk |")), "{table}");
    let compare = out.join("compare.parquet");
    check_tables_with_pyarrow(&[&compare, &out.join("bae/features/features.parquet")]);
    // A second run reuses the trained autoencoders and gives the same table.
    let again = bae(&args);
    assert_ok(&again);
    assert_eq!(stdout(&again), table);
    assert!(stderr(&again).contains("resuming"), "{}", stderr(&again));
}
