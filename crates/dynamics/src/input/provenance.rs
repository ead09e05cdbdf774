//! What a measurement table records about the model: how it was named, what it is, and
//! a hash of its weight files, so a table can be traced to exact weights.

use bae_lm::{Model, ModelSource};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::input::corpus::sha256_of;

/// sha256 of the model's weights: the GGUF file's, or for a Hugging Face folder the
/// hash of its config and weight files' names and hashes, in order.
pub fn weights_sha256(model: &Model) -> Result<String> {
    match &model.source {
        ModelSource::Gguf(path) => sha256_of(path),
        ModelSource::HfDir { files, .. } => {
            let mut hasher = Sha256::new();
            for path in std::iter::once(&files.config).chain(&files.weights) {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                hasher.update(name.as_bytes());
                hasher.update(sha256_of(path)?.as_bytes());
            }
            Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
        }
    }
}

/// The model as a JSON object for a table's metadata.
pub fn describe(model: &Model, spec: &str) -> Result<serde_json::Value> {
    let c = model.config();
    Ok(serde_json::json!({
        "spec": spec,
        // The model family, under the key the tables have always used.
        "architecture": c.family.name(),
        "num_layers": c.num_layers,
        "d_model": c.hidden_size,
        "parameters": c.parameter_count(),
        "dtype": format!("{:?}", model.decoder.dtype()).to_lowercase(),
        "weights_sha256": weights_sha256(model)?,
    }))
}
