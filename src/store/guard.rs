//! Damage is sticky: once a backend reports the database as malformed, the store that saw it
//! refuses every later write, so a daemon or a command never keeps writing to a damaged file.
//!
//! [`DamageGuard`] wraps any backend: every call passes through; a
//! [`StoreError::Damaged`] coming back is remembered (and named with the database), and from
//! then on writes fail at once with the same error. Reads still run: they may succeed on the
//! pages that are sound, and `verify` needs them.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use super::{
    BackupReport, ExportQuery, HistoryQuery, MonitorRow, Reseal, RollupAudit, SealedSecret,
    StatusRow, Storage, StoreError, StoredMonitor, StoredSecrets, SyncReport, TrackedSeries,
    WindowStats,
};
use crate::model::{CheckResult, MonitorId, Timestamp};
use crate::official::OfficialStatus;
use crate::pipeline::tracker::StatusChange;

pub(super) struct DamageGuard<S> {
    inner: S,
    /// The database, as errors name it.
    db: String,
    /// What the backend said when it first reported damage.
    damaged: OnceCell<String>,
}

impl<S: Storage> DamageGuard<S> {
    pub(super) fn new(inner: S, db: String) -> DamageGuard<S> {
        DamageGuard {
            inner,
            db,
            damaged: OnceCell::new(),
        }
    }

    /// Names the database in a damage report and remembers it.
    fn seen<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        r.map_err(|e| match e {
            StoreError::Damaged { path, detail } => {
                let _ = self.damaged.set(detail.clone());
                StoreError::Damaged {
                    path: if path.is_empty() {
                        self.db.clone()
                    } else {
                        path
                    },
                    detail,
                }
            }
            other => other,
        })
    }

    /// Refuses to write once damage has been seen.
    fn writable(&self) -> Result<(), StoreError> {
        match self.damaged.get() {
            Some(detail) => Err(StoreError::Damaged {
                path: self.db.clone(),
                detail: detail.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl<S: Storage> Storage for DamageGuard<S> {
    fn set_alert_plan(&mut self, plan: std::sync::Arc<crate::alert::AlertPlan>) {
        self.inner.set_alert_plan(plan);
    }

    fn set_replica(&mut self, name: &str) {
        self.inner.set_replica(name);
    }

    fn replicas(&self, since: Timestamp) -> Result<Vec<crate::store::ReplicaInfo>, StoreError> {
        self.inner.replicas(since)
    }

    fn due_deliveries(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<crate::store::Delivery>, StoreError> {
        self.seen(self.inner.due_deliveries(now, limit))
    }

    fn finish_deliveries(
        &mut self,
        pks: &[i64],
        outcome: &crate::store::DeliveryOutcome,
    ) -> Result<(), StoreError> {
        self.writable()?;
        let r = self.inner.finish_deliveries(pks, outcome);
        self.seen(r)
    }

    fn enqueue_event(
        &mut self,
        sinks: &[String],
        event: &crate::alert::AlertEvent,
    ) -> Result<(), StoreError> {
        self.writable()?;
        let r = self.inner.enqueue_event(sinks, event);
        self.seen(r)
    }

    fn incidents(
        &self,
        q: &crate::store::IncidentQuery,
    ) -> Result<Vec<crate::store::IncidentRow>, StoreError> {
        self.seen(self.inner.incidents(q))
    }

    fn outbox_counts(&self) -> Result<crate::store::OutboxCounts, StoreError> {
        self.seen(self.inner.outbox_counts())
    }

    fn stored_secrets(&self) -> Result<HashMap<String, StoredSecrets>, StoreError> {
        self.seen(self.inner.stored_secrets())
    }

    fn sync_monitors(&mut self, rows: &[MonitorRow]) -> Result<SyncReport, StoreError> {
        self.writable()?;
        let r = self.inner.sync_monitors(rows);
        self.seen(r)
    }

    fn monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
        self.seen(self.inner.monitors())
    }

    fn insert_results(&mut self, results: &[CheckResult]) -> Result<Vec<StatusChange>, StoreError> {
        self.writable()?;
        let r = self.inner.insert_results(results);
        self.seen(r)
    }

    fn history(&self, q: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError> {
        self.seen(self.inner.history(q))
    }

    fn status(
        &self,
        monitor: Option<&MonitorId>,
        now: Timestamp,
        windows: &[Duration],
    ) -> Result<Vec<StatusRow>, StoreError> {
        self.seen(self.inner.status(monitor, now, windows))
    }

    fn tracker(&self) -> Result<Vec<TrackedSeries>, StoreError> {
        self.seen(self.inner.tracker())
    }

    fn put_official_status(&mut self, s: &OfficialStatus) -> Result<(), StoreError> {
        self.writable()?;
        let r = self.inner.put_official_status(s);
        self.seen(r)
    }

    fn official_statuses(&self) -> Result<HashMap<String, OfficialStatus>, StoreError> {
        self.seen(self.inner.official_statuses())
    }

    fn bucket_summaries(
        &self,
        from: Timestamp,
        daily: bool,
    ) -> Result<Vec<super::BucketSummary>, StoreError> {
        self.seen(self.inner.bucket_summaries(from, daily))
    }

    fn window_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        self.seen(self.inner.window_stats(monitor, model, from, to))
    }

    fn raw_stats(
        &self,
        monitor: &MonitorId,
        model: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<WindowStats, StoreError> {
        self.seen(self.inner.raw_stats(monitor, model, from, to))
    }

    fn timeline(
        &self,
        monitor: &MonitorId,
        model: &str,
        n: usize,
    ) -> Result<Vec<CheckResult>, StoreError> {
        self.seen(self.inner.timeline(monitor, model, n))
    }

    fn prune(
        &mut self,
        now: Timestamp,
        history: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        self.writable()?;
        let r = self.inner.prune(now, history, dry_run);
        self.seen(r)
    }

    fn prune_rollups(
        &mut self,
        now: Timestamp,
        retention: Duration,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        self.writable()?;
        let r = self.inner.prune_rollups(now, retention, dry_run);
        self.seen(r)
    }

    fn rebuild_rollups(&mut self) -> Result<u64, StoreError> {
        self.writable()?;
        let r = self.inner.rebuild_rollups();
        self.seen(r)
    }

    fn vacuum(&mut self) -> Result<(), StoreError> {
        self.writable()?;
        let r = self.inner.vacuum();
        self.seen(r)
    }

    fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        self.seen(self.inner.sealed_secrets())
    }

    fn reseal(&mut self, changes: &[Reseal]) -> Result<(), StoreError> {
        self.writable()?;
        let r = self.inner.reseal(changes);
        self.seen(r)
    }

    fn backup_to(&self, dest: &Path, overwrite: bool) -> Result<BackupReport, StoreError> {
        // A copy of a damaged database is no backup.
        self.writable()?;
        self.seen(self.inner.backup_to(dest, overwrite))
    }

    fn check_integrity(&self, quick: bool) -> Result<Vec<String>, StoreError> {
        self.seen(self.inner.check_integrity(quick))
    }

    fn audit_rollups(&self) -> Result<RollupAudit, StoreError> {
        self.seen(self.inner.audit_rollups())
    }

    fn export(
        &self,
        q: &ExportQuery,
        each: &mut dyn FnMut(CheckResult) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        self.seen(self.inner.export(q, each))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that reports damage on every insert and counts the writes it was asked for.
    #[derive(Default)]
    struct Broken {
        writes: usize,
    }

    impl Storage for Broken {
        fn set_alert_plan(&mut self, _: std::sync::Arc<crate::alert::AlertPlan>) {}
        fn due_deliveries(
            &self,
            _: Timestamp,
            _: usize,
        ) -> Result<Vec<crate::store::Delivery>, StoreError> {
            Ok(Vec::new())
        }
        fn finish_deliveries(
            &mut self,
            _: &[i64],
            _: &crate::store::DeliveryOutcome,
        ) -> Result<(), StoreError> {
            self.writes += 1;
            Ok(())
        }
        fn enqueue_event(
            &mut self,
            _: &[String],
            _: &crate::alert::AlertEvent,
        ) -> Result<(), StoreError> {
            self.writes += 1;
            Ok(())
        }
        fn incidents(
            &self,
            _: &crate::store::IncidentQuery,
        ) -> Result<Vec<crate::store::IncidentRow>, StoreError> {
            Ok(Vec::new())
        }
        fn outbox_counts(&self) -> Result<crate::store::OutboxCounts, StoreError> {
            Ok(Default::default())
        }
        fn stored_secrets(&self) -> Result<HashMap<String, StoredSecrets>, StoreError> {
            Ok(HashMap::new())
        }
        fn sync_monitors(&mut self, _: &[MonitorRow]) -> Result<SyncReport, StoreError> {
            self.writes += 1;
            Ok(SyncReport::default())
        }
        fn monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
            Ok(Vec::new())
        }
        fn insert_results(&mut self, _: &[CheckResult]) -> Result<Vec<StatusChange>, StoreError> {
            self.writes += 1;
            Err(StoreError::Damaged {
                path: String::new(),
                detail: "SQLite says: database disk image is malformed".into(),
            })
        }
        fn history(&self, _: &HistoryQuery) -> Result<Vec<CheckResult>, StoreError> {
            Ok(Vec::new())
        }
        fn put_official_status(&mut self, _: &OfficialStatus) -> Result<(), StoreError> {
            self.writes += 1;
            Ok(())
        }
        fn official_statuses(&self) -> Result<HashMap<String, OfficialStatus>, StoreError> {
            Ok(HashMap::new())
        }
        fn status(
            &self,
            _: Option<&MonitorId>,
            _: Timestamp,
            _: &[Duration],
        ) -> Result<Vec<StatusRow>, StoreError> {
            Ok(Vec::new())
        }
        fn tracker(&self) -> Result<Vec<TrackedSeries>, StoreError> {
            Ok(Vec::new())
        }
        fn window_stats(
            &self,
            _: &MonitorId,
            _: &str,
            _: Timestamp,
            _: Timestamp,
        ) -> Result<WindowStats, StoreError> {
            Ok(WindowStats::default())
        }
        fn raw_stats(
            &self,
            _: &MonitorId,
            _: &str,
            _: Timestamp,
            _: Timestamp,
        ) -> Result<WindowStats, StoreError> {
            Ok(WindowStats::default())
        }
        fn prune(&mut self, _: Timestamp, _: Duration, _: bool) -> Result<u64, StoreError> {
            self.writes += 1;
            Ok(0)
        }
        fn prune_rollups(&mut self, _: Timestamp, _: Duration, _: bool) -> Result<u64, StoreError> {
            self.writes += 1;
            Ok(0)
        }
        fn rebuild_rollups(&mut self) -> Result<u64, StoreError> {
            self.writes += 1;
            Ok(0)
        }
        fn vacuum(&mut self) -> Result<(), StoreError> {
            self.writes += 1;
            Ok(())
        }
        fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
            Ok(Vec::new())
        }
        fn reseal(&mut self, _: &[Reseal]) -> Result<(), StoreError> {
            self.writes += 1;
            Ok(())
        }
        fn backup_to(&self, _: &Path, _: bool) -> Result<BackupReport, StoreError> {
            Ok(BackupReport {
                bytes: 0,
                checked: String::new(),
            })
        }
        fn check_integrity(&self, _: bool) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
        fn audit_rollups(&self) -> Result<RollupAudit, StoreError> {
            Ok(RollupAudit::default())
        }
        fn export(
            &self,
            _: &ExportQuery,
            _: &mut dyn FnMut(CheckResult) -> ControlFlow<()>,
        ) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    #[test]
    fn after_damage_every_write_is_refused_and_names_the_database() {
        let mut g = DamageGuard::new(Broken::default(), "/var/lib/chanmon.db".into());
        g.sync_monitors(&[]).unwrap();
        let err = g.insert_results(&[]).unwrap_err();
        assert!(err.is_damaged());
        let text = err.to_string();
        assert!(text.contains("/var/lib/chanmon.db"), "{text}");
        assert!(text.contains("chanmon verify"), "{text}");
        assert_eq!(g.inner.writes, 2);
        for refused in [
            g.sync_monitors(&[]).map(|_| ()),
            g.insert_results(&[]).map(|_| ()),
            g.prune(Timestamp(0), Duration::ZERO, false).map(|_| ()),
            g.vacuum(),
            g.reseal(&[]),
        ] {
            assert!(refused.unwrap_err().is_damaged());
        }
        assert_eq!(
            g.inner.writes, 2,
            "nothing reached the backend after the damage"
        );
        // Reads still run.
        assert!(g.monitors().is_ok());
    }
}
