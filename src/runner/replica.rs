//! Replica mode: several daemons on one PostgreSQL database share the due checks.
//!
//! The database is the coordinator (see `store::Claims`): instead of taking due monitors
//! from its own schedule, the ticker claims due checks from the shared schedule each tick, no
//! more than its job queue has room for, and queues them with the slot they were due for. The
//! writer completes each claim in the transaction that records its results
//! (`Storage::set_replica`), so a slot is recorded once however many replicas run. A
//! heartbeat every [`HEARTBEAT`] records this replica (with its config hash) and reports
//! replicas whose config differs, once per change, in the log and in the metrics.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::metrics::Metrics;
use super::target::Target;
use crate::model::{MonitorId, Timestamp};
use crate::store::{Claim, Claims, ReplicaInfo, ReplicaReport, ScheduleEntry, StoreError};

/// How often a replica records itself alive and looks at the others.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(10);

/// Beyond a monitor's probe time (its timeout per model), how long a claim holds its slot:
/// the time from the claim to a worker, and from the reply to the commit.
const LEASE_MARGIN: Duration = Duration::from_secs(3);

/// A blocking database call under way (the ticker keeps these, one of each kind at most).
pub(super) type Pending<T> = Option<JoinHandle<Result<T, StoreError>>>;

/// This daemon as one replica of several.
pub(super) struct Replica {
    claims: Arc<Mutex<Box<dyn Claims>>>,
    me: ReplicaReport,
    config_path: PathBuf,
    targets: HashMap<MonitorId, Arc<Target>>,
    /// Claimed checks not finished yet (the in-flight figure).
    pub(super) outstanding: usize,
    /// Replicas last reported as running another config (logged when this set changes).
    differ: BTreeSet<String>,
    metrics: Arc<Metrics>,
}

/// `host/pid`: unique among live processes, readable in `status`.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}/{}", std::process::id())
}

/// The hash replicas compare: SHA-256 of the config file's bytes, 16 hex digits.
pub fn config_hash(path: &std::path::Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => Sha256::digest(&bytes)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect(),
        Err(_) => "unreadable".to_owned(),
    }
}

/// The schedule rows of `targets`: one per location a monitor lists, else one any replica
/// takes.
fn entries(targets: &[Arc<Target>]) -> Vec<ScheduleEntry> {
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let c = &t.monitor.config;
        let models = c.models().count().max(1) as u32;
        let lease = c.timeout.saturating_mul(models) + LEASE_MARGIN;
        let locations: Vec<&str> = if c.locations.is_empty() {
            vec![""]
        } else {
            c.locations.iter().map(String::as_str).collect()
        };
        for l in locations {
            out.push(ScheduleEntry {
                monitor: c.id.clone(),
                location: l.to_owned(),
                interval_ms: i64::try_from(c.interval.as_millis()).unwrap_or(i64::MAX),
                lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
            });
        }
    }
    out
}

/// Waits for a pending blocking call; never returns while none is pending.
pub(super) async fn wait<T>(pending: &mut Pending<T>) -> Result<T, StoreError> {
    let out = match pending.as_mut() {
        Some(h) => h.await,
        None => std::future::pending().await,
    };
    *pending = None;
    out.unwrap_or_else(|e| Err(StoreError::Backend(format!("database task failed: {e}"))))
}

impl Replica {
    pub(super) fn new(
        claims: Box<dyn Claims>,
        me: ReplicaReport,
        config_path: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Replica {
        Replica {
            claims: Arc::new(Mutex::new(claims)),
            me,
            config_path,
            targets: HashMap::new(),
            outstanding: 0,
            differ: BTreeSet::new(),
            metrics,
        }
    }

    /// Takes the monitors this replica can run and makes the shared schedule hold them (the
    /// config may have changed: its hash is taken again). Runs on a blocking thread; waits
    /// for it, so the first claim finds the schedule in place. The caller starts a heartbeat
    /// next, so the others hear of a new config hash at once.
    pub(super) async fn set_targets(&mut self, targets: &[Arc<Target>]) {
        self.targets = targets
            .iter()
            .map(|t| (t.monitor.config.id.clone(), t.clone()))
            .collect();
        let entries = entries(targets);
        let claims = self.claims.clone();
        let path = self.config_path.clone();
        let synced = tokio::task::spawn_blocking(move || {
            let hash = config_hash(&path);
            let mut c = claims.lock().unwrap_or_else(|p| p.into_inner());
            c.sync_schedule(&entries, Timestamp::now()).map(|()| hash)
        })
        .await;
        match synced {
            Ok(Ok(hash)) => {
                tracing::info!(
                    replica = %self.me.name, config_hash = %hash,
                    "shared schedule in sync with this config"
                );
                self.me.config_hash = hash;
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot sync the shared schedule"),
            Err(e) => tracing::error!(error = %e, "schedule sync task failed"),
        }
    }

    /// A claim of at most `room` due checks, on a blocking thread.
    pub(super) fn claim(&self, room: usize) -> JoinHandle<Result<Vec<Claim>, StoreError>> {
        let claims = self.claims.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = claims.lock().unwrap_or_else(|p| p.into_inner());
            c.claim(Timestamp::now(), room)
        })
    }

    /// The checks a claim got, with their targets. A claimed monitor this replica does not
    /// know (its config differs) is left to its lease.
    pub(super) fn claimed(
        &self,
        got: Result<Vec<Claim>, StoreError>,
    ) -> Vec<(Arc<Target>, Timestamp)> {
        match got {
            Ok(claims) => claims
                .into_iter()
                .filter_map(|c| match self.targets.get(&c.monitor) {
                    Some(t) => Some((t.clone(), c.slot)),
                    None => {
                        tracing::warn!(
                            monitor = %c.monitor,
                            "claimed a monitor this replica's config does not have; another replica will run it when the lease expires"
                        );
                        None
                    }
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot claim due checks from the shared schedule");
                Vec::new()
            }
        }
    }

    /// A heartbeat, on a blocking thread.
    pub(super) fn heartbeat(&self) -> JoinHandle<Result<Vec<ReplicaInfo>, StoreError>> {
        let (claims, me) = (self.claims.clone(), self.me.clone());
        tokio::task::spawn_blocking(move || {
            let mut c = claims.lock().unwrap_or_else(|p| p.into_inner());
            c.heartbeat(&me, Timestamp::now())
        })
    }

    /// Reports what a heartbeat saw: replicas with another config, loudly, once per change.
    pub(super) fn heard(&mut self, got: Result<Vec<ReplicaInfo>, StoreError>) {
        let replicas = match got {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "replica heartbeat failed");
                return;
            }
        };
        let differ: BTreeSet<String> = replicas
            .iter()
            .filter(|r| r.config_hash != self.me.config_hash)
            .map(|r| format!("{} ({}, config {})", r.name, r.location, r.config_hash))
            .collect();
        self.metrics
            .replicas_alive
            .store(replicas.len() as u64, Relaxed);
        self.metrics
            .replica_config_mismatch
            .store(differ.len() as u64, Relaxed);
        if differ != self.differ {
            if differ.is_empty() {
                tracing::info!(
                    replicas = replicas.len(),
                    "every replica runs the same config"
                );
            } else {
                let list: Vec<&str> = differ.iter().map(String::as_str).collect();
                tracing::error!(
                    config_hash = %self.me.config_hash,
                    others = %list.join(", "),
                    "REPLICAS RUN DIFFERENT CONFIGS: every replica must run the same config file (and master key); checks may be missed or run twice"
                );
            }
            self.differ = differ;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_slots_are_soon_and_spread() {
        let now = Timestamp(1_700_000_123_456);
        for interval in [10_000, 60_000, 3_600_000] {
            let a = crate::store::first_slot("m1", interval, now);
            assert!(a >= now && a.millis() - now.millis() < interval.min(60_000));
            // The same monitor gets the same offset from every replica.
            assert_eq!(a, crate::store::first_slot("m1", interval, now));
        }
        // Different monitors get different offsets (spread over the first minute).
        let offsets: BTreeSet<i64> = (0..50)
            .map(|i| crate::store::first_slot(&format!("m{i}"), 3_600_000, now).millis())
            .collect();
        assert!(offsets.len() > 40, "{offsets:?}");
    }

    #[test]
    fn the_config_hash_follows_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "a = 1\n").unwrap();
        let h1 = config_hash(&p);
        assert_eq!(h1.len(), 16);
        assert_eq!(h1, config_hash(&p));
        std::fs::write(&p, "a = 2\n").unwrap();
        assert_ne!(h1, config_hash(&p));
        assert_eq!(config_hash(&dir.path().join("missing")), "unreadable");
    }
}
