//! Alerts end to end: the real binary, a real SQLite file, loopback receivers standing in for
//! each sink. Incidents are driven with `chanmon check` against a closed port (failing) and
//! the mock upstream (passing), so every result is deterministic; the daemon is used where
//! its drainer is the point (crashes mid-delivery).

mod harness;
mod support;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use harness::{Env, contains, db_bytes, monitor, preamble, wait_until};
use support::mock::MockUpstream;
use support::receiver::{Answer, Receiver};
use support::smtp::{SmtpServer, SmtpTlsMode};
use support::{Flaw, TestCa};

const T: Duration = Duration::from_secs(60);
const SECRET: &str = "whsec-test-0123456789abcdef";
/// Nothing listens here: probes get "connection refused" (`error`/`connect`).
const DEAD: &str = "http://127.0.0.1:9";

/// A config with one monitor `m` at `origin` and the given sinks and `[alerts]` body.
fn config(origin: &str, mock: &MockUpstream, models: &[&str], sinks: &str, alerts: &str) -> String {
    let mut c = preamble("");
    let timing = "interval = \"10s\"\ntimeout = \"5s\"";
    c.push_str(&monitor("m", "openai", origin, mock.key(), models, timing));
    c.push_str(sinks);
    c.push_str("\n[alerts]\n");
    c.push_str(alerts);
    c
}

fn webhook(r: &Receiver) -> String {
    format!(
        "\n[[alert]]\nid = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"${{HOOK_SECRET}}\"\ntimeout = \"2s\"\n[alert.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        r.url("/hook")
    )
}

const FAST: &str = "sinks = [\"hook\"]\nfailure_threshold = 2\nsuccess_threshold = 2\ngroup_window = \"0s\"\nretry_base = \"100ms\"\nretry_cap = \"200ms\"\nmax_attempts = 3\n";

fn check(env: &Env) -> std::process::Output {
    let out = env
        .command(&["check", "m"])
        .env("HOOK_SECRET", SECRET)
        .env("RUST_LOG", "chanmon=warn")
        .output()
        .expect("run check");
    assert!(
        !harness::text(&out.stderr).contains("panicked"),
        "{}",
        harness::text(&out.stderr)
    );
    out
}

fn incidents(env: &Env) -> Vec<serde_json::Value> {
    let out = env
        .command(&["incidents", "--format", "json"])
        .env("HOOK_SECRET", SECRET)
        .env("SMTP_PASSWORD", SMTP_PASSWORD)
        .output()
        .expect("run incidents");
    assert!(out.status.success(), "{}", harness::text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("incidents json")
}

/// Verifies `t=<secs>,v1=<hex>` as docs/alerts.md tells receivers to.
fn signature_ok(header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == v1
}

#[test]
fn one_signed_alert_per_incident_and_one_resolve() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), FAST));
    check(&env);
    assert!(
        r.received().is_empty(),
        "one failure is below the threshold"
    );
    let out = check(&env);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        r.received().len(),
        1,
        "the second failure opens the incident"
    );
    check(&env);
    assert_eq!(
        r.received().len(),
        1,
        "an open incident is not announced again"
    );

    env.write_config(&config(
        &mock.origin(),
        &mock,
        &["good"],
        &webhook(&r),
        FAST,
    ));
    check(&env);
    assert_eq!(r.received().len(), 1, "one success does not resolve");
    check(&env);
    check(&env);
    let got = r.received();
    assert_eq!(got.len(), 2, "exactly one resolve");
    let (open, resolve) = (got[0].json(), got[1].json());
    assert_eq!(open["events"][0]["event"], "opened");
    assert_eq!(open["events"][0]["status"], "error");
    assert_eq!(resolve["events"][0]["event"], "resolved");
    assert_eq!(
        open["events"][0]["incident"],
        resolve["events"][0]["incident"]
    );
    let ids = r.event_ids();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[0], open["event_id"].as_str().unwrap());
    for g in &got {
        let sig = g.header("x-chanmon-signature").expect("signed");
        assert!(
            signature_ok(sig, &g.body),
            "signature {sig} does not verify"
        );
        assert!(!signature_ok(sig, b"{\"tampered\":true}"));
    }

    let inc = incidents(&env);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["open"], false);
    let states: Vec<&str> = inc[0]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["delivered", "delivered"]);
    assert!(
        !contains(&db_bytes(&env.db()), SECRET.as_bytes()),
        "the signing secret is never stored"
    );
}

#[test]
fn a_receiver_that_was_down_gets_the_alert_later_with_the_same_event_id() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    r.answer(Answer::Status(503));
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), FAST));
    check(&env);
    check(&env);
    assert_eq!(r.received().len(), 1, "tried once");
    let inc = incidents(&env);
    assert_eq!(inc[0]["deliveries"][0]["state"], "pending");
    assert!(
        inc[0]["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    r.answer(Answer::Status(200));
    std::thread::sleep(Duration::from_millis(300)); // past the 200 ms backoff cap
    check(&env);
    let ids = r.event_ids();
    assert_eq!(ids.len(), 2, "retried once");
    assert_eq!(ids[0], ids[1], "a retry carries the same event id");
    assert_eq!(incidents(&env)[0]["deliveries"][0]["state"], "delivered");
}

#[test]
fn retries_end_in_a_dead_letter_after_the_cap() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    r.answer(Answer::Status(500));
    let alerts = FAST.replace("max_attempts = 3", "max_attempts = 2");
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), &alerts));
    check(&env);
    let out = check(&env);
    assert!(harness::text(&out.stderr).contains("some alerts were not delivered"));
    std::thread::sleep(Duration::from_millis(300));
    let out = check(&env);
    assert!(
        harness::text(&out.stderr).contains("dead letter"),
        "{}",
        harness::text(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    check(&env);
    assert_eq!(r.received().len(), 2, "no attempt after the dead letter");
    let d = &incidents(&env)[0]["deliveries"][0];
    assert_eq!(
        (d["state"].as_str(), d["attempts"].as_u64()),
        (Some("dead"), Some(2))
    );
}

#[test]
fn several_failing_models_go_out_in_one_message() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let alerts = FAST
        .replace("failure_threshold = 2", "failure_threshold = 1")
        .replace("group_window = \"0s\"", "group_window = \"1s\"");
    let env = Env::new(&config(
        DEAD,
        &mock,
        &["a", "b", "c"],
        &webhook(&r),
        &alerts,
    ));
    check(&env);
    let got = r.received();
    assert_eq!(got.len(), 1, "one notification for three incidents");
    let events = got[0].json()["events"].as_array().unwrap().clone();
    let mut models: Vec<&str> = events
        .iter()
        .map(|e| e["model"].as_str().unwrap())
        .collect();
    models.sort();
    assert_eq!(models, ["a", "b", "c"]);
    assert_eq!(incidents(&env).len(), 3, "still one incident per model");
}

#[test]
fn reminders_come_while_an_incident_stays_open() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let alerts =
        FAST.replace("failure_threshold = 2", "failure_threshold = 1") + "remind_every = \"3s\"\n";
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), &alerts));
    check(&env);
    check(&env); // well within 3 s of the first: no reminder yet
    std::thread::sleep(Duration::from_millis(3500));
    check(&env);
    let kinds: Vec<String> = r
        .received()
        .iter()
        .map(|g| g.json()["events"][0]["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["opened", "reminder"]);
}

/// Every chat and paging sink, each against a receiver checking the service's request shape.
#[test]
fn each_sink_type_sends_its_services_request_shape() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let net = "[alert.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n";
    let sinks = format!(
        "
[[alert]]
id = \"slack\"
type = \"slack\"
url = \"{slack}\"
{net}
[[alert]]
id = \"discord\"
type = \"discord\"
url = \"{discord}\"
{net}
[[alert]]
id = \"tg\"
type = \"telegram\"
url = \"{base}\"
token = \"123456:ABC-secret-token\"
chat_id = -1001234
{net}
[[alert]]
id = \"ntfy\"
type = \"ntfy\"
url = \"{ntfy}\"
{net}
[[alert]]
id = \"pd\"
type = \"pagerduty\"
url = \"{pd}\"
routing_key = \"R0UTINGKEY0123456789abcdef012345\"
{net}",
        slack = r.url("/services/T000/B000/XXXX"),
        discord = r.url("/api/webhooks/1/tok"),
        base = r.url("/"),
        ntfy = r.url("/chanmon-alerts"),
        pd = r.url("/v2/enqueue"),
    );
    let alerts = "sinks = [\"slack\", \"discord\", \"tg\", \"ntfy\", \"pd\"]\nfailure_threshold = 1\nsuccess_threshold = 1\ngroup_window = \"0s\"\n";
    let env = Env::new(&config(DEAD, &mock, &["good"], &sinks, alerts));
    check(&env);
    env.write_config(&config(&mock.origin(), &mock, &["good"], &sinks, alerts));
    check(&env);
    let got = r.received();
    assert_eq!(got.len(), 10, "five sinks, an open and a resolve each");
    let by = |path: &str| -> Vec<support::receiver::Received> {
        got.iter().filter(|g| g.path == path).cloned().collect()
    };
    let slack = by("/services/T000/B000/XXXX");
    assert!(
        slack[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("DOWN: m — good")
    );
    assert!(
        slack[1].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("RESOLVED: m")
    );
    let discord = by("/api/webhooks/1/tok");
    assert!(
        discord[0].json()["content"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 2000
    );
    let tg = by("/bot123456:ABC-secret-token/sendMessage");
    assert_eq!(
        tg.len(),
        2,
        "{:?}",
        got.iter().map(|g| &g.path).collect::<Vec<_>>()
    );
    assert_eq!(tg[0].json()["chat_id"], "-1001234");
    assert!(
        tg[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("error (connect)")
    );
    let ntfy = by("/chanmon-alerts");
    assert_eq!(ntfy[0].header("priority"), Some("high"));
    assert!(ntfy[0].header("title").unwrap().starts_with("DOWN: m"));
    assert!(String::from_utf8_lossy(&ntfy[0].body).contains("good"));
    let pd = by("/v2/enqueue");
    let (trigger, resolve) = (pd[0].json(), pd[1].json());
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UTINGKEY0123456789abcdef012345");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert!(trigger["payload"]["summary"].as_str().unwrap().len() <= 1024);
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(
        trigger["dedup_key"], resolve["dedup_key"],
        "one dedup_key per incident"
    );
    for g in &got {
        assert!(g.method == "POST");
    }
}

#[test]
fn alert_test_prints_the_receivers_answer() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), FAST));
    let out = env
        .command(&["alert", "test", "hook"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", harness::text(&out.stderr));
    assert!(harness::text(&out.stdout).contains("HTTP 200 ok"));
    let got = r.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["events"][0]["event"], "test");
    assert!(signature_ok(
        got[0].header("x-chanmon-signature").unwrap(),
        &got[0].body
    ));
    r.answer(Answer::Status(500));
    let out = env
        .command(&["alert", "test", "hook"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(harness::text(&out.stderr).contains("HTTP 500"));
    let out = env
        .command(&["alert", "test", "nope"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(harness::text(&out.stderr).contains("sinks: hook"));
}

#[test]
fn status_marks_open_incidents() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), FAST));
    check(&env);
    check(&env);
    let out = env
        .command(&["status"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    let text = harness::text(&out.stdout);
    assert!(
        text.contains("INCIDENT m/good: error (connect) since"),
        "{text}"
    );
    let out = env
        .command(&["incidents", "--open"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(harness::text(&out.stdout).contains("OPEN"));
}

/// A sink secret never reaches `validate`'s output, the logs or the database.
#[test]
fn sink_secrets_are_never_printed_or_stored() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    r.answer(Answer::Status(500));
    let token = "tok-SUPERSECRET-987654321";
    let sinks = format!(
        "\n[[alert]]\nid = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"${{HOOK_SECRET}}\"\n[alert.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        r.url(&format!("/hook/{token}"))
    );
    let env = Env::new(&config(DEAD, &mock, &["good"], &sinks, FAST));
    let v = env
        .command(&["validate"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", harness::text(&v.stderr));
    check(&env);
    let out = check(&env);
    let all = format!(
        "{}{}{}",
        harness::text(&v.stdout),
        harness::text(&v.stderr),
        harness::text(&out.stderr)
    );
    assert!(!all.contains(token) && !all.contains(SECRET), "{all}");
    let db = db_bytes(&env.db());
    assert!(!contains(&db, token.as_bytes()) && !contains(&db, SECRET.as_bytes()));
    assert_eq!(r.received().len(), 1, "the delivery was tried");
}

/// `kill -9` while the daemon is inside a delivery (the receiver has the request and has not
/// answered): after a restart the alert is sent once more with the same event id, and a
/// delivery whose 2xx was committed is never sent again.
#[test]
fn kill_9_mid_delivery_repeats_at_most_once_with_the_same_event_id() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    r.answer(Answer::Status(503));
    let slow = FAST
        .replace("timeout = \"2s\"", "timeout = \"60s\"")
        .replace("max_attempts = 3", "max_attempts = 50");
    let mut hook = webhook(&r).replace("timeout = \"2s\"", "timeout = \"60s\"");
    hook.push('\n');
    let env = Env::new(&config(DEAD, &mock, &["good"], &hook, &slow));
    // The incident is opened by `check`; its first try meets a 503.
    check(&env);
    check(&env);
    assert_eq!(r.received().len(), 1);
    r.answer(Answer::Hang);
    let daemon = |env: &Env| env.spawn_daemon(&[("HOOK_SECRET", SECRET)]);
    let mut d = daemon(&env);
    wait_until(T, "the daemon's delivery reached the receiver", || {
        r.received().len() >= 2
    });
    d.child.kill().unwrap(); // SIGKILL: no clean-up at all
    d.child.wait().unwrap();
    r.answer(Answer::Status(200));
    let mut d = daemon(&env);
    wait_until(T, "the alert delivered after the restart", || {
        incidents(&env)[0]["deliveries"][0]["state"] == "delivered"
    });
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let ids = r.event_ids();
    assert_eq!(ids.len(), 3, "the 503, the cut-off send, one resend");
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    // Committed: another restart sends nothing more.
    let mut d = daemon(&env);
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.is_running(), "{}", d.log());
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    assert_eq!(
        r.event_ids().len(),
        3,
        "a committed delivery is never sent again"
    );
}

/// `kill -9` right after the daemon recorded the result that opened an incident, before any
/// delivery (the group window holds it back): after the restart the alert goes out, once.
#[test]
fn kill_9_mid_incident_loses_no_alert() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let alerts = FAST
        .replace("failure_threshold = 2", "failure_threshold = 1")
        .replace("group_window = \"0s\"", "group_window = \"5s\"");
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), &alerts));
    let mut d = env.spawn_daemon(&[("HOOK_SECRET", SECRET)]);
    wait_until(T, "the incident", || {
        env.db().exists() && !incidents(&env).is_empty()
    });
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let before = r.received().len();
    let mut d = env.spawn_daemon(&[("HOOK_SECRET", SECRET)]);
    wait_until(T, "delivered after the restart", || {
        incidents(&env)
            .first()
            .is_some_and(|i| i["deliveries"][0]["state"] == "delivered")
    });
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    assert!(before <= 1, "killed inside the group window: {before}");
    let ids = r.event_ids();
    assert_eq!(ids.len(), 1, "exactly one alert: {ids:?}");
    assert_eq!(
        incidents(&env).len(),
        1,
        "one incident, not one per process"
    );
}

/// Nothing is announced during maintenance; results are still recorded and `status` says so.
#[test]
fn nothing_is_sent_during_maintenance() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let window = "\n[[maintenance]]\nmonitors = [\"m\"]\nstart = \"2020-01-01 00:00\"\nend = \"2099-01-01T00:00:00+01:00\"\ntime_zone = \"Europe/Berlin\"\n";
    let muted = config(DEAD, &mock, &["good"], &webhook(&r), FAST) + window;
    let env = Env::new(&muted);
    check(&env);
    check(&env);
    check(&env);
    assert!(r.received().is_empty(), "muted");
    let inc = incidents(&env);
    assert_eq!((inc.len(), &inc[0]["muted"]), (1, &serde_json::json!(true)));
    assert_eq!(env.history_for("m").len(), 3, "results are still recorded");
    let out = env
        .command(&["status"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    let text = harness::text(&out.stdout);
    assert!(
        text.contains("MAINTENANCE m") && text.contains("(muted: maintenance)"),
        "{text}"
    );
    // The window is gone: the muted incident resolves quietly; the next one is announced.
    env.write_config(&config(
        &mock.origin(),
        &mock,
        &["good"],
        &webhook(&r),
        FAST,
    ));
    check(&env);
    check(&env);
    assert!(
        r.received().is_empty(),
        "a muted incident's resolve is muted too"
    );
    env.write_config(&config(DEAD, &mock, &["good"], &webhook(&r), FAST));
    check(&env);
    check(&env);
    assert_eq!(r.received().len(), 1);
    assert_eq!(r.received()[0].json()["events"][0]["event"], "opened");
}

/// The daemon's own trouble reaches the sinks: a dead letter raises an `internal` alert.
#[test]
fn a_dead_letter_raises_a_self_alert() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    r.answer(Answer::Status(500));
    let alerts = FAST
        .replace("failure_threshold = 2", "failure_threshold = 1")
        .replace("max_attempts = 3", "max_attempts = 1")
        + "watch_every = \"1s\"\n";
    let env = Env::new(&config(DEAD, &mock, &["good"], &webhook(&r), &alerts));
    let mut d = env.spawn_daemon(&[("HOOK_SECRET", SECRET)]);
    wait_until(T, "a self-alert about the dead letter", || {
        r.received().iter().any(|g| {
            let e = &g.json()["events"][0];
            e["event"] == "internal" && e["model"] == "dead_letters"
        })
    });
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    assert!(d.log().contains("dead letter"), "{}", d.log());
}

/// `[heartbeat]` pings while the daemon runs; systemd hears READY, WATCHDOG and STOPPING.
#[test]
fn heartbeat_and_sd_notify() {
    use std::os::unix::net::UnixDatagram;
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let hb = format!(
        "\n[heartbeat]\nurl = \"{}\"\nevery = \"1s\"\n[heartbeat.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        r.url("/ping/abc")
    );
    let env = Env::new(&(config(&mock.origin(), &mock, &["good"], &webhook(&r), FAST) + &hb));
    let sock_path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let sock_str = sock_path.to_string_lossy().into_owned();
    let mut d = env.spawn_daemon(&[
        ("HOOK_SECRET", SECRET),
        ("NOTIFY_SOCKET", &sock_str),
        ("WATCHDOG_USEC", "1000000"),
    ]);
    let mut seen: Vec<String> = Vec::new();
    let mut buf = [0u8; 256];
    while !(seen.iter().any(|m| m == "READY=1") && seen.iter().any(|m| m == "WATCHDOG=1")) {
        let n = sock
            .recv(&mut buf)
            .expect("a notification within the timeout");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    wait_until(T, "two heartbeats", || {
        r.received()
            .iter()
            .filter(|g| g.path == "/ping/abc")
            .count()
            >= 2
    });
    assert!(
        r.received()
            .iter()
            .all(|g| g.path != "/ping/abc" || g.method == "GET")
    );
    d.signal("TERM");
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING=1 before exit");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert!(d.wait_exit(T).success());
}

/// A `command` sink gets the notification as JSON on stdin and as CHANMON_* variables.
#[test]
fn a_command_sink_runs_the_program_with_the_event() {
    let mock = MockUpstream::start();
    let env = Env::new("");
    let out = env.path("got.txt");
    let sinks = format!(
        "\n[[alert]]\nid = \"cmd\"\ntype = \"command\"\ncommand = [\"/bin/sh\", \"-c\", \"cat > '{}'; printf '%s %s' \\\"$CHANMON_EVENT\\\" \\\"$CHANMON_MODELS\\\" >> '{}'\"]\ntimeout = \"10s\"\n",
        out.display(),
        out.display()
    );
    let alerts = "sinks = [\"cmd\"]\nfailure_threshold = 1\ngroup_window = \"0s\"\n";
    env.write_config(&config(DEAD, &mock, &["good"], &sinks, alerts));
    check(&env);
    let got = std::fs::read_to_string(&out).expect("the command ran");
    let (json, tail) = got.rsplit_once('}').expect("JSON then the variables");
    let v: serde_json::Value = serde_json::from_str(&format!("{json}}}")).unwrap();
    assert_eq!(v["events"][0]["event"], "opened");
    assert_eq!(tail, "opened good");
    let out = env.command(&["alert", "test", "cmd"]).output().unwrap();
    assert!(
        harness::text(&out.stdout).contains("exit 0"),
        "{}",
        harness::text(&out.stderr)
    );
}

/// A sink's `template` writes its own words.
#[test]
fn a_template_sets_the_message_text() {
    let mock = MockUpstream::start();
    let r = Receiver::start();
    let sinks = format!(
        "\n[[alert]]\nid = \"chat\"\ntype = \"slack\"\nurl = \"{}\"\ntemplate = \"{{{{ event }}}} {{{{ monitor_name }}}}:{{% for e in events %}} {{{{ e.model }}}}/{{{{ e.kind }}}}{{% endfor %}}\"\n[alert.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        r.url("/slack")
    );
    let alerts = "sinks = [\"chat\"]\nfailure_threshold = 1\ngroup_window = \"0s\"\n";
    let env = Env::new(&config(DEAD, &mock, &["good"], &sinks, alerts));
    check(&env);
    let got = r.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["text"], "opened m: good/connect");
}

const SMTP_PASSWORD: &str = "smtp-pw-SUPERSECRET-4242";

/// An email sink to `server` (plain SMTP on loopback, so `tls = "none"` with the explicit
/// allow), authenticating as `ops` with the password from `${SMTP_PASSWORD}`.
fn email_sink(server: &SmtpServer) -> String {
    format!(
        "\n[[alert]]\nid = \"mail\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = \"none\"\nusername = \"ops\"\npassword = \"${{SMTP_PASSWORD}}\"\nfrom = \"chanmon <alerts@example.com>\"\nto = [\"oncall@example.com\", \"Second <second@example.org>\"]\ntimeout = \"5s\"\n[alert.network]\nallow_cidrs = [\"127.0.0.0/8\"]\n",
        server.port()
    )
}

fn check_mail(env: &Env) -> std::process::Output {
    let out = env
        .command(&["check", "m"])
        .env("SMTP_PASSWORD", SMTP_PASSWORD)
        .env("RUST_LOG", "chanmon=warn")
        .output()
        .expect("run check");
    let err = harness::text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !err.contains(SMTP_PASSWORD),
        "the password is never printed: {err}"
    );
    out
}

#[test]
fn email_one_alert_per_incident_and_one_resolve_with_auth() {
    let mock = MockUpstream::start();
    let smtp = SmtpServer::start(Some(("ops", SMTP_PASSWORD)));
    let alerts = FAST.replace("[\"hook\"]", "[\"mail\"]");
    let env = Env::new(&config(DEAD, &mock, &["good"], &email_sink(&smtp), &alerts));
    check_mail(&env);
    assert!(
        smtp.mails().is_empty(),
        "one failure is below the threshold"
    );
    check_mail(&env);
    check_mail(&env);
    assert_eq!(smtp.mails().len(), 1, "one email per incident");
    env.write_config(&config(
        &mock.origin(),
        &mock,
        &["good"],
        &email_sink(&smtp),
        &alerts,
    ));
    for _ in 0..3 {
        check_mail(&env);
    }
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "exactly one resolve email");
    assert_eq!(smtp.bad_auth(), 0);
    let (open, resolve) = (&mails[0], &mails[1]);
    for m in &mails {
        assert_eq!(m.auth_user.as_deref(), Some("ops"), "authenticated");
        assert_eq!(m.mail_from, "alerts@example.com");
        assert_eq!(m.rcpt_to, ["oncall@example.com", "second@example.org"]);
        let id = m.header("X-Chanmon-Event-Id").expect("event id header");
        assert_eq!(
            m.header("Message-ID").unwrap(),
            format!("<chanmon.{}@example.com>", id.replace(':', "-")),
            "derived from the event id"
        );
        assert!(m.header("Content-Type").unwrap().starts_with("text/plain"));
    }
    assert_eq!(
        open.header("Subject").unwrap(),
        "[chanmon] DOWN m/good (connect)"
    );
    assert_eq!(
        resolve.header("Subject").unwrap(),
        "[chanmon] RESOLVED m/good"
    );
    let body = open.body();
    assert!(body.starts_with("DOWN: "), "{body}");
    assert!(body.contains("good — error (connect) since"), "{body}");
    assert!(
        resolve.body().starts_with("RESOLVED: "),
        "{}",
        resolve.body()
    );
    assert_ne!(
        open.header("X-Chanmon-Event-Id"),
        resolve.header("X-Chanmon-Event-Id")
    );
    let inc = incidents(&env);
    let states: Vec<&str> = inc[0]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["delivered", "delivered"]);
    assert!(
        !contains(&db_bytes(&env.db()), SMTP_PASSWORD.as_bytes()),
        "the SMTP password is never stored"
    );
}

#[test]
fn email_a_451_is_retried_with_the_same_message_id() {
    let mock = MockUpstream::start();
    let smtp = SmtpServer::start(Some(("ops", SMTP_PASSWORD)));
    smtp.reply_next(451, "4.3.0 try again later");
    let alerts = FAST.replace("[\"hook\"]", "[\"mail\"]");
    let env = Env::new(&config(DEAD, &mock, &["good"], &email_sink(&smtp), &alerts));
    check_mail(&env);
    let out = check_mail(&env);
    assert!(
        harness::text(&out.stderr).contains("451"),
        "the server's reply is in the log: {}",
        harness::text(&out.stderr)
    );
    assert_eq!(smtp.mails().len(), 1, "tried once");
    assert!(smtp.accepted().is_empty());
    let d = &incidents(&env)[0]["deliveries"][0];
    assert_eq!(d["state"], "pending");
    assert!(d["last_error"].as_str().unwrap().contains("451"), "{d}");
    std::thread::sleep(Duration::from_millis(300)); // past the 200 ms backoff cap
    check_mail(&env);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "retried once");
    assert_eq!(smtp.accepted().len(), 1);
    assert_eq!(mails[0].header("Message-ID"), mails[1].header("Message-ID"));
    assert_eq!(
        mails[0].header("X-Chanmon-Event-Id"),
        mails[1].header("X-Chanmon-Event-Id")
    );
    assert_eq!(incidents(&env)[0]["deliveries"][0]["state"], "delivered");
}

#[test]
fn email_alert_test_prints_the_servers_reply() {
    let mock = MockUpstream::start();
    let smtp = SmtpServer::start(Some(("ops", SMTP_PASSWORD)));
    let alerts = FAST.replace("[\"hook\"]", "[\"mail\"]");
    let env = Env::new(&config(DEAD, &mock, &["good"], &email_sink(&smtp), &alerts));
    let test = |env: &Env, password: &str| {
        env.command(&["alert", "test", "mail"])
            .env("SMTP_PASSWORD", password)
            .output()
            .unwrap()
    };
    let out = test(&env, SMTP_PASSWORD);
    assert!(out.status.success(), "{}", harness::text(&out.stderr));
    let stdout = harness::text(&out.stdout);
    assert!(stdout.contains("SMTP 250 2.0.0 Ok: queued"), "{stdout}");
    let mails = smtp.accepted();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .header("Subject")
            .unwrap()
            .starts_with("[chanmon] TEST")
    );

    smtp.reply_next(554, "5.7.1 rejected by policy");
    let out = test(&env, SMTP_PASSWORD);
    assert_eq!(out.status.code(), Some(1));
    let err = harness::text(&out.stderr);
    assert!(err.contains("554") && err.contains("permanent"), "{err}");

    let wrong = "wrong-password-0123456789";
    let out = test(&env, wrong);
    assert_eq!(out.status.code(), Some(1));
    let err = harness::text(&out.stderr);
    assert!(err.contains("535"), "{err}");
    assert!(!err.contains(wrong), "{err}");
    assert_eq!(smtp.bad_auth(), 1);
}

/// STARTTLS and implicit TLS against a server whose certificate comes from a private CA: refused
/// without `ca_file` (the certificate is checked), delivered with it, encrypted before AUTH.
#[test]
fn email_over_starttls_and_tls_checks_the_certificate() {
    let ca = TestCa::new("chanmon SMTP test CA");
    let config = SmtpTlsMode::config(&ca.server(Flaw::None));
    let mock = MockUpstream::start();
    for (mode, server) in [
        ("starttls", SmtpTlsMode::StartTls(config.clone())),
        ("tls", SmtpTlsMode::Implicit(config.clone())),
    ] {
        let smtp = SmtpServer::start_with(Some(("ops", SMTP_PASSWORD)), server);
        let alerts = FAST.replace("[\"hook\"]", "[\"mail\"]");
        let sink = |extra: &str| {
            email_sink(&smtp).replace("tls = \"none\"", &format!("tls = \"{mode}\"")) + extra
        };
        let env = Env::new(&config_of(&mock, &sink(""), &alerts));
        let test = |env: &Env| {
            env.command(&["alert", "test", "mail"])
                .env("SMTP_PASSWORD", SMTP_PASSWORD)
                .output()
                .unwrap()
        };
        let out = test(&env);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{mode}: an unknown CA is refused"
        );
        let err = harness::text(&out.stderr);
        assert!(err.contains("invalid peer certificate"), "{mode}: {err}");
        assert!(smtp.mails().is_empty(), "{mode}: nothing sent");
        let ca_file = env.path("ca.pem");
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        env.write_config(&config_of(
            &mock,
            &sink(&format!("ca_file = \"{}\"\n", ca_file.display())),
            &alerts,
        ));
        let out = test(&env);
        assert!(
            out.status.success(),
            "{mode}: {}",
            harness::text(&out.stderr)
        );
        let mails = smtp.accepted();
        assert_eq!(mails.len(), 1, "{mode}");
        assert!(mails[0].tls, "{mode}: the message went over TLS");
        assert_eq!(mails[0].auth_user.as_deref(), Some("ops"), "{mode}");
    }
}

fn config_of(mock: &MockUpstream, sinks: &str, alerts: &str) -> String {
    config(DEAD, mock, &["good"], sinks, alerts)
}
