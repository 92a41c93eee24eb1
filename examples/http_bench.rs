//! HTTP bench: a database of MONITORS × 2 models × DAYS days at a one-minute interval (1,000 ×
//! 2 × 30 = 86.4 M rows by default) built through the real store API, then `chanmon serve`
//! (the release binary) on it, and the time to answer `/`, `/api/v1/status` and `/metrics`:
//! right after a new view was published (the render) and repeated (the cached body), while
//! another connection keeps inserting a result a second (after one for every series, so
//! `/metrics` carries every series' histograms and counters as a daemon's would).
//!
//!     cargo build --release && cargo run --release --example http_bench [-- DIR [MONITORS] [DAYS]]
//!
//! An existing `DIR/bench.db` built for the same size is reused (`DIR/built` records it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chanmon::config::parse;
use chanmon::model::{CheckResult, Kind, MonitorId, Timestamp};
use chanmon::secret::MasterKey;
use chanmon::store::{self, OpenMode};

const MINUTE: i64 = 60_000;
const MODELS: [&str; 2] = ["gpt-4o-mini", "gpt-4.1-mini"];

fn config(monitors: usize) -> String {
    let mut c = String::from("database = \"bench.db\"\n[http]\ntitle = \"bench\"\n");
    for i in 0..monitors {
        c.push_str(&format!(
            "\n[[monitor]]\nid = \"m{i:04}\"\nname = \"Channel {i}\"\ngroup = \"group {}\"\nprovider = \"openai\"\napi_key = \"sk-bench-{i}\"\nmodel = \"{}\"\nextra_models = [\"{}\"]\ninterval = \"60s\"\n",
            i % 20,
            MODELS[0],
            MODELS[1]
        ));
    }
    c
}

fn result(rng: &mut fastrand::Rng, monitor: &MonitorId, model: &str, at: i64) -> CheckResult {
    let kind = match rng.u32(0..1000) {
        0..=969 => Kind::Ok,
        970..=984 => Kind::Slow,
        985..=989 => Kind::ChallengeMismatch,
        990..=994 => Kind::RateLimited,
        _ => Kind::Timeout,
    };
    let up = kind.status().is_up();
    let latency = rng.u32(300..2500) + if kind == Kind::Slow { 8000 } else { 0 };
    CheckResult {
        monitor: monitor.clone(),
        model: model.to_owned(),
        started_at: Timestamp(at + rng.i64(0..900)),
        status: kind.status(),
        kind,
        http_status: Some(if kind == Kind::RateLimited { 429 } else { 200 }),
        ttft_ms: up.then_some(latency / 3),
        latency_ms: up.then_some(latency),
        ping_ms: Some(rng.u32(20..80)),
        message: if up {
            String::new()
        } else {
            "upstream said no".to_owned()
        },
        facts: Default::default(),
        location: String::new(),
        due_at: None,
    }
}

fn build(dir: &Path, monitors: usize, days: i64) -> PathBuf {
    let cfg_path = dir.join("monitors.toml");
    let text = config(monitors);
    std::fs::write(&cfg_path, &text).expect("config");
    let marker = dir.join("built");
    let want = format!("{monitors} {days}");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        println!("reusing {}", dir.join("bench.db").display());
        return cfg_path;
    }
    let cfg = parse(&text, &cfg_path, &|_| None)
        .expect("bench config")
        .config;
    let db = cfg.database.sqlite_path().expect("sqlite").to_path_buf();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let now = Timestamp::now().millis() / MINUTE * MINUTE;
    let mut store = store::open(&cfg.database, OpenMode::Create).expect("open");
    chanmon::keys::sync(
        store.as_mut(),
        &cfg.monitors,
        &MasterKey::from_bytes([9; 32]),
    )
    .expect("sync");
    let ids: Vec<MonitorId> = cfg.monitors.iter().map(|m| m.id.clone()).collect();
    let mut rng = fastrand::Rng::with_seed(1);
    let t = Instant::now();
    let (mut rows, mut batch) = (0u64, Vec::with_capacity(20_000));
    let mut minute = now - days * 1440 * MINUTE;
    while minute < now {
        for id in &ids {
            for model in MODELS {
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
    println!(
        "| build | {rows} rows in {:.0} s |",
        t.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, want).expect("marker");
    cfg_path
}

/// One GET; returns (status, body bytes, elapsed).
fn get(addr: SocketAddr, path: &str, gzip: bool) -> (u16, usize, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let enc = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{enc}\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let elapsed = t.elapsed();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    let status = String::from_utf8_lossy(&raw[..head_end.min(12)])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw.len() - head_end - 4, elapsed)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/http-bench".into()));
    let monitors: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let days: i64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(30);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let cfg_path = build(&dir, monitors, days);

    let log = dir.join("serve.log");
    // The release binary beside this example (`CHANMON_BIN` overrides).
    let bin = std::env::var_os("CHANMON_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/chanmon"),
        PathBuf::from,
    );
    let t = Instant::now();
    let mut child = Command::new(&bin)
        .args(["--config"])
        .arg(&cfg_path)
        .args(["serve", "--listen", "127.0.0.1:0", "--poll", "1s"])
        .env("RUST_LOG", "chanmon=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start target/release/chanmon (cargo build --release first)");
    let addr: SocketAddr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(a) = text
            .lines()
            .find(|l| l.contains("http: listening"))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("addr=")))
            .and_then(|a| a.parse().ok())
        {
            break a;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "serve did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    while get(addr, "/readyz", false).0 != 200 {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "| serve: start to first complete view (load of {} series from rollups) | {:.2} s |",
        monitors * 2,
        t.elapsed().as_secs_f64()
    );

    // A writer adds one result a second, so each poll publishes a new view.
    let cfg = parse(&config(monitors), &cfg_path, &|_| None)
        .expect("cfg")
        .config;
    let database = cfg.database.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut store = store::open(&database, OpenMode::Existing).expect("writer");
            let mut rng = fastrand::Rng::with_seed(2);
            // First a result for every series, so /metrics carries each one's histograms and
            // counters as a daemon's would.
            let all: Vec<CheckResult> = (0..monitors)
                .flat_map(|i| {
                    let id = MonitorId::parse(&format!("m{i:04}")).expect("id");
                    MODELS.map(|m| (id.clone(), m))
                })
                .map(|(id, m)| result(&mut rng, &id, m, Timestamp::now().millis() - 900))
                .collect();
            store.insert_results(&all).expect("insert all");
            let id = MonitorId::parse("m0000").expect("id");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = result(&mut rng, &id, MODELS[0], Timestamp::now().millis() - 900);
                store.insert_results(&[r]).expect("insert");
                std::thread::sleep(Duration::from_millis(1000));
            }
        })
    };
    // Let a poll pick up the first batch.
    std::thread::sleep(Duration::from_secs(3));
    for path in ["/", "/api/v1/status", "/metrics"] {
        // Rendered: the first request after a new view (one a second, so wait 1.1 s between).
        let mut fresh = Vec::new();
        let mut size = 0;
        for _ in 0..9 {
            std::thread::sleep(Duration::from_millis(1100));
            let (code, bytes, d) = get(addr, path, false);
            assert_eq!(code, 200, "{path}");
            size = bytes;
            fresh.push(d);
        }
        let warm = median((0..21).map(|_| get(addr, path, false).2).collect());
        let gz = get(addr, path, true).1;
        println!(
            "| `{path}` | {:.1} ms rendered, {:.2} ms cached (median of 9 / 21) | {:.0} KiB ({:.0} KiB gzip) |",
            ms(median(fresh)),
            ms(warm),
            size as f64 / 1024.0,
            gz as f64 / 1024.0
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = writer.join();
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        .unwrap_or_default();
    println!(
        "| serve peak RSS | {:.1} MiB |",
        rss.parse::<f64>().unwrap_or(0.0) / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
