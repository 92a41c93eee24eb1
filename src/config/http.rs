//! `[http]`: the optional HTTP side (status page, JSON API, `/metrics`, badges, health).
//!
//! Nothing here opens a socket: `listen` only says where `chanmon run` (and, by default,
//! `chanmon serve`) would. Without it the daemon opens no port.

use std::net::SocketAddr;

use super::diag::Diags;
use super::fields::Section;
use crate::secret::Secret;

pub(super) const HTTP_KEYS: &[&str] = &[
    "listen",
    "title",
    "description",
    "show_details",
    "token",
    "public",
];

/// Longest title and description accepted (they are shown on every page).
const MAX_TITLE: usize = 120;
const MAX_DESCRIPTION: usize = 2_000;
/// A shorter token is guessable by anyone who can reach the port.
const MIN_TOKEN: usize = 16;

/// The `[http]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Where `chanmon run` serves; `None`: no port (unless `--listen` is given).
    pub listen: Option<SocketAddr>,
    /// The page's heading and `<title>`.
    pub title: String,
    /// An optional paragraph under the title.
    pub description: Option<String>,
    /// Show endpoints and message text (default false: statuses, kinds and figures only, safe
    /// to make public).
    pub show_details: bool,
    /// Required on every route except `/healthz` and `/readyz` (and the page and badges when
    /// `public`); `None`: no authentication.
    pub token: Option<Secret>,
    /// With a token: the status page and badges need none (the API and `/metrics` still do).
    pub public: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: None,
            title: "chanmon status".to_owned(),
            description: None,
            show_details: false,
            token: None,
            public: false,
        }
    }
}

/// Reads and validates `[http]`.
pub(super) fn read_http(s: &Section<'_, '_>, d: &mut Diags<'_>) -> HttpConfig {
    s.check_keys(d, HTTP_KEYS, &|k| match k {
        "port" | "address" | "bind" => Some("write `listen = \"127.0.0.1:9464\"`".into()),
        "password" | "auth" => Some("the password is `token` (use \"${VAR}\")".into()),
        _ => None,
    });
    let def = HttpConfig::default();
    let listen = s.string(d, "listen").and_then(|l| {
        match l.v.trim().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                d.error(
                    &l.span,
                    format!(
                        "{}: \"{}\" is not an address and port; write it like \"127.0.0.1:9464\" or \"[::1]:9464\"",
                        s.name("listen"),
                        l.v
                    ),
                );
                None
            }
        }
    });
    let title = bounded_text(s, d, "title", MAX_TITLE).unwrap_or(def.title);
    let description = bounded_text(s, d, "description", MAX_DESCRIPTION);
    let token = s.string(d, "token").and_then(|t| {
        let len = t.v.chars().count();
        if t.v.trim() != t.v || len < MIN_TOKEN {
            d.error(
                &t.span,
                format!(
                    "{} must be at least {MIN_TOKEN} characters without surrounding spaces (got {len}); use a long random value from the environment, e.g. token = \"${{CHANMON_HTTP_TOKEN}}\"",
                    s.name("token")
                ),
            );
            return None;
        }
        Some(Secret::new(t.v))
    });
    let public = s.boolean(d, "public");
    if let Some(p) = &public
        && p.v
        && token.is_none()
        && s.raw("token").is_none()
    {
        d.warn(
            &p.span,
            format!(
                "{} has no effect without `token`: every route is already open",
                s.name("public")
            ),
        );
    }
    HttpConfig {
        listen,
        title,
        description,
        show_details: s.boolean(d, "show_details").is_some_and(|b| b.v),
        token,
        public: public.is_some_and(|b| b.v),
    }
}

/// A non-empty string of at most `max` characters.
fn bounded_text(s: &Section<'_, '_>, d: &mut Diags<'_>, key: &str, max: usize) -> Option<String> {
    let v = s.string(d, key)?;
    let n = v.v.chars().count();
    if v.v.trim().is_empty() || n > max {
        d.error(
            &v.span,
            format!(
                "{} must be 1 to {max} characters (got {n}); leave it out for the default",
                s.name(key)
            ),
        );
        return None;
    }
    Some(v.v)
}
