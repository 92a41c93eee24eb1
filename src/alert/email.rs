//! The `email` sink: one plain-text message per notification over SMTP, through `lettre`.
//!
//! The network policy applies as to every other sink: the server's name is resolved through
//! the guarded resolver (every answer judged against the sink's `[alert.network]`) and the
//! SMTP client connects to a vetted address only, while TLS still verifies the certificate
//! against the configured host name. `tls = "none"` is accepted only for a loopback or private
//! server (config time) and is refused again at send time if the name resolved to a public
//! address. One connection per notification (no pool): alerts are rare, and a fresh
//! connection re-resolves and re-checks every time.
//!
//! Replies: 2xx from the server at the end of DATA is a delivery; any other outcome (4xx, 5xx,
//! a network or TLS failure, the timeout) is a failed attempt the drainer retries, with the
//! server's reply in the reason.
//!
//! The message carries `Message-ID: <chanmon.<event id>@<from domain>>` and
//! `X-Chanmon-Event-Id`, so a resend after a crash is recognisably the same event.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::SinkConfig;
use super::deliver::Answer;
use super::event::{EventKind, Notification};
use crate::net::NetworkPolicy;
use crate::secret::Secret;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connect, then `STARTTLS` (required: a server that does not offer it is an error).
    StartTls,
    /// TLS from the first byte (SMTPS, "implicit TLS").
    Tls,
    /// No encryption: only to a loopback or private server.
    None,
}

impl SmtpTls {
    pub const ALL: &'static [(&'static str, SmtpTls)] = &[
        ("starttls", SmtpTls::StartTls),
        ("tls", SmtpTls::Tls),
        ("none", SmtpTls::None),
    ];

    pub fn parse(s: &str) -> Option<SmtpTls> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, t)| *t)
    }

    /// Submission (587) for STARTTLS, submissions (465) for TLS, 25 for a local relay.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// An email sink's own settings (`[[alert]] type = "email"`).
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Both or neither (the config enforces it); secrets, since a user name can identify.
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    /// Checked as mailboxes at config time (`Name <a@b>` or `a@b`).
    pub from: String,
    pub to: Vec<String>,
    /// The `Subject:` as a template (`alert::template`); `None`: [`subject`].
    pub subject: Option<String>,
}

/// Whether `s` is a mailbox lettre will accept.
pub(crate) fn check_mailbox(s: &str) -> Result<(), String> {
    s.parse::<Mailbox>().map(|_| ()).map_err(|e| e.to_string())
}

/// "[chanmon] DOWN m1/gpt-4o (timeout)", "[chanmon] RESOLVED m1/gpt-4o",
/// "[chanmon] DOWN m1: 3 models (timeout)".
pub(crate) fn subject(n: &Notification) -> String {
    let Some(first) = n.events.first() else {
        return "[chanmon]".into();
    };
    let what = match first.event {
        EventKind::Opened => "DOWN",
        EventKind::Resolved => "RESOLVED",
        EventKind::Reminder => "STILL DOWN",
        EventKind::Test => "TEST",
        EventKind::Internal => "CHANMON",
    };
    let models = if n.events.len() == 1 {
        format!("{}/{}", first.monitor, first.model)
    } else {
        format!("{}: {} models", first.monitor, n.events.len())
    };
    match first.event {
        EventKind::Opened | EventKind::Reminder => {
            format!("[chanmon] {what} {models} ({})", first.kind)
        }
        _ => format!("[chanmon] {what} {models}"),
    }
}

/// `<chanmon.<event id>@<domain>>`: the same event always gets the same id. Characters an
/// id may not hold become `-`.
pub(crate) fn message_id(event_id: &str, from: &Mailbox) -> String {
    let clean: String = event_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let domain = from.email.domain();
    format!("<chanmon.{clean}@{domain}>")
}

/// `X-Chanmon-Event-Id`, as the webhook sends it.
#[derive(Debug, Clone)]
struct EventIdHeader(String);

impl Header for EventIdHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(super::sink::EVENT_ID_HEADER)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(EventIdHeader(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The message for `n`: the sink's template (or the default text) as a plain-text body.
pub(crate) fn build_message(
    sink: &SinkConfig,
    e: &EmailSettings,
    n: &Notification,
) -> Result<Message, String> {
    let from: Mailbox = e.from.parse().map_err(|err| format!("`from`: {err}"))?;
    let subject = match &e.subject {
        Some(t) => match super::template::render(t, n) {
            // A header is one line.
            Ok(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Err(err) => {
                tracing::warn!(sink = %sink.id, error = %err, "the sink's subject template failed; sending the default subject");
                subject(n)
            }
        },
        None => subject(n),
    };
    let mut b = Message::builder()
        .message_id(Some(message_id(&n.event_id, &from)))
        .from(from)
        .subject(subject)
        .header(EventIdHeader(n.event_id.clone()))
        .header(ContentType::TEXT_PLAIN);
    for to in &e.to {
        b = b.to(to.parse().map_err(|err| format!("`to` {to:?}: {err}"))?);
    }
    let mut body = super::sink::text_of(sink, n);
    body.push('\n');
    b.body(body)
        .map_err(|err| format!("building the message: {err}"))
}

/// The transport to one vetted address; TLS verifies `e.host`, with the sink's extra CA.
pub(crate) fn transport(
    e: &EmailSettings,
    ip: IpAddr,
    network: &NetworkPolicy,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = match e.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let domain = e.host.trim_start_matches('[').trim_end_matches(']');
            let mut params = TlsParameters::builder(domain.to_owned());
            if let Some(ca) = &network.tls.ca_file {
                let pem = std::fs::read(ca.path())
                    .map_err(|err| format!("reading {}: {err}", ca.path().display()))?;
                params = params.add_root_certificate(
                    Certificate::from_pem(&pem).map_err(|err| format!("ca_file: {err}"))?,
                );
            }
            let params = params
                .build()
                .map_err(|err| format!("TLS settings: {err}"))?;
            if mode == SmtpTls::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip.to_string())
        .port(e.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        b = b.credentials(Credentials::new(
            u.expose().to_owned(),
            p.expose().to_owned(),
        ));
    }
    Ok(b.build())
}

/// Sends `n` through an email sink. `Err` is not yet redacted: the caller redacts.
pub(crate) async fn send(sink: &SinkConfig, n: &Notification) -> Result<Answer, String> {
    let e = sink
        .email
        .as_ref()
        .ok_or("the email sink has no settings")?;
    let message = build_message(sink, e, n)?;
    let work = async {
        let ips = crate::net::vetted_ips(&e.host, &sink.network).await?;
        if e.tls == SmtpTls::None
            && let Some(ip) = ips
                .iter()
                .find(|ip| !crate::net::host_is_local(&ip.to_string()))
        {
            return Err(format!(
                "{} resolved to the public address {ip}; tls = \"none\" is only for a loopback or private server",
                e.host
            ));
        }
        let mut last = String::from("no address");
        for ip in ips {
            let t = transport(e, ip, &sink.network, sink.timeout)?;
            match t.send(message.clone()).await {
                Ok(r) => {
                    return Ok(Answer {
                        status: u16::from(r.code()),
                        body: r.message().collect::<Vec<_>>().join(" "),
                    });
                }
                // The server answered: trying another address would send it twice.
                Err(err) if err.status().is_some() => return Err(describe(&err)),
                Err(err) => last = format!("{} ({ip} port {}): {}", e.host, e.port, describe(&err)),
            }
        }
        Err(last)
    };
    match tokio::time::timeout(sink.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "SMTP delivery to {} did not finish within {:?}",
            e.host, sink.timeout
        )),
    }
}

/// "SMTP 451 (temporary): …", "SMTP 550 (permanent): …", or the connection's error.
fn describe(err: &lettre::transport::smtp::Error) -> String {
    let mut text = err.to_string();
    if let Some(code) = err.status() {
        let how = if err.is_transient() {
            "temporary"
        } else {
            "permanent"
        };
        text = format!("SMTP {code} ({how}): {text}");
    }
    super::event::clip(&text, 400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::event::AlertEvent;
    use crate::alert::sink::SinkKind;

    fn note(kind: EventKind, models: &[&str]) -> Notification {
        Notification {
            event_id: "ev:1/2".into(),
            events: models
                .iter()
                .map(|m| AlertEvent {
                    event_id: format!("ev-{m}"),
                    event: kind,
                    incident: "inc".into(),
                    monitor: "m1".into(),
                    monitor_name: "Main".into(),
                    model: (*m).into(),
                    status: "error".into(),
                    kind: "timeout".into(),
                    message: "timed out".into(),
                    since_ms: 0,
                    at_ms: 60_000,
                    duration_ms: 60_000,
                })
                .collect(),
            status_page: Some("https://status.example.com".into()),
        }
    }

    fn settings(tls: SmtpTls) -> EmailSettings {
        EmailSettings {
            host: "mail.example.com".into(),
            port: tls.default_port(),
            tls,
            username: Some(Secret::new("ops")),
            password: Some(Secret::new("pa55-word")),
            from: "chanmon <alerts@example.com>".into(),
            to: vec!["a@example.com".into(), "B <b@example.org>".into()],
            subject: None,
        }
    }

    fn sink(e: EmailSettings) -> SinkConfig {
        SinkConfig {
            id: "mail".into(),
            kind: SinkKind::Email,
            url: Secret::new(""),
            secret: None,
            token: None,
            chat_id: None,
            command: vec![],
            template: None,
            timeout: Duration::from_secs(5),
            network: NetworkPolicy::default(),
            email: Some(e),
        }
    }

    #[test]
    fn subjects_name_the_event_monitor_model_and_kind() {
        assert_eq!(
            subject(&note(EventKind::Opened, &["gpt-4o"])),
            "[chanmon] DOWN m1/gpt-4o (timeout)"
        );
        assert_eq!(
            subject(&note(EventKind::Resolved, &["gpt-4o"])),
            "[chanmon] RESOLVED m1/gpt-4o"
        );
        assert_eq!(
            subject(&note(EventKind::Opened, &["a", "b", "c"])),
            "[chanmon] DOWN m1: 3 models (timeout)"
        );
    }

    #[test]
    fn the_message_carries_the_event_id_and_a_plain_text_body() {
        let s = sink(settings(SmtpTls::StartTls));
        let m = build_message(
            &s,
            s.email.as_ref().unwrap(),
            &note(EventKind::Opened, &["gpt"]),
        )
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <chanmon.ev-1-2@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("X-Chanmon-Event-Id: ev:1/2"), "{raw}");
        assert!(
            raw.contains("Subject: [chanmon] DOWN m1/gpt (timeout)"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(raw.contains("b@example.org"), "{raw}");
        assert!(!raw.contains("pa55-word"));
    }

    #[test]
    fn a_subject_template_renders_on_one_line() {
        let mut e = settings(SmtpTls::Tls);
        e.subject = Some("{{ event }}\n{{ monitor }}".into());
        let s = sink(e);
        let m = build_message(
            &s,
            s.email.as_ref().unwrap(),
            &note(EventKind::Resolved, &["gpt"]),
        )
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Subject: resolved m1\r\n"), "{raw}");
    }

    #[test]
    fn each_tls_mode_builds_a_transport_on_its_default_port() {
        assert_eq!(
            SmtpTls::ALL
                .iter()
                .map(|(_, t)| t.default_port())
                .collect::<Vec<_>>(),
            vec![587, 465, 25]
        );
        for (_, mode) in SmtpTls::ALL {
            let e = settings(*mode);
            transport(
                &e,
                [192, 0, 2, 1].into(),
                &NetworkPolicy::default(),
                Duration::from_secs(5),
            )
            .unwrap();
        }
        assert!(check_mailbox("ops <ops@example.com>").is_ok());
        assert!(check_mailbox("not an address").is_err());
    }
}
