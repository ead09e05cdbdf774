//! The definitions: one function per table, the columns docs/formats/tables.md
//! documents. Shared groups (a hook's gate, state counts, the density histogram) are
//! written once.

use bae_train::metrics::DENSITY_BIN_LABELS;

use super::{Column, Kind, TableSchema};

/// `bae entropy`.
pub const ENTROPY: &str = "bae.entropy.v1";
/// `bae icl`.
pub const ICL: &str = "bae.icl.v1";
/// `bae fidelity`.
pub const FIDELITY: &str = "bae.fidelity.v1";
/// `bae features`: one row per feature.
pub const FEATURES: &str = "bae.features.v1";
/// `bae features`: one row per sample shown for a feature.
pub const FEATURE_SAMPLES: &str = "bae.feature-samples.v1";
/// `bae compare`.
pub const COMPARE: &str = "bae.compare.v1";
/// `bae train`'s training log.
pub const TRAINING_LOG: &str = "bae.training-log.v1";

use Kind::{Bool, Utf8, F64, U32, U64};

/// Always present.
const REQUIRED: bool = false;
/// Null where the value does not apply to the row.
const NULLABLE: bool = true;

fn columns(list: &[(&str, Kind, bool)]) -> Vec<Column> {
    list.iter().map(|&(name, kind, nullable)| Column { name: name.to_string(), kind, nullable }).collect()
}

fn table(format: &'static str, groups: Vec<Vec<Column>>) -> TableSchema {
    TableSchema { format, columns: groups.into_iter().flatten().collect() }
}

/// The number of distinct code states a value is drawn from, and its log2 (the most
/// bits a plug-in entropy over them can show).
fn states() -> Vec<Column> {
    columns(&[("states", U64, REQUIRED), ("log2_states", F64, REQUIRED)])
}

/// The gate of the row's hook: null on rows without a hook or a recorded quality.
fn gate() -> Vec<Column> {
    columns(&[
        ("bae_val_fvu", F64, NULLABLE),
        ("bae_dead", U32, NULLABLE),
        ("bae_constant", U32, NULLABLE),
        ("bae_train_rows", U64, NULLABLE),
        ("quality", Utf8, NULLABLE),
    ])
}

/// Features per density bin (`density_0` … `density_1`).
fn density_histogram() -> Vec<Column> {
    DENSITY_BIN_LABELS
        .iter()
        .map(|label| Column { name: format!("density_{label}"), kind: U32, nullable: REQUIRED })
        .collect()
}

/// The columns every measurement starts with.
fn provenance() -> Vec<Column> {
    columns(&[("run_id", Utf8, REQUIRED), ("model", Utf8, REQUIRED)])
}

/// The `bae entropy` table.
pub fn entropy() -> TableSchema {
    table(
        ENTROPY,
        vec![
            provenance(),
            columns(&[
                ("hook", Utf8, REQUIRED),
                ("layer", U32, NULLABLE),
                ("scope", Utf8, REQUIRED),
                ("position", U32, NULLABLE),
                ("prompt", U32, NULLABLE),
            ]),
            states(),
            columns(&[
                ("entropy_bits", F64, REQUIRED),
                ("bits_per_feature", F64, REQUIRED),
                ("active_fraction", F64, REQUIRED),
            ]),
            gate(),
        ],
    )
}

/// The `bae icl` table: aggregate rows (per k and hook) then sample rows (per k and
/// prompt), each null where the other's columns apply.
pub fn icl() -> TableSchema {
    table(
        ICL,
        vec![
            provenance(),
            columns(&[
                ("task", Utf8, REQUIRED),
                ("scope", Utf8, REQUIRED),
                ("demos", U32, REQUIRED),
                ("hook", Utf8, NULLABLE),
                ("layer", U32, NULLABLE),
            ]),
            states(),
            columns(&[
                ("entropy_bits", F64, NULLABLE),
                ("bits_per_feature", F64, NULLABLE),
                ("active_fraction", F64, NULLABLE),
                ("accuracy", F64, REQUIRED),
                ("label_logprob", F64, REQUIRED),
                ("sample", U32, NULLABLE),
                ("query", U32, NULLABLE),
                ("demo_indices", Utf8, NULLABLE),
                ("prompt_tokens", U32, NULLABLE),
            ]),
            gate(),
        ],
    )
}

/// The `bae fidelity` table.
pub fn fidelity() -> TableSchema {
    table(
        FIDELITY,
        vec![
            provenance(),
            columns(&[
                ("hook", Utf8, REQUIRED),
                ("layer", U32, NULLABLE),
                ("architecture", Utf8, REQUIRED),
                ("tokens", U64, REQUIRED),
                ("kl", F64, REQUIRED),
                ("js", F64, REQUIRED),
                ("ce_clean", F64, REQUIRED),
                ("ce_spliced", F64, REQUIRED),
                ("ce_zero", F64, REQUIRED),
                ("ce_recovered", F64, REQUIRED),
            ]),
        ],
    )
}

/// The hook a features table describes.
fn feature_hook() -> Vec<Column> {
    columns(&[("hook", Utf8, REQUIRED), ("layer", U32, NULLABLE)])
}

/// The `bae features` table: one row per feature, its judged explanation where scored.
pub fn features() -> TableSchema {
    table(
        FEATURES,
        vec![
            provenance(),
            feature_hook(),
            columns(&[
                ("architecture", Utf8, REQUIRED),
                ("feature", U32, REQUIRED),
                ("density", F64, REQUIRED),
                ("class", Utf8, REQUIRED),
                ("active_tokens", U64, REQUIRED),
                ("assigned_tokens", U64, REQUIRED),
                ("samples", U32, REQUIRED),
                ("explanation", Utf8, NULLABLE),
                ("judged", U32, NULLABLE),
                ("score", F64, NULLABLE),
            ]),
        ],
    )
}

/// The `bae features` samples table: the tokens shown for each feature.
pub fn feature_samples() -> TableSchema {
    table(
        FEATURE_SAMPLES,
        vec![
            provenance(),
            feature_hook(),
            columns(&[
                ("feature", U32, REQUIRED),
                ("list", Utf8, REQUIRED),
                ("sample", U32, REQUIRED),
                ("doc", U64, REQUIRED),
                ("position", U32, REQUIRED),
                ("token", Utf8, REQUIRED),
                ("before", Utf8, REQUIRED),
                ("after", Utf8, REQUIRED),
                ("score", F64, REQUIRED),
                ("role", Utf8, NULLABLE),
                ("verdict", Bool, NULLABLE),
            ]),
        ],
    )
}

/// The `bae compare` table: one row per autoencoder config.
pub fn compare() -> TableSchema {
    table(
        COMPARE,
        vec![
            provenance(),
            columns(&[
                ("hook", Utf8, REQUIRED),
                ("layer", U32, NULLABLE),
                ("config", Utf8, REQUIRED),
                ("architecture", Utf8, REQUIRED),
                ("d_hidden", U32, REQUIRED),
                ("epochs", U32, REQUIRED),
                ("fvu", F64, REQUIRED),
                ("mse", F64, REQUIRED),
                ("l0", F64, REQUIRED),
                ("entropy_bits", F64, REQUIRED),
                ("dead", U32, REQUIRED),
                ("dense", U32, REQUIRED),
            ]),
            density_histogram(),
            columns(&[
                ("kl", F64, REQUIRED),
                ("js", F64, REQUIRED),
                ("ce_recovered", F64, REQUIRED),
                ("corpus_tokens", U64, REQUIRED),
                ("corpus_dead", U32, REQUIRED),
                ("corpus_dense", U32, REQUIRED),
                ("scored_features", U32, REQUIRED),
                ("interpretability", F64, NULLABLE),
                ("judge", Utf8, NULLABLE),
            ]),
        ],
    )
}

/// The training log: one row per epoch and split.
pub fn training_log() -> TableSchema {
    table(
        TRAINING_LOG,
        vec![
            columns(&[
                ("epoch", U32, REQUIRED),
                ("split", Utf8, REQUIRED),
                ("mse", F64, REQUIRED),
                ("fvu", F64, REQUIRED),
                ("covariance", F64, REQUIRED),
                ("batch_entropy_bits", F64, REQUIRED),
                ("sparsity", F64, REQUIRED),
                ("loss", F64, REQUIRED),
                ("entropy_bits", F64, REQUIRED),
                ("entropy_bits_per_feature", F64, REQUIRED),
                ("l0", F64, REQUIRED),
                ("dead", U32, REQUIRED),
                ("dense", U32, REQUIRED),
                ("constant", U32, REQUIRED),
                ("merged_bits", U32, REQUIRED),
                ("pruned_bits", U32, REQUIRED),
            ]),
            density_histogram(),
            columns(&[("seconds", F64, REQUIRED)]),
        ],
    )
}
