//! The real `chanmon` binary on PostgreSQL: `run --listen` against the mock upstream records
//! results that `status`, `history` and the HTTP routes read back (every PostgreSQL call of the
//! daemon, its HTTP side and the commands runs where the blocking driver may run); `rekey` is
//! refused while a daemon (a replica) runs; bad URLs, a wrong password, a missing database and an
//! unreachable server give clear errors; the password never appears in any output or log.

mod harness;
mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use harness::{Env, monitor, preamble, text, wait_until};
use support::http_client::request;
use support::mock::MockUpstream;
use support::pg::{PASSWORD, fresh_database};

const T: Duration = Duration::from_secs(60);

fn config(url: &str, mock: &MockUpstream) -> String {
    let mut c = format!("database = \"{url}\"\n");
    c.push_str(&preamble("workers = 2"));
    c.push_str(&monitor(
        "pg-mon",
        "openai",
        &mock.origin(),
        mock.key(),
        &["gpt-ok", "status-500"],
        "interval = \"1h\"",
    ));
    c
}

fn assert_no_password(what: &str, bytes: &[u8]) {
    assert!(
        !text(bytes).contains(PASSWORD),
        "{what} shows the database password:\n{}",
        text(bytes)
    );
}

fn listening(log: &std::path::Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("http: listening"))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

fn history(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["history", "--format", "json", "--limit", "1000"]);
    assert_no_password("history", &out.stdout);
    assert_no_password("history's stderr", &out.stderr);
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice(&out.stdout).expect("history json")
}

#[test]
fn the_daemon_records_into_postgres_and_every_reader_sees_it() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let env = Env::new(&config(&url, &mock));
    let log = env.path("daemon.log");
    let mut daemon = env
        .command(&["run", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "chanmon=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("spawn chanmon");
    let mut addr = None;
    wait_until(T, "the http listener", || {
        addr = listening(&log);
        addr.is_some()
    });
    let addr = addr.unwrap();
    let mut rows = Vec::new();
    wait_until(T, "both models recorded", || {
        rows = history(&env);
        rows.len() >= 2
    });
    let models: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert!(
        models.contains(&"gpt-ok") && models.contains(&"status-500"),
        "{rows:?}"
    );
    let ok = rows.iter().find(|r| r["model"] == "gpt-ok").unwrap();
    assert_eq!(ok["status"], "operational", "{ok}");

    // The HTTP side reads PostgreSQL from its blocking threads.
    wait_until(T, "both models on /api/v1/status", || {
        let r = request(addr, "GET", "/api/v1/status", &[]);
        r.status == 200
            && r.json()
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(|row| !row["latest"].is_null()))
    });
    for path in ["/", "/api/v1/status", "/metrics"] {
        let r = request(addr, "GET", path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(r.text().contains("pg-mon") || path == "/", "{path}");
        assert_no_password(path, &r.body);
    }

    // Commands beside the running daemon.
    let status = env.run(&["status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).contains("gpt-ok"),
        "{}",
        text(&status.stdout)
    );
    assert_no_password("status", &status.stdout);
    assert_no_password("status's stderr", &status.stderr);
    let check = env.run(&["check", "pg-mon"]);
    assert_no_password("check", &check.stdout);
    assert_no_password("check's stderr", &check.stderr);
    assert!(
        history(&env).len() >= 4,
        "the one-shot check recorded its results too"
    );

    // Daemons share a PostgreSQL database (replicas, tests/replicas.rs), but `rekey` must run
    // alone: it is refused while one runs, naming its pid and the (redacted) database.
    let rekey = env
        .command(&["rekey"])
        .env("CHANMON_MASTER_KEY_NEW", "22".repeat(32))
        .output()
        .unwrap();
    assert_eq!(rekey.status.code(), Some(1), "{}", text(&rekey.stderr));
    let err = text(&rekey.stderr);
    assert!(err.contains("a chanmon daemon"), "{err}");
    assert!(err.contains(&format!("pid {}", daemon.id())), "{err}");
    assert!(err.contains("postgres://postgres@127.0.0.1:"), "{err}");
    assert_no_password("rekey", &rekey.stderr);

    let st = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let exit = daemon.wait().unwrap();
    assert!(exit.success(), "{}", std::fs::read_to_string(&log).unwrap());
    let log_text = std::fs::read(&log).unwrap();
    assert_no_password("the daemon's log", &log_text);
    assert!(
        text(&log_text).contains("postgres://postgres@127.0.0.1"),
        "the log names the database (redacted)"
    );
    // Nothing stored holds the password either.
    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let dump: String = c
        .query_one(
            "SELECT coalesce(string_agg(t::text, ' '), '') FROM (
                 SELECT row_to_json(m)::text AS t FROM monitors m
                 UNION ALL SELECT row_to_json(h)::text FROM history h) AS x",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(dump.contains("gpt-ok") && !dump.contains(PASSWORD));
}

#[test]
fn bad_urls_and_unreachable_servers_give_clear_errors() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let port = url
        .split(':')
        .nth(3)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let cases = [
        (
            url.replace(PASSWORD, "wrong-password"),
            "password authentication failed",
        ),
        (
            url.rsplit_once('/')
                .map(|(h, _)| format!("{h}/no_such_db"))
                .unwrap(),
            "does not exist",
        ),
        (
            url.replace(&format!(":{port}/"), &format!(":{closed_port}/")),
            "is the server running",
        ),
    ];
    for (bad, want) in cases {
        let env = Env::new(&config(&bad, &mock));
        let out = env.run(&["check", "pg-mon"]);
        let err = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{bad}");
        assert!(
            err.contains(want),
            "{want}: {err} / {:?} / {}",
            out.status,
            text(&out.stdout)
        );
        assert!(err.contains("postgres://postgres@127.0.0.1:"), "{err}");
        assert_no_password("the error", &out.stderr);
        assert_no_password("stdout", &out.stdout);
        assert!(!err.contains("wrong-password"), "{err}");
        let status = env.run(&["status"]);
        assert_eq!(status.status.code(), Some(1), "{}", text(&status.stderr));
        assert_no_password("status", &status.stderr);
    }
    // A malformed URL is a config error at its line, the URL not repeated.
    let env = Env::new(&config(&format!("{url}?sslmode=sometimes"), &mock));
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("monitors.toml:1:") && err.contains("sslmode"),
        "{err}"
    );
    assert_no_password("the config error", &out.stderr);
    let out = env
        .command(&["status"])
        .env("CHANMON_DATABASE_URL", "postgres://u:pw@host:badport/db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("CHANMON_DATABASE_URL"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn chanmon_database_url_overrides_the_config_file() {
    let Some(url) = fresh_database() else { return };
    let mock = MockUpstream::start();
    let mut c = "database = \"local.db\"\n".to_owned();
    c.push_str(&preamble("workers = 1"));
    c.push_str(&monitor(
        "pg-mon",
        "openai",
        &mock.origin(),
        mock.key(),
        &["gpt-ok"],
        "",
    ));
    let env = Env::new(&c);
    let out = env
        .command(&["check", "pg-mon"])
        .env("CHANMON_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !env.path("local.db").exists(),
        "the file database was not used"
    );
    let out = env
        .command(&["history", "--format", "json"])
        .env("CHANMON_DATABASE_URL", &url)
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["model"], "gpt-ok");
    // `${VAR}` works in `database` as in any other string.
    let mut c = "database = \"${PG_FOR_TEST}\"\n".to_owned();
    c.push_str(&preamble("workers = 1"));
    c.push_str(&monitor(
        "pg-mon",
        "openai",
        &mock.origin(),
        mock.key(),
        &["gpt-ok"],
        "",
    ));
    env.write_config(&c);
    let out = env
        .command(&["history", "--format", "json"])
        .env("PG_FOR_TEST", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 1);
}
