//! `chanmon migrate --to postgres://…`: copies a SQLite database into an EMPTY PostgreSQL
//! database in one transaction, every table with its keys unchanged (sealed secrets are copied
//! as bytes: they stay bound to their monitor and purpose, and open with the same master key),
//! then compares the row count of every table before committing.
//!
//! Rows stream from one SQLite read transaction into `COPY … FROM STDIN BINARY` (constant
//! memory whatever the size); the identity sequences are moved past the copied keys.

use std::path::Path;

use ::postgres::Client;
use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::types::{ToSql, Type};

use super::conn::{PgUrl, off_runtime};
use super::schema;
use crate::store::{OpenMode, StoreError};

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Clone, Copy)]
enum Col {
    /// BIGINT NOT NULL.
    Int,
    /// BIGINT, nullable.
    OptInt,
    Text,
    OptText,
    Bytes,
    OptBytes,
    Bool,
    OptFloat,
}

impl Col {
    fn pg_type(self) -> Type {
        match self {
            Col::Int | Col::OptInt => Type::INT8,
            Col::Text | Col::OptText => Type::TEXT,
            Col::Bytes | Col::OptBytes => Type::BYTEA,
            Col::Bool => Type::BOOL,
            Col::OptFloat => Type::FLOAT8,
        }
    }

    fn read(self, r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Box<dyn ToSql + Sync>> {
        Ok(match self {
            Col::Int => Box::new(r.get::<_, i64>(i)?),
            Col::OptInt => Box::new(r.get::<_, Option<i64>>(i)?),
            Col::Text => Box::new(r.get::<_, String>(i)?),
            Col::OptText => Box::new(r.get::<_, Option<String>>(i)?),
            Col::Bytes => Box::new(r.get::<_, Vec<u8>>(i)?),
            Col::OptBytes => Box::new(r.get::<_, Option<Vec<u8>>>(i)?),
            Col::Bool => Box::new(r.get::<_, bool>(i)?),
            Col::OptFloat => Box::new(r.get::<_, Option<f64>>(i)?),
        })
    }
}

use Col::*;

/// Every table in dependency order, with its columns (names shared by both schemas).
const TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "monitors",
        &[
            ("pk", Int),
            ("id", Text),
            ("name", Text),
            ("provider", Text),
            ("api", Text),
            ("endpoint", Text),
            ("grp", OptText),
            ("enabled", Bool),
            ("interval_ms", Int),
            ("models", Text),
            ("sealed_key", OptBytes),
            ("sealed_headers", OptBytes),
            ("key_error", OptText),
            ("updated_at", Int),
        ],
    ),
    (
        "series",
        &[
            ("pk", Int),
            ("monitor", Int),
            ("model", Text),
            ("location", Text),
        ],
    ),
    (
        "history",
        &[
            ("series", Int),
            ("started_at", Int),
            ("status", Int),
            ("kind", Int),
            ("http", OptInt),
            ("ttft_ms", OptInt),
            ("latency_ms", OptInt),
            ("ping_ms", OptInt),
            ("message", OptText),
            ("answered_model", OptText),
            ("tokens_in", OptInt),
            ("tokens_out", OptInt),
            ("tokens_reasoning", OptInt),
            ("cost_nano", OptInt),
            ("tps", OptFloat),
            ("due_at", OptInt),
        ],
    ),
    (
        "rollups",
        &[
            ("series", Int),
            ("bucket", Int),
            ("n_operational", Int),
            ("n_degraded", Int),
            ("n_failed", Int),
            ("n_error", Int),
            ("kinds", Bytes),
            ("latency_sum", Int),
            ("latency_n", Int),
            ("ttft_sum", Int),
            ("ttft_n", Int),
            ("hist", Bytes),
            ("usage_n", Int),
            ("tokens_in", Int),
            ("tokens_out", Int),
            ("tokens_reasoning", Int),
            ("cost_n", Int),
            ("cost_nano", Int),
            ("tps_hist", Bytes),
        ],
    ),
    ("meta", &[("key", Text), ("value", Int)]),
    (
        "tracker",
        &[
            ("series", Int),
            ("status", Int),
            ("kind", Int),
            ("since", Int),
            ("last_at", Int),
            ("consecutive", Int),
        ],
    ),
    (
        "official_status",
        &[
            ("url", Text),
            ("indicator", Text),
            ("description", Text),
            ("incidents", Text),
            ("checked_at", Int),
            ("error", OptText),
        ],
    ),
    (
        "incidents",
        &[
            ("pk", Int),
            ("uid", Text),
            ("series", Int),
            ("since", Int),
            ("opened_at", Int),
            ("resolved_at", OptInt),
            ("status", Int),
            ("kind", Int),
            ("message", OptText),
            ("muted", Bool),
            ("monitor", Int),
            ("model", Text),
            ("notified_at", OptInt),
        ],
    ),
    (
        "alert_state",
        &[
            ("series", Int),
            ("fail_run", Int),
            ("ok_run", Int),
            ("fail_since", OptInt),
            ("incident", OptInt),
            ("notified_at", OptInt),
            ("down", Bool),
        ],
    ),
    (
        "outbox",
        &[
            ("pk", Int),
            ("event_id", Text),
            ("sink", Text),
            ("incident", OptInt),
            ("event", Text),
            ("grp", Text),
            ("payload", Text),
            ("created_at", Int),
            ("next_at", Int),
            ("attempts", Int),
            ("state", Int),
            ("done_at", OptInt),
            ("last_error", OptText),
        ],
    ),
];

/// Tables whose `pk` is an identity column: its sequence must start after the copied keys.
const IDENTITY: &[&str] = &["monitors", "series", "incidents", "outbox"];

/// Rows copied per table, as counted in the source and in the target before the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("reading the SQLite database: {e}"))
}

/// Copies the SQLite database at `src` (already opened and migrated by the caller, so its
/// schema is current) into the empty PostgreSQL database `url`.
pub(crate) fn import_sqlite(src: &Path, url: &PgUrl) -> Result<Vec<TableCount>, StoreError> {
    off_runtime(|| {
        let sqlite = rusqlite::Connection::open_with_flags(
            src,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err)?;
        let mut client = url.connect(None)?;
        schema::prepare(&mut client, url, OpenMode::Create)?;
        let out = copy_all(&sqlite, &mut client, url);
        super::conn::drop_off_runtime(client);
        out
    })
}

fn copy_all(
    sqlite: &rusqlite::Connection,
    client: &mut Client,
    url: &PgUrl,
) -> Result<Vec<TableCount>, StoreError> {
    // One read snapshot of the source for the whole copy.
    sqlite.execute_batch("BEGIN").map_err(sqlite_err)?;
    let mut tx = client.transaction()?;
    for (table, _) in TABLES {
        let n: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
            .get(0);
        if n > 0 {
            return Err(url.open_err(format!(
                "is not empty ({table} has {n} rows): migrate copies into an empty database only; create a new one (createdb)"
            )));
        }
    }
    let mut counts = Vec::with_capacity(TABLES.len());
    for (table, cols) in TABLES {
        let source = copy_table(sqlite, &mut tx, table, cols)?;
        let target: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
            .get(0);
        counts.push(TableCount {
            table,
            source,
            target: target.max(0) as u64,
        });
    }
    for table in IDENTITY {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'pk'), coalesce(max(pk), 0) + 1, false) FROM {table}"
            ),
            &[],
        )?;
    }
    if let Some(c) = counts.iter().find(|c| c.source != c.target) {
        return Err(StoreError::Backend(format!(
            "{} rows of {} read, {} written; nothing was committed",
            c.source, c.table, c.target
        )));
    }
    tx.commit()?;
    sqlite.execute_batch("COMMIT").map_err(sqlite_err)?;
    Ok(counts)
}

/// Streams one table; returns the rows read.
fn copy_table(
    sqlite: &rusqlite::Connection,
    tx: &mut ::postgres::Transaction<'_>,
    table: &str,
    cols: &[(&str, Col)],
) -> Result<u64, StoreError> {
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let list = names.join(", ");
    let types: Vec<Type> = cols.iter().map(|c| c.1.pg_type()).collect();
    let sink = tx.copy_in(&format!("COPY {table} ({list}) FROM STDIN BINARY"))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut st = sqlite
        .prepare(&format!("SELECT {list} FROM {table}"))
        .map_err(sqlite_err)?;
    let mut rows = st.query([]).map_err(sqlite_err)?;
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(sqlite_err)? {
        let values = cols
            .iter()
            .enumerate()
            .map(|(i, (_, c))| c.read(r, i))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite_err)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        writer.write(&refs)?;
        n += 1;
    }
    writer.finish()?;
    Ok(n)
}
