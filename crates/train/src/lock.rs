//! One writer per folder: an exclusive OS lock (`flock` on Unix) on the folder's
//! [`LOCK_FILE`], held for the writer's lifetime and released by the OS when the process
//! ends, however it ends. A second writer — a `--resume` started while the first still
//! runs — is refused at once with the holder's PID, so it can never delete the first
//! one's temporary files or interleave its shards and checkpoints with them.
//!
//! The lock file stays behind after the writer is done: removing it would let a third
//! process lock a fresh file while a second still holds the old one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{io, Result, TrainError};

/// The lock file's name inside a locked folder. Folder checks that expect an empty or a
/// known set of files ignore it.
pub const LOCK_FILE: &str = ".bae-lock";

/// An exclusive lock on a folder; dropping it releases the lock.
#[derive(Debug)]
pub struct FolderLock {
    _file: Option<File>,
    dir: PathBuf,
}

impl FolderLock {
    /// Creates `dir` if needed and locks it, or fails at once with
    /// [`TrainError::Locked`] naming the process that holds it. On a file system without
    /// file locks (some network mounts) the folder is used unlocked.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("opening", &path))?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the message a second writer gets.
                let pid = format!("PID {}\n", std::process::id());
                file.set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| file.write_all(pid.as_bytes()))
                    .map_err(io("writing", &path))?;
                Ok(Self { _file: Some(file), dir: dir.to_path_buf() })
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // At most a line: the file is ours, but anyone may have written to it.
                let _ = Read::take(&file, 64).read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "PID unknown" } else { holder };
                Err(TrainError::Locked {
                    dir: dir.to_path_buf(),
                    holder: holder.chars().filter(|c| !c.is_control()).collect(),
                })
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                Ok(Self { _file: None, dir: dir.to_path_buf() })
            }
            Err(TryLockError::Error(e)) => Err(io("locking", &path)(e)),
        }
    }

    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether `name` is one of the files a locked folder may hold besides its contents:
/// the lock file, or a temporary file (see [`crate::files::partial_path`]).
pub fn is_bookkeeping(name: &str) -> bool {
    name == LOCK_FILE || crate::files::is_partial(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_folder_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("run");
        let first = FolderLock::acquire(&folder).unwrap();
        assert_eq!(first.dir(), folder);
        // flock locks belong to open files, so a second open in this process conflicts
        // as another process's would.
        let err = FolderLock::acquire(&folder).unwrap_err().to_string();
        let pid = format!("PID {}", std::process::id());
        assert!(err.contains(&pid) && err.contains("another bae process") && err.contains("run"), "{err}");
        drop(first);
        let again = FolderLock::acquire(&folder).unwrap();
        drop(again);
        assert!(folder.join(LOCK_FILE).is_file(), "the lock file stays");
        assert!(is_bookkeeping(LOCK_FILE) && !is_bookkeeping("index.json"));
    }
}
