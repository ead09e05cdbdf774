//! `bae train`: a BAE on one matrix of activations, with checkpoints and a training log.

use std::path::Path;

use anyhow::{bail, Context};
use bae_dynamics::training_log::write_training_log;
use bae_train::bae::{EpochMetrics, Split, Trainer};
use bae_train::checkpoint::CHECKPOINT_FILE;
use bae_train::config::TrainConfig;
use bae_train::lock::FolderLock;
use bae_train::store::{ActivationStore, ModelIdentity, RowSource, SafetensorsMatrix, INDEX_FILE};

use crate::cli::TrainArgs;
use crate::output::ProgressDisplay;

/// The training log's file name in a run directory.
pub const LOG_FILE: &str = "training_log.parquet";

/// The rows to train on, a description for logs, and the model they came from when
/// the source is an activation store (recorded in cfg.json so later commands can check
/// a BAE is used on the model it was trained for).
type Source = (Box<dyn RowSource>, String, Option<ModelIdentity>);

fn open_source(config: &TrainConfig) -> anyhow::Result<Source> {
    let Some(acts) = &config.acts else {
        bail!("missing --acts (or `acts` in [train]): a store directory or a safetensors file")
    };
    if acts.join(INDEX_FILE).is_file() {
        let Some(hook) = &config.hook else {
            bail!("{} is an activation store: name the hook point with --hook", acts.display())
        };
        let store =
            ActivationStore::open(acts).with_context(|| format!("opening store {}", acts.display()))?;
        let model = store.index().spec.model.clone();
        Ok((Box::new(store.hook(hook)?), format!("store {} hook {hook}", acts.display()), Some(model)))
    } else {
        let Some(tensor) = &config.tensor else {
            bail!("{}: name the matrix in the file with --tensor", acts.display())
        };
        Ok((
            Box::new(SafetensorsMatrix::open(acts, tensor)?),
            format!("file {} tensor {tensor}", acts.display()),
            None,
        ))
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => crate::run_config::read(path)?.train,
        None => TrainConfig::default(),
    };
    config.acts = args.acts.clone().or(config.acts);
    config.hook = args.hook.clone().or(config.hook);
    config.tensor = args.tensor.clone().or(config.tensor);
    config.out = args.out.clone().or(config.out);
    if let Some(device) = args.device {
        config.device = device.compute_device();
    }
    train(config, args.resume).map(|_| ())
}

/// Trains as `config` says (paths resolved), continuing the run in `out` if `resume`.
/// Returns the last validation metrics.
pub fn train(config: TrainConfig, resume: bool) -> anyhow::Result<Option<EpochMetrics>> {
    let Some(out) = config.out.clone() else {
        bail!("missing --out (or `out` in [train]): the run directory")
    };
    // An existing folder is locked before anything is read from it, so a second writer
    // is refused at once; a new one only once the config has passed its checks.
    let early_lock = if out.exists() { Some(FolderLock::acquire(&out)?) } else { None };
    let (source, described, source_model) = open_source(&config)?;
    let checkpoint = out.join(CHECKPOINT_FILE);
    // A run killed before its first checkpoint left nothing to resume (the log is only
    // written beside a checkpoint), so `--resume` starts it again from the beginning.
    if resume && !checkpoint.is_file() {
        if out.join(LOG_FILE).exists() {
            bail!(
                "cannot resume: {} holds a training log but no checkpoint ({CHECKPOINT_FILE}); \
                 remove the folder or choose another --out",
                out.display()
            );
        }
        eprintln!("{} holds no checkpoint yet: starting from the first epoch", out.display());
    }
    let resume = resume && checkpoint.is_file();
    let mut trainer = if resume {
        let t = Trainer::resume(config, source.as_ref(), &checkpoint)
            .with_context(|| format!("resuming from {}", checkpoint.display()))?;
        eprintln!("resuming {} after epoch {}", out.display(), t.epochs_done);
        t
    } else {
        if checkpoint.exists() || out.join(LOG_FILE).exists() {
            bail!(
                "{} already holds a training run; pass --resume to continue it, or choose another --out",
                out.display()
            );
        }
        Trainer::new(config, source.as_ref())?
    };
    trainer.source_model = source_model;
    let lock = match early_lock {
        Some(lock) => lock,
        None => FolderLock::acquire(&out)?,
    };
    // What a killed run was writing; no live writer owns it under the lock.
    bae_train::files::remove_partials(&lock)?;
    eprintln!(
        "training {} d = {} -> d' = {} on {} rows ({described}, {} for validation{}), {}, inputs times {:.4e}, on {}",
        match trainer.autoencoder.architecture {
            bae_train::config::Architecture::Binary => "a BAE".to_string(),
            other => format!("a {} SAE", other.name()),
        },
        trainer.autoencoder.d,
        trainer.autoencoder.d_hidden,
        trainer.train_rows + trainer.val_rows,
        trainer.val_rows,
        match trainer.outlier_norm_bound {
            Some(bound) => format!("; {} rows above norm {bound:.4e} left out", trainer.outlier_rows),
            None => String::new(),
        },
        match trainer.config.patience {
            0 => format!("{} epochs", trainer.config.epochs),
            p => format!("at most {} epochs (patience {p})", trainer.config.epochs),
        },
        trainer.autoencoder.input_scale,
        trainer.device_description()
    );
    let metadata = vec![
        ("config", serde_json::to_string(&trainer.config)?),
        ("source", described.clone()),
        ("rows", source.rows().to_string()),
    ];
    let mut display =
        ProgressDisplay::new("train", "epochs", trainer.config.epochs as u64, trainer.epochs_done as u64);
    trainer.run(source.as_ref(), Some(&out), &mut |t, checkpointed| {
        // Only beside a checkpoint: the log never describes epochs a resume would redo.
        if checkpointed {
            write_training_log(&out.join(LOG_FILE), &t.history, &metadata)
                .map_err(|e| bae_train::TrainError::Input(e.to_string()))?;
        }
        if let Some(m) = t.history.iter().rev().find(|m| m.split == Split::Val) {
            let metrics = format!(
                "val FVU {:.4}  H {:.2} bits  L0 {:.1}  dead {}",
                m.fvu, m.codes.entropy_bits, m.codes.l0, m.codes.dead
            );
            // Early stopping ends the run before its last epoch: show it as done.
            let done = if t.finished() { t.config.epochs } else { t.epochs_done };
            display.update(done as u64, &metrics);
        }
        Ok(())
    })?;
    display.finish();
    report(&trainer, &out);
    Ok(trainer.history.iter().rev().find(|m| m.split == Split::Val).cloned())
}

fn report(trainer: &Trainer, out: &Path) {
    if trainer.stopped_early() {
        eprintln!(
            "stopped early after {} epochs: the validation loss improved by less than {} for {} epochs",
            trainer.epochs_done, trainer.config.min_improvement, trainer.config.patience
        );
    }
    if let Some(m) = trainer.history.iter().rev().find(|m| m.split == Split::Val) {
        eprintln!(
            "epoch {}: val MSE {:.5}, FVU {:.4}, entropy {:.2} bits ({:.4}/feature), L0 {:.2}, dead {}, dense {}",
            m.epoch, m.mse, m.fvu, m.codes.entropy_bits, m.codes.entropy_bits_per_feature, m.codes.l0, m.codes.dead, m.codes.dense
        );
    }
    eprintln!("wrote {}", out.display());
}
