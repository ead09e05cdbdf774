//! `bae plot`: a chart of a table bae wrote.

use crate::cli::PlotArgs;

pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    let kind = bae_dynamics::plot::plot(&args.table, args.kind.map(|k| k.kind()), &args.out)?;
    eprintln!("wrote {:?} chart of {} to {}", kind, args.table.display(), args.out.display());
    Ok(())
}
