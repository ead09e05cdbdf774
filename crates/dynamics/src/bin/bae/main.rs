//! `bae`: host a language model, read its residual stream, train binary autoencoders and
//! SAE baselines on it, and measure feature-set entropy. One file per command: its flags,
//! one call into the bae-dynamics library, and what it prints.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_entropy;
mod compare;
mod entropy;
mod features;
mod fidelity;
mod generate;
mod gpu_check;
mod harvest;
mod hidden_states;
mod icl;
mod inspect;
mod plot;
mod run;
mod shared;
mod store;
mod train;

/// Mechanistic interpretability with binary autoencoders.
#[derive(Debug, Parser)]
#[command(name = "bae", version, about, long_about = None)]
struct Cli {
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// The main job end to end from one config: harvest, a BAE per hook point, entropy
    /// over a prompt set, the ICL sweep, plots; resumable stage by stage.
    Run(run::RunArgs),
    /// Print a model's architecture, sizes, parameter count and hook points.
    Inspect(inspect::InspectArgs),
    /// Run prompts through a model and save residual-stream activations as safetensors.
    HiddenStates(hidden_states::HiddenStatesArgs),
    /// Greedily continue a prompt, and print the prompt's mean next-token NLL.
    Generate(generate::GenerateArgs),
    /// Run a corpus through a model and store residual-stream activations on disk.
    Harvest(harvest::HarvestArgs),
    /// Train a binary autoencoder or an SAE baseline on stored activations.
    Train(train::TrainArgs),
    /// Feature-set entropy per hook point and token position over a prompt set, read
    /// through trained BAEs, to Parquet.
    Entropy(entropy::EntropyArgs),
    /// Splice each autoencoder's reconstruction into the model and compare next-token
    /// distributions with the clean run and zero ablation (KL, JS, CE recovered).
    Fidelity(fidelity::FidelityArgs),
    /// Feature untangling: tokens sampled per feature over a corpus, densities, dead and
    /// dense counts, optional interpretability scores from an LLM judge; Parquet and an
    /// HTML report.
    Features(features::FeaturesArgs),
    /// Train a BAE and SAE baselines on the same activations and compare them in one
    /// table: FVU, L0, dead/dense counts, density histogram, fidelity, interpretability.
    Compare(compare::CompareArgs),
    /// In-context learning: entropy at the last prompt token and accuracy on the label,
    /// swept over the number of demonstrations, to Parquet.
    Icl(icl::IclArgs),
    /// Draw a chart (PNG or SVG) of a table bae wrote: entropy by layer or position,
    /// entropy or accuracy by number of demonstrations, training curves.
    Plot(plot::PlotArgs),
    /// On a machine with an NVIDIA GPU: compare every CUDA kernel and the whole training
    /// step with the CPU, and time the fused entropy kernel against a device copy. Needs
    /// a build with `--features cuda`.
    GpuCheck(gpu_check::GpuCheckArgs),
    /// Look into activation stores and activation files.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::HiddenStates(args) => hidden_states::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Harvest(args) => harvest::run(&args),
        Command::Store(command) => store::run(&command),
        Command::Train(args) => train::run(&args),
        Command::Entropy(args) => entropy::run(&args),
        Command::Icl(args) => icl::run(&args),
        Command::Fidelity(args) => fidelity::run(&args),
        Command::Features(args) => features::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::GpuCheck(args) => gpu_check::run(&args),
        Command::Bench(command) => bench::run(&command),
    }
}

fn main() -> ExitCode {
    // Panics inside readers of crafted files are caught and reported as errors; their
    // own messages would only confuse.
    bae_lm::guard::install_quiet_hook();
    match dispatch(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain, once, at the top: every layer adds what it was doing.
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
