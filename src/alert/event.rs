//! The alert event: what the outbox stores (and a webhook receives) for one incident
//! transition, and the short human text chat sinks show.
//!
//! An event holds facts only — never a sink's URL, token or any other secret — so the outbox
//! can be stored in clear. Messages in it come from stored results, which the redactor has
//! already seen.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    Resolved,
    Reminder,
    /// `chanmon alert test`.
    Test,
    /// chanmon's own trouble (watching the watcher).
    Internal,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Resolved => "resolved",
            EventKind::Reminder => "reminder",
            EventKind::Test => "test",
            EventKind::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::Opened,
            EventKind::Resolved,
            EventKind::Reminder,
            EventKind::Test,
            EventKind::Internal,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One incident transition of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable across retries and restarts: the receiver's idempotency key.
    pub event_id: String,
    pub event: EventKind,
    /// The incident's stable id (PagerDuty's `dedup_key`); empty for tests.
    pub incident: String,
    pub monitor: String,
    pub monitor_name: String,
    pub model: String,
    /// The status and kind of the result that caused the event.
    pub status: String,
    pub kind: String,
    /// The result's (redacted) message.
    pub message: String,
    /// When the failing run began (epoch ms).
    pub since_ms: i64,
    /// When the event happened: the result's start (epoch ms).
    pub at_ms: i64,
    /// How long the incident lasted (resolved) or has lasted so far (ms).
    pub duration_ms: i64,
}

impl AlertEvent {
    /// One line for a list of events: model, status, kind, since, how long, message.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} — {} ({}) since {} ({})",
            self.model,
            self.status,
            self.kind,
            Timestamp(self.since_ms).to_rfc3339(),
            fmt_span(self.duration_ms)
        );
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&clip(&self.message, 200));
        }
        s
    }
}

/// What one notification carries: one event, or several of one monitor grouped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// The first event's id: stable for the group, so a resend carries the same id.
    pub event_id: String,
    pub events: Vec<AlertEvent>,
    /// The status page, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_page: Option<String>,
}

impl Notification {
    /// The title: "DOWN: name — model" or "DOWN: name — 3 models".
    pub fn title(&self) -> String {
        let Some(first) = self.events.first() else {
            return "chanmon".into();
        };
        let what = match first.event {
            EventKind::Opened => "DOWN",
            EventKind::Resolved => "RESOLVED",
            EventKind::Reminder => "STILL DOWN",
            EventKind::Test => "TEST",
            EventKind::Internal => "CHANMON",
        };
        let models = if self.events.len() == 1 {
            first.model.clone()
        } else {
            format!("{} models", self.events.len())
        };
        format!("{what}: {} — {models}", first.monitor_name)
    }

    /// Short lines a phone shows well: the title, one line per model, the link.
    pub fn text(&self) -> String {
        let mut out = self.title();
        for e in &self.events {
            out.push_str("\n• ");
            out.push_str(&e.line());
        }
        if let Some(url) = &self.status_page {
            out.push('\n');
            out.push_str(url);
        }
        out
    }

    pub fn is_resolve(&self) -> bool {
        self.events
            .first()
            .is_some_and(|e| e.event == EventKind::Resolved)
    }
}

/// "3m 20s", "2h 5m", "40s".
pub(crate) fn fmt_span(ms: i64) -> String {
    let secs = (ms.max(0) / 1000) as u64;
    let d = Duration::from_secs(secs);
    if secs >= 3600 {
        format!("{}h {}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// At most `n` characters, with an ellipsis when cut.
pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(model: &str, kind: EventKind) -> AlertEvent {
        AlertEvent {
            event_id: format!("e-{model}"),
            event: kind,
            incident: "i".into(),
            monitor: "m".into(),
            monitor_name: "Main".into(),
            model: model.into(),
            status: "error".into(),
            kind: "timeout".into(),
            message: "x".repeat(300),
            since_ms: 0,
            at_ms: 200_000,
            duration_ms: 200_000,
        }
    }

    #[test]
    fn grouped_text_lists_every_model_and_clips_messages() {
        let n = Notification {
            event_id: "e-a".into(),
            events: vec![ev("a", EventKind::Opened), ev("b", EventKind::Opened)],
            status_page: Some("https://status.example.com".into()),
        };
        let t = n.text();
        assert!(t.starts_with("DOWN: Main — 2 models"), "{t}");
        assert!(
            t.contains("• a — error (timeout)") && t.contains("• b —"),
            "{t}"
        );
        assert!(t.contains("(3m 20s)"), "{t}");
        assert!(t.ends_with("https://status.example.com"));
        assert!(t.len() < 1000, "messages are clipped: {}", t.len());
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = ev("a", EventKind::Resolved);
        let back: AlertEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(EventKind::parse("reminder"), Some(EventKind::Reminder));
    }
}
