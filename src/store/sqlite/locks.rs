//! Cross-process locks beside the database: one daemon per database, and one probe per
//! monitor at a time (so `chanmon check` from a shell never overlaps the daemon's probe).
//!
//! Advisory `flock`-style locks (std `File::lock`): the kernel releases them when the process
//! dies, so a crashed daemon never leaves a stale lock behind.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::model::MonitorId;
use crate::store::{ProbeGuard, ProbeLocks, StoreError};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Lock {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Held for the daemon's whole life; records the holder's pid.
#[derive(Debug)]
pub(crate) struct DaemonLock {
    _file: File,
}

/// `<database>.lock`.
fn daemon_lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// `<database>.locks/`, one file per monitor.
fn probe_lock_dir(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".locks");
    PathBuf::from(s)
}

impl DaemonLock {
    pub(crate) fn acquire(db: &Path) -> Result<DaemonLock, StoreError> {
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
                return Err(StoreError::DaemonRunning {
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
        Ok(DaemonLock { _file: file })
    }

    /// Who holds the lock, without taking it (nothing is written): `None` when free, else
    /// the pid recorded in the lock file (empty when unknown). A shared lock is tried and
    /// dropped at once; a daemon starting in that instant would be told one already runs.
    pub(crate) fn holder(db: &Path) -> Result<Option<String>, StoreError> {
        let path = daemon_lock_path(db);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Ok(Some(pid.trim().to_owned()))
            }
            Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }
}

/// One lock file per monitor in `<database>.locks/`.
pub(crate) struct FileProbeLocks {
    dir: PathBuf,
}

impl FileProbeLocks {
    pub(crate) fn new(db: &Path) -> FileProbeLocks {
        FileProbeLocks {
            dir: probe_lock_dir(db),
        }
    }

    fn open(&self, id: &MonitorId) -> Result<(File, PathBuf), StoreError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.dir.join(format!("{id}.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok((file, path))
    }
}

impl ProbeLocks for FileProbeLocks {
    fn try_lock(&self, id: &MonitorId) -> Result<Option<ProbeGuard>, StoreError> {
        let (file, path) = self.open(id)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ProbeGuard::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    fn lock(&self, id: &MonitorId) -> Result<ProbeGuard, StoreError> {
        let (file, path) = self.open(id)?;
        file.lock().map_err(io_err(&path))?;
        Ok(ProbeGuard::new(file))
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
        assert_eq!(
            DaemonLock::holder(&db).unwrap(),
            Some(std::process::id().to_string())
        );
        drop(first);
        assert_eq!(DaemonLock::holder(&db).unwrap(), None);
        assert!(DaemonLock::acquire(&db).is_ok());
    }

    #[test]
    fn probe_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileProbeLocks::new(&dir.path().join("c.db"));
        let id = |s: &str| MonitorId::parse(s).unwrap();
        let a = locks.try_lock(&id("m1")).unwrap();
        assert!(a.is_some());
        assert!(locks.try_lock(&id("m1")).unwrap().is_none());
        assert!(locks.try_lock(&id("m2")).unwrap().is_some());
        drop(a);
        assert!(locks.try_lock(&id("m1")).unwrap().is_some());
    }
}
