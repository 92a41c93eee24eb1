//! Opening the database and migrating it by `PRAGMA user_version`.
//!
//! Migrations are append-only SQL strings; migration N takes the schema from version N to
//! N + 1 in one transaction. A database newer than the binary is refused, never touched.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

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
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn open_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    let msg = e.to_string();
    let message = if msg.contains("not a database") {
        format!("is not a chanmon database (SQLite says: {msg})")
    } else if msg.contains("malformed") || msg.contains("corrupt") {
        format!("is damaged (SQLite says: {msg}); restore it from a backup or move it aside")
    } else {
        msg
    };
    StoreError::Open {
        path: path.display().to_string(),
        message,
    }
}

/// Opens and migrates. `create` allows a missing file to be created.
pub fn open(path: &Path, create: bool) -> Result<Connection, StoreError> {
    if !create && !path.exists() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    if create && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| open_err(path, e))?;
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| open_err(path, e))?;
    // Reading the schema is the first thing that touches the file: garbage and damage show here.
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| open_err(path, e))?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| open_err(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version > 0 {
        // A non-empty chanmon database: a quick structural check catches truncation.
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| open_err(path, e))?;
        if check != "ok" {
            return Err(open_err(
                path,
                format!("database disk image is malformed ({check})"),
            ));
        }
    } else {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| open_err(path, e))?;
        if tables > 0 {
            return Err(open_err(
                path,
                "not a database made by chanmon: it has tables but no chanmon schema version",
            ));
        }
    }
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    )
    .map_err(|e| open_err(path, e))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(|e| open_err(path, e))?;
        tx.execute_batch(sql).map_err(|e| open_err(path, e))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(|e| open_err(path, e))?;
        tx.commit().map_err(|e| open_err(path, e))?;
    }
    Ok(conn)
}
