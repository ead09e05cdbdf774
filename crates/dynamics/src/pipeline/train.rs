//! The training stage: an autoencoder on one matrix of activations, with checkpoints
//! and a training log (`bae train`, `bae run` per hook point, `bae compare` per config).
//! Its config is bae-train's [`TrainConfig`], the `[train]` table.

use std::path::Path;

use bae_train::bae::{EpochMetrics, Split, Trainer};
use bae_train::checkpoint::CHECKPOINT_FILE;
use bae_train::config::{Architecture, TrainConfig};
use bae_train::lock::FolderLock;
use bae_train::store::{ActivationStore, ModelIdentity, RowSource, SafetensorsMatrix, INDEX_FILE};

use super::Reporter;
use crate::error::{input_error, Result, ResultExt};
use crate::tables::training_log::write_training_log;

/// The training log's file name in a run directory.
pub const LOG_FILE: &str = "training_log.parquet";

/// The rows to train on, a description for logs, and the model they came from when
/// the source is an activation store (recorded in cfg.json so later stages can check
/// an autoencoder is used on the model it was trained for).
struct Source {
    rows: Box<dyn RowSource>,
    described: String,
    model: Option<ModelIdentity>,
}

fn open_source(config: &TrainConfig) -> Result<Source> {
    let Some(acts) = &config.acts else {
        return Err(input_error(
            "missing --acts (or `acts` in [train]): a store directory or a safetensors file",
        ));
    };
    if acts.join(INDEX_FILE).is_file() {
        let Some(hook) = &config.hook else {
            return Err(input_error(format!(
                "{} is an activation store: name the hook point with --hook",
                acts.display()
            )));
        };
        let store =
            ActivationStore::open(acts).with_context(|| format!("opening store {}", acts.display()))?;
        let model = store.index().spec.model.clone();
        Ok(Source {
            rows: Box::new(store.hook(hook)?),
            described: format!("store {} hook {hook}", acts.display()),
            model: Some(model),
        })
    } else {
        let Some(tensor) = &config.tensor else {
            return Err(input_error(format!(
                "{}: name the matrix in the file with --tensor",
                acts.display()
            )));
        };
        Ok(Source {
            rows: Box::new(SafetensorsMatrix::open(acts, tensor)?),
            described: format!("file {} tensor {tensor}", acts.display()),
            model: None,
        })
    }
}

/// Trains as `config` says (paths resolved), continuing the run in `out` if `resume`.
/// Returns the last validation metrics.
pub fn train_stage(
    config: TrainConfig,
    resume: bool,
    reporter: &mut dyn Reporter,
) -> Result<Option<EpochMetrics>> {
    let Some(out) = config.out.clone() else {
        return Err(input_error("missing --out (or `out` in [train]): the run directory"));
    };
    // An existing folder is locked before anything is read from it, so a second writer
    // is refused at once; a new one only once the config has passed its checks.
    let early_lock = if out.exists() { Some(FolderLock::acquire(&out)?) } else { None };
    let source = open_source(&config)?;
    let checkpoint = out.join(CHECKPOINT_FILE);
    // A run killed before its first checkpoint left nothing to resume (the log is only
    // written beside a checkpoint), so `resume` starts it again from the beginning.
    if resume && !checkpoint.is_file() {
        if out.join(LOG_FILE).exists() {
            return Err(input_error(format!(
                "cannot resume: {} holds a training log but no checkpoint ({CHECKPOINT_FILE}); \
                 remove the folder or choose another --out",
                out.display()
            )));
        }
        reporter.say(&format!("{} holds no checkpoint yet: starting from the first epoch", out.display()));
    }
    let resume = resume && checkpoint.is_file();
    let mut trainer = if resume {
        let t = Trainer::resume(config, source.rows.as_ref(), &checkpoint)
            .with_context(|| format!("resuming from {}", checkpoint.display()))?;
        reporter.say(&format!("resuming {} after epoch {}", out.display(), t.epochs_done));
        t
    } else {
        if checkpoint.exists() || out.join(LOG_FILE).exists() {
            return Err(input_error(format!(
                "{} already holds a training run; pass --resume to continue it, or choose another --out",
                out.display()
            )));
        }
        Trainer::new(config, source.rows.as_ref())?
    };
    trainer.source_model = source.model.clone();
    let lock = match early_lock {
        Some(lock) => lock,
        None => FolderLock::acquire(&out)?,
    };
    // What a killed run was writing; no live writer owns it under the lock.
    bae_train::files::remove_partials(&lock)?;
    reporter.say(&describe_start(&trainer, &source.described));
    let metadata = vec![
        ("config", serde_json::to_string(&trainer.config)?),
        ("source", source.described.clone()),
        ("rows", source.rows.rows().to_string()),
    ];
    reporter.begin("train", "epochs", trainer.config.epochs as u64, trainer.epochs_done as u64);
    trainer.run(source.rows.as_ref(), Some(&out), &mut |t, checkpointed| {
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
            reporter.advance(done as u64, &metrics);
        }
        Ok(())
    })?;
    reporter.end();
    describe_end(&trainer, &out, reporter);
    Ok(trainer.history.iter().rev().find(|m| m.split == Split::Val).cloned())
}

fn describe_start(trainer: &Trainer, described: &str) -> String {
    format!(
        "training {} d = {} -> d' = {} on {} rows ({described}, {} for validation{}), {}, inputs times {:.4e}, on {}",
        match trainer.autoencoder.architecture {
            Architecture::Binary => "a BAE".to_string(),
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
    )
}

fn describe_end(trainer: &Trainer, out: &Path, reporter: &mut dyn Reporter) {
    if trainer.stopped_early() {
        reporter.say(&format!(
            "stopped early after {} epochs: the validation loss improved by less than {} for {} epochs",
            trainer.epochs_done, trainer.config.min_improvement, trainer.config.patience
        ));
    }
    if let Some(m) = trainer.history.iter().rev().find(|m| m.split == Split::Val) {
        reporter.say(&format!(
            "epoch {}: val MSE {:.5}, FVU {:.4}, entropy {:.2} bits ({:.4}/feature), L0 {:.2}, dead {}, dense {}",
            m.epoch, m.mse, m.fvu, m.codes.entropy_bits, m.codes.entropy_bits_per_feature, m.codes.l0, m.codes.dead, m.codes.dense
        ));
    }
    reporter.say(&format!("wrote {}", out.display()));
}
