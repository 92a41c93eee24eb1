//! Cross-process locks beside the database: one daemon per database, and one probe per
//! monitor at a time (so `chanmon check` from a shell never overlaps the daemon's probe).
//!
//! The daemon lock is an advisory `flock`-style lock (std `File::lock`) on `<database>.lock`.
//! Probe locks are byte-range locks in one file, `<database>.probe-locks`: monitor `id` owns
//! one byte at an offset hashed from its id, so a fleet of any size needs one file (an earlier
//! version kept a file per monitor in `<database>.locks/`; that directory is no longer used or
//! created, and can be deleted). On Linux they are open-file-description locks
//! (`F_OFD_SETLK`): unlike classic POSIX record locks they belong to the open file, not the
//! process, so two opens in one process conflict too and closing an unrelated descriptor
//! never drops them. The kernel releases all of these when the process dies, so a crashed
//! daemon never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
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

/// `<database>.probe-locks`: one file for every monitor's probe lock.
fn probe_lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".probe-locks");
    PathBuf::from(s)
}

/// The byte of the probe-lock file that stands for monitor `id`: its stable hash, which every
/// chanmon version (the daemon and a `check` from another build) agrees on. Two ids sharing a
/// byte would only make their probes take turns; at 62 bits that is practically never.
fn slot(id: &MonitorId) -> i64 {
    // Non-negative and far from the largest offset, so start + length cannot overflow.
    (crate::store::stable_hash(id.as_str()) >> 2) as i64
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

/// Every monitor's probe lock as one byte of `<database>.probe-locks`.
pub(crate) struct FileProbeLocks {
    path: PathBuf,
}

impl FileProbeLocks {
    pub(crate) fn new(db: &Path) -> FileProbeLocks {
        FileProbeLocks {
            path: probe_lock_path(db),
        }
    }

    /// A fresh open per lock: each guard is its own open file description, so locks taken by
    /// two tasks of one process conflict like those of two processes, and closing the guard's
    /// file releases exactly its lock.
    fn open(&self) -> Result<File, StoreError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(io_err(&self.path))
    }
}

impl ProbeLocks for FileProbeLocks {
    fn try_lock(&self, id: &MonitorId) -> Result<Option<ProbeGuard>, StoreError> {
        let file = self.open()?;
        match range::lock(&file, slot(id), false) {
            Ok(true) => Ok(Some(ProbeGuard::new(file))),
            Ok(false) => Ok(None),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    fn lock(&self, id: &MonitorId) -> Result<ProbeGuard, StoreError> {
        let file = self.open()?;
        range::lock(&file, slot(id), true).map_err(io_err(&self.path))?;
        Ok(ProbeGuard::new(file))
    }
}

/// Exclusive locks on one byte of a file, held by the open file description: released when
/// the file is closed (the guard dropped) or the process dies.
#[cfg(target_os = "linux")]
mod range {
    use std::fs::File;
    use std::io;

    use nix::errno::Errno;
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;

    /// `Ok(false)`: held by another open file description (only when `wait` is false).
    pub(super) fn lock(file: &File, offset: i64, wait: bool) -> io::Result<bool> {
        let request = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: offset,
            l_len: 1,
            // Must be 0 for open-file-description locks.
            l_pid: 0,
        };
        loop {
            let arg = if wait {
                FcntlArg::F_OFD_SETLKW(&request)
            } else {
                FcntlArg::F_OFD_SETLK(&request)
            };
            return match fcntl(file, arg) {
                Ok(_) => Ok(true),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN | Errno::EACCES) if !wait => Ok(false),
                Err(e) => Err(io::Error::from(e)),
            };
        }
    }
}

/// Classic POSIX record locks belong to the process and vanish when any descriptor of the file
/// is closed, which would let two probes of one monitor overlap: without open-file-description
/// locks there is no safe fallback, so other systems are refused at build time.
#[cfg(not(target_os = "linux"))]
mod range {
    compile_error!("probe locks need Linux open-file-description locks (F_OFD_SETLK)");
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

    #[test]
    fn a_waiting_lock_gets_the_monitor_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let locks = std::sync::Arc::new(FileProbeLocks::new(&dir.path().join("c.db")));
        let id = MonitorId::parse("m1").unwrap();
        let held = locks.try_lock(&id).unwrap().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (locks, id) = (locks.clone(), id.clone());
            std::thread::spawn(move || {
                let g = locks.lock(&id).unwrap();
                tx.send(()).unwrap();
                g
            })
        };
        // Still held: the waiter has not got it (a generous wait, asserting only absence).
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("the waiter takes the lock once it is released");
        let g = waiter.join().unwrap();
        assert!(
            locks.try_lock(&id).unwrap().is_none(),
            "the waiter holds it"
        );
        drop(g);
    }

    #[test]
    fn a_thousand_monitors_share_one_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileProbeLocks::new(&dir.path().join("c.db"));
        let guards: Vec<_> = (0..1000)
            .map(|i| {
                let id = MonitorId::parse(&format!("m{i}")).unwrap();
                locks
                    .try_lock(&id)
                    .unwrap()
                    .expect("distinct monitors never conflict")
            })
            .collect();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["c.db.probe-locks"]);
        drop(guards);
    }

    #[test]
    fn slots_are_stable_and_non_negative() {
        // Fixed values: a daemon and a `check` of another build must agree on them.
        let id = MonitorId::parse("m1").unwrap();
        assert_eq!(slot(&id), 156045722147628762);
        assert!(slot(&MonitorId::parse("a-very-long-monitor-id-0123456789").unwrap()) >= 0);
        assert_ne!(slot(&id), slot(&MonitorId::parse("m2").unwrap()));
    }
}
