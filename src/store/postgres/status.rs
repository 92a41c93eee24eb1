//! `status` in a handful of round trips, whatever the number of series: the latest result,
//! the tracker state and every window of every series come from one query each (plus one
//! per distinct raw edge), merged per series here. A query per series and window would cost
//! a round trip each: on a busy host that, not the work, is what a status of hundreds of
//! series would wait for.

use std::collections::HashMap;
use std::time::Duration;

use ::postgres::Client;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::ToSql;

use super::{RESULT_COLS, SeriesRef, monitors, rollups, row_to_result, series_matching, write};
use crate::model::{CheckResult, MonitorId, Timestamp};
use crate::pipeline::tracker::SeriesState;
use crate::store::window::{Part, Rollup, WindowStats, plan};
use crate::store::{StatusRow, StoreError};

/// Per series pk: one accumulator per requested window.
type Windows = HashMap<i64, Vec<Rollup>>;

pub(super) fn status(
    c: &mut Client,
    monitor: Option<&MonitorId>,
    now: Timestamp,
    windows: &[Duration],
    raw_from: i64,
) -> Result<Vec<StatusRow>, StoreError> {
    let stored: Vec<_> = monitors(c)?
        .into_iter()
        .filter(|m| monitor.is_none_or(|id| &m.id == id))
        .collect();
    let series = series_matching(c, monitor, None, None)?;
    let pks: Vec<i64> = series.iter().map(|s| s.pk).collect();
    let mut latest = latest(c, &pks, &series)?;
    let tracked = tracked(c, &pks)?;
    let plans: Vec<Vec<Part>> = windows
        .iter()
        .map(|w| plan(now.saturating_sub(*w).millis(), now.millis(), raw_from))
        .collect();
    let mut acc: Windows = pks
        .iter()
        .map(|pk| (*pk, vec![Rollup::default(); windows.len()]))
        .collect();
    add_buckets(c, &pks, &plans, &mut acc)?;
    add_raw_edges(c, &pks, &plans, &mut acc)?;
    let mut out = Vec::new();
    for m in stored {
        let mine: Vec<&SeriesRef> = series.iter().filter(|s| s.monitor == m.id).collect();
        let mut models = m.models.clone();
        if !m.enabled || models.is_empty() {
            for s in &mine {
                if !models.contains(&s.model) {
                    models.push(s.model.clone());
                }
            }
        }
        for model in models {
            // One row per location with results; one row (of the series with no location
            // when there is one) for a model never checked. As SQLite.
            let of_model: Vec<&SeriesRef> =
                mine.iter().copied().filter(|s| s.model == model).collect();
            let mut shown: Vec<Option<&SeriesRef>> = of_model
                .iter()
                .copied()
                .filter(|s| tracked.contains_key(&s.pk))
                .map(Some)
                .collect();
            if shown.is_empty() {
                let first = of_model
                    .iter()
                    .copied()
                    .find(|s| s.location.is_empty())
                    .or(of_model.first().copied());
                shown.push(first);
            }
            for s in shown {
                let pk = s.map(|s| s.pk);
                let sums = pk.and_then(|pk| acc.remove(&pk));
                let ws = windows
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let rollup = sums.as_ref().map(|s| s[i].clone()).unwrap_or_default();
                        (*w, WindowStats { rollup })
                    })
                    .collect();
                out.push(StatusRow {
                    official: None,
                    monitor: m.id.clone(),
                    name: m.name.clone(),
                    enabled: m.enabled,
                    key_unavailable: m.key_unavailable.clone(),
                    latest: pk.and_then(|pk| latest.remove(&pk)),
                    tracked: pk.and_then(|pk| tracked.get(&pk).copied()),
                    windows: ws,
                    model: model.clone(),
                    location: s.map(|s| s.location.clone()).unwrap_or_default(),
                    locations: None,
                });
            }
        }
    }
    crate::store::summarize_locations(&mut out);
    Ok(out)
}

/// The newest result of every series: an index probe each, in one statement.
fn latest(
    c: &mut Client,
    pks: &[i64],
    series: &[SeriesRef],
) -> Result<HashMap<i64, CheckResult>, StoreError> {
    let names: HashMap<i64, &SeriesRef> = series.iter().map(|s| (s.pk, s)).collect();
    let rows = c.query(
        &format!(
            "SELECT h.*, s.pk FROM unnest($1::bigint[]) AS s(pk)
             CROSS JOIN LATERAL (SELECT {RESULT_COLS} FROM history
                 WHERE series = s.pk ORDER BY started_at DESC LIMIT 1) AS h"
        ),
        &[&pks],
    )?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let pk: i64 = r.try_get(15)?;
        if let Some(s) = names.get(&pk) {
            out.insert(pk, row_to_result(r, s)?);
        }
    }
    Ok(out)
}

fn tracked(c: &mut Client, pks: &[i64]) -> Result<HashMap<i64, SeriesState>, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT {}, series FROM tracker WHERE series = ANY($1)",
            write::STATE_COLS
        ),
        &[&pks],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get(5)?, write::state_from_row(r, 0)?)))
        .collect()
}

/// Every rollup bucket any window needs, read once and added to each window covering it.
fn add_buckets(
    c: &mut Client,
    pks: &[i64],
    plans: &[Vec<Part>],
    acc: &mut Windows,
) -> Result<(), StoreError> {
    let spans: Vec<Vec<(i64, i64)>> = plans
        .iter()
        .map(|p| {
            p.iter()
                .filter_map(|part| match part {
                    Part::Buckets { lo, hi } => Some((*lo, *hi)),
                    Part::Raw { .. } => None,
                })
                .collect()
        })
        .collect();
    let (Some(lo), Some(hi)) = (
        spans.iter().flatten().map(|s| s.0).min(),
        spans.iter().flatten().map(|s| s.1).max(),
    ) else {
        return Ok(());
    };
    // Streamed: rows are added up while the server is still sending the rest.
    let sql = format!(
        "SELECT series, bucket, {} FROM rollups
         WHERE series = ANY($1) AND bucket >= $2 AND bucket < $3",
        rollups::ROLLUP_COLS
    );
    let params: [&(dyn ToSql + Sync); 3] = [&pks, &lo, &hi];
    let mut rows = c.query_raw(sql.as_str(), params)?;
    while let Some(r) = rows.next()? {
        let (series, bucket): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        let Some(sums) = acc.get_mut(&series) else {
            continue;
        };
        for (w, spans) in spans.iter().enumerate() {
            if spans.iter().any(|(lo, hi)| (*lo..*hi).contains(&bucket)) {
                rollups::add_row(&mut sums[w], &r, 2)?;
            }
        }
    }
    Ok(())
}

/// The raw edges: one query per distinct range (windows ending now share the last one).
fn add_raw_edges(
    c: &mut Client,
    pks: &[i64],
    plans: &[Vec<Part>],
    acc: &mut Windows,
) -> Result<(), StoreError> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for part in plans.iter().flatten() {
        if let Part::Raw { from, to } = part
            && !ranges.contains(&(*from, *to))
        {
            ranges.push((*from, *to));
        }
    }
    for (from, to) in ranges {
        let rows = c.query(
            &format!(
                "SELECT series, {} FROM history
                 WHERE series = ANY($1) AND started_at >= $2 AND started_at < $3",
                rollups::RAW_COLS
            ),
            &[&pks, &from, &to],
        )?;
        let mut per_series: HashMap<i64, Rollup> = HashMap::new();
        for r in &rows {
            rollups::add_raw(per_series.entry(r.try_get(0)?).or_default(), r, 1)?;
        }
        for (w, p) in plans.iter().enumerate() {
            let uses = p
                .iter()
                .any(|part| matches!(part, Part::Raw { from: f, to: t } if (*f, *t) == (from, to)));
            if !uses {
                continue;
            }
            for (series, r) in &per_series {
                if let Some(sums) = acc.get_mut(series) {
                    sums[w].merge(r);
                }
            }
        }
    }
    Ok(())
}
