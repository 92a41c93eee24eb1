//! Care of the data in SQLite: online backup (`VACUUM INTO`), the integrity check, comparing
//! rollups with raw rows, and swapping sealed secrets for `rekey`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Rows, TransactionBehavior, params};

use super::rollups::{ROLLUP_COLS, add_row};
use crate::model::{Kind, Status, Timestamp};
use crate::store::window::Rollup;
use crate::store::{
    BUCKET_MS, BackupReport, Reseal, RollupAudit, RollupMismatch, SealedSecret, SecretSlot,
    StoreError,
};

/// The `monitors` column holding a slot.
fn column(slot: SecretSlot) -> &'static str {
    match slot {
        SecretSlot::ApiKey => "sealed_key",
        SecretSlot::Headers => "sealed_headers",
    }
}

fn slot_name(slot: SecretSlot) -> &'static str {
    match slot {
        SecretSlot::ApiKey => "API key",
        SecretSlot::Headers => "header values",
    }
}

pub(super) fn sealed_secrets(conn: &Connection) -> Result<Vec<SealedSecret>, StoreError> {
    let mut st = conn.prepare("SELECT id, sealed_key, sealed_headers FROM monitors ORDER BY id")?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let owner: String = r.get(0)?;
        for (i, slot) in [(1, SecretSlot::ApiKey), (2, SecretSlot::Headers)] {
            if let Some(blob) = r.get::<_, Option<Vec<u8>>>(i)? {
                out.push(SealedSecret {
                    owner: owner.clone(),
                    slot,
                    blob,
                });
            }
        }
    }
    Ok(out)
}

/// Compare-and-swap of every change in one `IMMEDIATE` transaction: all or nothing.
pub(super) fn reseal(conn: &mut Connection, changes: &[Reseal]) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now().millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for c in changes {
        let col = column(c.old.slot);
        let n = tx.execute(
            &format!(
                "UPDATE monitors SET {col} = ?1, updated_at = ?2 WHERE id = ?3 AND {col} IS ?4"
            ),
            params![c.new, now, c.old.owner, c.old.blob],
        )?;
        if n != 1 {
            // Dropping the transaction rolls every earlier swap back.
            return Err(StoreError::Changed(format!(
                "the sealed {} of monitor `{}`",
                slot_name(c.old.slot),
                c.old.owner
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

/// `integrity_check` (or `quick_check`): the problems found, empty when sound. When damage
/// stops the check itself, each table is checked on its own, so the report can still name
/// the tables (and root pages) that cannot be read.
pub(super) fn check_integrity(conn: &Connection, quick: bool) -> Result<Vec<String>, StoreError> {
    let pragma = if quick {
        "quick_check"
    } else {
        "integrity_check"
    };
    match run_check(conn, &format!("PRAGMA {pragma}")) {
        Ok(lines) => Ok(lines),
        Err(e) if e.is_damaged() => match per_table(conn, pragma) {
            Ok(lines) if !lines.is_empty() => Ok(lines),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn run_check(conn: &Connection, sql: &str) -> Result<Vec<String>, StoreError> {
    let mut st = conn.prepare(sql)?;
    let lines: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(Vec::new());
    }
    Ok(lines)
}

fn per_table(conn: &Connection, pragma: &str) -> Result<Vec<String>, StoreError> {
    let tables: Vec<(String, i64)> = {
        let mut st = conn.prepare(
            "SELECT name, rootpage FROM sqlite_schema WHERE type = 'table' AND rootpage > 0
             ORDER BY rootpage",
        )?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for (name, root) in tables {
        let sql = format!("PRAGMA {pragma}('{}')", name.replace('\'', "''"));
        match run_check(conn, &sql) {
            Ok(lines) => out.extend(lines),
            Err(e) => out.push(format!(
                "table {name} (root page {root}) cannot be read: {}",
                match e {
                    StoreError::Damaged { detail, .. } => detail,
                    other => other.to_string(),
                }
            )),
        }
    }
    Ok(out)
}

fn backup_err(dest: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("backup to {}: {what}", dest.display()))
}

/// The absolute form of a path that may not exist yet (its directory must).
fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = fs::canonicalize(p) {
        return Some(c);
    }
    let dir = match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => fs::canonicalize(d).ok()?,
        None => std::env::current_dir().ok()?,
    };
    Some(dir.join(p.file_name()?))
}

/// `VACUUM INTO` a hidden file beside `dest` (one read snapshot: the writer is never blocked
/// in WAL mode, and the copy never restarts), checks the copy, syncs it, then moves it into
/// place: without `overwrite` by a hard link, which fails rather than replace a file that
/// appeared meanwhile.
pub(super) fn backup_to(
    conn: &Connection,
    source: &Path,
    dest: &Path,
    overwrite: bool,
) -> Result<BackupReport, StoreError> {
    let target = resolved(dest).ok_or_else(|| {
        backup_err(
            dest,
            "its directory does not exist (create it first) or has no file name",
        )
    })?;
    let src = fs::canonicalize(source).map_err(|e| backup_err(dest, e))?;
    let mut beside = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal", ".lock", ".key"] {
        let mut s = src.as_os_str().to_owned();
        s.push(suffix);
        beside.push(PathBuf::from(s));
    }
    if beside.contains(&target) {
        return Err(backup_err(
            dest,
            "that is the database itself (or one of its files); choose another file",
        ));
    }
    if target.is_dir() {
        return Err(backup_err(dest, "is a directory; name a file"));
    }
    if !overwrite && target.exists() {
        return Err(backup_err(dest, "the file already exists"));
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = target.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let result = write_checked_copy(conn, &partial).and_then(|report| {
        place(&partial, &target, overwrite)?;
        Ok(report)
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result.map_err(|e| match e {
        StoreError::Backend(m) if !m.starts_with("backup to") => backup_err(dest, m),
        other => other,
    })
}

/// The snapshot into `partial` (created empty with mode 0600 first: it holds sealed keys),
/// checked and synced.
fn write_checked_copy(conn: &Connection, partial: &Path) -> Result<BackupReport, StoreError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(partial)
        .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", partial.display())))?;
    let path = partial
        .to_str()
        .ok_or_else(|| StoreError::Backend("the backup path is not UTF-8".into()))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    // A read-only store is also `query_only`, which SQLite applies to the copy's file too.
    let query_only: bool = conn.query_row("PRAGMA query_only", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA query_only=OFF")?;
    let copied = conn.execute("VACUUM INTO ?1", params![path]);
    if query_only {
        conn.execute_batch("PRAGMA query_only=ON")?;
    }
    copied?;
    // Check the copy on a connection of its own; rollback journal, so no -wal beside it.
    let copy = Connection::open_with_flags(
        partial,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    copy.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get::<_, String>(0))?;
    let problems = check_integrity(&copy, false)
        .map_err(|e| StoreError::Backend(format!("the copy does not pass integrity_check: {e}")))?;
    if !problems.is_empty() {
        return Err(StoreError::Backend(format!(
            "the copy does not pass integrity_check: {}",
            problems.join("; ")
        )));
    }
    let copy_version: i64 = copy.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if copy_version != version {
        return Err(StoreError::Backend(format!(
            "the copy has schema version {copy_version}, the database {version}"
        )));
    }
    drop(copy);
    let file = File::open(partial).map_err(|e| StoreError::Backend(e.to_string()))?;
    file.sync_all()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let bytes = file
        .metadata()
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .len();
    Ok(BackupReport {
        bytes,
        checked: "integrity_check: ok".to_owned(),
    })
}

/// Moves the checked copy to `target`, durably.
fn place(partial: &Path, target: &Path, overwrite: bool) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Backend(e.to_string());
    if overwrite {
        fs::rename(partial, target).map_err(io)?;
    } else {
        match fs::hard_link(partial, target) {
            Ok(()) => fs::remove_file(partial).map_err(io)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Backend("the file already exists".into()));
            }
            // A file system without hard links: a plain rename, checked just before.
            Err(_) if !target.exists() => fs::rename(partial, target).map_err(io)?,
            Err(e) => return Err(io(e)),
        }
    }
    if let Some(dir) = target.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// One raw row, as the rollups count it.
struct RawRow {
    series: i64,
    bucket: i64,
    status: Status,
    kind: Kind,
    latency_ms: Option<u32>,
    ttft_ms: Option<u32>,
    /// Tokens, cost and throughput: the rollups carry their sums too.
    facts: crate::model::ReplyFacts,
}

fn read_raw(rows: &mut Rows<'_>) -> Result<Option<RawRow>, StoreError> {
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(RawRow {
        series: r.get(0)?,
        bucket: r.get::<_, i64>(1)?.div_euclid(BUCKET_MS),
        status: Status::from_code(r.get(2)?).unwrap_or(Status::Error),
        kind: Kind::from_code(r.get(3)?).unwrap_or(Kind::Internal),
        ttft_ms: r.get(4)?,
        latency_ms: r.get(5)?,
        facts: super::rollups::facts_from_row(r, 6)?,
    }))
}

type Key = (i64, i64);

/// The next hour of raw rows: its key, its aggregate and its row count. `ahead` holds the
/// first row of the following hour between calls.
fn next_raw_hour(
    rows: &mut Rows<'_>,
    ahead: &mut Option<RawRow>,
) -> Result<Option<(Key, Rollup, u64)>, StoreError> {
    let first = match ahead.take() {
        Some(r) => r,
        None => match read_raw(rows)? {
            Some(r) => r,
            None => return Ok(None),
        },
    };
    let key = (first.series, first.bucket);
    let mut acc = Rollup::default();
    acc.add(first.status, first.kind, first.latency_ms, first.ttft_ms);
    acc.add_facts(&first.facts);
    let mut n = 1;
    while let Some(r) = read_raw(rows)? {
        if (r.series, r.bucket) != key {
            *ahead = Some(r);
            break;
        }
        acc.add(r.status, r.kind, r.latency_ms, r.ttft_ms);
        acc.add_facts(&r.facts);
        n += 1;
    }
    Ok(Some((key, acc, n)))
}

/// Every hour from the first one wholly after `raw_from` (the same hours `rebuild_rollups`
/// recomputes): the stored rollup against the raw rows, both read in key order in one pass.
pub(super) fn audit_rollups(conn: &Connection, raw_from: i64) -> Result<RollupAudit, StoreError> {
    let first_bucket = if raw_from == i64::MIN {
        i64::MIN
    } else {
        raw_from.div_euclid(BUCKET_MS) + 1
    };
    let from_ms = first_bucket.saturating_mul(BUCKET_MS);
    let names: HashMap<i64, (String, String)> = {
        let mut st = conn.prepare(
            "SELECT s.pk, m.id, s.model FROM series s JOIN monitors m ON m.pk = s.monitor",
        )?;
        st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<Result<_, _>>()?
    };
    let mut raw_st = conn.prepare(
        "SELECT series, started_at, status, kind, ttft_ms, latency_ms,
             tokens_in, tokens_out, tokens_reasoning, cost_nano, tps FROM history
         WHERE started_at >= ?1 ORDER BY series, started_at",
    )?;
    let mut roll_st = conn.prepare(&format!(
        "SELECT {ROLLUP_COLS}, series, bucket FROM rollups WHERE bucket >= ?1
         ORDER BY series, bucket"
    ))?;
    let mut raw = raw_st.query(params![from_ms])?;
    let mut rolls = roll_st.query(params![first_bucket])?;
    let key_col = ROLLUP_COLS.split(',').count();
    let mut audit = RollupAudit {
        raw_from: (raw_from != i64::MIN).then_some(Timestamp(raw_from)),
        ..RollupAudit::default()
    };
    let mut ahead = None;
    let mut a = next_raw_hour(&mut raw, &mut ahead)?;
    let mut b = next_rollup_at(&mut rolls, key_col)?;
    loop {
        let order = match (&a, &b) {
            (None, None) => break,
            (Some((ka, ..)), Some((kb, _))) => ka.cmp(kb),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
        };
        let (key, stored, counted, n) = match order {
            Ordering::Equal => {
                let (key, counted, n) = a.take().expect("compared above");
                let (_, stored) = b.take().expect("compared above");
                a = next_raw_hour(&mut raw, &mut ahead)?;
                b = next_rollup_at(&mut rolls, key_col)?;
                (key, stored, counted, n)
            }
            // Raw rows without a rollup.
            Ordering::Less => {
                let (key, counted, n) = a.take().expect("compared above");
                a = next_raw_hour(&mut raw, &mut ahead)?;
                (key, Rollup::default(), counted, n)
            }
            // A rollup without raw rows.
            Ordering::Greater => {
                let (key, stored) = b.take().expect("compared above");
                b = next_rollup_at(&mut rolls, key_col)?;
                (key, stored, Rollup::default(), 0)
            }
        };
        audit.hours += 1;
        audit.rows += n;
        if stored != counted {
            note_mismatch(&mut audit, &names, key, &stored, &counted);
        }
    }
    Ok(audit)
}

/// Counts a disagreeing hour and lists the first few, by monitor and model.
fn note_mismatch(
    audit: &mut RollupAudit,
    names: &HashMap<i64, (String, String)>,
    key: Key,
    stored: &Rollup,
    counted: &Rollup,
) {
    audit.mismatched += 1;
    if audit.mismatches.len() < RollupAudit::MAX_LISTED {
        let (monitor, model) = names
            .get(&key.0)
            .cloned()
            .unwrap_or_else(|| (format!("(series {})", key.0), String::new()));
        audit.mismatches.push(RollupMismatch {
            monitor,
            model,
            hour: Timestamp(key.1.saturating_mul(BUCKET_MS)),
            rollup_checks: stored.by_status.iter().sum(),
            raw_checks: counted.by_status.iter().sum(),
        });
    }
}

/// A rollup row whose key columns follow the `key_col` rollup columns.
fn next_rollup_at(
    rows: &mut Rows<'_>,
    key_col: usize,
) -> Result<Option<(Key, Rollup)>, StoreError> {
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let mut acc = Rollup::default();
    add_row(&mut acc, r)?;
    Ok(Some(((r.get(key_col)?, r.get(key_col + 1)?), acc)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CheckResult, MonitorId};
    use crate::store::{MonitorRow, OpenMode, Storage};

    const H: i64 = BUCKET_MS;

    fn result(at: i64, status: Status, latency: u32) -> CheckResult {
        CheckResult {
            monitor: MonitorId::parse("m").unwrap(),
            model: "a".into(),
            started_at: Timestamp(at),
            status,
            kind: if status == Status::Operational {
                Kind::Ok
            } else {
                Kind::Timeout
            },
            http_status: Some(200),
            ttft_ms: Some(latency / 2),
            latency_ms: Some(latency),
            facts: Default::default(),
            ping_ms: None,
            message: String::new(),
            location: String::new(),
            due_at: None,
        }
    }

    fn store_with_rows(dir: &tempfile::TempDir) -> (crate::store::sqlite::SqliteStore, PathBuf) {
        let path = dir.path().join("c.db");
        let mut s = crate::store::sqlite::SqliteStore::open(&path, OpenMode::Create).unwrap();
        s.sync_monitors(&[MonitorRow {
            id: MonitorId::parse("m").unwrap(),
            name: "m".into(),
            provider: "openai".into(),
            api: "chat".into(),
            endpoint: "https://h/".into(),
            group: None,
            enabled: true,
            interval_ms: 60_000,
            models: vec!["a".into()],
            sealed_key: None,
            sealed_headers: None,
            key_error: None,
        }])
        .unwrap();
        let base = 1_000 * H;
        let rows: Vec<CheckResult> = (0..12)
            .map(|i| {
                let status = if i % 5 == 0 {
                    Status::Error
                } else {
                    Status::Operational
                };
                result(base + i * H / 4, status, 100 + i as u32 * 37)
            })
            .collect();
        s.insert_results(&rows).unwrap();
        (s, path)
    }

    #[test]
    fn rollups_written_with_their_rows_agree() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = store_with_rows(&dir);
        let audit = s.audit_rollups().unwrap();
        assert_eq!((audit.hours, audit.rows, audit.mismatched), (3, 12, 0));
        assert_eq!(audit.raw_from, None);
    }

    #[test]
    fn a_rollup_off_by_one_or_a_lost_row_is_found_and_rebuilding_fixes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, path) = store_with_rows(&dir);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE rollups SET latency_sum = latency_sum + 1 WHERE bucket = 1000",
            [],
        )
        .unwrap();
        conn.execute(
            "DELETE FROM history WHERE started_at = ?1",
            params![1_000 * H + 2 * H],
        )
        .unwrap();
        let audit = s.audit_rollups().unwrap();
        assert_eq!(audit.mismatched, 2, "{audit:?}");
        let m = &audit.mismatches[1];
        assert_eq!((m.monitor.as_str(), m.model.as_str()), ("m", "a"));
        assert_eq!(m.hour, Timestamp(1_002 * H));
        assert_eq!((m.rollup_checks, m.raw_checks), (4, 3));
        s.rebuild_rollups().unwrap();
        assert_eq!(s.audit_rollups().unwrap().mismatched, 0);
    }

    #[test]
    fn hours_before_the_prune_watermark_are_not_compared() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = store_with_rows(&dir);
        // Prune to the middle of the second hour: its rollup keeps rows that are gone.
        let cutoff = 1_001 * H + H / 2;
        s.prune(Timestamp(cutoff), std::time::Duration::ZERO, false)
            .unwrap();
        let audit = s.audit_rollups().unwrap();
        assert_eq!(audit.raw_from, Some(Timestamp(cutoff)));
        assert_eq!((audit.hours, audit.rows, audit.mismatched), (1, 4, 0));
    }

    #[test]
    fn integrity_names_a_table_whose_root_page_is_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store_with_rows(&dir);
        drop(s);
        let conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'history'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        let mut bytes = fs::read(&path).unwrap();
        let at = (root as usize - 1) * 4096;
        bytes[at..at + 4096].fill(0xA5);
        fs::write(&path, &bytes).unwrap();
        let s = crate::store::sqlite::SqliteStore::open(&path, OpenMode::ReadOnly).unwrap();
        for quick in [false, true] {
            let problems = s.check_integrity(quick).unwrap();
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(&format!("table history (root page {root})"))),
                "{problems:?}"
            );
        }
        assert_eq!(fs::read(&path).unwrap(), bytes, "checking wrote nothing");
    }
}
