//! `bae harvest`: a corpus through a model, residual-stream rows into an activation store.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use bae_dynamics::corpus::Corpus;
use bae_dynamics::harvest::{harvest, HarvestSettings, WindowPlan};
use bae_lm::select_hooks;
use bae_train::store::{
    BosHandling, CorpusIdentity, ModelIdentity, SinkHandling, StoreDtype, StoreSpec, StoreWriter,
};

use crate::cli::harvest::FormatArg;
use crate::cli::{DtypeArg, HarvestArgs, HarvestOptions, ModelArgs, StoreDtypeArg};
use crate::model_args::load_model;
use crate::output::ProgressDisplay;

fn required<T>(value: Option<T>, flag: &str, config: Option<&PathBuf>) -> anyhow::Result<T> {
    match value {
        Some(v) => Ok(v),
        None => match config {
            Some(c) => {
                bail!("missing --{flag} (or `{}` in [harvest] of {})", flag.replace('-', "_"), c.display())
            }
            None => bail!("missing --{flag}"),
        },
    }
}

pub fn run(args: &HarvestArgs) -> anyhow::Result<()> {
    let from_file = match &args.config {
        Some(path) => crate::run_config::read(path)?.harvest,
        None => HarvestOptions::default(),
    };
    let o = args.options.clone().or(from_file);
    let config = args.config.as_ref();
    let model_spec = required(o.model, "model", config)?;
    let corpus_path = required(o.corpus, "corpus", config)?;
    let tokens = required(o.tokens, "tokens", config)?;
    let out = required(o.out, "out", config)?;
    let ctx = o.ctx.unwrap_or(128);
    let batch = o.batch.unwrap_or(8);
    let shard_mb = o.shard_mb.unwrap_or(64.0);
    if !(shard_mb.is_finite() && shard_mb > 0.0) {
        bail!("--shard-mb must be a positive number of MiB, got {shard_mb}");
    }
    let keep_sinks = o.keep_sinks.unwrap_or(false);
    let dtype = match o.dtype.unwrap_or(StoreDtypeArg::F32) {
        StoreDtypeArg::F32 => StoreDtype::F32,
        StoreDtypeArg::F16 => StoreDtype::F16,
        StoreDtypeArg::Bf16 => StoreDtype::Bf16,
    };
    for (name, value) in [("tokens", tokens as usize), ("ctx", ctx), ("batch", batch)] {
        if value == 0 {
            bail!("--{name} must be at least 1");
        }
    }
    let format = FormatArg::resolve(o.format, &corpus_path);
    // Cheap checks first: the corpus (and its Parquet column) before the model loads.
    let corpus = Corpus::open(&corpus_path, format, o.field.as_deref().unwrap_or("text"))?;
    let model_dtype = o.model_dtype.unwrap_or(DtypeArg::F32);
    let model =
        load_model(&ModelArgs { model: model_spec.clone(), tokenizer: o.tokenizer, dtype: model_dtype })?;
    let cfg = model.config();
    let hooks = select_hooks(o.hooks.as_deref().unwrap_or("blocks.*.hook_resid_post"), cfg.num_layers)?;
    if ctx > cfg.max_position_embeddings {
        bail!("--ctx {ctx} exceeds the model's context length {}", cfg.max_position_embeddings);
    }
    let tokenizer = model.tokenizer()?;
    let bos = if tokenizer.adds_bos()? { tokenizer.bos_id().or(cfg.bos_token_id) } else { None };
    let row_bytes = hooks.len() * cfg.hidden_size * dtype.size();
    let spec = StoreSpec {
        model: ModelIdentity {
            spec: model_spec,
            architecture: cfg.family.name().to_string(),
            num_layers: cfg.num_layers,
            parameters: cfg.parameter_count(),
            dtype: format!("{:?}", model_dtype).to_lowercase(),
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
        shard_rows: ((shard_mb * (1 << 20) as f64) as usize / row_bytes).max(1),
    };
    let writer = if args.resume { StoreWriter::resume(&out, spec) } else { StoreWriter::create(&out, spec) }
        .with_context(|| format!("opening the store in {}", out.display()))?;
    let resumed_at = writer.rows();
    if args.resume {
        eprintln!("resuming {} at {resumed_at} of {tokens} rows", out.display());
    }
    let settings = HarvestSettings {
        hooks,
        batch,
        windows: WindowPlan { context_length: ctx, bos },
        keep_sinks,
        bos: bos.or(cfg.bos_token_id),
        dtype,
    };
    let mut display = ProgressDisplay::new("harvest", "rows", tokens, resumed_at);
    let started = Instant::now();
    let summary = harvest(&model, &corpus, &settings, writer, &mut |p| {
        let rate = p.tokens_run as f64 / p.elapsed.as_secs_f64().max(1e-9);
        display.update(p.rows, &format!("{rate:.0} tokens/s"))
    })
    .with_context(|| format!("harvesting into {}", out.display()))?;
    display.finish();
    eprintln!(
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
    );
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "ran {} tokens in {seconds:.1} s ({:.1} tokens/s){}",
        summary.tokens_run,
        summary.tokens_run as f64 / seconds.max(1e-9),
        peak_memory_mib().map(|m| format!(", peak memory {m:.0} MiB")).unwrap_or_default()
    );
    Ok(())
}

/// Peak resident memory of this process (Linux's VmHWM), for the benchmarks.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
