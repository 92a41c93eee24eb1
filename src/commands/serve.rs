//! `chanmon serve`: the HTTP side without the daemon. Reads the database through a read-only
//! connection (never migrates or writes it), polls it for new results, serves until SIGTERM
//! or SIGINT.

use std::path::Path;

use anyhow::anyhow;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading};
use crate::cli::ServeArgs;
use crate::http::{self, refresh::Feed};
use crate::store::{self, OpenMode};

pub(super) async fn serve(config_path: &Path, args: ServeArgs) -> Outcome {
    let config = load_config_for_reading(config_path)?;
    let addr = args
        .listen
        .or(config.http.listen)
        .ok_or_else(|| {
            anyhow!(
                "no address to serve on: pass --listen 127.0.0.1:9464 or set `listen` in [http]"
            )
        })
        .or_exit(EXIT_CONFIG)?;
    if args.poll < std::time::Duration::from_millis(200)
        || args.reload < std::time::Duration::from_secs(1)
    {
        return Err(anyhow!(
            "--poll must be at least 200ms and --reload at least 1s"
        ))
        .or_exit(EXIT_CONFIG);
    }
    // A missing or unreadable database is reported now, not as a page that never fills. An
    // older schema is brought up to date here, as `status` and `history` do: the read-only
    // loads after this read the current schema's columns.
    drop(store::open(&config.database, OpenMode::Existing).or_exit(EXIT_RUNTIME)?);
    let listener = http::bind(addr).await.or_exit(EXIT_RUNTIME)?;
    let stop = CancellationToken::new();
    stop_on_signals(stop.clone()).or_exit(EXIT_RUNTIME)?;
    let state = http::start(
        &config,
        Feed::Poll(args.poll),
        args.reload,
        None,
        stop.clone(),
    );
    tracing::info!(listen = %addr, database = %config.database, "serving the status page read-only");
    http::serve(listener, state, stop)
        .await
        .or_exit(EXIT_RUNTIME)?;
    tracing::info!("stopped");
    Ok(0)
}

/// SIGTERM or SIGINT stops the server gracefully.
fn stop_on_signals(stop: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.cancel();
    });
    Ok(())
}
