//! The command line, defined once: the parser, `--help`, the man pages and the shell
//! completions all come from these definitions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::{MonitorId, Status, Timestamp};

#[derive(Debug, Parser)]
#[command(
    name = "chanmon",
    version,
    about = "Health checks for LLM API channels",
    long_about = "chanmon probes OpenAI, Anthropic and Gemini endpoints (or relays speaking their \
protocols) with a tiny real chat request whose answer it verifies, and records per model whether \
the channel answers, how fast, and how available it has been.",
    after_help = "Exit codes: 0 success; 1 runtime error; 2 bad config or usage. `check` uses \
0 operational, 1 degraded, 2 failed/error, 3 unknown id or config error. `verify` uses 0 sound, \
1 needs attention, 2 damaged, 3 could not verify."
)]
pub struct Cli {
    /// Config file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "CHANMON_CONFIG",
        default_value = "monitors.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// Log line format (logs go to stderr; filter with RUST_LOG, e.g. `RUST_LOG=chanmon=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: probe every enabled monitor on its interval until SIGTERM/SIGINT.
    ///
    /// SIGHUP re-reads the config (a bad config keeps the running one); SIGUSR1 logs the
    /// counters. Only one daemon may run per database. With `--listen` (or `[http] listen`) it
    /// also serves the status page, the JSON API, `/metrics`, badges and health endpoints;
    /// without, it opens no port.
    Run(RunArgs),

    /// Probe monitors now, print the result and record it.
    ///
    /// Exit code: 0 all operational, 1 worst is degraded, 2 worst is failed or error,
    /// 3 unknown id or config error (Nagios-compatible).
    Check(CheckArgs),

    /// Show recorded check results, newest first.
    History(HistoryArgs),

    /// Latest result, availability and latency per monitor and model.
    Status(StatusArgs),

    /// Delete raw history older than the retention (rollups are kept); safe from cron while
    /// the daemon runs.
    Prune(PruneArgs),

    /// Check the config and print a summary; exit 0 when valid, 2 when not.
    Validate,

    /// Tokens and cost of the recorded checks over a period, per monitor or per model
    /// (from the hourly rollups, so the figures survive `prune`).
    Cost(CostArgs),
    /// Write a consistent copy of the database while the daemon runs, checked before it is
    /// put in place.
    ///
    /// One snapshot (SQLite `VACUUM INTO`): the daemon keeps writing meanwhile. The copy is
    /// written beside FILE, passes `integrity_check`, and only then takes FILE's name. It holds
    /// the sealed API keys: keep the master key with it. To restore, see the README.
    Backup(BackupArgs),

    /// Check that the database is sound: integrity, sealed keys, rollups, daemon lock.
    ///
    /// Reads only; safe while the daemon runs. Exit code: 0 sound, 1 needs attention (keys the
    /// master key cannot open, rollups that disagree with raw rows), 2 damaged (restore a
    /// backup), 3 could not verify (bad config, missing or unreadable file).
    Verify(VerifyArgs),

    /// Re-seal every stored API key and header value under a new master key, in one
    /// transaction.
    ///
    /// The current key comes from CHANMON_MASTER_KEY or the key file, the new one from
    /// --new-key-file or CHANMON_MASTER_KEY_NEW. Refused while a daemon runs on the database
    /// (stop it, rekey, install the new key, start it). Interrupted, it leaves the old key
    /// valid.
    Rekey(RekeyArgs),

    /// Write every matching history row as CSV or JSON lines, streaming (constant memory).
    ///
    /// Rows come per monitor and model (monitor id order), oldest first, from one consistent
    /// snapshot of the database.
    Export(ExportArgs),

    /// List incidents (per monitor and model) newest first, with how long they lasted and what
    /// each sink was told.
    Incidents(IncidentsArgs),

    /// Alert sinks (`[[alert]]` in the config).
    #[command(subcommand)]
    Alert(AlertCommand),

    /// Copy this SQLite database into an empty PostgreSQL database, then compare the counts.
    ///
    /// Monitors (with their sealed keys, which open with the same master key), history,
    /// rollups, the status tracker, provider status, incidents and the alert outbox, in one
    /// transaction: interrupted, it leaves the target empty. Refused while a daemon runs on
    /// the SQLite database, and into a database that is not empty. Afterwards point chanmon
    /// at the new database (`database = "postgres://…"` or CHANMON_DATABASE_URL).
    Migrate(MigrateArgs),

    /// Serve the status page, JSON API, `/metrics` and badges read-only from the database,
    /// without probing (beside a daemon that runs without `--listen`, or on another host).
    Serve(ServeArgs),

    /// Write the man pages (generated from these definitions).
    #[command(hide = true)]
    Man {
        /// Directory to write chanmon.1 and the subcommand pages into.
        #[arg(long, default_value = "man")]
        out_dir: PathBuf,
    },

    /// Print shell completions.
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Monitor ids to probe.
    #[arg(value_parser = parse_id, required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<MonitorId>,

    /// Probe every enabled monitor.
    #[arg(long)]
    pub all: bool,

    /// Do not record the results in the database.
    #[arg(long)]
    pub no_record: bool,

    /// Record the results as probed from this location (overrides `[runner] location`).
    #[arg(long, value_parser = parse_location, value_name = "NAME")]
    pub location: Option<String>,

    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Also serve HTTP on this address (overrides `[http] listen`), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,

    /// Where this daemon runs (overrides `[runner] location`): recorded with every result;
    /// a monitor with `locations` is probed only by daemons at one of them.
    #[arg(long, value_parser = parse_location, value_name = "NAME")]
    pub location: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve on (default: `[http] listen`), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,

    /// How often to look for new results in the database.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub poll: Duration,

    /// How often to reload windows and day bars from the database.
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub reload: Duration,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this monitor.
    #[arg(value_parser = parse_id)]
    pub id: Option<MonitorId>,

    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,

    /// From this time on: RFC 3339, a date, epoch ms, or a duration ago like `24h`.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<Timestamp>,

    /// Before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<Timestamp>,

    /// Paging: rows strictly older than this timestamp (pass the last row's time).
    #[arg(long, value_parser = parse_time)]
    pub before: Option<Timestamp>,

    /// Only rows with this status.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,

    /// Only rows probed from this location (`-`: from no named location).
    #[arg(long, value_parser = parse_location_filter, value_name = "NAME")]
    pub location: Option<String>,

    /// At most this many rows.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,

    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct IncidentsArgs {
    /// Only this monitor.
    #[arg(value_parser = parse_id)]
    pub id: Option<MonitorId>,

    /// Only incidents still open.
    #[arg(long)]
    pub open: bool,

    /// Only incidents open at or resolved after this time: RFC 3339, a date, epoch ms, or a
    /// duration ago like `24h`.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<Timestamp>,

    /// At most this many incidents.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,

    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Send a test notification through a sink, the way real alerts go (same request, same
    /// guarded client), and print the receiver's answer. Exit 0 on a 2xx, 1 otherwise.
    Test {
        /// The sink's `id`.
        sink: String,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this monitor (adds a timeline of its last 60 results per model).
    #[arg(value_parser = parse_id)]
    pub id: Option<MonitorId>,

    /// Availability windows to show (repeatable).
    #[arg(long = "window", value_parser = parse_duration, default_values = ["24h", "7d", "30d"])]
    pub windows: Vec<Duration>,

    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Only this monitor.
    #[arg(value_parser = parse_id)]
    pub id: Option<MonitorId>,

    /// The period, ending now.
    #[arg(long, value_parser = parse_duration, default_value = "30d")]
    pub since: Duration,

    /// One line per monitor or per model (a model probed by several monitors is summed).
    #[arg(long, value_enum, default_value_t = CostBy::Monitor)]
    pub by: CostBy,

    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// How `chanmon cost` groups its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostBy {
    Monitor,
    Model,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete raw rows older than this (default: `[retention] history`, 30d).
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Option<Duration>,

    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Reclaim disk space afterwards (rewrites the file; slower).
    #[arg(long)]
    pub vacuum: bool,

    /// Recompute the rollups from the raw rows first.
    #[arg(long)]
    pub rebuild_rollups: bool,

    /// Print nothing on success (for cron).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (its directory must exist).
    pub file: PathBuf,

    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,

    /// Print nothing on success (for cron).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Use SQLite's `quick_check` (skips index cross-checks; much faster on a big file).
    #[arg(long)]
    pub quick: bool,

    /// Print nothing when the database is sound (for cron: output means trouble).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// The new master key file; created (mode 0600, random key) when it does not exist.
    /// Alternatively set CHANMON_MASTER_KEY_NEW.
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<PathBuf>,

    /// Empty the stored secrets that neither key opens (their monitors then need a key in
    /// the config) instead of refusing.
    #[arg(long)]
    pub forget_unreadable: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The target: a `postgres://` URL of an empty database (or CHANMON_MIGRATE_TO, which keeps
    /// the password off the command line).
    #[arg(
        long,
        value_name = "URL",
        env = "CHANMON_MIGRATE_TO",
        hide_env_values = true
    )]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this monitor.
    #[arg(long, value_parser = parse_id)]
    pub monitor: Option<MonitorId>,

    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,

    /// From this time on: RFC 3339, a date, epoch ms, or a duration ago like `24h`.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<Timestamp>,

    /// Before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<Timestamp>,

    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A header line, then one line per row (the columns of `history --format csv`).
    Csv,
    /// One JSON object per line (the fields of `history --format json`).
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

pub(crate) fn parse_id(s: &str) -> Result<MonitorId, String> {
    MonitorId::parse(s)
}

pub(crate) fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
}

pub(crate) fn parse_location(s: &str) -> Result<String, String> {
    crate::model::check_location(s).map(|()| s.to_owned())
}

/// A location to filter by: a name, or `-` for results of no named location (stored as "").
pub(crate) fn parse_location_filter(s: &str) -> Result<String, String> {
    if s == "-" {
        Ok(String::new())
    } else {
        parse_location(s).map_err(|e| format!("{e}, or `-` for no location"))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); e.g. 90s, 5m, 24h, 30d"))
}

/// A point in time, or a duration before now.
pub(crate) fn parse_time(s: &str) -> Result<Timestamp, String> {
    match Timestamp::parse(s) {
        Ok(t) => Ok(t),
        Err(e) => match humantime::parse_duration(s) {
            Ok(d) => Ok(Timestamp::now().saturating_sub(d)),
            Err(_) => Err(format!("{e}; or a duration ago like 24h")),
        },
    }
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Renders `chanmon.1` and one page per visible subcommand (`chanmon-check.1`, …) as
/// (file name, roff bytes).
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let cmd = command();
    let mut pages = Vec::new();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    pages.push(("chanmon.1".to_owned(), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("chanmon-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buf)?;
        pages.push((format!("{name}.1"), buf));
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_consistent() {
        command().debug_assert();
    }

    #[test]
    fn check_needs_ids_or_all() {
        assert!(Cli::try_parse_from(["chanmon", "check"]).is_err());
        assert!(Cli::try_parse_from(["chanmon", "check", "--all"]).is_ok());
        assert!(Cli::try_parse_from(["chanmon", "check", "a", "--all"]).is_err());
        assert!(Cli::try_parse_from(["chanmon", "check", "Bad Id"]).is_err());
    }

    #[test]
    fn times_accept_durations_ago() {
        let now = Timestamp::now();
        let t = parse_time("1h").unwrap();
        assert!(t.millis() <= now.millis() - 3_599_000);
        assert!(parse_time("soon").is_err());
    }
}
