//! One function per subcommand: glue between the CLI, the config, the store and the runner.
//! Errors carry the exit code they map to; `main` prints them.

mod alert;
mod backup;
mod check;
mod cost;
mod export;
mod history;
mod incidents;
mod migrate;
mod prune;
mod rekey;
mod run;
mod serve;
mod status;
mod validate;
mod verify;

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;

use crate::cli::{Cli, ColorChoice, Command, OutputFormat};
use crate::config::{self, Config};
use crate::report::Format;

/// A command failed: what to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

pub type Outcome = Result<i32, Failure>;

/// Exit code for runtime failures (database, I/O).
pub const EXIT_RUNTIME: i32 = 1;
/// Exit code for a bad config or bad usage.
pub const EXIT_CONFIG: i32 = 2;

pub(crate) trait OrExit<T> {
    fn or_exit(self, code: i32) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for Result<T, E> {
    fn or_exit(self, code: i32) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            code,
            error: e.into(),
        })
    }
}

/// The default log filter for a command: the daemon reports its life at info; one-shot
/// commands stay quiet unless something is wrong.
pub fn default_log_filter(cmd: &Command) -> &'static str {
    match cmd {
        Command::Run(_) | Command::Serve(_) => "info",
        _ => "warn",
    }
}

pub async fn dispatch(cli: Cli) -> Outcome {
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    match cli.command {
        Command::Run(args) => run::run(&cli.config, args).await,
        Command::Serve(args) => serve::serve(&cli.config, args).await,
        Command::Check(args) => check::check(&cli.config, args, color).await,
        Command::History(args) => history::history(&cli.config, args, color),
        Command::Status(args) => status::status(&cli.config, args, color),
        Command::Prune(args) => prune::prune(&cli.config, args),
        Command::Validate => validate::validate(&cli.config),
        Command::Cost(args) => cost::cost(&cli.config, args),
        Command::Backup(args) => backup::backup(&cli.config, args),
        Command::Verify(args) => verify::verify(&cli.config, args),
        Command::Rekey(args) => rekey::rekey(&cli.config, args),
        Command::Export(args) => export::export(&cli.config, args),
        Command::Migrate(args) => migrate::migrate(&cli.config, args),
        Command::Incidents(args) => incidents::incidents(&cli.config, args, color),
        Command::Alert(cmd) => alert::alert(&cli.config, cmd).await,
        Command::Man { out_dir } => write_man(&out_dir),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut crate::cli::command(), "chanmon", &mut out);
            // Written by hand: a closed pipe (`| head`) must not panic.
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out);
            Ok(0)
        }
    }
}

/// Loads the config, logging its warnings. Failure exits with `code`.
pub(crate) fn load_config(path: &Path, code: i32) -> Result<Config, Failure> {
    let loaded = config::load(path).or_exit(code)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded.config)
}

/// Loads the config for a command that only reads the database: its warnings (about keys
/// and endpoints) concern probing, not reading, and would only be noise here.
pub(crate) fn load_config_for_reading(path: &Path) -> Result<Config, Failure> {
    Ok(config::load(path).or_exit(EXIT_CONFIG)?.config)
}

pub(crate) fn format_of(f: OutputFormat) -> Format {
    match f {
        OutputFormat::Table => Format::Table,
        OutputFormat::Json => Format::Json,
        OutputFormat::Csv => Format::Csv,
    }
}

/// Writes to stdout; a closed pipe ends quietly instead of panicking.
pub(crate) fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.is_empty() && !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// `1 monitor`, `2 monitors`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn write_man(dir: &Path) -> Outcome {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .or_exit(EXIT_RUNTIME)?;
    for (name, bytes) in crate::cli::man_pages().or_exit(EXIT_RUNTIME)? {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .with_context(|| format!("writing {}", path.display()))
            .or_exit(EXIT_RUNTIME)?;
    }
    Ok(0)
}
