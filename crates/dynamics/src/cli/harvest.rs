//! Arguments of `bae harvest`: flags, or the `[harvest]` table of a TOML config with the
//! same names (flags win).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Deserialize;

use super::DtypeArg;

/// Arguments of `bae harvest`.
#[derive(Debug, Args)]
pub struct HarvestArgs {
    /// A TOML run config whose `[harvest]` table sets any of the options below (same
    /// names, with underscores: `keep_sinks = true`). Flags given on the command line win.
    /// Relative paths in the file are relative to the current directory.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue a killed harvest in `--out` from its last complete shard. The settings
    /// must equal the original run's; the result equals an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub options: HarvestOptions,
}

/// Storage dtype of harvested activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreDtypeArg {
    /// 4 bytes per value.
    F32,
    /// 2 bytes; values beyond ±65504 (Gemma's residuals) are refused, not clipped.
    F16,
    /// 2 bytes with f32's range and 8 bits of mantissa.
    Bf16,
}

/// Everything a harvest needs. Each is a flag and a `[harvest]` config field.
#[derive(Debug, Default, Clone, Args, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HarvestOptions {
    /// The model: a Hugging Face directory, a GGUF file, or a Hub id (see `bae inspect`).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// A tokenizer.json to use instead of the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// dtype the model runs in [default: f32].
    #[arg(long, value_enum)]
    pub model_dtype: Option<DtypeArg>,
    /// The corpus file: plain text (one document per line), JSONL, or Parquet.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Corpus layout [default: from the extension: .jsonl/.json/.ndjson are JSONL,
    /// .parquet/.pq Parquet, anything else text].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The JSONL field or Parquet column holding the text [default: text].
    #[arg(long)]
    pub field: Option<String>,
    /// Hook points to store: comma-separated names or globs, e.g.
    /// `blocks.*.hook_resid_post` [default: blocks.*.hook_resid_post].
    #[arg(long)]
    pub hooks: Option<String>,
    /// Rows to store per hook point (one row per token, attention sinks excluded unless
    /// --keep-sinks). The store ends early if the corpus runs out.
    #[arg(long)]
    pub tokens: Option<u64>,
    /// Output directory of the store; must be new or empty (or the store to resume).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Longest window fed to the model, in tokens including BOS; longer documents are
    /// cut into consecutive windows [default: 128].
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Windows per forward pass [default: 8].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Storage dtype of the activations [default: f32].
    #[arg(long, value_enum)]
    pub dtype: Option<StoreDtypeArg>,
    /// Also store the attention-sink rows: position 0 of every window and every BOS
    /// row. By default they are left out, because their norms are 15x to 130x the
    /// others' and would swamp an autoencoder's loss (the model still sees those
    /// tokens, and `bae entropy` still reports position 0). `--keep-sinks` alone means
    /// true [default: false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub keep_sinks: Option<bool>,
    /// Target shard size in MiB (fractions allowed); each shard holds as many whole rows
    /// (all hook points) as fit, at least one [default: 64].
    #[arg(long)]
    pub shard_mb: Option<f64>,
}

/// Corpus layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatArg {
    /// One document per line.
    Text,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl FormatArg {
    /// The corpus format `format` names, or the one `path`'s extension implies.
    pub fn resolve(format: Option<FormatArg>, path: &std::path::Path) -> bae_dynamics::corpus::CorpusFormat {
        use bae_dynamics::corpus::CorpusFormat;
        match format {
            Some(FormatArg::Text) => CorpusFormat::Text,
            Some(FormatArg::Jsonl) => CorpusFormat::Jsonl,
            Some(FormatArg::Parquet) => CorpusFormat::Parquet,
            None => CorpusFormat::from_extension(path),
        }
    }
}

impl HarvestOptions {
    /// Each option from `self` if set, else from `fallback`.
    pub fn or(self, fallback: HarvestOptions) -> HarvestOptions {
        HarvestOptions {
            model: self.model.or(fallback.model),
            tokenizer: self.tokenizer.or(fallback.tokenizer),
            model_dtype: self.model_dtype.or(fallback.model_dtype),
            corpus: self.corpus.or(fallback.corpus),
            format: self.format.or(fallback.format),
            field: self.field.or(fallback.field),
            hooks: self.hooks.or(fallback.hooks),
            tokens: self.tokens.or(fallback.tokens),
            out: self.out.or(fallback.out),
            ctx: self.ctx.or(fallback.ctx),
            batch: self.batch.or(fallback.batch),
            dtype: self.dtype.or(fallback.dtype),
            keep_sinks: self.keep_sinks.or(fallback.keep_sinks),
            shard_mb: self.shard_mb.or(fallback.shard_mb),
        }
    }
}
