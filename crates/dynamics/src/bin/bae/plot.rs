//! `bae plot`: a chart of a table bae wrote.

use std::path::PathBuf;

use bae_dynamics::plot::PlotKind;
use clap::{Args, ValueEnum};

/// Arguments of `bae plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A table written by bae: `bae entropy`, `bae icl`, or a training log.
    pub table: PathBuf,
    /// The chart to write: .png or .svg (under a temporary name, renamed when complete).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Which chart [default: entropy-by-layer for entropy tables, entropy-by-demos for
    /// ICL tables, training for training logs].
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
}

/// Chart kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Entropy table: entropy against depth, one line per bucket of token positions.
    EntropyByLayer,
    /// Entropy table: entropy against token position, one line per hook point.
    EntropyByPosition,
    /// ICL table: entropy at the last prompt token against k, one line per hook point.
    EntropyByDemos,
    /// ICL table: accuracy and label log-probability against k.
    AccuracyByDemos,
    /// Training log: FVU, entropy and L0 against epoch for train and validation.
    Training,
}

impl KindArg {
    /// The library's kind.
    pub fn kind(self) -> PlotKind {
        match self {
            KindArg::EntropyByLayer => PlotKind::EntropyByLayer,
            KindArg::EntropyByPosition => PlotKind::EntropyByPosition,
            KindArg::EntropyByDemos => PlotKind::EntropyByDemos,
            KindArg::AccuracyByDemos => PlotKind::AccuracyByDemos,
            KindArg::Training => PlotKind::Training,
        }
    }
}

pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    let kind = bae_dynamics::plot::plot(&args.table, args.kind.map(|k| k.kind()), &args.out)?;
    eprintln!("wrote {:?} chart of {} to {}", kind, args.table.display(), args.out.display());
    Ok(())
}
