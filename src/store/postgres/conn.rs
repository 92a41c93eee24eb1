//! The PostgreSQL URL (kept whole for connecting, shown only without its password) and the
//! one connection each store value owns.
//!
//! The driver is the blocking `postgres` client: it runs tokio-postgres on a small runtime of
//! its own and calls `block_on` for every query, which panics on a thread already inside a
//! tokio runtime (`chanmon`'s commands run inside one). [`Conn::run`] therefore hops to a
//! scoped std thread when called on such a thread, and [`Conn`]'s drop does the same (dropping
//! the driver's runtime inside a runtime panics too). On the daemon's writer thread and in
//! `spawn_blocking`-free std threads the call is direct.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ::postgres::config::{Host, SslMode};
use ::postgres::{Client, Config, NoTls};

use crate::store::StoreError;

/// How TLS is used, from the URL's `sslmode` (libpq's names). chanmon always verifies the
/// server's certificate when it uses TLS: `require` and `verify-ca` act as `verify-full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tls {
    Disable,
    Prefer,
    Require,
}

/// A `postgres://` / `postgresql://` URL. Equality and hashing are on the whole text;
/// `Display` and `Debug` never show the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PgUrl {
    /// The URL without `sslmode` / `sslrootcert` (handled here, not by the driver).
    driver: String,
    tls: Tls,
    root_cert: Option<PathBuf>,
    shown: String,
}

impl PgUrl {
    /// Parses and checks a URL. The error never repeats the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<PgUrl, String> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Err("a PostgreSQL URL starts with postgres:// or postgresql://".into());
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut tls = Tls::Prefer;
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => {
                    tls = match v {
                        "disable" => Tls::Disable,
                        "allow" | "prefer" => Tls::Prefer,
                        "require" | "verify-ca" | "verify-full" => Tls::Require,
                        _ => {
                            return Err(format!(
                                "sslmode `{v}` is not one of disable, prefer, require, verify-ca, verify-full"
                            ));
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(v))),
                _ => kept.push(pair),
            }
        }
        let driver = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let config =
            Config::from_str(&driver).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
        if config.get_hosts().is_empty() {
            return Err("the URL names no host (give host:port, or ?host=/socket/dir)".into());
        }
        Ok(PgUrl {
            shown: redacted(&config),
            driver,
            tls,
            root_cert,
        })
    }

    /// `true` for a value that asks for PostgreSQL (checked before [`PgUrl::parse`]).
    pub fn is_postgres(s: &str) -> bool {
        let l = s.trim().to_ascii_lowercase();
        l.starts_with("postgres://") || l.starts_with("postgresql://")
    }

    fn config(&self) -> Result<Config, StoreError> {
        let mut c = Config::from_str(&self.driver).map_err(|e| self.open_err(e.to_string()))?;
        c.ssl_mode(match self.tls {
            Tls::Disable => SslMode::Disable,
            Tls::Prefer => SslMode::Prefer,
            Tls::Require => SslMode::Require,
        });
        if c.get_connect_timeout().is_none() {
            c.connect_timeout(Duration::from_secs(10));
        }
        if c.get_application_name().is_none() {
            c.application_name("chanmon");
        }
        Ok(c)
    }

    /// Opens a connection (on a std thread when called inside a tokio runtime).
    pub(crate) fn connect(&self, application: Option<&str>) -> Result<Client, StoreError> {
        let mut c = self.config()?;
        if let Some(a) = application {
            c.application_name(a);
        }
        off_runtime(|| {
            let made = match self.tls {
                Tls::Disable => c.connect(NoTls),
                _ => c.connect(self.tls_connector()?),
            };
            made.map_err(|e| self.connect_err(&e))
        })
    }

    fn tls_connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let config = match &self.root_cert {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| self.open_err(format!("sslrootcert {}: {e}", path.display())))?;
                for cert in certs {
                    let cert = cert.map_err(|e| {
                        self.open_err(format!("sslrootcert {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        self.open_err(format!("sslrootcert {}: {e}", path.display()))
                    })?;
                }
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
            None => {
                use rustls_platform_verifier::ConfigVerifierExt;
                rustls::ClientConfig::with_platform_verifier()
                    .map_err(|e| self.open_err(format!("TLS setup: {e}")))?
            }
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    pub(crate) fn open_err(&self, message: impl Into<String>) -> StoreError {
        StoreError::Open {
            path: self.shown.clone(),
            message: message.into(),
        }
    }

    /// What went wrong connecting, and what to do about it.
    fn connect_err(&self, e: &::postgres::Error) -> StoreError {
        let hint = match e.as_db_error().map(|d| d.code().code()) {
            Some("28P01" | "28000") => {
                "; check the user and password in the URL (or CHANMON_DATABASE_URL)"
            }
            Some("3D000") => "; create it first (createdb, or CREATE DATABASE)",
            Some(_) => "",
            None => "; is the server running and reachable at that address?",
        };
        let detail = match e.as_db_error() {
            Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
            None => match std::error::Error::source(e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        };
        self.open_err(format!("cannot be opened: {detail}{hint}"))
    }
}

/// `postgres://user@host:port/db`: everything but the password.
fn redacted(c: &Config) -> String {
    let user = c.get_user().unwrap_or("");
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let db = c.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{host}:{port}/{db}")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.shown)
    }
}

/// Runs `f` where the blocking driver may run: directly on a plain thread, on a scoped std
/// thread when this thread is inside a tokio runtime.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// One connection, reopened once when the server dropped it.
pub(crate) struct Conn {
    client: Option<Client>,
    url: PgUrl,
    /// Session setup run after every (re)connect (read-only mode).
    setup: &'static str,
}

impl Conn {
    pub(crate) fn open(url: &PgUrl, setup: &'static str) -> Result<Conn, StoreError> {
        let mut conn = Conn {
            client: Some(url.connect(None)?),
            url: url.clone(),
            setup,
        };
        if !setup.is_empty() {
            conn.run(|c| Ok(c.batch_execute(setup)?))?;
        }
        Ok(conn)
    }

    /// Wraps a client already connected (the daemon lock's, with its own application name).
    pub(crate) fn from_client(url: &PgUrl, client: Client) -> Conn {
        Conn {
            client: Some(client),
            url: url.clone(),
            setup: "",
        }
    }

    /// Runs `f` on the connection (see [`off_runtime`]). A connection the server closed is
    /// reopened first; an error mid-call is returned, never retried (the caller's transaction
    /// was rolled back with the connection).
    pub(crate) fn run<T: Send>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.reconnect()?;
        }
        let Some(client) = self.client.as_mut() else {
            return Err(self.url.open_err("has no open connection"));
        };
        let out = off_runtime(|| f(client));
        // After a failure, a connection that no longer answers is dropped, so the next call
        // opens a new one (the driver may not have noticed the close yet).
        if out.is_err()
            && !off_runtime(|| client.is_valid(Duration::from_secs(2)).is_ok())
            && let Some(dead) = self.client.take()
        {
            drop_off_runtime(dead);
        }
        out
    }

    fn reconnect(&mut self) -> Result<(), StoreError> {
        if let Some(old) = self.client.take() {
            drop_off_runtime(old);
        }
        let mut client = self.url.connect(None)?;
        if !self.setup.is_empty() {
            let setup = self.setup;
            off_runtime(|| client.batch_execute(setup))?;
        }
        self.client = Some(client);
        Ok(())
    }
}

/// Drops a client where dropping its runtime is allowed.
pub(crate) fn drop_off_runtime(client: Client) {
    if tokio::runtime::Handle::try_current().is_err() {
        drop(client);
    } else {
        let _ = std::thread::spawn(move || drop(client)).join();
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            drop_off_runtime(c);
        }
    }
}

/// Driver errors cross the boundary as text with their SQLSTATE; data corruption as
/// [`StoreError::Damaged`].
impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        match e.as_db_error() {
            Some(d) if matches!(d.code().code(), "XX001" | "XX002") => StoreError::Damaged {
                path: String::new(),
                detail: format!(
                    "PostgreSQL says: {} (SQLSTATE {})",
                    d.message(),
                    d.code().code()
                ),
            },
            Some(d) => StoreError::Backend(format!(
                "PostgreSQL: {} (SQLSTATE {})",
                d.message(),
                d.code().code()
            )),
            None => StoreError::Backend(format!("PostgreSQL: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let u =
            PgUrl::parse("postgres://alice:s3cr3t@db.example:6543/mon?sslmode=require").unwrap();
        assert_eq!(u.to_string(), "postgres://alice@db.example:6543/mon");
        assert!(!format!("{u:?}").contains("s3cr3t"));
        assert_eq!(u.tls, Tls::Require);
        assert!(!u.driver.contains("sslmode"));
    }

    #[test]
    fn unix_sockets_and_bad_urls() {
        let u = PgUrl::parse("postgresql://bob@/chanmon?host=/run/pg&port=5433").unwrap();
        assert_eq!(u.to_string(), "postgres://bob@/run/pg:5433/chanmon");
        let e = PgUrl::parse("postgres://a:pw@h/db?sslmode=bogus").unwrap_err();
        assert!(e.contains("sslmode") && !e.contains("pw@"), "{e}");
        assert!(PgUrl::parse("postgres://a:pw@h:notaport/db").is_err());
        assert!(PgUrl::is_postgres("PostgreSQL://x/y") && !PgUrl::is_postgres("chanmon.db"));
    }
}
