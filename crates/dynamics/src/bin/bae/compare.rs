//! `bae compare`: BAEs and SAE baselines trained on the same activations and measured the
//! same way, in one table printed as Markdown and written as Parquet; the work is the
//! library's compare stage.

use std::path::PathBuf;

use bae_dynamics::input::corpus::{CorpusFormat, DEFAULT_TEXT_FIELD};
use bae_dynamics::pipeline::compare::{
    compare_stage, markdown, CompareConfig, CompareJob, DEFAULT_MAX_PROMPTS,
};
use bae_dynamics::pipeline::features::FeaturesConfig;
use clap::Args;

use crate::features::JudgeArgs;
use crate::shared::{ModelArgs, Terminal};

/// Arguments of `bae compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The activation store every autoencoder trains on.
    #[arg(long)]
    pub acts: PathBuf,
    /// The store's hook point.
    #[arg(long)]
    pub hook: String,
    /// Training configs, comma-separated (each a TOML with a `[train]` table, e.g.
    /// configs/train-bae.toml,configs/train-topk.toml); each run is named by its file stem.
    /// Their `acts`, `hook` and `out` are replaced by --acts, --hook and --out.
    #[arg(long, value_delimiter = ',', required = true)]
    pub configs: Vec<PathBuf>,
    /// Held-out prompts for fidelity: text (one per line), JSONL or Parquet.
    #[arg(long)]
    pub prompts: PathBuf,
    /// Format of --prompts (and --corpus); by default from the extension.
    #[arg(long, value_enum)]
    pub format: Option<CorpusFormat>,
    /// The JSONL field or Parquet column holding the text.
    #[arg(long, default_value = DEFAULT_TEXT_FIELD)]
    pub field: String,
    /// Use at most this many held-out prompts for fidelity.
    #[arg(long, default_value_t = DEFAULT_MAX_PROMPTS)]
    pub max_prompts: usize,
    /// Text for feature densities and interpretability [default: --prompts].
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Use at most this many corpus documents for features.
    #[arg(long, default_value_t = FeaturesConfig::default().max_docs)]
    pub max_docs: usize,
    #[command(flatten)]
    pub judging: JudgeArgs,
    /// Output folder: one `bae train` run and one `bae features` folder per config, and
    /// compare.parquet (one row per config). Finished runs are reused, so a killed
    /// compare continues.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let config = CompareConfig {
        acts: args.acts.clone(),
        hook: args.hook.clone(),
        configs: args.configs.clone(),
        prompts: args.prompts.clone(),
        format: args.format,
        field: args.field.clone(),
        max_prompts: args.max_prompts,
        corpus: args.corpus.clone(),
        features: FeaturesConfig {
            max_docs: args.max_docs,
            judging: args.judging.config(),
            ..FeaturesConfig::default()
        },
    };
    let rows = compare_stage(
        &CompareJob { model: &args.model.spec(), out: &args.out },
        &config,
        &mut Terminal::default(),
    )?;
    crate::shared::print(&markdown(&rows))
}
