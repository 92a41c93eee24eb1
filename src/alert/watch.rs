//! Watching the watcher: chanmon's own trouble (dropped checks, write failures, the scheduler
//! falling behind, dead letters) sent through the same sinks, an outbound heartbeat (a dead
//! man's switch such as Healthchecks) and systemd's `sd_notify`.
//!
//! [`troubles`] is pure: it compares two readings of the counters. The daemon's watch task
//! reads them every `watch_every`, queues an `internal` event per trouble (at most one per kind
//! an hour) in the outbox, and pings the heartbeat only while nothing is wrong with writing.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::deliver::DrainCtx;
use super::{AlertEvent, EventKind};
use crate::model::Timestamp;
use crate::net::HttpClient;

/// The counters trouble is read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Health {
    pub dropped: u64,
    pub write_failures: u64,
    pub started_on_time: u64,
    pub started_late: u64,
    pub dead_letters: u64,
}

/// One kind of trouble and what to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trouble {
    pub kind: &'static str,
    pub message: String,
}

/// What went wrong between two readings. "Behind" means more than half of at least ten probe
/// starts came later than a tick after their due time.
pub(crate) fn troubles(prev: &Health, now: &Health) -> Vec<Trouble> {
    let d = |a: u64, b: u64| b.saturating_sub(a);
    let mut out = Vec::new();
    let dropped = d(prev.dropped, now.dropped);
    if dropped > 0 {
        out.push(Trouble {
            kind: "dropped_checks",
            message: format!("{dropped} check(s) dropped: the job queue was full (raise [runner] workers or queue)"),
        });
    }
    let failed = d(prev.write_failures, now.write_failures);
    if failed > 0 {
        out.push(Trouble {
            kind: "write_failures",
            message: format!("{failed} result(s) could not be written to the database"),
        });
    }
    let late = d(prev.started_late, now.started_late);
    let on_time = d(prev.started_on_time, now.started_on_time);
    if late + on_time >= 10 && late * 2 > late + on_time {
        out.push(Trouble {
            kind: "scheduler_behind",
            message: format!(
                "the scheduler is behind: {late} of {} probes started late",
                late + on_time
            ),
        });
    }
    let dead = d(prev.dead_letters, now.dead_letters);
    if dead > 0 {
        out.push(Trouble {
            kind: "dead_letters",
            message: format!(
                "{dead} alert(s) could not be delivered after every retry (see `chanmon incidents`)"
            ),
        });
    }
    out
}

/// The event for one trouble; its id is stable within the hour, so two daemons' worth of
/// the same trouble (or a restart) make one row per sink.
pub(crate) fn trouble_event(t: &Trouble, now: Timestamp) -> AlertEvent {
    let hour = now.millis().div_euclid(3_600_000);
    AlertEvent {
        event_id: format!("chanmon:{}:{hour}", t.kind),
        event: EventKind::Internal,
        incident: String::new(),
        monitor: "chanmon".into(),
        monitor_name: "chanmon".into(),
        model: t.kind.into(),
        status: "error".into(),
        kind: "internal".into(),
        message: t.message.clone(),
        since_ms: now.millis(),
        at_ms: now.millis(),
        duration_ms: 0,
    }
}

/// The outbound heartbeat (`[heartbeat]`).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub url: crate::secret::Secret,
    pub every: Duration,
    pub network: crate::net::NetworkPolicy,
}

/// What the watch task needs.
pub(crate) struct Watch {
    pub read: Box<dyn Fn() -> Health + Send + Sync>,
    pub every: Duration,
    /// Where trouble goes (`[alerts] sinks`); empty: logged only.
    pub sinks: Vec<String>,
    pub drain: Option<DrainCtx>,
    pub heartbeat: Option<Heartbeat>,
}

impl Watch {
    /// Runs until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let client = self
            .heartbeat
            .as_ref()
            .and_then(|h| match HttpClient::new(&h.network) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "heartbeat disabled: cannot build its client");
                    None
                }
            });
        let every = match &self.heartbeat {
            Some(h) => self.every.min(h.every),
            None => self.every,
        };
        let mut prev = (self.read)();
        let mut last_sent: HashMap<&'static str, Instant> = HashMap::new();
        let mut last_check = Instant::now();
        let mut healthy = true;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if last_check.elapsed() >= self.every {
                last_check = Instant::now();
                let now = (self.read)();
                let found = troubles(&prev, &now);
                healthy = !found.iter().any(|t| t.kind == "write_failures");
                prev = now;
                self.report(found, &mut last_sent).await;
            }
            if let (Some(h), Some(c)) = (&self.heartbeat, &client)
                && healthy
            {
                ping(c, h).await;
            }
        }
    }

    async fn report(&self, found: Vec<Trouble>, last_sent: &mut HashMap<&'static str, Instant>) {
        for t in found {
            tracing::warn!(trouble = t.kind, "{}", t.message);
            if last_sent
                .get(t.kind)
                .is_some_and(|at| at.elapsed() < Duration::from_secs(3600))
            {
                continue;
            }
            last_sent.insert(t.kind, Instant::now());
            let (Some(d), false) = (&self.drain, self.sinks.is_empty()) else {
                continue;
            };
            let e = trouble_event(&t, Timestamp::now());
            let sinks = self.sinks.clone();
            let store = d.store.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut s = store.lock().map_err(|_| "store lock poisoned".to_owned())?;
                s.enqueue_event(&sinks, &e).map_err(|e| e.to_string())
            })
            .await;
            if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
                tracing::error!(error = %e, "queueing a self-alert failed");
            }
        }
    }
}

async fn ping(client: &HttpClient, h: &Heartbeat) {
    let Ok(url) = url::Url::parse(h.url.expose()) else {
        return;
    };
    let req = match client.request(reqwest::Method::GET, url) {
        Ok(r) => r.timeout(Duration::from_secs(10)),
        Err(b) => {
            tracing::warn!(error = %b, "heartbeat refused by its network policy");
            return;
        }
    };
    match req.send().await {
        Ok(r) if r.status().is_success() => tracing::debug!("heartbeat sent"),
        Ok(r) => tracing::warn!(status = r.status().as_u16(), "heartbeat not accepted"),
        Err(e) => {
            tracing::warn!(error = %crate::net::classify_error(&e.without_url()).1, "heartbeat failed")
        }
    }
}

/// systemd's notification socket (`Type=notify`): `READY=1` once started, `WATCHDOG=1` at half
/// the watchdog interval, `STOPPING=1` on the way out. Absent `NOTIFY_SOCKET`, it does nothing.
#[derive(Debug, Clone)]
pub(crate) struct SdNotify {
    socket: Option<Arc<String>>,
    /// Half of `WATCHDOG_USEC`, when systemd asks for keep-alives.
    pub watchdog: Option<Duration>,
}

impl SdNotify {
    pub(crate) fn from_env() -> SdNotify {
        Self::from_vars(
            std::env::var("NOTIFY_SOCKET").ok(),
            std::env::var("WATCHDOG_USEC").ok(),
        )
    }

    pub(crate) fn from_vars(socket: Option<String>, watchdog_usec: Option<String>) -> SdNotify {
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0)
            .map(|u| Duration::from_micros(u / 2));
        SdNotify {
            socket: socket.filter(|s| !s.is_empty()).map(Arc::new),
            watchdog,
        }
    }

    /// Sends one state line; failures are logged, never fatal.
    pub(crate) fn notify(&self, state: &str) {
        let Some(path) = &self.socket else { return };
        if let Err(e) = send(path, state) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    /// Sends `WATCHDOG=1` at the interval systemd asked for, until `stop`.
    pub(crate) async fn watchdog(self, stop: CancellationToken) {
        let Some(every) = self.watchdog else { return };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => self.notify("WATCHDOG=1"),
            }
        }
    }
}

fn send(path: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        // An abstract socket (Linux): the name without the leading '@'.
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::Error::other("abstract sockets need Linux"));
        }
    }
    sock.send_to(state.as_bytes(), path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn troubles_come_from_counter_deltas() {
        let a = Health::default();
        assert!(troubles(&a, &a).is_empty());
        let b = Health {
            dropped: 3,
            write_failures: 1,
            started_on_time: 2,
            started_late: 9,
            dead_letters: 1,
        };
        let kinds: Vec<&str> = troubles(&a, &b).iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                "dropped_checks",
                "write_failures",
                "scheduler_behind",
                "dead_letters"
            ]
        );
        let few_late = Health {
            started_late: 4,
            started_on_time: 1,
            ..a
        };
        assert!(
            troubles(&a, &few_late).is_empty(),
            "too few starts to judge"
        );
        let e = trouble_event(&troubles(&a, &b)[0], Timestamp(7_200_000));
        assert_eq!(e.event_id, "chanmon:dropped_checks:2");
    }

    #[test]
    fn sd_notify_reaches_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = SdNotify::from_vars(
            Some(path.to_string_lossy().into_owned()),
            Some("10000000".into()),
        );
        assert_eq!(n.watchdog, Some(Duration::from_secs(5)));
        n.notify("READY=1");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        let off = SdNotify::from_vars(None, None);
        off.notify("READY=1"); // nothing to send to: a no-op
        assert_eq!(off.watchdog, None);
    }
}
