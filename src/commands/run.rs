//! `chanmon run`: lock the database, sync the config, hand over to the daemon.

use std::path::Path;

use anyhow::Context;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config, master_key};
use crate::runner::Daemon;
use crate::runner::lock::DaemonLock;
use crate::store::Store;

pub async fn run(config_path: &Path) -> Outcome {
    let config = load_config(config_path, EXIT_CONFIG)?;
    let _lock = DaemonLock::acquire(&config.database).or_exit(EXIT_RUNTIME)?;
    let key = master_key(&config, true)
        .or_exit(EXIT_RUNTIME)?
        .context("no master key")
        .or_exit(EXIT_RUNTIME)?;
    let mut store = Store::open(&config.database).or_exit(EXIT_RUNTIME)?;
    let monitors = store
        .sync_monitors(&config.monitors, &key)
        .context("syncing the config into the database")
        .or_exit(EXIT_RUNTIME)?;
    let daemon =
        Daemon::new(config_path.to_owned(), config, monitors, store, key).or_exit(EXIT_RUNTIME)?;
    daemon.run().await.or_exit(EXIT_RUNTIME)?;
    Ok(0)
}
