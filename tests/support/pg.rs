//! PostgreSQL for the tests: `CHANMON_TEST_DATABASE_URL` when set (a URL whose user may
//! `CREATE DATABASE`), else ONE throwaway cluster per test binary, started with the server's
//! own `initdb` and `pg_ctl` in a temporary directory on a free port (as the `postgres` user
//! through `runuser` when running as root: `initdb` refuses root). The cluster trusts its Unix
//! socket but wants a password over TCP ([`PASSWORD`], in the URLs handed out), so tests can
//! check that a wrong password is refused and that the right one is never printed. Each test
//! gets a fresh database. A watchdog shell stops the cluster (`pg_ctl stop -m immediate`) and removes its
//! directory once the test process is gone, however it ended.
//!
//! Without a server, under `CI` the tests fail; elsewhere one line says which tests did not
//! run and why, and [`fresh_database`] returns `None` (the test returns early).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The superuser's password of the throwaway cluster: distinctive, so a leak is easy to find.
pub(crate) const PASSWORD: &str = "pg-Secr3t-Never-Printed";

/// The admin URL of the server the tests use, or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("CHANMON_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => start_cluster(),
    })
}

/// A new, empty database for one test: its URL. `None` (after saying so once) when no
/// server is available outside CI.
pub(crate) fn fresh_database() -> Option<String> {
    let admin = match server() {
        Ok(url) => url,
        Err(why) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required under CI: {why}");
            }
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                eprintln!(
                    "note: the PostgreSQL tests of this binary did not run: {why} (install the `postgresql` package or set CHANMON_TEST_DATABASE_URL)"
                );
            });
            return None;
        }
    };
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "chanmon_t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut c =
        postgres::Client::connect(admin, postgres::NoTls).expect("connect to the test server");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    Some(with_database(admin, &name))
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

fn initdb() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/initdb"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args…`, as the `postgres` user when we are root.
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start_cluster() -> Result<String, String> {
    let initdb = initdb().ok_or("no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb)")?;
    let bin = initdb.parent().ok_or("initdb has no directory")?.to_owned();
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("chanmon-pg-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    let (data, sock, log) = (dir.join("data"), dir.join("sock"), dir.join("log"));
    std::fs::create_dir_all(&sock).map_err(|e| format!("socket dir: {e}"))?;
    if root {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("cannot hand the cluster directory to the postgres user".into());
        }
    }
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| format!("password file: {e}"))?;
    if root {
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&pwfile)
            .status();
    }
    let out = as_server_user(&initdb, root)
        .args([
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-U",
            "postgres",
        ])
        .args(["-E", "UTF8", "--locale=C", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .arg("-D")
        .arg(&data)
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        sock.display()
    );
    let pg_ctl = bin.join("pg_ctl");
    let out = as_server_user(&pg_ctl, root)
        .args(["-w", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-o", &opts, "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!("pg_ctl start failed: {}", log.trim()));
    }
    watchdog(&pg_ctl, &data, &dir, root);
    Ok(format!(
        "postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    ))
}

/// Stops the cluster and removes its directory once this process is gone.
fn watchdog(pg_ctl: &Path, data: &Path, dir: &Path, root: bool) {
    let stop = format!(
        "{}{} stop -m immediate -D {}",
        if root { "runuser -u postgres -- " } else { "" },
        pg_ctl.display(),
        data.display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
