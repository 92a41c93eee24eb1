//! Care of the data, through the real binary: `backup` while the daemon writes (and restoring
//! it), `verify` on sound, damaged and foreign-keyed databases, damage stopping every writer,
//! `rekey` (round trip, refusals, `kill -9` in the middle) and `export`.

mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::{Env, MASTER_KEY, monitor, preamble, s, text, wait_until};
use support::mock::MockUpstream;

const T: Duration = Duration::from_secs(60);
const OTHER_KEY: &str = "0202020202020202020202020202020202020202020202020202020202020202";
const THIRD_KEY: &str = "0303030303030303030303030303030303030303030303030303030303030303";

fn two_monitors(mock: &MockUpstream) -> String {
    let mut c = preamble("");
    c.push_str(&monitor(
        "alpha",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "headers = { x-relay-token = \"relay-secret-1\" }",
    ));
    c.push_str(&monitor(
        "beta",
        "anthropic",
        &mock.origin(),
        mock.key(),
        &["claude-x", "good"],
        "",
    ));
    c
}

/// `chanmon <args>` with another master key.
fn with_key(env: &Env, key: &str, args: &[&str]) -> Output {
    env.command(args)
        .env("CHANMON_MASTER_KEY", key)
        .output()
        .expect("run chanmon")
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// Folds the WAL into the main file, so the file alone is the database.
fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// Overwrites the root page of `history` with garbage (the file's other pages stay sound),
/// the way a bad sector or a stray write would. Returns the page number.
fn damage_history_root(db: &Path) -> i64 {
    checkpoint(db);
    let (root, size): (i64, i64) = {
        let conn = rusqlite::Connection::open(db).unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'history'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (root, size)
    };
    let mut bytes = std::fs::read(db).unwrap();
    let at = ((root - 1) * size) as usize;
    assert!(
        at + size as usize <= bytes.len(),
        "page {root} is in the file"
    );
    bytes[at..at + size as usize].fill(0xA5);
    std::fs::write(db, &bytes).unwrap();
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(PathBuf::from(format!("{}{side}", db.display())));
    }
    root
}

/// A directory with `chanmon.db` copied from `file` and a config that only names it: a
/// restore, as the README describes it.
fn restore(file: &Path) -> Env {
    let env = Env::new("database = \"chanmon.db\"\n");
    std::fs::copy(file, env.db()).unwrap();
    env
}

fn history_count(env: &Env) -> usize {
    env.history(&[]).len()
}

/// (monitor, model, started_at, status) of every row, for comparisons.
fn row_keys(env: &Env) -> std::collections::BTreeSet<(String, String, String, String)> {
    env.history(&[])
        .iter()
        .map(|r| {
            (
                s(r, "monitor").to_owned(),
                s(r, "model").to_owned(),
                r["started_at"].to_string(),
                s(r, "status").to_owned(),
            )
        })
        .collect()
}

/// `status --format json` without what depends on the moment it runs.
fn status_json(env: &Env) -> serde_json::Value {
    let out = env.run(&["status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_backup_taken_while_the_daemon_writes_restores_to_the_same_data() {
    let mock = MockUpstream::start();
    // 60 monitors at 10 s: the daemon commits several times a second.
    let mut c = preamble("tick = \"100ms\"\nworkers = 8");
    for i in 0..60 {
        c.push_str(&monitor(
            &format!("m{i:02}"),
            "openai",
            &mock.origin(),
            mock.key(),
            &["good", "claude-y"],
            "interval = \"10s\"\ntimeout = \"5s\"",
        ));
    }
    let env = Env::new(&c);
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "the daemon's first rows", || history_count(&env) >= 100);
    let mut backups = Vec::new();
    for i in 0..3 {
        let file = env.path(&format!("backup-{i}.db"));
        let out = env.run(&["backup", file.to_str().unwrap()]);
        assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("integrity_check: ok"),
            "{}",
            text(&out.stdout)
        );
        backups.push(file);
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(d.is_running(), "the daemon kept running: {}", d.log());
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    let live = row_keys(&env);

    // Each backup taken while the daemon wrote is one consistent snapshot: it verifies (its
    // rollups agree with its rows), and its rows are rows of the live database.
    let mut last = 0;
    for file in &backups {
        let restored = restore(file);
        let out = restored.run(&["verify"]);
        assert_eq!(code(&out), Some(0), "{}", text(&out.stdout));
        let rows = row_keys(&restored);
        assert!(rows.len() >= 100 && rows.len() >= last, "{}", rows.len());
        assert!(
            rows.is_subset(&live),
            "a backup holds rows the database never had"
        );
        last = rows.len();
    }

    // With the writer stopped, a backup restores to exactly the same data.
    let file = env.path("final.db");
    let out = env.run(&["backup", "--quiet", file.to_str().unwrap()]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let restored = restore(&file);
    assert_eq!(row_keys(&restored), live);
    assert_eq!(status_json(&restored), status_json(&env));
    // The restored copy is a working database: the daemon's config runs on it.
    std::fs::copy(&env.config, &restored.config).unwrap();
    let out = restored.run(&["check", "m00"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
}

#[test]
fn backup_never_overwrites_without_force_and_never_the_database() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    env.run(&["check", "--all"]);
    let file = env.path("copy.db");
    std::fs::write(&file, b"precious").unwrap();
    let out = env.run(&["backup", file.to_str().unwrap()]);
    assert_ne!(code(&out), Some(0));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");

    let out = env.run(&["backup", "--force", file.to_str().unwrap()]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    assert_eq!(history_count(&restore(&file)), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a backup holds sealed keys");
    }

    let before = history_count(&env);
    let db = env.db();
    let out = env.run(&["backup", "--force", db.to_str().unwrap()]);
    assert_ne!(code(&out), Some(0));
    assert!(
        text(&out.stderr).contains("database itself"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(history_count(&env), before);
    // No partial copies are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn verify_tells_sound_from_foreign_keys_and_stale_rollups() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    // Nothing to verify yet, and a bad config: could not verify.
    assert_eq!(code(&env.run(&["verify"])), Some(3));
    env.run(&["check", "--all"]);
    let out = env.run(&["verify"]);
    let report = text(&out.stdout);
    assert_eq!(code(&out), Some(0), "{report}");
    assert!(report.contains("integrity_check: no problems"), "{report}");
    assert!(report.contains("opens all 3 sealed secrets"), "{report}");
    assert!(report.contains("rollups agree with raw rows"), "{report}");
    assert!(report.contains("no daemon holds"), "{report}");
    let quiet = env.run(&["verify", "--quick", "--quiet"]);
    assert_eq!(code(&quiet), Some(0));
    assert_eq!(text(&quiet.stdout), "");

    // Sealed with another master key: needs attention, naming the monitors.
    let out = with_key(&env, OTHER_KEY, &["verify", "--quiet"]);
    let report = text(&out.stdout);
    assert_eq!(code(&out), Some(1), "{report}");
    assert!(
        report.contains("cannot open 3 of 3")
            && report.contains("monitor `alpha` (API key)")
            && report.contains("monitor `alpha` (header values)")
            && report.contains("monitor `beta` (API key)"),
        "{report}"
    );

    // A monitor gone from the config is listed, not a problem.
    let mut c = preamble("");
    c.push_str(&monitor(
        "alpha",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "headers = { x-relay-token = \"relay-secret-1\" }",
    ));
    env.write_config(&c);
    let out = env.run(&["verify"]);
    let report = text(&out.stdout);
    assert_eq!(code(&out), Some(0), "{report}");
    assert!(
        report.contains("not in the config") && report.contains("beta"),
        "{report}"
    );

    // A rollup that disagrees with its raw rows: attention, and the fix works.
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute("UPDATE rollups SET n_operational = n_operational + 5", [])
            .unwrap();
    }
    let out = env.run(&["verify"]);
    let report = text(&out.stdout);
    assert_eq!(code(&out), Some(1), "{report}");
    assert!(
        report.contains("rollups disagree") && report.contains("--rebuild-rollups"),
        "{report}"
    );
    let fix = env.run(&["prune", "--rebuild-rollups", "--quiet"]);
    assert_eq!(code(&fix), Some(0), "{}", text(&fix.stderr));
    assert_eq!(code(&env.run(&["verify"])), Some(0));

    // A bad config: could not verify.
    env.write_config("[[monitor]]\nid = \"Bad Id\"\n");
    assert_eq!(code(&env.run(&["verify"])), Some(3));
}

#[test]
fn verify_names_the_damage_and_leaves_the_file_alone() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    env.run(&["check", "--all"]);
    let page = damage_history_root(&env.db());
    let before = std::fs::read(env.db()).unwrap();
    for quick in [false, true] {
        let args: &[&str] = if quick {
            &["verify", "--quick"]
        } else {
            &["verify"]
        };
        let out = env.run(args);
        let report = text(&out.stdout);
        assert_eq!(code(&out), Some(2), "{report}{}", text(&out.stderr));
        assert!(report.contains("DAMAGED"), "{report}");
        assert!(
            report.contains(&format!("page {page}")) || report.contains(&format!("Page {page}")),
            "the report names the damaged page {page}: {report}"
        );
        assert!(report.contains("restore"), "{report}");
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            before,
            "verify changed the file"
        );
    }
    // A garbage file is damaged too; a missing one cannot be verified.
    std::fs::write(env.db(), b"not a database at all ".repeat(300)).unwrap();
    assert_eq!(code(&env.run(&["verify"])), Some(2));
    std::fs::remove_file(env.db()).unwrap();
    assert_eq!(code(&env.run(&["verify"])), Some(3));
}

#[test]
fn once_sqlite_reports_damage_commands_and_the_daemon_stop_writing() {
    let mock = MockUpstream::start();
    let mut c = preamble("tick = \"100ms\"");
    c.push_str(&monitor(
        "alpha",
        "openai",
        &mock.origin(),
        mock.key(),
        &["good"],
        "interval = \"10s\"\ntimeout = \"5s\"",
    ));
    let env = Env::new(&c);
    env.run(&["check", "--all"]);
    damage_history_root(&env.db());
    for args in [
        &["history"][..],
        &["status"][..],
        &["prune", "--older-than", "1h"][..],
        &["export"][..],
    ] {
        let out = env.run(args);
        let err = text(&out.stderr);
        assert_eq!(code(&out), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("damaged") && err.contains("chanmon verify") && err.contains("backup"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // `check` probes, then cannot record: it says why.
    let out = env.run(&["check", "alpha"]);
    assert_eq!(code(&out), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("chanmon verify"));

    // The daemon starts (no full scan at start-up), meets the damage on its first write,
    // stops writing, says so, and exits non-zero.
    let mut d = env.spawn_daemon(&[]);
    let st = d.wait_exit(T);
    let log = d.log();
    assert_eq!(st.code(), Some(1), "{log}");
    assert!(log.contains("THE DATABASE IS DAMAGED"), "{log}");
    assert!(log.contains("chanmon verify"), "{log}");
    assert_eq!(
        log.matches("writing results failed; will retry").count(),
        0,
        "a damaged database is never retried: {log}"
    );
}

/// Two monitors whose keys come from the environment at first, then only from the database.
fn env_key_monitors(mock: &MockUpstream) -> String {
    let mut c = preamble("");
    for (id, provider, model) in [("one", "openai", "good"), ("two", "anthropic", "claude-x")] {
        c.push_str(&format!(
            "\n[[monitor]]\nid = \"{id}\"\nprovider = \"{provider}\"\nendpoint = \"{}\"\napi_key_env = \"CHANMON_TEST_KEY\"\nmodel = \"{model}\"\nheaders = {{ x-team = \"t-{id}\" }}\n",
            mock.origin()
        ));
    }
    c
}

/// `check --all --format json` statuses by monitor, with master key `key` and no key in the
/// environment (so the stored keys are used).
fn statuses_with(env: &Env, key: &str) -> Vec<(String, String, String)> {
    let out = env
        .command(&["check", "--all", "--format", "json", "--no-record"])
        .env("CHANMON_MASTER_KEY", key)
        .env_remove("CHANMON_TEST_KEY")
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("check output: {}", text(&out.stderr)));
    rows.iter()
        .map(|r| {
            (
                s(r, "monitor").to_owned(),
                s(r, "status").to_owned(),
                s(r, "kind").to_owned(),
            )
        })
        .collect()
}

#[test]
fn rekey_round_trip_moves_every_secret_to_the_new_key() {
    let mock = MockUpstream::start();
    let env = Env::new(&env_key_monitors(&mock));
    let out = env
        .command(&["check", "--all"])
        .env("CHANMON_TEST_KEY", mock.key())
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let new_key = env.path("new.key");
    let out = env.run(&["rekey", "--new-key-file", new_key.to_str().unwrap()]);
    let said = text(&out.stdout);
    assert_eq!(code(&out), Some(0), "{said}{}", text(&out.stderr));
    assert!(said.contains("re-sealed 4 secrets of 2 monitors"), "{said}");
    assert!(said.contains("created"), "{said}");
    let new = std::fs::read_to_string(&new_key).unwrap().trim().to_owned();

    // The old key opens nothing now (verify only reads: a `check` under the old key would
    // re-seal the config's header values with it), the new one everything.
    let out = env.run(&["verify", "--quiet"]);
    assert_eq!(code(&out), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("cannot open 4 of 4"));
    let out = with_key(&env, &new, &["verify", "--quiet"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stdout));
    // Every monitor still probes with its stored key, under the new master key.
    let ok = statuses_with(&env, &new);
    assert_eq!(ok.len(), 2);
    assert!(ok.iter().all(|(_, st, _)| st == "operational"), "{ok:?}");

    // And back, from the environment this time.
    let out = env
        .command(&["rekey"])
        .env("CHANMON_MASTER_KEY", &new)
        .env("CHANMON_MASTER_KEY_NEW", THIRD_KEY)
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let ok = statuses_with(&env, THIRD_KEY);
    assert!(ok.iter().all(|(_, st, _)| st == "operational"), "{ok:?}");
}

#[test]
fn rekey_refuses_a_wrong_old_key_and_a_running_daemon() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    env.run(&["check", "--all"]);
    let db_before = row_keys(&env);

    // The current key opens nothing: refused, nothing written.
    let out = env
        .command(&["rekey"])
        .env("CHANMON_MASTER_KEY", OTHER_KEY)
        .env("CHANMON_MASTER_KEY_NEW", THIRD_KEY)
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(1));
    assert!(
        text(&out.stderr).contains("wrong key"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(code(&env.run(&["verify", "--quiet"])), Some(0));

    // No new key, the same key, both ways at once: refused.
    assert_ne!(code(&env.run(&["rekey"])), Some(0));
    let same = env
        .command(&["rekey"])
        .env("CHANMON_MASTER_KEY_NEW", MASTER_KEY)
        .output()
        .unwrap();
    assert_eq!(code(&same), Some(1));
    assert!(text(&same.stderr).contains("is the current one"));
    let both = env
        .command(&["rekey", "--new-key-file", "x.key"])
        .env("CHANMON_MASTER_KEY_NEW", THIRD_KEY)
        .output()
        .unwrap();
    assert_ne!(code(&both), Some(0));

    // A running daemon: refused, naming it.
    let mut d = env.spawn_daemon(&[]);
    wait_until(T, "the daemon lock", || d.log().contains("daemon started"));
    let out = env
        .command(&["rekey"])
        .env("CHANMON_MASTER_KEY_NEW", THIRD_KEY)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(code(&out), Some(1), "{err}");
    assert!(
        err.contains(&format!("pid {}", d.pid())) && err.contains("stop it first"),
        "{err}"
    );
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    assert_eq!(code(&env.run(&["verify", "--quiet"])), Some(0));
    assert!(db_before.is_subset(&row_keys(&env)));
}

/// Adds `n` retired monitors (disabled, no longer in the config, as years of config changes
/// leave them) with a sealed API key and sealed header values each, sealed with `key` as
/// chanmon seals them.
fn seed_retired_monitors(db: &Path, key: &chanmon::secret::MasterKey, n: usize) {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut st = tx
            .prepare(
                "INSERT INTO monitors (id, name, provider, api, endpoint, enabled, interval_ms,
                     models, sealed_key, sealed_headers, updated_at)
                 VALUES (?1, ?1, 'openai', 'chat', 'https://relay.example/', 0, 300000,
                     '[\"gpt-x\"]', ?2, ?3, 0)",
            )
            .unwrap();
        for i in 0..n {
            let id = format!("retired-{i:05}");
            let api_key = key.seal(&id, "api_key", format!("sk-retired-{i}").as_bytes());
            let headers = key.seal(&id, "headers", br#"{"x-team":"ops"}"#);
            st.execute(rusqlite::params![id, api_key, headers]).unwrap();
        }
    }
    tx.commit().unwrap();
}

#[test]
fn kill_9_in_the_middle_of_a_rekey_leaves_the_old_key_working() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    let out = env.run(&["check", "--all"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    // Enough secrets that the one re-sealing transaction takes a while: it can be caught
    // holding the write lock from outside, and killed there.
    let old_key = chanmon::secret::MasterKey::parse(MASTER_KEY, "test").unwrap();
    seed_retired_monitors(&env.db(), &old_key, 20_000);
    checkpoint(&env.db());
    let template = env.path("template.db");
    std::fs::copy(env.db(), &template).unwrap();

    let mut caught = 0;
    for attempt in 0..10 {
        // A fresh copy, without the WAL a killed rekey may have left.
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(env.path(&format!("chanmon.db{side}")));
        }
        std::fs::copy(&template, env.db()).unwrap();
        let mut child = env
            .command(&["rekey"])
            .env("CHANMON_MASTER_KEY_NEW", THIRD_KEY)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Poll the write lock from outside: BUSY means the rekey is inside its transaction.
        // Kill it once the transaction has also put pages into the WAL (SQLite spills a
        // transaction bigger than its cache before the commit), so the kill lands with
        // uncommitted writes on disk (the WAL holds frames beyond its 32-byte header).
        let probe = rusqlite::Connection::open(env.db()).unwrap();
        probe.busy_timeout(Duration::ZERO).unwrap();
        let wal_file = env.path("chanmon.db-wal");
        let deadline = Instant::now() + T;
        let mut killed_inside = false;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let busy = probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_err();
            if busy && std::fs::metadata(&wal_file).is_ok_and(|m| m.len() > 32) {
                let _ = Command::new("kill")
                    .args(["-9", &child.id().to_string()])
                    .status();
                killed_inside = true;
                break;
            }
            if !busy {
                std::thread::sleep(Duration::from_micros(500));
            }
            assert!(Instant::now() < deadline, "rekey never took the write lock");
        }
        let status = child.wait().unwrap();
        let wal = std::fs::metadata(env.path("chanmon.db-wal")).map_or(0, |m| m.len());
        drop(probe);
        let old = code(&env.run(&["verify", "--quick", "--quiet"]));
        let new = code(&with_key(
            &env,
            THIRD_KEY,
            &["verify", "--quick", "--quiet"],
        ));
        // All or nothing: one of the two keys opens everything, never a mix.
        assert!(
            (old == Some(0)) != (new == Some(0)),
            "attempt {attempt}: old key verify {old:?}, new key verify {new:?} (rekey {status:?})"
        );
        eprintln!(
            "attempt {attempt}: killed inside the transaction: {killed_inside}; WAL left behind: {wal} bytes; old key opens all: {}",
            old == Some(0)
        );
        if killed_inside && old == Some(0) {
            caught += 1;
            // The old key works: a monitor probes with it, and a rekey still succeeds.
            let out = env.run(&["check", "alpha", "--no-record"]);
            assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
            if caught == 2 {
                break;
            }
        }
    }
    assert!(caught > 0, "no kill landed inside the transaction");
    let out = env
        .command(&["rekey"])
        .env("CHANMON_MASTER_KEY_NEW", THIRD_KEY)
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        code(&with_key(
            &env,
            THIRD_KEY,
            &["verify", "--quick", "--quiet"]
        )),
        Some(0)
    );
}

#[test]
fn export_streams_every_matching_row() {
    let mock = MockUpstream::start();
    let env = Env::new(&two_monitors(&mock));
    for _ in 0..3 {
        env.run(&["check", "--all"]);
    }
    let all = env.run(&["export"]);
    assert_eq!(code(&all), Some(0), "{}", text(&all.stderr));
    let csv = text(&all.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "started_at,monitor,model,status,kind,http_status,ttft_ms,latency_ms,ping_ms,message,location,due_at"
        )
    );
    assert_eq!(lines.count(), 9);

    let out = env.run(&[
        "export",
        "--format",
        "jsonl",
        "--monitor",
        "beta",
        "--model",
        "good",
    ]);
    assert_eq!(code(&out), Some(0));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| s(r, "monitor") == "beta" && s(r, "model") == "good")
    );
    // Oldest first within a series.
    let times: Vec<i64> = rows.iter().map(harness::started_ms).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");

    let future = env.run(&["export", "--since", "2999-01-01"]);
    assert_eq!(text(&future.stdout).lines().count(), 1, "the header only");
    let past = env.run(&["export", "--format", "jsonl", "--until", "2000-01-01"]);
    assert_eq!(text(&past.stdout), "");
}
