//! The provider's own status page, through the real daemon: a loopback Statuspage-format server
//! and a Google-incidents-format one; indicator changes and incidents show in `status --format
//! json` beside (never instead of) chanmon's verdict; a page that hangs or answers garbage is
//! `unknown` with the reason and does not hold up probes.

mod harness;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{Env, monitor, preamble, s, wait_until};
use support::mock::MockUpstream;

const T: Duration = Duration::from_secs(60);

/// What the status server answers.
#[derive(Clone)]
enum Page {
    Json(String),
    /// Accepts, reads the request, never answers.
    Hang,
    Garbage,
}

/// A minimal HTTP/1.1 server on loopback answering every request with the current page.
struct StatusServer {
    port: u16,
    page: Arc<Mutex<Page>>,
}

impl StatusServer {
    fn start(page: Page) -> StatusServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let page = Arc::new(Mutex::new(page));
        let shared = page.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let page = shared.lock().unwrap().clone();
                std::thread::spawn(move || answer(conn, page));
            }
        });
        StatusServer { port, page }
    }

    fn set(&self, page: Page) {
        *self.page.lock().unwrap() = page;
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn answer(mut conn: TcpStream, page: Page) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let body = match page {
        Page::Json(b) => b,
        Page::Garbage => "<html>we are down, ironically</html>".to_owned(),
        Page::Hang => {
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
    };
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn statuspage(indicator: &str, incident: Option<&str>) -> Page {
    let incidents = incident.map_or(String::new(), |name| {
        format!(
            r#"{{"name":"{name}","status":"investigating","impact":"{indicator}","updated_at":"2026-12-01T10:00:00Z"}}"#
        )
    });
    Page::Json(format!(
        r#"{{"page":{{"id":"p","name":"Provider"}},"status":{{"indicator":"{indicator}","description":"Described {indicator}"}},"components":[],"incidents":[{incidents}],"scheduled_maintenances":[]}}"#
    ))
}

fn google(open_incident: Option<&str>) -> Page {
    let incidents = open_incident.map_or(String::new(), |name| {
        format!(
            r#"{{"id":"g1","begin":"2026-12-01T09:00:00+00:00","end":null,"external_desc":"{name}","severity":"high","service_name":"Vertex Gemini API","modified":"2026-12-01T09:30:00+00:00","most_recent_update":{{"status":"SERVICE_OUTAGE","when":"2026-12-01T09:30:00+00:00"}},"affected_products":[{{"title":"Vertex Gemini API","id":"x"}}]}}"#
        )
    });
    Page::Json(format!("[{incidents}]"))
}

/// `status --format json` rows, keyed by monitor.
fn official(env: &Env, id: &str) -> serde_json::Value {
    let out = env.run(&["status", "--format", "json"]);
    if !out.status.success() {
        return serde_json::Value::Null;
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .find(|r| s(r, "monitor") == id)
        .map_or(serde_json::Value::Null, |r| r)
}

#[test]
fn indicators_and_incidents_of_both_formats_show_beside_the_verdict() {
    let mock = MockUpstream::start();
    let sp = StatusServer::start(statuspage("major", Some("Elevated error rates")));
    let gg = StatusServer::start(google(Some("Gemini API errors")));
    let common = "interval = \"60s\"\ntimeout = \"5s\"\nofficial_status_interval = \"30s\"";
    let c = preamble("tick = \"200ms\"")
        + &monitor(
            "oa",
            "openai",
            &mock.origin(),
            mock.key(),
            &["good"],
            &format!(
                "{common}\nofficial_status = {{ statuspage_url = \"{}\" }}",
                sp.url("/api/v2/summary.json")
            ),
        )
        + &monitor(
            "gm",
            "gemini",
            &mock.origin(),
            mock.key(),
            &["good"],
            &format!(
                "{common}\nofficial_status = {{ google_incidents_url = \"{}\" }}",
                gg.url("/incidents.json")
            ),
        );
    let env = Env::new(&c);
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "both pages read and both monitors probed", || {
        let (oa, gm) = (official(&env, "oa"), official(&env, "gm"));
        oa["official"]["indicator"] == "major"
            && gm["official"]["indicator"] == "major"
            && !oa["latest"].is_null()
    });
    let oa = official(&env, "oa");
    let o = &oa["official"];
    assert_eq!(o["description"], "Described major");
    assert_eq!(o["incidents"][0]["name"], "Elevated error rates");
    assert_eq!(o["incidents"][0]["status"], "investigating");
    assert!(o["checked_at"].is_i64() && o["error"].is_null(), "{o}");
    // The provider's word never changes chanmon's own verdict.
    assert_eq!(s(&oa["latest"], "status"), "operational", "{oa}");
    let gm = official(&env, "gm");
    assert_eq!(gm["official"]["incidents"][0]["name"], "Gemini API errors");
    assert_eq!(gm["official"]["incidents"][0]["impact"], "high");

    // The pages change; a reload reads them again at once.
    sp.set(statuspage("none", None));
    gg.set(google(None));
    d.signal("HUP");
    wait_until(T, "both pages back to none", || {
        official(&env, "oa")["official"]["indicator"] == "none"
            && official(&env, "gm")["official"]["indicator"] == "none"
    });
    let oa = official(&env, "oa");
    assert_eq!(oa["official"]["incidents"], serde_json::json!([]));
    assert_eq!(oa["official"]["description"], "Described none");
    let table = env.run(&["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("official oa: none"), "{table}");
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
}

#[test]
fn a_hanging_or_garbage_page_is_unknown_and_does_not_hold_up_probes() {
    let mock = MockUpstream::start();
    let hang = StatusServer::start(Page::Hang);
    let junk = StatusServer::start(Page::Garbage);
    let mon = |id: &str, url: String| {
        monitor(
            id,
            "openai",
            &mock.origin(),
            mock.key(),
            &["good"],
            &format!("interval = \"10s\"\ntimeout = \"5s\"\nofficial_status = \"{url}\""),
        )
    };
    let c = preamble("tick = \"200ms\"")
        + &mon("hung", hang.url("/api/v2/summary.json"))
        + &mon("junk", junk.url("/api/v2/summary.json"));
    let env = Env::new(&c);
    let mut d = env.spawn_daemon(&[]);
    // The hanging page takes its whole read timeout (10 s); the probe, started at the same
    // moment, is recorded before that reading exists.
    wait_until(T, "a probe of `hung`", || {
        !env.history_for("hung").is_empty()
    });
    let early = official(&env, "hung");
    assert!(early["official"]["checked_at"].is_null(), "{early}");
    wait_until(T, "the hanging page reported unknown", || {
        official(&env, "hung")["official"]["indicator"] == "unknown"
            && !official(&env, "hung")["official"]["checked_at"].is_null()
    });
    let hung = official(&env, "hung");
    let err = s(&hung["official"], "error");
    assert!(err.contains("within"), "{err}");
    let junk = official(&env, "junk");
    assert_eq!(junk["official"]["indicator"], "unknown", "{junk}");
    let err = s(&junk["official"], "error");
    assert!(err.contains("not JSON"), "{err}");
    // Probes go on on their schedule meanwhile, and stay operational.
    wait_until(T, "a second probe of `hung`", || {
        env.history_for("hung").len() >= 2
    });
    assert_eq!(s(&env.history_for("hung")[0], "status"), "operational");
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
}
