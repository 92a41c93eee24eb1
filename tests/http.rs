//! The HTTP side over real HTTP: `chanmon run --listen` beside the mock upstream and
//! `chanmon serve` on the database it leaves. Each route's status, content type and content;
//! the token on and off; `show_details` off leaking no endpoint or message (asserted on the
//! bytes); ETag round trips; the XSS-named monitor escaped; live responses validated against
//! `docs/openapi.yaml`; a live scrape parsed by the official OpenMetrics parser.

mod harness;
mod support;

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use harness::{Env, monitor, preamble, wait_until};
use support::http_client::{Reply, get, request};
use support::mock::MockUpstream;

const T: Duration = Duration::from_secs(60);
const XSS: &str = "<script>alert(1)</script>";
const TOKEN: &str = "correct-horse-battery-staple-42";

/// Two monitors: `xss` (a hostile name, one good and one failing model, in a group) and
/// `plain`; probed once (the interval is long), then only read.
fn config(mock: &MockUpstream, http: &str) -> String {
    let mut c = preamble("workers = 2");
    c.push_str(http);
    c.push_str(&monitor(
        "xss",
        "openai",
        &mock.origin(),
        mock.key(),
        &["gpt-ok", "status-500"],
        &format!("name = \"{XSS}\"\ngroup = \"Main\"\ninterval = \"1h\""),
    ));
    c.push_str(&monitor(
        "plain",
        "anthropic",
        &mock.origin(),
        mock.key(),
        &["claude-ok"],
        "interval = \"1h\"",
    ));
    c
}

/// The address a `chanmon` process logged for its listener.
fn listening(log: &std::path::Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("http: listening"))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

fn wait_listening(log: &std::path::Path) -> SocketAddr {
    let mut addr = None;
    wait_until(T, "the http listener", || {
        addr = listening(log);
        addr.is_some()
    });
    addr.expect("address")
}

/// Waits until `/api/v1/status` shows a latest result for every model.
fn wait_checked(addr: SocketAddr, auth: &[(&str, &str)], models: usize) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(T, "every model checked on /api/v1/status", || {
        let r = request(addr, "GET", "/api/v1/status", auth);
        if r.status != 200 {
            return false;
        }
        last = r.json();
        last.as_array()
            .is_some_and(|rows| rows.len() == models && rows.iter().all(|r| !r["latest"].is_null()))
    });
    last
}

fn openapi() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
        .expect("docs/openapi.yaml");
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&body).expect("openapi.yaml is JSON-flavoured YAML")
}

/// Validates `value` against `schema` (which may `$ref` the document's components).
fn assert_valid(
    doc: &serde_json::Value,
    schema: serde_json::Value,
    value: &serde_json::Value,
    what: &str,
) {
    let mut root = schema;
    root["components"] = doc["components"].clone();
    let validator = jsonschema::draft202012::new(&root).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match docs/openapi.yaml: {errors:?}\n{value:#}"
    );
}

fn array_of(name: &str) -> serde_json::Value {
    serde_json::json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } })
}

/// Days covered by each day bar in `html`: the sum of its runs' widths (`wN` classes).
fn bar_days(html: &str) -> Vec<usize> {
    html.split("<div class=\"bars\">")
        .skip(1)
        .map(|bar| {
            let bar = &bar[..bar.find("</div>").unwrap_or(bar.len())];
            bar.split("<i class=\"")
                .skip(1)
                .map(|run| {
                    let classes = &run[..run.find('"').expect("a closing quote")];
                    let w = classes.split(' ').find_map(|c| c.strip_prefix('w'));
                    w.expect("a width class")
                        .parse::<usize>()
                        .expect("a run length")
                })
                .sum()
        })
        .collect()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn the_daemon_serves_every_route_without_leaking_details() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock, "[http]\ntitle = \"Channel <status>\"\n"));
    let mut cmd = env.command(&["run", "--listen", "127.0.0.1:0"]);
    let log = env.path("daemon.log");
    let mut daemon = spawn(&mut cmd, &log);
    let addr = wait_listening(&log);
    let status = wait_checked(addr, &[], 3);

    // The message the failing model recorded: in the database, never on the HTTP side.
    let rows = env.history_for("xss");
    let failing = rows
        .iter()
        .find(|r| r["model"] == "status-500")
        .expect("a status-500 row");
    let message = failing["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        !message.is_empty(),
        "the mock's error left a message: {failing}"
    );
    let origin = mock.origin();
    let host = origin.trim_start_matches("http://").to_owned();

    // Health.
    let h = get(addr, "/healthz");
    assert_eq!(
        (h.status, h.text().starts_with("ok")),
        (200, true),
        "{}",
        h.text()
    );
    assert_eq!(get(addr, "/readyz").status, 200);

    // The page.
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let html = page.text();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is escaped"
    );
    assert!(!html.contains(XSS), "the hostile name never appears raw");
    assert!(
        html.contains("Channel &lt;status&gt;"),
        "the title is escaped"
    );
    assert!(
        html.contains("Partial outage"),
        "one failing model of three: partial outage"
    );
    // One line per model, one 90-day bar per monitor (runs of days: their widths add up).
    assert_eq!(count(&html, "<li>"), 3, "one line per model");
    assert_eq!(bar_days(&html), [90, 90], "90 days per monitor");
    assert!(html.contains("<svg class=\"spark\""), "a sparkline");
    // Today's bars from the rollups: `plain` answered, `xss`'s worst model did not; the other
    // 89 days have no checks (one grey run each).
    assert_eq!(count(&html, "<i class=\"d-100 w1\""), 1, "plain's today");
    assert_eq!(
        count(&html, "<i class=\"d-low w1\""),
        1,
        "xss's today (worst model)"
    );
    assert_eq!(
        count(&html, "<i class=\"w89\" role=\"img\" title=\""),
        2,
        "grey: no checks, said in words on a small fleet"
    );
    assert_eq!(
        count(&html, "(0 of 1 checks answered)"),
        1,
        "xss's today: exact figures in its tooltip"
    );
    assert!(
        html.contains("http-equiv=\"refresh\""),
        "the no-script fallback"
    );
    assert!(html.contains("/assets/app.js"), "the refresh script");
    assert_eq!(
        count(&html, ">error<"),
        2,
        "the failing model and its monitor say so in text"
    );

    // A monitor's page.
    let detail = get(addr, "/monitors/xss");
    assert_eq!(detail.status, 200);
    let dt = detail.text();
    assert!(
        dt.contains("Recent results") && dt.contains("Latency, last 7 days"),
        "{dt}"
    );
    assert!(!dt.contains(XSS));
    assert_eq!(get(addr, "/monitors/nope").status, 404);
    assert_eq!(get(addr, "/monitors/..%2F..%2Fetc").status, 404);

    // Assets.
    let css = get(addr, "/assets/style.css");
    assert_eq!(
        (css.status, css.header("content-type")),
        (200, Some("text/css; charset=utf-8"))
    );
    assert!(css.text().contains("prefers-color-scheme: dark"));
    assert_eq!(get(addr, "/assets/app.js").status, 200);
    assert_eq!(get(addr, "/assets/secret.toml").status, 404);

    // The API, validated against the OpenAPI document.
    let doc = openapi();
    assert_valid(&doc, array_of("StatusRow"), &status, "/api/v1/status");
    let monitors = get(addr, "/api/v1/monitors");
    assert_eq!(monitors.header("content-type"), Some("application/json"));
    assert_valid(
        &doc,
        array_of("Monitor"),
        &monitors.json(),
        "/api/v1/monitors",
    );
    let one = get(addr, "/api/v1/monitors/xss");
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_valid(&doc, array_of("StatusRow"), &one, "/api/v1/monitors/xss");
    assert_eq!(one[0]["name"], XSS, "JSON carries the name as data");
    assert_eq!(one.as_array().map(Vec::len), Some(2));
    assert!(one[0]["timeline"].as_str().is_some_and(|t| t.len() == 1));
    let hist = get(addr, "/api/v1/monitors/xss/history?status=error&limit=5");
    assert_eq!(hist.status, 200);
    let hist = hist.json();
    assert_valid(&doc, array_of("CheckResult"), &hist, "history");
    assert_eq!(hist.as_array().map(Vec::len), Some(1));
    assert_eq!(hist[0]["model"], "status-500");
    assert_eq!(hist[0]["message"], "", "no message without show_details");
    let served = get(addr, "/api/v1/openapi.json");
    assert_eq!(served.status, 200);
    assert_eq!(
        served.json(),
        doc,
        "the served document is docs/openapi.yaml"
    );
    for (path, code) in [
        ("/api/v1/monitors/nope", 404),
        ("/api/v1/monitors/nope/history", 404),
        ("/api/v1/monitors/xss/history?limit=0", 400),
        ("/api/v1/monitors/xss/history?limit=abc", 400),
        ("/api/v1/monitors/xss/history?since=whenever", 400),
        ("/api/v1/monitors/BAD%20ID", 400),
        ("/api/v2/status", 404),
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, code, "{path}: {}", r.text());
        if path.starts_with("/api/v1") {
            assert!(r.json()["error"].is_string(), "{path}");
        }
    }
    assert_eq!(request(addr, "POST", "/api/v1/status", &[]).status, 405);
    assert_eq!(request(addr, "DELETE", "/", &[]).status, 405);

    // ETag round trip and gzip.
    let first = get(addr, "/api/v1/status");
    let etag = first.header("etag").expect("an ETag").to_owned();
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let again = request(addr, "GET", "/api/v1/status", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304, "unchanged data is not sent twice");
    assert!(again.body.is_empty());
    let other = request(
        addr,
        "GET",
        "/api/v1/status",
        &[("If-None-Match", "W/\"0000\"")],
    );
    assert_eq!(other.status, 200);
    let zipped = request(addr, "GET", "/", &[("Accept-Encoding", "gzip")]);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(&zipped.body[..2], &[0x1f, 0x8b], "a gzip stream");

    // Badges.
    let badge = get(addr, "/badge/xss.svg");
    assert_eq!(badge.status, 200);
    assert_eq!(
        badge.header("content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    assert!(badge.text().contains(">error<"), "{}", badge.text());
    let up = get(addr, "/badge/plain/uptime/24h.svg");
    assert_eq!(up.status, 200);
    assert!(up.text().contains("100.00%"), "{}", up.text());
    assert_eq!(get(addr, "/badge/nope.svg").status, 404);
    assert_eq!(get(addr, "/badge/plain/uptime/5m.svg").status, 404);

    // /metrics.
    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text"))
    );
    let mt = m.text();
    assert!(mt.ends_with("# EOF\n"));
    for needle in [
        "chanmon_up{monitor=\"xss\",model=\"gpt-ok\",provider=\"openai\",location=\"\"} 1",
        "chanmon_up{monitor=\"xss\",model=\"status-500\",provider=\"openai\",location=\"\"} 0",
        "chanmon_status{monitor=\"plain\",model=\"claude-ok\",provider=\"anthropic\",status=\"operational\",location=\"\"} 1",
        "# TYPE chanmon_check_latency_seconds histogram",
        "chanmon_availability_ratio{monitor=\"plain\",model=\"claude-ok\",provider=\"anthropic\",window=\"24h\",location=\"\"} 1",
        "chanmon_build_info{version=",
        "chanmon_scheduler_last_tick_age_seconds ",
        "chanmon_scheduler_checks_started_total ",
    ] {
        assert!(mt.contains(needle), "{needle} missing from\n{mt}");
    }

    // Nothing anywhere carries the endpoint or the upstream's message.
    for path in [
        "/",
        "/monitors/xss",
        "/api/v1/status",
        "/api/v1/monitors",
        "/api/v1/monitors/xss",
        "/api/v1/monitors/xss/history",
        "/badge/xss.svg",
        "/metrics",
    ] {
        let body = get(addr, path).body;
        for secret in [message.as_str(), host.as_str(), mock.key()] {
            assert!(
                !body.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{path} leaks {secret:?}"
            );
        }
    }

    daemon.signal_term();
    assert!(daemon.wait().success());

    // `serve` reads the same database without a daemon.
    let serve_log = env.path("serve.log");
    let mut serve = spawn(
        &mut env.command(&["serve", "--listen", "127.0.0.1:0", "--poll", "1s"]),
        &serve_log,
    );
    let saddr = wait_listening(&serve_log);
    let served = wait_checked(saddr, &[], 3);
    assert_eq!(served, status, "serve shows what the daemon showed");
    assert_eq!(get(saddr, "/healthz").status, 200);
    assert!(get(saddr, "/").text().contains("Partial outage"));
    let sm = get(saddr, "/metrics").text();
    assert!(
        sm.contains("chanmon_up{") && !sm.contains("chanmon_scheduler"),
        "no scheduler in serve"
    );
    serve.signal_term();
    assert!(serve.wait().success());
}

#[test]
fn the_token_guards_everything_but_health() {
    let mock = MockUpstream::start();
    let http = "[http]\ntoken = \"${CHANMON_TEST_TOKEN}\"\nshow_details = true\n";
    let env = Env::new(&config(&mock, http));
    let log = env.path("daemon.log");
    let mut cmd = env.command(&["run", "--listen", "127.0.0.1:0"]);
    cmd.env("CHANMON_TEST_TOKEN", TOKEN);
    let mut daemon = spawn(&mut cmd, &log);
    let addr = wait_listening(&log);
    let bearer = format!("Bearer {TOKEN}");
    wait_checked(addr, &[("Authorization", &bearer)], 3);

    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(get(addr, "/readyz").status, 200);
    for path in ["/", "/monitors/xss", "/badge/xss.svg", "/assets/style.css"] {
        let r = get(addr, path);
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic ")),
            "{path}: a browser prompt"
        );
    }
    for path in [
        "/api/v1/status",
        "/api/v1/monitors/xss/history",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer ")),
            "{path}"
        );
        let wrong = request(
            addr,
            "GET",
            path,
            &[("Authorization", "Bearer correct-horse-battery-staple-43")],
        );
        assert_eq!(wrong.status, 401, "{path}: a wrong token");
        let ok = request(addr, "GET", path, &[("Authorization", &bearer)]);
        assert_eq!(ok.status, 200, "{path}");
    }
    // A browser's Basic credentials: any user, the token as password.
    let basic = format!("Basic {}", b64(&format!("someone:{TOKEN}")));
    assert_eq!(
        request(addr, "GET", "/", &[("Authorization", &basic)]).status,
        200
    );
    let bad = format!("Basic {}", b64("someone:nope"));
    assert_eq!(
        request(addr, "GET", "/", &[("Authorization", &bad)]).status,
        401
    );

    // With details on, messages and the endpoint are shown (to those with the token).
    let hist = request(
        addr,
        "GET",
        "/api/v1/monitors/xss/history?status=error",
        &[("Authorization", &bearer)],
    )
    .json();
    assert!(
        hist[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{hist}"
    );
    let page = request(addr, "GET", "/monitors/xss", &[("Authorization", &bearer)]).text();
    assert!(
        page.contains(&mock.origin()),
        "the endpoint is shown with show_details"
    );
    assert!(!page.contains(TOKEN) && !page.contains(mock.key()));
    daemon.signal_term();
    assert!(daemon.wait().success());

    // `public = true`: the page and badges open, the API and metrics still closed.
    env.write_config(&config(&mock, &format!("{http}public = true\n")));
    let log = env.path("serve.log");
    let mut cmd = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("CHANMON_TEST_TOKEN", TOKEN);
    let mut serve = spawn(&mut cmd, &log);
    let addr = wait_listening(&log);
    wait_checked(addr, &[("Authorization", &bearer)], 3);
    assert_eq!(get(addr, "/").status, 200);
    assert_eq!(get(addr, "/badge/xss.svg").status, 200);
    assert_eq!(get(addr, "/api/v1/status").status, 401);
    assert_eq!(get(addr, "/metrics").status, 401);
    serve.signal_term();
    assert!(serve.wait().success());
}

#[test]
fn without_listen_no_port_and_bad_http_configs_are_refused() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock, ""));
    let log = env.path("daemon.log");
    let mut daemon = spawn(&mut env.command(&["run"]), &log);
    wait_until(T, "first results", || env.history(&[]).len() >= 3);
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("http: listening")
    );
    daemon.signal_term();
    assert!(daemon.wait().success());

    for (http, expect) in [
        ("[http]\nlisten = \"localhost\"\n", "[http]"),
        ("[http]\ntoken = \"short\"\n", "at least 16 characters"),
        ("[http]\nport = 80\n", "listen"),
        ("[http]\nshow_details = \"yes\"\n", "true or false"),
        ("[http]\ntitle = \"\"\n", "title"),
    ] {
        env.write_config(&config(&mock, http));
        let out = env.run(&["validate"]);
        let err = harness::text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{http}: {err}");
        assert!(
            err.contains("monitors.toml:") && err.contains(expect),
            "{http}: {err}"
        );
    }
    env.write_config(&config(&mock, ""));
    let out = env.run(&["serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(harness::text(&out.stderr).contains("--listen"));
}

#[test]
fn a_live_scrape_parses_with_the_official_openmetrics_parser() {
    let Some(python) = openmetrics_python() else {
        return;
    };
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock, ""));
    let log = env.path("daemon.log");
    let mut daemon = spawn(&mut env.command(&["run", "--listen", "127.0.0.1:0"]), &log);
    let addr = wait_listening(&log);
    wait_checked(addr, &[], 3);
    let scrape = get(addr, "/metrics").body;
    let file = env.path("scrape.txt");
    std::fs::write(&file, &scrape).unwrap();
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(PARSE)
        .arg(&file)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "the OpenMetrics parser rejected the scrape: {}\n{}",
        harness::text(&out.stderr),
        harness::text(&scrape)
    );
    let families = harness::text(&out.stdout);
    for f in [
        "chanmon_up gauge",
        "chanmon_checks counter",
        "chanmon_check_latency_seconds histogram",
        "chanmon_build info",
    ] {
        assert!(families.lines().any(|l| l == f), "{f} not in {families}");
    }
    daemon.signal_term();
    assert!(daemon.wait().success());
}

#[test]
fn a_real_browser_renders_the_page_without_console_errors() {
    let Some(chromium) = browser() else {
        return;
    };
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock, ""));
    let log = env.path("daemon.log");
    let mut daemon = spawn(&mut env.command(&["run", "--listen", "127.0.0.1:0"]), &log);
    let addr = wait_listening(&log);
    wait_checked(addr, &[], 3);
    let profile = env.path("chromium-profile");
    // Virtual time runs the page's 30 s partial refresh without waiting for it.
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=40000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{addr}/"))
        .output()
        .expect("run chromium");
    let dom = harness::text(&out.stdout);
    let console = harness::text(&out.stderr);
    assert!(out.status.success(), "chromium failed: {console}");
    assert!(
        dom.contains("Partial outage"),
        "banner text in the rendered DOM:
{dom}"
    );
    assert_eq!(count(&dom, "<li>"), 3, "one line per model");
    assert_eq!(bar_days(&dom), [90, 90], "90 days per monitor");
    assert!(
        dom.contains("data-refreshed="),
        "the script refreshed the page in place (CSP let it run)"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name stayed text after the refresh"
    );
    let errors: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Refused to") || l.contains("Uncaught"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    daemon.signal_term();
    assert!(daemon.wait().success());
}

/// `chromium` on PATH (`.ci/run` installs it); under CI a missing browser fails the test.
fn browser() -> Option<std::path::PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        let ok = std::process::Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(std::path::PathBuf::from(name));
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: chromium is missing; .ci/run installs it"
    );
    eprintln!("SKIPPED: headless browser check (no chromium on PATH; run .ci/run to install it)");
    None
}

/// Parses the file strictly and prints each family's name and type.
const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
for f in text_string_to_metric_families(text):
    print(f.name, f.type)
"#;

/// The Python with `prometheus_client` (the venv `.ci/run` makes, else the system's). Under
/// CI a missing parser fails the test; elsewhere it says once why the check is skipped.
fn openmetrics_python() -> Option<std::path::PathBuf> {
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openmetrics-venv/bin/python");
    let candidates = [venv, std::path::PathBuf::from("python3")];
    for p in candidates {
        let ok = std::process::Command::new(&p)
            .args(["-c", "import prometheus_client.openmetrics.parser"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(p);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: the OpenMetrics parser is missing; .ci/run installs prometheus_client into target/openmetrics-venv"
    );
    eprintln!(
        "SKIPPED: strict OpenMetrics parse (no prometheus_client; run .ci/run to install it)"
    );
    None
}

fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A `chanmon` child with stderr in `log`.
struct Proc(Child);

impl Proc {
    fn signal_term(&self) {
        let st = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + T;
        loop {
            if let Some(st) = self.0.try_wait().expect("try_wait") {
                return st;
            }
            assert!(std::time::Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut std::process::Command, log: &std::path::Path) -> Proc {
    let file = std::fs::File::create(log).expect("log file");
    cmd.env("RUST_LOG", "chanmon=info");
    Proc(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn chanmon"),
    )
}

#[allow(dead_code)]
fn unused(_: Reply) {}
