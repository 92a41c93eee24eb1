//! The sinks (`[[alert]]`) and the request each type sends, as plain data: building a
//! request does no I/O, so every wire shape is tested without a network.
//!
//! Shapes, from each service's documentation:
//! - `webhook`: the [`Notification`] as JSON, `X-Chanmon-Event-Id`, and when a `secret` is
//!   set `X-Chanmon-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//!   (docs/alerts.md has a verification snippet).
//! - `slack`: incoming webhook, `{"text": …}`.
//! - `discord`: webhook, `{"content": …}` (at most 2,000 characters).
//! - `telegram`: Bot API `POST /bot<token>/sendMessage`, `{"chat_id", "text"}` (at most 4,096
//!   characters).
//! - `ntfy`: `POST` the text to the topic URL, with `Title`, `Priority` and `Tags` headers;
//!   an optional access token as `Authorization: Bearer`.
//! - `email`: SMTP, in `alert::email`.
//! - `pagerduty`: Events API v2 `POST /v2/enqueue`, `event_action` `trigger` or `resolve`,
//!   `dedup_key` the incident id (one per incident, never grouped).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use url::Url;

use super::event::{Notification, clip};
use crate::net::NetworkPolicy;
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Webhook,
    Slack,
    Discord,
    Telegram,
    Ntfy,
    Pagerduty,
    /// A local program (`alert::command`), not an HTTP request.
    Command,
    /// SMTP (`alert::email`), not an HTTP request.
    Email,
}

impl SinkKind {
    pub const ALL: &'static [(&'static str, SinkKind)] = &[
        ("webhook", SinkKind::Webhook),
        ("slack", SinkKind::Slack),
        ("discord", SinkKind::Discord),
        ("telegram", SinkKind::Telegram),
        ("ntfy", SinkKind::Ntfy),
        ("pagerduty", SinkKind::Pagerduty),
        ("command", SinkKind::Command),
        ("email", SinkKind::Email),
    ];

    pub fn parse(s: &str) -> Option<SinkKind> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    /// PagerDuty wants one event per incident (its `dedup_key`); the others take a group.
    pub fn groups(self) -> bool {
        self != SinkKind::Pagerduty
    }

    /// The service's own address, for types that have one.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            SinkKind::Telegram => Some("https://api.telegram.org"),
            SinkKind::Pagerduty => Some("https://events.pagerduty.com/v2/enqueue"),
            _ => None,
        }
    }
}

/// One `[[alert]]`. URLs and tokens are [`Secret`]s: a Slack or Discord webhook URL is itself
/// the credential.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub id: String,
    pub kind: SinkKind,
    /// The target (for telegram and pagerduty the API base, defaulted).
    pub url: Secret,
    /// webhook: the HMAC key.
    pub secret: Option<Secret>,
    /// telegram: the bot token; pagerduty: the routing key; ntfy: an access token.
    pub token: Option<Secret>,
    /// telegram: the chat to post to.
    pub chat_id: Option<String>,
    /// command: the program and its arguments (run without a shell).
    pub command: Vec<String>,
    /// The message text as a template (`alert::template`); `None`: the default text.
    pub template: Option<String>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// This sink's own network policy (strict unless its `[alert.network]` allows more).
    pub network: NetworkPolicy,
    /// email: the SMTP server, credentials and addresses.
    pub email: Option<super::email::EmailSettings>,
}

impl SinkConfig {
    /// Every secret value of this sink, for the redactor.
    pub fn secrets(&self) -> Vec<&str> {
        let mut v = vec![self.url.expose()];
        v.extend(self.secret.iter().map(Secret::expose));
        v.extend(self.token.iter().map(Secret::expose));
        if let Some(e) = &self.email {
            v.extend(e.username.iter().map(Secret::expose));
            v.extend(e.password.iter().map(Secret::expose));
        }
        v.retain(|s| !s.is_empty());
        v
    }
}

/// A request ready to send. `url` may hold a secret (a webhook path, a bot token): never log
/// it.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

pub(crate) const EVENT_ID_HEADER: &str = "X-Chanmon-Event-Id";
pub(crate) const SIGNATURE_HEADER: &str = "X-Chanmon-Signature";

/// The message text: the sink's template rendered, else (or when it fails) the default.
pub(crate) fn text_of(sink: &SinkConfig, n: &Notification) -> String {
    match &sink.template {
        Some(t) => super::template::render(t, n).unwrap_or_else(|e| {
            tracing::warn!(sink = %sink.id, error = %e, "the sink's template failed; sending the default text");
            n.text()
        }),
        None => n.text(),
    }
}

/// The request `sink` sends for `n` at unix time `now_secs`.
pub(crate) fn render(
    sink: &SinkConfig,
    n: &Notification,
    now_secs: u64,
) -> Result<Outgoing, String> {
    let base = Url::parse(sink.url.expose()).map_err(|e| format!("bad url: {e}"))?;
    let json_body = |v: serde_json::Value| serde_json::to_vec(&v).unwrap_or_default();
    let mut headers = vec![(EVENT_ID_HEADER, n.event_id.clone())];
    let (url, content_type, body) = match sink.kind {
        SinkKind::Webhook => {
            let body = serde_json::to_vec(n).map_err(|e| e.to_string())?;
            if let Some(secret) = &sink.secret {
                headers.push((SIGNATURE_HEADER, sign(secret.expose(), now_secs, &body)));
            }
            (base, "application/json", body)
        }
        SinkKind::Slack => (
            base,
            "application/json",
            json_body(json!({"text": text_of(sink, n)})),
        ),
        SinkKind::Discord => (
            base,
            "application/json",
            json_body(json!({"content": clip(&text_of(sink, n), 2000)})),
        ),
        SinkKind::Telegram => {
            let token = sink.token.as_ref().ok_or("telegram needs a token")?;
            // Not `Url::join`: a token is `<digits>:<text>`, and "bot123:…" would parse as
            // a URL scheme of its own.
            let mut url = base;
            let path = format!(
                "{}/bot{}/sendMessage",
                url.path().trim_end_matches('/'),
                token.expose()
            );
            url.set_path(&path);
            let body = json!({
                "chat_id": sink.chat_id.clone().unwrap_or_default(),
                "text": clip(&text_of(sink, n), 4096),
                "disable_web_page_preview": true,
            });
            (url, "application/json", json_body(body))
        }
        SinkKind::Ntfy => {
            headers.push(("Title", ascii_header(&n.title())));
            let (priority, tags) = if n.is_resolve() {
                ("default", "white_check_mark")
            } else {
                ("high", "rotating_light")
            };
            headers.push(("Priority", priority.into()));
            headers.push(("Tags", tags.into()));
            if let Some(t) = &sink.token {
                headers.push(("Authorization", format!("Bearer {}", t.expose())));
            }
            (
                base,
                "text/plain; charset=utf-8",
                text_of(sink, n).into_bytes(),
            )
        }
        SinkKind::Pagerduty => (base, "application/json", json_body(pagerduty(sink, n)?)),
        SinkKind::Command | SinkKind::Email => {
            return Err(format!(
                "a {} sink sends no HTTP request",
                sink.kind.as_str()
            ));
        }
    };
    Ok(Outgoing {
        url,
        headers,
        content_type,
        body,
    })
}

/// Events API v2: trigger (with a summary ≤ 1,024 characters) or resolve, keyed by the
/// incident.
fn pagerduty(sink: &SinkConfig, n: &Notification) -> Result<serde_json::Value, String> {
    let key = sink.token.as_ref().ok_or("pagerduty needs a routing_key")?;
    let e = n.events.first().ok_or("nothing to send")?;
    let dedup_key = if e.incident.is_empty() {
        format!("chanmon-{}", e.event_id)
    } else {
        format!("chanmon-{}", e.incident)
    };
    let summary = match &sink.template {
        Some(_) => text_of(sink, n),
        None => format!("{}: {}", n.title(), e.line()),
    };
    if n.is_resolve() {
        return Ok(json!({
            "routing_key": key.expose(),
            "event_action": "resolve",
            "dedup_key": dedup_key,
        }));
    }
    Ok(json!({
        "routing_key": key.expose(),
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": clip(&summary, 1024),
            "source": format!("chanmon/{}", e.monitor),
            "severity": if e.status == "degraded" { "warning" } else { "critical" },
            "timestamp": crate::model::Timestamp(e.at_ms).to_rfc3339(),
            "component": e.model,
            "group": e.monitor,
            "class": e.kind,
            "custom_details": {
                "status": e.status, "kind": e.kind, "message": e.message,
                "since": crate::model::Timestamp(e.since_ms).to_rfc3339(),
                "event_id": e.event_id,
            },
        },
        "links": n.status_page.iter().map(|u| json!({"href": u, "text": "status page"})).collect::<Vec<_>>(),
    }))
}

/// `t=<secs>,v1=<hex HMAC-SHA256(secret, "<secs>.<body>")>`: the timestamp is signed with the
/// body, so a receiver that rejects old timestamps cannot be replayed.
pub(crate) fn sign(secret: &str, now_secs: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{now_secs}.").as_bytes());
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={now_secs},v1={hex}")
}

/// Header values must be visible ASCII: anything else becomes `?`.
fn ascii_header(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::event::{AlertEvent, EventKind};

    fn sink(kind: SinkKind, url: &str) -> SinkConfig {
        SinkConfig {
            id: "s".into(),
            kind,
            url: Secret::new(url),
            secret: Some(Secret::new("hush-hush-secret")),
            token: Some(Secret::new("123:tok-en")),
            chat_id: Some("-100".into()),
            command: vec![],
            template: None,
            timeout: Duration::from_secs(5),
            network: NetworkPolicy::default(),
            email: None,
        }
    }

    fn note(kind: EventKind) -> Notification {
        Notification {
            event_id: "ev1".into(),
            events: vec![AlertEvent {
                event_id: "ev1".into(),
                event: kind,
                incident: "inc1".into(),
                monitor: "m".into(),
                monitor_name: "Main".into(),
                model: "gpt".into(),
                status: "error".into(),
                kind: "timeout".into(),
                message: "timed out".into(),
                since_ms: 0,
                at_ms: 1000,
                duration_ms: 1000,
            }],
            status_page: None,
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2 ("Jefe"), with the message split where we split it.
        let sig = sign("Jefe", 0, b"what do ya want for nothing?");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, format!("t=0,v1={want}"));
        let w = render(
            &sink(SinkKind::Webhook, "https://h/x"),
            &note(EventKind::Opened),
            7,
        )
        .unwrap();
        let header = &w
            .headers
            .iter()
            .find(|(h, _)| *h == SIGNATURE_HEADER)
            .unwrap()
            .1;
        assert_eq!(*header, sign("hush-hush-secret", 7, &w.body));
    }

    #[test]
    fn telegram_posts_send_message_under_the_bot_token() {
        let o = render(
            &sink(SinkKind::Telegram, "https://api.telegram.org"),
            &note(EventKind::Opened),
            0,
        )
        .unwrap();
        assert_eq!(o.url.path(), "/bot123:tok-en/sendMessage");
        let v: serde_json::Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(v["chat_id"], "-100");
        assert!(v["text"].as_str().unwrap().starts_with("DOWN: Main — gpt"));
    }

    #[test]
    fn pagerduty_triggers_and_resolves_with_the_incident_key() {
        let s = sink(
            SinkKind::Pagerduty,
            "https://events.pagerduty.com/v2/enqueue",
        );
        let t: serde_json::Value =
            serde_json::from_slice(&render(&s, &note(EventKind::Opened), 0).unwrap().body).unwrap();
        assert_eq!(
            (
                &t["event_action"],
                &t["dedup_key"],
                &t["payload"]["severity"]
            ),
            (
                &json!("trigger"),
                &json!("chanmon-inc1"),
                &json!("critical")
            )
        );
        assert!(t["payload"]["summary"].as_str().unwrap().len() <= 1024);
        let r: serde_json::Value =
            serde_json::from_slice(&render(&s, &note(EventKind::Resolved), 0).unwrap().body)
                .unwrap();
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], "chanmon-inc1");
        assert!(r.get("payload").is_none());
    }

    #[test]
    fn ntfy_and_chat_shapes() {
        let o = render(
            &sink(SinkKind::Ntfy, "https://ntfy.sh/topic"),
            &note(EventKind::Opened),
            0,
        )
        .unwrap();
        assert!(o.headers.iter().any(|(h, v)| *h == "Title" && v.is_ascii()));
        assert!(String::from_utf8(o.body).unwrap().contains("timed out"));
        for (kind, field) in [(SinkKind::Slack, "text"), (SinkKind::Discord, "content")] {
            let o = render(&sink(kind, "https://h/hook"), &note(EventKind::Resolved), 0).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.body).unwrap();
            assert!(
                v[field].as_str().unwrap().starts_with("RESOLVED: Main"),
                "{v}"
            );
        }
    }
}
