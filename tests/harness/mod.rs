//! A tiny harness that makes each integration test read like a shell session: a temp dir with
//! a config, the real `chanmon` binary, and helpers to wait for results.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const MASTER_KEY: &str =
    "0101010101010101010101010101010101010101010101010101010101010101";

pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chanmon"))
}

/// A scratch directory holding `monitors.toml` (and the database beside it).
pub(crate) struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    pub(crate) fn new(config: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("monitors.toml");
        std::fs::write(&path, config).expect("write config");
        Env { dir, config: path }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.path("chanmon.db")
    }

    pub(crate) fn write_config(&self, config: &str) {
        std::fs::write(&self.config, config).expect("write config");
    }

    /// `chanmon --config <config> <args>` with a fixed master key, a clean environment
    /// (no proxies, no RUST_LOG) and colours off.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--config").arg(&self.config).args(args);
        c.current_dir(self.dir.path());
        c.env("CHANMON_MASTER_KEY", MASTER_KEY);
        for v in [
            "RUST_LOG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "NO_PROXY",
            "CHANMON_CONFIG",
            "CHANMON_DATABASE_URL",
        ] {
            c.env_remove(v);
        }
        c.env("NO_COLOR", "1");
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run chanmon")
    }

    /// Starts `chanmon run` with stderr captured to `daemon.log` in the temp dir.
    pub(crate) fn spawn_daemon(&self, extra_env: &[(&str, &str)]) -> Daemon {
        let log = self.path(&format!("daemon-{}.log", fastrand_suffix()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut c = self.command(&["run"]);
        c.env("RUST_LOG", "chanmon=debug");
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn daemon");
        Daemon { child, log }
    }

    /// History rows (newest first) as JSON objects.
    pub(crate) fn history(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        if !self.db().exists() {
            // The daemon has not created it yet: nothing recorded so far.
            return Vec::new();
        }
        // Reads go through a config of their own, so a test may break the daemon's config.
        let reader = self.path("reader.toml");
        std::fs::write(&reader, "database = \"chanmon.db\"\n").expect("reader config");
        let mut args = vec!["history", "--format", "json", "--limit", "100000"];
        args.extend_from_slice(extra);
        let out = self
            .command(&args)
            .arg("--config")
            .arg(&reader)
            .output()
            .expect("run chanmon");
        assert!(
            out.status.success(),
            "history failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("history json")
    }

    pub(crate) fn history_for(&self, id: &str) -> Vec<serde_json::Value> {
        self.history(&[id])
    }
}

fn fastrand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub(crate) struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    /// A counter from the daemon's final `daemon stopped` line, where every counter is a
    /// structured `name=value` field.
    pub(crate) fn final_counter(&self, name: &str) -> Option<u64> {
        let log = self.log();
        let line = log.lines().rev().find(|l| l.contains("daemon stopped"))?;
        let key = format!("{name}=");
        line.split_whitespace()
            .find_map(|field| field.strip_prefix(&key))
            .and_then(|v| v.parse().ok())
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for exit; panics (after killing it) if it does not exit in `within`.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "daemon did not exit within {within:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 100 ms until it holds; panics with `what` after `within`.
pub(crate) fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `[[monitor]]` table pointing at a loopback mock.
pub(crate) fn monitor(
    id: &str,
    provider: &str,
    origin: &str,
    key: &str,
    models: &[&str],
    extra: &str,
) -> String {
    let (model, rest) = models.split_first().expect("a model");
    let extras: Vec<String> = rest.iter().map(|m| format!("\"{m}\"")).collect();
    let api = if provider == "openai-responses" {
        "api = \"responses\"\n"
    } else {
        ""
    };
    let provider = provider.trim_end_matches("-responses");
    format!(
        "\n[[monitor]]\nid = \"{id}\"\nprovider = \"{provider}\"\n{api}endpoint = \"{origin}\"\napi_key = \"{key}\"\nmodel = \"{model}\"\nextra_models = [{}]\n{extra}\n",
        extras.join(", ")
    )
}

/// The preamble every test config shares: loopback allowed explicitly.
pub(crate) fn preamble(runner: &str) -> String {
    format!("[network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n\n[runner]\n{runner}\n")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn field<'a>(row: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &row[name]
}

pub(crate) fn s<'a>(row: &'a serde_json::Value, name: &str) -> &'a str {
    row[name].as_str().unwrap_or("")
}

/// Bytes of the database and its WAL, for "the key is not in the file" checks.
pub(crate) fn db_bytes(db: &Path) -> Vec<u8> {
    let mut all = std::fs::read(db).unwrap_or_default();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    all.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    all
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `started_at` of a history row in epoch ms (JSON number or RFC 3339 string).
pub(crate) fn started_ms(row: &serde_json::Value) -> i64 {
    let v = &row["started_at"];
    v.as_i64()
        .or_else(|| {
            v.as_str()
                .and_then(|s| chanmon::model::Timestamp::parse(s).ok())
                .map(|t| t.millis())
        })
        .unwrap_or_else(|| panic!("row without started_at: {row}"))
}
