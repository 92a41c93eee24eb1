//! `chanmon migrate --to postgres://…` with the real binary: a SQLite database with history,
//! rollups, tracker state, an open incident and its pending outbox rows is copied into an empty
//! PostgreSQL database; `history`, `status` and `incidents` then read the same on both, a
//! later check continues the same incident, a non-empty target and a running daemon are
//! refused, and the password is never printed.

mod harness;
mod support;

use std::process::Output;
use std::time::Duration;

use harness::{Env, monitor, preamble, text, wait_until};
use support::mock::MockUpstream;
use support::pg::{PASSWORD, fresh_database};

const HOOK: &str = "\n[[alert]]\nid = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\ntimeout = \"1s\"\n[alert.network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n\n[alerts]\nsinks = [\"hook\"]\nfailure_threshold = 1\ngroup_window = \"0s\"\nretry_base = \"1h\"\nretry_cap = \"1h\"\n";

fn config(mock: &MockUpstream) -> String {
    let mut c = preamble("workers = 2");
    c.push_str(&monitor(
        "m",
        "openai",
        &mock.origin(),
        mock.key(),
        &["gpt-ok", "status-500"],
        "interval = \"1h\"",
    ));
    c.push_str(HOOK);
    c
}

/// `chanmon args…` on the SQLite file, or on PostgreSQL through CHANMON_DATABASE_URL.
fn on(env: &Env, pg: Option<&str>, args: &[&str]) -> Output {
    let mut c = env.command(args);
    if let Some(url) = pg {
        c.env("CHANMON_DATABASE_URL", url);
    }
    let out = c.output().expect("run chanmon");
    for bytes in [&out.stdout, &out.stderr] {
        assert!(
            !text(bytes).contains(PASSWORD),
            "{args:?} printed the password"
        );
    }
    out
}

/// The command's JSON, without what depends on the moment it ran (an open incident's
/// `duration_ms` grows with the clock).
fn json(env: &Env, pg: Option<&str>, args: &[&str]) -> serde_json::Value {
    let out = on(env, pg, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    let mut v = serde_json::from_slice(&out.stdout).expect("json");
    strip_clock(&mut v);
    v
}

fn strip_clock(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("duration_ms");
            m.values_mut().for_each(strip_clock);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_clock),
        _ => {}
    }
}

#[test]
fn a_sqlite_database_moves_into_postgres_whole() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock));
    for _ in 0..3 {
        on(&env, None, &["check", "m"]);
    }
    let reads: [&[&str]; 3] = [
        &["history", "--format", "json", "--limit", "1000"],
        &["incidents", "--format", "json"],
        &["status", "--format", "json"],
    ];
    let before: Vec<serde_json::Value> = reads.iter().map(|a| json(&env, None, a)).collect();
    assert_eq!(before[0].as_array().unwrap().len(), 6);
    assert_eq!(before[1].as_array().unwrap().len(), 1, "{}", before[1]);

    let out = on(&env, None, &["migrate", "--to", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("history") && report.contains("postgres://postgres@127.0.0.1"),
        "{report}"
    );
    let history_line = report
        .lines()
        .find(|l| l.trim_start().starts_with("history"))
        .unwrap();
    assert!(history_line.trim_end().ends_with(" 6"), "{report}");

    for (args, want) in reads.iter().zip(&before) {
        assert_eq!(
            &json(&env, Some(&url), args),
            want,
            "{args:?} reads the same on PostgreSQL"
        );
    }
    // The copy carries on where the file stopped: the same incident stays open, the key opens.
    on(&env, Some(&url), &["check", "m"]);
    let inc = json(&env, Some(&url), &["incidents", "--format", "json"]);
    assert_eq!(inc.as_array().unwrap().len(), 1, "{inc}");
    let hist = json(
        &env,
        Some(&url),
        &["history", "--format", "json", "--limit", "1000"],
    );
    assert_eq!(hist.as_array().unwrap().len(), 8);
    assert!(
        hist.as_array()
            .unwrap()
            .iter()
            .any(|r| r["model"] == "gpt-ok" && r["status"] == "operational"),
        "the sealed key opened with the same master key"
    );

    // A second copy into the same (no longer empty) database is refused, nothing changed.
    let again = on(&env, None, &["migrate", "--to", &url]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    // Bad targets.
    let bad = on(&env, None, &["migrate", "--to", "mysql://x@y/z"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn migrate_is_refused_while_a_daemon_runs_on_the_file() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let env = Env::new(&config(&mock));
    let daemon = env.spawn_daemon(&[]);
    wait_until(
        Duration::from_secs(60),
        "the daemon's first results",
        || {
            env.db().exists()
                && on(&env, None, &["history", "--format", "json"])
                    .status
                    .success()
        },
    );
    let out = env
        .command(&["migrate"])
        .env("CHANMON_MIGRATE_TO", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("another chanmon daemon"),
        "{}",
        text(&out.stderr)
    );
    drop(daemon);
    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'monitors'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "the target was not touched");
}
