//! Command-line interface: every command and flag, documented where it is declared.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod compare;
pub mod entropy;
pub mod features;
pub mod fidelity;
pub mod harvest;
pub mod icl;
pub mod inputs;
pub mod plot;
pub mod run;
mod store;
pub mod train;

pub use entropy::EntropyArgs;
pub use features::FeaturesArgs;
pub use fidelity::FidelityArgs;
pub use harvest::{HarvestArgs, HarvestOptions, StoreDtypeArg};
pub use icl::IclArgs;
pub use plot::PlotArgs;
pub use run::RunArgs;
pub use store::{ActivationsArgs, StoreCommand, StoreStatsArgs};
pub use train::TrainArgs;

/// Mechanistic interpretability with binary autoencoders.
#[derive(Debug, Parser)]
#[command(name = "bae", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job end to end from one config: harvest, a BAE per hook point, entropy
    /// over a prompt set, the ICL sweep, plots; resumable stage by stage.
    Run(RunArgs),
    /// Print a model's architecture, sizes, parameter count and hook points.
    Inspect(InspectArgs),
    /// Run prompts through a model and save residual-stream activations as safetensors.
    HiddenStates(HiddenStatesArgs),
    /// Greedily continue a prompt, and print the prompt's mean next-token NLL.
    Generate(GenerateArgs),
    /// Run a corpus through a model and store residual-stream activations on disk.
    Harvest(HarvestArgs),
    /// Train a binary autoencoder or an SAE baseline on stored activations.
    Train(TrainArgs),
    /// Feature-set entropy per hook point and token position over a prompt set, read
    /// through trained BAEs, to Parquet.
    Entropy(EntropyArgs),
    /// Splice each autoencoder's reconstruction into the model and compare next-token
    /// distributions with the clean run and zero ablation (KL, JS, CE recovered).
    Fidelity(FidelityArgs),
    /// Feature untangling: tokens sampled per feature over a corpus, densities, dead and
    /// dense counts, optional interpretability scores from an LLM judge; Parquet and an
    /// HTML report.
    Features(FeaturesArgs),
    /// Train a BAE and SAE baselines on the same activations and compare them in one
    /// table: FVU, L0, dead/dense counts, density histogram, fidelity, interpretability.
    Compare(compare::CompareArgs),
    /// In-context learning: entropy at the last prompt token and accuracy on the label,
    /// swept over the number of demonstrations, to Parquet.
    Icl(IclArgs),
    /// Draw a chart (PNG or SVG) of a table bae wrote: entropy by layer or position,
    /// entropy or accuracy by number of demonstrations, training curves.
    Plot(PlotArgs),
    /// On a machine with an NVIDIA GPU: compare every CUDA kernel and the whole training
    /// step with the CPU, and time the fused entropy kernel against a device copy. Needs
    /// a build with `--features cuda`.
    GpuCheck(GpuCheckArgs),
    /// Look into activation stores and activation files.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Arguments of `bae gpu-check`.
#[derive(Debug, Args)]
pub struct GpuCheckArgs {
    /// Rows of the pre-activation matrix the entropy kernel is timed on.
    #[arg(long, default_value_t = 512)]
    pub rows: usize,
    /// Features (columns) of that matrix.
    #[arg(long, default_value_t = 8192)]
    pub features: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Weight and activation dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DtypeArg {
    /// 32-bit float (default; fastest on CPUs).
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision. Beware: Gemma-class residuals overflow it.
    F16,
}

/// How to find and load the model; shared by every command.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The model: a directory in Hugging Face layout (config.json, *.safetensors,
    /// tokenizer.json), a GGUF file, or a Hub id such as HuggingFaceTB/SmolLM2-135M
    /// (looked up in the Hugging Face cache under HF_HOME, downloaded when missing
    /// unless HF_HUB_OFFLINE=1).
    #[arg(long, short = 'm')]
    pub model: String,
    /// A tokenizer.json to use instead of the model's own. For a GGUF file the default is
    /// a `tokenizer.json` beside it, else the tokenizer rebuilt from its metadata, which
    /// works for byte-level BPE only (Gemma's SentencePiece vocabulary needs the file).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Dtype of weights and activations.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DtypeArg,
}

/// Arguments of `bae inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bae hidden-states`.
#[derive(Debug, Args)]
pub struct HiddenStatesArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// A prompt; repeat the flag for several. Prompt i is saved under `p{i}.*`.
    #[arg(long = "prompt", short = 'p', required = true)]
    pub prompts: Vec<String>,
    /// Hook points to save: a comma-separated list of names or globs, e.g.
    /// `blocks.*.hook_resid_post` or `hook_embed,blocks.3.hook_resid_mid`.
    #[arg(long, default_value = "*")]
    pub hooks: String,
    /// Do not add the tokenizer's special tokens. By default the model's own convention
    /// is followed: SmolLM2 adds no BOS, Llama 2/3 tokenizers prepend one.
    #[arg(long)]
    pub no_bos: bool,
    /// Prompts run together per forward pass (padded; results do not depend on it).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Output safetensors file: one f32 tensor `p{i}.{hook}` of shape [seq, d_model] per
    /// prompt and hook point, plus `p{i}.input_ids` (u32, one per token).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

/// Arguments of `bae generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// The prompt to continue.
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// Most tokens to add.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: usize,
    /// Do not add the tokenizer's special tokens (see `hidden-states --no-bos`).
    #[arg(long)]
    pub no_bos: bool,
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Forward-pass throughput, plain and capturing every `hook_resid_post`.
    Forward(BenchForwardArgs),
    /// Entropy, per-feature counts and the covariance term of binary codes: the
    /// bit-packed popcount path against float tensor and reference-loop paths.
    Entropy(BenchEntropyArgs),
    /// The method's sanity check: r independent fair bits planted along random
    /// directions in R^d (plus noise); a trained BAE should report about r bits.
    SyntheticBits(BenchSyntheticArgs),
    /// Training throughput (rows/s) of `bae train`'s loop on seeded random rows:
    /// forward, the three loss terms, backward, Adam, and the per-batch metrics.
    Train(BenchTrainArgs),
}

/// Arguments of `bae bench train`.
#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// Input width d.
    #[arg(long, default_value_t = 576)]
    pub d: usize,
    /// Features d'.
    #[arg(long, default_value_t = 2304)]
    pub features: usize,
    /// Rows per minibatch.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Minibatches per timed epoch.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Gradient estimator (binary only).
    #[arg(long, default_value = "sign_s", value_parser = ["identity", "sign_s", "sigmoid"])]
    pub estimator: String,
    /// What to train: the BAE or a baseline, with that architecture's default settings.
    #[arg(long, default_value = "binary", value_parser = ["binary", "relu_l1", "topk", "batch_topk", "jumprelu"])]
    pub architecture: String,
    /// Matmul implementation: the system OpenBLAS when the build found one (falls back
    /// otherwise), or the pure-Rust `gemm` crate candle also uses.
    #[arg(long, value_enum, default_value = "openblas")]
    pub matmul: MatmulArg,
    /// Where the step runs: cpu, or cuda (a build with `--features cuda`).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: crate::cli::train::DeviceArg,
}

/// Arguments of `bae bench synthetic-bits`: r independent fair bits planted along
/// random directions, rows scaled to a real hook's norm, and a BAE trained on them with
/// the shipped `[train]` defaults (or `--config`'s `[train]`); a recipe that recovers
/// about r bits passes. Each flag below overrides one recipe field, for sweeps.
#[derive(Debug, Args)]
pub struct BenchSyntheticArgs {
    /// Numbers of planted bits, comma-separated.
    #[arg(long, default_value = "4,8,16,32", value_delimiter = ',')]
    pub bits: Vec<usize>,
    /// Width d of the data (SmolLM2's d_model by default).
    #[arg(long, default_value_t = 576)]
    pub d: usize,
    /// Features d' of the BAE [default: the recipe's, 4·d].
    #[arg(long)]
    pub features: Option<usize>,
    /// Rows of data (the last `val_fraction` held out).
    #[arg(long, default_value_t = 16384)]
    pub rows: usize,
    /// Mean row norm of the planted data. The default is the mean norm of SmolLM2's
    /// block-15 residual on non-sink rows (about 172–288 across the middle blocks), so
    /// the recipe is tried at the scale it meets (normalisation should make it moot).
    #[arg(long, default_value_t = 200.0)]
    pub row_norm: f32,
    /// Noise: per-coordinate standard deviation as a fraction of row_norm / sqrt(d).
    #[arg(long, default_value_t = 0.05)]
    pub noise: f32,
    /// A TOML config whose `[train]` table is the recipe [default: the shipped defaults].
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Override λ_H.
    #[arg(long)]
    pub lambda_entropy: Option<f64>,
    /// Override λ_C.
    #[arg(long)]
    pub lambda_covariance: Option<f64>,
    /// Override the epoch cap.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override E0.
    #[arg(long)]
    pub entropy_start_epoch: Option<usize>,
    /// Override the λ warm-up, in optimiser steps (0: full weight from the first step).
    #[arg(long)]
    pub lambda_warmup_steps: Option<usize>,
    /// Override the duplicate-bit merge: the agreement at which two bits are merged
    /// (0: never merge).
    #[arg(long)]
    pub merge_agreement: Option<f64>,
    /// Override the pruning of unprofitable bits ("true" or "false").
    #[arg(long)]
    pub prune_bits: Option<bool>,
    /// Override the learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override early stopping's patience (0: run every epoch).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Override the normalisation ("expected_average_only_in" or "none").
    #[arg(long)]
    pub normalize_activations: Option<String>,
    /// Seed of the planted data (the recipe's seed is its own).
    #[arg(long, default_value_t = 1)]
    pub data_seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bae bench entropy`.
#[derive(Debug, Args)]
pub struct BenchEntropyArgs {
    /// Rows per minibatch of codes.
    #[arg(long, default_value_t = 512)]
    pub rows: usize,
    /// Number of features d'.
    #[arg(long, default_value_t = 2304)]
    pub features: usize,
    /// Timed repetitions of each path (median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bae bench forward`.
#[derive(Debug, Args)]
pub struct BenchForwardArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Tokens per sequence (random ids, seeded).
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Timed repetitions of each variant (alternating, median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Matmul implementation for f32 on the CPU: the system OpenBLAS when the build
    /// found one (falls back to candle otherwise), or candle's pure-Rust gemm.
    #[arg(long, value_enum, default_value = "openblas")]
    pub matmul: MatmulArg,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Matmul implementation choice for benchmarks.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MatmulArg {
    /// The system OpenBLAS, when linked.
    Openblas,
    /// candle's built-in gemm.
    Candle,
}
