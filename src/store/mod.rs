//! SQLite storage: the only module that writes SQL.
//!
//! WAL, `synchronous=NORMAL`, a busy timeout, migrations by `PRAGMA user_version`. One writer
//! per process (the daemon's writer thread); readers open their own connections. Every write
//! is a short `BEGIN IMMEDIATE` transaction, so `prune`, `check` and the daemon can share the
//! file without "database is locked" failures.
//!
//! Layout: `history` rows are keyed by (series, started_at) where a series is one model of one
//! monitor; `rollups` hold hourly aggregates written in the same transaction as their rows, so
//! windows can be answered from rollups plus the raw rows at the edges (see `window`).

mod hist;
mod schema;
mod window;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::config::{KeyState, Monitor, MonitorConfig};
use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp};
use crate::secret::MasterKey;

pub use hist::Histogram;
pub use schema::SCHEMA_VERSION;
pub use window::WindowStats;

/// One rollup bucket: an hour, UTC.
pub const BUCKET_MS: i64 = 3_600_000;
/// Rows deleted per prune transaction: small, so a concurrent writer never waits long.
const PRUNE_BATCH: i64 = 2_000;

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
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A connection to the database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// (monitor id, model) → series pk; only committed rows are cached.
    series: HashMap<(String, String), i64>,
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub history_rows: u64,
    pub rollup_rows: u64,
}

/// One line of `chanmon status`: a model of a monitor.
#[derive(Debug, Clone)]
pub struct StatusRow {
    pub monitor: MonitorId,
    pub name: String,
    pub model: String,
    pub enabled: bool,
    pub key_unavailable: Option<String>,
    /// The newest result, `None` when never checked.
    pub latest: Option<CheckResult>,
    /// One entry per requested window, in order.
    pub windows: Vec<(Duration, WindowStats)>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database. For commands that write.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::wrap(schema::open(path, true)?, path))
    }

    /// Opens an existing database; a missing file is an error, not a new database.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::wrap(schema::open(path, false)?, path))
    }

    fn wrap(conn: Connection, path: &Path) -> Store {
        Store {
            conn,
            path: path.to_owned(),
            series: HashMap::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let now = Timestamp::now().millis();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut stored: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        {
            let mut st = tx.prepare("SELECT id, sealed_key FROM monitors")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
            for row in rows {
                let (id, blob) = row?;
                stored.insert(id, blob);
            }
        }
        let mut out = Vec::with_capacity(monitors.len());
        for m in monitors {
            let id = m.id.as_str();
            let (sealed, state) = match &m.api_key {
                Some(k) => (
                    Some(key.seal_str(id, "api_key", k)),
                    KeyState::Ready(k.clone()),
                ),
                None => match stored.get(id).cloned().flatten() {
                    Some(blob) => match key.open_str(id, "api_key", &blob) {
                        Ok(s) => (Some(blob), KeyState::Ready(s)),
                        Err(e) => (
                            Some(blob),
                            KeyState::Unavailable(format!(
                                "{}the stored key cannot be used: {e} (did CHANMON_MASTER_KEY or the key file change?)",
                                env_note(m)
                            )),
                        ),
                    },
                    None => (
                        None,
                        KeyState::Unavailable(format!(
                            "{}no key is stored in the database",
                            env_note(m)
                        )),
                    ),
                },
            };
            let headers = if m.headers.is_empty() {
                None
            } else {
                let obj: serde_json::Map<String, serde_json::Value> = m
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.expose().to_owned())))
                    .collect();
                let plain = zeroize::Zeroizing::new(serde_json::Value::Object(obj).to_string());
                Some(key.seal(id, "headers", plain.as_bytes()))
            };
            let key_error = match &state {
                KeyState::Ready(_) => None,
                KeyState::Unavailable(why) => Some(why.clone()),
            };
            let models: Vec<&str> = m.models().collect();
            tx.execute(
                "INSERT INTO monitors (id, name, provider, api, endpoint, grp, enabled, interval_ms,
                     models, sealed_key, sealed_headers, key_error, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, provider = excluded.provider,
                     api = excluded.api, endpoint = excluded.endpoint, grp = excluded.grp,
                     enabled = excluded.enabled, interval_ms = excluded.interval_ms,
                     models = excluded.models, sealed_key = excluded.sealed_key,
                     sealed_headers = excluded.sealed_headers, key_error = excluded.key_error,
                     updated_at = excluded.updated_at",
                params![
                    id,
                    m.name,
                    m.provider.as_str(),
                    m.api.as_str(),
                    m.endpoint.as_str(),
                    m.group,
                    m.enabled,
                    m.interval.as_millis() as i64,
                    serde_json::to_string(&models).unwrap_or_else(|_| "[]".into()),
                    sealed,
                    headers,
                    key_error,
                    now,
                ],
            )?;
            for model in &models {
                tx.execute(
                    "INSERT OR IGNORE INTO series (monitor, model)
                     SELECT pk, ?2 FROM monitors WHERE id = ?1",
                    params![id, model],
                )?;
            }
            out.push(Monitor {
                config: m.clone(),
                key: state,
            });
        }
        for id in stored.keys() {
            if !monitors.iter().any(|m| m.id.as_str() == id) {
                tx.execute(
                    "UPDATE monitors SET enabled = 0, updated_at = ?2 WHERE id = ?1 AND enabled = 1",
                    params![id, now],
                )?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    pub fn monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, name, provider, enabled, models, key_error FROM monitors ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, provider, enabled, models, key_error) = row?;
            // Ids in the database were validated when written; skip anything foreign.
            let Ok(id) = MonitorId::parse(&id) else {
                continue;
            };
            out.push(StoredMonitor {
                id,
                name,
                provider,
                enabled,
                models: serde_json::from_str(&models).unwrap_or_default(),
                key_unavailable: key_error,
            });
        }
        Ok(out)
    }

    /// Writes results (and their rollups) in one transaction.
    pub fn insert_results(&mut self, results: &[CheckResult]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut new_series: HashMap<(String, String), i64> = HashMap::new();
        let mut deltas: BTreeMap<(i64, i64), window::Rollup> = BTreeMap::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO history
                 (series, started_at, status, kind, http, ttft_ms, latency_ms, ping_ms, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for r in results {
                let k = (r.monitor.as_str().to_owned(), r.model.clone());
                let series = match self.series.get(&k).or_else(|| new_series.get(&k)) {
                    Some(s) => *s,
                    None => {
                        let s = series_pk(&tx, r.monitor.as_str(), &r.model)?;
                        new_series.insert(k, s);
                        s
                    }
                };
                let message = (!r.message.is_empty()).then_some(r.message.as_str());
                // Two results of one series in the same millisecond: nudge the later one.
                let mut at = r.started_at.millis();
                loop {
                    let n = insert.execute(params![
                        series,
                        at,
                        r.status.code(),
                        r.kind.code(),
                        r.http_status,
                        r.ttft_ms,
                        r.latency_ms,
                        r.ping_ms,
                        message,
                    ])?;
                    if n == 1 {
                        break;
                    }
                    at += 1;
                }
                deltas
                    .entry((series, at.div_euclid(BUCKET_MS)))
                    .or_default()
                    .add(r.status, r.kind, r.latency_ms, r.ttft_ms);
            }
        }
        for ((series, bucket), d) in deltas {
            window::merge_rollup(&tx, series, bucket, &d)?;
        }
        tx.commit()?;
        self.series.extend(new_series);
        Ok(())
    }

    /// Newest first.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError> {
        let series = self.series_matching(q.monitor.as_ref(), q.model.as_deref())?;
        let lo = q.since.map_or(i64::MIN, |t| t.millis());
        let hi = match (q.until, q.before) {
            (Some(a), Some(b)) => a.millis().min(b.millis()),
            (Some(a), None) => a.millis(),
            (None, Some(b)) => b.millis(),
            (None, None) => i64::MAX,
        };
        let limit = q.limit.max(1) as i64;
        let status = q.status.map(|s| s.code() as i64);
        let mut st = self.conn.prepare_cached(
            "SELECT started_at, status, kind, http, ttft_ms, latency_ms, ping_ms, message
             FROM history
             WHERE series = ?1 AND started_at >= ?2 AND started_at < ?3
               AND (?4 IS NULL OR status = ?4)
             ORDER BY started_at DESC LIMIT ?5",
        )?;
        let mut out = Vec::new();
        for (pk, monitor, model) in series {
            let rows = st.query_map(params![pk, lo, hi, status, limit], |r| {
                row_to_result(r, &monitor, &model)
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        out.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| a.monitor.cmp(&b.monitor))
                .then_with(|| a.model.cmp(&b.model))
        });
        out.truncate(q.limit.max(1));
        Ok(out)
    }

    /// Series (pk, monitor id, model) matching optional filters, ordered by monitor and model.
    fn series_matching(
        &self,
        monitor: Option<&MonitorId>,
        model: Option<&str>,
    ) -> Result<Vec<(i64, MonitorId, String)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT s.pk, m.id, s.model FROM series s JOIN monitors m ON m.pk = s.monitor
             WHERE (?1 IS NULL OR m.id = ?1) AND (?2 IS NULL OR s.model = ?2)
             ORDER BY m.id, s.pk",
        )?;
        let rows = st.query_map(params![monitor.map(|m| m.as_str()), model], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (pk, id, model) = row?;
            if let Ok(id) = MonitorId::parse(&id) {
                out.push((pk, id, model));
            }
        }
        Ok(out)
    }

    /// Statistics of one monitor's model over [from, to): full hours from rollups, the partial
    /// edges from raw rows (or from rollups where the raw rows were pruned).
    pub fn window_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        match self.series_of(monitor, model)? {
            Some(pk) => window::stats(&self.conn, pk, from.millis(), to.millis(), self.raw_from()?),
            None => Ok(WindowStats::default()),
        }
    }

    /// Every row of one model over [from, to), scanned raw: the reference the windows must
    /// equal while raw rows exist (used by the tests).
    pub fn raw_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        match self.series_of(monitor, model)? {
            Some(pk) => window::raw(&self.conn, pk, from.millis(), to.millis()),
            None => Ok(WindowStats::default()),
        }
    }

    fn series_of(&self, monitor: &MonitorId, model: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .series_matching(Some(monitor), Some(model))?
            .first()
            .map(|(pk, _, _)| *pk))
    }

    /// Raw rows are complete from this time on (everything older may have been pruned).
    fn raw_from(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'raw_from'", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(i64::MIN))
    }

    /// Latest result and windows per monitor and model (all monitors, or one).
    pub fn status(
        &self,
        monitor: Option<&MonitorId>,
        now: Timestamp,
        windows: &[Duration],
    ) -> Result<Vec<StatusRow>, StoreError> {
        let raw_from = self.raw_from()?;
        let monitors: Vec<StoredMonitor> = self
            .monitors()?
            .into_iter()
            .filter(|m| monitor.is_none_or(|id| &m.id == id))
            .collect();
        let mut latest_st = self.conn.prepare_cached(
            "SELECT started_at, status, kind, http, ttft_ms, latency_ms, ping_ms, message
             FROM history WHERE series = ?1 ORDER BY started_at DESC LIMIT 1",
        )?;
        let mut out = Vec::new();
        for m in monitors {
            let series = self.series_matching(Some(&m.id), None)?;
            let mut models = m.models.clone();
            if !m.enabled || models.is_empty() {
                for (_, _, model) in &series {
                    if !models.contains(model) {
                        models.push(model.clone());
                    }
                }
            }
            for model in models {
                let pk = series.iter().find(|(_, _, s)| *s == model).map(|s| s.0);
                let latest = match pk {
                    Some(pk) => latest_st
                        .query_row(params![pk], |r| row_to_result(r, &m.id, &model))
                        .optional()?,
                    None => None,
                };
                let mut ws = Vec::with_capacity(windows.len());
                for w in windows {
                    let from = now.saturating_sub(*w).millis();
                    let stats = match pk {
                        Some(pk) => window::stats(&self.conn, pk, from, now.millis(), raw_from)?,
                        None => WindowStats::default(),
                    };
                    ws.push((*w, stats));
                }
                out.push(StatusRow {
                    monitor: m.id.clone(),
                    name: m.name.clone(),
                    model,
                    enabled: m.enabled,
                    key_unavailable: m.key_unavailable.clone(),
                    latest,
                    windows: ws,
                });
            }
        }
        Ok(out)
    }

    /// The last `n` results of one model, oldest first.
    pub fn timeline(
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

    /// Deletes raw rows older than `now - history` (rollups kept) in small batches, each its
    /// own short transaction. Rollups always cover what is deleted: they are written with the
    /// rows.
    pub fn prune(
        &mut self,
        now: Timestamp,
        history: Duration,
        dry_run: bool,
    ) -> Result<PruneReport, StoreError> {
        let cutoff = now.saturating_sub(history).millis();
        if dry_run {
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM history WHERE series IN (SELECT pk FROM series) AND started_at < ?1",
                params![cutoff],
                |r| r.get(0),
            )?;
            return Ok(PruneReport {
                history_rows: n as u64,
                rollup_rows: 0,
            });
        }
        {
            // Record first: from now on windows must not expect raw rows before the cutoff.
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('raw_from', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                params![cutoff],
            )?;
            tx.commit()?;
        }
        let series: Vec<i64> = {
            let mut st = self.conn.prepare("SELECT pk FROM series")?;
            st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let mut deleted = 0u64;
        for s in series {
            loop {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                // The batch ends at the PRUNE_BATCH-th oldest row below the cutoff, if any.
                let bound: Option<i64> = tx
                    .query_row(
                        "SELECT started_at FROM history WHERE series = ?1 AND started_at < ?2
                         ORDER BY started_at LIMIT 1 OFFSET ?3",
                        params![s, cutoff, PRUNE_BATCH - 1],
                        |r| r.get(0),
                    )
                    .optional()?;
                let n = match bound {
                    Some(b) => tx.execute(
                        "DELETE FROM history WHERE series = ?1 AND started_at <= ?2",
                        params![s, b],
                    )?,
                    None => tx.execute(
                        "DELETE FROM history WHERE series = ?1 AND started_at < ?2",
                        params![s, cutoff],
                    )?,
                };
                tx.commit()?;
                deleted += n as u64;
                // Checkpoint here, off the writer's path: otherwise the daemon's next commit
                // finds a WAL full of deletions and pays for the checkpoint itself.
                self.conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
                if bound.is_none() {
                    break;
                }
            }
        }
        Ok(PruneReport {
            history_rows: deleted,
            rollup_rows: 0,
        })
    }

    /// Deletes rollup buckets that ended before `now - retention`.
    pub fn prune_rollups(
        &mut self,
        now: Timestamp,
        retention: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let bucket = now.saturating_sub(retention).millis().div_euclid(BUCKET_MS);
        if dry_run {
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM rollups WHERE bucket < ?1",
                params![bucket],
                |r| r.get(0),
            )?;
            return Ok(n as u64);
        }
        let mut total = 0u64;
        loop {
            let n = self.conn.execute(
                "DELETE FROM rollups WHERE (series, bucket) IN
                   (SELECT series, bucket FROM rollups WHERE bucket < ?1 LIMIT ?2)",
                params![bucket, PRUNE_BATCH],
            )?;
            total += n as u64;
            if n < PRUNE_BATCH as usize {
                break;
            }
        }
        Ok(total)
    }

    /// Recomputes the rollups of every hour whose raw rows are complete (after the last prune),
    /// from the raw rows. Idempotent. Returns the number of buckets written.
    pub fn rebuild_rollups(&mut self) -> Result<u64, StoreError> {
        let raw_from = self.raw_from()?;
        let first_bucket = if raw_from == i64::MIN {
            i64::MIN
        } else {
            raw_from.div_euclid(BUCKET_MS) + 1
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM rollups WHERE bucket >= ?1",
            params![first_bucket],
        )?;
        let from_ms = first_bucket.saturating_mul(BUCKET_MS);
        let mut deltas: BTreeMap<(i64, i64), window::Rollup> = BTreeMap::new();
        {
            let mut st = tx.prepare(
                "SELECT series, started_at, status, kind, ttft_ms, latency_ms FROM history WHERE started_at >= ?1",
            )?;
            let mut rows = st.query(params![from_ms])?;
            while let Some(r) = rows.next()? {
                let status = Status::from_code(r.get(2)?).unwrap_or(Status::Error);
                let kind = Kind::from_code(r.get(3)?).unwrap_or(Kind::Internal);
                let at: i64 = r.get(1)?;
                deltas
                    .entry((r.get(0)?, at.div_euclid(BUCKET_MS)))
                    .or_default()
                    .add(status, kind, r.get(5)?, r.get(4)?);
            }
        }
        let n = deltas.len() as u64;
        for ((series, bucket), d) in deltas {
            window::merge_rollup(&tx, series, bucket, &d)?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Rewrites the file to reclaim the space of deleted rows.
    pub fn vacuum(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }
}

fn env_note(m: &MonitorConfig) -> String {
    match &m.api_key_env {
        Some(v) => format!("api_key_env {v} is unset and "),
        None => String::new(),
    }
}

fn series_pk(
    tx: &rusqlite::Transaction<'_>,
    monitor: &str,
    model: &str,
) -> Result<i64, StoreError> {
    let mpk: i64 = tx
        .query_row(
            "SELECT pk FROM monitors WHERE id = ?1",
            params![monitor],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::UnknownMonitor(monitor.to_owned()))?;
    tx.execute(
        "INSERT OR IGNORE INTO series (monitor, model) VALUES (?1, ?2)",
        params![mpk, model],
    )?;
    Ok(tx.query_row(
        "SELECT pk FROM series WHERE monitor = ?1 AND model = ?2",
        params![mpk, model],
        |r| r.get(0),
    )?)
}

fn row_to_result(
    r: &rusqlite::Row<'_>,
    monitor: &MonitorId,
    model: &str,
) -> rusqlite::Result<CheckResult> {
    let status = Status::from_code(r.get(1)?).unwrap_or(Status::Error);
    Ok(CheckResult {
        monitor: monitor.clone(),
        model: model.to_owned(),
        started_at: Timestamp(r.get(0)?),
        status,
        kind: Kind::from_code(r.get(2)?).unwrap_or(Kind::Internal),
        http_status: r.get(3)?,
        ttft_ms: r.get(4)?,
        latency_ms: r.get(5)?,
        ping_ms: r.get(6)?,
        message: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
    })
}
