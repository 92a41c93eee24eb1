//! The probe: one real, tiny chat request per model, with a verified answer and timings.
//!
//! What to send and how to read the reply is the protocol's business (`crate::provider`,
//! one file per protocol, chosen by the monitor's provider and `api`); this module runs the
//! request in phases (build, send, read an error reply, read the body or the stream), times
//! it, pings the origin and turns whatever happened into a [`CheckResult`]. A probe never
//! fails: every outcome is a verdict.
//!
//! Timing: `ttft_ms` runs from the request's start to the first non-empty piece of answer text
//! (reasoning and thinking deltas do not count; only streams have it), `latency_ms` to the end
//! of the reply. `ping_ms` is a HEAD to the origin, concurrent, with its own short timeout.

mod challenge;
mod sse;
mod verdict;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use crate::config::{KeyState, Monitor, MonitorConfig};
use crate::model::{CheckResult, Kind, ReplyFacts, Timestamp, millis_u32, tidy_message};
use crate::net::{self, HttpClient};
use crate::provider::{self, Piece, Protocol, wire};
use crate::redact::Redactor;

use challenge::Challenge;
use verdict::Reply;

/// The ping never waits longer than this.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Error bodies are read up to this much for their message.
const ERROR_BODY_CAP: usize = 16 * 1024;

/// Checks every model of `monitor` now (bounded concurrency) while pinging its origin.
/// Never fails: every outcome is a `CheckResult` per model, in model order.
pub async fn probe_monitor(
    monitor: &Monitor,
    client: &HttpClient,
    redactor: Arc<Redactor>,
    model_concurrency: usize,
) -> Vec<CheckResult> {
    let cfg = &monitor.config;
    let key = match &monitor.key {
        KeyState::Ready(k) => k.expose().to_owned(),
        KeyState::Unavailable(why) => {
            // Never call an upstream without its key.
            let now = Timestamp::now();
            return cfg
                .models()
                .map(|model| {
                    CheckResult::error(
                        cfg.id.clone(),
                        model.to_owned(),
                        now,
                        Kind::KeyUnavailable,
                        redactor.redact(why),
                    )
                })
                .collect();
        }
    };
    let key = zeroize::Zeroizing::new(key);
    let origin = cfg.origin();
    let ping = ping(client, &origin, cfg.timeout.min(PING_TIMEOUT));
    let models: Vec<String> = cfg.models().map(str::to_owned).collect();
    let checks = futures_util::stream::iter(models.into_iter().enumerate())
        .map(|(i, model)| {
            let key = &key;
            let redactor = &redactor;
            async move { (i, check_model(monitor, client, key, &model, redactor).await) }
        })
        .buffer_unordered(model_concurrency.max(1))
        .collect::<Vec<_>>();
    let (ping_ms, mut results) = tokio::join!(ping, checks);
    results.sort_by_key(|(i, _)| *i);
    results
        .into_iter()
        .map(|(_, mut r)| {
            r.ping_ms = ping_ms;
            r
        })
        .collect()
}

/// HEAD to the origin: any HTTP answer counts, redirects are not followed.
async fn ping(client: &HttpClient, origin: &url::Url, timeout: Duration) -> Option<u32> {
    let req = client.request(reqwest::Method::HEAD, origin.clone()).ok()?;
    let t0 = Instant::now();
    match tokio::time::timeout(timeout, req.send()).await {
        Ok(Ok(_)) => Some(millis_u32(t0.elapsed())),
        _ => None,
    }
}

async fn check_model(
    monitor: &Monitor,
    client: &HttpClient,
    key: &str,
    model: &str,
    redactor: &Redactor,
) -> CheckResult {
    let cfg = &monitor.config;
    let challenge = Challenge::new(&mut fastrand::Rng::new(), cfg.challenge);
    let started_at = Timestamp::now();
    let attempt = Attempt {
        cfg,
        client,
        protocol: cfg.protocol(),
        key,
        model,
        challenge: &challenge,
        t0: Instant::now(),
    };
    let mut reply = Reply::default();
    let outcome = tokio::time::timeout(cfg.timeout, request(&attempt, &mut reply)).await;
    let elapsed = attempt.t0.elapsed();
    if outcome.is_err() {
        let what = if reply.http_status.is_some() {
            "the reply did not complete"
        } else {
            "no reply"
        };
        reply.error = Some((
            Kind::Timeout,
            format!("{what} within {}", humantime::format_duration(cfg.timeout)),
        ));
    }
    let facts = verdict::facts(&reply, cfg, model, elapsed);
    let (status, kind, message) =
        verdict::judge(&reply, &challenge, cfg, model, elapsed, facts.tps);
    // The model name is upstream text like any message: redacted (a hostile relay could echo
    // the key there) and tidied before it is stored or shown.
    let facts = ReplyFacts {
        answered_model: facts
            .answered_model
            .as_deref()
            .map(|m| tidy_message(&redactor.redact(m)))
            .filter(|m| !m.is_empty()),
        ..facts
    };
    let answered =
        reply.error.is_none() && reply.http_status.is_some_and(|s| (200..300).contains(&s));
    CheckResult {
        monitor: cfg.id.clone(),
        model: model.to_owned(),
        started_at,
        status,
        kind,
        http_status: reply.http_status,
        ttft_ms: reply.ttft.map(millis_u32),
        latency_ms: answered.then(|| millis_u32(elapsed)),
        ping_ms: None,
        message: tidy_message(&redactor.redact(&message)),
        facts,
        location: String::new(),
        due_at: None,
    }
}

/// Merges the user's `body` into the protocol body: objects merge key by key, protocol keys
/// are never overridden (the config rejects them too; this is the second line).
fn merge_body(base: &mut Value, extra: &serde_json::Map<String, Value>, reserved: &[&str]) {
    let Value::Object(b) = base else { return };
    for (k, v) in extra {
        if reserved.contains(&k.as_str()) {
            continue;
        }
        match (b.get_mut(k), v) {
            (Some(Value::Object(dst)), Value::Object(src)) => {
                for (k2, v2) in src {
                    dst.insert(k2.clone(), v2.clone());
                }
            }
            _ => {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Everything one model's request needs, fixed before it starts.
struct Attempt<'a> {
    cfg: &'a MonitorConfig,
    client: &'a HttpClient,
    protocol: &'static dyn Protocol,
    key: &'a str,
    model: &'a str,
    challenge: &'a Challenge,
    /// When the request started: ttft is measured from here.
    t0: Instant,
}

/// What ended a request early: the kind and the message of the verdict.
type Stop = (Kind, String);

/// Runs the request, filling `reply` as it goes (so a timeout keeps what arrived).
async fn request(a: &Attempt<'_>, reply: &mut Reply) {
    if let Err(stop) = exchange(a, reply).await {
        reply.error = Some(stop);
    }
}

async fn exchange(a: &Attempt<'_>, reply: &mut Reply) -> Result<(), Stop> {
    let req = build_request(a)?;
    let resp = req.send().await.map_err(|e| net::classify_error(&e))?;
    let status = resp.status().as_u16();
    reply.http_status = Some(status);
    if !(200..300).contains(&status) {
        return Err(read_error_reply(a, resp, status).await);
    }
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_sse {
        read_stream(a, resp, reply).await
    } else {
        read_body(a, resp, reply).await
    }
}

/// URL, protocol headers, the user's headers, body: a request ready to send, or why not.
fn build_request(a: &Attempt<'_>) -> Result<reqwest::RequestBuilder, Stop> {
    let cfg = a.cfg;
    let url = provider::request_url(&cfg.endpoint, a.protocol, &cfg.query, a.model, cfg.stream);
    let mut body = a.protocol.body(a.model, &a.challenge.prompt, cfg.stream);
    merge_body(&mut body, &cfg.body, a.protocol.reserved_body_keys());
    let mut req = a
        .client
        .request(reqwest::Method::POST, url)
        .map_err(|blocked| (Kind::Blocked, blocked.to_string()))?;
    let (name, value) = cfg.auth.header(a.key);
    req = req.header(name, value);
    for (name, value) in a.protocol.fixed_headers() {
        req = req.header(*name, *value);
    }
    for (name, value) in &cfg.headers {
        let v =
            reqwest::header::HeaderValue::from_bytes(value.expose().as_bytes()).map_err(|_| {
                (
                    Kind::ClientError,
                    format!("header {name} has a value HTTP cannot carry"),
                )
            })?;
        req = req.header(name.as_str(), v);
    }
    let accept = if cfg.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    Ok(req.header("accept", accept).json(&body))
}

/// The verdict on a non-2xx reply: a redirect names its target (it is never followed); any
/// other status is classified by the protocol from the status and the start of the body.
async fn read_error_reply(a: &Attempt<'_>, resp: reqwest::Response, status: u16) -> Stop {
    if (300..400).contains(&status) {
        let target = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| a.cfg.endpoint.join(l).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "an unknown location".to_owned());
        return (
            Kind::Redirect,
            format!("HTTP {status}: redirected to {target} (redirects are not followed)"),
        );
    }
    let body = net::read_body_capped(resp, ERROR_BODY_CAP)
        .await
        .map(|b| b.bytes)
        .unwrap_or_default();
    (
        a.protocol.classify_error(status, &body),
        wire::error_message(status, &body),
    )
}

/// A whole (non-streamed) 2xx reply.
async fn read_body(
    a: &Attempt<'_>,
    resp: reqwest::Response,
    reply: &mut Reply,
) -> Result<(), Stop> {
    let max = a.client.max_body();
    let b = net::read_body_capped(resp, max)
        .await
        .map_err(|e| net::classify_error(&e))?;
    if b.truncated {
        return Err((Kind::Malformed, format!("the reply exceeds {max} bytes")));
    }
    let v = serde_json::from_slice::<Value>(&b.bytes)
        .map_err(|e| (Kind::Malformed, format!("the reply is not JSON ({e})")))?;
    let pieces = a
        .protocol
        .parse_full(&v)
        .map_err(|why| (Kind::Malformed, why))?;
    apply(pieces, reply, a.t0, false);
    Ok(())
}

/// A streamed 2xx reply, event by event, until the protocol says done or the stream ends.
async fn read_stream(
    a: &Attempt<'_>,
    resp: reqwest::Response,
    reply: &mut Reply,
) -> Result<(), Stop> {
    let max = a.client.max_body();
    let mut parser = sse::Parser::default();
    let mut stream = resp.bytes_stream();
    let mut total = 0usize;
    loop {
        let (events, end) = match stream.next().await {
            Some(Ok(chunk)) => {
                total += chunk.len();
                if total > max {
                    return Err((
                        Kind::Malformed,
                        format!("the reply stream exceeds {max} bytes"),
                    ));
                }
                (parser.push(&chunk), false)
            }
            Some(Err(e)) => return Err(net::classify_error(&e)),
            None => (parser.finish(), true),
        };
        for ev in events {
            let pieces = a
                .protocol
                .parse_event(ev.event.as_deref(), &ev.data)
                .map_err(|why| (Kind::Malformed, why))?;
            if apply(pieces, reply, a.t0, true) {
                return Ok(());
            }
        }
        if end {
            return Ok(());
        }
    }
}

/// Applies pieces to the reply; true when the reply is complete (done or an error).
fn apply(pieces: Vec<Piece>, reply: &mut Reply, t0: Instant, streaming: bool) -> bool {
    for p in pieces {
        match p {
            Piece::Text(t) => {
                if streaming && reply.ttft.is_none() && !t.trim().is_empty() {
                    reply.ttft = Some(t0.elapsed());
                }
                reply.text.push_str(&t);
            }
            Piece::Refused(why) => {
                reply.refused.get_or_insert(why);
            }
            Piece::Error(kind, msg) => {
                reply.error = Some((kind, msg));
                return true;
            }
            Piece::Model(m) => {
                reply.answered_model.get_or_insert(m);
            }
            Piece::Usage(u) => reply.usage.merge(u),
            Piece::Done => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests;
