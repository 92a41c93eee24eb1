//! The read model: what the HTTP routes show, kept in memory and up to date as results
//! arrive, so that no request does work proportional to the history and no request reads
//! the database at all.
//!
//! A [`Model`] owns the mutable [`State`] (behind a mutex, touched only by the refresher task)
//! and publishes immutable [`View`]s (an `Arc` swapped under a read-write lock). A request
//! takes the current view and renders it; each view caches its rendered bodies, so repeated
//! requests between two publications cost a copy of bytes.
//!
//! Where the state comes from:
//! - a load from the database through a read-only connection (the latest result, the tracker
//!   and the 24h/7d/30d windows per series from the rollups, 90 daily and 24 hourly buckets):
//!   bounded by series × buckets, never by the raw history; done at start and every
//!   `reload` (and again when the UTC day turns);
//! - between loads, each committed result (from the result bus in the daemon, from a poll of
//!   new rows in `chanmon serve`) is applied to its series: latest, tracker, windows, today's
//!   bar, this hour's sparkline point, and the `/metrics` counters.
//!
//! When `show_details` is off, everything that could carry an endpoint or text from an
//! upstream (messages, key problems' reasons, status-page readings) is removed here, before
//! any renderer sees it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use crate::config::Config;
use crate::model::{CheckResult, MonitorId, Status, Timestamp};
use crate::pipeline::tracker::{self, Step};
use crate::store::{BucketSummary, StatusRow, Storage, StoreError};

use super::metrics::SeriesMetrics;

/// The availability windows every page and the API show.
pub(crate) const WINDOWS: [Duration; 3] = [
    Duration::from_secs(86_400),
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(30 * 86_400),
];
/// Daily bars on the page.
pub(crate) const DAYS: usize = 90;
/// Hourly latency points kept per series: a week (the monitor page's 7-day chart; the
/// overview's sparkline shows the last 24).
pub(crate) const HOURS: usize = 7 * 24;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Checks by status over one bucket (`Status::code()` order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts(pub [u64; 4]);

impl Counts {
    pub(crate) fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    pub(crate) fn up(&self) -> u64 {
        self.0[Status::Operational.code() as usize] + self.0[Status::Degraded.code() as usize]
    }
    /// Share of checks that answered (operational or degraded); `None` without checks.
    pub(crate) fn availability(&self) -> Option<f64> {
        let n = self.total();
        (n > 0).then(|| self.up() as f64 / n as f64)
    }
    fn add(&mut self, o: &[u64; 4]) {
        for (a, b) in self.0.iter_mut().zip(o) {
            *a += b;
        }
    }
}

/// An hour's latency of answered checks (sum and count, so results can be added).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HourLatency {
    pub sum: u64,
    pub n: u64,
}

impl HourLatency {
    pub(crate) fn avg(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }
}

/// One model of one monitor.
#[derive(Debug, Clone)]
pub(crate) struct SeriesView {
    /// The same row `chanmon status` prints (details removed unless `show_details`).
    pub row: StatusRow,
    /// `DAYS` entries, oldest first; the last is today (UTC).
    pub days: Vec<Counts>,
    /// `HOURS` entries, oldest first; the last is the current hour.
    pub hours: Vec<HourLatency>,
}

impl SeriesView {
    /// The status shown: a key problem outranks the newest result (no next one will come).
    pub(crate) fn status(&self) -> Option<Status> {
        if self.row.key_unavailable.is_some() {
            return Some(Status::Error);
        }
        self.row.latest.as_ref().map(|l| l.status)
    }
}

/// What the alerting side says about a monitor, shown beside its own status: an open
/// incident, or a maintenance window now (which mutes its alerts). Refreshed at every load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    Incident(String),
    Maintenance(String),
}

#[derive(Debug, Clone)]
pub(crate) struct MonitorView {
    pub id: MonitorId,
    pub name: String,
    pub group: Option<String>,
    pub provider: String,
    /// Only with `show_details`.
    pub endpoint: Option<String>,
    pub enabled: bool,
    pub series: Vec<SeriesView>,
    /// A maintenance window now, else its open incidents (see [`Notice`]).
    pub notice: Option<Notice>,
}

impl MonitorView {
    /// Recomputes each model's combined view across its locations after a result moved one
    /// (the rows stay as `status` made them: one per location with results).
    fn summarize_locations(&mut self) {
        let mut rows: Vec<StatusRow> = self.series.iter().map(|s| s.row.clone()).collect();
        crate::store::summarize_locations(&mut rows);
        for (s, r) in self.series.iter_mut().zip(rows) {
            s.row.locations = r.locations;
        }
    }

    /// The worst status among the models (`None`: none checked yet).
    pub(crate) fn worst(&self) -> Option<Status> {
        self.series
            .iter()
            .filter_map(SeriesView::status)
            .max_by_key(|s| s.code())
    }

    /// Per day, the worst model's counts (lowest availability; a day without checks loses to
    /// any day with some only when every model lacks checks).
    pub(crate) fn worst_days(&self) -> Vec<Counts> {
        (0..DAYS)
            .map(|i| {
                self.series
                    .iter()
                    .filter_map(|s| s.days.get(i).copied())
                    .filter(|c| c.total() > 0)
                    .min_by(|a, b| {
                        let (x, y) = (a.availability(), b.availability());
                        x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
                    })
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Bodies rendered from one view, kept with it.
#[derive(Default)]
pub(crate) struct Cached {
    pub page: OnceLock<super::Body>,
    pub status_json: OnceLock<super::Body>,
    pub monitors_json: OnceLock<super::Body>,
    pub metrics: OnceLock<String>,
}

/// One published state of the model: immutable, shared by every request that reads it.
pub(crate) struct View {
    pub version: u64,
    /// When this view was published.
    pub at: Timestamp,
    /// Start of the first day bar (UTC midnight).
    pub day0: Timestamp,
    /// Start of the first sparkline hour.
    pub hour0: Timestamp,
    /// Sorted by group (ungrouped last), then id.
    pub monitors: Vec<Arc<MonitorView>>,
    pub index: Arc<HashMap<MonitorId, usize>>,
    pub show_details: bool,
    pub cache: Cached,
}

impl View {
    pub(crate) fn monitor(&self, id: &MonitorId) -> Option<&MonitorView> {
        self.index
            .get(id)
            .and_then(|i| self.monitors.get(*i))
            .map(|m| &**m)
    }
}

/// What the config adds to the stored monitors: groups, providers and (with details) endpoints.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConfigFacts {
    pub show_details: bool,
    monitors: HashMap<MonitorId, (Option<String>, String, String)>,
    /// The maintenance windows (`[[maintenance]]`), for the notices.
    alerts: Arc<crate::alert::AlertsConfig>,
}

impl ConfigFacts {
    pub(crate) fn new(config: &Config) -> ConfigFacts {
        ConfigFacts {
            show_details: config.http.show_details,
            monitors: config
                .monitors
                .iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        (
                            m.group.clone(),
                            m.provider.as_str().to_owned(),
                            m.endpoint.to_string(),
                        ),
                    )
                })
                .collect(),
            alerts: Arc::new(config.alerts.clone()),
        }
    }
}

/// The mutable side, owned by the refresher.
struct State {
    monitors: Vec<Arc<MonitorView>>,
    index: Arc<HashMap<MonitorId, usize>>,
    /// (monitor index, series index) per series.
    series: HashMap<SeriesKey, (usize, usize)>,
    day0: i64,
    hour0: i64,
    /// Set by a result that names a series the model does not know: the next tick reloads.
    unknown_seen: bool,
    dirty: bool,
}

/// The shared model: the refresher writes, requests read.
pub(crate) struct Model {
    state: Mutex<State>,
    view: RwLock<Arc<View>>,
    version: AtomicI64,
    /// The last load from the database succeeded.
    pub db_ok: AtomicBool,
    /// Wall-clock ms of the last successful load.
    pub loaded_at: AtomicI64,
    pub metrics: SeriesMetrics,
    facts: Mutex<ConfigFacts>,
}

impl Model {
    pub(crate) fn new(facts: ConfigFacts) -> Model {
        let now = Timestamp::now();
        let empty = View {
            version: 0,
            at: now,
            day0: Timestamp(day_start(now) - (DAYS as i64 - 1) * DAY_MS),
            hour0: Timestamp(hour_start(now) - (HOURS as i64 - 1) * HOUR_MS),
            monitors: Vec::new(),
            index: Arc::default(),
            show_details: facts.show_details,
            cache: Cached::default(),
        };
        Model {
            state: Mutex::new(State {
                monitors: Vec::new(),
                index: Arc::default(),
                series: HashMap::new(),
                day0: empty.day0.millis(),
                hour0: empty.hour0.millis(),
                unknown_seen: false,
                dirty: false,
            }),
            view: RwLock::new(Arc::new(empty)),
            version: AtomicI64::new(0),
            db_ok: AtomicBool::new(false),
            loaded_at: AtomicI64::new(0),
            metrics: SeriesMetrics::new(),
            facts: Mutex::new(facts),
        }
    }

    /// The view requests render.
    pub(crate) fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces what the config says (after a reload of the config).
    #[allow(dead_code)]
    pub(crate) fn set_facts(&self, facts: ConfigFacts) {
        *self.facts.lock().unwrap_or_else(|p| p.into_inner()) = facts;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a result named a series the model does not know (a reload will pick it up).
    pub(crate) fn needs_reload(&self) -> bool {
        self.state().unknown_seen
    }

    /// Publishes the state as a new view when it changed since the last one.
    /// Returns whether a new view was published.
    pub(crate) fn publish(&self) -> bool {
        let mut st = self.state();
        if !st.dirty {
            return false;
        }
        st.dirty = false;
        let view = View {
            version: self.version.fetch_add(1, Relaxed) as u64 + 1,
            at: Timestamp::now(),
            day0: Timestamp(st.day0),
            hour0: Timestamp(st.hour0),
            monitors: st.monitors.clone(),
            index: st.index.clone(),
            show_details: self
                .facts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .show_details,
            cache: Cached::default(),
        };
        drop(st);
        self.metrics.set_gauges(&view);
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
        true
    }

    /// Applies committed results (any order; each series keeps only what is newer than what
    /// it has). `each_once`: every result arrives exactly once (the bus), so the `/metrics`
    /// counters count each; otherwise (a poll) only the results the model takes count.
    pub(crate) fn apply(&self, results: &[Arc<CheckResult>], each_once: bool) {
        let mut st = self.state();
        let show = self
            .facts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .show_details;
        for r in results {
            if each_once {
                self.metrics.observe(r, &taken_provider(&st, r));
            }
            let taken = apply_one(&mut st, r, show);
            if taken && !each_once {
                self.metrics.observe(r, &taken_provider(&st, r));
            }
        }
    }

    /// Reads everything the model shows from `store` (blocking: call from a blocking thread).
    /// `days` also reloads the 90 daily bars (one grouped scan of 90 days of rollups);
    /// otherwise the bars of the previous load are kept and today's is recomputed.
    pub(crate) fn load(&self, store: &dyn Storage, days: bool) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let result = read_all(store, now, days, &self.previous_days());
        match result {
            Ok(loaded) => {
                let facts = self.facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let built = build(loaded, &facts, now);
                let mut st = self.state();
                *st = built;
                drop(st);
                self.db_ok.store(true, Relaxed);
                self.loaded_at.store(now.millis(), Relaxed);
                let _ = self.publish();
                Ok(())
            }
            Err(e) => {
                self.db_ok.store(false, Relaxed);
                Err(e)
            }
        }
    }

    /// The daily bars of the last load, per series (kept between loads that skip them).
    fn previous_days(&self) -> HashMap<SeriesKey, (i64, Vec<Counts>)> {
        let st = self.state();
        let mut out = HashMap::new();
        for m in &st.monitors {
            for s in &m.series {
                out.insert(
                    (m.id.clone(), s.row.model.clone(), s.row.location.clone()),
                    (st.day0, s.days.clone()),
                );
            }
        }
        out
    }

    /// Whether the UTC day changed since the last load (the bars must shift).
    pub(crate) fn day_turned(&self) -> bool {
        let st = self.state();
        day_start(Timestamp::now()) - (DAYS as i64 - 1) * DAY_MS != st.day0
    }
}

fn day_start(t: Timestamp) -> i64 {
    t.millis().div_euclid(DAY_MS) * DAY_MS
}

fn hour_start(t: Timestamp) -> i64 {
    t.millis().div_euclid(HOUR_MS) * HOUR_MS
}

/// What one load reads.
struct Loaded {
    rows: Vec<StatusRow>,
    /// Open incidents (one per failing model).
    incidents: Vec<crate::store::IncidentRow>,
    hours: Vec<BucketSummary>,
    days: HashMap<SeriesKey, Vec<Counts>>,
    day0: i64,
    hour0: i64,
}

fn read_all(
    store: &dyn Storage,
    now: Timestamp,
    with_days: bool,
    previous: &HashMap<SeriesKey, (i64, Vec<Counts>)>,
) -> Result<Loaded, StoreError> {
    let day0 = day_start(now) - (DAYS as i64 - 1) * DAY_MS;
    let hour0 = hour_start(now) - (HOURS as i64 - 1) * HOUR_MS;
    let rows = store.status(None, now, &WINDOWS)?;
    let incidents = store.incidents(&crate::store::IncidentQuery {
        open_only: true,
        ..Default::default()
    })?;
    let hours = store.bucket_summaries(Timestamp(hour0), false)?;
    let mut days: HashMap<SeriesKey, Vec<Counts>> = HashMap::new();
    if with_days {
        for b in store.bucket_summaries(Timestamp(day0), true)? {
            let i = (b.start.millis() - day0).div_euclid(DAY_MS);
            if let Ok(i) = usize::try_from(i)
                && i < DAYS
            {
                days.entry((b.monitor, b.model, b.location))
                    .or_insert_with(|| vec![Counts::default(); DAYS])[i]
                    .add(&b.by_status);
            }
        }
    } else {
        for (k, (old0, bars)) in previous {
            // Same day0 as before (a turned day forces a full load): keep all but today.
            if *old0 == day0 {
                let mut v = bars.clone();
                if let Some(last) = v.last_mut() {
                    *last = Counts::default();
                }
                days.insert(k.clone(), v);
            }
        }
        // Today from the hourly buckets (today's hours all lie within the last 24).
        let today = day_start(now);
        for b in &hours {
            if b.start.millis() >= today {
                days.entry((b.monitor.clone(), b.model.clone(), b.location.clone()))
                    .or_insert_with(|| vec![Counts::default(); DAYS])[DAYS - 1]
                    .add(&b.by_status);
            }
        }
    }
    Ok(Loaded {
        rows,
        incidents,
        hours,
        days,
        day0,
        hour0,
    })
}

fn build(loaded: Loaded, facts: &ConfigFacts, now: Timestamp) -> State {
    let Loaded {
        rows,
        incidents,
        hours,
        mut days,
        day0,
        hour0,
    } = loaded;
    let mut hourly: HashMap<SeriesKey, Vec<HourLatency>> = HashMap::new();
    for b in hours {
        let i = (b.start.millis() - hour0).div_euclid(HOUR_MS);
        if let Ok(i) = usize::try_from(i)
            && i < HOURS
        {
            let v = hourly
                .entry((b.monitor, b.model, b.location))
                .or_insert_with(|| vec![HourLatency::default(); HOURS]);
            v[i].sum += b.latency_sum;
            v[i].n += b.latency_n;
        }
    }
    let mut monitors: Vec<MonitorView> = Vec::new();
    for mut row in rows {
        if !facts.show_details {
            hide_details(&mut row);
        }
        let key = (row.monitor.clone(), row.model.clone(), row.location.clone());
        let series = SeriesView {
            days: days
                .remove(&key)
                .unwrap_or_else(|| vec![Counts::default(); DAYS]),
            hours: hourly
                .remove(&key)
                .unwrap_or_else(|| vec![HourLatency::default(); HOURS]),
            row,
        };
        match monitors.last_mut() {
            Some(m) if m.id == series.row.monitor => m.series.push(series),
            _ => {
                let (group, provider, endpoint) = facts
                    .monitors
                    .get(&series.row.monitor)
                    .cloned()
                    .unwrap_or((None, String::new(), String::new()));
                monitors.push(MonitorView {
                    id: series.row.monitor.clone(),
                    name: series.row.name.clone(),
                    group,
                    provider,
                    endpoint: (facts.show_details && !endpoint.is_empty()).then_some(endpoint),
                    enabled: series.row.enabled,
                    series: vec![series],
                    notice: None,
                });
            }
        }
    }
    set_notices(&mut monitors, &incidents, facts, now);
    // Groups in name order, ungrouped last; monitors by id inside a group.
    monitors.sort_by(|a, b| {
        (a.group.is_none(), &a.group, &a.id).cmp(&(b.group.is_none(), &b.group, &b.id))
    });
    let mut index = HashMap::with_capacity(monitors.len());
    let mut series = HashMap::new();
    for (mi, m) in monitors.iter().enumerate() {
        index.insert(m.id.clone(), mi);
        for (si, s) in m.series.iter().enumerate() {
            series.insert(
                (m.id.clone(), s.row.model.clone(), s.row.location.clone()),
                (mi, si),
            );
        }
    }
    State {
        monitors: monitors.into_iter().map(Arc::new).collect(),
        index: Arc::new(index),
        series,
        day0,
        hour0,
        unknown_seen: false,
        dirty: true,
    }
}

/// Removes everything that could carry an endpoint or upstream text from a row.
/// A maintenance window now wins (its incidents are muted); otherwise the open incidents, one
/// `model: status (kind) since …` each. Statuses and kinds only: safe without `show_details`.
fn set_notices(
    monitors: &mut [MonitorView],
    incidents: &[crate::store::IncidentRow],
    facts: &ConfigFacts,
    now: Timestamp,
) {
    let mut open: HashMap<&MonitorId, Vec<String>> = HashMap::new();
    for i in incidents {
        open.entry(&i.monitor).or_default().push(format!(
            "{}: {} ({}) since {}",
            i.model,
            i.status,
            i.kind,
            i.since.to_rfc3339()
        ));
    }
    for m in monitors.iter_mut() {
        m.notice = if facts
            .alerts
            .maintenance_at(&m.id, m.group.as_deref(), now)
            .is_some()
        {
            Some(Notice::Maintenance(
                "alerts muted; results are still recorded".into(),
            ))
        } else {
            open.get(&m.id).map(|v| Notice::Incident(v.join("; ")))
        };
    }
}

fn hide_details(row: &mut StatusRow) {
    if let Some(l) = &mut row.latest {
        hide_result(l);
    }
    if row.key_unavailable.is_some() {
        row.key_unavailable = Some("key unavailable".to_owned());
    }
    row.official = None;
}

/// A result without its message text (the status, kind and figures stay).
pub(crate) fn hide_result(r: &mut CheckResult) {
    r.message.clear();
    r.facts.answered_model = None;
}

fn taken_provider(st: &State, r: &CheckResult) -> String {
    st.series
        .get(&key_of(r))
        .and_then(|(mi, _)| st.monitors.get(*mi))
        .map(|m| m.provider.clone())
        .unwrap_or_default()
}

/// Applies one result to its series; false when the series is unknown or already has it.
fn apply_one(st: &mut State, r: &CheckResult, show: bool) -> bool {
    let Some(&(mi, si)) = st.series.get(&key_of(r)) else {
        st.unknown_seen = true;
        return false;
    };
    let (day0, hour0) = (st.day0, st.hour0);
    let Some(m) = st.monitors.get_mut(mi) else {
        return false;
    };
    // Each series only moves forward: what a load already counted is not counted twice.
    let newer = |s: &SeriesView| {
        s.row
            .latest
            .as_ref()
            .is_none_or(|l| r.started_at > l.started_at)
    };
    if !m.series.get(si).is_some_and(newer) {
        return false;
    }
    let m = Arc::make_mut(m);
    let Some(s) = m.series.get_mut(si) else {
        return false;
    };
    let mut shown = r.clone();
    if !show {
        hide_result(&mut shown);
    }
    match tracker::advance(s.row.tracked.as_ref(), r) {
        Step::Stale => {}
        Step::Same(next) | Step::Changed(next) => s.row.tracked = Some(next),
    }
    s.row.latest = Some(shown);
    for (_, w) in &mut s.row.windows {
        w.rollup.add(r.status, r.kind, r.latency_ms, r.ttft_ms);
        w.rollup.add_facts(&r.facts);
    }
    let day = (r.started_at.millis() - day0).div_euclid(DAY_MS);
    if let Ok(d) = usize::try_from(day)
        && let Some(c) = s.days.get_mut(d)
    {
        c.0[r.status.code() as usize] += 1;
    }
    let hour = (r.started_at.millis() - hour0).div_euclid(HOUR_MS);
    if let Ok(h) = usize::try_from(hour)
        && let Some(hl) = s.hours.get_mut(h)
        && r.status.is_up()
        && let Some(l) = r.latency_ms
    {
        hl.sum += u64::from(l);
        hl.n += 1;
    }
    if s.row.locations.is_some() {
        m.summarize_locations();
    }
    st.dirty = true;
    true
}

/// (monitor, model, location): a series of the read model.
type SeriesKey = (MonitorId, String, String);

fn key_of(r: &CheckResult) -> SeriesKey {
    (r.monitor.clone(), r.model.clone(), r.location.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_counts_answers() {
        let c = Counts([3, 1, 0, 4]);
        assert_eq!(c.total(), 8);
        assert_eq!(c.availability(), Some(0.5));
        assert_eq!(Counts::default().availability(), None);
    }

    fn row(id: &str, model: &str) -> StatusRow {
        StatusRow {
            monitor: MonitorId::parse(id).unwrap(),
            name: format!("{id} name"),
            model: model.into(),
            location: String::new(),
            locations: None,
            enabled: true,
            key_unavailable: None,
            latest: None,
            tracked: None,
            windows: WINDOWS.iter().map(|d| (*d, Default::default())).collect(),
            official: None,
        }
    }

    fn result(id: &str, model: &str, at: i64, status: Status, message: &str) -> Arc<CheckResult> {
        let kind = match status {
            Status::Operational => crate::model::Kind::Ok,
            _ => crate::model::Kind::Timeout,
        };
        Arc::new(CheckResult {
            status,
            latency_ms: Some(100),
            ..CheckResult::error(
                MonitorId::parse(id).unwrap(),
                model.into(),
                Timestamp(at),
                kind,
                message.into(),
            )
        })
    }

    /// A model with two monitors (one grouped), loaded from rows, then fed results.
    fn loaded(show_details: bool) -> Model {
        let model = Model::new(ConfigFacts {
            show_details,
            ..ConfigFacts::default()
        });
        let now = Timestamp::now();
        let day0 = day_start(now) - (DAYS as i64 - 1) * DAY_MS;
        let hour0 = hour_start(now) - (HOURS as i64 - 1) * HOUR_MS;
        let mut st = build(
            Loaded {
                rows: vec![row("b", "x"), row("b", "y"), row("a", "x")],
                incidents: Vec::new(),
                hours: Vec::new(),
                days: HashMap::new(),
                day0,
                hour0,
            },
            &model.facts.lock().unwrap(),
            now,
        );
        st.dirty = true;
        *model.state.lock().unwrap() = st;
        let _ = model.publish();
        model
    }

    #[test]
    fn results_move_each_series_forward_once() {
        let model = loaded(false);
        let now = Timestamp::now().millis();
        let first = result("b", "x", now - 2_000, Status::Operational, "");
        let second = result(
            "b",
            "x",
            now - 1_000,
            Status::Error,
            "upstream said https://leak.example",
        );
        model.apply(&[first.clone(), second.clone()], true);
        // The same results again (a reload raced the bus) and an older one change nothing.
        model.apply(&[first, second], true);
        let _ = model.publish();
        let view = model.view();
        let b = view.monitor(&MonitorId::parse("b").unwrap()).unwrap();
        let x = &b.series[0];
        assert_eq!(x.row.latest.as_ref().unwrap().status, Status::Error);
        assert!(
            x.row.latest.as_ref().unwrap().message.is_empty(),
            "details hidden"
        );
        assert_eq!(x.row.tracked.unwrap().consecutive, 1);
        assert_eq!(x.row.windows[0].1.total(), 2, "each result counted once");
        assert_eq!(x.days[DAYS - 1], Counts([1, 0, 0, 1]), "today's bar");
        assert_eq!(b.worst(), Some(Status::Error));
        assert_eq!(b.series[1].status(), None, "y was never checked");
        assert_eq!(view.version, 2);
        // Monitors are sorted by id within the (absent) group.
        assert_eq!(view.monitors[0].id.as_str(), "a");
        // An unknown series asks for a reload instead of being dropped silently.
        assert!(!model.needs_reload());
        model.apply(&[result("new", "x", now, Status::Operational, "")], true);
        assert!(model.needs_reload());
    }

    #[test]
    fn notices_show_open_incidents_and_maintenance_wins() {
        use crate::alert::maintenance::{Maintenance, When};
        let now = Timestamp::now();
        let id = |s: &str| MonitorId::parse(s).unwrap();
        let incident = |m: &str, model: &str| crate::store::IncidentRow {
            uid: format!("{m}-{model}"),
            monitor: id(m),
            model: model.into(),
            since: Timestamp(now.millis() - 60_000),
            opened_at: now,
            resolved_at: None,
            status: "error".into(),
            kind: "timeout".into(),
            message: "secret-ish upstream text".into(),
            muted: false,
            deliveries: Vec::new(),
        };
        let mut alerts = crate::alert::AlertsConfig::default();
        alerts.maintenance.push(Arc::new(Maintenance {
            monitors: vec![id("b")],
            groups: Vec::new(),
            when: When::Once {
                start: Timestamp(now.millis() - 1_000),
                end: Timestamp(now.millis() + 3_600_000),
            },
        }));
        let facts = ConfigFacts {
            alerts: Arc::new(alerts),
            ..ConfigFacts::default()
        };
        let st = build(
            Loaded {
                rows: vec![row("a", "x"), row("b", "x"), row("c", "x")],
                incidents: vec![incident("a", "x"), incident("b", "x")],
                hours: Vec::new(),
                days: HashMap::new(),
                day0: 0,
                hour0: 0,
            },
            &facts,
            now,
        );
        let notice = |m: &str| {
            st.monitors
                .iter()
                .find(|v| v.id == id(m))
                .unwrap()
                .notice
                .clone()
        };
        match notice("a") {
            Some(Notice::Incident(text)) => {
                assert!(text.starts_with("x: error (timeout) since "), "{text}");
                assert!(!text.contains("secret-ish"), "no message text: {text}");
            }
            other => panic!("a: {other:?}"),
        }
        assert!(matches!(notice("b"), Some(Notice::Maintenance(_))));
        assert_eq!(notice("c"), None);
    }

    #[test]
    fn details_stay_when_asked_for() {
        let model = loaded(true);
        let now = Timestamp::now().millis();
        model.apply(&[result("a", "x", now, Status::Error, "the reason")], false);
        let _ = model.publish();
        let view = model.view();
        let a = view.monitor(&MonitorId::parse("a").unwrap()).unwrap();
        assert_eq!(
            a.series[0].row.latest.as_ref().unwrap().message,
            "the reason"
        );
    }

    #[test]
    fn the_worst_model_colours_each_day() {
        let mut m = MonitorView {
            id: MonitorId::parse("m").unwrap(),
            name: "m".into(),
            group: None,
            provider: "openai".into(),
            endpoint: None,
            enabled: true,
            series: Vec::new(),
            notice: None,
        };
        let series = |days: Vec<Counts>| SeriesView {
            row: row("m", "x"),
            days,
            hours: vec![HourLatency::default(); HOURS],
        };
        let mut a = vec![Counts::default(); DAYS];
        let mut b = vec![Counts::default(); DAYS];
        a[0] = Counts([10, 0, 0, 0]);
        b[0] = Counts([5, 0, 0, 5]);
        a[1] = Counts([9, 0, 1, 0]);
        m.series = vec![series(a), series(b)];
        let worst = m.worst_days();
        assert_eq!(worst[0], Counts([5, 0, 0, 5]));
        assert_eq!(
            worst[1],
            Counts([9, 0, 1, 0]),
            "a day without checks does not win"
        );
        assert_eq!(worst[2], Counts::default());
    }

    #[test]
    fn hidden_rows_keep_figures_but_no_text() {
        let mut r = CheckResult::error(
            MonitorId::parse("m").unwrap(),
            "gpt".into(),
            Timestamp(5),
            crate::model::Kind::Timeout,
            "upstream https://secret.example said no".into(),
        );
        r.latency_ms = Some(7);
        hide_result(&mut r);
        assert!(r.message.is_empty());
        assert_eq!(r.latency_ms, Some(7));
    }
}
