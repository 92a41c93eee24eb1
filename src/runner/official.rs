//! The status-page poller: one task per distinct `official_status` source, reading the page on
//! its own interval through the guarded HTTP client and handing each reading to the writer.
//!
//! Off the probes' path: the ticker and the workers never wait for it, and the writer sees one
//! small upsert per reading. A page that hangs, fails or answers garbage is recorded as
//! `unknown` with the reason; it never touches a verdict.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::config::Config;
use crate::model::{Timestamp, tidy_message};
use crate::net::{self, HttpClient, NetworkPolicy};
use crate::official::{self, OfficialStatus, StatusSource};
use crate::pipeline::WriterHandle;

/// A status page gets this long to answer in full: it is a small public document.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Google's incidents list holds every incident ever: larger than any probe reply.
const MAX_PAGE: usize = 16 << 20;

/// One source to poll: the shortest interval and the first network policy of the monitors
/// that show it.
pub(crate) struct Poll {
    source: StatusSource,
    interval: Duration,
    policy: NetworkPolicy,
}

/// The running pollers. Dropping them aborts every task.
pub(crate) struct Pollers {
    tasks: JoinSet<()>,
}

impl Pollers {
    /// Starts one task per distinct source among the enabled monitors of `config`.
    pub(crate) fn start(config: &Config, writer: &WriterHandle) -> Pollers {
        Pollers::start_planned(plan(config), writer)
    }

    fn start_planned(polls: Vec<Poll>, writer: &WriterHandle) -> Pollers {
        let mut tasks = JoinSet::new();
        for poll in polls {
            match HttpClient::new(&poll.policy) {
                Ok(client) => {
                    tasks.spawn(run(poll, client, writer.clone()));
                }
                Err(e) => tracing::error!(
                    url = %poll.source.url, error = %e,
                    "cannot build an HTTP client for a status page; it is not polled"
                ),
            }
        }
        Pollers { tasks }
    }

    /// Replaces the pollers with those of a new config's `plan` (a reload).
    pub(crate) fn restart(&mut self, polls: Vec<Poll>, writer: &WriterHandle) {
        self.tasks.abort_all();
        *self = Pollers::start_planned(polls, writer);
    }
}

/// The distinct sources to poll, in config order.
pub(crate) fn plan(config: &Config) -> Vec<Poll> {
    let mut polls: Vec<Poll> = Vec::new();
    let mut index: HashMap<StatusSource, usize> = HashMap::new();
    if !config.enabled {
        return polls;
    }
    for m in config.monitors.iter().filter(|m| m.enabled) {
        let Some(source) = &m.official_status else {
            continue;
        };
        match index.get(source) {
            Some(&i) => polls[i].interval = polls[i].interval.min(m.official_status_interval),
            None => {
                index.insert(source.clone(), polls.len());
                polls.push(Poll {
                    source: source.clone(),
                    interval: m.official_status_interval,
                    policy: m.network.clone(),
                });
            }
        }
    }
    polls
}

async fn run(poll: Poll, client: HttpClient, writer: WriterHandle) {
    let mut ticks = tokio::time::interval(poll.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let reading = read(&client, &poll.source).await;
        if let Some(e) = &reading.error {
            tracing::warn!(url = %poll.source.url, error = %e, "status page unreadable");
        }
        writer.official(reading).await;
    }
}

/// One reading of `source`; whatever goes wrong is an `unknown` reading with the reason.
async fn read(client: &HttpClient, source: &StatusSource) -> OfficialStatus {
    let checked_at = Some(Timestamp::now());
    let url = source.url.as_str();
    let outcome = tokio::time::timeout(READ_TIMEOUT, fetch(client, source)).await;
    let parsed = match outcome {
        Ok(Ok(body)) => official::parse(source.format, &body),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "no complete answer within {}",
            humantime::format_duration(READ_TIMEOUT)
        )),
    };
    match parsed {
        Ok(r) => OfficialStatus {
            url: url.to_owned(),
            indicator: r.indicator,
            description: tidy_message(&r.description),
            incidents: r.incidents,
            checked_at,
            error: None,
        },
        Err(e) => OfficialStatus::unknown(url, checked_at, tidy_message(&e)),
    }
}

async fn fetch(client: &HttpClient, source: &StatusSource) -> Result<Vec<u8>, String> {
    let req = client
        .request(reqwest::Method::GET, source.url.clone())
        .map_err(|b| format!("blocked by the network policy: {}", b.0))?;
    let resp = req
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| net::classify_error(&e).1)?;
    if !resp.status().is_success() {
        return Err(format!("the status page answered HTTP {}", resp.status()));
    }
    let body = net::read_body_capped(resp, MAX_PAGE)
        .await
        .map_err(|e| net::classify_error(&e).1)?;
    if body.truncated {
        return Err(format!(
            "the status page is larger than {} MiB",
            MAX_PAGE >> 20
        ));
    }
    Ok(body.bytes)
}
