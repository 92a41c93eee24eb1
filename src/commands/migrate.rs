//! `chanmon migrate --to postgres://…`: the SQLite database of the config, copied into an
//! empty PostgreSQL database (see `store::copy_to_postgres`), with a count per table.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow};

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading, print};
use crate::cli::MigrateArgs;
use crate::store::{self, Database, PgUrl};

pub(super) fn migrate(config_path: &Path, args: MigrateArgs) -> Outcome {
    let config = load_config_for_reading(config_path)?;
    // The error never repeats the URL: it may hold a password.
    let target = PgUrl::parse(&args.to)
        .map_err(|e| anyhow!("--to: {e}"))
        .or_exit(EXIT_CONFIG)?;
    if !matches!(config.database, Database::Sqlite(_)) {
        return Err(anyhow!(
            "the config's database is {}, not a SQLite file: migrate copies a SQLite database into PostgreSQL (is CHANMON_DATABASE_URL set?)",
            config.database
        ))
        .or_exit(EXIT_CONFIG);
    }
    // Held for the copy: no daemon writes to the source meanwhile, nor starts on it.
    let _lock = store::daemon_lock(&config.database).or_exit(EXIT_RUNTIME)?;
    let to = Database::Postgres(target);
    let started = Instant::now();
    let counts = store::copy_to_postgres(&config.database, &to)
        .with_context(|| format!("copying {} into {to}", config.database))
        .or_exit(EXIT_RUNTIME)?;
    let mut out = format!(
        "copied {} into {to} in {:.1} s; rows per table (source = target):\n",
        config.database,
        started.elapsed().as_secs_f64()
    );
    for c in &counts {
        let _ = writeln!(out, "  {:<16} {:>12}", c.table, c.target);
    }
    let _ = write!(
        out,
        "Point chanmon at it with database = \"postgres://…\" (or CHANMON_DATABASE_URL) and the same master key."
    );
    print(&out);
    Ok(0)
}
