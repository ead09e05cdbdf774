//! Durable, all-or-nothing file writes: the bytes go to `<name>.partial`, are flushed to
//! the disk, and the file is renamed into place (and the rename flushed), so a killed
//! or failed run never leaves a truncated file under the final name.

use std::path::{Path, PathBuf};

use crate::error::{io, Result};

/// The temporary sibling a file is written to first.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}.partial"))
}

/// Writes `bytes` to `path` atomically and durably; on failure the temporary file is
/// removed and `path` is left as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = partial_path(path);
    let written = std::fs::File::create(&tmp).map_err(io("creating", &tmp)).and_then(|mut file| {
        file.write_all(bytes).map_err(io("writing", &tmp))?;
        file.sync_all().map_err(io("writing", &tmp))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(io("renaming", &tmp))?;
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Makes renames inside `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing", dir))?;
    Ok(())
}
