//! One storage suite for both backends: each test is written once as a function of a
//! [`Database`] and runs against SQLite (a temp file) and PostgreSQL (a fresh database on the
//! harness's server, `support/pg.rs`).

#[path = "support/pg.rs"]
mod pg;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use chanmon::alert::{AlertPlan, MonitorPlan, Rule};
use chanmon::model::{CheckResult, Kind, MonitorId, ReplyFacts, Status, Timestamp};
use chanmon::official::{Indicator, OfficialStatus};
use chanmon::store::{
    self, BUCKET_MS, Database, DeliveryOutcome, ExportQuery, HistoryQuery, IncidentQuery,
    MonitorRow, OpenMode, Reseal, SecretSlot, Storage, StoreError,
};

const H: i64 = BUCKET_MS;
/// A whole hour, well after the epoch (tests pick times relative to it).
const T0: i64 = 1_700_000_000_000 / H * H;

fn id(s: &str) -> MonitorId {
    MonitorId::parse(s).unwrap()
}

fn row(name: &str, models: &[&str], key: Option<&[u8]>) -> MonitorRow {
    MonitorRow {
        id: id(name),
        name: format!("Monitor {name}"),
        provider: "openai".into(),
        api: "chat".into(),
        endpoint: "https://api.example.com".into(),
        group: None,
        enabled: true,
        interval_ms: 60_000,
        models: models.iter().map(|m| m.to_string()).collect(),
        sealed_key: key.map(<[u8]>::to_vec),
        sealed_headers: None,
        key_error: None,
    }
}

fn result(monitor: &str, model: &str, at: i64, i: u32) -> CheckResult {
    let kind = [Kind::Ok, Kind::Slow, Kind::Ok, Kind::Timeout, Kind::Empty][i as usize % 5];
    CheckResult {
        monitor: id(monitor),
        model: model.into(),
        started_at: Timestamp(at),
        status: kind.status(),
        kind,
        http_status: Some(200),
        ttft_ms: Some(50 + i % 70),
        latency_ms: Some(100 + (i * 37) % 900),
        ping_ms: Some(3),
        message: if i.is_multiple_of(3) {
            String::new()
        } else {
            format!("note {i}")
        },
        facts: ReplyFacts {
            answered_model: Some(format!("{model}-2025")),
            tokens_in: Some(10 + i),
            tokens_out: Some(i % 40),
            tokens_reasoning: None,
            cost_nano: Some(1_000 * u64::from(i)),
            tps: i.is_multiple_of(2).then_some(f64::from(i) / 2.0),
        },
        location: String::new(),
        due_at: i
            .is_multiple_of(2)
            .then_some(Timestamp(at - at.rem_euclid(60_000))),
    }
}

fn open(db: &Database) -> Box<dyn Storage> {
    store::open(db, OpenMode::Create).unwrap()
}

/// A store with monitor `m` (models a, b) and `n` results per model, one a minute from
/// `T0 - 30 min` on: partial hours at both ends.
fn filled(db: &Database, n: u32) -> Box<dyn Storage> {
    let mut s = open(db);
    s.sync_monitors(&[row("m", &["a", "b"], Some(b"k"))])
        .unwrap();
    let mut batch = Vec::new();
    for i in 0..n {
        for model in ["a", "b"] {
            batch.push(result(
                "m",
                model,
                T0 - 30 * 60_000 + i64::from(i) * 60_000,
                i,
            ));
        }
        if batch.len() >= 50 {
            s.insert_results(&batch).unwrap();
            batch.clear();
        }
    }
    s.insert_results(&batch).unwrap();
    s
}

fn sync_with_sealed_keys(db: Database) {
    let mut s = open(&db);
    let rows = vec![
        row("m1", &["a"], Some(b"sealed-1")),
        row("m2", &["a", "b"], None),
    ];
    let first = s.sync_monitors(&rows).unwrap();
    assert_eq!((first.written, first.disabled), (2, 0));
    let secrets = s.stored_secrets().unwrap();
    assert_eq!(secrets["m1"].sealed_key.as_deref(), Some(&b"sealed-1"[..]));
    assert_eq!(secrets["m2"].sealed_key, None);
    let again = s.sync_monitors(&rows).unwrap();
    assert_eq!(again.written, 0, "an unchanged config rewrites nothing");
    let mut changed = rows.clone();
    changed[1].name = "renamed".into();
    changed.remove(0);
    let r = s.sync_monitors(&changed).unwrap();
    assert_eq!((r.written, r.disabled), (1, 1));
    let ms = s.monitors().unwrap();
    assert_eq!(ms.len(), 2, "disabled, never deleted");
    assert!(!ms[0].enabled && ms[1].enabled && ms[1].name == "renamed");
    assert_eq!(ms[1].models, vec!["a".to_owned(), "b".to_owned()]);
    let unknown = s.insert_results(&[result("nope", "a", T0, 0)]);
    assert!(matches!(unknown, Err(StoreError::UnknownMonitor(_))));
}

fn history_filters_and_paging(db: Database) {
    let s = filled(&db, 90);
    let all = s
        .history(&HistoryQuery {
            limit: 1000,
            ..HistoryQuery::default()
        })
        .unwrap();
    assert_eq!(all.len(), 180);
    assert!(
        all.windows(2).all(|w| w[0].started_at >= w[1].started_at),
        "newest first"
    );
    assert_eq!(
        all[0],
        result("m", "a", T0 + 59 * 60_000, 89),
        "every field round-trips"
    );
    let q = HistoryQuery {
        monitor: Some(id("m")),
        model: Some("b".into()),
        since: Some(Timestamp(T0)),
        until: Some(Timestamp(T0 + 40 * 60_000)),
        limit: 15,
        ..HistoryQuery::default()
    };
    let page1 = s.history(&q).unwrap();
    assert_eq!(page1.len(), 15);
    assert!(page1.iter().all(|r| r.model == "b"));
    assert_eq!(page1[0].started_at, Timestamp(T0 + 39 * 60_000));
    let page2 = s
        .history(&HistoryQuery {
            before: Some(page1[14].started_at),
            ..q.clone()
        })
        .unwrap();
    assert_eq!(
        page2[0].started_at.millis(),
        page1[14].started_at.millis() - 60_000
    );
    let failed = s
        .history(&HistoryQuery {
            status: Some(Status::Error),
            limit: 1000,
            ..HistoryQuery::default()
        })
        .unwrap();
    assert!(!failed.is_empty() && failed.iter().all(|r| r.status == Status::Error));
    let timeline = s.timeline(&id("m"), "a", 3).unwrap();
    assert!(
        timeline[0].started_at < timeline[2].started_at,
        "oldest first"
    );
}

fn windows_equal_raw_scans(db: Database) {
    let s = filled(&db, 150);
    for (from, to) in [
        (T0 - 20 * 60_000, T0 + 100 * 60_000),
        (T0, T0 + 2 * H),
        (T0 - 29 * 60_000 - 7, T0 + 61 * 60_000 + 11),
        (T0 + 5 * 60_000, T0 + 6 * 60_000),
    ] {
        let w = s
            .window_stats(&id("m"), "a", Timestamp(from), Timestamp(to))
            .unwrap();
        let raw = s
            .raw_stats(&id("m"), "a", Timestamp(from), Timestamp(to))
            .unwrap();
        assert_eq!(w, raw, "window [{from}, {to})");
        assert!(w.total() > 0);
    }
    let w = s
        .window_stats(&id("m"), "a", Timestamp(T0 - H), Timestamp(T0 + 3 * H))
        .unwrap();
    assert_eq!(w.total(), 150);
    let p50 = w.latency_percentile(0.5).unwrap();
    let p99 = w.latency_percentile(0.99).unwrap();
    assert!(
        p50 > 100.0 && p99 >= p50 && p99 < 1100.0,
        "p50 {p50} p99 {p99}"
    );
    assert!(w.cost().is_some() && w.tokens().is_some());
    let rows = s
        .status(
            None,
            Timestamp(T0 + 3 * H),
            &[Duration::from_secs(6 * 3600)],
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].windows[0].1.total(), 150);
    assert_eq!(
        rows[0].latest.as_ref().unwrap().started_at,
        Timestamp(T0 + 119 * 60_000)
    );
    let days = s.bucket_summaries(Timestamp(T0 - 2 * H), false).unwrap();
    let sum: u64 = days
        .iter()
        .filter(|b| b.model == "a")
        .map(|b| b.by_status.iter().sum::<u64>())
        .sum();
    assert_eq!(sum, 150);
}

fn tracker_follows_status_runs(db: Database) {
    let mut s = open(&db);
    s.sync_monitors(&[row("m", &["a"], None)]).unwrap();
    let ok = result("m", "a", T0, 0);
    let mut bad = result("m", "a", T0 + 60_000, 3);
    assert_eq!(bad.status, Status::Error);
    let changes = s.insert_results(std::slice::from_ref(&ok)).unwrap();
    assert_eq!(changes.len(), 1);
    let changes = s.insert_results(&[bad.clone()]).unwrap();
    assert_eq!(
        (changes[0].from.unwrap().status, changes[0].to.status),
        (Status::Operational, Status::Error)
    );
    bad.started_at = Timestamp(T0 + 120_000);
    assert!(s.insert_results(&[bad]).unwrap().is_empty());
    let t = s.tracker().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].state.status, t[0].state.consecutive),
        (Status::Error, 2)
    );
    assert_eq!(t[0].state.since, Timestamp(T0 + 60_000));
    // The same millisecond twice: both rows are kept.
    s.insert_results(&[ok.clone(), ok]).unwrap();
    let h = s
        .history(&HistoryQuery {
            limit: 100,
            ..HistoryQuery::default()
        })
        .unwrap();
    assert_eq!(h.len(), 5);
}

fn prune_keeps_windows(db: Database) {
    let mut s = filled(&db, 180);
    let now = Timestamp(T0 + 4 * H);
    let whole = (Timestamp(T0 - H), now);
    let before = s.window_stats(&id("m"), "a", whole.0, whole.1).unwrap();
    let cut = Duration::from_secs(3 * 3600 - 600); // cutoff T0 + 1h + 10min
    let would = s.prune(now, cut, true).unwrap();
    assert_eq!(would, 2 * 100);
    assert_eq!(s.prune(now, cut, false).unwrap(), would);
    assert_eq!(s.prune(now, cut, false).unwrap(), 0);
    let after = s.window_stats(&id("m"), "a", whole.0, whole.1).unwrap();
    assert_eq!(
        before.total(),
        after.total(),
        "rollups keep what raw rows no longer hold"
    );
    let edge = s
        .window_stats(&id("m"), "a", Timestamp(T0 + H + 20 * 60_000), now)
        .unwrap();
    let raw = s
        .raw_stats(&id("m"), "a", Timestamp(T0 + H + 20 * 60_000), now)
        .unwrap();
    assert_eq!(edge, raw, "after the watermark windows are still exact");
    // Rollups older than the retention go; newer ones stay.
    let gone = s
        .prune_rollups(now, Duration::from_secs(4 * 3600), true)
        .unwrap();
    assert_eq!(gone, 2, "the hour before T0, per model");
    assert_eq!(
        s.prune_rollups(now, Duration::from_secs(4 * 3600), false)
            .unwrap(),
        2
    );
    let rest = s.window_stats(&id("m"), "a", whole.0, whole.1).unwrap();
    assert_eq!(rest.total(), 150);
    let audit = s.audit_rollups().unwrap();
    assert_eq!(audit.mismatched, 0, "{audit:?}");
    s.vacuum().unwrap();
}

fn rebuild_rollups_is_idempotent(db: Database) {
    let mut s = filled(&db, 100);
    let w = |s: &dyn Storage| {
        s.window_stats(&id("m"), "b", Timestamp(T0 - H), Timestamp(T0 + 3 * H))
            .unwrap()
    };
    let before = w(s.as_ref());
    let audit = s.audit_rollups().unwrap();
    assert_eq!((audit.mismatched, audit.rows), (0, 200));
    let n = s.rebuild_rollups().unwrap();
    assert_eq!(n, 2 * 3, "three hours per model");
    assert_eq!(s.rebuild_rollups().unwrap(), n);
    assert_eq!(w(s.as_ref()), before);
    assert!(s.check_integrity(false).unwrap().is_empty());
    assert!(s.check_integrity(true).unwrap().is_empty());
}

fn plan(window: Duration) -> Arc<AlertPlan> {
    let mut plan = AlertPlan::default();
    plan.monitors.insert(
        id("m"),
        MonitorPlan {
            name: "M".into(),
            rule: Rule {
                sinks: vec!["hook".into(), "pd".into()],
                failure_threshold: 2,
                group_window: window,
                ..Rule::default()
            },
            maintenance: vec![],
        },
    );
    plan.grouping.insert("hook".into(), true);
    plan.grouping.insert("pd".into(), false);
    Arc::new(plan)
}

fn pass_fail(model: &str, at: i64, ok: bool) -> CheckResult {
    result("m", model, at, if ok { 0 } else { 3 })
}

fn incidents_and_outbox(db: Database) {
    let mut s = open(&db);
    s.sync_monitors(&[row("m", &["a", "b"], None)]).unwrap();
    s.set_alert_plan(plan(Duration::from_secs(60)));
    s.insert_results(&[pass_fail("a", T0 + 1, false), pass_fail("b", T0 + 1, false)])
        .unwrap();
    assert!(s.incidents(&IncidentQuery::default()).unwrap().is_empty());
    s.insert_results(&[
        pass_fail("a", T0 + 2, false),
        pass_fail("b", T0 + 2, false),
        pass_fail("a", T0, true),
    ])
    .unwrap();
    let open_only = IncidentQuery {
        open_only: true,
        ..Default::default()
    };
    let inc = s.incidents(&open_only).unwrap();
    assert_eq!(inc.len(), 2);
    assert_eq!(
        inc[0].since,
        Timestamp(T0 + 1),
        "since the first failure of the run"
    );
    assert_eq!(inc[0].deliveries.len(), 2);
    assert_eq!(
        s.outbox_counts().unwrap().pending,
        4,
        "two incidents × two sinks"
    );
    let now_due = s.due_deliveries(Timestamp::now(), 100).unwrap();
    assert!(now_due.iter().all(|d| d.sink == "pd") && now_due.len() == 2);
    assert_ne!(now_due[0].group, now_due[1].group, "never grouped");
    let pks: Vec<i64> = now_due.iter().map(|d| d.pk).collect();
    s.finish_deliveries(
        &pks,
        &DeliveryOutcome::Delivered {
            at: Timestamp::now(),
        },
    )
    .unwrap();
    let c = s.outbox_counts().unwrap();
    assert_eq!((c.pending, c.delivered), (2, 2));
    let far = Timestamp::now().saturating_add(Duration::from_secs(120));
    let hook = s.due_deliveries(far, 100).unwrap();
    assert_eq!(hook.len(), 2);
    assert_eq!(
        hook[0].group, hook[1].group,
        "the grouping sink's rows go out together"
    );
    s.insert_results(&[pass_fail("a", T0 + 3, true)]).unwrap();
    s.insert_results(&[pass_fail("a", T0 + 4, true)]).unwrap();
    let open = s.incidents(&open_only).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].model, "b");
    assert_eq!(s.incidents(&IncidentQuery::default()).unwrap().len(), 2);
    assert_eq!(s.outbox_counts().unwrap().pending, 4);
    let event = chanmon::alert::AlertEvent {
        event_id: "self-1".into(),
        event: chanmon::alert::EventKind::Internal,
        incident: String::new(),
        monitor: String::new(),
        monitor_name: String::new(),
        model: String::new(),
        status: String::new(),
        kind: String::new(),
        message: "disk".into(),
        since_ms: 0,
        at_ms: 0,
        duration_ms: 0,
    };
    s.enqueue_event(&["hook".into()], &event).unwrap();
    s.enqueue_event(&["hook".into()], &event).unwrap();
    assert_eq!(
        s.outbox_counts().unwrap().pending,
        5,
        "one row per (event, sink)"
    );
}

fn official_status_round_trips(db: Database) {
    let mut s = open(&db);
    let mut st = OfficialStatus::unknown(
        "https://status.example.com",
        Some(Timestamp(T0)),
        "down".into(),
    );
    s.put_official_status(&st).unwrap();
    st.indicator = Indicator::Minor;
    st.error = None;
    st.description = "Partial outage".into();
    s.put_official_status(&st).unwrap();
    let all = s.official_statuses().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all["https://status.example.com"], st);
}

fn reseal_is_all_or_nothing(db: Database) {
    let mut s = open(&db);
    s.sync_monitors(&[
        row("m1", &["a"], Some(b"old-1")),
        row("m2", &["a"], Some(b"old-2")),
    ])
    .unwrap();
    let secrets = s.sealed_secrets().unwrap();
    assert_eq!(secrets.len(), 2);
    let mut stale = secrets[1].clone();
    stale.blob = b"something else".to_vec();
    let changes = vec![
        Reseal {
            old: secrets[0].clone(),
            new: Some(b"new-1".to_vec()),
        },
        Reseal {
            old: stale,
            new: Some(b"new-2".to_vec()),
        },
    ];
    assert!(matches!(s.reseal(&changes), Err(StoreError::Changed(_))));
    assert_eq!(s.sealed_secrets().unwrap(), secrets, "nothing was written");
    let changes = vec![
        Reseal {
            old: secrets[0].clone(),
            new: Some(b"new-1".to_vec()),
        },
        Reseal {
            old: secrets[1].clone(),
            new: None,
        },
    ];
    s.reseal(&changes).unwrap();
    let now = s.sealed_secrets().unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(
        (now[0].slot, now[0].blob.as_slice()),
        (SecretSlot::ApiKey, &b"new-1"[..])
    );
}

fn export_streams_in_order(db: Database) {
    let s = filled(&db, 1300);
    let mut seen = Vec::new();
    let n = s
        .export(&ExportQuery::default(), &mut |r| {
            seen.push((r.model.clone(), r.started_at));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(n, 2600);
    assert_eq!(seen.len(), 2600);
    assert!(seen[..1300].iter().all(|(m, _)| m == "a"), "per series");
    assert!(
        seen[..1300].windows(2).all(|w| w[0].1 < w[1].1),
        "oldest first"
    );
    let mut k = 0;
    let stopped = s
        .export(
            &ExportQuery {
                model: Some("b".into()),
                since: Some(Timestamp(T0)),
                ..Default::default()
            },
            &mut |r| {
                assert_eq!(r.model, "b");
                k += 1;
                if k == 1005 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .unwrap();
    assert_eq!(stopped, 1005);
    // The store is still usable after an early stop.
    assert_eq!(
        s.history(&HistoryQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap()
        .len(),
        2
    );
}

fn concurrent_writers_lose_nothing(db: Database) {
    drop(filled(&db, 1));
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut s = store::open(&db, OpenMode::Existing).unwrap();
                for i in 0..40u32 {
                    let at = T0 + i64::from(i) * 1000 + t;
                    s.insert_results(&[result("m", "a", at, i), result("m", "b", at, i)])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = store::open(&db, OpenMode::Existing).unwrap();
    let (from, to) = (Timestamp(T0 - H), Timestamp(T0 + 2 * H));
    let w = s.window_stats(&id("m"), "a", from, to).unwrap();
    assert_eq!(w.total(), 121);
    assert_eq!(w, s.raw_stats(&id("m"), "a", from, to).unwrap());
    assert_eq!(s.audit_rollups().unwrap().mismatched, 0);
}

fn missing_database_is_not_created_by_readers(db: Database) {
    let e = store::open(&db, OpenMode::Existing)
        .err()
        .expect("no database yet");
    assert!(matches!(e, StoreError::Missing { .. }), "{e}");
    drop(open(&db));
    store::open(&db, OpenMode::ReadOnly).unwrap();
}

/// Makes the stored schema version newer than this binary's.
fn bump_version(db: &Database) {
    match db {
        Database::Sqlite(p) => {
            let c = rusqlite::Connection::open(p).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        Database::Postgres(_) => {
            let url = pg_url(db);
            let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
            c.execute(
                "UPDATE chanmon_schema SET version = 99, readable_from = 99",
                &[],
            )
            .unwrap();
        }
    }
}

fn pg_url(db: &Database) -> String {
    URLS.with(|u| u.borrow().get(&db.to_string()).cloned().unwrap())
}

thread_local! {
    static URLS: std::cell::RefCell<std::collections::HashMap<String, String>> = Default::default();
}

fn newer_schema_is_refused(db: Database) {
    drop(filled(&db, 3));
    bump_version(&db);
    for mode in [OpenMode::Create, OpenMode::Existing, OpenMode::ReadOnly] {
        let e = store::open(&db, mode).err().expect("refused");
        assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
        assert!(e.to_string().contains("upgrade chanmon"));
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(super::Database::Sqlite(dir.path().join("s.db")));
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(url) = super::pg::fresh_database() else { return };
                    let parsed = chanmon::store::PgUrl::parse(&url).unwrap();
                    super::URLS.with(|u| u.borrow_mut().insert(parsed.to_string(), url.clone()));
                    super::$name(super::Database::Postgres(parsed));
                }
            )*
        }
    };
}

both!(
    sync_with_sealed_keys,
    history_filters_and_paging,
    windows_equal_raw_scans,
    tracker_follows_status_runs,
    prune_keeps_windows,
    rebuild_rollups_is_idempotent,
    incidents_and_outbox,
    official_status_round_trips,
    reseal_is_all_or_nothing,
    export_streams_in_order,
    concurrent_writers_lose_nothing,
    missing_database_is_not_created_by_readers,
    newer_schema_is_refused,
);

/// PostgreSQL only: a newer schema that declares itself readable by this version (an additive
/// migration) is used as it is, so replicas can be upgraded one at a time; one that does not
/// is refused.
#[test]
fn a_newer_schema_readable_by_this_version_is_used() {
    let Some(url) = pg::fresh_database() else {
        return;
    };
    let db = Database::Postgres(chanmon::store::PgUrl::parse(&url).unwrap());
    let mut s = open(&db);
    s.sync_monitors(&[row("m", &["a"], None)]).unwrap();
    drop(s);
    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let (v, r): (i64, i64) = {
        let row = c
            .query_one("SELECT version, readable_from FROM chanmon_schema", &[])
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(r <= v, "readable_from {r} of version {v}");
    c.execute("UPDATE chanmon_schema SET version = $1", &[&(v + 1)])
        .unwrap();
    for mode in [OpenMode::Create, OpenMode::Existing, OpenMode::ReadOnly] {
        let s = store::open(&db, mode).expect("a newer additive schema opens");
        assert_eq!(s.monitors().unwrap().len(), 1);
    }
    let after: i64 = c
        .query_one("SELECT version FROM chanmon_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(after, v + 1, "never migrated back");
    c.execute("UPDATE chanmon_schema SET readable_from = $1", &[&(v + 1)])
        .unwrap();
    let e = store::open(&db, OpenMode::Existing).err().expect("refused");
    assert!(e.to_string().contains("upgrade chanmon"), "{e}");
}

/// PostgreSQL only: a connection the server drops surfaces as an error (never a panic), and
/// the next call reconnects.
#[test]
fn a_dropped_connection_is_reopened() {
    let Some(url) = pg::fresh_database() else {
        return;
    };
    let db = Database::Postgres(chanmon::store::PgUrl::parse(&url).unwrap());
    let mut s = open(&db);
    s.sync_monitors(&[row("m", &["a"], None)]).unwrap();
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the store's connection");
    let first = s.insert_results(&[result("m", "a", T0, 0)]);
    if let Err(e) = &first {
        assert!(matches!(e, StoreError::Backend(_)), "{e}");
        s.insert_results(&[result("m", "a", T0, 0)]).unwrap();
    }
    let h = s
        .history(&HistoryQuery {
            limit: 10,
            ..HistoryQuery::default()
        })
        .unwrap();
    assert_eq!(h.len(), 1, "written once, after the reconnect");
}
