//! Writing output files so that a killed or failed run never leaves a partial file
//! under the final name (through `bae_train::files`), and printing to a closed pipe.

use std::path::Path;

use anyhow::Context;

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
