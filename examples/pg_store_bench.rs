//! PostgreSQL store bench: 100 monitors × 2 models × 30 days at a one-minute interval
//! (~8.6 M rows), then the reads users make, timed through the real store API.
//!
//!     cargo run --release --example pg_store_bench -- postgres://USER@HOST:PORT/EMPTY_DB [MONITORS] [DAYS]
//!
//! The rows are generated inside the server (`INSERT … SELECT generate_series`, 97 %
//! operational as in `store_bench`), because a client round trip per row would time the
//! loopback, not the store; the rollups are then built by chanmon's own `rebuild_rollups`
//! from those rows (and checked against them with `audit_rollups`). Figures go to stdout as
//! Markdown rows for BENCHMARKS.md.

use std::time::{Duration, Instant};

use chanmon::model::{MonitorId, Timestamp};
use chanmon::store::{self, Database, HistoryQuery, MonitorRow, OpenMode, PgUrl};

const MINUTE: i64 = 60_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("a postgres:// URL of an empty database");
    let monitors: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100);
    let days: i64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(30);
    let database = Database::Postgres(PgUrl::parse(&url).expect("URL"));
    let now = Timestamp::now().millis() / MINUTE * MINUTE;
    let start = now - days * 1440 * MINUTE;

    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let built = c
        .query_one("SELECT to_regclass('history') IS NOT NULL", &[])
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false);
    let ids: Vec<MonitorId> = (0..monitors)
        .map(|i| MonitorId::parse(&format!("m{i:03}")).unwrap())
        .collect();
    if built {
        // A second run on the same database times the reads again without rebuilding.
        let now: i64 = c
            .query_one(
                "SELECT max(started_at) / 60000 * 60000 + 60000 FROM history",
                &[],
            )
            .unwrap()
            .get(0);
        reads(&database, &ids, now);
        return;
    }
    let t = Instant::now();
    let mut s = store::open(&database, OpenMode::Create).expect("open");
    let rows: Vec<MonitorRow> = ids
        .iter()
        .map(|id| MonitorRow {
            id: id.clone(),
            name: id.to_string(),
            provider: "openai".into(),
            api: "chat".into(),
            endpoint: "https://api.openai.com/v1".into(),
            group: None,
            enabled: true,
            interval_ms: MINUTE,
            models: vec!["gpt-4o-mini".into(), "gpt-4.1-mini".into()],
            sealed_key: Some(vec![7; 60]),
            sealed_headers: None,
            key_error: None,
        })
        .collect();
    s.sync_monitors(&rows).expect("sync");
    drop(s);
    // Status codes 0 operational, 1 degraded, 2 failed, 3 error with the kinds ok, slow,
    // challenge_mismatch and timeout (model::Status / model::Kind codes).
    let n = c
        .execute(
            "INSERT INTO history (series, started_at, status, kind, http, ttft_ms, latency_ms,
                 ping_ms, message)
             SELECT s.pk, t + (random() * 900)::bigint, r.status, (ARRAY[0, 1, 2, 6])[r.status + 1], 200,
                 CASE WHEN r.status < 2 THEN r.lat / 3 END,
                 CASE WHEN r.status < 2 THEN r.lat END,
                 20 + (random() * 60)::bigint,
                 CASE WHEN r.status > 0 THEN 'the reply did not complete within 30s' END
             FROM series s
             CROSS JOIN generate_series($1::bigint, $2::bigint - 1, 60000) AS t
             CROSS JOIN LATERAL (SELECT
                 CASE WHEN x < 0.97 THEN 0 WHEN x < 0.985 THEN 1 WHEN x < 0.99 THEN 2 ELSE 3 END AS status,
                 300 + (random() * 2200)::bigint AS lat
                 FROM (SELECT random() + 0 * t AS x) AS q) AS r",
            &[&start, &now],
        )
        .expect("generate history");
    c.batch_execute("VACUUM ANALYZE").expect("analyze");
    let generated = t.elapsed();
    let mut s = store::open(&database, OpenMode::Existing).expect("reopen");
    let t = Instant::now();
    let buckets = s.rebuild_rollups().expect("rebuild");
    let rebuild = t.elapsed();
    println!(
        "| build | {n} rows generated in the server in {:.1} s; `rebuild_rollups` of {buckets} hourly buckets in {:.1} s |",
        generated.as_secs_f64(),
        rebuild.as_secs_f64()
    );
    let bytes: i64 = c
        .query_one("SELECT pg_database_size(current_database())", &[])
        .unwrap()
        .get(0);
    println!(
        "| database size | {:.1} MiB = {:.1} bytes per raw row (rollups and indexes included) |",
        bytes as f64 / 1048576.0,
        bytes as f64 / n as f64
    );
    drop(s);
    reads(&database, &ids, now);
    let mut s = store::open(&database, OpenMode::Existing).expect("reopen");
    let t = Instant::now();
    let audit = s.audit_rollups().expect("audit");
    println!(
        "| audit_rollups | {} hours, {} rows, {} mismatched, in {:.1} s |",
        audit.hours,
        audit.rows,
        audit.mismatched,
        t.elapsed().as_secs_f64()
    );
    let _ = s.vacuum();
}

/// The reads users make, timed through the store API.
fn reads(database: &Database, ids: &[MonitorId], now: i64) {
    let monitors = ids.len();
    let s = store::open(database, OpenMode::Existing).expect("open");
    let windows = [
        Duration::from_secs(86_400),
        Duration::from_secs(7 * 86_400),
        Duration::from_secs(30 * 86_400),
    ];
    let nowt = Timestamp(now);
    let all = time(5, || s.status(None, nowt, &windows).expect("status"));
    println!(
        "| status, all {monitors} monitors × 2 models, 24h/7d/30d windows | {:.1} ms (median of 5) |",
        ms(all)
    );
    let one = &ids[monitors / 2];
    let single = time(9, || {
        let rows = s.status(Some(one), nowt, &windows).expect("status one");
        for r in &rows {
            s.timeline(one, &r.model, 60).expect("timeline");
        }
        rows
    });
    println!(
        "| status <id> (2 models, windows + 60-result timelines) | {:.2} ms (median of 9) |",
        ms(single)
    );
    let q = HistoryQuery {
        monitor: Some(one.clone()),
        limit: 100,
        ..HistoryQuery::default()
    };
    let hist = time(9, || s.history(&q).expect("history"));
    println!(
        "| history <id> --limit 100 | {:.2} ms (median of 9) |",
        ms(hist)
    );
    let q = HistoryQuery {
        limit: 100,
        ..HistoryQuery::default()
    };
    let hist_all = time(5, || s.history(&q).expect("history"));
    println!(
        "| history --limit 100 across all monitors | {:.1} ms (median of 5) |",
        ms(hist_all)
    );
}
