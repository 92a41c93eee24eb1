//! `chanmon backup FILE`: one consistent, checked copy of the database while the daemon runs.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow};

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading, print};
use crate::cli::BackupArgs;
use crate::store::{self, OpenMode};

pub(super) fn backup(config_path: &Path, args: BackupArgs) -> Outcome {
    let config = load_config_for_reading(config_path)?;
    if !args.force && args.file.exists() {
        return Err(anyhow!(
            "{} already exists; choose a new file, or pass --force to replace it",
            args.file.display()
        ))
        .or_exit(EXIT_CONFIG);
    }
    // Read only: the backup never migrates or otherwise touches the database.
    let store = store::open(&config.database, OpenMode::ReadOnly).or_exit(EXIT_RUNTIME)?;
    let started = Instant::now();
    let report = store
        .backup_to(&args.file, args.force)
        .with_context(|| format!("backing up {}", config.database))
        .or_exit(EXIT_RUNTIME)?;
    if !args.quiet {
        print(&format!(
            "backed up {} to {} ({:.1} MiB in {:.1} s; the copy passed {}). It holds sealed API keys: keep the master key with it.",
            config.database,
            args.file.display(),
            report.bytes as f64 / 1_048_576.0,
            started.elapsed().as_secs_f64(),
            report.checked,
        ));
    }
    Ok(0)
}
