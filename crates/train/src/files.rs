//! Durable, all-or-nothing file writes: the bytes go to a temporary sibling named for
//! this process, are flushed to the disk, and the file is renamed into place (and the
//! rename flushed), so a killed or failed run never leaves a truncated file under the
//! final name, and two processes never write the same temporary file.

use std::path::{Path, PathBuf};

use crate::error::{io, Result, TrainError};

/// The suffix every temporary file ends with.
const PARTIAL_SUFFIX: &str = ".partial";

/// The temporary sibling of `path` this process writes first:
/// `.<name>.<pid>.partial` (hidden, and unique to the writing process).
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}{PARTIAL_SUFFIX}", std::process::id()))
}

/// Whether `name` is a temporary file some run was writing (this version's names and
/// the older `<name>.partial`): safe to remove once the folder's lock is held.
pub fn is_partial(name: &str) -> bool {
    name.ends_with(PARTIAL_SUFFIX)
}

/// Runs `write` on a temporary sibling of `path`, flushes it to the disk and renames it
/// into place; on failure the temporary file is removed and `path` is left as it was.
pub fn write_atomically_with<E: From<TrainError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let tmp = partial_path(path);
    let written = write(&tmp).and_then(|()| {
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| E::from(io("writing", &tmp)(e)))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(E::from(io("renaming", &tmp)(e)));
    }
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir).map_err(E::from),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically and durably; on failure the temporary file is
/// removed and `path` is left as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    write_atomically_with(path, |tmp| {
        let mut file = std::fs::File::create(tmp).map_err(io("creating", tmp))?;
        file.write_all(bytes).map_err(io("writing", tmp))
    })
}

/// Removes the temporary files a killed run left in `dir`. Only for a folder whose lock
/// this process holds: another live writer's files would go too.
pub fn remove_partials(lock: &crate::lock::FolderLock) -> Result<()> {
    let dir = lock.dir();
    for entry in std::fs::read_dir(dir).map_err(io("reading", dir))?.filter_map(|e| e.ok()) {
        if is_partial(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io("removing", &path))?;
        }
    }
    Ok(())
}

/// Makes renames inside `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.parquet");
        write_atomically(&path, b"old").unwrap();
        let failed: Result<()> = write_atomically_with(&path, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(TrainError::Input("disk full".into()))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["table.parquet"]);
        let tmp = partial_path(&path);
        let tmp_name = tmp.file_name().unwrap().to_string_lossy();
        assert!(tmp_name.starts_with(".table.parquet.") && is_partial(&tmp_name), "{tmp_name}");
        assert!(tmp_name.contains(&std::process::id().to_string()));
    }
}
