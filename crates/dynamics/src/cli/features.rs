//! Arguments of `bae features`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::harvest::FormatArg;
use super::ModelArgs;

/// Arguments of `bae features`.
#[derive(Debug, Args, Clone)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A trained autoencoder (BAE or SAE baseline): a `bae train` run folder, or a folder
    /// of them with --hook naming which.
    #[arg(long)]
    pub bae: PathBuf,
    /// The hook point, when --bae holds several autoencoders.
    #[arg(long)]
    pub hook: Option<String>,
    /// Text to sample tokens from: text (one document per line), JSONL or Parquet.
    #[arg(long)]
    pub corpus: PathBuf,
    /// Format of --corpus; by default from its extension.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The JSONL field or Parquet column holding the text.
    #[arg(long, default_value = "text")]
    pub field: String,
    /// Use at most this many documents (in file order).
    #[arg(long, default_value_t = 400)]
    pub max_docs: usize,
    /// Cut each document to its first N tokens (at most the model's context).
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Add no special tokens (BOS) to documents.
    #[arg(long)]
    pub no_bos: bool,
    /// Features each token is handed to: its N best-scoring active ones (the reference's top-k).
    #[arg(long, default_value_t = 10)]
    pub top_features: usize,
    /// Tokens kept per feature, in corpus order (scoring needs --explain-samples + 1).
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    /// Highest-scoring tokens kept per feature, over every token it is active on (the
    /// report shows these).
    #[arg(long, default_value_t = 10)]
    pub top_samples: usize,
    #[command(flatten)]
    pub judging: JudgeArgs,
    /// Identifier of this run in the tables' `run_id` column [default: the --out folder's name].
    #[arg(long)]
    pub run_id: Option<String>,
    /// Output folder: features.parquet (one row per feature), samples.parquet (one row
    /// per feature and sampled token), report.html.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

/// Interpretability scoring: who judges and how much (`bae features`, `bae compare`).
#[derive(Debug, Args, Clone)]
pub struct JudgeArgs {
    /// Who scores interpretability: none, self (the --model itself through its chat
    /// template; needs an instruction-tuned model), or endpoint (--judge-url).
    #[arg(long, value_enum, default_value_t = JudgeArg::None)]
    pub judge: JudgeArg,
    /// Base URL of an OpenAI-compatible chat-completions endpoint, e.g.
    /// `https://api.openai.com/v1` (requests go to URL/chat/completions).
    #[arg(long)]
    pub judge_url: Option<String>,
    /// The model name sent to the endpoint.
    #[arg(long)]
    pub judge_model: Option<String>,
    /// Environment variable holding the endpoint's API key (sent as a bearer token when set).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub judge_key_env: String,
    /// Seconds before a request to the endpoint is abandoned (then retried).
    #[arg(long, default_value_t = 60)]
    pub judge_timeout: u64,
    /// Retries after a rate limit (HTTP 429), server error or lost connection.
    #[arg(long, default_value_t = 4)]
    pub judge_retries: u32,
    /// Score at most this many features per autoencoder, chosen at random (--seed)
    /// among those with enough samples; 0 scores them all (d' × 9 judge calls).
    #[arg(long, default_value_t = 50)]
    pub score_features: usize,
    /// Tokens an explanation is written from (the reference's 5).
    #[arg(long, default_value_t = 5)]
    pub explain_samples: usize,
    /// Later tokens judged against the explanation, at most (the reference's 8).
    #[arg(long, default_value_t = 8)]
    pub judge_samples: usize,
    /// Seed of the choice of features to score.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The judge's answers are cached in this file [default: judgements.jsonl in the
    /// output folder].
    #[arg(long)]
    pub judge_cache: Option<PathBuf>,
}

/// Who scores interpretability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JudgeArg {
    /// No scoring: samples, densities and the report only.
    None,
    /// The hosted model, through its chat template.
    #[value(name = "self")]
    SelfModel,
    /// An OpenAI-compatible chat-completions endpoint (--judge-url, --judge-model).
    Endpoint,
}
