//! Locks for a PostgreSQL database.
//!
//! The daemon lock is a session advisory lock held on a connection of its own for the
//! daemon's life; the server drops it when that connection ends, so a killed daemon never
//! leaves a stale lock. Daemons (replicas) take it *shared*, so any number run together;
//! what must run alone (`rekey`) takes it exclusively, so it waits for no daemon and no daemon
//! starts under it. The holder is found in
//! `pg_locks` joined to `pg_stat_activity`, whose `application_name` carries the holder's pid.
//!
//! Probe locks are in-process only: a lock per monitor across processes would need a
//! connection per probe. Two processes may therefore probe one monitor at the same moment
//! (a shell `chanmon check` beside the daemon); their results are both recorded.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};

use super::conn::{Conn, PgUrl};
use crate::model::MonitorId;
use crate::store::{ProbeGuard, ProbeLocks, StoreError};

/// The advisory lock key ("chanmon" daemon); class id 0, object id this.
const DAEMON_KEY: i64 = 0x6368_616e;
const APP_PREFIX: &str = "chanmon daemon pid ";

/// Held for the daemon's life: the connection holding the advisory lock.
pub(crate) struct DaemonLock {
    _conn: Mutex<Conn>,
}

impl DaemonLock {
    pub(crate) fn acquire(url: &PgUrl, shared: bool) -> Result<DaemonLock, StoreError> {
        let app = format!("{APP_PREFIX}{}", std::process::id());
        let client = url.connect(Some(&app))?;
        let mut conn = Conn::from_client(url, client);
        let sql = if shared {
            "SELECT pg_try_advisory_lock_shared($1)"
        } else {
            "SELECT pg_try_advisory_lock($1)"
        };
        let got: bool = conn.run(|c| Ok(c.query_one(sql, &[&DAEMON_KEY])?.get(0)))?;
        if got {
            return Ok(DaemonLock {
                _conn: Mutex::new(conn),
            });
        }
        let holder = match holder_on(&mut conn)? {
            Some(pid) if !pid.is_empty() => format!(" (pid {pid})"),
            _ => String::new(),
        };
        Err(StoreError::DaemonRunning {
            db: url.to_string(),
            lock: format!("PostgreSQL advisory lock {DAEMON_KEY}"),
            holder,
        })
    }

    /// Who holds the lock: `None` when free, else the holder's pid (empty when unknown).
    pub(crate) fn holder(url: &PgUrl) -> Result<Option<String>, StoreError> {
        let mut conn = Conn::open(url, "")?;
        holder_on(&mut conn)
    }
}

fn holder_on(conn: &mut Conn) -> Result<Option<String>, StoreError> {
    conn.run(|c| {
        let row = c.query_opt(
            "SELECT coalesce(a.application_name, '') FROM pg_locks l
             LEFT JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0
               AND l.objid = $1::bigint::oid AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             LIMIT 1",
            &[&DAEMON_KEY],
        )?;
        Ok(row.map(|r| {
            let app: String = r.get(0);
            app.strip_prefix(APP_PREFIX).unwrap_or("").to_owned()
        }))
    })
}

/// One probe per monitor at a time within this process.
#[derive(Default)]
pub(crate) struct LocalProbeLocks {
    held: Arc<(Mutex<HashSet<String>>, Condvar)>,
}

struct Held {
    id: String,
    set: Arc<(Mutex<HashSet<String>>, Condvar)>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let (set, freed) = &*self.set;
        set.lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        freed.notify_all();
    }
}

impl ProbeLocks for LocalProbeLocks {
    fn try_lock(&self, id: &MonitorId) -> Result<Option<ProbeGuard>, StoreError> {
        let mut set = self.held.0.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(id.as_str().to_owned()) {
            return Ok(None);
        }
        Ok(Some(ProbeGuard::new(Held {
            id: id.as_str().to_owned(),
            set: self.held.clone(),
        })))
    }

    fn lock(&self, id: &MonitorId) -> Result<ProbeGuard, StoreError> {
        let (set, freed) = &*self.held;
        let mut set = set.lock().unwrap_or_else(|p| p.into_inner());
        while set.contains(id.as_str()) {
            set = freed.wait(set).unwrap_or_else(|p| p.into_inner());
        }
        set.insert(id.as_str().to_owned());
        Ok(ProbeGuard::new(Held {
            id: id.as_str().to_owned(),
            set: self.held.clone(),
        }))
    }
}
