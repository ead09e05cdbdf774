//! `bae run CONFIG`: the main job end to end — harvest the corpus, train a BAE per hook
//! point, measure entropy over a prompt set and the ICL sweep per task, draw the plots —
//! into one run folder with the resolved config beside them. Every stage is skipped when
//! its output is complete and resumed when it is not, so a killed run continues.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use bae_dynamics::plot::{plot, PlotKind};
use bae_train::checkpoint::CHECKPOINT_FILE;
use bae_train::store::{ActivationStore, INDEX_FILE};

use crate::cli::inputs::{BaeSelection, PromptSetArgs};
use crate::cli::{EntropyArgs, HarvestArgs, IclArgs, ModelArgs, RunArgs};

/// The resolved config's file name in the run folder.
pub const RESOLVED_CONFIG: &str = "config.resolved.json";

fn stage(name: &str, started: Instant) {
    eprintln!("== {name} ({:.0} s since start)", started.elapsed().as_secs_f64());
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = crate::run_config::read(&args.config)?;
    let file = args.config.display();
    let Some(out) = config.run.out.clone() else { bail!("{file}: [run] needs `out`, the run folder") };
    if config.run.hooks.is_empty() {
        bail!("{file}: [run] needs `hooks`, the hook points to train BAEs on");
    }
    let Some(model) = config.harvest.model.clone() else { bail!("{file}: [harvest] needs `model`") };
    let max_fvu = config.run.max_fvu.unwrap_or(bae_dynamics::entropy::DEFAULT_MAX_FVU);
    if !(max_fvu.is_finite() && max_fvu > 0.0) {
        bail!("{file}: [run] `max_fvu` = {max_fvu}, expected a positive number");
    }
    for (field, set) in [
        ("acts", config.train.acts.is_some()),
        ("hook", config.train.hook.is_some()),
        ("tensor", config.train.tensor.is_some()),
        ("out", config.train.out.is_some()),
    ] {
        if set {
            bail!("{file}: [train] `{field}` is set by bae run for each hook point; remove it");
        }
    }
    if config.harvest.out.is_some() {
        bail!("{file}: [harvest] `out` is set by bae run (RUN/store); remove it");
    }
    check_inputs(&config).with_context(|| format!("{file}: checking the inputs before anything runs"))?;
    // Held to the end: a second `bae run` on this folder is refused at once.
    let _lock = bae_train::lock::FolderLock::acquire(&out)?;
    // The resolved config: a run folder holds one run, except that a run none of whose
    // stages finished (it failed on its first) may start again with a fixed config.
    let resolved = serde_json::to_string_pretty(&config)?;
    let resolved_path = out.join(RESOLVED_CONFIG);
    match std::fs::read_to_string(&resolved_path) {
        Ok(previous) if previous != resolved && no_stage_finished(&out) => {
            eprintln!("{} holds no finished stage; starting it again with this config", out.display());
            crate::output::write_atomically(&resolved_path, |tmp| {
                std::fs::write(tmp, &resolved).context("writing the resolved config")
            })?
        }
        Ok(previous) if previous != resolved => bail!(
            "{} holds a run made with another config (see {RESOLVED_CONFIG}); choose another [run] out",
            out.display()
        ),
        Ok(_) => eprintln!("continuing the run in {}", out.display()),
        Err(_) => crate::output::write_atomically(&resolved_path, |tmp| {
            std::fs::write(tmp, &resolved).context("writing the resolved config")
        })?,
    }
    let model_args = ModelArgs {
        model: model.clone(),
        tokenizer: config.harvest.tokenizer.clone(),
        dtype: config.harvest.model_dtype.unwrap_or(crate::cli::DtypeArg::F32),
    };

    // 1. Harvest every hook point the BAEs need.
    stage("harvest", started);
    let store = out.join("store");
    let complete = store.join(INDEX_FILE).is_file() && ActivationStore::open(&store)?.index().complete;
    if complete {
        eprintln!("harvest: complete, skipped");
    } else {
        let mut options = config.harvest.clone();
        options.out = Some(store.clone());
        options.hooks = Some(options.hooks.unwrap_or_else(|| config.run.hooks.join(",")));
        crate::commands::harvest::run(&HarvestArgs {
            config: None,
            resume: store.join(INDEX_FILE).is_file(),
            options,
        })?;
    }

    // 2. One BAE per hook point.
    let baes = out.join("baes");
    for hook in &config.run.hooks {
        stage(&format!("train {hook}"), started);
        let mut train = config.train.clone();
        train.acts = Some(store.clone());
        train.hook = Some(hook.clone());
        let dir = baes.join(hook);
        train.out = Some(dir.clone());
        crate::commands::train::train(train, dir.join(CHECKPOINT_FILE).is_file())?;
    }

    // 3. Entropy over the prompt set.
    let entropy = out.join("entropy.parquet");
    if let Some(prompts) = &config.entropy.prompts {
        stage("entropy", started);
        if entropy.is_file() {
            eprintln!("entropy: {} exists, skipped", entropy.display());
        } else {
            let e = &config.entropy;
            crate::commands::entropy::run(&EntropyArgs {
                model: model_args.clone(),
                baes: BaeSelection { baes: baes.clone(), hooks: None, max_fvu },
                prompts: PromptSetArgs {
                    prompts: prompts.clone(),
                    format: e.format,
                    field: e.field.clone().unwrap_or_else(|| "text".into()),
                    max_prompts: e.max_prompts,
                },
                no_bos: false,
                batch: e.batch.unwrap_or(8),
                per_prompt: e.per_prompt,
                max_tokens: e.max_tokens,
                run_id: Some(run_id(&out)),
                out: entropy.clone(),
            })?;
        }
    }

    // 4. The ICL sweep, one table per task.
    let mut icl_tables = Vec::new();
    for task in &config.icl.tasks {
        let name = task.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        stage(&format!("icl {name}"), started);
        let table = out.join(format!("icl-{name}.parquet"));
        if table.is_file() {
            eprintln!("icl {name}: {} exists, skipped", table.display());
        } else {
            let c = &config.icl;
            crate::commands::icl::run(&IclArgs {
                model: model_args.clone(),
                baes: BaeSelection { baes: baes.clone(), hooks: None, max_fvu },
                task: task.clone(),
                template: None,
                demos: c.demos.clone().unwrap_or_else(|| vec![0, 1, 2, 4, 8, 16]),
                samples: c.samples.unwrap_or(64),
                seed: c.seed.unwrap_or(42),
                no_bos: false,
                batch: c.batch.unwrap_or(8),
                run_id: Some(run_id(&out)),
                out: table.clone(),
            })?;
        }
        icl_tables.push((name, table));
    }

    // 5. Plots, redrawn every time (seconds).
    stage("plots", started);
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    let mut charts: Vec<(PathBuf, PlotKind, PathBuf)> = Vec::new();
    if entropy.is_file() {
        charts.push((entropy.clone(), PlotKind::EntropyByLayer, plots.join("entropy-by-layer.png")));
        charts.push((entropy.clone(), PlotKind::EntropyByPosition, plots.join("entropy-by-position.png")));
    }
    for (name, table) in &icl_tables {
        charts.push((table.clone(), PlotKind::EntropyByDemos, plots.join(format!("icl-{name}-entropy.png"))));
        charts.push((
            table.clone(),
            PlotKind::AccuracyByDemos,
            plots.join(format!("icl-{name}-accuracy.png")),
        ));
    }
    for hook in &config.run.hooks {
        let log = baes.join(hook).join(crate::commands::train::LOG_FILE);
        charts.push((log, PlotKind::Training, plots.join(format!("training-{hook}.png"))));
    }
    for (table, kind, png) in &charts {
        plot(table, Some(*kind), png)?;
    }
    eprintln!(
        "done in {:.0} s: {} ({} plots in {})",
        started.elapsed().as_secs_f64(),
        out.display(),
        charts.len(),
        plots.display()
    );
    summarize_gates(&baes, max_fvu)
}

/// The closing summary: every hook's gate, and the hooks that fail theirs by name.
/// Checks what the stages will read, so that a mistake in the config is found before
/// the harvest and training it would otherwise follow: every hook name is one hook
/// point (no glob), and the corpus, the prompt set and every ICL task (with its
/// template) can be read.
fn check_inputs(config: &crate::run_config::RunConfig) -> anyhow::Result<()> {
    for hook in &config.run.hooks {
        if hook.contains(['*', '?', '[']) {
            bail!(
                "[run] hooks: {hook:?} is a glob; name each hook point (e.g. \"blocks.4.hook_resid_post\")"
            );
        }
        hook.parse::<bae_lm::HookPoint>().map_err(|e| anyhow::anyhow!("[run] hooks: {e}"))?;
    }
    let readable = |table: &str, field: &str, path: &Path| -> anyhow::Result<()> {
        std::fs::File::open(path).map(drop).with_context(|| format!("[{table}] {field} = {}", path.display()))
    };
    if let Some(corpus) = &config.harvest.corpus {
        readable("harvest", "corpus", corpus)?;
    }
    if let Some(prompts) = &config.entropy.prompts {
        readable("entropy", "prompts", prompts)?;
    }
    for task in &config.icl.tasks {
        bae_dynamics::icl::Task::load(task, None)
            .with_context(|| format!("[icl] tasks: {}", task.display()))?;
    }
    Ok(())
}

/// Whether the run folder holds no finished stage: no complete store, no BAE, no table.
fn no_stage_finished(out: &Path) -> bool {
    let store = out.join("store");
    let harvested = ActivationStore::open(&store).is_ok_and(|s| s.index().complete);
    let trained = std::fs::read_dir(out.join("baes"))
        .is_ok_and(|d| d.filter_map(|e| e.ok()).any(|e| e.path().join(CHECKPOINT_FILE).is_file()));
    let tables = std::fs::read_dir(out)
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().extension().is_some_and(|x| x == "parquet")))
        .unwrap_or(false);
    !(harvested || trained || tables)
}

fn summarize_gates(baes: &Path, max_fvu: f64) -> anyhow::Result<()> {
    let gates = bae_dynamics::entropy::BaeSet::open(baes)?.gates(max_fvu);
    eprintln!("quality gates (validation FVU ≤ {max_fvu}):");
    for g in &gates {
        eprintln!("  {}", g.describe());
    }
    let failing: Vec<&str> = gates
        .iter()
        .filter(|g| g.verdict != bae_dynamics::entropy::Verdict::Pass)
        .map(|g| g.hook.as_str())
        .collect();
    if failing.is_empty() {
        eprintln!("every hook passes its gate");
    } else {
        eprintln!(
            "FAILING their gate: {} — their rows are marked quality = \"fail\" and greyed in the plots; they are not measurements",
            failing.join(", ")
        );
    }
    Ok(())
}

/// The run folder's name, as the tables' run_id.
fn run_id(out: &Path) -> String {
    super::measurement::folder_run_id(out, "run")
}
