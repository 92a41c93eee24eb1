//! Care of a PostgreSQL database: sealed secrets and their compare-and-swap, the integrity
//! check (what chanmon can honestly check from a client), and the rollup audit.

use std::collections::{BTreeMap, HashMap};

use ::postgres::Client;

use super::rollups::{self, ROLLUP_COLS};
use super::schema;
use crate::model::Timestamp;
use crate::store::window::Rollup;
use crate::store::{
    BUCKET_MS, Reseal, RollupAudit, RollupMismatch, SealedSecret, SecretSlot, StoreError,
};

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

pub(super) fn sealed_secrets(c: &mut Client) -> Result<Vec<SealedSecret>, StoreError> {
    let mut out = Vec::new();
    for r in c.query(
        "SELECT id, sealed_key, sealed_headers FROM monitors ORDER BY id",
        &[],
    )? {
        let owner: String = r.try_get(0)?;
        for (i, slot) in [(1, SecretSlot::ApiKey), (2, SecretSlot::Headers)] {
            if let Some(blob) = r.try_get::<_, Option<Vec<u8>>>(i)? {
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

/// Compare-and-swap of every change in one transaction: all or nothing.
pub(super) fn reseal(c: &mut Client, changes: &[Reseal]) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now().millis();
    let mut tx = c.transaction()?;
    for ch in changes {
        let col = column(ch.old.slot);
        let n = tx.execute(
            &format!(
                "UPDATE monitors SET {col} = $1, updated_at = $2
                 WHERE id = $3 AND {col} IS NOT DISTINCT FROM $4"
            ),
            &[&ch.new, &now, &ch.old.owner, &ch.old.blob],
        )?;
        if n != 1 {
            // Dropping the transaction rolls every earlier swap back.
            return Err(StoreError::Changed(format!(
                "the sealed {} of monitor `{}`",
                slot_name(ch.old.slot),
                ch.old.owner
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

/// What a client can check: the schema version and every table present and readable. The
/// server's own on-disk checks (`amcheck`, checksums) are its administrator's tools.
pub(super) fn check_integrity(c: &mut Client, quick: bool) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    match schema::version(c)? {
        None => problems.push("no chanmon schema (table chanmon_schema missing)".to_owned()),
        Some(v) if v != schema::SCHEMA_VERSION => problems.push(format!(
            "schema version {v}, this chanmon writes {}",
            schema::SCHEMA_VERSION
        )),
        Some(_) => {}
    }
    for t in schema::TABLES {
        let present: bool = c
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[t])?
            .get(0);
        if !present {
            problems.push(format!("table {t} is missing"));
        } else if !quick && let Err(e) = c.query_one(&format!("SELECT count(*) FROM {t}"), &[]) {
            problems.push(format!("table {t} cannot be read: {}", StoreError::from(e)));
        }
    }
    Ok(problems)
}

/// Every hour wholly after `raw_from`: the stored rollup against the raw rows, in one
/// REPEATABLE READ snapshot. Raw rows are summed per hour as they stream through a cursor.
pub(super) fn audit_rollups(c: &mut Client, raw_from: i64) -> Result<RollupAudit, StoreError> {
    let first_bucket = if raw_from == i64::MIN {
        i64::MIN
    } else {
        raw_from.div_euclid(BUCKET_MS) + 1
    };
    let from_ms = first_bucket.saturating_mul(BUCKET_MS);
    let mut tx = c
        .build_transaction()
        .isolation_level(::postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let names: HashMap<i64, (String, String)> = tx
        .query(
            "SELECT s.pk, m.id, s.model FROM series s JOIN monitors m ON m.pk = s.monitor",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut hours: BTreeMap<(i64, i64), (Rollup, Rollup, u64)> = BTreeMap::new();
    let portal = tx.bind(
        &format!(
            "SELECT series, started_at, {} FROM history WHERE started_at >= $1",
            rollups::RAW_COLS
        ),
        &[&from_ms],
    )?;
    loop {
        let rows = tx.query_portal(&portal, 10_000)?;
        for r in &rows {
            let at: i64 = r.try_get(1)?;
            let e = hours
                .entry((r.try_get(0)?, at.div_euclid(BUCKET_MS)))
                .or_default();
            rollups::add_raw(&mut e.1, r, 2)?;
            e.2 += 1;
        }
        if rows.len() < 10_000 {
            break;
        }
    }
    for r in tx.query(
        &format!("SELECT series, bucket, {ROLLUP_COLS} FROM rollups WHERE bucket >= $1"),
        &[&first_bucket],
    )? {
        let e = hours.entry((r.try_get(0)?, r.try_get(1)?)).or_default();
        rollups::add_row(&mut e.0, &r, 2)?;
    }
    tx.commit()?;
    let mut audit = RollupAudit {
        raw_from: (raw_from != i64::MIN).then_some(Timestamp(raw_from)),
        ..RollupAudit::default()
    };
    for (key, (stored, counted, n)) in hours {
        audit.hours += 1;
        audit.rows += n;
        if stored != counted {
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
    }
    Ok(audit)
}
