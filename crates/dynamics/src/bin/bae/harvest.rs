//! `bae harvest`: a corpus through a model, residual-stream rows into an activation
//! store. Flags, or the `[harvest]` table of a TOML config with the same names (flags
//! win); the work is the library's harvest stage.

use std::path::PathBuf;

use bae_dynamics::input::corpus::CorpusFormat;
use bae_dynamics::input::model::ModelDtype;
use bae_dynamics::pipeline::harvest::{harvest_stage, HarvestConfig};
use bae_dynamics::pipeline::RunConfig;
use clap::Args;

use crate::shared::{StoreDtypeArg, Terminal};

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
    /// The model: a Hugging Face directory, a GGUF file, or a Hub id (see `bae inspect`).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// A tokenizer.json to use instead of the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// dtype the model runs in [default: f32].
    #[arg(long, value_enum)]
    pub model_dtype: Option<ModelDtype>,
    /// The corpus file: plain text (one document per line), JSONL, or Parquet.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Corpus layout [default: from the extension: .jsonl/.json/.ndjson are JSONL,
    /// .parquet/.pq Parquet, anything else text].
    #[arg(long, value_enum)]
    pub format: Option<CorpusFormat>,
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

impl HarvestArgs {
    /// The flags as a config, unset fields left for the file.
    fn flags(&self) -> HarvestConfig {
        HarvestConfig {
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            model_dtype: self.model_dtype,
            corpus: self.corpus.clone(),
            format: self.format,
            field: self.field.clone(),
            hooks: self.hooks.clone(),
            tokens: self.tokens,
            out: self.out.clone(),
            ctx: self.ctx,
            batch: self.batch,
            dtype: self.dtype.map(StoreDtypeArg::store_dtype),
            keep_sinks: self.keep_sinks,
            shard_mb: self.shard_mb,
        }
    }
}

pub fn run(args: &HarvestArgs) -> anyhow::Result<()> {
    let from_file = match &args.config {
        Some(path) => RunConfig::read(path)?.harvest,
        None => HarvestConfig::default(),
    };
    let config = args.flags().or(from_file);
    let source = args.config.as_ref().map(|p| p.display().to_string());
    harvest_stage(&config, args.resume, source.as_deref(), &mut Terminal::default())?;
    Ok(())
}
