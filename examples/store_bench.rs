//! Store bench: builds a database of 100 monitors × 2 models × 30 days at a one-minute
//! interval (~8.6 M rows) through the real store API, then times the reads users make, a
//! backup while another connection keeps inserting, `verify` and `export` of every row (as
//! processes, with their peak memory), and a prune of the oldest 15 days while another
//! connection keeps inserting.
//!
//!     cargo run --release --example store_bench [-- DIR [MONITORS] [DAYS]]
//!
//! Figures go to stdout as Markdown rows for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chanmon::config::parse;
use chanmon::model::{CheckResult, Kind, MonitorId, Timestamp};
use chanmon::secret::MasterKey;
use chanmon::store::{self, HistoryQuery, OpenMode};

const MINUTE: i64 = 60_000;

fn config(monitors: usize) -> String {
    let mut c = String::from("database = \"bench.db\"\n");
    for i in 0..monitors {
        c.push_str(&format!(
            "\n[[monitor]]\nid = \"m{i:03}\"\nprovider = \"openai\"\napi_key = \"sk-bench-{i}\"\nmodel = \"gpt-4o-mini\"\nextra_models = [\"gpt-4.1-mini\"]\ninterval = \"60s\"\n"
        ));
    }
    c
}

fn result(rng: &mut fastrand::Rng, monitor: &MonitorId, model: &str, at: i64) -> CheckResult {
    let roll = rng.u32(0..1000);
    let kind = match roll {
        0..=969 => Kind::Ok,
        970..=984 => Kind::Slow,
        985..=989 => Kind::ChallengeMismatch,
        990..=994 => Kind::RateLimited,
        _ => Kind::Timeout,
    };
    let status = kind.status();
    let answered = status.is_up();
    let latency = rng.u32(300..2500) + if kind == Kind::Slow { 8000 } else { 0 };
    CheckResult {
        monitor: monitor.clone(),
        model: model.to_owned(),
        started_at: Timestamp(at + rng.i64(0..900)),
        status,
        kind,
        http_status: Some(match kind {
            Kind::RateLimited => 429,
            Kind::Timeout => 200,
            _ => 200,
        }),
        ttft_ms: answered.then_some(latency / 3),
        latency_ms: answered.then_some(latency),
        ping_ms: Some(rng.u32(20..80)),
        message: match kind {
            Kind::Ok => String::new(),
            Kind::Slow => "answered correctly in 9120 ms, slower than degraded_after 6s".to_owned(),
            Kind::ChallengeMismatch => {
                "expected 79, got: Hello! How can I help you today?".to_owned()
            }
            Kind::RateLimited => {
                "HTTP 429: rate_limit_exceeded: Rate limit reached for requests".to_owned()
            }
            _ => "the reply did not complete within 30s".to_owned(),
        },
        facts: Default::default(),
        location: String::new(),
        due_at: None,
    }
}

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

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/store-bench".into()));
    let monitors: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100);
    let days: i64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(30);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let cfg_path = dir.join("monitors.toml");
    let text = config(monitors);
    std::fs::write(&cfg_path, &text).expect("config");
    let cfg = parse(&text, &cfg_path, &|_| None)
        .expect("bench config")
        .config;
    let database = cfg.database.clone();
    let db = database
        .sqlite_path()
        .expect("a SQLite bench")
        .to_path_buf();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(PathBuf::from(format!("{}{suffix}", db.display())));
    }

    // Build: one run per minute per monitor, both models, oldest first, in batches.
    let now = Timestamp::now().millis() / MINUTE * MINUTE;
    let start = now - days * 1440 * MINUTE;
    let mut store = store::open(&database, OpenMode::Create).expect("open");
    chanmon::keys::sync(
        store.as_mut(),
        &cfg.monitors,
        &MasterKey::from_bytes([9; 32]),
    )
    .expect("sync");
    let ids: Vec<MonitorId> = cfg.monitors.iter().map(|m| m.id.clone()).collect();
    let mut rng = fastrand::Rng::with_seed(1);
    let t = Instant::now();
    let mut rows = 0u64;
    let mut batch = Vec::with_capacity(20_000);
    let mut minute = start;
    while minute < now {
        for id in &ids {
            for model in ["gpt-4o-mini", "gpt-4.1-mini"] {
                batch.push(result(&mut rng, id, model, minute));
            }
        }
        if batch.len() >= 20_000 {
            store.insert_results(&batch).expect("insert");
            rows += batch.len() as u64;
            batch.clear();
        }
        minute += MINUTE;
    }
    store.insert_results(&batch).expect("insert");
    rows += batch.len() as u64;
    let build = t.elapsed();
    drop(store);
    checkpoint(&db);
    let bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "| rows written | {rows} in {:.1} s ({:.0} rows/s, rollups included) |",
        build.as_secs_f64(),
        rows as f64 / build.as_secs_f64()
    );
    println!(
        "| database size | {:.1} MiB = {:.1} bytes per raw row (rollups and indexes included) |",
        bytes as f64 / 1048576.0,
        bytes as f64 / rows as f64
    );

    let store = store::open(&database, OpenMode::Existing).expect("reopen");
    let windows = [
        Duration::from_secs(86_400),
        Duration::from_secs(7 * 86_400),
        Duration::from_secs(30 * 86_400),
    ];
    let nowt = Timestamp(now);
    let all = time(5, || store.status(None, nowt, &windows).expect("status"));
    println!(
        "| status, all {} monitors × 2 models, 24h/7d/30d windows | {:.1} ms (median of 5) |",
        monitors,
        ms(all)
    );
    let one = &ids[monitors / 2];
    let single = time(9, || {
        let rows = store.status(Some(one), nowt, &windows).expect("status one");
        for r in &rows {
            store.timeline(one, &r.model, 60).expect("timeline");
        }
        rows
    });
    println!(
        "| status <id> (2 models, windows + 60-result timelines) | {:.2} ms (median of 9) |",
        ms(single)
    );
    let hist = time(9, || {
        store
            .history(&HistoryQuery {
                monitor: Some(one.clone()),
                limit: 100,
                ..HistoryQuery::default()
            })
            .expect("history")
    });
    println!(
        "| history <id> --limit 100 | {:.2} ms (median of 9) |",
        ms(hist)
    );
    let hist_all = time(5, || {
        store
            .history(&HistoryQuery {
                limit: 100,
                ..HistoryQuery::default()
            })
            .expect("history all")
    });
    println!(
        "| history --limit 100 (all monitors) | {:.2} ms (median of 5) |",
        ms(hist_all)
    );
    let cli = cli_status(&cfg_path);
    if let Some(c) = cli {
        println!(
            "| `chanmon status` end to end (process start, config, query, render) | {:.0} ms (median of 5) |",
            ms(c)
        );
    }
    drop(store);

    care(&database, &cfg_path, &dir, &ids, now, rows);

    // Prune the oldest half while another connection inserts every 10 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let db2 = database.clone();
    let writer_ids = ids.clone();
    let writer = std::thread::spawn(move || {
        let mut w = store::open(&db2, OpenMode::Create).expect("writer");
        let mut rng = fastrand::Rng::with_seed(2);
        let mut worst = Duration::ZERO;
        let mut n = 0u64;
        let mut at = now + MINUTE;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let r = result(&mut rng, &writer_ids[0], "gpt-4o-mini", at);
            let t = Instant::now();
            w.insert_results(&[r]).expect("insert during prune");
            worst = worst.max(t.elapsed());
            n += 1;
            at += 1000;
            std::thread::sleep(Duration::from_millis(10));
        }
        (worst, n)
    });
    let mut p = store::open(&database, OpenMode::Existing).expect("pruner");
    let t = Instant::now();
    let deleted = p
        .prune(nowt, Duration::from_secs((days as u64 / 2) * 86_400), false)
        .expect("prune");
    let prune = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, n) = writer.join().expect("writer thread");
    println!(
        "| prune of the oldest {} days ({} rows) | {:.1} s; longest wait of {} concurrent inserts: {:.1} ms |",
        days / 2,
        deleted,
        prune.as_secs_f64(),
        n,
        ms(worst)
    );
    let after = p.status(None, nowt, &windows).expect("status after prune");
    let avail: f64 = after
        .iter()
        .filter_map(|r| r.windows[2].1.availability())
        .sum::<f64>()
        / after.len().max(1) as f64;
    println!(
        "| mean 30-day availability after the prune (from rollups + raw) | {:.4} % |",
        avail * 100.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn checkpoint(db: &Path) {
    if let Ok(c) = rusqlite::Connection::open(db) {
        let _ = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }
}

/// `chanmon status` as a user runs it, when the release binary exists.
fn cli_status(cfg: &Path) -> Option<Duration> {
    let bin = Path::new("target/release/chanmon");
    if !bin.exists() {
        return None;
    }
    let runs: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let out = std::process::Command::new(bin)
                .args(["--config"])
                .arg(cfg)
                .args(["status", "--format", "json"])
                .env("CHANMON_MASTER_KEY", "09".repeat(32))
                .output()
                .expect("run chanmon");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed()
        })
        .collect();
    Some(median(runs))
}

/// Runs `f` while another connection inserts one row every 10 ms (into the future, for
/// `monitor`); returns what `f` returned, the longest insert and the number of inserts.
fn with_writer<T>(
    database: &chanmon::store::Database,
    monitor: &MonitorId,
    from: i64,
    f: impl FnOnce() -> T,
) -> (T, Duration, u64) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let db2 = database.clone();
    let id = monitor.clone();
    let writer = std::thread::spawn(move || {
        let mut w = store::open(&db2, OpenMode::Create).expect("writer");
        let mut rng = fastrand::Rng::with_seed(3);
        let mut worst = Duration::ZERO;
        let mut n = 0u64;
        let mut at = from;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let r = result(&mut rng, &id, "gpt-4o-mini", at);
            let t = Instant::now();
            w.insert_results(&[r]).expect("insert beside the bench");
            worst = worst.max(t.elapsed());
            n += 1;
            at += 1000;
            std::thread::sleep(Duration::from_millis(10));
        }
        (worst, n)
    });
    // Let the writer get going first.
    std::thread::sleep(Duration::from_millis(200));
    let out = f();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, n) = writer.join().expect("writer thread");
    (out, worst, n)
}

/// Backup while a writer inserts, then `verify` and `export` as a user runs them.
fn care(
    database: &chanmon::store::Database,
    cfg: &Path,
    dir: &Path,
    ids: &[MonitorId],
    now: i64,
    rows: u64,
) {
    let dest = dir.join("backup.db");
    let _ = std::fs::remove_file(&dest);
    let (took, worst, n) = with_writer(database, &ids[1], now + 120 * MINUTE, || {
        let t = Instant::now();
        let s = store::open(database, OpenMode::ReadOnly).expect("open read-only");
        let report = s.backup_to(&dest, false).expect("backup");
        (t.elapsed(), report)
    });
    let (took, report) = took;
    println!(
        "| backup of the whole database ({:.1} MiB, checked with integrity_check) while another connection inserts every 10 ms | {:.1} s; longest wait of {} concurrent inserts: {:.1} ms |",
        report.bytes as f64 / 1_048_576.0,
        took.as_secs_f64(),
        n,
        ms(worst)
    );
    let _ = std::fs::remove_file(&dest);
    for args in [&["verify", "--quick"][..], &["verify"][..]] {
        if let Some((t, peak, _)) = cli(cfg, args) {
            println!(
                "| `chanmon {}` (integrity, keys, rollups against all raw rows) | {:.1} s, peak RSS {:.1} MiB |",
                args.join(" "),
                t.as_secs_f64(),
                peak as f64 / 1024.0
            );
        }
    }
    let one = ids[0].to_string();
    for (what, args, n) in [
        (
            "one monitor (2 series)",
            vec!["export", "--monitor", one.as_str()],
            rows / ids.len() as u64,
        ),
        ("every row, CSV", vec!["export"], rows),
        (
            "every row, JSON lines",
            vec!["export", "--format", "jsonl"],
            rows,
        ),
    ] {
        if let Some((t, peak, bytes)) = cli(cfg, &args) {
            println!(
                "| `chanmon {}`: {what}, ~{} rows, {:.0} MiB out | {:.1} s = {:.0} k rows/s; peak RSS {:.1} MiB |",
                args.join(" "),
                n,
                bytes as f64 / 1_048_576.0,
                t.as_secs_f64(),
                n as f64 / t.as_secs_f64() / 1000.0,
                peak as f64 / 1024.0
            );
        }
    }
}

/// Runs the release binary with `args`, its output counted and thrown away; returns the
/// wall time, the peak RSS in KiB (VmHWM, sampled from /proc every 20 ms until it exits) and
/// the bytes written. `None` when the release binary is not built.
fn cli(cfg: &Path, args: &[&str]) -> Option<(Duration, u64, u64)> {
    use std::io::Read;
    let bin = Path::new("target/release/chanmon");
    if !bin.exists() {
        return None;
    }
    let t = Instant::now();
    let mut child = std::process::Command::new(bin)
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("CHANMON_MASTER_KEY", "09".repeat(32))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run chanmon");
    let pid = child.id();
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let mut peak = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let bytes = reader.join().expect("reader");
    Some((t.elapsed(), peak, bytes))
}
