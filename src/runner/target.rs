//! The probe API that both the daemon and `chanmon check` use: prepare a target (its HTTP
//! client and redactor), then probe it under its cross-process lock, isolated so that a panic
//! becomes a verdict instead of taking the caller down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{KeyState, Monitor};
use crate::model::{CheckResult, Kind, MonitorId, Timestamp};
use crate::net::{HttpClient, NetError, NetworkPolicy};
use crate::probe;
use crate::redact::Redactor;
use crate::store::{ProbeGuard, ProbeLocks, StoreError};

/// A monitor prepared for probing: its HTTP client (per network policy) and its redactor.
#[derive(Debug)]
pub struct Target {
    pub monitor: Monitor,
    client: HttpClient,
    redactor: Arc<Redactor>,
}

/// Prepares targets and probes them. One per daemon, one per `check`.
pub struct Prober {
    /// One HTTP client per distinct network policy: clients pool connections, so monitors
    /// sharing a policy share a client.
    clients: Mutex<HashMap<NetworkPolicy, HttpClient>>,
    locks: Arc<dyn ProbeLocks>,
    model_concurrency: usize,
}

/// How to treat a monitor that another process is probing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// Wait for it to finish, then probe (`check`).
    Wait,
    /// Skip this run (the daemon: the other probe's result is recorded anyway).
    Skip,
}

impl Prober {
    pub fn new(locks: Arc<dyn ProbeLocks>, model_concurrency: usize) -> Prober {
        Prober {
            clients: Mutex::new(HashMap::new()),
            locks,
            model_concurrency,
        }
    }

    /// Forgets the cached clients (a reload may change network policies).
    pub fn reset_clients(&self) {
        self.lock_clients().clear();
    }

    /// Builds a target per monitor. A monitor whose client cannot be built (e.g. a bad proxy)
    /// is left out with an error in the log.
    pub fn prepare(&self, monitors: Vec<Monitor>) -> Vec<Arc<Target>> {
        let mut out = Vec::with_capacity(monitors.len());
        for monitor in monitors {
            match self.client(&monitor.config.network) {
                Ok(client) => {
                    let redactor = Arc::new(redactor_for(&monitor));
                    out.push(Arc::new(Target {
                        monitor,
                        client,
                        redactor,
                    }));
                }
                Err(e) => {
                    tracing::error!(monitor = %monitor.config.id, error = %e, "monitor skipped")
                }
            }
        }
        out
    }

    fn client(&self, policy: &NetworkPolicy) -> Result<HttpClient, NetError> {
        let mut clients = self.lock_clients();
        if let Some(c) = clients.get(policy) {
            return Ok(c.clone());
        }
        let c = HttpClient::new(policy)?;
        clients.insert(policy.clone(), c.clone());
        Ok(c)
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, HashMap<NetworkPolicy, HttpClient>> {
        // The map stays consistent even if a holder panicked: keep using it.
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Probes `target` under its lock. `Ok(None)`: busy elsewhere and `when_busy` is `Skip`.
    pub async fn probe(
        &self,
        target: Arc<Target>,
        when_busy: WhenBusy,
    ) -> Result<Option<Vec<CheckResult>>, StoreError> {
        match self.lock(&target.monitor.config.id, when_busy).await? {
            Some(guard) => Ok(Some(self.probe_held(target, guard).await)),
            None => Ok(None),
        }
    }

    /// Takes the monitor's cross-process probe lock. `Ok(None)`: busy elsewhere and
    /// `when_busy` is `Skip`.
    pub async fn lock(
        &self,
        id: &MonitorId,
        when_busy: WhenBusy,
    ) -> Result<Option<ProbeGuard>, StoreError> {
        match (self.locks.try_lock(id)?, when_busy) {
            (Some(g), _) => Ok(Some(g)),
            (None, WhenBusy::Skip) => Ok(None),
            (None, WhenBusy::Wait) => {
                tracing::info!(monitor = %id, "waiting for the running probe of this monitor to finish");
                let locks = self.locks.clone();
                let id = id.clone();
                let guard = tokio::task::spawn_blocking(move || locks.lock(&id))
                    .await
                    .map_err(|e| StoreError::Lock {
                        path: "the probe lock".into(),
                        message: e.to_string(),
                    })??;
                Ok(Some(guard))
            }
        }
    }

    /// Probes `target` while `guard` (its lock) is held; the lock is released at the end.
    pub async fn probe_held(&self, target: Arc<Target>, guard: ProbeGuard) -> Vec<CheckResult> {
        let results = self.probe_isolated(target).await;
        drop(guard);
        results
    }

    /// Probes in a task of its own, so a panic inside the probe becomes an `error`/`internal`
    /// result per model.
    async fn probe_isolated(&self, target: Arc<Target>) -> Vec<CheckResult> {
        let t = target.clone();
        let n = self.model_concurrency;
        isolate(&target.monitor, async move {
            probe::probe_monitor(&t.monitor, &t.client, t.redactor.clone(), n).await
        })
        .await
    }
}

/// The secrets a monitor's messages must never show: its key and its header values.
fn redactor_for(monitor: &Monitor) -> Redactor {
    let key = match &monitor.key {
        KeyState::Ready(s) => Some(s.expose()),
        KeyState::Unavailable(_) => None,
    };
    Redactor::new(
        key.into_iter()
            .chain(monitor.config.headers.iter().map(|(_, v)| v.expose())),
    )
}

async fn isolate<F>(monitor: &Monitor, probe: F) -> Vec<CheckResult>
where
    F: Future<Output = Vec<CheckResult>> + Send + 'static,
{
    let started_at = Timestamp::now();
    let mut task = AbortOnDrop(tokio::spawn(probe));
    match (&mut task.0).await {
        Ok(results) => results,
        Err(e) => {
            let why = if e.is_panic() {
                "the probe crashed (a bug in chanmon; please report it)"
            } else {
                "the probe was cancelled"
            };
            tracing::error!(monitor = %monitor.config.id, "{why}");
            monitor
                .config
                .models()
                .map(|model| {
                    CheckResult::error(
                        monitor.config.id.clone(),
                        model.to_owned(),
                        started_at,
                        Kind::Internal,
                        why.to_owned(),
                    )
                })
                .collect()
        }
    }
}

/// Aborts the probe task when its caller gives up on it (shutdown grace over), so an abandoned
/// probe does not run on in the background.
struct AbortOnDrop(tokio::task::JoinHandle<Vec<CheckResult>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn monitor() -> Monitor {
        let text = "[[monitor]]\nid = \"m\"\nprovider = \"openai\"\nendpoint = \"https://api.example.com\"\napi_key = \"sk-abc\"\nmodel = \"a\"\nextra_models = [\"b\"]\nheaders = { x-token = \"tok-123\" }\n";
        let loaded = crate::config::parse(text, std::path::Path::new("t.toml"), &|_| None).unwrap();
        let config = loaded.config.monitors.into_iter().next().unwrap();
        Monitor {
            config,
            key: KeyState::Ready(crate::secret::Secret::new("sk-abc")),
        }
    }

    #[tokio::test]
    async fn a_panicking_probe_becomes_an_internal_error_per_model() {
        let m = monitor();
        let results = isolate(&m, async { panic!("boom") }).await;
        assert_eq!(results.len(), 2);
        assert!(
            results
                .iter()
                .all(|r| r.status == Status::Error && r.kind == Kind::Internal)
        );
        assert_eq!(results[1].model, "b");
    }

    /// A fleet must not build a client (a connection pool, a TLS config) per monitor:
    /// monitors with the same network and TLS settings share one, and the config reads a PEM
    /// file named by thousands of `[monitor.network]` tables once.
    #[tokio::test]
    async fn monitors_with_the_same_tls_settings_share_one_client() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap().pem();
        std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!(
                "[[monitor]]\nid = \"m{i}\"\nprovider = \"openai\"\nendpoint = \"https://api{i}.example.com/v1\"\napi_key = \"k\"\nmodel = \"a\"\n"
            ));
            if i % 2 == 0 {
                text.push_str("[monitor.network]\nca_file = \"ca.pem\"\n");
            }
        }
        let path = dir.path().join("monitors.toml");
        let loaded = crate::config::parse(&text, &path, &|_| None).unwrap();
        let monitors: Vec<Monitor> = loaded
            .config
            .monitors
            .into_iter()
            .map(|config| Monitor {
                config,
                key: KeyState::Ready(crate::secret::Secret::new("k")),
            })
            .collect();
        let locks =
            crate::store::probe_locks(&crate::store::Database::Sqlite(dir.path().join("c.db")));
        let prober = Prober::new(locks, 4);
        let targets = prober.prepare(monitors);
        assert_eq!(targets.len(), 2000);
        assert_eq!(
            prober.lock_clients().len(),
            2,
            "one client per distinct setting"
        );
    }

    #[test]
    fn the_redactor_covers_the_key_and_header_values() {
        let r = redactor_for(&monitor());
        let out = r.redact("key sk-abc and token tok-123");
        assert!(!out.contains("sk-abc") && !out.contains("tok-123"), "{out}");
    }
}
