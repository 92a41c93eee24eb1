//! The TOML config: schema, `${VAR}` interpolation, validation with file:line:column errors.
//!
//! `load` (a file) and `parse` (text, for tests) are the entry points. A config that fails
//! validation never reaches the rest of the program (no daemon starts, the database is not
//! touched), and every problem is reported, not just the first.
//!
//! The TOML is parsed into a spanned tree (`toml::de::DeTable`), `${VAR}` is interpolated in
//! that tree (`interp`), then read table by table with typed, position-aware getters
//! (`fields`): the document in `schema`, `[network]` in `network`, the keys `[defaults]` shares
//! with `[[monitor]]` in `shared`, one monitor in `monitor`. The value rules themselves
//! (origins, models, headers) are plain functions in `validate`; what belongs to a provider
//! (its name, default origin, `api` names, auth headers, reserved body keys) comes from the
//! registry in `crate::provider`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::model::MonitorId;
use crate::net::NetworkPolicy;
use crate::provider::{Api, Auth, Protocol, Provider};
use crate::secret::Secret;
use crate::store::Database;

mod alerts;
mod diag;
mod email;
mod fields;
mod http;
mod interp;
mod maintenance;
mod monitor;
mod network;
mod official;
mod schema;
mod shared;
mod validate;
mod verdict;

pub use http::HttpConfig;
pub use verdict::{OnModelMismatch, Price, model_matches};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;

/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "CHANMON_CONFIG";
pub const DEFAULT_CONFIG: &str = "monitors.toml";

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (as given, for messages).
    pub path: PathBuf,
    /// Where the data lives: a SQLite file (relative paths are resolved against the config's
    /// directory). Default: `chanmon.db` beside the config.
    pub database: Database,
    /// Master key file, used when `CHANMON_MASTER_KEY` is not set. Default: `chanmon.key`
    /// beside the database. Created (0600) on first use when missing.
    pub master_key_file: PathBuf,
    /// Global switch: `false` keeps the daemon idle without exiting.
    pub enabled: bool,
    pub runner: RunnerConfig,
    pub retention: RetentionConfig,
    /// The global network policy (`[network]`); each monitor carries its effective copy.
    pub network: NetworkPolicy,
    pub monitors: Vec<MonitorConfig>,
    /// `[[alert]]` sinks, `[alerts]` rules and `[monitor.alerts]` overrides.
    pub alerts: crate::alert::AlertsConfig,
    /// `[http]`: the status page, JSON API and `/metrics` (served only with a `listen`).
    pub http: HttpConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunnerConfig {
    /// Fixed number of probe workers (default 5).
    pub workers: usize,
    /// Capacity of the job queue between the ticker and the workers (default 64).
    pub queue: usize,
    /// How often the ticker looks for due monitors (default 1s).
    pub tick: Duration,
    /// How long running probes may finish after SIGTERM (default 30s).
    pub shutdown_grace: Duration,
    /// Random extra delay added to each scheduled time, at most this much (default 0).
    pub jitter: Duration,
    /// Models of one monitor checked at once (default 4).
    pub model_concurrency: usize,
    /// Where this daemon runs (`[runner] location`, overridden by `--location`); `""`: none
    /// named. Recorded with every result; decides which monitors with `locations` it probes.
    pub location: String,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            workers: 5,
            queue: 64,
            tick: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            jitter: Duration::ZERO,
            model_concurrency: 4,
            location: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetentionConfig {
    /// Raw history rows older than this are pruned (default 30d).
    pub history: Duration,
    /// Rollup buckets older than this are pruned (default 400d).
    pub rollups: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            history: Duration::from_secs(30 * 86_400),
            rollups: Duration::from_secs(400 * 86_400),
        }
    }
}

/// One `[[monitor]]`, with `[defaults]` applied and everything resolved.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub id: MonitorId,
    /// Display name (default: the id).
    pub name: String,
    pub provider: Provider,
    /// The protocol chosen with `api` (the provider's default when not set); the one sent.
    pub api: Api,
    /// The base URL as the provider's SDK takes it: an origin (`https://host[:port]/`) or an
    /// origin and a path without a trailing `/` (`https://openrouter.ai/api/v1`); never a
    /// query, fragment or userinfo. [`crate::provider::request_url`] joins the API paths.
    pub endpoint: Url,
    /// `query`: parameters added to every request URL (e.g. `api-version`), URL-encoded when
    /// sent; names that look like credentials are refused, so these are never secret.
    pub query: Vec<(String, String)>,
    /// How the key is sent: `auth`, else the provider's default. Its header is the one
    /// `headers` cannot set.
    pub auth: Auth,
    /// The key from `api_key` or from the variable named by `api_key_env`. `None` when that
    /// variable is unset: the key sealed in the database is used instead.
    pub api_key: Option<Secret>,
    /// The variable named by `api_key_env`, kept to explain a missing key.
    pub api_key_env: Option<String>,
    /// The primary model.
    pub model: String,
    /// Up to 16 more models, distinct from `model` and each other.
    pub extra_models: Vec<String>,
    /// Time between checks (10s..=24h, default 5m).
    pub interval: Duration,
    /// Whole-request timeout per model (default 30s, < interval).
    pub timeout: Duration,
    /// A correct answer slower than this is `degraded` (default 10s).
    pub degraded_after: Duration,
    pub group: Option<String>,
    pub enabled: bool,
    /// Extra request headers (values may carry credentials: sealed at rest, never printed).
    pub headers: Vec<(String, Secret)>,
    /// JSON merged into the request body (protocol keys rejected at validation).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// Ask a question with a verifiable answer (default true); false accepts any text.
    pub challenge: bool,
    /// Use the streaming API and record time to first token (default true).
    pub stream: bool,
    /// Effective network policy: `[network]` with this monitor's overrides applied.
    pub network: NetworkPolicy,
    /// Line of the `[[monitor]]` header in the config file, for messages.
    pub line: usize,
    /// What a reply naming another model does to the verdict (default degrade).
    pub on_model_mismatch: OnModelMismatch,
    /// Per requested model, the further names a reply may give (`model_aliases`).
    pub model_aliases: Vec<(String, Vec<String>)>,
    /// Prices for computing each check's cost when it is recorded; none = no cost.
    pub price: Option<Price>,
    /// Per requested model, a price over `price` (`model_prices`).
    pub model_prices: Vec<(String, Price)>,
    /// The public status page shown beside this monitor's verdict (`official_status`); never
    /// changes the verdict.
    pub official_status: Option<crate::official::StatusSource>,
    /// How often the daemon reads it.
    pub official_status_interval: std::time::Duration,
    /// A streamed answer writing fewer output tokens per second is `degraded`.
    pub degraded_below_tps: Option<f64>,
    /// `locations`: the daemons that probe this monitor, by `[runner] location`; empty: every
    /// daemon does (one without a location included).
    pub locations: Vec<String>,
}

impl MonitorConfig {
    /// Whether a daemon at `location` (`""`: none named) probes this monitor: always when
    /// the monitor lists no locations; else only from a listed one, so a daemon without a
    /// location never probes a monitor that asks for named places.
    pub fn probed_from(&self, location: &str) -> bool {
        self.locations.is_empty() || self.locations.iter().any(|l| l == location)
    }
}

impl MonitorConfig {
    /// The wire format the probe speaks to this monitor.
    pub fn protocol(&self) -> &'static dyn Protocol {
        self.api.protocol()
    }

    /// The names a reply may give for `model` besides its own (its declared aliases).
    pub fn aliases_of(&self, model: &str) -> &[String] {
        self.model_aliases
            .iter()
            .find(|(m, _)| m == model)
            .map_or(&[], |(_, a)| a.as_slice())
    }

    /// The price a check of `model` is costed at: its own, else the monitor's.
    pub fn price_of(&self, model: &str) -> Option<Price> {
        self.model_prices
            .iter()
            .find(|(m, _)| m == model)
            .map(|(_, p)| *p)
            .or(self.price)
    }

    /// The endpoint's origin (`scheme://host[:port]/`): where the ping goes.
    pub fn origin(&self) -> Url {
        let mut o = self.endpoint.clone();
        o.set_path("/");
        o
    }

    /// The primary model, then the extra models.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.model.as_str()).chain(self.extra_models.iter().map(String::as_str))
    }
}

/// A monitor ready to probe: its config plus the key that will actually be sent.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub config: MonitorConfig,
    pub key: KeyState,
}

/// Whether a usable API key exists. A monitor whose key is unavailable is never called (it
/// would be called with an empty key); its checks record `error`/`key_unavailable`.
#[derive(Debug, Clone)]
pub enum KeyState {
    Ready(Secret),
    /// Why not (e.g. "api_key_env OPENAI_API_KEY is unset and the stored key does not decrypt
    /// with this master key").
    Unavailable(String),
}

/// One problem found in a config file, with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 marks a problem with the file as a whole (unreadable, no monitors).
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Everything wrong with a config (all errors found, not just the first).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

/// A config that passed validation, with anything worth a warning.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Reads, interpolates, parses and validates the config at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "; pass --config FILE or set {CONFIG_ENV} (see monitors.example.toml for a start)"
            )
        } else {
            String::new()
        };
        ConfigError::file(path, format!("cannot read the config file: {e}{hint}"))
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            // Everything before `valid` is UTF-8, so the position can be computed on it.
            let prefix = String::from_utf8_lossy(&bytes[..valid]);
            let (line, column) = diag::position(&prefix, valid);
            return Err(ConfigError {
                errors: vec![Diagnostic {
                    file: path.to_path_buf(),
                    line,
                    column,
                    message: "the config file is not valid UTF-8; save it as UTF-8".into(),
                }],
            });
        }
    };
    parse(&text, path, &|v| std::env::var(v).ok())
}

/// Same as [`load`] on text already in memory; `path` is used for messages and to resolve the
/// database path. `env` looks up `${VAR}` and `api_key_env` (tests pass a map).
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    schema::build(text, path, env)
}

impl ConfigError {
    /// A single problem with the file as a whole (line 0: no position).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            errors: vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: message.into(),
            }],
        }
    }
}
