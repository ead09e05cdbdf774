//! `bae features`: tokens sampled per feature over a corpus, densities and dead/dense
//! counts, optional interpretability scores from an LLM judge; the work is the library's
//! features stage.

use std::path::PathBuf;

use bae_dynamics::input::corpus::{CorpusFormat, DEFAULT_TEXT_FIELD};
use bae_dynamics::pipeline::features::{features_stage, FeaturesConfig, FeaturesJob, JudgeConfig, JudgeKind};
use bae_dynamics::pipeline::PromptSet;
use clap::Args;

use crate::shared::{ModelArgs, Terminal};

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
    pub format: Option<CorpusFormat>,
    /// The JSONL field or Parquet column holding the text.
    #[arg(long, default_value = DEFAULT_TEXT_FIELD)]
    pub field: String,
    /// Use at most this many documents (in file order).
    #[arg(long, default_value_t = FeaturesConfig::default().max_docs)]
    pub max_docs: usize,
    /// Cut each document to its first N tokens (at most the model's context).
    #[arg(long, default_value_t = FeaturesConfig::default().max_tokens)]
    pub max_tokens: usize,
    /// Add no special tokens (BOS) to documents.
    #[arg(long)]
    pub no_bos: bool,
    /// Features each token is handed to: its N best-scoring active ones (the reference's top-k).
    #[arg(long, default_value_t = FeaturesConfig::default().top_features)]
    pub top_features: usize,
    /// Tokens kept per feature, in corpus order (scoring needs --explain-samples + 1).
    #[arg(long, default_value_t = FeaturesConfig::default().samples)]
    pub samples: usize,
    /// Highest-scoring tokens kept per feature, over every token it is active on (the
    /// report shows these).
    #[arg(long, default_value_t = FeaturesConfig::default().top_samples)]
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
    #[arg(long, value_enum, default_value_t = JudgeKind::None)]
    pub judge: JudgeKind,
    /// Base URL of an OpenAI-compatible chat-completions endpoint, e.g.
    /// `https://api.openai.com/v1` (requests go to URL/chat/completions).
    #[arg(long)]
    pub judge_url: Option<String>,
    /// The model name sent to the endpoint.
    #[arg(long)]
    pub judge_model: Option<String>,
    /// Environment variable holding the endpoint's API key (sent as a bearer token when set).
    #[arg(long, default_value_t = JudgeConfig::default().key_env)]
    pub judge_key_env: String,
    /// Seconds before a request to the endpoint is abandoned (then retried).
    #[arg(long, default_value_t = JudgeConfig::default().timeout)]
    pub judge_timeout: u64,
    /// Retries after a rate limit (HTTP 429), server error or lost connection.
    #[arg(long, default_value_t = JudgeConfig::default().retries)]
    pub judge_retries: u32,
    /// Score at most this many features per autoencoder, chosen at random (--seed)
    /// among those with enough samples; 0 scores them all (d' × 9 judge calls).
    #[arg(long, default_value_t = JudgeConfig::default().score_features)]
    pub score_features: usize,
    /// Tokens an explanation is written from (the reference's 5).
    #[arg(long, default_value_t = JudgeConfig::default().explain_samples)]
    pub explain_samples: usize,
    /// Later tokens judged against the explanation, at most (the reference's 8).
    #[arg(long, default_value_t = JudgeConfig::default().judge_samples)]
    pub judge_samples: usize,
    /// Seed of the choice of features to score.
    #[arg(long, default_value_t = JudgeConfig::default().seed)]
    pub seed: u64,
    /// The judge's answers are cached in this file [default: judgements.jsonl in the
    /// output folder].
    #[arg(long)]
    pub judge_cache: Option<PathBuf>,
}

impl JudgeArgs {
    /// As the library's judge config.
    pub fn config(&self) -> JudgeConfig {
        JudgeConfig {
            judge: self.judge,
            url: self.judge_url.clone(),
            model: self.judge_model.clone(),
            key_env: self.judge_key_env.clone(),
            timeout: self.judge_timeout,
            retries: self.judge_retries,
            score_features: self.score_features,
            explain_samples: self.explain_samples,
            judge_samples: self.judge_samples,
            seed: self.seed,
            cache: self.judge_cache.clone(),
        }
    }
}

pub fn run(args: &FeaturesArgs) -> anyhow::Result<()> {
    let config = FeaturesConfig {
        max_docs: args.max_docs,
        max_tokens: args.max_tokens,
        special_tokens: !args.no_bos,
        top_features: args.top_features,
        samples: args.samples,
        top_samples: args.top_samples,
        judging: args.judging.config(),
    };
    let model = args.model.load()?;
    let corpus = PromptSet {
        path: args.corpus.clone(),
        format: args.format,
        field: args.field.clone(),
        max_prompts: None,
    };
    let job = FeaturesJob {
        model: &model,
        model_spec: &args.model.model,
        bae: &args.bae,
        hook: args.hook.as_deref(),
        corpus: &corpus,
        out: &args.out,
        run_id: args.run_id.as_deref(),
    };
    features_stage(&job, &config, &mut Terminal::default())?;
    Ok(())
}
