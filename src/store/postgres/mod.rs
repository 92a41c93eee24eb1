//! The PostgreSQL backend: a server database several chanmon processes can share.
//!
//! Driver: the blocking `postgres` client (see `conn`): the [`Storage`] trait is synchronous
//! and called from the writer thread and command threads, exactly like rusqlite, so an async
//! pool would only add a runtime hop per call. Each store value owns one connection (one
//! writer per process; readers open their own), so there is no pool.
//!
//! The layout mirrors SQLite's (see `schema`): `history` keyed by (series, started_at),
//! hourly `rollups` and the `tracker` written in the same transaction as their rows, windows
//! answered by `store::window::plan`. Writes are safe with several writers at once.

mod alerts;
mod care;
mod claims;
mod conn;
mod import;
pub(super) mod locks;
mod rollups;
mod schema;
mod status;
mod write;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use ::postgres::{Client, Row};

use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp};
use crate::official::{Indicator, OfficialStatus};
use crate::pipeline::tracker::StatusChange;
use crate::store::{
    BackupReport, BucketSummary, Delivery, DeliveryOutcome, ExportQuery, HistoryQuery,
    IncidentQuery, IncidentRow, MonitorRow, OpenMode, OutboxCounts, Reseal, RollupAudit,
    SealedSecret, StatusRow, Storage, StoreError, StoredMonitor, StoredSecrets, SyncReport,
    TrackedSeries, WindowStats,
};

pub use conn::PgUrl;
pub use import::TableCount;
pub(crate) use import::import_sqlite;

/// Rows fetched per round trip by `export`.
const EXPORT_CHUNK: i64 = 1_000;

/// A connection to a PostgreSQL database.
pub(crate) struct PgStore {
    /// `Storage` reads take `&self`; the driver needs `&mut` (one thread uses a store).
    conn: RefCell<conn::Conn>,
    url: PgUrl,
    /// (monitor id, model, location) → series pk; only committed rows are cached.
    series: HashMap<write::SeriesKey, i64>,
    alerts: Option<std::sync::Arc<crate::alert::AlertPlan>>,
    /// The replica whose claims `insert_results` completes (`Storage::set_replica`).
    replica: Option<String>,
}

impl PgStore {
    /// Connects, checks the schema version and (unless read-only) migrates.
    pub(crate) fn open(url: &PgUrl, mode: OpenMode) -> Result<PgStore, StoreError> {
        let setup = if mode == OpenMode::ReadOnly {
            "SET default_transaction_read_only = on"
        } else {
            ""
        };
        let mut c = conn::Conn::open(url, setup)?;
        c.run(|client| schema::prepare(client, url, mode))?;
        Ok(PgStore {
            conn: RefCell::new(c),
            url: url.clone(),
            series: HashMap::new(),
            alerts: None,
            replica: None,
        })
    }

    fn run<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        self.conn.borrow_mut().run(f)
    }
}

/// One series with its names.
struct SeriesRef {
    pk: i64,
    monitor: MonitorId,
    model: String,
    location: String,
}

/// The schedule connection of one replica (see `claims`).
pub(crate) struct PgClaims {
    conn: conn::Conn,
    name: String,
    location: String,
}

impl PgClaims {
    pub(crate) fn open(
        url: &PgUrl,
        me: &crate::store::ReplicaReport,
    ) -> Result<PgClaims, StoreError> {
        let mut conn = conn::Conn::open(url, "")?;
        conn.run(|c| schema::prepare(c, url, OpenMode::Create))?;
        Ok(PgClaims {
            conn,
            name: me.name.clone(),
            location: me.location.clone(),
        })
    }
}

impl crate::store::Claims for PgClaims {
    fn sync_schedule(
        &mut self,
        entries: &[crate::store::ScheduleEntry],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.run(|c| claims::sync_schedule(c, entries, now))
    }

    fn claim(
        &mut self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<crate::store::Claim>, StoreError> {
        let (name, location) = (&self.name, &self.location);
        self.conn
            .run(|c| claims::claim(c, name, location, now, limit))
    }

    fn heartbeat(
        &mut self,
        me: &crate::store::ReplicaReport,
        now: Timestamp,
    ) -> Result<Vec<crate::store::ReplicaInfo>, StoreError> {
        self.location.clone_from(&me.location);
        self.conn
            .run(|c| claims::heartbeat(c, me, now, crate::store::REPLICA_ALIVE_MS))
    }
}

/// Series matching optional filters, ordered by monitor, then as created (a monitor's models
/// in config order, each model's locations as first seen).
fn series_matching(
    c: &mut Client,
    monitor: Option<&MonitorId>,
    model: Option<&str>,
    location: Option<&str>,
) -> Result<Vec<SeriesRef>, StoreError> {
    let rows = c.query(
        "SELECT s.pk, m.id, s.model, s.location FROM series s JOIN monitors m ON m.pk = s.monitor
         WHERE ($1::text IS NULL OR m.id = $1) AND ($2::text IS NULL OR s.model = $2)
           AND ($3::text IS NULL OR s.location = $3)
         ORDER BY m.id, s.pk",
        &[&monitor.map(MonitorId::as_str), &model, &location],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        if let Ok(id) = MonitorId::parse(r.try_get::<_, &str>(1)?) {
            out.push(SeriesRef {
                pk: r.try_get(0)?,
                monitor: id,
                model: r.try_get(2)?,
                location: r.try_get(3)?,
            });
        }
    }
    Ok(out)
}

/// The series a (monitor, model) question without a location answers from: the one of no
/// location when it has rows, else the first location's with rows (as SQLite).
fn series_of(c: &mut Client, monitor: &MonitorId, model: &str) -> Result<Option<i64>, StoreError> {
    let all = series_matching(c, Some(monitor), Some(model), None)?;
    for s in &all {
        let has: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM tracker WHERE series = $1)",
                &[&s.pk],
            )?
            .get(0);
        if has {
            return Ok(Some(s.pk));
        }
    }
    Ok(all.first().map(|s| s.pk))
}

/// Raw rows are complete from this time on (everything older may have been pruned).
fn raw_from(c: &mut Client) -> Result<i64, StoreError> {
    Ok(
        c.query_opt("SELECT value FROM meta WHERE key = 'raw_from'", &[])?
            .map_or(i64::MIN, |r| r.get(0)),
    )
}

fn monitors(c: &mut Client) -> Result<Vec<StoredMonitor>, StoreError> {
    let rows = c.query(
        "SELECT id, name, provider, enabled, models, key_error FROM monitors ORDER BY id",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        // Ids in the database were validated when written; skip anything foreign.
        let Ok(id) = MonitorId::parse(r.try_get::<_, &str>(0)?) else {
            continue;
        };
        out.push(StoredMonitor {
            id,
            name: r.try_get(1)?,
            provider: r.try_get(2)?,
            enabled: r.try_get(3)?,
            models: serde_json::from_str(r.try_get::<_, &str>(4)?).unwrap_or_default(),
            key_unavailable: r.try_get(5)?,
        });
    }
    Ok(out)
}

/// The history columns `row_to_result` reads, in its order.
const RESULT_COLS: &str = "started_at, status, kind, http, ttft_ms, latency_ms, ping_ms, message,
    tokens_in, tokens_out, tokens_reasoning, cost_nano, tps, answered_model, due_at";

fn opt_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn row_to_result(r: &Row, series: &SeriesRef) -> Result<CheckResult, StoreError> {
    Ok(CheckResult {
        monitor: series.monitor.clone(),
        model: series.model.clone(),
        location: series.location.clone(),
        due_at: r.try_get::<_, Option<i64>>(14)?.map(Timestamp),
        started_at: Timestamp(r.try_get(0)?),
        status: Status::from_code(r.try_get(1)?).unwrap_or(Status::Error),
        kind: Kind::from_code(r.try_get(2)?).unwrap_or(Kind::Internal),
        http_status: r
            .try_get::<_, Option<i64>>(3)?
            .and_then(|v| u16::try_from(v).ok()),
        ttft_ms: opt_u32(r.try_get(4)?),
        latency_ms: opt_u32(r.try_get(5)?),
        ping_ms: opt_u32(r.try_get(6)?),
        message: r.try_get::<_, Option<String>>(7)?.unwrap_or_default(),
        facts: crate::model::ReplyFacts {
            answered_model: r.try_get(13)?,
            ..rollups::facts_from_row(r, 8)?
        },
    })
}

fn history(c: &mut Client, q: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError> {
    let series = series_matching(
        c,
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
    let status = q.status.map(|s| i64::from(s.code()));
    let st = c.prepare(&format!(
        "SELECT {RESULT_COLS} FROM history
         WHERE series = $1 AND started_at >= $2 AND started_at < $3
           AND ($4::bigint IS NULL OR status = $4)
         ORDER BY started_at DESC LIMIT $5"
    ))?;
    let mut out = Vec::new();
    for s in &series {
        for r in c.query(&st, &[&s.pk, &lo, &hi, &status, &limit])? {
            out.push(row_to_result(&r, s)?);
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

fn tracker(c: &mut Client) -> Result<Vec<TrackedSeries>, StoreError> {
    let rows = c.query(
        "SELECT m.id, s.model, s.location, t.status, t.kind, t.since, t.last_at, t.consecutive
         FROM tracker t JOIN series s ON s.pk = t.series JOIN monitors m ON m.pk = s.monitor
         ORDER BY m.id, s.pk",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        if let Ok(monitor) = MonitorId::parse(r.try_get::<_, &str>(0)?) {
            out.push(TrackedSeries {
                monitor,
                model: r.try_get(1)?,
                location: r.try_get(2)?,
                state: write::state_from_row(r, 3)?,
            });
        }
    }
    Ok(out)
}

fn official_statuses(c: &mut Client) -> Result<HashMap<String, OfficialStatus>, StoreError> {
    let rows = c.query(
        "SELECT url, indicator, description, incidents, checked_at, error FROM official_status",
        &[],
    )?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let url: String = r.try_get(0)?;
        let s = OfficialStatus {
            url: url.clone(),
            // Written by this program; anything foreign reads as unknown.
            indicator: Indicator::parse(r.try_get(1)?).unwrap_or(Indicator::Unknown),
            description: r.try_get(2)?,
            incidents: serde_json::from_str(r.try_get::<_, &str>(3)?).unwrap_or_default(),
            checked_at: Some(Timestamp(r.try_get(4)?)),
            error: r.try_get(5)?,
        };
        out.insert(url, s);
    }
    Ok(out)
}

impl Storage for PgStore {
    fn set_alert_plan(&mut self, plan: std::sync::Arc<crate::alert::AlertPlan>) {
        self.alerts = Some(plan);
    }

    fn set_replica(&mut self, name: &str) {
        self.replica = Some(name.to_owned());
    }

    fn replicas(&self, since: Timestamp) -> Result<Vec<crate::store::ReplicaInfo>, StoreError> {
        self.run(|c| claims::replicas(c, since.millis()))
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.run(|c| alerts::due(c, now, limit))
    }

    fn finish_deliveries(
        &mut self,
        pks: &[i64],
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        self.run(|c| alerts::finish(c, pks, outcome))
    }

    fn enqueue_event(
        &mut self,
        sinks: &[String],
        event: &crate::alert::AlertEvent,
    ) -> Result<(), StoreError> {
        self.run(|c| alerts::enqueue_now(c, sinks, event))
    }

    fn incidents(&self, q: &IncidentQuery) -> Result<Vec<IncidentRow>, StoreError> {
        self.run(|c| alerts::incidents(c, q))
    }

    fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.run(alerts::counts)
    }

    fn stored_secrets(&self) -> Result<HashMap<String, StoredSecrets>, StoreError> {
        self.run(|c| {
            let mut out = HashMap::new();
            for r in c.query("SELECT id, sealed_key, sealed_headers FROM monitors", &[])? {
                let secrets = StoredSecrets {
                    sealed_key: r.try_get(1)?,
                    sealed_headers: r.try_get(2)?,
                };
                out.insert(r.try_get(0)?, secrets);
            }
            Ok(out)
        })
    }

    fn sync_monitors(&mut self, rows: &[MonitorRow]) -> Result<SyncReport, StoreError> {
        self.run(|c| write::sync_monitors(c, rows))
    }

    fn monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
        self.run(monitors)
    }

    fn insert_results(&mut self, results: &[CheckResult]) -> Result<Vec<StatusChange>, StoreError> {
        let (conn, cache, plan) = (&self.conn, &mut self.series, self.alerts.as_deref());
        let replica = self.replica.as_deref();
        conn.borrow_mut()
            .run(|c| write::insert_results(c, cache, results, plan, replica))
    }

    fn history(&self, q: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError> {
        self.run(|c| history(c, q))
    }

    fn status(
        &self,
        monitor: Option<&MonitorId>,
        now: Timestamp,
        windows: &[Duration],
    ) -> Result<Vec<StatusRow>, StoreError> {
        self.run(|c| {
            let raw_from = raw_from(c)?;
            status::status(c, monitor, now, windows, raw_from)
        })
    }

    fn tracker(&self) -> Result<Vec<TrackedSeries>, StoreError> {
        self.run(tracker)
    }

    fn window_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        self.run(|c| match series_of(c, monitor, model)? {
            Some(pk) => {
                let raw_from = raw_from(c)?;
                let reads = rollups::WindowReads::prepare(c)?;
                reads.stats(c, pk, from.millis(), to.millis(), raw_from)
            }
            None => Ok(WindowStats::default()),
        })
    }

    fn raw_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        self.run(|c| match series_of(c, monitor, model)? {
            Some(pk) => rollups::WindowReads::prepare(c)?.raw(c, pk, from.millis(), to.millis()),
            None => Ok(WindowStats::default()),
        })
    }

    fn prune(
        &mut self,
        now: Timestamp,
        history: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(history).millis();
        self.run(|c| {
            if !dry_run {
                // Finished outbox rows go with the history they belong to.
                alerts::prune_outbox(c, cutoff)?;
            }
            write::prune(c, cutoff, dry_run)
        })
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
        self.run(|c| write::prune_rollups(c, bucket, dry_run))
    }

    fn rebuild_rollups(&mut self) -> Result<u64, StoreError> {
        self.run(|c| {
            let raw_from = raw_from(c)?;
            write::rebuild_rollups(c, raw_from)
        })
    }

    fn vacuum(&mut self) -> Result<(), StoreError> {
        self.run(|c| Ok(c.batch_execute("VACUUM ANALYZE")?))
    }

    fn put_official_status(&mut self, s: &OfficialStatus) -> Result<(), StoreError> {
        let incidents = serde_json::to_string(&s.incidents).unwrap_or_else(|_| "[]".into());
        self.run(|c| {
            c.execute(
                "INSERT INTO official_status (url, indicator, description, incidents, checked_at, error)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (url) DO UPDATE SET indicator = excluded.indicator,
                     description = excluded.description, incidents = excluded.incidents,
                     checked_at = excluded.checked_at, error = excluded.error",
                &[
                    &s.url,
                    &s.indicator.as_str(),
                    &s.description,
                    &incidents,
                    &s.checked_at.map_or(0, |t| t.0),
                    &s.error,
                ],
            )?;
            Ok(())
        })
    }

    fn official_statuses(&self) -> Result<HashMap<String, OfficialStatus>, StoreError> {
        self.run(official_statuses)
    }

    fn bucket_summaries(
        &self,
        from: Timestamp,
        daily: bool,
    ) -> Result<Vec<BucketSummary>, StoreError> {
        self.run(|c| rollups::bucket_summaries(c, from, daily))
    }

    fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        self.run(care::sealed_secrets)
    }

    fn reseal(&mut self, changes: &[Reseal]) -> Result<(), StoreError> {
        self.run(|c| care::reseal(c, changes))
    }

    fn backup_to(&self, _dest: &Path, _overwrite: bool) -> Result<BackupReport, StoreError> {
        Err(StoreError::Backend(format!(
            "{} is a PostgreSQL database: back it up with the server's own tools (pg_dump, or a base backup with WAL archiving); `chanmon backup` copies SQLite files only",
            self.url
        )))
    }

    fn check_integrity(&self, quick: bool) -> Result<Vec<String>, StoreError> {
        self.run(|c| care::check_integrity(c, quick))
    }

    fn audit_rollups(&self) -> Result<RollupAudit, StoreError> {
        self.run(|c| {
            let raw_from = raw_from(c)?;
            care::audit_rollups(c, raw_from)
        })
    }

    fn export(
        &self,
        q: &ExportQuery,
        each: &mut dyn FnMut(CheckResult) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        // One REPEATABLE READ snapshot; per series a server-side cursor read in chunks, each
        // chunk handed to `each` on this thread (it need not be `Send`).
        self.run(|c| Ok(c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?))?;
        let out = self.export_in_snapshot(q, each);
        let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let closed = self.run(|c| Ok(c.batch_execute(end)?));
        let n = out?;
        closed?;
        Ok(n)
    }
}

impl PgStore {
    fn export_in_snapshot(
        &self,
        q: &ExportQuery,
        each: &mut dyn FnMut(CheckResult) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let series =
            self.run(|c| series_matching(c, q.monitor.as_ref(), q.model.as_deref(), None))?;
        let lo = q.since.map_or(i64::MIN, |t| t.millis());
        let hi = q.until.map_or(i64::MAX, |t| t.millis());
        let mut n = 0u64;
        for s in &series {
            let pk = s.pk;
            self.run(|c| {
                c.execute(
                    &format!(
                        "DECLARE chanmon_export NO SCROLL CURSOR FOR SELECT {RESULT_COLS}
                         FROM history WHERE series = {pk} AND started_at >= {lo}
                           AND started_at < {hi} ORDER BY started_at"
                    ),
                    &[],
                )?;
                Ok(())
            })?;
            loop {
                let rows = self.run(|c| {
                    Ok(c.query(&format!("FETCH {EXPORT_CHUNK} FROM chanmon_export"), &[])?)
                })?;
                for r in &rows {
                    n += 1;
                    if each(row_to_result(r, s)?).is_break() {
                        return Ok(n);
                    }
                }
                if (rows.len() as i64) < EXPORT_CHUNK {
                    break;
                }
            }
            self.run(|c| Ok(c.batch_execute("CLOSE chanmon_export")?))?;
        }
        Ok(n)
    }
}
