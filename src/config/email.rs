//! The keys of an `[[alert]] type = "email"` sink, read into [`EmailSettings`].
//!
//! The SMTP server is judged by the sink's own `[alert.network]` like any sink's URL: a
//! private or local server needs an explicit allow, and `tls = "none"` (cleartext password
//! and alerts) is only accepted for such a server. The user name and password are secrets:
//! messages name the key, never the value.

use super::diag::{Diags, Sp};
use super::fields::{Section, a_type};
use crate::alert::email::check_mailbox;
use crate::alert::{EmailSettings, SmtpTls};
use crate::net::NetworkPolicy;
use toml::de::DeValue;

/// The keys only an email sink uses.
pub(super) const EMAIL_KEYS: &[&str] = &[
    "smtp_host",
    "smtp_port",
    "tls",
    "username",
    "password",
    "from",
    "to",
    "subject",
];

/// An email sink's settings; `None` (with errors reported) when one is missing or wrong.
pub(super) fn read(
    s: &Section<'_, '_>,
    network: &NetworkPolicy,
    d: &mut Diags<'_>,
) -> Option<EmailSettings> {
    let tls = read_tls(s, d);
    check_network(s, network, d);
    let host = read_host(s, tls, network, d);
    let port = s
        .integer(d, "smtp_port", 1..=65535)
        .map(|p| p.v as u16)
        .or_else(|| tls.map(|t| t.default_port()));
    let username = super::alerts::secret(s, "username", d);
    let password = super::alerts::secret(s, "password", d);
    let credentials_ok = match (s.raw("username"), s.raw("password")) {
        (Some(_), None) | (None, Some(_)) => {
            d.error(
                &s.span,
                format!(
                    "{} sets only one of `username` and `password`; set both, or neither for a server without authentication",
                    s.ctx
                ),
            );
            false
        }
        _ => true,
    };
    let from = read_from(s, d);
    let to = read_to(s, d);
    let subject = read_subject(s, d);
    if !credentials_ok {
        return None;
    }
    Some(EmailSettings {
        host: host?,
        port: port?,
        tls: tls?,
        username,
        password,
        from: from?,
        to: to?,
        subject,
    })
}

/// `[alert.network]` settings SMTP cannot honour are errors rather than silently ignored:
/// there is no proxy for SMTP, and the transport takes neither a client certificate nor
/// `tls_insecure`.
fn check_network(s: &Section<'_, '_>, network: &NetworkPolicy, d: &mut Diags<'_>) {
    let Some((_, v)) = s.raw("network") else {
        return;
    };
    let unsupported: Vec<&str> = [
        ("proxy", network.proxy.is_some()),
        ("client_cert", network.tls.client.is_some()),
        ("tls_insecure", network.tls.insecure),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    if let Some(first) = unsupported.first() {
        // At the key itself when it is written in this table (it may be inherited as a whole).
        let at = match v.get_ref() {
            DeValue::Table(t) => t.get_key_value(*first).map(|(k, _)| k.span()),
            _ => None,
        }
        .unwrap_or_else(|| v.span());
        d.error(
            &at,
            format!(
                "[alert.network] of {}: {} cannot apply to an email sink (SMTP goes direct, checked against the system's roots and `ca_file`)",
                s.ctx,
                unsupported.join(", ")
            ),
        );
    }
}

/// `tls`: `starttls` (the default), `tls` or `none`.
fn read_tls(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<SmtpTls> {
    let Some(t) = s.string(d, "tls") else {
        return s.raw("tls").is_none().then_some(SmtpTls::StartTls);
    };
    let mode = SmtpTls::parse(t.v.trim());
    if mode.is_none() {
        d.error(
            &t.span,
            format!(
                "{}: unknown mode \"{}\"; choose one of: starttls, tls, none",
                s.name("tls"),
                t.v
            ),
        );
    }
    mode
}

/// `smtp_host`: required; allowed by the sink's policy; local when `tls = "none"`.
fn read_host(
    s: &Section<'_, '_>,
    tls: Option<SmtpTls>,
    network: &NetworkPolicy,
    d: &mut Diags<'_>,
) -> Option<String> {
    let Some(h) = s.string(d, "smtp_host") else {
        if s.raw("smtp_host").is_none() {
            d.error(&s.span, format!("{} (type email) needs `smtp_host`", s.ctx));
        }
        return None;
    };
    let host = h.v.trim().to_owned();
    if let Err(b) = crate::net::check_host(&host, network) {
        d.error(
            &h.span,
            format!(
                "{} targets {host} ({}); a private or local server needs an explicit allow: set allow_private = true or allow_cidrs in this sink's [alert.network]",
                s.name("smtp_host"),
                b.0
            ),
        );
        return None;
    }
    if tls == Some(SmtpTls::None) && !crate::net::host_is_local(&host) {
        let at = s.raw("tls").map_or(h.span.clone(), |(_, v)| v.span());
        d.error(
            &at,
            format!(
                "{}: \"none\" sends the password and the alerts in clear, so it is only allowed to a loopback or private server (with this sink's [alert.network] allow), not to {host}; use starttls or tls",
                s.name("tls")
            ),
        );
        return None;
    }
    Some(host)
}

fn read_from(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<String> {
    let Some(f) = s.string(d, "from") else {
        if s.raw("from").is_none() {
            d.error(
                &s.span,
                format!(
                    "{} (type email) needs `from`, e.g. \"chanmon <alerts@example.com>\"",
                    s.ctx
                ),
            );
        }
        return None;
    };
    mailbox(s, "from", f, d)
}

/// `to`: one address or a list of them.
fn read_to(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<Vec<String>> {
    let Some((_, v)) = s.raw("to") else {
        d.error(
            &s.span,
            format!(
                "{} (type email) needs `to`, one address or a list of them",
                s.ctx
            ),
        );
        return None;
    };
    let list: Vec<Sp<String>> = match v.get_ref() {
        DeValue::String(one) => vec![Sp::new(one.to_string(), v.span())],
        DeValue::Array(_) => s.string_list(d, "to")?.v,
        other => {
            d.error(
                &v.span(),
                format!(
                    "{} must be an address or a list of addresses, not {}",
                    s.name("to"),
                    a_type(other)
                ),
            );
            return None;
        }
    };
    if list.is_empty() {
        d.error(
            &v.span(),
            format!("{} is empty; name at least one address", s.name("to")),
        );
        return None;
    }
    let n = list.len();
    let good: Vec<String> = list
        .into_iter()
        .filter_map(|a| mailbox(s, "to", a, d))
        .collect();
    (good.len() == n).then_some(good)
}

fn mailbox(s: &Section<'_, '_>, key: &str, a: Sp<String>, d: &mut Diags<'_>) -> Option<String> {
    let addr = a.v.trim().to_owned();
    match check_mailbox(&addr) {
        Ok(()) => Some(addr),
        Err(e) => {
            d.error(
                &a.span,
                format!(
                    "{}: \"{addr}\" is not an email address ({e}); write \"a@example.com\" or \"Name <a@example.com>\"",
                    s.name(key)
                ),
            );
            None
        }
    }
}

/// `subject`: a template, compiled here so a broken one is a config error.
fn read_subject(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<String> {
    let t = s.string(d, "subject")?;
    match crate::alert::template::check(&t.v) {
        Ok(()) => Some(t.v),
        Err(e) => {
            d.error(&t.span, format!("{}: {e}", s.name("subject")));
            None
        }
    }
}
