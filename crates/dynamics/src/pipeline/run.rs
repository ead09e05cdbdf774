//! The main job end to end (`bae run CONFIG`): harvest the corpus, train an autoencoder
//! per hook point, measure entropy over a prompt set and the ICL sweep per task, draw
//! the plots — into one run folder with the resolved config beside them. Every stage is
//! skipped when its output is complete and resumed when it is not, so a killed run
//! continues.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bae_train::checkpoint::CHECKPOINT_FILE;
use bae_train::lock::FolderLock;
use bae_train::store::{ActivationStore, INDEX_FILE};

use super::entropy::entropy_stage;
use super::harvest::{harvest_stage, HarvestConfig};
use super::icl::{icl_stage, IclJob};
use super::measurement::{check_max_fvu, folder_run_id, AutoencoderSelection, MeasurementJob};
use super::train::{train_stage, LOG_FILE};
use super::{Reporter, RunConfig};
use crate::error::{input_error, Result, ResultExt};
use crate::measure::icl::Task;
use crate::measure::{AutoencoderSet, Verdict};
use crate::plot::{plot, PlotKind};

/// The resolved config's file name in the run folder.
pub const RESOLVED_CONFIG: &str = "config.resolved.json";

/// Runs every stage of `config` (read from `file`, named in messages).
pub fn run_pipeline(config: &RunConfig, file: &Path, reporter: &mut dyn Reporter) -> Result<()> {
    let started = Instant::now();
    let out = check(config, file).with_context(|| file.display().to_string())?;
    check_inputs(config)
        .with_context(|| format!("{}: checking the inputs before anything runs", file.display()))?;
    let Some(model) = config.harvest.model_spec() else { unreachable!("check found the model") };
    let max_fvu = config.run.max_fvu;
    // Held to the end: a second `bae run` on this folder is refused at once.
    let _lock = FolderLock::acquire(&out)?;
    record_config(config, &out, reporter)?;
    let stage = |reporter: &mut dyn Reporter, name: &str| {
        reporter.say(&format!("== {name} ({:.0} s since start)", started.elapsed().as_secs_f64()))
    };

    // 1. Harvest every hook point the autoencoders need.
    stage(reporter, "harvest");
    let store = out.join("store");
    let complete = store.join(INDEX_FILE).is_file() && ActivationStore::open(&store)?.index().complete;
    if complete {
        reporter.say("harvest: complete, skipped");
    } else {
        let mut harvest = config.harvest.clone();
        harvest.out = Some(store.clone());
        harvest.hooks = Some(harvest.hooks.unwrap_or_else(|| config.run.hooks.join(",")));
        harvest_stage(
            &harvest,
            store.join(INDEX_FILE).is_file(),
            Some(&file.display().to_string()),
            reporter,
        )?;
    }

    // 2. One autoencoder per hook point.
    let baes = out.join("baes");
    for hook in &config.run.hooks {
        stage(reporter, &format!("train {hook}"));
        let mut train = config.train.clone();
        train.acts = Some(store.clone());
        train.hook = Some(hook.clone());
        let dir = baes.join(hook);
        train.out = Some(dir.clone());
        train_stage(train, dir.join(CHECKPOINT_FILE).is_file(), reporter)?;
    }
    let autoencoders = AutoencoderSelection { max_fvu, ..AutoencoderSelection::all(baes.clone()) };
    let run_id = folder_run_id(&out, "run");

    // 3. Entropy over the prompt set.
    let entropy = out.join("entropy.parquet");
    if config.entropy.prompts.is_some() {
        stage(reporter, "entropy");
        if entropy.is_file() {
            reporter.say(&format!("entropy: {} exists, skipped", entropy.display()));
        } else {
            let job = MeasurementJob {
                model: &model,
                autoencoders: &autoencoders,
                out: &entropy,
                run_id: Some(&run_id),
            };
            entropy_stage(&job, &config.entropy, reporter)?;
        }
    }

    // 4. The ICL sweep, one table per task.
    let mut icl_tables = Vec::new();
    for task_file in &config.icl.tasks {
        let name = task_file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        stage(reporter, &format!("icl {name}"));
        let table = out.join(format!("icl-{name}.parquet"));
        if table.is_file() {
            reporter.say(&format!("icl {name}: {} exists, skipped", table.display()));
        } else {
            let task = Task::load(task_file, None)?;
            let job = IclJob {
                model: &model,
                autoencoders: &autoencoders,
                task: &task,
                out: &table,
                run_id: Some(&run_id),
            };
            icl_stage(&job, &config.icl, reporter)?;
        }
        icl_tables.push((name, table));
    }

    // 5. Plots, redrawn every time (seconds).
    stage(reporter, "plots");
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
        let log = baes.join(hook).join(LOG_FILE);
        charts.push((log, PlotKind::Training, plots.join(format!("training-{hook}.png"))));
    }
    for (table, kind, png) in &charts {
        plot(table, Some(*kind), png)?;
    }
    reporter.say(&format!(
        "done in {:.0} s: {} ({} plots in {})",
        started.elapsed().as_secs_f64(),
        out.display(),
        charts.len(),
        plots.display()
    ));
    summarize_gates(&baes, max_fvu, reporter)
}

/// The settings `bae run` needs and sets itself; returns the run folder.
fn check(config: &RunConfig, file: &Path) -> Result<PathBuf> {
    let Some(out) = config.run.out.clone() else {
        return Err(input_error("[run] needs `out`, the run folder"));
    };
    if config.run.hooks.is_empty() {
        return Err(input_error("[run] needs `hooks`, the hook points to train BAEs on"));
    }
    if config.harvest.model.is_none() {
        return Err(input_error("[harvest] needs `model`"));
    }
    check_max_fvu(config.run.max_fvu).map_err(|_| {
        input_error(format!("[run] `max_fvu` = {}, expected a positive number", config.run.max_fvu))
    })?;
    for (field, set) in [
        ("acts", config.train.acts.is_some()),
        ("hook", config.train.hook.is_some()),
        ("tensor", config.train.tensor.is_some()),
        ("out", config.train.out.is_some()),
    ] {
        if set {
            return Err(input_error(format!(
                "[train] `{field}` is set by bae run for each hook point; remove it"
            )));
        }
    }
    if config.harvest.out.is_some() {
        return Err(input_error("[harvest] `out` is set by bae run (RUN/store); remove it"));
    }
    // Every stage's settings now, not after the harvest and training before them.
    let harvest = HarvestConfig { out: Some(out.join("store")), ..config.harvest.clone() };
    harvest.validate(Some(&file.display().to_string()))?;
    config.entropy.validate().context("[entropy]")?;
    config.icl.validate().context("[icl]")?;
    Ok(out)
}

/// Checks what the stages will read, so that a mistake in the config is found before
/// the harvest and training it would otherwise follow: every hook name is one hook
/// point (no glob), and the corpus, the prompt set and every ICL task (with its
/// template) can be read.
fn check_inputs(config: &RunConfig) -> Result<()> {
    for hook in &config.run.hooks {
        if hook.contains(['*', '?', '[']) {
            return Err(input_error(format!(
                "[run] hooks: {hook:?} is a glob; name each hook point (e.g. \"blocks.4.hook_resid_post\")"
            )));
        }
        hook.parse::<bae_lm::HookPoint>().map_err(|e| input_error(format!("[run] hooks: {e}")))?;
    }
    let readable = |table: &str, field: &str, path: &Path| -> Result<()> {
        std::fs::File::open(path).map(drop).with_context(|| format!("[{table}] {field} = {}", path.display()))
    };
    if let Some(corpus) = &config.harvest.corpus {
        readable("harvest", "corpus", corpus)?;
    }
    if let Some(prompts) = &config.entropy.prompts {
        readable("entropy", "prompts", prompts)?;
    }
    for task in &config.icl.tasks {
        Task::load(task, None).with_context(|| format!("[icl] tasks: {}", task.display()))?;
    }
    Ok(())
}

/// Writes the resolved config, or checks it against the one already there: a run
/// folder holds one run, except that a run none of whose stages finished (it failed on
/// its first) may start again with a fixed config.
fn record_config(config: &RunConfig, out: &Path, reporter: &mut dyn Reporter) -> Result<()> {
    let resolved = serde_json::to_string_pretty(config)?;
    let path = out.join(RESOLVED_CONFIG);
    let write = || bae_train::files::write_atomically(&path, resolved.as_bytes());
    match std::fs::read_to_string(&path) {
        Ok(previous) if previous != resolved && no_stage_finished(out) => {
            reporter.say(&format!(
                "{} holds no finished stage; starting it again with this config",
                out.display()
            ));
            Ok(write()?)
        }
        Ok(previous) if previous != resolved => Err(input_error(format!(
            "{} holds a run made with another config (see {RESOLVED_CONFIG}); choose another [run] out",
            out.display()
        ))),
        Ok(_) => {
            reporter.say(&format!("continuing the run in {}", out.display()));
            Ok(())
        }
        Err(_) => Ok(write()?),
    }
}

/// Whether the run folder holds no finished stage: no complete store, no autoencoder,
/// no table.
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

/// The closing summary: every hook's gate, and the hooks that fail theirs by name.
fn summarize_gates(baes: &Path, max_fvu: f64, reporter: &mut dyn Reporter) -> Result<()> {
    let gates = AutoencoderSet::open(baes)?.gates(max_fvu);
    reporter.say(&format!("quality gates (validation FVU ≤ {max_fvu}):"));
    for g in &gates {
        reporter.say(&format!("  {}", g.describe()));
    }
    let failing: Vec<&str> =
        gates.iter().filter(|g| g.verdict != Verdict::Pass).map(|g| g.hook.as_str()).collect();
    if failing.is_empty() {
        reporter.say("every hook passes its gate");
    } else {
        reporter.say(&format!(
            "FAILING their gate: {} — their rows are marked quality = \"fail\" and greyed in the plots; they are not measurements",
            failing.join(", ")
        ));
    }
    Ok(())
}
