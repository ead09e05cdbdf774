//! Where a model comes from: a local Hugging Face directory, a GGUF file, or a Hub
//! model id resolved through the local Hugging Face cache (downloaded when missing and
//! the network allows). Every command accepts the same `--model` forms.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{read_file, LmError, Result};

/// The files a Hugging Face layout model consists of.
#[derive(Debug, Clone)]
pub struct HfFiles {
    /// `config.json`.
    pub config: PathBuf,
    /// One or more `*.safetensors` files.
    pub weights: Vec<PathBuf>,
    /// `tokenizer.json`, when present.
    pub tokenizer: Option<PathBuf>,
}

/// A resolved model location.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// Hugging Face layout in a local directory (possibly a Hub cache snapshot).
    HfDir {
        /// The directory.
        dir: PathBuf,
        /// The Hub id when it was resolved from one.
        hub_id: Option<String>,
        /// Its files.
        files: HfFiles,
    },
    /// A llama.cpp GGUF file.
    Gguf(PathBuf),
}

impl ModelSource {
    /// Resolves a `--model` argument: an existing directory, an existing GGUF file, or
    /// a Hub id (`org/name`).
    pub fn resolve(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(ModelSource::HfDir {
                dir: path.to_path_buf(),
                hub_id: None,
                files: hf_dir_files(path)?,
            });
        }
        if path.is_file() {
            if is_gguf(path)? {
                return Ok(ModelSource::Gguf(path.to_path_buf()));
            }
            return Err(LmError::ModelSpec {
                spec: spec.to_string(),
                message: "the file is not GGUF (its first bytes are not \"GGUF\"); expected a GGUF file, \
                          a directory with config.json and *.safetensors, or a Hub model id"
                    .into(),
            });
        }
        if looks_like_hub_id(spec) {
            return resolve_hub(spec);
        }
        Err(LmError::ModelSpec {
            spec: spec.to_string(),
            message: "no such file or directory, and not a Hub model id (expected org/name)".into(),
        })
    }

    /// A short description: the path or Hub id.
    pub fn describe(&self) -> String {
        match self {
            ModelSource::HfDir { hub_id: Some(id), .. } => id.clone(),
            ModelSource::HfDir { dir, .. } => dir.display().to_string(),
            ModelSource::Gguf(p) => p.display().to_string(),
        }
    }
}

fn is_gguf(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f =
        std::fs::File::open(path).map_err(|source| LmError::Io { path: path.to_path_buf(), source })?;
    let n = f.read(&mut magic).map_err(|source| LmError::Io { path: path.to_path_buf(), source })?;
    let gguf_extension = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    // A file named *.gguf with a bad magic is reported by the GGUF reader, which says more.
    Ok((n == 4 && &magic == b"GGUF") || gguf_extension)
}

fn looks_like_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    let ok_part = |p: &&str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (parts.len() == 1 || parts.len() == 2) && parts.iter().all(ok_part) && !spec.ends_with(".gguf")
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

/// The weight files of a sharded checkpoint, from its index file.
fn shards_from_index(index: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let text = read_file(index)?;
    let parsed: ShardIndex = serde_json::from_slice(&text)
        .map_err(|e| LmError::Json { path: index.to_path_buf(), message: e.to_string() })?;
    // Names come from a file anyone can edit: a checkpoint reads only its own folder.
    let outside =
        |f: &String| !Path::new(f).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if let Some(f) = parsed.weight_map.values().find(|f| f.is_empty() || outside(f)) {
        return Err(LmError::Json {
            path: index.to_path_buf(),
            message: format!("weight_map names {f:?}, expected a file inside the model's folder"),
        });
    }
    let mut files: Vec<PathBuf> = parsed.weight_map.values().map(|f| dir.join(f)).collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Finds config.json, the safetensors files and tokenizer.json in a directory.
pub fn hf_dir_files(dir: &Path) -> Result<HfFiles> {
    let config = dir.join("config.json");
    if !config.is_file() {
        return Err(LmError::MissingFile { path: config, what: "model config".into() });
    }
    let index = dir.join("model.safetensors.index.json");
    let single = dir.join("model.safetensors");
    let weights = if index.is_file() {
        shards_from_index(&index, dir)?
    } else if single.is_file() {
        vec![single]
    } else {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| LmError::Io { path: dir.to_path_buf(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(LmError::MissingFile {
                path: single,
                what: "weights (model.safetensors, model.safetensors.index.json or *.safetensors)".into(),
            });
        }
        found
    };
    let tokenizer = Some(dir.join("tokenizer.json")).filter(|p| p.is_file());
    Ok(HfFiles { config, weights, tokenizer })
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"))
}

/// Resolves a Hub id in the local cache, downloading what is missing unless offline.
fn resolve_hub(id: &str) -> Result<ModelSource> {
    let cache = hf_hub::Cache::from_env();
    let cache_dir = cache.path().display().to_string();
    let repo = cache.model(id.to_string());
    if let Some(config) = repo.get("config.json") {
        let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
        let cached = hf_dir_files(&dir);
        if let Ok(files) = cached {
            return Ok(ModelSource::HfDir { dir, hub_id: Some(id.to_string()), files });
        }
    }
    if offline() {
        return Err(LmError::NotCached {
            id: id.to_string(),
            cache: cache_dir,
            why: "HF_HUB_OFFLINE is set, so it is not downloaded".into(),
        });
    }
    download(id).map_err(|why| LmError::NotCached {
        id: id.to_string(),
        cache: cache_dir,
        why: format!("the download failed: {why}"),
    })
}

fn download(id: &str) -> std::result::Result<ModelSource, String> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .with_retries(1)
        .build()
        .map_err(|e| e.to_string())?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").map_err(|e| e.to_string())?;
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    match repo.get("model.safetensors.index.json") {
        Ok(index) => {
            let shards = shards_from_index(&index, &dir).map_err(|e| e.to_string())?;
            for shard in shards {
                let name = shard.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                repo.get(&name).map_err(|e| e.to_string())?;
            }
        }
        Err(_) => {
            repo.get("model.safetensors").map_err(|e| e.to_string())?;
        }
    }
    // Some repositories ship no tokenizer.json; the model still loads without one.
    let _ = repo.get("tokenizer.json");
    let files = hf_dir_files(&dir).map_err(|e| e.to_string())?;
    Ok(ModelSource::HfDir { dir, hub_id: Some(id.to_string()), files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_are_told_from_paths() {
        assert!(looks_like_hub_id("HuggingFaceTB/SmolLM2-135M-Instruct"));
        assert!(looks_like_hub_id("gpt2"));
        assert!(!looks_like_hub_id("./models/x"));
        assert!(!looks_like_hub_id("/abs/path"));
        assert!(!looks_like_hub_id("a/b/c"));
        assert!(!looks_like_hub_id("missing.gguf"));
    }

    #[test]
    fn weight_map_entries_must_stay_inside_the_model_folder() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("model.safetensors.index.json");
        for (name, refused) in [
            ("../x.safetensors", true),
            ("/etc/passwd", true),
            ("", true),
            ("a/../../b", true),
            ("sub/m.safetensors", false),
        ] {
            let text = serde_json::json!({"weight_map": {"w": name}}).to_string();
            std::fs::write(&index, text).unwrap();
            let result = shards_from_index(&index, dir.path());
            assert_eq!(result.is_err(), refused, "{name:?}: {result:?}");
            if let Err(e) = result {
                assert!(e.to_string().contains("inside the model's folder"), "{e}");
            }
        }
    }
}
