//! The vocabulary every module shares: monitor ids, check verdicts and timestamps.
//!
//! Status and kind are stored as small integers; the numbering here is part of the database
//! format and must never be reordered (append only).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A monitor's stable slug (`[a-z0-9][a-z0-9_-]{0,63}`), the key everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MonitorId(String);

impl MonitorId {
    /// Accepts a slug: lower-case ASCII letters, digits, `-` and `_`, starting with a letter or
    /// digit, at most 64 characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok_first = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok_first && ok_rest && s.len() <= 64 {
            Ok(MonitorId(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a valid id: use 1-64 lower-case letters, digits, `-` or `_`, starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MonitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest location name.
pub const MAX_LOCATION_LEN: usize = 64;

/// Checks a location name (`[runner] location`, `--location`, a monitor's `locations`):
/// 1-64 characters of `[a-z0-9._-]`. The empty location (none named) is never written.
pub fn check_location(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_LOCATION_LEN
        && s.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid location: use 1-{MAX_LOCATION_LEN} lower-case letters, digits, `.`, `_` or `-`"
        ))
    }
}

/// Milliseconds since the Unix epoch, UTC. The one timestamp type of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-28T19:41:49.123Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        match u64::try_from(secs) {
            Ok(s) => {
                let t = UNIX_EPOCH + Duration::from_secs(s);
                let base = humantime::format_rfc3339_seconds(t).to_string();
                // base ends with 'Z'; splice milliseconds in before it.
                format!("{}.{ms:03}Z", base.trim_end_matches('Z'))
            }
            Err(_) => format!("{}ms", self.0),
        }
    }

    /// Parses RFC 3339 (`2026-11-28T10:00:00Z`), a date (`2026-11-28`, midnight UTC), or epoch
    /// milliseconds.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(Timestamp(ms));
        }
        let candidate = if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') {
            format!("{s}T00:00:00Z")
        } else {
            s.to_owned()
        };
        humantime::parse_rfc3339_weak(&candidate)
            .or_else(|_| humantime::parse_rfc3339(&candidate))
            .map_err(|e| format!("`{s}` is not a timestamp ({e}); use RFC 3339 like 2026-11-28T10:00:00Z, a date like 2026-11-28, or epoch milliseconds"))
            .and_then(|t| {
                t.duration_since(UNIX_EPOCH)
                    .map(|d| Timestamp(d.as_millis() as i64))
                    .map_err(|_| format!("`{s}` is before 1970"))
            })
    }
}

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:expr => $text:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The integer stored in the database.
            pub fn code(self) -> u8 {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: i64) -> Option<Self> {
                match code { $(c if c == $code => Some($name::$variant),)+ _ => None }
            }

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} `{s}`; expected one of: {}",
                        stringify!($name).to_lowercase(),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

coded_enum! {
    /// The verdict of one check of one model.
    Status {
        /// Answered correctly within `degraded_after`.
        Operational = 0 => "operational",
        /// Answered correctly, but slower than `degraded_after`.
        Degraded = 1 => "degraded",
        /// A 2xx reply, but wrong, empty or unparseable.
        Failed = 2 => "failed",
        /// No answer at all: network, HTTP error, key problem.
        Error = 3 => "error",
    }
}

impl Status {
    /// Counts towards availability.
    pub fn is_up(self) -> bool {
        matches!(self, Status::Operational | Status::Degraded)
    }

    /// Exit code of `chanmon check` when this is the worst status seen.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Operational => 0,
            Status::Degraded => 1,
            Status::Failed | Status::Error => 2,
        }
    }

    /// Single letter for compact timelines.
    pub fn letter(self) -> char {
        match self {
            Status::Operational => 'o',
            Status::Degraded => 'd',
            Status::Failed => 'F',
            Status::Error => 'E',
        }
    }
}

coded_enum! {
    /// Why a check got its status.
    Kind {
        Ok = 0 => "ok",
        Slow = 1 => "slow",
        ChallengeMismatch = 2 => "challenge_mismatch",
        Empty = 3 => "empty",
        Malformed = 4 => "malformed",
        Refused = 5 => "refused",
        Timeout = 6 => "timeout",
        Connect = 7 => "connect",
        Dns = 8 => "dns",
        Tls = 9 => "tls",
        Blocked = 10 => "blocked",
        Redirect = 11 => "redirect",
        Auth = 12 => "auth",
        NotFound = 13 => "not_found",
        RateLimited = 14 => "rate_limited",
        Overloaded = 15 => "overloaded",
        ServerError = 16 => "server_error",
        ClientError = 17 => "client_error",
        KeyUnavailable = 18 => "key_unavailable",
        /// The probe itself crashed (a bug in chanmon, not the upstream).
        Internal = 19 => "internal",
        /// The reply names another model than the one asked for (`on_model_mismatch`).
        ModelMismatch = 20 => "model_mismatch",
        /// A streamed answer wrote fewer tokens per second than `degraded_below_tps`.
        LowThroughput = 21 => "low_throughput",
    }
}

impl Kind {
    /// The status a kind implies (`Ok` implies operational; `Slow` degraded).
    pub fn status(self) -> Status {
        match self {
            Kind::Ok => Status::Operational,
            Kind::Slow | Kind::ModelMismatch | Kind::LowThroughput => Status::Degraded,
            Kind::ChallengeMismatch | Kind::Empty | Kind::Malformed | Kind::Refused => {
                Status::Failed
            }
            _ => Status::Error,
        }
    }
}

/// The result of checking one model of one monitor once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub monitor: MonitorId,
    pub model: String,
    /// When the request started.
    pub started_at: Timestamp,
    pub status: Status,
    pub kind: Kind,
    /// The upstream's HTTP status, when one was received.
    pub http_status: Option<u16>,
    /// Request start to the first non-empty content token.
    pub ttft_ms: Option<u32>,
    /// Request start to the end of the reply.
    pub latency_ms: Option<u32>,
    /// HEAD to the endpoint origin, measured concurrently.
    pub ping_ms: Option<u32>,
    /// Redacted, whitespace-collapsed, at most 500 chars. Empty when there is nothing to say.
    pub message: String,
    /// What the reply said about itself and what it cost (flattened into the JSON object).
    #[serde(flatten)]
    pub facts: ReplyFacts,
    /// Where the check ran (`[runner] location` / `--location`); `""` when no location was
    /// named. Part of the series key: a model probed from two places is two series.
    #[serde(default)]
    pub location: String,
    /// The schedule slot this check was run for: its due time on the daemon's tick grid.
    /// `None` for `chanmon check` and for rows recorded before slots were.
    #[serde(default)]
    pub due_at: Option<Timestamp>,
}

/// What a reply reported beyond its answer. Every field is `None` when not recorded: the reply
/// did not say, the check never got a reply, or the row predates these columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyFacts {
    /// The model the reply names (OpenAI `model`, Anthropic `model`, Gemini `modelVersion`).
    pub answered_model: Option<String>,
    /// Prompt tokens.
    pub tokens_in: Option<u32>,
    /// Completion tokens, reasoning included.
    pub tokens_out: Option<u32>,
    /// The reasoning share of `tokens_out`, where the provider reports it.
    pub tokens_reasoning: Option<u32>,
    /// Cost in billionths of the price's unit, computed with the price in force when the
    /// result was recorded (a later price change does not rewrite history).
    pub cost_nano: Option<u64>,
    /// Output tokens per second after the first token (streamed replies with usage only).
    pub tps: Option<f64>,
}

impl CheckResult {
    /// A check that ended before any request (no HTTP status, no timings): the status follows
    /// from `kind`. Callers redact `message` first; it is tidied here.
    pub fn error(
        monitor: MonitorId,
        model: String,
        started_at: Timestamp,
        kind: Kind,
        message: String,
    ) -> CheckResult {
        CheckResult {
            monitor,
            model,
            started_at,
            status: kind.status(),
            kind,
            http_status: None,
            ttft_ms: None,
            latency_ms: None,
            ping_ms: None,
            message: tidy_message(&message),
            facts: ReplyFacts::default(),
            location: String::new(),
            due_at: None,
        }
    }
}

/// Longest message stored or printed.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Collapses whitespace runs to one space and cuts to `MAX_MESSAGE_CHARS` characters on a char
/// boundary (an ellipsis marks a cut). Callers redact first.
pub fn tidy_message(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_MESSAGE_CHARS * 4));
    let mut count = 0usize;
    for word in s.split_whitespace() {
        if count > 0 {
            if count + 1 > MAX_MESSAGE_CHARS {
                break;
            }
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= MAX_MESSAGE_CHARS {
                break;
            }
            out.push(c);
            count += 1;
        }
        if count >= MAX_MESSAGE_CHARS {
            break;
        }
    }
    let total: usize = s
        .split_whitespace()
        .map(|w| w.chars().count() + 1)
        .sum::<usize>();
    if total.saturating_sub(1) > count && count > 0 {
        // Replace the last char by an ellipsis so the length stays within the cap.
        out.pop();
        out.push('…');
    }
    out
}

/// A duration in whole milliseconds, saturating, for the `*_ms` fields.
pub fn millis_u32(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_results_take_their_status_from_the_kind() {
        let r = CheckResult::error(
            MonitorId::parse("m").unwrap(),
            "gpt".into(),
            Timestamp(7),
            Kind::KeyUnavailable,
            "  no   key\n".into(),
        );
        assert_eq!((r.status, r.kind), (Status::Error, Kind::KeyUnavailable));
        assert_eq!(r.message, "no key");
        assert_eq!(
            (r.http_status, r.ttft_ms, r.latency_ms, r.ping_ms),
            (None, None, None, None)
        );
        let m = CheckResult::error(
            MonitorId::parse("m").unwrap(),
            "gpt".into(),
            Timestamp(7),
            Kind::Malformed,
            String::new(),
        );
        assert_eq!(m.status, Status::Failed);
    }

    #[test]
    fn codes_round_trip_and_are_unique() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_code(k.code() as i64), Some(*k));
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), *k);
        }
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code() as i64), Some(*s));
        }
        let mut codes: Vec<u8> = Kind::ALL.iter().map(|k| k.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Kind::ALL.len());
    }

    #[test]
    fn ids_must_be_slugs() {
        assert!(MonitorId::parse("openai-main_1").is_ok());
        for bad in ["", "Upper", "-lead", "has space", "ü", &"a".repeat(65)] {
            assert!(MonitorId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn location_names_are_checked() {
        for good in ["eu-west", "us.east_1", "a", &"z".repeat(64)] {
            assert!(check_location(good).is_ok(), "{good}");
        }
        for bad in ["", "EU", "eu west", "eu/west", "é", &"z".repeat(65)] {
            assert!(check_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tidy_collapses_and_cuts_on_char_boundary() {
        assert_eq!(tidy_message("  a \n\t b  "), "a b");
        let long = "é".repeat(600);
        let t = tidy_message(&long);
        assert_eq!(t.chars().count(), MAX_MESSAGE_CHARS);
        assert!(t.ends_with('…'));
        assert_eq!(tidy_message(&"x".repeat(500)), "x".repeat(500));
    }

    #[test]
    fn timestamps_format_and_parse() {
        let t = Timestamp(1_764_358_909_123);
        let s = t.to_rfc3339();
        assert!(s.ends_with(".123Z"), "{s}");
        assert_eq!(Timestamp::parse(&s).unwrap(), t);
        assert_eq!(
            Timestamp::parse("1970-01-02").unwrap(),
            Timestamp(86_400_000)
        );
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
