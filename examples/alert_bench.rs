//! Alert latency bench: from the commit of the result that crosses the threshold to the
//! webhook receiving the alert, over loopback, with many monitors flapping.
//!
//! ```text
//! cargo run --release --example alert_bench -- [MONITORS] [EVENTS_PER_SEC] [SECONDS]
//! cargo run --release --example alert_bench -- 1000 200 30
//! ```
//!
//! One thread plays the daemon's writer: every 50 ms it commits a batch of results through
//! the real `Storage::insert_results` (threshold 1 both ways, `group_window = 0`, so every
//! result of a flapping monitor opens or resolves an incident and queues one outbox row). The
//! real drainer (`alert::Drainer`, its own connection, the guarded HTTP client, a signed
//! webhook) sends them to an axum receiver on 127.0.0.1, which subtracts the event's `at_ms`
//! (stamped just before the commit) from its arrival time. Prints p50/p95/p99/max.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::{Router, body::Bytes, routing::post};
use chanmon::alert::{
    AlertPlan, DrainCtx, Drainer, MonitorPlan, RetryPolicy, Rule, Sender, SinkConfig, SinkKind,
};
use chanmon::model::{CheckResult, Kind, MonitorId, Status, Timestamp};
use chanmon::net::NetworkPolicy;
use chanmon::secret::Secret;
use chanmon::store::{Database, MonitorRow, OpenMode, open};
use tokio_util::sync::CancellationToken;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn monitors(n: u64) -> Vec<MonitorRow> {
    (0..n)
        .map(|i| MonitorRow {
            id: MonitorId::parse(&format!("m{i:05}")).expect("a valid id"),
            name: format!("monitor {i}"),
            provider: "openai".into(),
            api: "chat".into(),
            endpoint: "https://api.example.com".into(),
            group: None,
            enabled: true,
            interval_ms: 60_000,
            models: vec!["gpt".into()],
            sealed_key: None,
            sealed_headers: None,
            key_error: None,
        })
        .collect()
}

fn plan(rows: &[MonitorRow]) -> AlertPlan {
    let rule = Rule {
        sinks: vec!["hook".into()],
        failure_threshold: 1,
        success_threshold: 1,
        group_window: Duration::ZERO,
        ..Rule::default()
    };
    let mut p = AlertPlan::default();
    for r in rows {
        p.monitors.insert(
            r.id.clone(),
            MonitorPlan {
                name: r.name.clone(),
                rule: rule.clone(),
                maintenance: Vec::new(),
            },
        );
    }
    p.grouping.insert("hook".into(), true);
    p
}

fn result(id: &MonitorId, failing: bool) -> CheckResult {
    let (status, kind) = if failing {
        (Status::Error, Kind::Timeout)
    } else {
        (Status::Operational, Kind::Ok)
    };
    CheckResult {
        monitor: id.clone(),
        model: "gpt".into(),
        started_at: Timestamp::now(),
        status,
        kind,
        http_status: None,
        ttft_ms: None,
        latency_ms: Some(100),
        ping_ms: None,
        message: String::new(),
        facts: Default::default(),
        location: String::new(),
        due_at: None,
    }
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let (n, rate, secs) = (arg(1, 1000), arg(2, 200), arg(3, 30));
    let latencies: Arc<Mutex<Vec<i64>>> = Arc::default();
    let lat = latencies.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let lat = lat.clone();
            async move {
                let now = Timestamp::now().millis();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let mut l = lat.lock().expect("not poisoned");
                    for e in v["events"].as_array().into_iter().flatten() {
                        l.push(now - e["at_ms"].as_i64().unwrap_or(now));
                    }
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::Sqlite(dir.path().join("bench.db"));
    let rows = monitors(n);
    let mut writer = open(&db, OpenMode::Create).expect("open");
    writer.sync_monitors(&rows).expect("sync");
    writer.set_alert_plan(Arc::new(plan(&rows)));
    let sink = SinkConfig {
        id: "hook".into(),
        kind: SinkKind::Webhook,
        url: Secret::new(format!("http://{addr}/hook")),
        secret: Some(Secret::new("bench-secret")),
        token: None,
        chat_id: None,
        command: Vec::new(),
        template: None,
        timeout: Duration::from_secs(5),
        network: NetworkPolicy {
            allow_http: true,
            allow_cidrs: vec!["127.0.0.0/8".parse().expect("a CIDR")],
            ..NetworkPolicy::default()
        },
        email: None,
    };
    let sender = Sender::new(&[sink], None).expect("sender");
    let ctx = DrainCtx::new(
        Arc::new(Mutex::new(open(&db, OpenMode::Existing).expect("open"))),
        Arc::new(sender),
        RetryPolicy::default(),
    );
    let stop = CancellationToken::new();
    let drainer = tokio::spawn(Drainer::run(ctx, stop.clone(), Duration::from_secs(10)));

    // The writer: `rate` results a second in batches every 50 ms, round robin over the
    // monitors, each result the opposite of that monitor's last (a flap every time).
    let per_batch = (rate / 20).max(1) as usize;
    let ids: Vec<MonitorId> = rows.iter().map(|r| r.id.clone()).collect();
    let produced = tokio::task::spawn_blocking(move || {
        let mut failing = vec![false; ids.len()];
        let mut next = 0usize;
        let mut produced = 0u64;
        let start = Instant::now();
        let mut tick = start;
        while start.elapsed() < Duration::from_secs(secs) {
            let batch: Vec<CheckResult> = (0..per_batch)
                .map(|_| {
                    let i = next % ids.len();
                    next += 1;
                    failing[i] = !failing[i];
                    result(&ids[i], failing[i])
                })
                .collect();
            writer.insert_results(&batch).expect("insert");
            produced += batch.len() as u64;
            tick += Duration::from_millis(50);
            std::thread::sleep(tick.saturating_duration_since(Instant::now()));
        }
        produced
    })
    .await
    .expect("writer");
    // Let the drainer catch up, then stop it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while (latencies.lock().expect("not poisoned").len() as u64) < produced
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let _ = drainer.await;
    let mut l = latencies.lock().expect("not poisoned").clone();
    l.sort_unstable();
    println!(
        "monitors={n} events/s={rate} seconds={secs} events={produced} received={} p50={}ms p95={}ms p99={}ms max={}ms",
        l.len(),
        pct(&l, 0.50),
        pct(&l, 0.95),
        pct(&l, 0.99),
        l.last().copied().unwrap_or(0)
    );
}
