//! Locations end to end: the real binary, a real SQLite file, the mock upstream and a
//! loopback alert receiver. Two daemons cannot share a SQLite file, so two vantage points are
//! played by sequential `chanmon check --location` runs, each with the config that location
//! sees (the mock for a location that reaches the upstream, a closed port for one cut off from
//! it); the daemon is used where its schedule is the point (slots, which monitors it takes).

mod harness;
mod support;

use std::process::Stdio;
use std::time::Duration;

use harness::{Env, monitor, preamble, text, wait_until};
use support::http_client::get;
use support::mock::MockUpstream;
use support::receiver::Receiver;

const T: Duration = Duration::from_secs(60);
const SECRET: &str = "whsec-test-0123456789abcdef";
/// Nothing listens here: probes get "connection refused" (`error`/`connect`).
const DEAD: &str = "http://127.0.0.1:9";

/// One monitor `m` (model `good`) at `origin`, a webhook sink, and a rule needing two
/// failing locations.
fn config(origin: &str, mock: &MockUpstream, r: &Receiver) -> String {
    let mut c = preamble("");
    let timing = "interval = \"10s\"\ntimeout = \"5s\"";
    c.push_str(&monitor(
        "m",
        "openai",
        origin,
        mock.key(),
        &["good"],
        timing,
    ));
    c.push_str(&format!(
        "\n[[alert]]\nid = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\ntimeout = \"2s\"\n[alert.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        r.url("/hook")
    ));
    c.push_str(
        "\n[alerts]\nsinks = [\"hook\"]\nfailure_threshold = 2\nsuccess_threshold = 1\nmin_failing_locations = 2\ngroup_window = \"0s\"\nretry_base = \"100ms\"\nretry_cap = \"200ms\"\nmax_attempts = 3\n",
    );
    c
}

/// `chanmon check m --location <at>` with the config that location sees.
fn check_from(env: &Env, at: &str, cfg: &str) {
    env.write_config(cfg);
    let out = env
        .command(&["check", "m", "--location", at])
        .env("RUST_LOG", "chanmon=warn")
        .output()
        .expect("run check");
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.code().is_some_and(|c| c <= 2), "{err}");
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = env.run(args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn status_rows(env: &Env) -> Vec<serde_json::Value> {
    json(env, &["status", "m", "--format", "json"])
        .as_array()
        .cloned()
        .expect("rows")
}

fn row_at<'a>(rows: &'a [serde_json::Value], at: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["location"] == at)
        .unwrap_or_else(|| panic!("no row for location {at}: {rows:?}"))
}

/// One location cut off: per-location status, the combined view, no alert with
/// `min_failing_locations = 2`; both failing: exactly one incident and one notification,
/// however many results each location adds.
#[test]
fn one_failing_location_is_not_an_outage_and_two_are_one_incident() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let up = config(&mock.origin(), &mock, &r);
    let down = config(DEAD, &mock, &r);
    let env = Env::new(&up);

    check_from(&env, "a", &up);
    check_from(&env, "b", &down);
    check_from(&env, "b", &down);

    let rows = status_rows(&env);
    assert_eq!(rows.len(), 2, "a row per location: {rows:?}");
    assert_eq!(row_at(&rows, "a")["latest"]["status"], "operational");
    assert_eq!(row_at(&rows, "b")["latest"]["status"], "error");
    for row in &rows {
        assert_eq!(row["locations"]["total"], 2);
        assert_eq!(row["locations"]["failing"], 1);
        assert_eq!(row["locations"]["summary"], "down from 1 of 2 locations");
    }
    let table = text(&env.run(&["status", "m"]).stdout);
    assert!(table.contains("LOCATION"), "{table}");
    assert!(
        table.contains("combined m good: down from 1 of 2 locations"),
        "{table}"
    );
    let open = json(&env, &["incidents", "--format", "json"]);
    assert_eq!(open.as_array().map(Vec::len), Some(0), "{open}");
    assert!(r.received().is_empty(), "no alert from one location");

    // History filters by location; every row says where it ran and that no slot was due.
    let b = env.history(&["m", "--location", "b"]);
    assert_eq!(b.len(), 2);
    assert!(
        b.iter()
            .all(|x| x["location"] == "b" && x["due_at"].is_null())
    );
    assert_eq!(env.history(&["m", "--location", "a"]).len(), 1);
    assert_eq!(env.history(&["m", "--location", "-"]).len(), 0);

    // Location a is cut off too: the model is down from both, and that is one incident.
    check_from(&env, "a", &down);
    check_from(&env, "a", &down);
    wait_until(T, "the opened event", || !r.event_ids().is_empty());
    check_from(&env, "b", &down);
    check_from(&env, "a", &down);
    let incidents = json(&env, &["incidents", "--format", "json"]);
    let list = incidents.as_array().expect("incidents");
    assert_eq!(list.len(), 1, "one incident for the model: {incidents}");
    assert_eq!(list[0]["model"], "good");
    let ids = r.event_ids();
    assert_eq!(
        ids.len(),
        1,
        "one notification, not one per location: {ids:?}"
    );
    assert!(ids[0].ends_with(":opened"), "{ids:?}");
    let rows = status_rows(&env);
    assert_eq!(
        rows[0]["locations"]["summary"],
        "down from 2 of 2 locations"
    );

    // One location recovers: fewer than two fail, so the incident resolves, once.
    check_from(&env, "b", &up);
    wait_until(T, "the resolved event", || r.event_ids().len() == 2);
    let ids = r.event_ids();
    assert!(ids[1].ends_with(":resolved"), "{ids:?}");
    let open = json(&env, &["incidents", "--open", "--format", "json"]);
    assert_eq!(open.as_array().map(Vec::len), Some(0), "{open}");
}

/// A location name is checked on the command line and in the config.
#[test]
fn bad_location_names_are_refused_with_what_and_where() {
    let mock = MockUpstream::start();
    let mut c = preamble("location = \"EU West\"");
    c.push_str(&monitor(
        "m",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "",
    ));
    let env = Env::new(&c);
    let out = env.run(&["validate"]);
    let err = text(&out.stderr) + &text(&out.stdout);
    assert!(!out.status.success());
    assert!(err.contains("monitors.toml:6:"), "{err}");
    assert!(err.contains("not a valid location"), "{err}");

    let dup = "locations = [\"a\", \"a\"]";
    let mut c = preamble("");
    c.push_str(&monitor(
        "m",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        dup,
    ));
    env.write_config(&c);
    let out = env.run(&["validate"]);
    let err = text(&out.stderr) + &text(&out.stdout);
    assert!(!out.status.success());
    assert!(err.contains("listed twice"), "{err}");

    let mut c = preamble("");
    c.push_str(&monitor(
        "m",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "",
    ));
    env.write_config(&c);
    let out = env.run(&["check", "m", "--location", "Not/OK"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(text(&out.stderr).contains("not a valid location"));
    assert!(mock.requests().is_empty(), "nothing probed");
}

/// `chanmon run` with extra arguments, stderr to a log file.
fn spawn_run(env: &Env, args: &[&str]) -> harness::Daemon {
    let log = env.path(&format!("run-{}.log", args.join("-")));
    let file = std::fs::File::create(&log).expect("log file");
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let child = env
        .command(&all)
        .env("RUST_LOG", "chanmon=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .expect("spawn daemon");
    harness::Daemon { child, log }
}

/// A daemon at location `a`: results carry `a` and their slot — on the tick grid, one
/// interval apart, none repeated; a monitor listing only `b` is never probed. A daemon with
/// no location probes only monitors that list none.
#[test]
fn a_daemon_probes_what_its_location_asks_for_and_records_slots() {
    let mock = MockUpstream::start();
    let mut c = preamble("tick = \"1s\"");
    let timing = "interval = \"10s\"\ntimeout = \"5s\"";
    c.push_str(&monitor(
        "everywhere",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        timing,
    ));
    let only_b = format!("{timing}\nlocations = [\"b\"]");
    c.push_str(&monitor(
        "only-b",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good-b"],
        &only_b,
    ));
    let env = Env::new(&c);

    let mut d = spawn_run(&env, &["--location", "a"]);
    wait_until(Duration::from_secs(90), "three results at a", || {
        env.history_for("everywhere").len() >= 3
    });
    d.signal("TERM");
    assert!(d.wait_exit(T).success(), "{}", d.log());
    assert!(
        d.log().contains("not_scheduled=1"),
        "the skipped monitor is counted once: {}",
        d.log()
    );

    let mut rows = env.history_for("everywhere");
    rows.sort_by_key(harness::started_ms);
    let slots: Vec<i64> = rows
        .iter()
        .map(|r| r["due_at"].as_i64().expect("a slot"))
        .collect();
    assert!(rows.iter().all(|r| r["location"] == "a"), "{rows:?}");
    for pair in slots.windows(2) {
        assert_eq!(pair[1] - pair[0], 10_000, "one interval apart: {slots:?}");
    }
    for (row, slot) in rows.iter().zip(&slots) {
        assert_eq!((slot - slots[0]) % 1_000, 0, "on the tick grid: {slots:?}");
        // A check starts at (or after) its slot, within generous bounds.
        let started = harness::started_ms(row);
        assert!(started + 1_000 >= *slot && started - slot < 30_000, "{row}");
    }
    assert!(env.history_for("only-b").is_empty());
    assert!(
        mock.requests_for("good-b").is_empty(),
        "only-b lists b only"
    );

    // No location: monitors listing locations are not probed here either.
    let mut d = spawn_run(&env, &[]);
    let before = env.history_for("everywhere").len();
    wait_until(T, "a result without location", || {
        env.history_for("everywhere").len() > before
    });
    d.signal("TERM");
    assert!(d.wait_exit(T).success(), "{}", d.log());
    let newest = &env.history_for("everywhere")[0];
    assert_eq!(newest["location"], "");
    assert!(mock.requests_for("good-b").is_empty());

    // `check` at b probes it, and status shows both monitors' locations.
    let out = env.run(&["check", "only-b", "--location", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mock.requests_for("good-b").len(), 1);
    assert_eq!(env.history_for("only-b")[0]["location"], "b");
}

/// The HTTP side (`chanmon serve` on the file the checks wrote): the API's rows per location
/// with the combined view, `history?location=`, a `location` label on `/metrics`, and the
/// monitor page's per-location sections.
#[test]
fn the_http_side_shows_each_location_and_the_combined_view() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let up = config(&mock.origin(), &mock, &r);
    let down = config(DEAD, &mock, &r);
    let env = Env::new(&up);
    check_from(&env, "a", &up);
    check_from(&env, "b", &down);

    let mut serve = spawn_cmd(&env, &["serve", "--listen", "127.0.0.1:0"], "serve");
    let mut addr = None;
    wait_until(T, "the http listener", || {
        addr = serve
            .log()
            .lines()
            .find(|l| l.contains("http: listening"))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("addr=")))
            .and_then(|a| a.parse().ok());
        addr.is_some()
    });
    let addr = addr.expect("an address");

    let status = get(addr, "/api/v1/status");
    assert_eq!(status.status, 200);
    let rows = status.json().as_array().cloned().expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(row_at(&rows, "a")["latest"]["status"], "operational");
    assert_eq!(row_at(&rows, "b")["latest"]["status"], "error");
    assert!(
        rows.iter()
            .all(|x| x["locations"]["summary"] == "down from 1 of 2 locations")
    );

    let b = get(addr, "/api/v1/monitors/m/history?location=b").json();
    let b = b.as_array().expect("rows");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["location"], "b");
    assert_eq!(
        get(addr, "/api/v1/monitors/m/history?location=B%20B").status,
        400
    );

    let metrics = get(addr, "/metrics").text();
    for needle in [
        "chanmon_up{monitor=\"m\",model=\"good\",provider=\"openai\",location=\"a\"} 1",
        "chanmon_up{monitor=\"m\",model=\"good\",provider=\"openai\",location=\"b\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle} not in:\n{metrics}");
    }

    let page = get(addr, "/monitors/m").text();
    for needle in ["good from a", "good from b", "down from 1 of 2 locations"] {
        assert!(page.contains(needle), "{needle} not on the page");
    }
    serve.signal("TERM");
    assert!(serve.wait_exit(T).success(), "{}", serve.log());
}

/// A `chanmon` child with extra arguments, stderr to a log file named after `tag`.
fn spawn_cmd(env: &Env, args: &[&str], tag: &str) -> harness::Daemon {
    let log = env.path(&format!("{tag}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let child = env
        .command(args)
        .env("RUST_LOG", "chanmon=info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .expect("spawn chanmon");
    harness::Daemon { child, log }
}
