//! Environment proxies are ignored: with HTTP_PROXY and friends pointing at a canary proxy, the
//! real `chanmon check` reaches the (mock) upstream directly and the canary sees nothing. The
//! variables are set on the child process only, so this test needs no `unsafe`.

mod harness;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{Env, monitor, preamble, s, text};
use support::mock::MockUpstream;

const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// A stand-in proxy that records the request line of every connection and answers `200 ok`.
struct Canary {
    url: String,
    /// Filled before the answer is written, so whatever chanmon sent through the canary is
    /// recorded by the time chanmon has exited.
    seen: Arc<Mutex<Vec<String>>>,
}

impl Canary {
    fn start() -> Canary {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind canary");
        let url = format!("http://{}", listener.local_addr().expect("canary addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        // Serves until the test process ends.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                let _ = BufReader::new(&conn).read_line(&mut line);
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.trim_end().to_owned());
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Canary { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn config(mock: &MockUpstream, network: &str) -> String {
    let mut c = preamble("").replacen("[network]\n", &format!("[network]\n{network}"), 1);
    c.push_str(&monitor(
        "direct",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "",
    ));
    c
}

#[test]
fn environment_proxies_are_ignored() {
    let canary = Canary::start();
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock, ""));
    let mut cmd = env.command(&["check", "--all", "--no-record", "--format", "json"]);
    for v in PROXY_VARS {
        cmd.env(v, &canary.url);
    }
    let out = cmd.output().expect("run chanmon");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(s(&rows[0], "status"), "operational", "{rows:?}");
    // The probe and the ping both went straight to the upstream.
    assert_eq!(mock.requests_for("good").len(), 1);
    assert!(mock.requests().iter().any(|r| r.method == "HEAD"));
    assert_eq!(
        canary.seen(),
        Vec::<String>::new(),
        "the environment proxy was used"
    );
}

/// The control: a proxy named in the config is used, and the canary notices it.
#[test]
fn a_configured_proxy_is_used_and_the_canary_notices() {
    let canary = Canary::start();
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock, &format!("proxy = \"{}\"\n", canary.url)));
    let out = env
        .command(&["check", "--all", "--no-record", "--format", "json"])
        .output()
        .expect("run chanmon");
    let seen = canary.seen();
    assert!(
        seen.iter().any(|l| l.starts_with("POST ")),
        "{seen:?}\n{}",
        text(&out.stderr)
    );
    assert!(
        mock.requests().is_empty(),
        "the upstream was reached directly"
    );
}
