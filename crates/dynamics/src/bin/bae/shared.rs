//! What the commands share: the flag groups several commands take (the model, the
//! autoencoders a measurement reads, a prompt set, the dtypes and devices), the one
//! progress display and the reporter the library's stages talk through, printing that
//! survives a closed pipe, and writing output files atomically.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bae_dynamics::input::corpus::{CorpusFormat, DEFAULT_TEXT_FIELD};
use bae_dynamics::input::model::{ModelDtype, ModelSpec};
use bae_dynamics::measure::DEFAULT_MAX_FVU;
use bae_dynamics::pipeline::{AutoencoderSelection, PromptSet, Reporter};
use bae_lm::Model;
use clap::{Args, ValueEnum};

/// How to find and load the model; shared by every command that runs one.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The model: a directory in Hugging Face layout (config.json, *.safetensors,
    /// tokenizer.json), a GGUF file, or a Hub id such as HuggingFaceTB/SmolLM2-135M
    /// (looked up in the Hugging Face cache under HF_HOME, downloaded when missing
    /// unless HF_HUB_OFFLINE=1).
    #[arg(long, short = 'm')]
    pub model: String,
    /// A tokenizer.json to use instead of the model's own. For a GGUF file the default is
    /// a `tokenizer.json` beside it, else the tokenizer rebuilt from its metadata, which
    /// works for byte-level BPE only (Gemma's SentencePiece vocabulary needs the file).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Dtype of weights and activations.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: ModelDtype,
}

impl ModelArgs {
    /// As the library's model spec.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec { model: self.model.clone(), tokenizer: self.tokenizer.clone(), dtype: self.dtype }
    }

    /// Loads the model the flags name.
    pub fn load(&self) -> anyhow::Result<Model> {
        Ok(self.spec().load()?)
    }
}

/// The trained autoencoders a measurement reads (`bae entropy`, `bae icl`, `bae fidelity`).
#[derive(Debug, Args, Clone)]
pub struct AutoencoderArgs {
    /// Trained autoencoders (BAEs or SAE baselines): a `bae train` run folder, or a
    /// folder of them, one per hook point (each names its hook in cfg.json). Every hook
    /// point with one is measured.
    #[arg(long)]
    pub baes: PathBuf,
    /// Measure only these hook points (comma-separated names or globs such as
    /// `blocks.*.hook_resid_post`) [default: every hook point with an autoencoder].
    #[arg(long)]
    pub hooks: Option<String>,
    /// The quality gate: a hook whose autoencoder's validation FVU (from its cfg.json)
    /// exceeds this is marked `quality = "fail"` in every row of the table and greyed in
    /// its plots — its numbers are not measurements.
    #[arg(long, default_value_t = DEFAULT_MAX_FVU)]
    pub max_fvu: f64,
}

impl AutoencoderArgs {
    /// As the library's selection.
    pub fn selection(&self) -> AutoencoderSelection {
        AutoencoderSelection { baes: self.baes.clone(), hooks: self.hooks.clone(), max_fvu: self.max_fvu }
    }
}

/// A prompt set (`bae entropy`, `bae fidelity`).
#[derive(Debug, Args, Clone)]
pub struct PromptSetArgs {
    /// The prompts: one per line (text), per JSON object (JSONL, text in --field) or per
    /// row (Parquet, column --field).
    #[arg(long)]
    pub prompts: PathBuf,
    /// Format of --prompts; by default from its extension (.jsonl, .parquet, else text).
    #[arg(long, value_enum)]
    pub format: Option<CorpusFormat>,
    /// The JSONL field or Parquet column holding the text.
    #[arg(long, default_value = DEFAULT_TEXT_FIELD)]
    pub field: String,
    /// Use at most this many prompts (in file order).
    #[arg(long)]
    pub max_prompts: Option<usize>,
}

impl PromptSetArgs {
    /// As the library's prompt set.
    pub fn set(&self) -> PromptSet {
        PromptSet {
            path: self.prompts.clone(),
            format: self.format,
            field: self.field.clone(),
            max_prompts: self.max_prompts,
        }
    }
}

/// Storage dtype of harvested activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreDtypeArg {
    /// 4 bytes per value.
    F32,
    /// 2 bytes; values beyond ±65504 (Gemma's residuals) are refused, not clipped.
    F16,
    /// 2 bytes with f32's range and 8 bits of mantissa.
    Bf16,
}

impl StoreDtypeArg {
    /// As the store's dtype.
    pub fn store_dtype(self) -> bae_train::store::StoreDtype {
        use bae_train::store::StoreDtype;
        match self {
            StoreDtypeArg::F32 => StoreDtype::F32,
            StoreDtypeArg::F16 => StoreDtype::F16,
            StoreDtypeArg::Bf16 => StoreDtype::Bf16,
        }
    }
}

/// Where the training step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The CPU (OpenBLAS when linked).
    Cpu,
    /// The first CUDA GPU.
    Cuda,
}

impl DeviceArg {
    /// As the config's value.
    pub fn compute_device(self) -> bae_train::config::ComputeDevice {
        match self {
            DeviceArg::Cpu => bae_train::config::ComputeDevice::Cpu,
            DeviceArg::Cuda => bae_train::config::ComputeDevice::Cuda,
        }
    }
}

/// Matmul implementation choice for benchmarks.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MatmulArg {
    /// The system OpenBLAS, when linked.
    Openblas,
    /// candle's built-in gemm.
    Candle,
}

/// The reporter of every command: narrative lines on stderr, tasks as a
/// [`ProgressDisplay`].
#[derive(Default)]
pub struct Terminal {
    display: Option<ProgressDisplay>,
}

impl Reporter for Terminal {
    fn say(&mut self, line: &str) {
        eprintln!("{line}");
    }

    fn begin(&mut self, what: &str, unit: &'static str, total: u64, done: u64) {
        self.display = Some(ProgressDisplay::new(what, unit, total, done));
    }

    fn advance(&mut self, done: u64, message: &str) {
        if let Some(display) = &mut self.display {
            display.update(done, message);
        }
    }

    fn end(&mut self) {
        if let Some(display) = self.display.take() {
            display.finish();
        }
    }
}

/// Runs `write` on a temporary path (unique to this process), flushes it to the disk and
/// renames it to `path`; on failure the temporary file is removed and `path` is left as
/// it was.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    }
    bae_train::files::write_atomically_with(path, |tmp| {
        write(tmp).map_err(|e| e.context(format!("writing {}", path.display())))
    })?;
    readable_by_all(path)
}

/// Writers that go through a private temporary file (safetensors does) leave mode 0600;
/// results are meant to be shared, so give them the usual 0644.
fn readable_by_all(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting permissions of {}", path.display()))?;
    }
    Ok(())
}

/// Prints to stdout; a closed pipe (`bae inspect | head`) ends output quietly instead
/// of panicking like `println!`.
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Work done out of a total, the one progress display of every command: a bar with a
/// message and ETA on a terminal; otherwise (a `bae run` logged to a file) a line every
/// 10 s and one when the total is reached, with the same message and ETA.
pub struct ProgressDisplay {
    bar: Option<indicatif::ProgressBar>,
    what: String,
    unit: &'static str,
    total: u64,
    /// Done when this display started (a resumed run), for the ETA.
    start_done: u64,
    started: std::time::Instant,
    last_line: std::time::Instant,
}

impl ProgressDisplay {
    /// Progress of `what` ("harvest", "icl prompts") over `total` `unit`s ("rows",
    /// "epochs", or "" for plain items), `done` of them already done.
    pub fn new(what: &str, unit: &'static str, total: u64, done: u64) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let template =
                format!("{{bar:40}} {{pos}}/{{len}} {unit}  {{msg}}  elapsed {{elapsed}}  ETA {{eta}}");
            bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template"));
            bar.set_position(done);
            bar
        });
        let now = std::time::Instant::now();
        Self { bar, what: what.to_string(), unit, total, start_done: done, started: now, last_line: now }
    }

    /// `done` of the total, with `message` (a rate, the latest metrics) beside it.
    pub fn update(&mut self, done: u64, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(message.to_string());
            }
            None if self.last_line.elapsed() >= std::time::Duration::from_secs(10) || done >= self.total => {
                self.last_line = std::time::Instant::now();
                let elapsed = self.started.elapsed().as_secs_f64();
                let progressed = done.saturating_sub(self.start_done) as f64;
                let left = self.total.saturating_sub(done) as f64;
                let eta = if progressed > 0.0 {
                    format!("{:.0} s", elapsed * left / progressed)
                } else {
                    "?".into()
                };
                let unit = if self.unit.is_empty() { String::new() } else { format!(" {}", self.unit) };
                let message = if message.is_empty() { String::new() } else { format!(", {message}") };
                eprintln!(
                    "{}: {done}/{}{unit}{message}, elapsed {elapsed:.0} s, ETA {eta}",
                    self.what, self.total
                );
            }
            None => {}
        }
    }

    /// Ends the bar, leaving its last state on the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
