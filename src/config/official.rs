//! `official_status` and `official_status_interval`: which public status page a monitor shows
//! beside its own verdict (`"auto"`: the provider's page from the registry; a Statuspage URL;
//! or a table naming the format) and how often the daemon reads it. Default off.

use std::time::Duration;

use toml::de::DeValue;
use url::Url;

use super::diag::{Diags, Sp};
use super::fields::{Section, a_type};
use crate::official::{StatusFormat, StatusSource};

/// The shortest polling interval: status pages are shared, public and rate-limited.
pub(crate) const MIN_OFFICIAL_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_OFFICIAL_INTERVAL: Duration = Duration::from_secs(300);

/// `official_status` as one table wrote it.
#[derive(Debug, Clone)]
pub(crate) enum OfficialKey {
    Off,
    /// The provider's own page from the registry (none for a provider without one).
    Auto,
    Source(Sp<StatusSource>),
}

/// The keys as one table wrote them.
#[derive(Debug, Clone, Default)]
pub(crate) struct OfficialKeys {
    pub status: Option<OfficialKey>,
    pub interval: Option<Duration>,
}

impl OfficialKeys {
    pub(super) fn read(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Self {
        OfficialKeys {
            status: read_status(s, d),
            interval: s
                .duration(
                    d,
                    "official_status_interval",
                    MIN_OFFICIAL_INTERVAL..=Duration::from_secs(24 * 3600),
                    "from 30s to 24h",
                    "5m",
                )
                .map(|i| i.v),
        }
    }

    /// `self` (a monitor) over `defaults`.
    pub(super) fn over(self, defaults: &OfficialKeys) -> OfficialKeys {
        OfficialKeys {
            status: self.status.or_else(|| defaults.status.clone()),
            interval: self.interval.or(defaults.interval),
        }
    }
}

const FORMS: &str = "\"auto\", \"off\", a Statuspage summary URL, or a table { statuspage_url = \"…\" } / { google_incidents_url = \"…\" }";

fn read_status(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<OfficialKey> {
    let (_, v) = s.raw("official_status")?;
    let name = s.name("official_status");
    match v.get_ref() {
        DeValue::String(text) => match text.as_ref() {
            "off" => Some(OfficialKey::Off),
            "auto" => Some(OfficialKey::Auto),
            url => source(d, url, StatusFormat::Statuspage, v.span(), &name),
        },
        DeValue::Table(t) => {
            let t = Section::new(t, v.span(), format!("the official_status of {}", s.ctx));
            let forms = [
                ("statuspage_url", StatusFormat::Statuspage),
                ("google_incidents_url", StatusFormat::GoogleIncidents),
            ];
            t.check_keys(d, &forms.map(|f| f.0), &|_| None);
            let given: Vec<_> = forms.iter().filter(|(k, _)| t.raw(k).is_some()).collect();
            let [(key, format)] = given.as_slice() else {
                d.error(
                    &v.span(),
                    format!(
                        "{name} needs exactly one of `statuspage_url` or `google_incidents_url`"
                    ),
                );
                return None;
            };
            let url = t.string(d, key)?;
            source(d, &url.v, *format, url.span, &t.name(key))
        }
        other => {
            d.error(
                &v.span(),
                format!("{name} must be {FORMS}, not {}", a_type(other)),
            );
            None
        }
    }
}

fn source(
    d: &mut Diags<'_>,
    text: &str,
    format: StatusFormat,
    span: super::diag::Span,
    name: &str,
) -> Option<OfficialKey> {
    let url = match Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        Ok(_) | Err(_) => {
            d.error(
                &span,
                format!("{name} must be {FORMS}; \"{text}\" is not an http(s) URL"),
            );
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        d.error(&span, format!("{name} must not contain user:password@"));
        return None;
    }
    Some(OfficialKey::Source(Sp::new(
        StatusSource { url, format },
        span,
    )))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::official::StatusFormat;

    fn monitor(provider: &str, extra: &str) -> crate::config::MonitorConfig {
        let text = format!(
            "[defaults]\nofficial_status = \"auto\"\n[[monitor]]\nid = \"m\"\nprovider = \"{provider}\"\n\
             api_key = \"k\"\nmodel = \"x\"\n{extra}"
        );
        crate::config::parse(&text, Path::new("t.toml"), &|_| None)
            .unwrap()
            .config
            .monitors
            .remove(0)
    }

    #[test]
    fn auto_asks_the_registry_and_a_monitor_can_turn_it_off() {
        let g = monitor("gemini", "").official_status.unwrap();
        assert_eq!(
            g.url.as_str(),
            "https://status.cloud.google.com/incidents.json"
        );
        assert_eq!(g.format, StatusFormat::GoogleIncidents);
        let a = monitor("anthropic", "official_status_interval = \"1m\"");
        assert_eq!(a.official_status.unwrap().format, StatusFormat::Statuspage);
        assert_eq!(a.official_status_interval.as_secs(), 60);
        assert!(
            monitor("openai", "official_status = \"off\"")
                .official_status
                .is_none()
        );
        let own = monitor(
            "openai",
            "official_status = \"https://status.relay.example/api/v2/summary.json\"",
        );
        assert_eq!(
            own.official_status.unwrap().url.host_str(),
            Some("status.relay.example")
        );
        assert_eq!(
            monitor("openai", "").official_status_interval.as_secs(),
            300
        );
    }
}
