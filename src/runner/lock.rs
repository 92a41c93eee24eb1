//! Cross-process locks beside the database: one daemon per database, and one probe per
//! monitor at a time (so `chanmon check` from a shell never overlaps the daemon's probe).
//!
//! Advisory `flock`-style locks (std `File::lock`): the kernel releases them when the process
//! dies, so a crashed daemon never leaves a stale lock behind.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another chanmon daemon{holder} already runs on {db}; stop it first (lock file {lock})"
    )]
    Held {
        db: String,
        lock: String,
        holder: String,
    },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Held for the daemon's whole life; records the holder's pid.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
    pub path: PathBuf,
}

/// `<database>.lock`.
pub fn daemon_lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// `<database>.locks/`, one file per monitor.
pub fn probe_lock_dir(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".locks");
    PathBuf::from(s)
}

impl DaemonLock {
    pub fn acquire(db: &Path) -> Result<DaemonLock, LockError> {
        let path = daemon_lock_path(db);
        // No truncate before the lock is ours: the file holds the current holder's pid.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let holder = if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                return Err(LockError::Held {
                    db: db.display().to_string(),
                    lock: path.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
        }
        file.set_len(0).map_err(io_err(&path))?;
        file.rewind().map_err(io_err(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err(&path))?;
        file.flush().map_err(io_err(&path))?;
        Ok(DaemonLock { _file: file, path })
    }
}

/// Held while one monitor is being probed.
#[derive(Debug)]
pub struct ProbeLock {
    _file: File,
}

fn open_probe_lock(dir: &Path, id: &str) -> Result<(File, PathBuf), LockError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(format!("{id}.lock"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    Ok((file, path))
}

impl ProbeLock {
    /// `None` when another process (or task) is probing this monitor now.
    pub fn try_acquire(dir: &Path, id: &str) -> Result<Option<ProbeLock>, LockError> {
        let (file, path) = open_probe_lock(dir, id)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ProbeLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// Waits until the monitor is free (blocking: call from a blocking thread).
    pub fn acquire(dir: &Path, id: &str) -> Result<ProbeLock, LockError> {
        let (file, path) = open_probe_lock(dir, id)?;
        file.lock().map_err(io_err(&path))?;
        Ok(ProbeLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_daemon_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let first = DaemonLock::acquire(&db).unwrap();
        let err = DaemonLock::acquire(&db).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(DaemonLock::acquire(&db).is_ok());
    }

    #[test]
    fn probe_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProbeLock::try_acquire(dir.path(), "m1").unwrap();
        assert!(a.is_some());
        assert!(ProbeLock::try_acquire(dir.path(), "m1").unwrap().is_none());
        assert!(ProbeLock::try_acquire(dir.path(), "m2").unwrap().is_some());
        drop(a);
        assert!(ProbeLock::try_acquire(dir.path(), "m1").unwrap().is_some());
    }
}
