//! The foundation end to end: config → sync → check → history/prune, secrets at rest, damaged
//! databases and bad configs, all through the real binary.

mod harness;
mod support;

use std::path::Path;

use harness::{Env, contains, db_bytes, monitor, preamble, s, text};
use support::mock::MockUpstream;

fn two_monitors(mock: &MockUpstream) -> String {
    let mut c = preamble("");
    c.push_str(&monitor(
        "alpha",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "",
    ));
    c.push_str(&monitor(
        "beta",
        "anthropic",
        &mock.origin(),
        mock.key(),
        &["claude-x", "wrong"],
        "",
    ));
    c
}

#[test]
fn check_records_and_history_prune_round_trip() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    let out = env.run(&["check", "--all"]);
    // beta/wrong fails the challenge: the worst status decides the exit code.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains("alpha") && table.contains("challenge_mismatch"),
        "{table}"
    );

    let rows = env.history(&[]);
    assert_eq!(rows.len(), 3);
    assert_eq!(env.history(&["beta", "--model", "wrong"]).len(), 1);
    assert_eq!(env.history(&["--status", "operational"]).len(), 2);

    // CSV has a header and one line per row.
    let csv = text(&env.run(&["history", "--format", "csv"]).stdout);
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // A dry run deletes nothing, a real prune deletes old rows.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let dry = env.run(&["prune", "--older-than", "1s", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains('3'), "{}", text(&dry.stdout));
    assert_eq!(env.history(&[]).len(), 3);
    let real = env.run(&["prune", "--older-than", "1s", "--quiet"]);
    assert!(real.status.success());
    assert_eq!(text(&real.stdout), "");
    assert_eq!(env.history(&[]).len(), 0);
}

#[test]
fn a_monitor_removed_from_the_config_keeps_its_history() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    env.run(&["check", "--all"]);
    let mut c = preamble("");
    c.push_str(&monitor(
        "alpha",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "",
    ));
    env.write_config(&c);
    let out = env.run(&["check", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.history_for("beta").len(), 2, "beta's rows survive");
    assert_eq!(env.history_for("alpha").len(), 2);
    // `check beta` is now an unknown id.
    assert_eq!(env.run(&["check", "beta"]).status.code(), Some(3));
}

#[test]
fn the_raw_api_key_never_reaches_the_database_file() {
    let mock = MockUpstream::start_with(support::mock::MockOptions {
        key: "sk-test-Zq81rLx0VvB3nT6yKpWm".into(),
        ..Default::default()
    });
    let mut c = preamble("");
    c.push_str(&monitor(
        "alpha",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good", "leak"],
        "headers = { x-relay-token = \"relay-secret-8841\" }",
    ));
    let env = Env::new(&c);
    let out = env.run(&["check", "alpha"]);
    assert!(!contains(&out.stdout, mock.key().as_bytes()));
    assert!(!contains(&out.stderr, mock.key().as_bytes()));
    let bytes = db_bytes(&env.db());
    assert!(!bytes.is_empty());
    assert!(
        !contains(&bytes, mock.key().as_bytes()),
        "API key stored in clear"
    );
    assert!(
        !contains(&bytes, b"relay-secret-8841"),
        "header value stored in clear"
    );
    let hist = env.run(&["history", "--format", "json"]);
    assert!(!contains(&hist.stdout, mock.key().as_bytes()));
}

#[test]
fn a_wrong_master_key_marks_only_the_affected_monitors_key_unavailable() {
    let mock = MockUpstream::start();
    let mut c = preamble("");
    c.push_str(&monitor(
        "literal",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "",
    ));
    c.push_str(&format!(
        "\n[[monitor]]\nid = \"fromenv\"\nprovider = \"openai\"\nendpoint = \"{}\"\napi_key_env = \"CHANMON_TEST_KEY\"\nmodel = \"good\"\n",
        mock.origin()
    ));
    let env = Env::new(&c);
    // First run: the env key is there and gets sealed with master key 01…
    let out = env
        .command(&["check", "--all"])
        .env("CHANMON_TEST_KEY", mock.key())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Second run: no env key (the stored one is used) and a different master key.
    let other = "0202020202020202020202020202020202020202020202020202020202020202";
    let out = env
        .command(&["check", "--all", "--format", "json"])
        .env("CHANMON_MASTER_KEY", other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_id = |id: &str| rows.iter().find(|r| s(r, "monitor") == id).unwrap().clone();
    assert_eq!(s(&by_id("literal"), "status"), "operational");
    assert_eq!(s(&by_id("fromenv"), "status"), "error");
    assert_eq!(s(&by_id("fromenv"), "kind"), "key_unavailable");
    // Never called with an empty key: the mock saw exactly one request for it (the first run).
    let auth_empty = mock.requests().iter().any(|r| {
        r.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.trim() == "Bearer")
    });
    assert!(!auth_empty);
    // `status` shows it too.
    let st = env
        .command(&["status"])
        .env("CHANMON_MASTER_KEY", other)
        .output()
        .unwrap();
    assert!(
        text(&st.stdout).contains("key_unavailable"),
        "{}",
        text(&st.stdout)
    );
}

fn assert_clear_db_error(env: &Env, what: &str) {
    let before = std::fs::read(env.db()).unwrap();
    for args in [
        &["history"][..],
        &["status"][..],
        &["prune", "--dry-run"][..],
    ] {
        let out = env.run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what} {args:?}: {err}");
        assert!(
            err.contains("chanmon.db"),
            "{what}: error names the file: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    assert_eq!(
        std::fs::read(env.db()).unwrap(),
        before,
        "{what}: the file was changed"
    );
}

#[test]
fn garbage_and_truncated_databases_get_a_clear_error_and_are_left_alone() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    std::fs::write(
        env.db(),
        b"this is not a database, just some bytes".repeat(200),
    )
    .unwrap();
    assert_clear_db_error(&env, "garbage");

    let env = Env::new(&two_monitors(&mock));
    env.run(&["check", "--all"]);
    // Checkpoint the WAL into the main file, then cut the file in half.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(env.db()).unwrap();
    std::fs::write(env.db(), &bytes[..bytes.len() / 2]).unwrap();
    let _ = std::fs::remove_file(env.path("chanmon.db-wal"));
    assert_clear_db_error(&env, "truncated");
}

#[test]
fn history_on_a_missing_database_says_so() {
    let env = Env::new("");
    let out = env.run(&["history"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !env.db().exists(),
        "a read command does not create the database"
    );
}

#[test]
fn every_bad_config_is_refused_with_its_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let body = std::fs::read_to_string(&path).unwrap();
        let line: String = body
            .lines()
            .find_map(|l| l.strip_prefix("# expect-line: "))
            .unwrap_or_else(|| panic!("{} lacks `# expect-line:`", path.display()))
            .trim()
            .to_owned();
        let env = Env::new(&body);
        let out = env.run(&["validate"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(
            err.contains(&format!(":{line}:")),
            "{}: no line {line} in: {err}",
            path.display()
        );
        assert!(!err.contains("panicked"), "{}: {err}", path.display());
        assert!(!env.db().exists(), "validate never creates the database");
        n += 1;
    }
    assert!(n >= 20, "only {n} bad configs");
}

#[test]
fn validate_summarises_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitors.example.toml");
    let env = Env::new(&std::fs::read_to_string(example).unwrap());
    let out = env
        .command(&["validate"])
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    for p in ["openai", "anthropic", "gemini", "openai/responses"] {
        assert!(o.contains(p), "{p} missing from: {o}");
    }
}

#[test]
fn validate_warns_about_denied_ip_literal_endpoints() {
    let c = "[[monitor]]\nid = \"meta\"\nprovider = \"openai\"\nendpoint = \"https://169.254.169.254\"\napi_key = \"k\"\nmodel = \"m\"\n";
    let env = Env::new(c);
    let out = env.run(&["validate"]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("warning") && err.contains("allow"), "{err}");
}

#[test]
fn man_and_completions_are_available() {
    let env = Env::new("");
    let out = env.run(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("chanmon"));
    for cmd in [
        "run", "check", "history", "status", "prune", "validate", "backup", "verify", "rekey",
        "export",
    ] {
        let out = env.run(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        assert!(text(&out.stdout).len() > 100);
    }
}

#[test]
fn status_reports_windows_timelines_and_never_checked_models() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    env.run(&["check", "alpha"]);
    env.run(&["check", "alpha"]);
    let out = env.run(&["status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let alpha = rows.iter().find(|r| s(r, "monitor") == "alpha").unwrap();
    assert_eq!(alpha["windows"][0]["checks"], 2);
    assert_eq!(alpha["windows"][0]["availability"], 1.0);
    assert!(alpha["windows"][0]["p95_latency_ms"].as_f64().is_some());
    assert_eq!(alpha["latest"]["status"], "operational");
    // beta was synced but never checked.
    let beta = rows.iter().find(|r| s(r, "monitor") == "beta").unwrap();
    assert!(beta["latest"].is_null());
    let table = text(&env.run(&["status"]).stdout);
    assert!(
        table.contains("never checked") && table.contains("100.00%"),
        "{table}"
    );
    // One monitor: a timeline of its results, plain letters off a terminal.
    let one = text(&env.run(&["status", "alpha", "--window", "1h"]).stdout);
    assert!(
        one.contains("UP 1h") && one.contains("alpha good  oo"),
        "{one}"
    );
    assert_eq!(env.run(&["status", "nosuch"]).status.code(), Some(1));
}
