//! Harvest against the decoder run window by window, and kill-and-resume equality.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use bae_lm::testing::{random_weights, tiny_config, write_hf_dir};
use bae_lm::{Batch, Family, ForwardRequest, HookPoint, LoadOptions, Model};
use bae_train::store::{
    ActivationStore, BosHandling, CorpusIdentity, ModelIdentity, RowSource, SinkHandling, StoreDtype,
    StoreSpec, StoreWriter,
};
use candle_core::Device;

use super::*;
use crate::input::corpus::{Corpus, CorpusFormat};

const DOCS: [&str; 4] = ["the cat sat on the mat", "", "hello there, how are you today?", "a b c d e f g h"];

fn setup(dir: &Path) -> (Model, Corpus) {
    let cfg = tiny_config(Family::Gemma3);
    write_hf_dir(&dir.join("model"), &cfg, &random_weights(&cfg, 5), 1).unwrap();
    let model = Model::load(dir.join("model").to_str().unwrap(), &LoadOptions::default()).unwrap();
    let path = dir.join("corpus.txt");
    std::fs::write(&path, DOCS.join("\n")).unwrap();
    let corpus = Corpus::open(&path, CorpusFormat::Text, "text").unwrap();
    (model, corpus)
}

/// Windows of 6 tokens with BOS id 1 prepended; sinks left out unless `keep_sinks`.
fn settings(keep_sinks: bool) -> HarvestSettings {
    HarvestSettings {
        hooks: vec![HookPoint::ResidPost(0), HookPoint::ResidMid(1)],
        batch: 3,
        windows: WindowPlan { context_length: 6, bos: Some(1) },
        keep_sinks,
        bos: Some(1),
        dtype: StoreDtype::F32,
    }
}

fn spec(tokens: u64, keep_sinks: bool, corpus: &Corpus) -> StoreSpec {
    StoreSpec {
        model: ModelIdentity {
            spec: "tiny".into(),
            family: "gemma3_text".into(),
            num_layers: 2,
            parameters: 1,
            dtype: "f32".into(),
        },
        hooks: vec!["blocks.0.hook_resid_post".into(), "blocks.1.hook_resid_mid".into()],
        dtype: StoreDtype::F32,
        d_model: 64,
        corpus: CorpusIdentity {
            path: "corpus.txt".into(),
            sha256: corpus.sha256().into(),
            format: "text".into(),
            field: None,
        },
        context_length: 6,
        bos: BosHandling { prepended: true },
        sinks: SinkHandling { excluded: !keep_sinks },
        tokens,
        shard_rows: 7,
    }
}

#[test]
fn stored_rows_equal_the_decoder_run_on_each_window() {
    let dir = tempfile::tempdir().unwrap();
    let (model, corpus) = setup(dir.path());
    for keep_sinks in [true, false] {
        let out = dir.path().join(format!("store-{keep_sinks}"));
        let writer = StoreWriter::create(&out, spec(1000, keep_sinks, &corpus)).unwrap();
        let summary = harvest(&model, &corpus, &settings(keep_sinks), writer, &mut |_| {}).unwrap();
        assert!(summary.corpus_exhausted);
        let store = ActivationStore::open(&out).unwrap();
        let tok = model.tokenizer().unwrap();
        let windows: usize = DOCS.iter().map(|d| tok.encode(d, false).unwrap().len().div_ceil(5)).sum();
        let ids: Vec<u32> = DOCS.iter().flat_map(|d| tok.encode(d, false).unwrap()).collect();
        // Without sinks: every content token but those that are the BOS id.
        let content = ids.iter().filter(|&&t| t != 1).count();
        let want_rows = if keep_sinks { ids.len() + windows } else { content };
        assert_eq!(store.index().rows as usize, want_rows, "keep_sinks {keep_sinks}");

        for (h, hook) in settings(keep_sinks).hooks.iter().enumerate() {
            let source = store.hook(&store.index().spec.hooks[h]).unwrap();
            let mut row = 0;
            for shard_no in 0..source.chunks() {
                let data = source.read_chunk(shard_no).unwrap();
                let fields = candle_core::safetensors::load(
                    out.join(&store.index().shards[shard_no].file),
                    &Device::Cpu,
                )
                .unwrap();
                let field = |n: &str| fields[n].to_vec1::<u32>().unwrap();
                let (doc, window, position, token) =
                    (field("doc"), field("window"), field("position"), field("token_id"));
                for (i, stored) in data.chunks(64).enumerate() {
                    // Rebuild the window from the corpus and run it alone.
                    let ids = tok.encode(DOCS[doc[i] as usize], false).unwrap();
                    let w = window[i] as usize;
                    let mut tokens = vec![1];
                    tokens.extend_from_slice(&ids[w * 5..ids.len().min(w * 5 + 5)]);
                    assert_eq!(tokens[position[i] as usize], token[i]);
                    if !keep_sinks {
                        assert_ne!(position[i], 0, "a position-0 row was stored");
                        assert_ne!(token[i], 1, "a BOS row was stored");
                    }
                    let out = model
                        .decoder
                        .forward(
                            &Batch::single(&tokens, &Device::Cpu).unwrap(),
                            &ForwardRequest::capture(&[*hook]),
                        )
                        .unwrap();
                    let want: Vec<f32> = out.activations[hook]
                        .get(0)
                        .unwrap()
                        .get(position[i] as usize)
                        .unwrap()
                        .to_vec1()
                        .unwrap();
                    let diff = want.iter().zip(stored).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                    assert!(diff < 1e-4, "{hook} row {row}: {diff}");
                    row += 1;
                }
            }
            assert_eq!(row, want_rows);
        }
    }
}

#[test]
fn without_a_bos_the_first_token_of_every_window_is_the_sink_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let (model, corpus) = setup(dir.path());
    let mut plain = settings(false);
    plain.windows.bos = None;
    plain.bos = None;
    let out = dir.path().join("store");
    let mut s = spec(1000, false, &corpus);
    s.bos.prepended = false;
    harvest(&model, &corpus, &plain, StoreWriter::create(&out, s).unwrap(), &mut |_| {}).unwrap();
    let store = ActivationStore::open(&out).unwrap();
    let tok = model.tokenizer().unwrap();
    let lengths: Vec<usize> = DOCS.iter().map(|d| tok.encode(d, false).unwrap().len()).collect();
    // Windows of 6 content tokens: each loses its first.
    let want: usize = lengths.iter().map(|&n| n - n.div_ceil(6)).sum();
    assert_eq!(store.index().rows as usize, want);
    let fields =
        candle_core::safetensors::load(out.join(&store.index().shards[0].file), &Device::Cpu).unwrap();
    let positions = fields["position"].to_vec1::<u32>().unwrap();
    assert!(positions.iter().all(|&p| p > 0) && positions.contains(&1), "{positions:?}");
}

#[test]
fn a_killed_harvest_resumes_to_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let (model, corpus) = setup(dir.path());
    let whole = dir.path().join("whole");
    harvest(
        &model,
        &corpus,
        &settings(true),
        StoreWriter::create(&whole, spec(20, true, &corpus)).unwrap(),
        &mut |_| {},
    )
    .unwrap();

    // Die (panic) after the second batch: queued shards land, the rest is lost.
    let killed = dir.path().join("killed");
    let writer = StoreWriter::create(&killed, spec(20, true, &corpus)).unwrap();
    let mut batches = 0;
    let died = catch_unwind(AssertUnwindSafe(|| {
        harvest(&model, &corpus, &settings(true), writer, &mut |_| {
            batches += 1;
            if batches == 2 {
                panic!("killed");
            }
        })
    }));
    assert!(died.is_err());
    let partial = ActivationStore::open(&killed).unwrap();
    assert!(
        !partial.index().complete && partial.index().rows > 0 && partial.index().rows < 20,
        "{:?}",
        partial.index()
    );

    let writer = StoreWriter::resume(&killed, spec(20, true, &corpus)).unwrap();
    let summary = harvest(&model, &corpus, &settings(true), writer, &mut |_| {}).unwrap();
    assert_eq!(summary.rows, 20);
    let (a, b) = (ActivationStore::open(&whole).unwrap(), ActivationStore::open(&killed).unwrap());
    assert_eq!(a.index(), b.index());
    for shard in &a.index().shards {
        assert_eq!(
            std::fs::read(whole.join(&shard.file)).unwrap(),
            std::fs::read(killed.join(&shard.file)).unwrap(),
            "{}",
            shard.file
        );
    }
}

#[test]
fn an_empty_corpus_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = setup(dir.path());
    let path = dir.path().join("empty.txt");
    std::fs::write(&path, "\n  \n\n").unwrap();
    let corpus = Corpus::open(&path, CorpusFormat::Text, "text").unwrap();
    let writer = StoreWriter::create(&dir.path().join("s"), spec(10, true, &corpus)).unwrap();
    let err = harvest(&model, &corpus, &settings(true), writer, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("empty.txt") && err.contains("no text"), "{err}");
}

#[test]
fn values_beyond_f16_are_refused() {
    let big = candle_core::Tensor::new(&[[1.0f32, 70000.0]], &Device::Cpu).unwrap();
    let err = to_store_dtype(&big, StoreDtype::F16, &HookPoint::ResidPost(3)).unwrap_err().to_string();
    assert!(
        err.contains("blocks.3.hook_resid_post") && err.contains("70000") && err.contains("bf16"),
        "{err}"
    );
    assert!(to_store_dtype(&big, StoreDtype::Bf16, &HookPoint::ResidPost(3)).is_ok());
}

#[test]
fn non_finite_activations_are_refused_with_their_document_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let (_, corpus) = setup(dir.path());
    // A model whose embedding of the first token of the third document (and of no
    // token of the first two) is NaN.
    let cfg = tiny_config(Family::Gemma3);
    let mut weights = random_weights(&cfg, 5);
    let tok = {
        let (model, _) = setup(dir.path());
        let t = model.tokenizer().unwrap();
        let earlier: Vec<u32> = DOCS[..2].iter().flat_map(|d| t.encode(d, false).unwrap()).collect();
        let first = t.encode(DOCS[2], false).unwrap()[0];
        assert!(!earlier.contains(&first), "the poisoned token must first appear in document 2");
        first
    };
    let embed = weights["model.embed_tokens.weight"].clone();
    let (vocab, d) = embed.dims2().unwrap();
    let mut values = embed.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let poisoned = tok as usize;
    values[poisoned * d..(poisoned + 1) * d].fill(f32::NAN);
    weights.insert(
        "model.embed_tokens.weight".into(),
        Tensor::from_vec(values, (vocab, d), &Device::Cpu).unwrap(),
    );
    write_hf_dir(&dir.path().join("nan-model"), &cfg, &weights, 1).unwrap();
    let model = Model::load(dir.path().join("nan-model").to_str().unwrap(), &LoadOptions::default()).unwrap();
    let out = dir.path().join("store");
    let writer = StoreWriter::create(&out, spec(1000, false, &corpus)).unwrap();
    let err = harvest(&model, &corpus, &settings(false), writer, &mut |_| {}).unwrap_err().to_string();
    // Window 0 of document 2 holds BOS, then the poisoned token at position 1.
    assert!(err.contains("NaN") && err.contains("document 2") && err.contains("position 1"), "{err}");
    assert!(err.contains("blocks.0.hook_resid_post"), "{err}");
}
