//! Opening the database and migrating it by `PRAGMA user_version`.
//!
//! Migrations are append-only SQL strings; migration N takes the schema from version N to
//! N + 1 in one transaction. A database newer than the binary is refused, never touched.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::store::{OpenMode, StoreError};

const MIGRATIONS: &[&str] = &[
    // 1: monitors, series, raw history, hourly rollups, meta.
    "
    CREATE TABLE monitors (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        provider TEXT NOT NULL,
        api TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        grp TEXT,
        enabled INTEGER NOT NULL,
        interval_ms INTEGER NOT NULL,
        models TEXT NOT NULL,            -- JSON array, primary first
        sealed_key BLOB,                 -- secret::MasterKey::seal, purpose api_key
        sealed_headers BLOB,             -- sealed JSON object of header name -> value
        key_error TEXT,                  -- why the key is unusable; NULL when fine
        updated_at INTEGER NOT NULL
    );
    -- One row per monitor and model, so history rows carry one small integer.
    CREATE TABLE series (
        pk INTEGER PRIMARY KEY,
        monitor INTEGER NOT NULL REFERENCES monitors(pk),
        model TEXT NOT NULL,
        UNIQUE (monitor, model)
    );
    -- Clustered by (series, started_at): per-series range scans need no second index.
    CREATE TABLE history (
        series INTEGER NOT NULL,
        started_at INTEGER NOT NULL,     -- epoch ms
        status INTEGER NOT NULL,         -- model::Status::code
        kind INTEGER NOT NULL,           -- model::Kind::code
        http INTEGER,
        ttft_ms INTEGER,
        latency_ms INTEGER,
        ping_ms INTEGER,
        message TEXT,                    -- NULL when empty
        PRIMARY KEY (series, started_at)
    ) WITHOUT ROWID;
    -- Hourly buckets (UTC), written in the same transaction as their raw rows.
    CREATE TABLE rollups (
        series INTEGER NOT NULL,
        bucket INTEGER NOT NULL,         -- started_at / 3600000
        n_operational INTEGER NOT NULL,
        n_degraded INTEGER NOT NULL,
        n_failed INTEGER NOT NULL,
        n_error INTEGER NOT NULL,
        kinds BLOB NOT NULL,             -- sparse (kind code u8, count u32 LE) pairs
        latency_sum INTEGER NOT NULL,
        latency_n INTEGER NOT NULL,
        ttft_sum INTEGER NOT NULL,
        ttft_n INTEGER NOT NULL,
        hist BLOB NOT NULL,              -- sparse latency histogram, see store::hist
        PRIMARY KEY (series, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    ",
    // 2: the status tracker, one row per series, written with the results (pipeline::tracker).
    // Seeded from history: the newest row's status, since the first row of its current run.
    "
    CREATE TABLE tracker (
        series INTEGER PRIMARY KEY REFERENCES series(pk),
        status INTEGER NOT NULL,         -- model::Status::code of the newest result
        kind INTEGER NOT NULL,           -- model::Kind::code of the newest result
        since INTEGER NOT NULL,          -- started_at of the first result of this status run
        last_at INTEGER NOT NULL,        -- started_at of the newest result applied
        consecutive INTEGER NOT NULL     -- results in a row with this status
    );
    INSERT INTO tracker (series, status, kind, since, last_at, consecutive)
    SELECT series, status, kind,
           (SELECT min(started_at) FROM history r
             WHERE r.series = n.series AND r.started_at > n.changed_at),
           started_at,
           (SELECT count(*) FROM history r
             WHERE r.series = n.series AND r.started_at > n.changed_at)
    FROM (
        SELECT h.series, h.status, h.kind, h.started_at,
               coalesce((SELECT max(o.started_at) FROM history o
                          WHERE o.series = h.series AND o.status <> h.status),
                        -9223372036854775808) AS changed_at
        FROM history h
        WHERE h.started_at = (SELECT max(started_at) FROM history x WHERE x.series = h.series)
    ) AS n;
    ",
    // 3: what each reply reported (the model that answered, tokens), its cost and throughput,
    // and their sums per hour. Every history column is nullable and every older row reads
    // NULL = not recorded; older rollups read usage_n = cost_n = 0, shown as not recorded.
    "
    ALTER TABLE history ADD COLUMN answered_model TEXT;
    ALTER TABLE history ADD COLUMN tokens_in INTEGER;
    ALTER TABLE history ADD COLUMN tokens_out INTEGER;
    ALTER TABLE history ADD COLUMN tokens_reasoning INTEGER;
    ALTER TABLE history ADD COLUMN cost_nano INTEGER;  -- billionths of the price's unit
    ALTER TABLE history ADD COLUMN tps REAL;           -- output tokens/s after the first token
    ALTER TABLE rollups ADD COLUMN usage_n INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rollups ADD COLUMN tokens_in INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rollups ADD COLUMN tokens_out INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rollups ADD COLUMN tokens_reasoning INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rollups ADD COLUMN cost_n INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rollups ADD COLUMN cost_nano INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rollups ADD COLUMN tps_hist BLOB NOT NULL DEFAULT x'';  -- tenths of tokens/s
    -- The latest reading of each provider status page polled (one row per URL, overwritten).
    CREATE TABLE official_status (
        url         TEXT PRIMARY KEY,
        indicator   TEXT NOT NULL,           -- none/minor/major/critical/maintenance/unknown
        description TEXT NOT NULL,
        incidents   TEXT NOT NULL,           -- JSON: [{name, impact, status, updated_at}]
        checked_at  INTEGER NOT NULL,
        error       TEXT                     -- why the indicator is unknown
    );
    ",
    // 4: alerts. Incidents per series, each series' alert counts, and the transactional
    // outbox: one row per (incident event × sink), written with the result that caused it
    // and marked delivered in its own commit after the receiver's 2xx. Older databases start
    // with no incidents (nothing is invented from old rows).
    "
    CREATE TABLE incidents (
        pk          INTEGER PRIMARY KEY,
        uid         TEXT NOT NULL UNIQUE,     -- stable id: event ids, PagerDuty dedup_key
        series      INTEGER NOT NULL REFERENCES series(pk),
        since       INTEGER NOT NULL,         -- the failing run began
        opened_at   INTEGER NOT NULL,         -- the result that crossed the threshold
        resolved_at INTEGER,                  -- NULL while open
        status      INTEGER NOT NULL,
        kind        INTEGER NOT NULL,
        message     TEXT,
        muted       INTEGER NOT NULL DEFAULT 0 -- opened in a maintenance window
    );
    CREATE UNIQUE INDEX incidents_open ON incidents (series) WHERE resolved_at IS NULL;
    CREATE INDEX incidents_opened ON incidents (opened_at);
    CREATE TABLE alert_state (
        series      INTEGER PRIMARY KEY REFERENCES series(pk),
        fail_run    INTEGER NOT NULL,
        ok_run      INTEGER NOT NULL,
        fail_since  INTEGER,
        incident    INTEGER REFERENCES incidents(pk),
        notified_at INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE outbox (
        pk          INTEGER PRIMARY KEY,
        event_id    TEXT NOT NULL,
        sink        TEXT NOT NULL,
        incident    INTEGER REFERENCES incidents(pk),
        event       TEXT NOT NULL,            -- opened/resolved/reminder/test/internal
        grp         TEXT NOT NULL,            -- rows of one group go out as one message
        payload     TEXT NOT NULL,            -- the event as JSON: facts only, no secrets
        created_at  INTEGER NOT NULL,
        next_at     INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        state       INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 delivered, 2 dead
        done_at     INTEGER,
        last_error  TEXT,
        UNIQUE (event_id, sink)
    );
    CREATE INDEX outbox_due ON outbox (next_at) WHERE state = 0;
    CREATE INDEX outbox_incident ON outbox (incident);
    ",
    // 5: locations and slots. `series` is keyed by (monitor, model, location) ('' = no
    // location named), rebuilt with every pk kept so history, rollups, tracker, incidents and
    // alert_state still point at the same series (foreign keys are off while a migration
    // runs; `migrate` checks them before committing). `history.due_at` is the schedule slot a
    // check ran for (NULL: a one-off check, or not recorded). Incidents belong to a model of a
    // monitor across its locations: at most one open per (monitor, model), enforced by a
    // unique index, since several writers may decide them at once on a shared database;
    // `series` stays the series whose result opened it. Each series' alert state says whether
    // that location is down (past the failure threshold and not yet recovered).
    "
    CREATE TABLE series_new (
        pk INTEGER PRIMARY KEY,
        monitor INTEGER NOT NULL REFERENCES monitors(pk),
        model TEXT NOT NULL,
        location TEXT NOT NULL DEFAULT '',
        UNIQUE (monitor, model, location)
    );
    INSERT INTO series_new (pk, monitor, model, location) SELECT pk, monitor, model, '' FROM series;
    DROP TABLE series;
    ALTER TABLE series_new RENAME TO series;
    ALTER TABLE history ADD COLUMN due_at INTEGER;
    ALTER TABLE incidents ADD COLUMN monitor INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN model TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN notified_at INTEGER;
    UPDATE incidents SET
        monitor = (SELECT s.monitor FROM series s WHERE s.pk = incidents.series),
        model = (SELECT s.model FROM series s WHERE s.pk = incidents.series),
        notified_at = coalesce(
            (SELECT a.notified_at FROM alert_state a WHERE a.incident = incidents.pk),
            opened_at);
    CREATE UNIQUE INDEX incidents_open_model ON incidents (monitor, model)
        WHERE resolved_at IS NULL;
    ALTER TABLE alert_state ADD COLUMN down INTEGER NOT NULL DEFAULT 0;
    UPDATE alert_state SET down = 1 WHERE incident IS NOT NULL;
    ",
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn open_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    let msg = e.to_string();
    if msg.contains("malformed") || msg.contains("corrupt") || msg.contains("not a database") {
        return StoreError::Damaged {
            path: path.display().to_string(),
            detail: format!("SQLite says: {msg}"),
        };
    }
    let message = if msg.starts_with("is ") {
        msg
    } else {
        format!("cannot be opened: {msg}")
    };
    StoreError::Open {
        path: path.display().to_string(),
        message,
    }
}

/// Opens and migrates (read-only: neither). `Create` allows a missing file to be created.
pub(super) fn open(path: &Path, mode: OpenMode) -> Result<Connection, StoreError> {
    let create = mode == OpenMode::Create;
    if !create && !path.exists() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    if create && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| open_err(path, e))?;
    }
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    flags |= match mode {
        OpenMode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        OpenMode::Existing => OpenFlags::SQLITE_OPEN_READ_WRITE,
        OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
    };
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| open_err(path, e))?;
    // Reading the schema is the first thing that touches the file: garbage and damage show here.
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| open_err(path, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| open_err(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version > 0 {
        check_not_truncated(&conn, path)?;
    }
    if mode == OpenMode::ReadOnly {
        if version == 0 {
            let why = if tables > 0 {
                "is not a chanmon database: it has tables but no chanmon schema version"
            } else {
                "is empty: not a chanmon database yet"
            };
            return Err(open_err(path, why));
        }
        conn.execute_batch("PRAGMA query_only=ON;")
            .map_err(|e| open_err(path, e))?;
        return Ok(conn);
    }
    set_wal(&conn, path)?;
    if version < SCHEMA_VERSION {
        migrate(&mut conn, path)?;
    }
    Ok(conn)
}

/// A cheap truncation check (a full `quick_check` would take seconds on a big database): the
/// file must hold every page the header says it has, unless pages still live in the WAL.
fn check_not_truncated(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_len = std::fs::metadata(std::path::PathBuf::from(wal)).map_or(0, |m| m.len());
    if wal_len > 0 {
        return Ok(());
    }
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(|e| open_err(path, e))?;
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(|e| open_err(path, e))?;
    let len = std::fs::metadata(path).map_or(0, |m| m.len()) as i64;
    if len < pages.saturating_mul(size) {
        return Err(open_err(
            path,
            format!(
                "database disk image is malformed: the file has {len} bytes but its header promises {pages} pages of {size} bytes (truncated?)"
            ),
        ));
    }
    Ok(())
}

/// WAL lets readers and one writer work at once. Switching needs a moment of exclusive access;
/// two processes opening a new database together may collide, so retry briefly.
fn set_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut last = None;
    for attempt in 0..50 {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => {
                conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
                    .map_err(|e| open_err(path, e))?;
                return Ok(());
            }
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(20 * (attempt + 1).min(10)));
            }
        }
    }
    Err(open_err(
        path,
        last.map_or_else(|| "cannot enable WAL".to_owned(), |e| e.to_string()),
    ))
}

/// Applies the missing migrations under an IMMEDIATE transaction, re-reading the version
/// inside it: two processes opening a new database at once migrate it exactly once.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // Rebuilding a table others reference (migration 5's `series`) needs foreign keys off;
    // the pragma is a no-op inside a transaction, so it is switched around it, and the keys
    // are checked before the commit instead.
    conn.execute_batch("PRAGMA foreign_keys=OFF;")
        .map_err(|e| open_err(path, e))?;
    let migrated = migrate_tx(conn, path);
    conn.execute_batch("PRAGMA foreign_keys=ON;")
        .map_err(|e| open_err(path, e))?;
    migrated
}

fn migrate_tx(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| open_err(path, e))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| open_err(path, e))?;
    if version == 0 {
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| open_err(path, e))?;
        if tables > 0 {
            return Err(open_err(
                path,
                "is not a chanmon database: it has tables but no chanmon schema version",
            ));
        }
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql).map_err(|e| open_err(path, e))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(|e| open_err(path, e))?;
    }
    let broken: Option<String> = tx
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .optional()
        .map_err(|e| open_err(path, e))?;
    if let Some(table) = broken {
        return Err(open_err(
            path,
            format!(
                "cannot be migrated: table `{table}` has rows whose references do not resolve (run `chanmon verify`)"
            ),
        ));
    }
    tx.commit().map_err(|e| open_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1 database with history gets a tracker that says what the rows say: the
    /// newest status, since the first row of its current run.
    #[test]
    fn migration_2_seeds_the_tracker_from_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO monitors (pk, id, name, provider, api, endpoint, enabled, interval_ms,
                 models, updated_at) VALUES (1, 'm', 'm', 'openai', 'chat', 'https://h/', 1, 1, '[]', 0);
             INSERT INTO series (pk, monitor, model) VALUES (1, 1, 'a'), (2, 1, 'b');
             -- a: operational, error, error, error (newest): error since 200, 3 in a row
             INSERT INTO history (series, started_at, status, kind) VALUES
                 (1, 100, 0, 0), (1, 200, 3, 6), (1, 300, 3, 14), (1, 400, 3, 6),
             -- b: always operational: since its first row
                 (2, 150, 0, 0), (2, 250, 0, 0);",
        )
        .unwrap();
        drop(conn);
        let conn = open(&path, OpenMode::Existing).unwrap();
        let rows: Vec<(i64, i64, i64, i64, i64, i64)> = conn
            .prepare("SELECT series, status, kind, since, last_at, consecutive FROM tracker ORDER BY series")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![(1, 3, 6, 200, 400, 3), (2, 0, 0, 150, 250, 2)]);
    }

    /// Rows and rollups written before migration 3 read as "not recorded", never as zero.
    #[test]
    fn migration_3_leaves_old_rows_not_recorded() {
        use crate::model::{MonitorId, Timestamp};
        use crate::store::{Database, OpenMode, open as open_store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO monitors (pk, id, name, provider, api, endpoint, enabled, interval_ms,
                 models, updated_at) VALUES (1, 'm', 'm', 'openai', 'chat', 'https://h/', 1, 1, '[\"a\"]', 0);
             INSERT INTO series (pk, monitor, model) VALUES (1, 1, 'a');
             INSERT INTO history (series, started_at, status, kind, latency_ms) VALUES
                 (1, 7200000, 0, 0, 100), (1, 7300000, 0, 0, 120);
             INSERT INTO rollups VALUES (1, 0, 5, 0, 0, 0, x'', 500, 5, 0, 0, x'');",
        )
        .unwrap();
        drop(conn);
        let store = open_store(&Database::Sqlite(path), OpenMode::Existing).unwrap();
        let id = MonitorId::parse("m").unwrap();
        let w = store
            .window_stats(&id, "a", Timestamp(0), Timestamp(7_400_000))
            .unwrap();
        assert_eq!(w.total(), 7);
        assert_eq!(
            (w.tokens(), w.cost(), w.tps_percentile(0.5)),
            (None, None, None)
        );
        let latest = store
            .status(Some(&id), Timestamp(4 * 3_600_000), &[])
            .unwrap();
        let facts = &latest[0].latest.as_ref().expect("a row").facts;
        assert_eq!(*facts, crate::model::ReplyFacts::default());
    }

    /// A version 3 database with history migrates to 4 with no incidents invented, and its
    /// next results open incidents as usual.
    #[test]
    fn migration_4_starts_with_no_incidents() {
        use crate::store::{Database, IncidentQuery, OpenMode, open as open_store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        let conn = Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..3] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO monitors (pk, id, name, provider, api, endpoint, enabled, interval_ms,
                 models, updated_at) VALUES (1, 'm', 'm', 'openai', 'chat', 'https://h/', 1, 1, '[\"a\"]', 0);
             INSERT INTO series (pk, monitor, model) VALUES (1, 1, 'a');
             INSERT INTO history (series, started_at, status, kind) VALUES
                 (1, 100, 3, 6), (1, 200, 3, 6), (1, 300, 3, 6), (1, 400, 3, 6);",
        )
        .unwrap();
        drop(conn);
        let store = open_store(&Database::Sqlite(path.clone()), OpenMode::Existing).unwrap();
        assert!(
            store
                .incidents(&IncidentQuery::default())
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.outbox_counts().unwrap(), Default::default());
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    /// A version 4 database with rows keeps every series pk (so history, rollups, tracker,
    /// incidents and alert state still point at the same series), every series gets the
    /// empty location, old rows read "no slot recorded", the open incident belongs to its
    /// model and its series is down, and a second open incident of that model is refused.
    #[test]
    fn migration_5_keys_series_by_location_and_keeps_every_reference() {
        use crate::store::{Database, HistoryQuery, IncidentQuery, OpenMode, open as open_store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        let conn = Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..4] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute_batch(
            "INSERT INTO monitors (pk, id, name, provider, api, endpoint, enabled, interval_ms,
                 models, updated_at) VALUES (1, 'm', 'm', 'openai', 'chat', 'https://h/', 1, 1, '[\"a\",\"b\"]', 0);
             INSERT INTO series (pk, monitor, model) VALUES (7, 1, 'a'), (9, 1, 'b');
             INSERT INTO history (series, started_at, status, kind) VALUES
                 (7, 100, 3, 6), (7, 200, 3, 6), (9, 150, 0, 0);
             INSERT INTO rollups VALUES (7, 0, 0, 0, 0, 2, x'', 0, 0, 0, 0, x'', 0, 0, 0, 0, 0, 0, x'');
             INSERT INTO tracker VALUES (7, 3, 6, 100, 200, 2), (9, 0, 0, 150, 150, 1);
             INSERT INTO incidents (pk, uid, series, since, opened_at, status, kind)
                 VALUES (3, 'u1', 7, 100, 200, 3, 6);
             INSERT INTO alert_state VALUES (7, 2, 0, 100, 3, 200), (9, 0, 1, NULL, NULL, NULL);
             INSERT INTO outbox (event_id, sink, incident, event, grp, payload, created_at, next_at)
                 VALUES ('u1:opened', 'hook', 3, 'opened', 'g', '{}', 200, 200);",
        )
        .unwrap();
        drop(conn);
        let store = open_store(&Database::Sqlite(path.clone()), OpenMode::Existing).unwrap();
        let rows = store
            .history(&HistoryQuery {
                limit: 10,
                ..HistoryQuery::default()
            })
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter()
                .all(|r| r.location.is_empty() && r.due_at.is_none())
        );
        let open = store
            .incidents(&IncidentQuery {
                open_only: true,
                ..IncidentQuery::default()
            })
            .unwrap();
        assert_eq!(
            (open.len(), open[0].model.as_str(), open[0].uid.as_str()),
            (1, "a", "u1")
        );
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let series: Vec<(i64, String, String)> = conn
            .prepare("SELECT pk, model, location FROM series ORDER BY pk")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            series,
            vec![
                (7, "a".into(), String::new()),
                (9, "b".into(), String::new())
            ]
        );
        let (monitor, model, notified, down): (i64, String, i64, bool) = conn
            .query_row(
                "SELECT i.monitor, i.model, i.notified_at, a.down FROM incidents i
                 JOIN alert_state a ON a.incident = i.pk",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            (monitor, model.as_str(), notified, down),
            (1, "a", 200, true)
        );
        let fk: Option<String> = conn
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(fk, None, "every reference resolves");
        // The same model from another location is another series; its incident is not.
        conn.execute(
            "INSERT INTO series (monitor, model, location) VALUES (1, 'a', 'eu-west')",
            [],
        )
        .unwrap();
        let second = conn.execute(
            "INSERT INTO incidents (uid, series, monitor, model, since, opened_at, status, kind)
             VALUES ('u2', 10, 1, 'a', 300, 300, 3, 6)",
            [],
        );
        assert!(second.is_err(), "one open incident per (monitor, model)");
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 5);
    }
}
