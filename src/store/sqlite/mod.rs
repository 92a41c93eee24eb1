//! The SQLite backend: the embedded default, and the only code that writes SQL for it.
//!
//! WAL, `synchronous=NORMAL`, a busy timeout, migrations by `PRAGMA user_version`. One writer
//! per process (the daemon's writer thread); readers open their own connections. Every write
//! is a short `BEGIN IMMEDIATE` transaction, so `prune`, `check` and the daemon can share the
//! file without "database is locked" failures.
//!
//! Layout: `history` rows are keyed by (series, started_at) where a series is one model of one
//! monitor; `rollups` hold hourly aggregates and `tracker` the status tracker's state, both
//! written in the same transaction as their rows, so windows can be answered from rollups plus
//! the raw rows at the edges (see `store::window`) and a restart remembers every status.

mod alerts;
mod care;
pub(super) mod locks;
mod rollups;
mod schema;
mod write;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp};
use crate::official::{Indicator, OfficialStatus};
use crate::pipeline::tracker::StatusChange;
use crate::store::{
    BackupReport, ExportQuery, HistoryQuery, MonitorRow, OpenMode, Reseal, RollupAudit,
    SealedSecret, StatusRow, Storage, StoreError, StoredMonitor, StoredSecrets, SyncReport,
    TrackedSeries, WindowStats,
};

pub use schema::SCHEMA_VERSION;

/// Errors from the driver cross the boundary as text; a malformed database as
/// [`StoreError::Damaged`] (the store's guard names the file).
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                StoreError::Damaged {
                    path: String::new(),
                    detail: format!("SQLite says: {e}"),
                }
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

/// A connection to a SQLite database.
pub(crate) struct SqliteStore {
    conn: Connection,
    /// The database file (backups are written beside other files, never over it).
    path: PathBuf,
    /// (monitor id, model, location) → series pk; only committed rows are cached.
    series: HashMap<write::SeriesKey, i64>,
    /// The alert rules incidents are decided with; none: no incidents are written.
    alerts: Option<std::sync::Arc<crate::alert::AlertPlan>>,
}

impl SqliteStore {
    /// Opens (and, unless read-only, migrates) the database.
    pub(crate) fn open(path: &Path, mode: OpenMode) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            conn: schema::open(path, mode)?,
            path: path.to_owned(),
            series: HashMap::new(),
            alerts: None,
        })
    }

    /// Series matching optional filters, ordered by monitor, then as created (a monitor's
    /// models in config order, each model's locations as first seen).
    fn series_matching(
        &self,
        monitor: Option<&MonitorId>,
        model: Option<&str>,
        location: Option<&str>,
    ) -> Result<Vec<SeriesRef>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT s.pk, m.id, s.model, s.location FROM series s JOIN monitors m ON m.pk = s.monitor
             WHERE (?1 IS NULL OR m.id = ?1) AND (?2 IS NULL OR s.model = ?2)
               AND (?3 IS NULL OR s.location = ?3)
             ORDER BY m.id, s.pk",
        )?;
        let rows = st.query_map(params![monitor.map(|m| m.as_str()), model, location], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (pk, id, model, location) = row?;
            if let Ok(monitor) = MonitorId::parse(&id) {
                out.push(SeriesRef {
                    pk,
                    monitor,
                    model,
                    location,
                });
            }
        }
        Ok(out)
    }

    /// The series a (monitor, model) question without a location answers from: the one of
    /// no location when it has rows, else the first location's.
    fn series_of(&self, monitor: &MonitorId, model: &str) -> Result<Option<i64>, StoreError> {
        let all = self.series_matching(Some(monitor), Some(model), None)?;
        let mut has_rows = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tracker WHERE series = ?1)")?;
        for s in &all {
            if has_rows.query_row(params![s.pk], |r| r.get::<_, bool>(0))? {
                return Ok(Some(s.pk));
            }
        }
        Ok(all.first().map(|s| s.pk))
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

    /// The rows of one `status` monitor: its models (configured, else those with history),
    /// one row per location with results (one row when at most one location has any).
    fn status_rows(
        &self,
        m: StoredMonitor,
        now: Timestamp,
        windows: &[Duration],
        raw_from: i64,
    ) -> Result<Vec<StatusRow>, StoreError> {
        let at = StatusAt {
            now,
            windows,
            raw_from,
        };
        let series = self.series_matching(Some(&m.id), None, None)?;
        let mut models = m.models.clone();
        if !m.enabled || models.is_empty() {
            for s in &series {
                if !models.contains(&s.model) {
                    models.push(s.model.clone());
                }
            }
        }
        let mut out = Vec::with_capacity(models.len());
        for model in models {
            let mine: Vec<&SeriesRef> = series.iter().filter(|s| s.model == model).collect();
            let mut checked = Vec::with_capacity(mine.len());
            for s in &mine {
                if let Some(state) = write::load_state(&self.conn, s.pk)? {
                    checked.push((*s, Some(state)));
                }
            }
            if checked.is_empty() {
                // Never checked: one row, of the series with no location when there is one.
                let first = mine.iter().find(|s| s.location.is_empty()).or(mine.first());
                checked.push(match first {
                    Some(s) => (*s, None),
                    None => {
                        out.push(self.status_row(&m, &model, None, None, &at)?);
                        continue;
                    }
                });
            }
            for (s, state) in checked {
                out.push(self.status_row(&m, &model, Some(s), state, &at)?);
            }
        }
        crate::store::summarize_locations(&mut out);
        Ok(out)
    }

    /// One status row: a series' newest result, tracker state and windows.
    fn status_row(
        &self,
        m: &StoredMonitor,
        model: &str,
        series: Option<&SeriesRef>,
        tracked: Option<crate::pipeline::tracker::SeriesState>,
        at: &StatusAt<'_>,
    ) -> Result<StatusRow, StoreError> {
        let StatusAt {
            now,
            windows,
            raw_from,
        } = *at;
        let mut latest_st = self.conn.prepare_cached(&format!(
            "SELECT {RESULT_COLS}
             FROM history WHERE series = ?1 ORDER BY started_at DESC LIMIT 1"
        ))?;
        let latest = match series {
            Some(s) => latest_st
                .query_row(params![s.pk], |r| row_to_result(r, s))
                .optional()?,
            None => None,
        };
        let mut ws = Vec::with_capacity(windows.len());
        for w in windows {
            let from = now.saturating_sub(*w).millis();
            let stats = match series {
                Some(s) => rollups::stats(&self.conn, s.pk, from, now.millis(), raw_from)?,
                None => WindowStats::default(),
            };
            ws.push((*w, stats));
        }
        Ok(StatusRow {
            official: None,
            monitor: m.id.clone(),
            name: m.name.clone(),
            model: model.to_owned(),
            location: series.map(|s| s.location.clone()).unwrap_or_default(),
            locations: None,
            enabled: m.enabled,
            key_unavailable: m.key_unavailable.clone(),
            latest,
            tracked,
            windows: ws,
        })
    }
}

/// What every row of one `status` call is computed at.
#[derive(Clone, Copy)]
struct StatusAt<'a> {
    now: Timestamp,
    windows: &'a [Duration],
    /// Raw rows are complete from here on (see `raw_from`).
    raw_from: i64,
}

/// One series with its names.
struct SeriesRef {
    pk: i64,
    monitor: MonitorId,
    model: String,
    location: String,
}

impl Storage for SqliteStore {
    fn set_alert_plan(&mut self, plan: std::sync::Arc<crate::alert::AlertPlan>) {
        self.alerts = Some(plan);
    }

    fn due_deliveries(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<crate::store::Delivery>, StoreError> {
        alerts::due(&self.conn, now, limit)
    }

    fn finish_deliveries(
        &mut self,
        pks: &[i64],
        outcome: &crate::store::DeliveryOutcome,
    ) -> Result<(), StoreError> {
        alerts::finish(&mut self.conn, pks, outcome)
    }

    fn enqueue_event(
        &mut self,
        sinks: &[String],
        event: &crate::alert::AlertEvent,
    ) -> Result<(), StoreError> {
        alerts::enqueue_now(&mut self.conn, sinks, event)
    }

    fn incidents(
        &self,
        q: &crate::store::IncidentQuery,
    ) -> Result<Vec<crate::store::IncidentRow>, StoreError> {
        alerts::incidents(&self.conn, q)
    }

    fn outbox_counts(&self) -> Result<crate::store::OutboxCounts, StoreError> {
        alerts::counts(&self.conn)
    }

    fn stored_secrets(&self) -> Result<HashMap<String, StoredSecrets>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, sealed_key, sealed_headers FROM monitors")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                StoredSecrets {
                    sealed_key: r.get(1)?,
                    sealed_headers: r.get(2)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn sync_monitors(&mut self, rows: &[MonitorRow]) -> Result<SyncReport, StoreError> {
        write::sync_monitors(&mut self.conn, rows)
    }

    fn monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
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

    fn insert_results(&mut self, results: &[CheckResult]) -> Result<Vec<StatusChange>, StoreError> {
        write::insert_results(
            &mut self.conn,
            &mut self.series,
            results,
            self.alerts.as_deref(),
        )
    }

    fn history(&self, q: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError> {
        let series = self.series_matching(
            q.monitor.as_ref(),
            q.model.as_deref(),
            q.location.as_deref(),
        )?;
        let lo = q.since.map_or(i64::MIN, |t| t.millis());
        let hi = match (q.until, q.before) {
            (Some(a), Some(b)) => a.millis().min(b.millis()),
            (Some(a), None) => a.millis(),
            (None, Some(b)) => b.millis(),
            (None, None) => i64::MAX,
        };
        let limit = q.limit.max(1) as i64;
        let status = q.status.map(|s| s.code() as i64);
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {RESULT_COLS}
             FROM history
             WHERE series = ?1 AND started_at >= ?2 AND started_at < ?3
               AND (?4 IS NULL OR status = ?4)
             ORDER BY started_at DESC LIMIT ?5"
        ))?;
        let mut out = Vec::new();
        for s in &series {
            let rows = st.query_map(params![s.pk, lo, hi, status, limit], |r| {
                row_to_result(r, s)
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
                .then_with(|| a.location.cmp(&b.location))
        });
        out.truncate(q.limit.max(1));
        Ok(out)
    }

    fn status(
        &self,
        monitor: Option<&MonitorId>,
        now: Timestamp,
        windows: &[Duration],
    ) -> Result<Vec<StatusRow>, StoreError> {
        let raw_from = self.raw_from()?;
        let mut out = Vec::new();
        for m in self.monitors()? {
            if monitor.is_none_or(|id| &m.id == id) {
                out.extend(self.status_rows(m, now, windows, raw_from)?);
            }
        }
        Ok(out)
    }

    fn tracker(&self) -> Result<Vec<TrackedSeries>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT m.id, s.model, s.location, t.status, t.kind, t.since, t.last_at, t.consecutive
             FROM tracker t JOIN series s ON s.pk = t.series JOIN monitors m ON m.pk = s.monitor
             ORDER BY m.id, s.pk",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                write::state_from_row(r, 3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, model, location, state) = row?;
            if let Ok(monitor) = MonitorId::parse(&id) {
                out.push(TrackedSeries {
                    monitor,
                    model,
                    location,
                    state,
                });
            }
        }
        Ok(out)
    }

    fn window_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        match self.series_of(monitor, model)? {
            Some(pk) => {
                rollups::stats(&self.conn, pk, from.millis(), to.millis(), self.raw_from()?)
            }
            None => Ok(WindowStats::default()),
        }
    }

    fn raw_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        match self.series_of(monitor, model)? {
            Some(pk) => rollups::raw(&self.conn, pk, from.millis(), to.millis()),
            None => Ok(WindowStats::default()),
        }
    }

    fn prune(
        &mut self,
        now: Timestamp,
        history: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(history).millis();
        if !dry_run {
            // Finished outbox rows go with the history they belong to; pending ones (and the
            // incidents themselves) stay.
            alerts::prune_outbox(&self.conn, cutoff)?;
        }
        write::prune(&mut self.conn, cutoff, dry_run)
    }

    fn prune_rollups(
        &mut self,
        now: Timestamp,
        retention: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let bucket = now
            .saturating_sub(retention)
            .millis()
            .div_euclid(crate::store::BUCKET_MS);
        write::prune_rollups(&self.conn, bucket, dry_run)
    }

    fn rebuild_rollups(&mut self) -> Result<u64, StoreError> {
        let raw_from = self.raw_from()?;
        write::rebuild_rollups(&mut self.conn, raw_from)
    }

    fn vacuum(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }

    fn put_official_status(&mut self, s: &OfficialStatus) -> Result<(), StoreError> {
        let incidents = serde_json::to_string(&s.incidents).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "INSERT OR REPLACE INTO official_status
                 (url, indicator, description, incidents, checked_at, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                s.url,
                s.indicator.as_str(),
                s.description,
                incidents,
                s.checked_at.map_or(0, |t| t.0),
                s.error
            ],
        )?;
        Ok(())
    }

    fn bucket_summaries(
        &self,
        from: Timestamp,
        daily: bool,
    ) -> Result<Vec<crate::store::BucketSummary>, StoreError> {
        rollups::bucket_summaries(&self.conn, from, daily)
    }

    fn official_statuses(&self) -> Result<HashMap<String, OfficialStatus>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT url, indicator, description, incidents, checked_at, error FROM official_status",
        )?;
        let rows = st.query_map([], |r| {
            let url: String = r.get(0)?;
            let indicator: String = r.get(1)?;
            let incidents: String = r.get(3)?;
            Ok(OfficialStatus {
                url: url.clone(),
                // Written by this program; anything foreign reads as unknown.
                indicator: Indicator::parse(&indicator).unwrap_or(Indicator::Unknown),
                description: r.get(2)?,
                incidents: serde_json::from_str(&incidents).unwrap_or_default(),
                checked_at: Some(Timestamp(r.get(4)?)),
                error: r.get(5)?,
            })
        })?;
        rows.map(|r| r.map(|s| (s.url.clone(), s)).map_err(StoreError::from))
            .collect()
    }

    fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        care::sealed_secrets(&self.conn)
    }

    fn reseal(&mut self, changes: &[Reseal]) -> Result<(), StoreError> {
        care::reseal(&mut self.conn, changes)
    }

    fn backup_to(&self, dest: &Path, overwrite: bool) -> Result<BackupReport, StoreError> {
        care::backup_to(&self.conn, &self.path, dest, overwrite)
    }

    fn check_integrity(&self, quick: bool) -> Result<Vec<String>, StoreError> {
        care::check_integrity(&self.conn, quick)
    }

    fn audit_rollups(&self) -> Result<RollupAudit, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let raw_from = self.raw_from()?;
        let audit = care::audit_rollups(&tx, raw_from)?;
        tx.finish()?;
        Ok(audit)
    }

    fn export(
        &self,
        q: &ExportQuery,
        each: &mut dyn FnMut(CheckResult) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        // One snapshot for the whole export, however long it takes.
        let tx = self.conn.unchecked_transaction()?;
        let series = self.series_matching(q.monitor.as_ref(), q.model.as_deref(), None)?;
        let lo = q.since.map_or(i64::MIN, |t| t.millis());
        let hi = q.until.map_or(i64::MAX, |t| t.millis());
        let mut st = tx.prepare_cached(&format!(
            "SELECT {RESULT_COLS} FROM history
                 WHERE series = ?1 AND started_at >= ?2 AND started_at < ?3
                 ORDER BY started_at"
        ))?;
        let mut n = 0u64;
        'series: for s in &series {
            let mut rows = st.query(params![s.pk, lo, hi])?;
            while let Some(r) = rows.next()? {
                n += 1;
                if each(row_to_result(r, s)?).is_break() {
                    break 'series;
                }
            }
        }
        drop(st);
        tx.finish()?;
        Ok(n)
    }
}

/// The history columns `row_to_result` reads, in its order.
const RESULT_COLS: &str = "started_at, status, kind, http, ttft_ms, latency_ms, ping_ms, message,
    tokens_in, tokens_out, tokens_reasoning, cost_nano, tps, answered_model, due_at";

fn row_to_result(r: &rusqlite::Row<'_>, series: &SeriesRef) -> rusqlite::Result<CheckResult> {
    let status = Status::from_code(r.get(1)?).unwrap_or(Status::Error);
    Ok(CheckResult {
        monitor: series.monitor.clone(),
        model: series.model.clone(),
        location: series.location.clone(),
        due_at: r.get::<_, Option<i64>>(14)?.map(Timestamp),
        started_at: Timestamp(r.get(0)?),
        status,
        kind: Kind::from_code(r.get(2)?).unwrap_or(Kind::Internal),
        http_status: r.get(3)?,
        ttft_ms: r.get(4)?,
        latency_ms: r.get(5)?,
        ping_ms: r.get(6)?,
        message: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
        facts: crate::model::ReplyFacts {
            answered_model: r.get(13)?,
            ..rollups::facts_from_row(r, 8)?
        },
    })
}
