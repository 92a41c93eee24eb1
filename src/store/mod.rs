//! SQLite storage: the only module that writes SQL.
//!
//! WAL, `synchronous=NORMAL`, a busy timeout, migrations by `PRAGMA user_version`. One writer
//! per process (the daemon's writer thread); readers open their own connections.

use std::path::Path;
use std::time::Duration;

use crate::config::{Monitor, MonitorConfig};
use crate::model::{CheckResult, MonitorId, Status, Timestamp};
use crate::secret::MasterKey;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {message}")]
    Open { path: String, message: String },
    #[error(
        "database {path} has schema version {found}, newer than this chanmon understands ({supported}); upgrade chanmon"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("database {path} does not exist; run `chanmon run` or `chanmon check` first")]
    Missing { path: String },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A connection to the database.
pub struct Store {
    conn: rusqlite::Connection,
}

/// What `history` returns.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub monitor: Option<MonitorId>,
    pub model: Option<String>,
    /// Inclusive lower bound on `started_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on `started_at`.
    pub until: Option<Timestamp>,
    pub status: Option<Status>,
    /// Paging: strictly older than this.
    pub before: Option<Timestamp>,
    /// Newest first, at most this many (default 50 at the CLI).
    pub limit: usize,
}

/// A monitor as stored (for `status` and `validate`).
#[derive(Debug, Clone)]
pub struct StoredMonitor {
    pub id: MonitorId,
    pub name: String,
    pub provider: String,
    pub enabled: bool,
    pub models: Vec<String>,
    /// Why the key is unusable, if it is (set by the last sync).
    pub key_unavailable: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub history_rows: u64,
    pub rollup_rows: u64,
}

impl Store {
    /// Opens (creating if needed) and migrates the database. For commands that write.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let _ = path;
        todo!("Store::open")
    }

    /// Opens an existing database; a missing file is an error, not a new database.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        let _ = path;
        todo!("Store::open_existing")
    }

    /// Upserts monitors by id, seals keys and header values that the config provides, and
    /// disables (never deletes) stored monitors no longer in the config. Returns the monitors of
    /// the config with the key each will use: the config's key, else the stored sealed key,
    /// else `KeyState::Unavailable` with the reason (also recorded for `status`).
    pub fn sync_monitors(
        &mut self,
        monitors: &[MonitorConfig],
        key: &MasterKey,
    ) -> Result<Vec<Monitor>, StoreError> {
        let _ = (monitors, key);
        todo!("Store::sync_monitors")
    }

    pub fn monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
        todo!("Store::monitors")
    }

    /// Writes results (and their rollups) in one transaction.
    pub fn insert_results(&mut self, results: &[CheckResult]) -> Result<(), StoreError> {
        let _ = results;
        todo!("Store::insert_results")
    }

    /// Newest first.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError> {
        let _ = q;
        todo!("Store::history")
    }

    /// Deletes raw rows older than `now - history` (rollups kept) in small batches.
    pub fn prune(
        &mut self,
        now: Timestamp,
        history: Duration,
        dry_run: bool,
    ) -> Result<PruneReport, StoreError> {
        let _ = (now, history, dry_run);
        todo!("Store::prune")
    }
}
