//! `chanmon run` end to end: the real binary, a real SQLite file, real signals and the mock
//! upstream over loopback.

mod harness;
mod support;

use std::time::Duration;

use harness::{Env, monitor, preamble, s, started_ms, wait_until};
use support::mock::MockUpstream;

const T: Duration = Duration::from_secs(60);

fn config(mock: &MockUpstream, runner: &str, monitors: &[(&str, &[&str], &str)]) -> String {
    let mut c = preamble(runner);
    for (id, models, extra) in monitors {
        c.push_str(&monitor(
            id,
            "openai",
            &mock.origin(),
            mock.key(),
            models,
            extra,
        ));
    }
    c
}

/// Model requests the mock has received (pings are HEADs).
fn posts(mock: &MockUpstream) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

#[test]
fn checks_keep_their_interval_within_a_tick() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(
        &mock,
        "tick = \"200ms\"",
        &[("steady", &["good"], "interval = \"10s\"\ntimeout = \"5s\"")],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "three checks", || env.history_for("steady").len() >= 3);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    let mut times: Vec<i64> = env.history_for("steady").iter().map(started_ms).collect();
    times.sort();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        // Schedule is previous scheduled time + interval: the gap is the interval, give or
        // take the start-up lag of each run (well under one default tick of 1 s).
        assert!((9_000..=11_000).contains(&gap), "gap {gap} ms in {times:?}");
    }
    assert!(
        env.history_for("steady")
            .iter()
            .all(|r| s(r, "status") == "operational")
    );
}

#[test]
fn a_monitor_slower_than_its_interval_is_never_probed_twice_at_once() {
    let mock = MockUpstream::start();
    // Three 4.5 s models checked one at a time: one run takes ~13.5 s, the interval is 10 s.
    let env = Env::new(&config(
        &mock,
        "tick = \"200ms\"\nmodel_concurrency = 1",
        &[(
            "slow",
            &["delay-4500-4500", "delay-4400-4500", "delay-4300-4500"],
            "interval = \"10s\"\ntimeout = \"9s\"\ndegraded_after = \"8s\"",
        )],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "two full runs", || env.history_for("slow").len() >= 6);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    // Never two requests of this monitor at once, and runs never overlap.
    let reqs = mock.requests();
    assert!(reqs.len() >= 6);
    for m in ["delay-4500-4500", "delay-4400-4500", "delay-4300-4500"] {
        assert_eq!(mock.max_in_flight(m), 1, "{m}");
    }
    let mut starts: Vec<_> = reqs
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.at)
        .collect();
    starts.sort();
    for w in starts.windows(2) {
        assert!(
            w[1].duration_since(w[0]) >= Duration::from_millis(4_000),
            "overlapping probes"
        );
    }
}

#[test]
fn a_full_queue_drops_work_and_the_daemon_stays_responsive() {
    let mock = MockUpstream::start();
    let monitors: Vec<(String, &[&str], &str)> = (0..12)
        .map(|i| {
            (
                format!("m{i:02}"),
                &["delay-2000-2000"][..],
                "interval = \"10s\"\ntimeout = \"5s\"",
            )
        })
        .collect();
    let refs: Vec<(&str, &[&str], &str)> = monitors
        .iter()
        .map(|(a, b, c)| (a.as_str(), *b, *c))
        .collect();
    let env = Env::new(&config(
        &mock,
        "tick = \"100ms\"\nworkers = 1\nqueue = 1\nshutdown_grace = \"5s\"",
        &refs,
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "a dropped job", || d.log().contains("queue full"));
    // Responsive: a reload and a stop are still handled promptly.
    d.signal("HUP");
    wait_until(T, "the reload", || d.log().contains("config reloaded"));
    // A second probe, so that "one at a time" below is put to the test.
    wait_until(T, "a second probe", || posts(&mock) >= 2);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    let log = d.log();
    assert!(
        log.contains("monitor=m"),
        "drop warnings name the monitor:\n{log}"
    );
    let dropped = d
        .final_counter("dropped")
        .expect("dropped counter in the summary");
    assert!(dropped > 0, "{log}");
    // With one worker, never more than one request at a time in total. (Model requests: each
    // run also pings the origin with a HEAD, concurrently with its own probe.)
    assert!(posts(&mock) >= 2);
    assert_eq!(mock.max_posts_in_flight(), 1);
}

#[test]
fn sigterm_lets_running_probes_finish_and_records_them() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(
        &mock,
        "tick = \"100ms\"\nshutdown_grace = \"20s\"",
        &[(
            "inflight",
            &["delay-3000-3000"],
            "interval = \"10s\"\ntimeout = \"8s\"\ndegraded_after = \"6s\"",
        )],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "the probe to reach the upstream", || {
        mock.requests().iter().any(|r| r.method == "POST")
    });
    d.signal("TERM");
    let st = d.wait_exit(T);
    assert!(st.success(), "exit {st:?}\n{}", d.log());
    let rows = env.history_for("inflight");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(s(&rows[0], "status"), "operational");
    let log = d.log();
    assert!(
        log.contains("check finished") && log.contains("status changed"),
        "{log}"
    );
    assert!(!log.contains(mock.key()), "the API key reached the log");
}

#[test]
fn probes_cut_off_by_the_grace_period_are_not_recorded_as_failures() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(
        &mock,
        "tick = \"100ms\"\nshutdown_grace = \"1s\"",
        &[("stuck", &["stall"], "interval = \"30s\"\ntimeout = \"25s\"")],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "the stalled probe", || {
        mock.requests().iter().any(|r| r.method == "POST")
    });
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).success());
    assert!(
        env.history_for("stuck").is_empty(),
        "an abandoned probe is not an outage"
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(
        &mock,
        "tick = \"100ms\"\nshutdown_grace = \"60s\"",
        &[("stuck", &["stall"], "interval = \"30s\"\ntimeout = \"25s\"")],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "the stalled probe", || {
        mock.requests().iter().any(|r| r.method == "POST")
    });
    d.signal("TERM");
    wait_until(T, "shutdown to begin", || d.log().contains("shutting down"));
    d.signal("INT");
    let st = d.wait_exit(Duration::from_secs(10));
    assert!(!st.success());
}

#[test]
fn sighup_adds_a_new_monitor_and_a_broken_config_keeps_the_old_one() {
    let mock = MockUpstream::start();
    let one = config(
        &mock,
        "tick = \"100ms\"",
        &[("first", &["good"], "interval = \"10s\"\ntimeout = \"5s\"")],
    );
    let env = Env::new(&one);
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "first check", || !env.history_for("first").is_empty());

    // A broken config is refused and the running one keeps going.
    env.write_config("this is = = not toml");
    d.signal("HUP");
    wait_until(T, "the refusal", || d.log().contains("reload failed"));
    let before = env.history_for("first").len();
    wait_until(T, "another check of the old config", || {
        env.history_for("first").len() > before
    });

    // A valid config with a second monitor: it starts being probed.
    let two = config(
        &mock,
        "tick = \"100ms\"",
        &[
            ("first", &["good"], "interval = \"10s\"\ntimeout = \"5s\""),
            (
                "second",
                &["gpt-4o-mini"],
                "interval = \"10s\"\ntimeout = \"5s\"",
            ),
        ],
    );
    env.write_config(&two);
    d.signal("HUP");
    wait_until(T, "the new monitor's check", || {
        !env.history_for("second").is_empty()
    });
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
}

#[test]
fn sigusr1_logs_the_counters_and_the_daemon_keeps_running() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(
        &mock,
        "tick = \"100ms\"",
        &[("counted", &["good"], "interval = \"10s\"\ntimeout = \"5s\"")],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "first check", || !env.history_for("counted").is_empty());
    assert!(!d.log().contains("daemon counters"), "{}", d.log());
    d.signal("USR1");
    wait_until(T, "the counters line", || {
        d.log().contains("daemon counters")
    });
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("daemon counters"))
        .expect("a counters line");
    // At least the check just recorded (a slow machine may have started the next one).
    assert!(
        line.contains("checks_started=") && !line.contains("checks_started=0 "),
        "{line}"
    );
    assert!(line.contains("dropped=0"), "{line}");
    // Not a shutdown: the daemon answers a later TERM gracefully.
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
}

#[test]
fn a_second_daemon_on_the_same_database_refuses_to_start() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(
        &mock,
        "",
        &[("a", &["good"], "interval = \"60s\"")],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "the first daemon", || d.log().contains("daemon started"));
    let out = env.run(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = harness::text(&out.stderr);
    assert!(err.contains(&format!("pid {}", d.pid())), "{err}");
    assert!(d.is_running());
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
}

#[test]
fn a_globally_disabled_config_idles() {
    let mock = MockUpstream::start();
    let mut c = String::from("enabled = false\n");
    c.push_str(&config(
        &mock,
        "tick = \"100ms\"",
        &[("a", &["good"], "interval = \"10s\"")],
    ));
    let env = Env::new(&c);
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "start", || d.log().contains("daemon started"));
    std::thread::sleep(Duration::from_secs(3));
    assert!(d.is_running());
    assert!(mock.requests().is_empty());
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
}

#[test]
fn kill_9_during_heavy_writing_keeps_a_sound_database() {
    let mock = MockUpstream::start();
    let monitors: Vec<(String, &[&str], &str)> = (0..150)
        .map(|i| {
            (
                format!("w{i:03}"),
                &["good", "other"][..],
                "interval = \"10s\"\ntimeout = \"5s\"",
            )
        })
        .collect();
    let refs: Vec<(&str, &[&str], &str)> = monitors
        .iter()
        .map(|(a, b, c)| (a.as_str(), *b, *c))
        .collect();
    let env = Env::new(&config(
        &mock,
        "tick = \"100ms\"\nworkers = 32\nqueue = 512",
        &refs,
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "some rows", || env.history(&[]).len() >= 100);
    let committed = env.history(&[]).len();
    d.signal("KILL");
    let _ = d.wait_exit(T);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(conn);
    assert!(
        env.history(&[]).len() >= committed,
        "rows committed before the kill were lost"
    );
}

#[test]
fn a_shell_check_waits_for_the_daemons_probe_and_is_recorded_too() {
    let mock = MockUpstream::start();
    let env = Env::new(&config(
        &mock,
        "tick = \"100ms\"",
        &[(
            "shared",
            &["delay-3000-3000"],
            "interval = \"60s\"\ntimeout = \"8s\"\ndegraded_after = \"6s\"",
        )],
    ));
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "the daemon's probe", || {
        mock.requests().iter().any(|r| r.method == "POST")
    });
    let out = env.run(&["check", "shared"]);
    assert_eq!(out.status.code(), Some(0), "{}", harness::text(&out.stderr));
    assert_eq!(mock.max_in_flight("delay-3000-3000"), 1);
    wait_until(T, "both results", || env.history_for("shared").len() == 2);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    // The probe locks are one file for the whole fleet; no per-monitor files are left behind.
    let lock_file = |suffix: &str| {
        let mut p = env.db().into_os_string();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    assert!(lock_file(".probe-locks").is_file());
    assert!(
        !lock_file(".locks").exists(),
        "no per-monitor lock directory"
    );
}
