//! The storage boundary: what the rest of chanmon may ask of a database, and nothing about
//! how a backend does it.
//!
//! [`Storage`] is the interface the runner and the commands talk to; [`open`] picks the
//! backend from a [`Database`]. Only backends write SQL (today `sqlite`, the embedded default).
//! Errors crossing the boundary are [`StoreError`], which names no driver. The store stores
//! sealed bytes: which key wins and how secrets are sealed is `crate::keys`, above it.
//!
//! Pure pieces every backend shares live beside the boundary: the latency histogram (`hist`),
//! rollups and the window plan (`window`: which full hours come from rollups, which edges from
//! raw rows).
//!
//! Damage is sticky (`guard`): once a backend reports the database malformed
//! ([`StoreError::Damaged`]), the store that saw it refuses every later write.
//!
//! Backends: `sqlite` (a file path; the embedded default) and `postgres` (a `postgres://` URL,
//! or `CHANMON_DATABASE_URL`): a server database several processes can share. Its URL is shown
//! only without the password ([`PgUrl`]'s `Display`).
//!
//! Adding a backend: a module implementing [`Storage`] (and its locks), a [`Database`] variant,
//! and one arm in [`open`], [`daemon_lock`] and [`probe_locks`].

mod guard;
mod hist;
mod outbox;
mod postgres;
mod sqlite;
mod window;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::{CheckResult, MonitorId, Status, Timestamp};
use crate::official::OfficialStatus;
use crate::pipeline::tracker::{SeriesState, StatusChange};

pub use outbox::{
    Delivery, DeliveryOutcome, DeliveryRow, DeliveryState, IncidentQuery, IncidentRow, OutboxCounts,
};
pub use postgres::{PgUrl, TableCount};
pub use sqlite::SCHEMA_VERSION;
pub use window::WindowStats;

/// One rollup bucket: an hour, UTC.
pub const BUCKET_MS: i64 = 3_600_000;

/// Where the data lives. A path is an embedded SQLite file; a `postgres://` URL a PostgreSQL
/// database (its `Display` and `Debug` never show the password).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

impl Database {
    /// The SQLite file, for what only makes sense beside a file (the default key file).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(p) => Some(p),
            Database::Postgres(_) => None,
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "{}", p.display()),
            Database::Postgres(url) => write!(f, "{url}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} {message}")]
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
    #[error("result for unknown monitor `{0}`: sync the config first")]
    UnknownMonitor(String),
    #[error(
        "another chanmon daemon{holder} already runs on {db}; stop it first (lock file {lock})"
    )]
    DaemonRunning {
        db: String,
        lock: String,
        holder: String,
    },
    #[error("cannot lock {path}: {message}")]
    Lock { path: String, message: String },
    /// Whatever the backend reported, as text (no driver types cross the boundary).
    #[error("database error: {0}")]
    Backend(String),
    /// The backend reports the database as malformed (for SQLite: `SQLITE_CORRUPT` or
    /// `SQLITE_NOTADB`). A store that has seen this refuses every later write.
    #[error(
        "database {path} is damaged ({detail}); chanmon stops writing to it: run `chanmon verify` to see what is wrong, then restore a backup (README, \"Backup and restore\")"
    )]
    Damaged { path: String, detail: String },
    /// A compare-and-swap write found other bytes than it read (someone wrote meanwhile);
    /// nothing was written.
    #[error("{0} changed while this command ran; nothing was written: run it again")]
    Changed(String),
}

impl StoreError {
    /// The database is damaged: stop writing to it.
    pub fn is_damaged(&self) -> bool {
        matches!(self, StoreError::Damaged { .. })
    }
}

/// A monitor definition as the store keeps it: plain fields plus sealed secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRow {
    pub id: MonitorId,
    pub name: String,
    pub provider: String,
    pub api: String,
    pub endpoint: String,
    pub group: Option<String>,
    pub enabled: bool,
    pub interval_ms: i64,
    /// Primary first.
    pub models: Vec<String>,
    pub sealed_key: Option<Vec<u8>>,
    pub sealed_headers: Option<Vec<u8>>,
    /// Why the key is unusable; `None` when it is fine.
    pub key_error: Option<String>,
}

/// The sealed secrets stored for one monitor, for the key policy to open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSecrets {
    pub sealed_key: Option<Vec<u8>>,
    pub sealed_headers: Option<Vec<u8>>,
}

/// Which sealed secret of its owner a blob is. The key policy (`crate::keys`) binds each
/// seal to its owner and to this slot's purpose. Alert-sink secrets, when they exist, add a
/// variant here and one in the backend's mapping of slots to columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretSlot {
    /// A monitor's API key.
    ApiKey,
    /// A monitor's header values (one sealed JSON object).
    Headers,
}

/// One sealed secret as stored: its owner (a monitor id), its slot and the sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub owner: String,
    pub slot: SecretSlot,
    pub blob: Vec<u8>,
}

/// Replace one sealed secret: written only if the stored bytes are still `old.blob`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    pub old: SealedSecret,
    /// The new sealed bytes; `None` forgets the secret (the slot becomes empty).
    pub new: Option<Vec<u8>>,
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Size of the copy.
    pub bytes: u64,
    /// What the check of the copy found (for SQLite: `integrity_check` said `ok`).
    pub checked: String,
}

/// One hour of one series whose rollup does not equal its raw rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupMismatch {
    pub monitor: String,
    pub model: String,
    /// Start of the hour.
    pub hour: Timestamp,
    /// Checks counted by the rollup and by the raw rows.
    pub rollup_checks: u64,
    pub raw_checks: u64,
}

/// The result of comparing rollups with raw rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupAudit {
    /// Hours compared (every hour with a rollup or raw rows, wholly after the prune watermark).
    pub hours: u64,
    /// Raw rows read.
    pub rows: u64,
    /// The first few disagreements (at most [`RollupAudit::MAX_LISTED`]).
    pub mismatches: Vec<RollupMismatch>,
    /// How many hours disagree in all.
    pub mismatched: u64,
    /// Raw rows are complete from this time on (`None`: never pruned).
    pub raw_from: Option<Timestamp>,
}

impl RollupAudit {
    pub const MAX_LISTED: usize = 20;
}

/// What `export` streams: every row matching, per series (monitor id, then model) oldest first.
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    pub monitor: Option<MonitorId>,
    pub model: Option<String>,
    /// Inclusive lower bound on `started_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on `started_at`.
    pub until: Option<Timestamp>,
}

/// What a sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Rows inserted or whose content changed.
    pub written: usize,
    /// Stored monitors no longer in the config, now disabled.
    pub disabled: usize,
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
    /// Only results probed from this location (`Some("")`: those of no location).
    pub location: Option<String>,
    /// Paging: strictly older than this.
    pub before: Option<Timestamp>,
    /// Newest first, at most this many.
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

/// One line of `chanmon status`: a model of a monitor, from one location when more than one
/// has results.
#[derive(Debug, Clone)]
pub struct StatusRow {
    pub monitor: MonitorId,
    pub name: String,
    pub model: String,
    /// Where this row's results were probed from (`""`: no location named).
    pub location: String,
    /// The model across its locations, set on each of its rows when more than one location
    /// has results (see [`summarize_locations`]).
    pub locations: Option<LocationSummary>,
    pub enabled: bool,
    pub key_unavailable: Option<String>,
    /// The newest result, `None` when never checked.
    pub latest: Option<CheckResult>,
    /// The status tracker's state: since when the current status holds.
    pub tracked: Option<SeriesState>,
    /// One entry per requested window, in order.
    pub windows: Vec<(Duration, WindowStats)>,
    /// The provider's own status page, when the monitor shows one: joined in by the `status`
    /// command from the config (backends leave it `None`; readings are kept per URL).
    pub official: Option<OfficialStatus>,
}

/// How one model of a monitor fares across the locations that probe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LocationSummary {
    /// Locations with results.
    pub total: u32,
    /// Of those, the ones whose newest result is down (`failed` or `error`).
    pub failing: u32,
}

impl LocationSummary {
    /// The combined view in words: `down from 2 of 3 locations`, `up from 3 of 3 locations`.
    pub fn text(&self) -> String {
        if self.failing == 0 {
            format!("up from {0} of {0} locations", self.total)
        } else {
            format!("down from {} of {} locations", self.failing, self.total)
        }
    }
}

/// Sets `locations` on every row of a (monitor, model) that has rows from more than one
/// location. Pure, so every backend's `status` combines the same way; rows of one model are
/// expected to be consecutive.
pub fn summarize_locations(rows: &mut [StatusRow]) {
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len()
            && rows[end].monitor == rows[start].monitor
            && rows[end].model == rows[start].model
        {
            end += 1;
        }
        let group = &mut rows[start..end];
        if group.len() > 1 {
            let failing = group
                .iter()
                .filter(|r| r.latest.as_ref().is_some_and(|l| !l.status.is_up()))
                .count();
            let summary = LocationSummary {
                total: group.len() as u32,
                failing: failing as u32,
            };
            for r in group.iter_mut() {
                r.locations = Some(summary);
            }
        }
        start = end;
    }
}

/// The last `n` results of one series (a model from one location), oldest first: the bar
/// under a `status` row, a monitor page's recent results.
pub fn series_timeline(
    store: &dyn Storage,
    monitor: &MonitorId,
    model: &str,
    location: &str,
    n: usize,
) -> Result<Vec<CheckResult>, StoreError> {
    let mut rows = store.history(&HistoryQuery {
        monitor: Some(monitor.clone()),
        model: Some(model.to_owned()),
        location: Some(location.to_owned()),
        limit: n,
        ..HistoryQuery::default()
    })?;
    rows.reverse();
    Ok(rows)
}

/// One bucket of one series as the status page draws it: checks by status and the latency
/// of the answers, summed from the hourly rollups over an hour or a UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSummary {
    pub monitor: MonitorId,
    pub model: String,
    /// `""`: no location named.
    pub location: String,
    /// Start of the hour or day.
    pub start: Timestamp,
    /// Indexed by `Status::code()`.
    pub by_status: [u64; 4],
    /// Latency of operational and degraded checks (as in the rollups).
    pub latency_sum: u64,
    pub latency_n: u64,
}

/// The tracker's state of one series, with its names.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedSeries {
    pub monitor: MonitorId,
    pub model: String,
    /// `""`: no location named.
    pub location: String,
    pub state: SeriesState,
}

/// The interface to a database. One writer per process (the daemon's writer thread, or a
/// one-shot command); readers open their own.
pub trait Storage: Send {
    /// The sealed secrets of every stored monitor, by id.
    fn stored_secrets(&self) -> Result<HashMap<String, StoredSecrets>, StoreError>;

    /// Upserts the monitors (only rows whose content changed are written) and their series,
    /// and disables (never deletes) stored monitors that are not among them. One transaction.
    fn sync_monitors(&mut self, rows: &[MonitorRow]) -> Result<SyncReport, StoreError>;

    fn monitors(&self) -> Result<Vec<StoredMonitor>, StoreError>;

    /// Writes results, their rollups and the status tracker in one transaction; returns the
    /// status changes that transaction recorded. With an alert plan set, the incidents the
    /// results open or resolve and the outbox rows they owe are written in that transaction
    /// too.
    fn insert_results(&mut self, results: &[CheckResult]) -> Result<Vec<StatusChange>, StoreError>;

    /// The alert rules later [`Storage::insert_results`] decide incidents with (until set,
    /// none are written).
    fn set_alert_plan(&mut self, plan: Arc<crate::alert::AlertPlan>);

    /// Makes this store complete schedule claims for replica `name` (see [`Claims`]): a
    /// result carrying a slot is recorded only when this replica still holds that slot's
    /// lease, and recording it moves the slot on, in the same transaction. Backends without
    /// shared schedules ignore it.
    fn set_replica(&mut self, name: &str) {
        let _ = name;
    }

    /// The replicas heard from since `since` (none for backends without replicas).
    fn replicas(&self, since: Timestamp) -> Result<Vec<ReplicaInfo>, StoreError> {
        let _ = since;
        Ok(Vec::new())
    }

    /// Pending outbox rows due at `now`, oldest first, at most `limit`.
    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Records a delivery attempt of the outbox rows `pks`, in its own commit.
    fn finish_deliveries(
        &mut self,
        pks: &[i64],
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError>;

    /// Queues an event for `sinks` outside any result (chanmon's own trouble), due at once.
    fn enqueue_event(
        &mut self,
        sinks: &[String],
        event: &crate::alert::AlertEvent,
    ) -> Result<(), StoreError>;

    /// Incidents, newest first, with their deliveries.
    fn incidents(&self, q: &IncidentQuery) -> Result<Vec<IncidentRow>, StoreError>;

    /// Outbox rows by state.
    fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Newest first.
    fn history(&self, q: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError>;

    /// Latest result, tracker state and windows per monitor and model (all monitors, or one).
    fn status(
        &self,
        monitor: Option<&MonitorId>,
        now: Timestamp,
        windows: &[Duration],
    ) -> Result<Vec<StatusRow>, StoreError>;

    /// The status tracker's state of every series.
    fn tracker(&self) -> Result<Vec<TrackedSeries>, StoreError>;

    /// Statistics of one monitor's model over [from, to): full hours from rollups, the partial
    /// edges from raw rows (or from rollups where the raw rows were pruned).
    fn window_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError>;

    /// Every row of one model over [from, to), scanned raw: the reference the windows must
    /// equal while raw rows exist.
    fn raw_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError>;

    /// The last `n` results of one model, oldest first.
    fn timeline(
        &self,
        monitor: &MonitorId,
        model: &str,
        n: usize,
    ) -> Result<Vec<CheckResult>, StoreError> {
        let mut rows = self.history(&HistoryQuery {
            monitor: Some(monitor.clone()),
            model: Some(model.to_owned()),
            limit: n,
            ..HistoryQuery::default()
        })?;
        rows.reverse();
        Ok(rows)
    }

    /// Deletes raw rows older than `now - history` (rollups and the tracker are kept) in small
    /// batches, each its own short transaction. Returns the rows deleted (or that would be).
    fn prune(
        &mut self,
        now: Timestamp,
        history: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError>;

    /// Deletes rollup buckets that ended before `now - retention`.
    fn prune_rollups(
        &mut self,
        now: Timestamp,
        retention: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError>;

    /// Recomputes the rollups of every hour whose raw rows are complete, from the raw rows.
    /// Idempotent. Returns the number of buckets written.
    fn rebuild_rollups(&mut self) -> Result<u64, StoreError>;

    /// Gives the space of deleted rows back to the file system.
    fn vacuum(&mut self) -> Result<(), StoreError>;

    /// Replaces the latest reading of one status page (keyed by its URL).
    fn put_official_status(&mut self, s: &OfficialStatus) -> Result<(), StoreError>;

    /// The latest reading of every status page polled, by URL.
    fn official_statuses(&self) -> Result<HashMap<String, OfficialStatus>, StoreError>;

    /// Per series, one [`BucketSummary`] per hour (or per UTC day when `daily`) from `from`
    /// on, read from the rollups: what the status page's day bars and sparklines show. The
    /// work is bounded by series × buckets, never by the raw history.
    fn bucket_summaries(
        &self,
        from: Timestamp,
        daily: bool,
    ) -> Result<Vec<BucketSummary>, StoreError> {
        let _ = (from, daily);
        Err(StoreError::Backend(
            "this backend keeps no bucket summaries".into(),
        ))
    }

    /// Every sealed secret stored (API keys, header values), by owner and slot.
    fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError>;

    /// Swaps sealed bytes in one transaction: each secret is replaced only if it still holds
    /// the bytes it was read with; if any does not, nothing is written
    /// ([`StoreError::Changed`]). The store never opens what it swaps.
    fn reseal(&mut self, changes: &[Reseal]) -> Result<(), StoreError>;

    /// Writes one consistent snapshot of the whole database to `dest` without blocking the
    /// writer, checks the copy, and only then puts it in place: `dest` is replaced only when
    /// `overwrite` is set, and is never the database itself. A backend that cannot make a file
    /// snapshot (a server database) returns an error naming its own tool (`pg_dump`) instead.
    fn backup_to(&self, dest: &Path, overwrite: bool) -> Result<BackupReport, StoreError>;

    /// The backend's own consistency check (SQLite: `integrity_check`, or `quick_check` when
    /// `quick`): the problems found, empty when sound.
    fn check_integrity(&self, quick: bool) -> Result<Vec<String>, StoreError>;

    /// Compares the rollups with the raw rows for every hour wholly after the prune watermark,
    /// in one read snapshot.
    fn audit_rollups(&self) -> Result<RollupAudit, StoreError>;

    /// Streams every row matching `q` to `each` in one read snapshot, in constant memory: per
    /// series (monitor id, then model) oldest first. `each` may stop early. Returns the rows
    /// handed over.
    fn export(
        &self,
        q: &ExportQuery,
        each: &mut dyn FnMut(CheckResult) -> std::ops::ControlFlow<()>,
    ) -> Result<u64, StoreError>;
}

/// How [`open`] treats a database that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create and migrate it (commands that write: `run`, `check`).
    Create,
    /// A missing database is an error, not a new one (commands that read).
    Existing,
    /// Read only, never migrated, never written (`verify`, `backup`): the file stays exactly
    /// as it is. An older schema is read as it is.
    ReadOnly,
}

/// Opens (and migrates) the database.
pub fn open(db: &Database, mode: OpenMode) -> Result<Box<dyn Storage>, StoreError> {
    match db {
        Database::Sqlite(path) => Ok(Box::new(guard::DamageGuard::new(
            sqlite::SqliteStore::open(path, mode)?,
            db.to_string(),
        ))),
        Database::Postgres(url) => Ok(Box::new(guard::DamageGuard::new(
            postgres::PgStore::open(url, mode)?,
            db.to_string(),
        ))),
    }
}

/// Held for the daemon's whole life: one daemon per database.
pub struct DaemonLock {
    _guard: Box<dyn Send + Sync>,
}

/// Takes the one-daemon-per-database lock exclusively (what must run alone: `rekey`),
/// naming the holder when it is taken.
pub fn daemon_lock(db: &Database) -> Result<DaemonLock, StoreError> {
    match db {
        Database::Sqlite(path) => Ok(DaemonLock {
            _guard: Box::new(sqlite::locks::DaemonLock::acquire(path)?),
        }),
        // A session advisory lock on a connection held for the daemon's life.
        Database::Postgres(url) => Ok(DaemonLock {
            _guard: Box::new(postgres::locks::DaemonLock::acquire(url, false)?),
        }),
    }
}

/// The lock a daemon holds for its life. SQLite: the one-daemon lock. PostgreSQL: the same
/// lock taken shared, so replicas run together (they share the work through
/// [`Claims`]) while `rekey`, which takes it exclusively, runs alone.
pub fn replica_lock(db: &Database) -> Result<DaemonLock, StoreError> {
    match db {
        Database::Sqlite(_) => daemon_lock(db),
        Database::Postgres(url) => Ok(DaemonLock {
            _guard: Box::new(postgres::locks::DaemonLock::acquire(url, true)?),
        }),
    }
}

/// The due checks of a database several daemons share: `None` for SQLite (one daemon
/// schedules on its own), a connection of its own for PostgreSQL.
pub fn claims(db: &Database, me: &ReplicaReport) -> Result<Option<Box<dyn Claims>>, StoreError> {
    match db {
        Database::Sqlite(_) => Ok(None),
        Database::Postgres(url) => Ok(Some(Box::new(postgres::PgClaims::open(url, me)?))),
    }
}

/// One (monitor, location) the schedule holds: `location` is `""` for a monitor any replica
/// probes, else one of its `locations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    pub monitor: MonitorId,
    pub location: String,
    pub interval_ms: i64,
    /// How long a claim holds the check: past it, another replica may run the slot.
    pub lease_ms: i64,
}

/// A due check leased to this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub monitor: MonitorId,
    /// The schedule row's location (`""`: any replica).
    pub location: String,
    /// The slot the check is due for: what its results record as `due_at`.
    pub slot: Timestamp,
    pub lease_until: Timestamp,
}

/// What a replica says about itself in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaReport {
    /// Unique per process: host and pid.
    pub name: String,
    pub location: String,
    /// SHA-256 (hex, 16 digits) of the config file's bytes.
    pub config_hash: String,
    pub version: String,
}

/// A replica as the database last heard from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaInfo {
    pub name: String,
    pub location: String,
    pub config_hash: String,
    pub version: String,
    pub seen_at: Timestamp,
}

/// How long a replica counts as alive after its last heartbeat.
pub const REPLICA_ALIVE_MS: i64 = 60_000;

/// How far the first checks of newly scheduled monitors are spread.
const FIRST_SPREAD_MS: i64 = 60_000;

/// The first slot of a monitor newly put on a shared schedule: within a minute (or its
/// interval, if shorter), at an offset derived from its id, so a fleet's first checks spread
/// out instead of starting together, and an hourly monitor is not first checked an hour
/// later. Later slots follow at whole intervals (the schedule row holds them).
pub fn first_slot(monitor: &str, interval_ms: i64, now: Timestamp) -> Timestamp {
    let spread = interval_ms.clamp(1, FIRST_SPREAD_MS);
    Timestamp(now.millis() + (stable_hash(monitor) % spread as u64) as i64)
}

/// A 64-bit FNV-1a hash of `s`, written out here rather than taken from std's hasher so that
/// every chanmon version and every process agrees on it (probe-lock bytes, first slots).
pub(crate) fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Several daemons sharing one schedule (PostgreSQL): each due check is claimed by exactly
/// one replica, and completed in the transaction that records its results
/// ([`Storage::set_replica`]).
pub trait Claims: Send {
    /// Makes the schedule hold exactly `entries` (new rows wait for their first slot; rows
    /// whose interval changed move to the new grid; rows no longer wanted go).
    fn sync_schedule(
        &mut self,
        entries: &[ScheduleEntry],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Leases at most `limit` due checks to this replica: rows of no location, and rows of
    /// this replica's location.
    fn claim(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Claim>, StoreError>;

    /// Records this replica as alive (with its config hash, which a reload may change) and
    /// returns every replica alive now, this one included.
    fn heartbeat(
        &mut self,
        me: &ReplicaReport,
        now: Timestamp,
    ) -> Result<Vec<ReplicaInfo>, StoreError>;
}

/// Who holds the daemon lock, without taking it: `None` when no daemon runs, else the
/// holder's pid as recorded (empty when unknown).
pub fn daemon_lock_holder(db: &Database) -> Result<Option<String>, StoreError> {
    match db {
        Database::Sqlite(path) => sqlite::locks::DaemonLock::holder(path),
        Database::Postgres(url) => postgres::locks::DaemonLock::holder(url),
    }
}

/// Held while one monitor is being probed.
pub struct ProbeGuard {
    _guard: Box<dyn Send + Sync>,
}

impl ProbeGuard {
    pub(crate) fn new(guard: impl Send + Sync + 'static) -> ProbeGuard {
        ProbeGuard {
            _guard: Box::new(guard),
        }
    }
}

/// One probe per monitor at a time, across processes: a shell `chanmon check` never overlaps
/// the daemon's probe of the same monitor.
pub trait ProbeLocks: Send + Sync {
    /// `None` when another process (or task) is probing this monitor now.
    fn try_lock(&self, id: &MonitorId) -> Result<Option<ProbeGuard>, StoreError>;
    /// Waits until the monitor is free. Blocks: call from a blocking thread.
    fn lock(&self, id: &MonitorId) -> Result<ProbeGuard, StoreError>;
}

/// The probe locks of a database.
pub fn probe_locks(db: &Database) -> Arc<dyn ProbeLocks> {
    match db {
        Database::Sqlite(path) => Arc::new(sqlite::locks::FileProbeLocks::new(path)),
        // In-process only (see `postgres::locks`).
        Database::Postgres(_) => Arc::new(postgres::locks::LocalProbeLocks::default()),
    }
}

/// Copies the SQLite database `from` into the empty PostgreSQL database `to` in one
/// transaction (keys, sealed secrets, history, rollups, tracker, incidents, outbox unchanged)
/// and compares the row count of every table before committing. `from` is migrated to the
/// current schema first. The caller holds `from`'s daemon lock.
pub fn copy_to_postgres(from: &Database, to: &Database) -> Result<Vec<TableCount>, StoreError> {
    let (Database::Sqlite(path), Database::Postgres(url)) = (from, to) else {
        return Err(StoreError::Backend(format!(
            "copying {from} to {to}: only a SQLite database into PostgreSQL is supported"
        )));
    };
    drop(open(from, OpenMode::Existing)?);
    postgres::import_sqlite(path, url)
}

#[cfg(test)]
mod location_tests {
    use super::*;

    fn row(monitor: &str, model: &str, location: &str, status: Option<Status>) -> StatusRow {
        let id = MonitorId::parse(monitor).unwrap();
        StatusRow {
            latest: status.map(|s| CheckResult {
                status: s,
                location: location.into(),
                ..CheckResult::error(
                    id.clone(),
                    model.into(),
                    Timestamp(1),
                    crate::model::Kind::Ok,
                    String::new(),
                )
            }),
            monitor: id,
            name: monitor.into(),
            model: model.into(),
            location: location.into(),
            locations: None,
            enabled: true,
            key_unavailable: None,
            tracked: None,
            windows: Vec::new(),
            official: None,
        }
    }

    #[test]
    fn the_combined_view_counts_each_models_failing_locations() {
        let mut rows = vec![
            row("m", "a", "x", Some(Status::Error)),
            row("m", "a", "y", Some(Status::Operational)),
            row("m", "a", "z", Some(Status::Failed)),
            row("m", "b", "", Some(Status::Error)),
            row("n", "a", "x", Some(Status::Degraded)),
            row("n", "a", "y", None),
        ];
        summarize_locations(&mut rows);
        let three = LocationSummary {
            total: 3,
            failing: 2,
        };
        assert!(rows[..3].iter().all(|r| r.locations == Some(three)));
        assert_eq!(three.text(), "down from 2 of 3 locations");
        assert_eq!(rows[3].locations, None, "one location: no combined view");
        assert_eq!(
            rows[4].locations.map(|l| l.text()).as_deref(),
            Some("up from 2 of 2 locations")
        );
    }
}
