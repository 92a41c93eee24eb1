//! `/metrics`: the OpenMetrics text format, written by the `prometheus-client` crate.
//!
//! Two registries: the per-series families ([`SeriesMetrics`], kept in the read model:
//! histograms and counters advance as results are applied, gauges are set from each published
//! view) and a small per-scrape one (build info, the scheduler's counters and gauges). The
//! series part is encoded once per published view and cached with it.
//!
//! Label values are monitor ids, model names, provider names, locations, statuses, kinds and
//! window names only: never message text, so the number of series stays bounded by the config.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::model::{CheckResult, Status};

use super::model::{View, WINDOWS};
use super::report_window;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeriesLabels {
    monitor: String,
    model: String,
    provider: String,
    /// Where the series is probed from (`""`: no location named); names come from the
    /// config, so the label stays bounded.
    location: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    monitor: String,
    model: String,
    provider: String,
    status: String,
    /// Where the series is probed from (`""`: no location named); names come from the
    /// config, so the label stays bounded.
    location: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    monitor: String,
    model: String,
    provider: String,
    status: String,
    kind: String,
    /// Where the series is probed from (`""`: no location named); names come from the
    /// config, so the label stays bounded.
    location: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    monitor: String,
    model: String,
    provider: String,
    window: String,
    /// Where the series is probed from (`""`: no location named); names come from the
    /// config, so the label stays bounded.
    location: String,
}

type FGauge = Gauge<f64, AtomicU64>;
type HistFamily = Family<SeriesLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new([0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0])
}

fn ttft_histogram() -> Histogram {
    Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0])
}

/// The per-series families.
pub(crate) struct SeriesMetrics {
    registry: Registry,
    up: Family<SeriesLabels, Gauge>,
    status: Family<StatusLabels, Gauge>,
    ping: Family<SeriesLabels, FGauge>,
    last_check: Family<SeriesLabels, FGauge>,
    availability: Family<WindowLabels, FGauge>,
    latency: HistFamily,
    ttft: HistFamily,
    checks: Family<CheckLabels, Counter>,
}

impl SeriesMetrics {
    pub(crate) fn new() -> SeriesMetrics {
        let m = SeriesMetrics {
            registry: Registry::with_prefix("chanmon"),
            up: Family::default(),
            status: Family::default(),
            ping: Family::default(),
            last_check: Family::default(),
            availability: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            ttft: Family::new_with_constructor(ttft_histogram as fn() -> Histogram),
            checks: Family::default(),
        };
        m.register()
    }

    fn register(mut self) -> SeriesMetrics {
        let r = &mut self.registry;
        r.register(
            "up",
            "1 when the model's latest check answered (operational or degraded), else 0",
            self.up.clone(),
        );
        r.register(
            "status",
            "1 for the model's current status (operational, degraded, failed, error), 0 for the others",
            self.status.clone(),
        );
        r.register_with_unit(
            "ping",
            "Round trip of the latest HEAD to the endpoint's origin",
            Unit::Seconds,
            self.ping.clone(),
        );
        r.register_with_unit(
            "last_check_timestamp",
            "When the latest check started (Unix time)",
            Unit::Seconds,
            self.last_check.clone(),
        );
        r.register(
            "availability_ratio",
            "Share of checks that answered over the window (24h, 7d, 30d)",
            self.availability.clone(),
        );
        r.register_with_unit(
            "check_latency",
            "Request start to the end of the reply, answered checks, since this process started",
            Unit::Seconds,
            self.latency.clone(),
        );
        r.register_with_unit(
            "check_ttft",
            "Request start to the first content token, answered checks, since this process started",
            Unit::Seconds,
            self.ttft.clone(),
        );
        r.register(
            "checks",
            "Checks recorded by status and kind since this process started",
            self.checks.clone(),
        );
        self
    }

    /// One committed result: the counters and histograms.
    pub(crate) fn observe(&self, r: &CheckResult, provider: &str) {
        let l = series_labels(r.monitor.as_str(), &r.model, provider, &r.location);
        self.checks
            .get_or_create(&CheckLabels {
                monitor: l.monitor.clone(),
                model: l.model.clone(),
                provider: l.provider.clone(),
                status: r.status.as_str().to_owned(),
                kind: r.kind.as_str().to_owned(),
                location: l.location.clone(),
            })
            .inc();
        if r.status.is_up() {
            if let Some(ms) = r.latency_ms {
                self.latency
                    .get_or_create(&l)
                    .observe(f64::from(ms) / 1000.0);
            }
            if let Some(ms) = r.ttft_ms {
                self.ttft.get_or_create(&l).observe(f64::from(ms) / 1000.0);
            }
        }
    }

    /// The gauges from a view (series that left the view leave the gauges).
    pub(crate) fn set_gauges(&self, view: &View) {
        self.up.clear();
        self.status.clear();
        self.ping.clear();
        self.last_check.clear();
        self.availability.clear();
        for m in &view.monitors {
            for s in &m.series {
                let l = series_labels(m.id.as_str(), &s.row.model, &m.provider, &s.row.location);
                if let Some(st) = s.status() {
                    self.up.get_or_create(&l).set(i64::from(st.is_up()));
                    for each in Status::ALL {
                        self.status
                            .get_or_create(&StatusLabels {
                                monitor: l.monitor.clone(),
                                model: l.model.clone(),
                                provider: l.provider.clone(),
                                status: each.as_str().to_owned(),
                                location: l.location.clone(),
                            })
                            .set(i64::from(*each == st));
                    }
                }
                if let Some(latest) = &s.row.latest {
                    if let Some(p) = latest.ping_ms {
                        self.ping.get_or_create(&l).set(f64::from(p) / 1000.0);
                    }
                    self.last_check
                        .get_or_create(&l)
                        .set(latest.started_at.millis() as f64 / 1000.0);
                }
                for (d, w) in &s.row.windows {
                    if let Some(a) = w.availability() {
                        self.availability
                            .get_or_create(&WindowLabels {
                                monitor: l.monitor.clone(),
                                model: l.model.clone(),
                                provider: l.provider.clone(),
                                window: report_window(*d),
                                location: l.location.clone(),
                            })
                            .set(a);
                    }
                }
            }
        }
        debug_assert_eq!(WINDOWS.len(), 3);
    }

    /// The per-series families as OpenMetrics text (without the final `# EOF`).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        out
    }
}

fn series_labels(monitor: &str, model: &str, provider: &str, location: &str) -> SeriesLabels {
    SeriesLabels {
        monitor: monitor.to_owned(),
        model: model.to_owned(),
        provider: provider.to_owned(),
        location: location.to_owned(),
    }
}

/// What the process reports beside the series: the scheduler (daemon only).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SchedulerFigures {
    pub started: u64,
    pub dropped: u64,
    pub in_flight: u64,
    pub queue_depth: u64,
    /// Seconds since the ticker last ran.
    pub last_tick_age: f64,
    pub tick: f64,
    /// Replicas alive on the shared database (0: not a replica) and how many run another
    /// config than this one.
    pub replicas: u64,
    pub config_mismatch: u64,
}

/// The whole scrape: the cached series part, then build info and the scheduler.
pub(crate) fn scrape(series: &str, scheduler: Option<SchedulerFigures>) -> String {
    let mut r = Registry::with_prefix("chanmon");
    r.register(
        "build",
        "The running chanmon",
        Info::new(vec![(
            "version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        )]),
    );
    if let Some(s) = scheduler {
        let counter = |v: u64| {
            let c: Counter = Counter::default();
            c.inc_by(v);
            c
        };
        let gauge = |v: u64| {
            let g: Gauge = Gauge::default();
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
            g
        };
        let fgauge = |v: f64| {
            let g: FGauge = Gauge::default();
            g.set(v);
            g
        };
        r.register(
            "scheduler_checks_started",
            "Probes started by the scheduler",
            counter(s.started),
        );
        r.register(
            "scheduler_dropped",
            "Checks dropped because the job queue was full",
            counter(s.dropped),
        );
        r.register(
            "scheduler_in_flight",
            "Monitors being probed now",
            gauge(s.in_flight),
        );
        r.register(
            "scheduler_queue_depth",
            "Jobs waiting for a worker",
            gauge(s.queue_depth),
        );
        r.register_with_unit(
            "scheduler_last_tick_age",
            "Time since the scheduler's ticker last ran",
            Unit::Seconds,
            fgauge(s.last_tick_age),
        );
        r.register_with_unit(
            "scheduler_tick",
            "The ticker's period",
            Unit::Seconds,
            fgauge(s.tick),
        );
        if s.replicas > 0 {
            r.register(
                "replicas",
                "Replicas alive on the shared database, this one included",
                gauge(s.replicas),
            );
            r.register(
                "replica_config_mismatch",
                "Alive replicas whose config differs from this one's (0 when all agree)",
                gauge(s.config_mismatch),
            );
        }
    }
    let mut out = String::with_capacity(series.len() + 2048);
    out.push_str(series);
    let _ = encode_registry(&mut out, &r);
    let _ = encode_eof(&mut out);
    let _ = write!(out, "");
    out
}
