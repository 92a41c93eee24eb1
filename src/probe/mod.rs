//! The probe: one real, tiny chat request per model, with a verified answer and timings.
//!
//! Providers are strategies behind one trait (one file each); this module runs them, times
//! them, pings the origin and turns whatever happened into a [`CheckResult`].

use std::sync::Arc;

use crate::config::Monitor;
use crate::model::CheckResult;
use crate::net::HttpClient;
use crate::redact::Redactor;

/// Checks every model of `monitor` now (bounded concurrency) while pinging its origin.
/// Never fails: every outcome is a `CheckResult` per model.
pub async fn probe_monitor(
    monitor: &Monitor,
    client: &HttpClient,
    redactor: Arc<Redactor>,
    model_concurrency: usize,
) -> Vec<CheckResult> {
    let _ = (monitor, client, redactor, model_concurrency);
    todo!("probe_monitor")
}
