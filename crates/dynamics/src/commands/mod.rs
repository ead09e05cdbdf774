//! One module per command; `run` dispatches.

mod bench;
mod bench_entropy;
mod compare;
pub(crate) mod entropy;
pub(crate) mod features;
mod fidelity;
mod generate;
mod gpu_check;
pub(crate) mod harvest;
mod hidden_states;
pub(crate) mod icl;
mod inspect;
mod measurement;
mod plot;
mod run;
mod store;
pub(crate) mod train;

use crate::cli::{BenchCommand, Cli, Command, StoreCommand};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::HiddenStates(args) => hidden_states::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Harvest(args) => harvest::run(&args),
        Command::Store(StoreCommand::Stats(args)) => store::stats(&args),
        Command::Train(args) => train::run(&args),
        Command::Entropy(args) => entropy::run(&args),
        Command::Icl(args) => icl::run(&args),
        Command::Fidelity(args) => fidelity::run(&args),
        Command::Features(args) => features::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::GpuCheck(args) => gpu_check::run(&args),
        Command::Bench(BenchCommand::Forward(args)) => bench::forward(&args),
        Command::Bench(BenchCommand::Entropy(args)) => bench_entropy::run(&args),
        Command::Bench(BenchCommand::SyntheticBits(args)) => bench_entropy::synthetic_bits(&args),
        Command::Bench(BenchCommand::Train(args)) => bench_entropy::train(&args),
    }
}
