//! The PostgreSQL schema and its versioned migrations.
//!
//! The version lives in `chanmon_schema` (one row). Migrations are append-only; they run in
//! one transaction under a transaction-scoped advisory lock, re-reading the version inside it,
//! so two processes starting together migrate exactly once. A database whose version is newer
//! than this binary's is refused ([`StoreError::TooNew`]) and never touched.
//!
//! The numbering is this backend's own: version 1 holds everything SQLite has through its
//! migration 4. `series` already carries `location` (empty for none) in its unique key, so
//! probes from several locations need no migration here.

use ::postgres::Client;

use super::conn::PgUrl;
use crate::store::{OpenMode, StoreError};

/// Taken (transaction-scoped) while migrating: "chanmon" schema.
const MIGRATE_LOCK: i64 = 0x6368_616e_6d69_6772;

const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite has through its migration 4.
    "
    CREATE TABLE monitors (
        pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        provider TEXT NOT NULL,
        api TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        grp TEXT,
        enabled BOOLEAN NOT NULL,
        interval_ms BIGINT NOT NULL,
        models TEXT NOT NULL,
        sealed_key BYTEA,
        sealed_headers BYTEA,
        key_error TEXT,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE series (
        pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        monitor BIGINT NOT NULL REFERENCES monitors(pk),
        model TEXT NOT NULL,
        location TEXT NOT NULL DEFAULT '',
        UNIQUE (monitor, model, location)
    );
    CREATE TABLE history (
        series BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        status BIGINT NOT NULL,
        kind BIGINT NOT NULL,
        http BIGINT,
        ttft_ms BIGINT,
        latency_ms BIGINT,
        ping_ms BIGINT,
        message TEXT,
        answered_model TEXT,
        tokens_in BIGINT,
        tokens_out BIGINT,
        tokens_reasoning BIGINT,
        cost_nano BIGINT,
        tps DOUBLE PRECISION,
        due_at BIGINT,                          -- the schedule slot; NULL for a one-off check
        PRIMARY KEY (series, started_at)
    );
    CREATE TABLE rollups (
        series BIGINT NOT NULL,
        bucket BIGINT NOT NULL,
        n_operational BIGINT NOT NULL,
        n_degraded BIGINT NOT NULL,
        n_failed BIGINT NOT NULL,
        n_error BIGINT NOT NULL,
        kinds BYTEA NOT NULL,
        latency_sum BIGINT NOT NULL,
        latency_n BIGINT NOT NULL,
        ttft_sum BIGINT NOT NULL,
        ttft_n BIGINT NOT NULL,
        hist BYTEA NOT NULL,
        usage_n BIGINT NOT NULL DEFAULT 0,
        tokens_in BIGINT NOT NULL DEFAULT 0,
        tokens_out BIGINT NOT NULL DEFAULT 0,
        tokens_reasoning BIGINT NOT NULL DEFAULT 0,
        cost_n BIGINT NOT NULL DEFAULT 0,
        cost_nano BIGINT NOT NULL DEFAULT 0,
        tps_hist BYTEA NOT NULL DEFAULT '\\x',
        PRIMARY KEY (series, bucket)
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
    CREATE TABLE tracker (
        series BIGINT PRIMARY KEY REFERENCES series(pk),
        status BIGINT NOT NULL,
        kind BIGINT NOT NULL,
        since BIGINT NOT NULL,
        last_at BIGINT NOT NULL,
        consecutive BIGINT NOT NULL
    );
    CREATE TABLE official_status (
        url TEXT PRIMARY KEY,
        indicator TEXT NOT NULL,
        description TEXT NOT NULL,
        incidents TEXT NOT NULL,
        checked_at BIGINT NOT NULL,
        error TEXT
    );
    CREATE TABLE incidents (
        pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        series BIGINT NOT NULL REFERENCES series(pk),
        since BIGINT NOT NULL,
        opened_at BIGINT NOT NULL,
        resolved_at BIGINT,
        status BIGINT NOT NULL,
        kind BIGINT NOT NULL,
        message TEXT,
        muted BOOLEAN NOT NULL DEFAULT false,
        -- The model the incident belongs to, across its locations; `series` is the one whose
        -- result opened it. At most one open incident per model, whichever replica decides.
        monitor BIGINT NOT NULL REFERENCES monitors(pk),
        model TEXT NOT NULL,
        notified_at BIGINT
    );
    CREATE UNIQUE INDEX incidents_open ON incidents (series) WHERE resolved_at IS NULL;
    CREATE UNIQUE INDEX incidents_open_model ON incidents (monitor, model) WHERE resolved_at IS NULL;
    CREATE INDEX incidents_opened ON incidents (opened_at);
    CREATE TABLE alert_state (
        series BIGINT PRIMARY KEY REFERENCES series(pk),
        fail_run BIGINT NOT NULL,
        ok_run BIGINT NOT NULL,
        fail_since BIGINT,
        incident BIGINT REFERENCES incidents(pk),
        notified_at BIGINT,
        down BOOLEAN NOT NULL DEFAULT false    -- past the failure threshold, not recovered
    );
    -- claimed_until: a drainer's lease on a pending row (see alerts.rs).
    CREATE TABLE outbox (
        pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id TEXT NOT NULL,
        sink TEXT NOT NULL,
        incident BIGINT REFERENCES incidents(pk),
        event TEXT NOT NULL,
        grp TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        next_at BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        state BIGINT NOT NULL DEFAULT 0,
        done_at BIGINT,
        last_error TEXT,
        claimed_until BIGINT,
        UNIQUE (event_id, sink)
    );
    CREATE INDEX outbox_due ON outbox (next_at) WHERE state = 0;
    CREATE INDEX outbox_incident ON outbox (incident);
    -- Replicas: the shared schedule (see claims.rs). One row per (monitor, location slot):
    -- location '' for a monitor any replica probes, else one of its `locations`.
    CREATE TABLE schedule (
        monitor BIGINT NOT NULL REFERENCES monitors(pk),
        location TEXT NOT NULL,
        interval_ms BIGINT NOT NULL,
        lease_ms BIGINT NOT NULL,
        next_due BIGINT NOT NULL,             -- the slot this row waits for (epoch ms)
        lease_owner TEXT,                     -- the replica running it, until lease_until
        lease_until BIGINT,
        PRIMARY KEY (monitor, location)
    );
    CREATE INDEX schedule_due ON schedule (next_due);
    -- Each replica's heartbeat, with the hash of its config (differences are reported).
    CREATE TABLE replicas (
        name TEXT PRIMARY KEY,
        location TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        version TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        seen_at BIGINT NOT NULL
    );
    ",
];

/// The schema version this binary writes (this backend's own numbering).
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Per schema version, the oldest schema version whose binaries can still read and write a
/// database at it: `READABLE_FROM[v - 1]`. A migration that only adds (a nullable column, a
/// table older binaries never touch) keeps the previous entry, so replicas can be upgraded one
/// at a time: an older replica runs beside a newer one on the newer schema. A migration older
/// binaries would misread raises it to its own version.
const READABLE_FROM: &[i64] = &[1];

const _: () = assert!(READABLE_FROM.len() == MIGRATIONS.len());

/// Whether a binary at `SCHEMA_VERSION` may use a database at `found` whose schema declares
/// itself usable from `readable_from` on.
fn usable(found: i64, readable_from: Option<i64>) -> bool {
    found <= SCHEMA_VERSION || readable_from.is_some_and(|r| r <= SCHEMA_VERSION)
}

/// The tables a chanmon database has (checked by `verify`).
pub(super) const TABLES: &[&str] = &[
    "monitors",
    "series",
    "history",
    "rollups",
    "meta",
    "tracker",
    "official_status",
    "incidents",
    "alert_state",
    "outbox",
    "schedule",
    "replicas",
];

/// The stored version; `None` when the database has no chanmon schema.
pub(super) fn version(c: &mut Client) -> Result<Option<i64>, StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('chanmon_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(None);
    }
    Ok(c.query_opt("SELECT version FROM chanmon_schema", &[])?
        .map(|r| r.get(0)))
}

/// What the database's schema says about older binaries (absent: nothing, so only binaries
/// at its version or newer use it).
fn readable_from(c: &mut impl ::postgres::GenericClient) -> Result<Option<i64>, StoreError> {
    let has: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_name = 'chanmon_schema' AND column_name = 'readable_from')",
            &[],
        )?
        .get(0);
    if !has {
        return Ok(None);
    }
    Ok(
        c.query_opt("SELECT readable_from FROM chanmon_schema", &[])?
            .and_then(|r| r.get(0)),
    )
}

/// Checks the version (and migrates, when `mode` allows it).
pub(super) fn prepare(c: &mut Client, url: &PgUrl, mode: OpenMode) -> Result<(), StoreError> {
    let too_new = |found| StoreError::TooNew {
        path: url.to_string(),
        found,
        supported: SCHEMA_VERSION,
    };
    match version(c)? {
        // Newer, but declared usable by this version's binaries (an additive change): used
        // as it is, never migrated back.
        Some(v) if v > SCHEMA_VERSION && usable(v, readable_from(c)?) => Ok(()),
        Some(v) if v > SCHEMA_VERSION => Err(too_new(v)),
        Some(v) if v == SCHEMA_VERSION || mode == OpenMode::ReadOnly => Ok(()),
        None if mode != OpenMode::Create => Err(StoreError::Missing {
            path: url.to_string(),
        }),
        _ => migrate(c, url).map_err(|e| match e {
            StoreError::Backend(m) => url.open_err(format!("cannot be migrated: {m}")),
            other => other,
        }),
    }
}

fn migrate(c: &mut Client, url: &PgUrl) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS chanmon_schema (version BIGINT NOT NULL);
         ALTER TABLE chanmon_schema ADD COLUMN IF NOT EXISTS readable_from BIGINT",
    )?;
    let version: i64 = match tx.query_opt("SELECT version FROM chanmon_schema", &[])? {
        Some(r) => r.get(0),
        None => {
            let foreign: bool = tx
                .query_one("SELECT to_regclass('monitors') IS NOT NULL", &[])?
                .get(0);
            if foreign {
                return Err(url.open_err(
                    "is not a chanmon database: it has a `monitors` table but no chanmon schema version; use an empty database",
                ));
            }
            tx.execute("INSERT INTO chanmon_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        if usable(version, readable_from(&mut tx)?) {
            return tx.commit().map_err(StoreError::from);
        }
        return Err(StoreError::TooNew {
            path: url.to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE chanmon_schema SET version = $1, readable_from = $2",
            &[&(i as i64 + 1), &READABLE_FROM[i]],
        )?;
    }
    tx.commit()?;
    Ok(())
}
