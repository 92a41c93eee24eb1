//! Per-sink message templates (`template` in `[[alert]]`), in Jinja syntax through
//! `minijinja`. A template replaces the default text of chat, push and paging sinks (and
//! `CHANMON_TEXT` of a command sink); the webhook's JSON is the contract and never templated.
//!
//! Variables (docs/alerts.md): `title`, `text` (the default message), `event`, `monitor`,
//! `monitor_name`, `status_page`, and `events`, a list of `{model, status, kind, message,
//! since, duration, incident, event_id}`. Rendering is bounded by fuel (a template cannot
//! loop for ever); a template that fails at send time falls back to the default text, logged.

use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde_json::json;

use super::event::{Notification, fmt_span};
use crate::model::Timestamp;

/// Instructions a template may spend on one message.
const FUEL: u64 = 100_000;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env
}

/// Whether `src` compiles; the error names the line inside the template.
pub(crate) fn check(src: &str) -> Result<(), String> {
    let env = env();
    env.template_from_str(src).map(|_| ()).map_err(describe)
}

/// The message text for `n`.
pub(crate) fn render(src: &str, n: &Notification) -> Result<String, String> {
    let env = env();
    let events: Vec<_> = n
        .events
        .iter()
        .map(|e| {
            json!({
                "model": e.model, "status": e.status, "kind": e.kind, "message": e.message,
                "since": Timestamp(e.since_ms).to_rfc3339(), "duration": fmt_span(e.duration_ms),
                "incident": e.incident, "event_id": e.event_id,
            })
        })
        .collect();
    let first = n.events.first();
    let ctx = json!({
        "title": n.title(),
        "text": n.text(),
        "event": first.map(|e| e.event.as_str()),
        "monitor": first.map(|e| e.monitor.as_str()),
        "monitor_name": first.map(|e| e.monitor_name.as_str()),
        "status_page": n.status_page,
        "events": events,
    });
    env.render_str(src, Value::from(Serde(&ctx)))
        .map(|s| s.trim().to_owned())
        .map_err(describe)
}

fn describe(e: minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "template line {line}: {}",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => format!("template: {}", e.detail().unwrap_or(&e.kind().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertEvent, EventKind};

    fn note() -> Notification {
        Notification {
            event_id: "e1".into(),
            events: ["a", "b"]
                .iter()
                .map(|m| AlertEvent {
                    event_id: format!("e-{m}"),
                    event: EventKind::Opened,
                    incident: "i".into(),
                    monitor: "m".into(),
                    monitor_name: "Main".into(),
                    model: (*m).into(),
                    status: "error".into(),
                    kind: "timeout".into(),
                    message: "slow".into(),
                    since_ms: 0,
                    at_ms: 60_000,
                    duration_ms: 60_000,
                })
                .collect(),
            status_page: None,
        }
    }

    #[test]
    fn variables_render() {
        let t = "{{ event|upper }} {{ monitor_name }}:{% for e in events %} {{ e.model }}={{ e.kind }} ({{ e.duration }}){% endfor %}";
        assert_eq!(
            render(t, &note()).unwrap(),
            "OPENED Main: a=timeout (1m 0s) b=timeout (1m 0s)"
        );
        assert!(
            render("{{ text }}", &note())
                .unwrap()
                .starts_with("DOWN: Main — 2 models")
        );
    }

    #[test]
    fn bad_and_runaway_templates_are_errors() {
        let e = check("line one\n{% for x in %}").unwrap_err();
        assert!(e.starts_with("template line 2"), "{e}");
        let e = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            &note(),
        )
        .unwrap_err();
        assert!(!e.is_empty());
    }
}
