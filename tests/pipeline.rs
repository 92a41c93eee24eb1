//! The result pipeline end to end: the bus sees every committed result of a daemon run once
//! (and a stuck subscriber only lags), and the status tracker survives restarts and `prune`.

mod harness;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chanmon::keys;
use chanmon::model::{CheckResult, Timestamp};
use chanmon::pipeline::bus::Event;
use chanmon::runner::Daemon;
use chanmon::secret::MasterKey;
use chanmon::store::{self, Database, HistoryQuery, OpenMode, TrackedSeries};
use harness::{Env, monitor, preamble, wait_until};
use support::mock::MockUpstream;

const T: Duration = Duration::from_secs(60);

fn tracker_of(db: &Path, id: &str) -> TrackedSeries {
    let s = store::open(&Database::Sqlite(db.to_path_buf()), OpenMode::Existing).unwrap();
    s.tracker()
        .unwrap()
        .into_iter()
        .find(|t| t.monitor.as_str() == id)
        .expect("a tracked series")
}

fn rows(db: &Path) -> Vec<CheckResult> {
    let s = store::open(&Database::Sqlite(db.to_path_buf()), OpenMode::Existing).unwrap();
    s.history(&HistoryQuery {
        limit: 100_000,
        ..HistoryQuery::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_sees_every_committed_result_once_and_a_stuck_subscriber_only_lags() {
    let mock = MockUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitors.toml");
    let mut text = preamble("workers = 4");
    for i in 0..6 {
        text.push_str(&monitor(
            &format!("m{i}"),
            "openai",
            &mock.origin(),
            mock.key(),
            &["a", "b", "c"],
            "interval = \"10s\"",
        ));
    }
    std::fs::write(&path, &text).unwrap();
    let config = chanmon::config::load(&path).unwrap().config;
    let db_path = config.database.sqlite_path().unwrap().to_path_buf();
    let key = MasterKey::from_bytes([5; 32]);
    let mut db = store::open(&config.database, OpenMode::Create).unwrap();
    let monitors = keys::sync(db.as_mut(), &config.monitors, &key).unwrap();
    let locks = store::probe_locks(&config.database);
    let daemon = Daemon::new(path.clone(), config, monitors, db, key, locks).unwrap();

    let bus = daemon.bus();
    let mut reader = bus.subscribe("reader", 10_000);
    let stuck = bus.subscribe("stuck", 1);
    let control = daemon.control();
    let metrics = daemon.metrics();
    let run = tokio::spawn(daemon.run_controlled());

    // Every monitor's first run falls within its first interval.
    let db_for_wait = db_path.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(T, "a result for every model", || {
            db_for_wait.exists() && rows(&db_for_wait).len() >= 18
        })
    })
    .await
    .unwrap();
    control.shutdown();
    run.await.unwrap();

    let mut seen: HashMap<(String, String, i64), usize> = HashMap::new();
    let mut changes = 0;
    while let Some(ev) = reader.try_recv() {
        match ev {
            Event::Result(r) => {
                *seen
                    .entry((
                        r.monitor.to_string(),
                        r.model.clone(),
                        r.started_at.millis(),
                    ))
                    .or_default() += 1;
            }
            Event::Change(c) => {
                assert!(
                    c.from.is_none(),
                    "a first result changes from nothing: {c:?}"
                );
                changes += 1;
            }
        }
    }
    let stored = rows(&db_path);
    assert!(stored.len() >= 18, "{}", stored.len());
    assert_eq!(seen.len(), stored.len(), "one event per stored row");
    for r in &stored {
        let k = (
            r.monitor.to_string(),
            r.model.clone(),
            r.started_at.millis(),
        );
        assert_eq!(seen.get(&k), Some(&1), "{k:?} seen once");
    }
    assert_eq!(changes, 18, "one status change per series");
    assert_eq!(reader.lagged(), 0);

    // The subscriber that never reads held one event and lost the rest, counted; the probes
    // went on (every result is stored, every probe started within a tick of its time).
    let published = bus.published();
    assert_eq!(published, stored.len() as u64 + 18);
    assert_eq!(stuck.lagged(), published - 1);
    assert_eq!(bus.lagged(), stuck.lagged());
    let m = metrics.snapshot();
    assert_eq!(m.finished_operational as usize, stored.len());
    assert_eq!(m.started_late, 0, "{m:?}");
}

#[test]
fn the_tracker_keeps_since_across_restarts_and_prune() {
    let mock = MockUpstream::start();
    let env = Env::new(&format!(
        "{}{}",
        preamble("tick = \"200ms\""),
        monitor(
            "steady",
            "openai",
            &mock.origin(),
            mock.key(),
            &["good"],
            "interval = \"10s\""
        )
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "a first check", || env.history_for("steady").len() == 1);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    assert!(d.log().contains("status changed"), "{}", d.log());
    let first = tracker_of(&env.db(), "steady");
    assert_eq!(first.state.consecutive, 1);
    assert_eq!(first.state.since, first.state.last_at);

    // Prune every raw row: the tracker lives in its own table.
    std::thread::sleep(Duration::from_millis(20));
    let out = env.run(&["prune", "--older-than", "1ms"]);
    assert!(out.status.success(), "{out:?}");
    assert!(env.history_for("steady").is_empty());
    assert_eq!(tracker_of(&env.db(), "steady"), first);

    // A restart probes again with the same status: nothing re-announced, `since` kept.
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "a check after the restart", || {
        env.history_for("steady").len() == 1
    });
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    assert!(!d.log().contains("status changed"), "{}", d.log());
    let second = tracker_of(&env.db(), "steady");
    assert_eq!(second.state.since, first.state.since);
    assert_eq!(second.state.consecutive, 2);
    assert!(second.state.last_at > first.state.last_at);
    assert!(second.state.last_at <= Timestamp::now());
}
