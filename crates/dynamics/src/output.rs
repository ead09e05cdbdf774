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
