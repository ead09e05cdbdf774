//! `bae`: host a language model, read its residual stream, and (in later stages) train
//! binary autoencoders and measure feature-set entropy.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod model_args;
mod output;
mod run_config;

fn main() -> ExitCode {
    // Panics inside readers of crafted files are caught and reported as errors; their
    // own messages would only confuse.
    bae_lm::guard::install_quiet_hook();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
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
