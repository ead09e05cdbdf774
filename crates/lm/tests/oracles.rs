//! Oracle tests: our decoder against candle-transformers' own Llama and Mistral on the
//! same random weights, and our loaders against each other (safetensors, sharded
//! safetensors, GGUF with permuted q/k rows).

use std::collections::HashMap;

use bae_lm::testing::{random_weights, tiny_config, write_gguf, write_hf_dir};
use bae_lm::{
    Batch, DecoderConfig, Family, ForwardRequest, HookPoint, Intervention, InterventionKind, LoadOptions,
    Model, Padding, RopeScaling,
};
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{gemma, gemma2, llama, mistral, qwen2, qwen3};

const TOKENS: [u32; 13] = [1, 17, 250, 3, 99, 42, 7, 7, 180, 64, 5, 299, 12];

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// max |a - b| / max |b|
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    assert_eq!(a.dims(), b.dims());
    max_abs(&(&a - &b).unwrap()) / max_abs(&b).max(1e-12)
}

fn load_dir(
    cfg: &DecoderConfig,
    weights: &HashMap<String, Tensor>,
    shards: usize,
) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir(dir.path(), cfg, weights, shards).unwrap();
    let model = Model::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    (dir, model)
}

fn candle_llama_config(cfg: &DecoderConfig) -> llama::Config {
    llama::Config {
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        vocab_size: cfg.vocab_size,
        num_hidden_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        num_key_value_heads: cfg.num_kv_heads,
        use_flash_attn: false,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: match &cfg.rope_scaling {
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => Some(llama::Llama3RopeConfig {
                factor: *factor as f32,
                low_freq_factor: *low_freq_factor as f32,
                high_freq_factor: *high_freq_factor as f32,
                original_max_position_embeddings: *original_max_position_embeddings as usize,
                rope_type: llama::Llama3RopeType::Llama3,
            }),
            _ => None,
        },
        max_position_embeddings: cfg.max_position_embeddings,
        tie_word_embeddings: cfg.tie_word_embeddings,
    }
}

/// Compares our logits at every position with candle's Llama run on each prefix.
fn check_llama(cfg: &DecoderConfig) {
    let weights = random_weights(cfg, 7);
    let (_dir, ours) = load_dir(cfg, &weights, 1);
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let ccfg = candle_llama_config(cfg);
    let oracle = llama::Llama::load(vb, &ccfg).unwrap();
    let logits = ours.decoder.logits(&TOKENS).unwrap();
    for len in 1..=TOKENS.len() {
        let mut cache = llama::Cache::new(false, DType::F32, &ccfg, &Device::Cpu).unwrap();
        let input = Tensor::new(&TOKENS[..len], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let want = oracle.forward(&input, 0, &mut cache).unwrap().squeeze(0).unwrap();
        let got = logits.i(len - 1).unwrap();
        let err = rel_err(&got, &want);
        assert!(err <= 1e-4, "position {}: relative error {err}", len - 1);
    }
}

#[test]
fn llama_logits_match_candle_transformers() {
    check_llama(&tiny_config(Family::Llama));
}

#[test]
fn llama3_rope_scaling_and_tied_embeddings_match_candle_transformers() {
    let mut cfg = tiny_config(Family::Llama);
    cfg.tie_word_embeddings = true;
    cfg.rope_theta = 500_000.0;
    // Short pre-training context so that the scaled band falls inside head_dim 16.
    cfg.rope_scaling = Some(RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 64.0,
    });
    check_llama(&cfg);
}

#[test]
fn mistral_logits_match_candle_transformers_beyond_the_sliding_window() {
    let cfg = tiny_config(Family::Mistral);
    let window = cfg.sliding_window.unwrap();
    assert!(TOKENS.len() > 2 * window, "the prompt must be longer than the window");
    let weights = random_weights(&cfg, 11);
    let (_dir, ours) = load_dir(&cfg, &weights, 1);
    let ccfg = mistral::Config {
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_hidden_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        head_dim: Some(cfg.head_dim),
        num_key_value_heads: cfg.num_kv_heads,
        hidden_act: candle_nn::Activation::Silu,
        max_position_embeddings: cfg.max_position_embeddings,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta,
        // candle lets a query see `window + 1` keys; transformers (and we) see `window`.
        sliding_window: Some(window - 1),
        use_flash_attn: false,
    };
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let mut oracle = mistral::Model::new(&ccfg, vb).unwrap();
    let logits = ours.decoder.logits(&TOKENS).unwrap();
    for len in 2..=TOKENS.len() {
        oracle.clear_kv_cache();
        let input = Tensor::new(&TOKENS[..len], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let want = oracle.forward(&input, 0).unwrap().flatten_all().unwrap();
        let err = rel_err(&logits.i(len - 1).unwrap(), &want);
        assert!(err <= 1e-4, "position {}: relative error {err}", len - 1);
    }
    // And the window matters: without it the last position differs.
    let mut no_window = cfg.clone();
    no_window.sliding_window = None;
    let (_d2, full) = load_dir(&no_window, &random_weights(&cfg, 11), 1);
    let full_logits = full.decoder.logits(&TOKENS).unwrap();
    assert!(rel_err(&full_logits.i(TOKENS.len() - 1).unwrap(), &logits.i(TOKENS.len() - 1).unwrap()) > 1e-3);
}

/// Compares our logits at every position with a candle-transformers model run on
/// each prefix (it returns the last position's logits).
fn check_prefixes(ours: &Model, mut oracle: impl FnMut(&Tensor) -> Tensor, what: &str) {
    let logits = ours.decoder.logits(&TOKENS).unwrap();
    for len in 1..=TOKENS.len() {
        let input = Tensor::new(&TOKENS[..len], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let want = oracle(&input).flatten_all().unwrap();
        let err = rel_err(&logits.i(len - 1).unwrap(), &want);
        assert!(err <= 1e-4, "{what} position {}: relative error {err}", len - 1);
    }
}

/// Runs `cfg` with seeded weights through our decoder and through a candle-transformers
/// model built by `build` from the same weights, whose `run` clears its cache and
/// returns the last position's logits, and compares every prefix.
fn check_against<M>(
    what: &str,
    cfg: &DecoderConfig,
    seed: u64,
    build: impl FnOnce(VarBuilder) -> candle_core::Result<M>,
    mut run: impl FnMut(&mut M, &Tensor) -> candle_core::Result<Tensor>,
) {
    let weights = random_weights(cfg, seed);
    let (_dir, ours) = load_dir(cfg, &weights, 1);
    let mut oracle = build(VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu)).unwrap();
    check_prefixes(&ours, |input| run(&mut oracle, input).unwrap(), what);
}

#[test]
fn qwen2_logits_match_candle_transformers() {
    let cfg = tiny_config(Family::Qwen2);
    assert!(cfg.qkv_bias && !cfg.o_bias);
    let ccfg = qwen2::Config {
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_hidden_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        num_key_value_heads: cfg.num_kv_heads,
        max_position_embeddings: cfg.max_position_embeddings,
        // candle's qwen2 always applies its window; make it wider than the prompt.
        sliding_window: cfg.max_position_embeddings,
        max_window_layers: cfg.num_layers,
        tie_word_embeddings: cfg.tie_word_embeddings,
        rope_theta: cfg.rope_theta,
        rms_norm_eps: cfg.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: candle_nn::Activation::Silu,
    };
    check_against(
        "qwen2",
        &cfg,
        17,
        |vb| qwen2::ModelForCausalLM::new(&ccfg, vb),
        |m, input| {
            m.clear_kv_cache();
            m.forward(input, 0)
        },
    );
}

#[test]
fn qwen3_logits_match_candle_transformers() {
    let cfg = tiny_config(Family::Qwen3);
    assert!(cfg.qk_norm);
    let ccfg = qwen3::Config {
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_hidden_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        head_dim: cfg.head_dim,
        attention_bias: false,
        num_key_value_heads: cfg.num_kv_heads,
        max_position_embeddings: cfg.max_position_embeddings,
        sliding_window: None,
        max_window_layers: cfg.num_layers,
        tie_word_embeddings: cfg.tie_word_embeddings,
        rope_theta: cfg.rope_theta,
        rms_norm_eps: cfg.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: candle_nn::Activation::Silu,
    };
    check_against(
        "qwen3",
        &cfg,
        19,
        |vb| qwen3::ModelForCausalLM::new(&ccfg, vb),
        |m, input| {
            m.clear_kv_cache();
            m.forward(input, 0)
        },
    );
}

#[test]
fn gemma_logits_match_candle_transformers() {
    let cfg = tiny_config(Family::Gemma);
    let ccfg = gemma::Config {
        attention_bias: false,
        head_dim: cfg.head_dim,
        hidden_act: Some(candle_nn::Activation::GeluPytorchTanh),
        hidden_activation: None,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_attention_heads: cfg.num_heads,
        num_hidden_layers: cfg.num_layers,
        num_key_value_heads: cfg.num_kv_heads,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta,
        vocab_size: cfg.vocab_size,
        max_position_embeddings: cfg.max_position_embeddings,
    };
    check_against(
        "gemma",
        &cfg,
        23,
        |vb| gemma::Model::new(false, &ccfg, vb),
        |m, input| {
            m.clear_kv_cache();
            m.forward(input, 0)
        },
    );
}

#[test]
fn gemma2_logits_match_candle_transformers() {
    // candle's gemma2 applies one window to every block (transformers alternates), so
    // the oracle runs without a window; Gemma 3 below checks alternating windows.
    let mut cfg = tiny_config(Family::Gemma2);
    cfg.sliding_window = None;
    cfg.sliding_layers = vec![false; cfg.num_layers];
    assert!(cfg.attn_softcap.is_some() && cfg.final_softcap.is_some());
    let ccfg = gemma2::Config {
        attention_bias: false,
        head_dim: cfg.head_dim,
        hidden_activation: candle_nn::Activation::GeluPytorchTanh,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_attention_heads: cfg.num_heads,
        num_hidden_layers: cfg.num_layers,
        num_key_value_heads: cfg.num_kv_heads,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta,
        vocab_size: cfg.vocab_size,
        final_logit_softcapping: cfg.final_softcap,
        attn_logit_softcapping: cfg.attn_softcap,
        query_pre_attn_scalar: cfg.head_dim,
        sliding_window: None,
        max_position_embeddings: cfg.max_position_embeddings,
    };
    check_against(
        "gemma2",
        &cfg,
        29,
        |vb| gemma2::Model::new(false, &ccfg, vb),
        |m, input| {
            m.clear_kv_cache();
            m.forward(input, 0)
        },
    );
}

#[test]
fn gemma3_sliding_blocks_forget_keys_beyond_the_window() {
    // Beyond the window, only the global block carries information from far back: the
    // last position's logits must change when a token outside the window changes iff a
    // global block exists.
    let cfg = tiny_config(Family::Gemma3);
    let window = cfg.sliding_window.unwrap();
    let (_d, model) = load_dir(&cfg, &random_weights(&cfg, 41), 1);
    let mut other = TOKENS.to_vec();
    other[0] = 100; // position 0 is further back than the window from the last token
    assert!(TOKENS.len() > window);
    let last = |m: &Model, t: &[u32]| m.decoder.logits(t).unwrap().i(t.len() - 1).unwrap();
    assert!(rel_err(&last(&model, &other), &last(&model, &TOKENS)) > 1e-4, "the global block sees it");
    let mut all_sliding = cfg.clone();
    all_sliding.sliding_layers = vec![true; cfg.num_layers];
    let (_e, windowed) = load_dir(&all_sliding, &random_weights(&cfg, 41), 1);
    // Two sliding blocks of window w reach back 2(w - 1) positions.
    assert!(TOKENS.len() - 1 > 2 * (window - 1));
    assert_eq!(rel_err(&last(&windowed, &other), &last(&windowed, &TOKENS)), 0.0, "no block sees it");
}

#[test]
fn gemma_hook_embed_is_before_the_sqrt_d_scaling() {
    for family in [Family::Gemma, Family::Gemma2, Family::Gemma3] {
        let cfg = tiny_config(family);
        let (_d, model) = load_dir(&cfg, &random_weights(&cfg, 37), 1);
        let batch = Batch::single(&TOKENS, &Device::Cpu).unwrap();
        let points = [HookPoint::Embed, HookPoint::ResidPre(0)];
        let out = model.decoder.forward(&batch, &ForwardRequest::capture(&points)).unwrap();
        let scaled = (&out.activations[&HookPoint::Embed] * 8.0).unwrap();
        assert!(rel_err(&out.activations[&HookPoint::ResidPre(0)], &scaled) <= 1e-6, "{family:?}");
    }
}

fn all_activations(model: &Model, tokens: &[u32]) -> Vec<(HookPoint, Tensor)> {
    let points = HookPoint::all(model.config().num_layers);
    let batch = Batch::single(tokens, model.decoder.device()).unwrap();
    let out = model.decoder.forward(&batch, &ForwardRequest::capture(&points)).unwrap();
    assert_eq!(out.activations.len(), points.len());
    out.activations.into_iter().collect()
}

#[test]
fn safetensors_sharded_and_gguf_give_the_same_activations_at_every_hook() {
    for family in [
        Family::Llama,
        Family::Mistral,
        Family::Qwen2,
        Family::Qwen3,
        Family::Gemma,
        Family::Gemma2,
        Family::Gemma3,
    ] {
        let cfg = tiny_config(family);
        let weights = random_weights(&cfg, 3);
        let (_d1, single) = load_dir(&cfg, &weights, 1);
        let (_d2, sharded) = load_dir(&cfg, &weights, 3);
        let dir = tempfile::tempdir().unwrap();
        let gguf_path = dir.path().join("tiny.gguf");
        write_gguf(&gguf_path, &cfg, &weights).unwrap();
        let gguf = Model::load(gguf_path.to_str().unwrap(), &LoadOptions::default()).unwrap();
        // GGUF stores the epsilon as f32; everything else must come back exactly.
        let mut from_gguf = gguf.config().clone();
        assert!((from_gguf.rms_norm_eps - cfg.rms_norm_eps).abs() < 1e-12);
        from_gguf.rms_norm_eps = cfg.rms_norm_eps;
        assert_eq!(from_gguf, *single.config(), "{family:?}: GGUF config");
        let want = all_activations(&single, &TOKENS);
        for (name, other) in [("sharded", &sharded), ("gguf", &gguf)] {
            for ((p, a), (q, b)) in want.iter().zip(all_activations(other, &TOKENS)) {
                assert_eq!(*p, q);
                let err = rel_err(&b, a);
                assert!(err <= 1e-6, "{family:?} {name} {p}: relative error {err}");
            }
        }
    }
}

#[test]
fn gguf_without_unpermuting_would_differ() {
    // Guards the test above: loading permuted q/k rows as if they were HF rows changes
    // the activations, so the GGUF comparison can fail.
    let cfg = tiny_config(Family::Llama);
    let weights = random_weights(&cfg, 3);
    let mut permuted = weights.clone();
    for (name, t) in permuted.iter_mut() {
        if name.contains("q_proj") {
            *t = bae_lm::gguf::permute_rows(t, cfg.num_heads).unwrap();
        }
    }
    let (_a, good) = load_dir(&cfg, &weights, 1);
    let (_b, bad) = load_dir(&cfg, &permuted, 1);
    let a = good.decoder.logits(&TOKENS).unwrap();
    let b = bad.decoder.logits(&TOKENS).unwrap();
    assert!(rel_err(&b, &a) > 1e-2);
}

#[test]
fn gguf_tokenizer_matches_tokenizer_json() {
    let cfg = tiny_config(Family::Llama);
    let weights = random_weights(&cfg, 3);
    let (_d, hf) = load_dir(&cfg, &weights, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, &cfg, &weights).unwrap();
    let gguf = Model::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    for text in
        ["the cat sat in 2024 on the mat", "<|im_start|>user\nhi<|im_end|>", "  spaces\tand ünïcode ✓"]
    {
        let a = hf.tokenizer().unwrap().encode(text, true).unwrap();
        let b = gguf.tokenizer().unwrap().encode(text, true).unwrap();
        assert_eq!(a, b, "{text:?}");
        assert_eq!(gguf.tokenizer().unwrap().decode(&b).unwrap(), text);
    }
    // Digits are split one by one and specials are single tokens.
    let ids = gguf.tokenizer().unwrap().encode("<|im_start|>12", false).unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], 1);
}

#[test]
fn activations_are_the_same_alone_and_inside_a_padded_batch() {
    for family in [Family::Llama, Family::Mistral, Family::Qwen2, Family::Qwen3] {
        let cfg = tiny_config(family);
        let (_d, model) = load_dir(&cfg, &random_weights(&cfg, 5), 1);
        let prompts: Vec<Vec<u32>> = vec![TOKENS[..4].to_vec(), TOKENS.to_vec(), TOKENS[3..11].to_vec()];
        let points = HookPoint::all(cfg.num_layers);
        let mut req = ForwardRequest::capture(&points);
        req.logits = true;
        for padding in [Padding::Right, Padding::Left] {
            let batch = Batch::new(&prompts, 0, padding, &Device::Cpu).unwrap();
            assert!(batch.is_padded());
            let together = model.decoder.forward(&batch, &req).unwrap();
            for (b, prompt) in prompts.iter().enumerate() {
                let alone =
                    model.decoder.forward(&Batch::single(prompt, &Device::Cpu).unwrap(), &req).unwrap();
                for p in &points {
                    let got = batch.unpad(&together.activations[p], b).unwrap();
                    let want = alone.activations[p].get(0).unwrap();
                    let err = rel_err(&got, &want);
                    assert!(err <= 1e-5, "{family:?} {padding:?} prompt {b} {p}: {err}");
                }
                let got = batch.unpad(together.logits.as_ref().unwrap(), b).unwrap();
                let err = rel_err(&got, &alone.logits.as_ref().unwrap().get(0).unwrap());
                assert!(err <= 1e-5, "{family:?} {padding:?} prompt {b} logits: {err}");
            }
        }
    }
}

#[test]
fn forward_stops_after_the_deepest_requested_hook() {
    let mut cfg = tiny_config(Family::Llama);
    cfg.num_layers = 4;
    let (_d, model) = load_dir(&cfg, &random_weights(&cfg, 9), 1);
    let batch = Batch::single(&TOKENS, &Device::Cpu).unwrap();
    let out = model
        .decoder
        .forward(&batch, &ForwardRequest::capture(&[HookPoint::ResidMid(1), HookPoint::Embed]))
        .unwrap();
    assert_eq!(out.blocks_run, 2);
    assert!(out.logits.is_none());
    let full = model.decoder.forward(&batch, &ForwardRequest::capture(&HookPoint::all(4))).unwrap();
    assert_eq!(full.blocks_run, 4);
    let pre = model.decoder.forward(&batch, &ForwardRequest::capture(&[HookPoint::ResidPre(2)])).unwrap();
    assert_eq!(pre.blocks_run, 2);
    assert_eq!(
        rel_err(&pre.activations[&HookPoint::ResidPre(2)], &full.activations[&HookPoint::ResidPre(2)]),
        0.0
    );
    assert_eq!(
        rel_err(&out.activations[&HookPoint::ResidMid(1)], &full.activations[&HookPoint::ResidMid(1)]),
        0.0
    );
    // Llama has no embedding scale: hook_embed is blocks.0.hook_resid_pre, and each
    // block's resid_post is the next block's resid_pre.
    assert_eq!(
        rel_err(&full.activations[&HookPoint::Embed], &full.activations[&HookPoint::ResidPre(0)]),
        0.0
    );
    assert_eq!(
        rel_err(&full.activations[&HookPoint::ResidPost(1)], &full.activations[&HookPoint::ResidPre(2)]),
        0.0
    );
}

#[test]
fn replacing_the_residual_carries_another_prompts_state_forward() {
    let cfg = tiny_config(Family::Llama);
    let (_d, model) = load_dir(&cfg, &random_weights(&cfg, 13), 1);
    let a = Batch::single(&TOKENS[..8], &Device::Cpu).unwrap();
    let b = Batch::single(&TOKENS[5..], &Device::Cpu).unwrap();
    let mut req = ForwardRequest::capture(&[HookPoint::ResidPost(0)]);
    req.logits = true;
    let run_a = model.decoder.forward(&a, &req).unwrap();
    let run_b = model.decoder.forward(&b, &req).unwrap();
    assert!(rel_err(run_b.logits.as_ref().unwrap(), run_a.logits.as_ref().unwrap()) > 1e-2);
    // Splicing A's residual into B after block 0 makes B's later computation A's.
    let mut spliced = req.clone();
    spliced.interventions.push(Intervention {
        point: HookPoint::ResidPost(0),
        kind: InterventionKind::Replace,
        value: run_a.activations[&HookPoint::ResidPost(0)].clone(),
    });
    let run = model.decoder.forward(&b, &spliced).unwrap();
    assert!(rel_err(run.logits.as_ref().unwrap(), run_a.logits.as_ref().unwrap()) <= 1e-6);
    // Adding a vector shifts the captured residual by exactly that vector.
    let shift = Tensor::full(0.5f32, cfg.hidden_size, &Device::Cpu).unwrap();
    let mut added = req.clone();
    added.interventions.push(Intervention {
        point: HookPoint::ResidPost(0),
        kind: InterventionKind::Add,
        value: shift,
    });
    let run = model.decoder.forward(&b, &added).unwrap();
    let diff =
        (&run.activations[&HookPoint::ResidPost(0)] - &run_b.activations[&HookPoint::ResidPost(0)]).unwrap();
    let diff: Vec<f32> = diff.flatten_all().unwrap().to_vec1().unwrap();
    assert!(diff.iter().all(|d| (d - 0.5).abs() < 1e-6));
    assert!(rel_err(run.logits.as_ref().unwrap(), run_b.logits.as_ref().unwrap()) > 1e-3);
}

#[test]
fn bf16_and_f16_runs_stay_close_to_f32() {
    let cfg = tiny_config(Family::Llama);
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir(dir.path(), &cfg, &random_weights(&cfg, 2), 1).unwrap();
    let path = dir.path().to_str().unwrap();
    let f32_logits = Model::load(path, &LoadOptions::default()).unwrap().decoder.logits(&TOKENS).unwrap();
    for dtype in [DType::BF16, DType::F16] {
        let opts = LoadOptions { dtype, ..LoadOptions::default() };
        let model = Model::load(path, &opts).unwrap();
        assert_eq!(model.decoder.dtype(), dtype);
        let err = rel_err(&model.decoder.logits(&TOKENS).unwrap(), &f32_logits);
        assert!(err < 0.05, "{dtype:?}: {err}");
    }
}

#[test]
fn sequences_longer_than_the_context_are_refused() {
    let cfg = tiny_config(Family::Llama);
    let (_d, model) = load_dir(&cfg, &random_weights(&cfg, 1), 1);
    let long: Vec<u32> = (0..cfg.max_position_embeddings as u32 + 1).map(|i| i % 250).collect();
    let err = model.decoder.logits(&long).unwrap_err().to_string();
    assert!(err.contains("257 tokens") && err.contains("256"), "{err}");
    let err = model.decoder.logits(&[5, 300]).unwrap_err().to_string();
    assert!(err.contains("token id 300"), "{err}");
}

#[test]
fn unembedding_captured_final_norm_states_gives_the_forward_logits() {
    // Gemma 2 has a final soft-cap, which unembed must apply too.
    for family in [Family::Llama, Family::Gemma2] {
        let cfg = tiny_config(family);
        let (_dir, model) = load_dir(&cfg, &random_weights(&cfg, 17), 1);
        let tokens = [5u32, 17, 42, 99, 3];
        let batch = Batch::single(&tokens, &Device::Cpu).unwrap();
        let request =
            ForwardRequest { capture: vec![HookPoint::FinalNorm], logits: true, ..ForwardRequest::default() };
        let out = model.decoder.forward(&batch, &request).unwrap();
        let normed = out.activations[&HookPoint::FinalNorm].get(0).unwrap();
        // Only positions 1 and 4, as a caller scoring labels would.
        let picked = normed.index_select(&Tensor::new(&[1u32, 4], &Device::Cpu).unwrap(), 0).unwrap();
        let ours = model.decoder.unembed(&picked).unwrap();
        let all = out.logits.unwrap().get(0).unwrap();
        let want = all.index_select(&Tensor::new(&[1u32, 4], &Device::Cpu).unwrap(), 0).unwrap();
        assert!(rel_err(&ours, &want) < 1e-6, "{family:?}: {}", rel_err(&ours, &want));
    }
}
