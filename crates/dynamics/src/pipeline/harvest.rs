//! The harvest stage: a corpus through a model, residual-stream rows into an
//! activation store (`bae harvest`, and `bae run`'s first stage).

use std::path::PathBuf;
use std::time::Instant;

use bae_lm::select_hooks;
use bae_train::store::{
    BosHandling, CorpusIdentity, ModelIdentity, SinkHandling, StoreDtype, StoreSpec, StoreWriter,
};
use serde::{Deserialize, Serialize};

use super::Reporter;
use crate::error::{input_error, Result, ResultExt};
use crate::harvest::{harvest, HarvestSettings, WindowPlan};
use crate::input::corpus::{Corpus, CorpusFormat, DEFAULT_TEXT_FIELD};
use crate::input::model::{ModelDtype, ModelSpec};

/// Longest window fed to the model when the config names none.
pub const DEFAULT_CONTEXT: usize = 128;
/// Windows per forward pass when the config names none.
pub const DEFAULT_BATCH: usize = 8;
/// Target shard size in MiB when the config names none.
pub const DEFAULT_SHARD_MB: f64 = 64.0;
/// The hook points stored when the config names none.
pub const DEFAULT_HOOKS: &str = "blocks.*.hook_resid_post";

/// Everything a harvest needs: the `[harvest]` table of a run config, and the flags of
/// `bae harvest` (same names, with dashes; flags win). An unset field takes the
/// default its accessor names.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HarvestConfig {
    /// The model: a Hugging Face directory, a GGUF file, or a Hub id (see `bae inspect`).
    pub model: Option<String>,
    /// A tokenizer.json to use instead of the model's own.
    pub tokenizer: Option<PathBuf>,
    /// dtype the model runs in [default: f32].
    pub model_dtype: Option<ModelDtype>,
    /// The corpus file: plain text (one document per line), JSONL, or Parquet.
    pub corpus: Option<PathBuf>,
    /// Corpus layout [default: from the extension: .jsonl/.json/.ndjson are JSONL,
    /// .parquet/.pq Parquet, anything else text].
    pub format: Option<CorpusFormat>,
    /// The JSONL field or Parquet column holding the text [default: text].
    pub field: Option<String>,
    /// Hook points to store: comma-separated names or globs, e.g.
    /// `blocks.*.hook_resid_post` [default: blocks.*.hook_resid_post].
    pub hooks: Option<String>,
    /// Rows to store per hook point (one row per token, attention sinks excluded unless
    /// keep_sinks). The store ends early if the corpus runs out.
    pub tokens: Option<u64>,
    /// Output directory of the store; must be new or empty (or the store to resume).
    pub out: Option<PathBuf>,
    /// Longest window fed to the model, in tokens including BOS; longer documents are
    /// cut into consecutive windows [default: 128].
    pub ctx: Option<usize>,
    /// Windows per forward pass [default: 8].
    pub batch: Option<usize>,
    /// Storage dtype of the activations [default: f32].
    pub dtype: Option<StoreDtype>,
    /// Also store the attention-sink rows: position 0 of every window and every BOS
    /// row. By default they are left out, because their norms are 15x to 130x the
    /// others' and would swamp an autoencoder's loss (the model still sees those
    /// tokens, and `bae entropy` still reports position 0) [default: false].
    pub keep_sinks: Option<bool>,
    /// Target shard size in MiB (fractions allowed); each shard holds as many whole rows
    /// (all hook points) as fit, at least one [default: 64].
    pub shard_mb: Option<f64>,
}

impl HarvestConfig {
    /// Each field from `self` if set, else from `fallback` (flags over a config file).
    pub fn or(self, fallback: HarvestConfig) -> HarvestConfig {
        HarvestConfig {
            model: self.model.or(fallback.model),
            tokenizer: self.tokenizer.or(fallback.tokenizer),
            model_dtype: self.model_dtype.or(fallback.model_dtype),
            corpus: self.corpus.or(fallback.corpus),
            format: self.format.or(fallback.format),
            field: self.field.or(fallback.field),
            hooks: self.hooks.or(fallback.hooks),
            tokens: self.tokens.or(fallback.tokens),
            out: self.out.or(fallback.out),
            ctx: self.ctx.or(fallback.ctx),
            batch: self.batch.or(fallback.batch),
            dtype: self.dtype.or(fallback.dtype),
            keep_sinks: self.keep_sinks.or(fallback.keep_sinks),
            shard_mb: self.shard_mb.or(fallback.shard_mb),
        }
    }

    /// The model to load, when the config names one.
    pub fn model_spec(&self) -> Option<ModelSpec> {
        Some(ModelSpec {
            model: self.model.clone()?,
            tokenizer: self.tokenizer.clone(),
            dtype: self.model_dtype.unwrap_or_default(),
        })
    }

    /// The window length.
    pub fn ctx(&self) -> usize {
        self.ctx.unwrap_or(DEFAULT_CONTEXT)
    }

    /// Windows per forward pass.
    pub fn batch(&self) -> usize {
        self.batch.unwrap_or(DEFAULT_BATCH)
    }

    /// The shard size in MiB.
    pub fn shard_mb(&self) -> f64 {
        self.shard_mb.unwrap_or(DEFAULT_SHARD_MB)
    }

    /// Whether attention sinks are stored.
    pub fn keep_sinks(&self) -> bool {
        self.keep_sinks.unwrap_or(false)
    }

    /// The storage dtype.
    pub fn dtype(&self) -> StoreDtype {
        self.dtype.unwrap_or(StoreDtype::F32)
    }

    /// The hook-point selection.
    pub fn hooks(&self) -> &str {
        self.hooks.as_deref().unwrap_or(DEFAULT_HOOKS)
    }

    /// The text field or column.
    pub fn field(&self) -> &str {
        self.field.as_deref().unwrap_or(DEFAULT_TEXT_FIELD)
    }

    /// The settings that need no file: required fields present, numbers in range.
    /// `source` names where the fields came from, for the message ("[harvest] of FILE").
    pub fn validate(&self, source: Option<&str>) -> Result<()> {
        for (field, set) in [
            ("model", self.model.is_some()),
            ("corpus", self.corpus.is_some()),
            ("tokens", self.tokens.is_some()),
            ("out", self.out.is_some()),
        ] {
            if !set {
                return Err(input_error(match source {
                    Some(source) => format!("missing --{field} (or `{field}` in [harvest] of {source})"),
                    None => format!("missing --{field}"),
                }));
            }
        }
        let shard_mb = self.shard_mb();
        if !(shard_mb.is_finite() && shard_mb > 0.0) {
            return Err(input_error(format!("--shard-mb must be a positive number of MiB, got {shard_mb}")));
        }
        for (name, value) in
            [("tokens", self.tokens.unwrap_or(1) as usize), ("ctx", self.ctx()), ("batch", self.batch())]
        {
            if value == 0 {
                return Err(input_error(format!("--{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// What a harvest did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HarvestReport {
    /// Rows stored per hook point.
    pub rows: u64,
    /// Tokens run through the model.
    pub tokens_run: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Harvests as `config` says, continuing the store in `out` if `resume`. `source` names
/// where the config came from, for messages about missing fields.
pub fn harvest_stage(
    config: &HarvestConfig,
    resume: bool,
    source: Option<&str>,
    reporter: &mut dyn Reporter,
) -> Result<HarvestReport> {
    config.validate(source)?;
    let (Some(spec), Some(corpus_path), Some(tokens), Some(out)) =
        (config.model_spec(), config.corpus.clone(), config.tokens, config.out.clone())
    else {
        unreachable!("validate checked the required fields");
    };
    let (ctx, batch, keep_sinks, dtype) = (config.ctx(), config.batch(), config.keep_sinks(), config.dtype());
    let format = CorpusFormat::resolve(config.format, &corpus_path);
    // Cheap checks first: the corpus (and its Parquet column) before the model loads.
    let corpus = Corpus::open(&corpus_path, format, config.field())?;
    let model = spec.load()?;
    let cfg = model.config();
    let hooks = select_hooks(config.hooks(), cfg.num_layers)?;
    if ctx > cfg.max_position_embeddings {
        return Err(input_error(format!(
            "--ctx {ctx} exceeds the model's context length {}",
            cfg.max_position_embeddings
        )));
    }
    let tokenizer = model.tokenizer()?;
    let bos = if tokenizer.adds_bos()? { tokenizer.bos_id().or(cfg.bos_token_id) } else { None };
    let row_bytes = hooks.len() * cfg.hidden_size * dtype.size();
    let store_spec = StoreSpec {
        model: ModelIdentity {
            spec: spec.model.clone(),
            family: cfg.family.name().to_string(),
            num_layers: cfg.num_layers,
            parameters: cfg.parameter_count(),
            dtype: spec.dtype.name().to_string(),
        },
        hooks: hooks.iter().map(|h| h.to_string()).collect(),
        dtype,
        d_model: cfg.hidden_size,
        corpus: CorpusIdentity {
            path: corpus_path.display().to_string(),
            sha256: corpus.sha256().to_string(),
            format: format.name().to_string(),
            field: corpus.field().map(str::to_string),
        },
        context_length: ctx,
        bos: BosHandling { prepended: bos.is_some() },
        sinks: SinkHandling { excluded: !keep_sinks },
        tokens,
        shard_rows: ((config.shard_mb() * (1 << 20) as f64) as usize / row_bytes).max(1),
    };
    let writer =
        if resume { StoreWriter::resume(&out, store_spec) } else { StoreWriter::create(&out, store_spec) }
            .with_context(|| format!("opening the store in {}", out.display()))?;
    let resumed_at = writer.rows();
    if resume {
        reporter.say(&format!("resuming {} at {resumed_at} of {tokens} rows", out.display()));
    }
    let settings = HarvestSettings {
        hooks,
        batch,
        windows: WindowPlan { context_length: ctx, bos },
        keep_sinks,
        bos: bos.or(cfg.bos_token_id),
        dtype,
    };
    reporter.begin("harvest", "rows", tokens, resumed_at);
    let started = Instant::now();
    let summary = harvest(&model, &corpus, &settings, writer, &mut |p| {
        let rate = p.tokens_run as f64 / p.elapsed.as_secs_f64().max(1e-9);
        reporter.advance(p.rows, &format!("{rate:.0} tokens/s"))
    })
    .with_context(|| format!("harvesting into {}", out.display()))?;
    reporter.end();
    reporter.say(&format!(
        "stored {} rows x {} hook points ({}) in {}{}",
        summary.rows,
        settings.hooks.len(),
        dtype.name(),
        out.display(),
        if summary.corpus_exhausted && summary.rows < tokens {
            " (the corpus ran out before --tokens)"
        } else {
            ""
        }
    ));
    let seconds = started.elapsed().as_secs_f64();
    reporter.say(&format!(
        "ran {} tokens in {seconds:.1} s ({:.1} tokens/s){}",
        summary.tokens_run,
        summary.tokens_run as f64 / seconds.max(1e-9),
        peak_memory_mib().map(|m| format!(", peak memory {m:.0} MiB")).unwrap_or_default()
    ));
    Ok(HarvestReport { rows: summary.rows, tokens_run: summary.tokens_run, seconds })
}

/// Peak resident memory of this process (Linux's VmHWM), for the benchmarks.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
