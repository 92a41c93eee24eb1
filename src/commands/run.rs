//! `chanmon run`: lock the database, sync the config, hand over to the daemon.

use std::path::Path;

use anyhow::Context;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config};
use crate::keys;
use crate::runner::Daemon;
use crate::store::{self, OpenMode};

pub(super) async fn run(config_path: &Path) -> Outcome {
    let config = load_config(config_path, EXIT_CONFIG)?;
    let _lock = store::daemon_lock(&config.database).or_exit(EXIT_RUNTIME)?;
    let key = keys::master_key(&config, true)
        .or_exit(EXIT_RUNTIME)?
        .context("no master key")
        .or_exit(EXIT_RUNTIME)?;
    let mut db = store::open(&config.database, OpenMode::Create).or_exit(EXIT_RUNTIME)?;
    db.set_alert_plan(std::sync::Arc::new(config.alerts.plan(&config.monitors)));
    let monitors = keys::sync(db.as_mut(), &config.monitors, &key)
        .context("syncing the config into the database")
        .or_exit(EXIT_RUNTIME)?;
    let locks = store::probe_locks(&config.database);
    let daemon = Daemon::new(config_path.to_owned(), config, monitors, db, key, locks)
        .or_exit(EXIT_RUNTIME)?;
    daemon.run().await.or_exit(EXIT_RUNTIME)?;
    Ok(0)
}
