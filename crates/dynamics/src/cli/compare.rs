//! Arguments of `bae compare`.

use std::path::PathBuf;

use clap::Args;

use super::features::JudgeArgs;
use super::harvest::FormatArg;
use super::ModelArgs;

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
    pub format: Option<FormatArg>,
    /// The JSONL field or Parquet column holding the text.
    #[arg(long, default_value = "text")]
    pub field: String,
    /// Use at most this many held-out prompts for fidelity.
    #[arg(long, default_value_t = 64)]
    pub max_prompts: usize,
    /// Text for feature densities and interpretability [default: --prompts].
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Use at most this many corpus documents for features.
    #[arg(long, default_value_t = 400)]
    pub max_docs: usize,
    #[command(flatten)]
    pub judging: JudgeArgs,
    /// Output folder: one `bae train` run and one `bae features` folder per config, and
    /// compare.parquet (one row per config). Finished runs are reused, so a killed
    /// compare continues.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}
