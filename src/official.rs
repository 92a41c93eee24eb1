//! The provider's own word on its health: what a public status page says, parsed from the two
//! formats providers publish (Atlassian Statuspage `summary.json`, used by OpenAI and Anthropic
//! and many relays; Google Cloud's `incidents.json`). Pure: the runner fetches, this reads,
//! the store keeps the latest per URL. It is shown beside chanmon's verdict and never changes
//! it: a provider saying "operational" does not make a failing probe pass.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Timestamp;

/// Which format a status URL speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusFormat {
    /// Atlassian Statuspage `/api/v2/summary.json`.
    Statuspage,
    /// Google Cloud's `incidents.json`: every incident ever, open ones without an `end`.
    GoogleIncidents,
}

/// A status URL and its format: what the daemon polls (once per distinct source).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusSource {
    pub url: url::Url,
    pub format: StatusFormat,
}

/// The page's overall indicator, Statuspage's vocabulary (Google's severities are mapped to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    None,
    Minor,
    Major,
    Critical,
    Maintenance,
    /// The page could not be fetched or read (the reason is in `error`).
    Unknown,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
            Indicator::Maintenance => "maintenance",
            Indicator::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Indicator> {
        [
            Indicator::None,
            Indicator::Minor,
            Indicator::Major,
            Indicator::Critical,
            Indicator::Maintenance,
            Indicator::Unknown,
        ]
        .into_iter()
        .find(|i| i.as_str() == s)
    }
}

/// One open incident as the page names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub name: String,
    /// `none`/`minor`/`major`/`critical` (Statuspage), `low`/`medium`/`high` (Google).
    pub impact: String,
    /// `investigating`, `identified`, `monitoring`… (Google: the latest update's status).
    pub status: String,
    pub updated_at: String,
}

/// The latest reading of one status URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfficialStatus {
    pub url: String,
    pub indicator: Indicator,
    pub description: String,
    pub incidents: Vec<Incident>,
    /// When the page was read; `None` when the daemon has not read it yet.
    pub checked_at: Option<Timestamp>,
    /// Why the indicator is `unknown`.
    pub error: Option<String>,
}

impl OfficialStatus {
    /// The reading when the page could not be fetched or read.
    pub fn unknown(url: &str, checked_at: Option<Timestamp>, error: String) -> OfficialStatus {
        OfficialStatus {
            url: url.to_owned(),
            indicator: Indicator::Unknown,
            description: String::new(),
            incidents: Vec::new(),
            checked_at,
            error: Some(error),
        }
    }
}

/// What a page says: indicator, description, open incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub indicator: Indicator,
    pub description: String,
    pub incidents: Vec<Incident>,
}

/// At most this many incidents are kept per page (a page in meltdown must not bloat the row).
const MAX_INCIDENTS: usize = 20;
/// Google's page covers all of Google Cloud; only incidents naming these products concern a
/// Gemini channel.
const GOOGLE_AI_PRODUCTS: &[&str] = &["gemini", "vertex ai", "generative", "ai studio"];

/// Reads `body` in `format`. An error says what was wrong, for the `unknown` reading.
pub fn parse(format: StatusFormat, body: &[u8]) -> Result<Reading, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the status page is not JSON: {e}"))?;
    match format {
        StatusFormat::Statuspage => parse_statuspage(&v),
        StatusFormat::GoogleIncidents => parse_google(&v),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn parse_statuspage(v: &Value) -> Result<Reading, String> {
    let status = v
        .get("status")
        .ok_or("not a Statuspage summary: no `status` object")?;
    let raw = status
        .get("indicator")
        .and_then(Value::as_str)
        .ok_or("not a Statuspage summary: no `status.indicator`")?;
    let indicator = Indicator::parse(raw)
        .filter(|i| *i != Indicator::Unknown)
        .ok_or_else(|| format!("unknown Statuspage indicator {raw:?}"))?;
    let incidents = v
        .get("incidents")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|i| {
                    !matches!(
                        i.get("status").and_then(Value::as_str),
                        Some("resolved" | "postmortem")
                    )
                })
                .take(MAX_INCIDENTS)
                .map(|i| Incident {
                    name: text(i, "name"),
                    impact: text(i, "impact"),
                    status: text(i, "status"),
                    updated_at: text(i, "updated_at"),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Reading {
        indicator,
        description: text(status, "description"),
        incidents,
    })
}

fn parse_google(v: &Value) -> Result<Reading, String> {
    let all = v
        .as_array()
        .ok_or("not a Google incidents list: the document is not an array")?;
    let concerns_ai = |i: &Value| {
        let mut names = vec![text(i, "service_name")];
        if let Some(products) = i.get("affected_products").and_then(Value::as_array) {
            names.extend(products.iter().map(|p| text(p, "title")));
        }
        names.iter().any(|n| {
            let n = n.to_ascii_lowercase();
            GOOGLE_AI_PRODUCTS.iter().any(|p| n.contains(p))
        })
    };
    let open: Vec<&Value> = all
        .iter()
        .filter(|i| i.get("end").is_none_or(Value::is_null) && concerns_ai(i))
        .collect();
    let indicator = open
        .iter()
        .map(|i| match text(i, "severity").as_str() {
            "high" => Indicator::Major,
            _ => Indicator::Minor,
        })
        .max_by_key(|i| matches!(i, Indicator::Major))
        .unwrap_or(Indicator::None);
    let description = match open.len() {
        0 => "No open incidents".to_owned(),
        1 => "1 open incident".to_owned(),
        n => format!("{n} open incidents"),
    };
    let incidents = open
        .iter()
        .take(MAX_INCIDENTS)
        .map(|i| {
            let latest = i.get("most_recent_update").unwrap_or(&Value::Null);
            Incident {
                name: text(i, "external_desc"),
                impact: text(i, "severity"),
                status: text(latest, "status"),
                updated_at: match text(i, "modified") {
                    m if m.is_empty() => text(latest, "when"),
                    m => m,
                },
            }
        })
        .collect();
    Ok(Reading {
        indicator,
        description,
        incidents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuspage_summary_gives_indicator_and_open_incidents() {
        let body = br#"{"page":{"id":"x","name":"OpenAI"},
            "status":{"indicator":"major","description":"Partial System Outage"},
            "components":[],
            "incidents":[
              {"name":"Elevated errors on GPT-4o","status":"identified","impact":"major",
               "updated_at":"2026-12-01T10:00:00Z","shortlink":"https://stspg.io/x"},
              {"name":"Old","status":"resolved","impact":"minor","updated_at":"2026-11-01T10:00:00Z"}],
            "scheduled_maintenances":[]}"#;
        let r = parse(StatusFormat::Statuspage, body).unwrap();
        assert_eq!(r.indicator, Indicator::Major);
        assert_eq!(r.description, "Partial System Outage");
        assert_eq!(r.incidents.len(), 1);
        assert_eq!(r.incidents[0].name, "Elevated errors on GPT-4o");
        assert_eq!(r.incidents[0].status, "identified");
        let ok = br#"{"status":{"indicator":"none","description":"All Systems Operational"}}"#;
        let r = parse(StatusFormat::Statuspage, ok).unwrap();
        assert_eq!((r.indicator, r.incidents.len()), (Indicator::None, 0));
    }

    #[test]
    fn google_incidents_keep_open_ai_incidents_only() {
        let body = br#"[
          {"id":"a","begin":"2026-12-01T09:00:00+00:00","end":null,"external_desc":"Gemini API errors",
           "severity":"high","service_name":"Vertex Gemini API","modified":"2026-12-01T09:30:00+00:00",
           "most_recent_update":{"status":"SERVICE_OUTAGE","when":"2026-12-01T09:30:00+00:00"},
           "affected_products":[{"title":"Vertex Gemini API","id":"z"}]},
          {"id":"b","begin":"2026-12-01T08:00:00+00:00","external_desc":"Cloud SQL latency",
           "severity":"high","service_name":"Cloud SQL","affected_products":[{"title":"Cloud SQL"}]},
          {"id":"c","begin":"2026-11-01T08:00:00+00:00","end":"2026-11-01T09:00:00+00:00",
           "external_desc":"Old Gemini","severity":"low","service_name":"Gemini"}
        ]"#;
        let r = parse(StatusFormat::GoogleIncidents, body).unwrap();
        assert_eq!(r.indicator, Indicator::Major);
        assert_eq!(r.incidents.len(), 1);
        assert_eq!(r.incidents[0].name, "Gemini API errors");
        assert_eq!(r.incidents[0].status, "SERVICE_OUTAGE");
        let r = parse(StatusFormat::GoogleIncidents, b"[]").unwrap();
        assert_eq!(
            (r.indicator, r.description.as_str()),
            (Indicator::None, "No open incidents")
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_reading() {
        for (f, body) in [
            (StatusFormat::Statuspage, &b"<html>maintenance</html>"[..]),
            (
                StatusFormat::Statuspage,
                br#"{"status":{"indicator":"purple"}}"#,
            ),
            (StatusFormat::Statuspage, b"[]"),
            (StatusFormat::GoogleIncidents, br#"{"status":{}}"#),
            (StatusFormat::GoogleIncidents, b""),
        ] {
            assert!(
                parse(f, body).is_err(),
                "{f:?} {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
