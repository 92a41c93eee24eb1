//! `chanmon alert test <sink>`: one test notification through the real sending path (same
//! request shape, same guarded client, same signature), the receiver's answer printed.

use std::path::Path;

use anyhow::anyhow;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config, print};
use crate::alert::event::Notification;
use crate::alert::{AlertEvent, EventKind, Sender};
use crate::cli::AlertCommand;
use crate::model::Timestamp;

pub(super) async fn alert(config_path: &Path, cmd: AlertCommand) -> Outcome {
    match cmd {
        AlertCommand::Test { sink } => test(config_path, &sink).await,
    }
}

async fn test(config_path: &Path, id: &str) -> Outcome {
    let config = load_config(config_path, EXIT_CONFIG)?;
    if config.alerts.sink(id).is_none() {
        let known: Vec<&str> = config.alerts.sinks.iter().map(|s| s.id.as_str()).collect();
        return Err(anyhow!(
            "no [[alert]] with id `{id}` in {}; sinks: {}",
            config.path.display(),
            if known.is_empty() {
                "(none)".into()
            } else {
                known.join(", ")
            }
        ))
        .or_exit(EXIT_CONFIG);
    }
    let sender = Sender::new(&config.alerts.sinks, config.alerts.status_page.clone())
        .map_err(|e| anyhow!(e))
        .or_exit(EXIT_RUNTIME)?;
    let now = Timestamp::now();
    let event_id = format!("test-{:016x}", fastrand::u64(..));
    let n = Notification {
        event_id: event_id.clone(),
        events: vec![AlertEvent {
            event_id,
            event: EventKind::Test,
            incident: String::new(),
            monitor: "chanmon".into(),
            monitor_name: "chanmon".into(),
            model: "test notification".into(),
            status: "operational".into(),
            kind: "ok".into(),
            message: format!("a test of alert sink `{id}`; nothing is wrong"),
            since_ms: now.millis(),
            at_ms: now.millis(),
            duration_ms: 0,
        }],
        status_page: config.alerts.status_page.clone(),
    };
    match sender.send(id, &n).await {
        Ok(a) => {
            let how = match config.alerts.sink(id).map(|s| s.kind) {
                Some(crate::alert::SinkKind::Command) => "exit 0".to_owned(),
                Some(crate::alert::SinkKind::Email) => format!("SMTP {}", a.status),
                _ => format!("HTTP {}", a.status),
            };
            print(&format!("sink `{id}`: {how} {}", a.body));
            Ok(0)
        }
        Err(e) => Err(anyhow!("sink `{id}`: {e}")).or_exit(EXIT_RUNTIME),
    }
}
