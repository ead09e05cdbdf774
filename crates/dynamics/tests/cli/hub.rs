//! Hugging Face Hub ids: the local cache, offline mode, an unreachable hub.

use super::*;

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
