//! Store properties through the library API: windows from rollups + edges equal a raw scan,
//! pruning keeps availability, prune and a writer share the file without lock errors.

use std::path::Path;
use std::time::Duration;

use chanmon::config::{MonitorConfig, parse};
use chanmon::keys;
use chanmon::model::{CheckResult, Kind, MonitorId, ReplyFacts, Status, Timestamp};
use chanmon::secret::MasterKey;
use chanmon::store::{self, BUCKET_MS, Database, OpenMode, Storage};
use proptest::prelude::*;

fn monitors() -> Vec<MonitorConfig> {
    let text =
        "[[monitor]]\nid = \"m\"\nprovider = \"openai\"\napi_key = \"sk-x\"\nmodel = \"a\"\n";
    parse(text, Path::new("t.toml"), &|_| None)
        .unwrap()
        .config
        .monitors
}

fn open(path: &Path, mode: OpenMode) -> Box<dyn Storage> {
    store::open(&Database::Sqlite(path.to_path_buf()), mode).unwrap()
}

fn store(dir: &Path) -> Box<dyn Storage> {
    let mut s = open(&dir.join("w.db"), OpenMode::Create);
    keys::sync(s.as_mut(), &monitors(), &MasterKey::from_bytes([3; 32])).unwrap();
    s
}

fn result(at: i64, code: u8, latency: u32) -> CheckResult {
    let kind = [Kind::Ok, Kind::Slow, Kind::Empty, Kind::Timeout][code as usize % 4];
    CheckResult {
        monitor: MonitorId::parse("m").unwrap(),
        model: "a".into(),
        started_at: Timestamp(at),
        status: kind.status(),
        kind,
        http_status: Some(200),
        ttft_ms: Some(latency / 2),
        latency_ms: Some(latency),
        ping_ms: None,
        message: String::new(),
        // Every other row reports usage and a cost; the rest read as not recorded.
        facts: if at % 2 == 0 {
            ReplyFacts {
                tokens_in: Some(latency % 50 + 5),
                tokens_out: Some(latency % 13),
                tokens_reasoning: None,
                cost_nano: Some(u64::from(latency) * 7),
                tps: (code == 0).then_some(f64::from(latency) / 10.0),
                answered_model: None,
            }
        } else {
            ReplyFacts::default()
        },
        location: String::new(),
        due_at: None,
    }
}

const T0: i64 = 1_760_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn windows_equal_a_raw_scan(
        rows in proptest::collection::vec((0i64..(72 * BUCKET_MS), 0u8..4, 1u32..5000), 1..300),
        a in 0i64..(80 * BUCKET_MS),
        len in 1i64..(80 * BUCKET_MS),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let results: Vec<_> = rows.iter().map(|(t, c, l)| result(T0 + t, *c, *l)).collect();
        for chunk in results.chunks(37) {
            s.insert_results(chunk).unwrap();
        }
        let id = MonitorId::parse("m").unwrap();
        let (from, to) = (Timestamp(T0 - BUCKET_MS + a), Timestamp(T0 - BUCKET_MS + a + len));
        let w = s.window_stats(&id, "a", from, to).unwrap();
        let raw = s.raw_stats(&id, "a", from, to).unwrap();
        prop_assert_eq!(w.total(), raw.total());
        for st in Status::ALL { prop_assert_eq!(w.count(*st), raw.count(*st)); }
        for k in Kind::ALL { prop_assert_eq!(w.count_kind(*k), raw.count_kind(*k)); }
        prop_assert_eq!(w.availability(), raw.availability());
        prop_assert_eq!(w.avg_latency_ms(), raw.avg_latency_ms());
        prop_assert_eq!(w.latency_percentile(0.95), raw.latency_percentile(0.95));
        prop_assert_eq!(w.tokens(), raw.tokens());
        prop_assert_eq!(w.cost(), raw.cost());
        prop_assert_eq!(w.rollup.tokens_reasoning, raw.rollup.tokens_reasoning);
        prop_assert_eq!(w.tps_percentile(0.5), raw.tps_percentile(0.5));
        // And the raw scan equals a sum over the rows themselves.
        let inside: Vec<_> = results.iter().filter(|r| r.started_at >= from && r.started_at < to).collect();
        let cost: u64 = inside.iter().filter_map(|r| r.facts.cost_nano).sum();
        prop_assert_eq!(raw.rollup.cost_nano, cost);
        prop_assert_eq!(raw.rollup.usage_n, inside.iter().filter(|r| r.facts.tokens_in.is_some()).count() as u64);
    }
}

#[test]
fn pruning_raw_rows_keeps_the_30_day_availability() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let now = Timestamp(T0 + 25 * 86_400_000);
    // 20 days of checks every 10 minutes, a failure every 7th.
    let results: Vec<_> = (0..20 * 144)
        .map(|i| {
            result(
                T0 + 5 * 86_400_000 + i * 600_000,
                if i % 7 == 0 { 3 } else { 0 },
                100 + (i % 50) as u32,
            )
        })
        .collect();
    s.insert_results(&results).unwrap();
    let id = MonitorId::parse("m").unwrap();
    let window = |s: &dyn Storage| {
        s.window_stats(
            &id,
            "a",
            now.saturating_sub(Duration::from_secs(30 * 86_400)),
            now,
        )
        .unwrap()
    };
    let before = window(s.as_ref());
    let deleted = s
        .prune(now, Duration::from_secs(10 * 86_400), false)
        .unwrap();
    assert!(deleted > 1000, "{deleted}");
    let after = window(s.as_ref());
    assert_eq!(before.total(), after.total());
    assert_eq!(before.availability(), after.availability());
    assert_eq!(
        before.latency_percentile(0.95),
        after.latency_percentile(0.95)
    );
    assert_eq!(before.cost(), after.cost());
    assert_eq!(before.tokens(), after.tokens());
    assert!(before.cost().is_some_and(|c| c > 0.0));
    // Rebuilding is idempotent and keeps the pruned hours' rollups.
    s.rebuild_rollups().unwrap();
    assert_eq!(window(s.as_ref()).total(), before.total());
}

#[test]
fn dry_run_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    s.insert_results(&[result(T0, 0, 10), result(T0 + 1, 0, 10)])
        .unwrap();
    let r = s
        .prune(
            Timestamp(T0 + 10 * 86_400_000),
            Duration::from_secs(86_400),
            true,
        )
        .unwrap();
    assert_eq!(r, 2);
    let id = MonitorId::parse("m").unwrap();
    assert_eq!(
        s.raw_stats(&id, "a", Timestamp(0), Timestamp(i64::MAX))
            .unwrap()
            .total(),
        2
    );
}

#[test]
fn same_millisecond_results_are_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    s.insert_results(&[result(T0, 0, 10), result(T0, 3, 10)])
        .unwrap();
    s.insert_results(&[result(T0, 0, 10)]).unwrap();
    let id = MonitorId::parse("m").unwrap();
    assert_eq!(
        s.raw_stats(&id, "a", Timestamp(0), Timestamp(i64::MAX))
            .unwrap()
            .total(),
        3
    );
}

#[test]
fn prune_while_a_writer_inserts_never_hits_a_lock_error_nor_loses_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let old: Vec<_> = (0..20_000).map(|i| result(T0 + i * 1000, 0, 50)).collect();
    s.insert_results(&old).unwrap();
    drop(s);
    let path = dir.path().join("w.db");
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut w = open(&writer_path, OpenMode::Create);
        let base = T0 + 40 * 86_400_000;
        for i in 0..400 {
            w.insert_results(&[result(base + i * 10, 0, 50)])
                .expect("insert during prune");
        }
    });
    let mut p = open(&path, OpenMode::Existing);
    let r = p
        .prune(
            Timestamp(T0 + 30 * 86_400_000),
            Duration::from_secs(86_400),
            false,
        )
        .expect("prune during inserts");
    writer.join().unwrap();
    assert_eq!(r, 20_000);
    let id = MonitorId::parse("m").unwrap();
    let now = Timestamp(T0 + 41 * 86_400_000);
    let w = p
        .window_stats(&id, "a", Timestamp(T0 - BUCKET_MS), now)
        .unwrap();
    // The pruned rows still count through their rollups, and every new row is there.
    assert_eq!(w.total(), 20_400);
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    drop(open(&path, OpenMode::Create));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = store::open(&Database::Sqlite(path.clone()), OpenMode::Create)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("newer"), "{err}");
}
