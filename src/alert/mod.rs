//! Alerts: incidents per model, the notifications they owe, and the sinks that carry them.
//!
//! The flow (ARCHITECTURE.md, "Alerts"):
//! - `rules` (pure): from a result and a series' alert state, whether an incident opens,
//!   resolves or owes a reminder. The store calls it inside the transaction that writes the
//!   result, and writes the incident and one outbox row per (event × sink) beside it — a
//!   transactional outbox, so `chanmon check` results count as the daemon's do, and a crash
//!   can neither lose nor invent a notification.
//! - `event`: the event as stored in the outbox (never a rendered URL or a secret) and the
//!   human text built from it.
//! - `sink`: the sinks configured with `[[alert]]` and the request each type sends.
//! - `email`: the SMTP sink (lettre), connecting only to addresses the sink's policy allows.
//! - `deliver`: the drainer task (its own store connection, bounded concurrency, per-request
//!   timeouts, exponential backoff with jitter, dead letters) and one-shot sends
//!   (`chanmon alert test`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{Kind, MonitorId, Status};

pub(crate) mod command;
pub(crate) mod deliver;
pub(crate) mod email;
pub(crate) mod event;
pub(crate) mod maintenance;
pub(crate) mod rules;
pub(crate) mod sink;
pub(crate) mod template;
pub(crate) mod watch;

pub use deliver::{DrainCtx, DrainReport, Drainer, RetryPolicy, Sender, drain_once, drain_pending};
pub use email::{EmailSettings, SmtpTls};
pub use event::{AlertEvent, EventKind};
pub use maintenance::{Maintenance, When};
pub use sink::{SinkConfig, SinkKind};

/// When a monitor's models raise incidents and whom they tell (`[alerts]` with
/// `[monitor.alerts]` applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Sink ids, each defined by an `[[alert]]`.
    pub sinks: Vec<String>,
    /// Failing results in a row (per model) that open an incident.
    pub failure_threshold: u32,
    /// Passing results in a row that resolve it.
    pub success_threshold: u32,
    /// Locations of a model that must be failing (each past `failure_threshold` on its own
    /// series) before its incident opens; it resolves when fewer still fail (default 1).
    pub min_failing_locations: u32,
    /// Statuses that count as failing (default `failed` and `error`).
    pub failing: Vec<Status>,
    /// Results of these kinds count neither way (for example `rate_limited`).
    pub ignore: Vec<Kind>,
    /// Tell the sinks when an incident resolves.
    pub send_on_resolved: bool,
    /// Remind while an incident stays open, at most this often (off when `None`).
    pub remind_every: Option<Duration>,
    /// Events of one monitor within this window go out as one notification.
    pub group_window: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            sinks: Vec::new(),
            failure_threshold: 3,
            success_threshold: 2,
            min_failing_locations: 1,
            failing: vec![Status::Failed, Status::Error],
            ignore: Vec::new(),
            send_on_resolved: true,
            remind_every: None,
            group_window: Duration::from_secs(2),
        }
    }
}

/// What the store needs to decide incidents inside the results' transaction: per monitor its
/// rule and display name, and which sinks group events.
#[derive(Debug, Clone, Default)]
pub struct AlertPlan {
    pub monitors: HashMap<MonitorId, MonitorPlan>,
    /// Sinks that send one notification per group of events (all but PagerDuty, which wants
    /// one `dedup_key` per incident).
    pub grouping: HashMap<String, bool>,
    /// The status page, linked from messages when set.
    pub status_page: Option<String>,
}

impl AlertPlan {
    /// Whether alerts of `monitor` are muted at `at` (a maintenance window).
    pub fn muted(&self, monitor: &MonitorId, at: crate::model::Timestamp) -> bool {
        self.monitors
            .get(monitor)
            .is_some_and(|m| m.maintenance.iter().any(|w| w.active_at(at)))
    }
}

#[derive(Debug, Clone)]
pub struct MonitorPlan {
    pub name: String,
    pub rule: Rule,
    /// The maintenance windows covering this monitor.
    pub maintenance: Vec<Arc<Maintenance>>,
}

/// The alerting part of the config.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub sinks: Vec<SinkConfig>,
    /// `[alerts]`: the defaults every monitor starts from.
    pub defaults: Rule,
    /// `[monitor.alerts]` applied, per monitor that has one.
    pub overrides: HashMap<MonitorId, Rule>,
    pub retry: RetryPolicy,
    pub status_page: Option<String>,
    /// `[[maintenance]]` windows.
    pub maintenance: Vec<Arc<Maintenance>>,
    /// How often the daemon looks for its own trouble (`[alerts] watch_every`).
    pub watch_every: Duration,
    /// `[heartbeat]`: pinged while the daemon is healthy.
    pub heartbeat: Option<watch::Heartbeat>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            sinks: Vec::new(),
            defaults: Rule::default(),
            overrides: HashMap::new(),
            retry: RetryPolicy::default(),
            status_page: None,
            maintenance: Vec::new(),
            watch_every: Duration::from_secs(60),
            heartbeat: None,
        }
    }
}

impl AlertsConfig {
    /// The rule of one monitor.
    pub fn rule_of(&self, id: &MonitorId) -> &Rule {
        self.overrides.get(id).unwrap_or(&self.defaults)
    }

    /// The maintenance window covering `monitor` at `at`, if any (for `status` and the status
    /// page).
    pub fn maintenance_at(
        &self,
        monitor: &MonitorId,
        group: Option<&str>,
        at: crate::model::Timestamp,
    ) -> Option<&Maintenance> {
        self.maintenance
            .iter()
            .find(|w| w.covers(monitor, group) && w.active_at(at))
            .map(|w| &**w)
    }

    /// The longest group window any monitor waits for.
    pub fn longest_group_window(&self) -> Duration {
        self.overrides
            .values()
            .chain(std::iter::once(&self.defaults))
            .map(|r| r.group_window)
            .max()
            .unwrap_or_default()
    }

    pub fn sink(&self, id: &str) -> Option<&SinkConfig> {
        self.sinks.iter().find(|s| s.id == id)
    }

    /// The plan the store decides incidents with.
    pub fn plan(&self, monitors: &[crate::config::MonitorConfig]) -> AlertPlan {
        AlertPlan {
            monitors: monitors
                .iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        MonitorPlan {
                            name: m.name.clone(),
                            rule: self.rule_of(&m.id).clone(),
                            maintenance: self
                                .maintenance
                                .iter()
                                .filter(|w| w.covers(&m.id, m.group.as_deref()))
                                .cloned()
                                .collect(),
                        },
                    )
                })
                .collect(),
            grouping: self
                .sinks
                .iter()
                .map(|s| (s.id.clone(), s.kind.groups()))
                .collect(),
            status_page: self.status_page.clone(),
        }
    }
}
