//! `bae hidden-states` against Hugging Face transformers (scripts/reference_hidden_states.py)
//! on tiny random models, at every hook point.
//!
//! Needs Python with torch and transformers: `BAE_PYTHON` names the interpreter, else
//! `.venv/bin/python` at the repository root (made by scripts/setup-python.sh, which the
//! test command runs), else `python3`. Without them the test fails and says so.

use super::*;

/// Largest relative error over positions: max_p |a_p - b_p| / |b_p| (L2 over d_model),
/// so token 0's huge norm cannot hide errors elsewhere.
fn max_relative_error_per_position(a: &Tensor, b: &Tensor) -> f32 {
    let diff = (a - b).unwrap().sqr().unwrap().sum(1).unwrap().sqrt().unwrap();
    let norm = b.sqr().unwrap().sum(1).unwrap().sqrt().unwrap();
    let ratio: Vec<f32> = (diff / norm).unwrap().to_vec1().unwrap();
    ratio.into_iter().fold(0.0, f32::max)
}

#[test]
fn hidden_states_match_transformers_at_every_hook_point() {
    let python = python();
    let probe =
        Command::new(&python).args(["-c", "import torch, transformers, tokenizers, safetensors"]).output();
    assert!(
        matches!(&probe, Ok(o) if o.status.success()),
        "{} cannot import torch/transformers ({}): run scripts/setup-python.sh or set BAE_PYTHON",
        python.display(),
        probe.map(|o| stderr(&o)).unwrap_or_else(|e| e.to_string())
    );
    let script = repo_root().join("scripts/reference_hidden_states.py");
    // Longer than the tiny models' sliding window (6 tokens), so the window matters.
    let prompts = ["the cat sat on the mat and then it sat on the hat", "hi there"];
    for family in [Family::Llama, Family::Gemma, Family::Gemma2, Family::Gemma3] {
        let f = fixture(family);
        let ours = f.root.join("bae.safetensors");
        let theirs = f.root.join("transformers.safetensors");
        let mut args = vec!["hidden-states", "-m", s(&f.hf), "-o", s(&ours)];
        let mut script_args = vec![s(&script).to_string(), "-m".into(), s(&f.hf).into(), "-o".into()];
        script_args.push(s(&theirs).into());
        for p in prompts {
            args.extend(["-p", p]);
            script_args.extend(["-p".to_string(), p.to_string()]);
        }
        assert_ok(&bae(&args));
        let run = Command::new(&python).args(&script_args).output().unwrap();
        assert!(run.status.success(), "{family:?}: reference script failed:\n{}", stderr(&run));

        let (ours, theirs) = (read_safetensors(&ours), read_safetensors(&theirs));
        let mut names: Vec<&String> = ours.keys().collect();
        names.sort();
        let mut theirs_names: Vec<&String> = theirs.keys().collect();
        theirs_names.sort();
        assert_eq!(names, theirs_names, "{family:?}: tensor names differ");
        // 2 prompts x (input_ids + hook_embed + 3 per block x 2 blocks + ln_final).
        assert_eq!(names.len(), 2 * (1 + 1 + 6 + 1));
        let mut worst = (0.0f32, String::new());
        for name in names {
            let (a, b) = (&ours[name], &theirs[name]);
            assert_eq!(a.dims(), b.dims(), "{family:?} {name}");
            if name.ends_with("input_ids") {
                assert_eq!(a.to_vec1::<u32>().unwrap(), b.to_vec1::<u32>().unwrap(), "{family:?} {name}");
                continue;
            }
            let err = max_relative_error_per_position(a, b);
            assert!(err <= 1e-4, "{family:?} {name}: relative error {err} > 1e-4");
            if err >= worst.0 {
                worst = (err, name.clone());
            }
        }
        eprintln!("{family:?}: largest relative error {:.2e} at {}", worst.0, worst.1);
    }
}

/// The judge's prompts for SmolLM2 (bae features --judge self) equal transformers'
/// apply_chat_template with the GGUF's own chat template, as text and as token ids.
#[test]
fn judge_prompts_match_transformers_chat_template() {
    use bae_dynamics::measure::features::judge::local::{ChatFormat, LocalJudge};
    use bae_dynamics::measure::features::judge::prompts;
    use bae_dynamics::measure::features::TokenContext;

    let gguf = repo_root().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(gguf.is_file(), "{} is missing: run scripts/fetch-models.sh", gguf.display());
    let model = bae_lm::Model::load(s(&gguf), &bae_lm::LoadOptions::default()).unwrap();
    let judge = LocalJudge::new(&model, "self:test".into()).unwrap();
    assert_eq!(judge.format(), ChatFormat::ChatMl);
    let sample = TokenContext {
        doc: 3,
        position: 7,
        token: " cat".into(),
        before: "The quick \"brown\"".into(),
        after: " sat.\nThen".into(),
    };
    let conversations = [prompts::explain(&[&sample, &sample]), prompts::judge(&sample, "animal nouns")];
    let mut child = Command::new(python())
        .arg(repo_root().join("scripts/reference_chat_template.py"))
        .arg(&gguf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(serde_json::to_string(&conversations).unwrap().as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "reference_chat_template.py failed (run scripts/setup-python.sh?): {}",
        stderr(&o)
    );
    let reference: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(reference.len(), 2);
    for (messages, reference) in conversations.iter().zip(&reference) {
        let rendered = ChatFormat::ChatMl.render(messages);
        assert_eq!(rendered, reference["text"].as_str().unwrap());
        let ids = model.tokenizer().unwrap().encode(&rendered, true).unwrap();
        let expected: Vec<u32> =
            reference["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids, expected);
    }
}
