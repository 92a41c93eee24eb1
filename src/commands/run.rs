//! `chanmon run`: lock the database, sync the config, hand over to the daemon (and, with
//! `--listen` or `[http] listen`, start the HTTP side beside it).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config};
use crate::cli::RunArgs;
use crate::http::{self, Scheduler, refresh::Feed};
use crate::keys;
use crate::runner::Daemon;
use crate::store::{self, OpenMode};

/// How often the HTTP side reloads windows from the database (results in between arrive on
/// the bus).
const HTTP_RELOAD: Duration = Duration::from_secs(60);
/// Events the HTTP side may fall behind by before the bus drops (and counts) them.
const HTTP_QUEUE: usize = 10_000;

pub(super) async fn run(config_path: &Path, args: RunArgs) -> Outcome {
    let config = load_config(config_path, EXIT_CONFIG)?;
    // SQLite: one daemon per database. PostgreSQL: replicas share it (the lock, taken
    // shared, only keeps `rekey` away while they run).
    let _lock = store::replica_lock(&config.database).or_exit(EXIT_RUNTIME)?;
    let key = keys::master_key(&config, true)
        .or_exit(EXIT_RUNTIME)?
        .context("no master key")
        .or_exit(EXIT_RUNTIME)?;
    let mut db = store::open(&config.database, OpenMode::Create).or_exit(EXIT_RUNTIME)?;
    db.set_alert_plan(std::sync::Arc::new(config.alerts.plan(&config.monitors)));
    let monitors = keys::sync(db.as_mut(), &config.monitors, &key)
        .context("syncing the config into the database")
        .or_exit(EXIT_RUNTIME)?;
    // Bound before the daemon starts, so a taken port fails the start instead of a log line.
    let listen = args.listen.or(config.http.listen);
    let listener = match listen {
        Some(addr) => Some(http::bind(addr).await.or_exit(EXIT_RUNTIME)?),
        None => None,
    };
    let me = store::ReplicaReport {
        name: crate::runner::replica_name(),
        location: args
            .location
            .clone()
            .unwrap_or_else(|| config.runner.location.clone()),
        config_hash: crate::runner::config_hash(config_path),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let claims = store::claims(&config.database, &me).or_exit(EXIT_RUNTIME)?;
    if claims.is_some() {
        db.set_replica(&me.name);
    }
    let locks = store::probe_locks(&config.database);
    let http_config = listener.as_ref().map(|_| config.clone());
    let tick = config.runner.tick;
    let daemon = Daemon::new(config_path.to_owned(), config, monitors, db, key, locks)
        .or_exit(EXIT_RUNTIME)?
        .with_location(args.location);
    let daemon = match claims {
        Some(c) => {
            tracing::info!(replica = %me.name, location = %me.location, "running as a replica on a shared database");
            daemon.with_claims(c, me)
        }
        None => daemon,
    };
    let stop = CancellationToken::new();
    let server = match (listener, http_config) {
        (Some(listener), Some(cfg)) => {
            let feed = Feed::Bus(daemon.bus().subscribe("http", HTTP_QUEUE));
            let scheduler = Scheduler {
                metrics: daemon.metrics(),
                tick,
            };
            let state = http::start(&cfg, feed, HTTP_RELOAD, Some(scheduler), stop.clone());
            tracing::info!(listen = ?listen, "serving the status page");
            Some(tokio::spawn(http::serve(listener, state, stop.clone())))
        }
        _ => None,
    };
    let outcome = daemon.run().await;
    stop.cancel();
    if let Some(server) = server {
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server stopped with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "http server crashed"),
            Err(_) => tracing::warn!("http server did not stop within 5s"),
            Ok(Ok(Ok(()))) => {}
        }
    }
    outcome.or_exit(EXIT_RUNTIME)?;
    Ok(0)
}
