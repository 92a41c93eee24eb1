//! What the protocols share on the wire: reading the providers' JSON error shapes, the kind of
//! an HTTP status, text parts, event types, reasoning-model names, and percent-escaping.
//! Plain functions over values; no protocol's own rules live here.

use serde_json::Value;

use crate::model::Kind;

/// The kind of a non-2xx HTTP status (3xx is handled before: redirects are never followed).
pub(crate) fn kind_of_status(status: u16) -> Kind {
    match status {
        401 | 403 => Kind::Auth,
        404 => Kind::NotFound,
        408 => Kind::Timeout,
        429 => Kind::RateLimited,
        503 | 529 => Kind::Overloaded,
        500..=599 => Kind::ServerError,
        300..=399 => Kind::Redirect,
        _ => Kind::ClientError,
    }
}

/// The upstream's own words from an error body: the `error` object's type and message when
/// the body is one of the providers' JSON shapes, else the start of the body.
pub(crate) fn error_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let detail = match serde_json::from_slice::<Value>(body) {
        Ok(v) => match error_in(&v) {
            Some((_, m)) => m,
            None => text.chars().take(300).collect(),
        },
        Err(_) => text.chars().take(300).collect(),
    };
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    if detail.trim().is_empty() {
        format!("HTTP {status} {reason}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

/// Reasoning models spend output tokens thinking before the visible answer: they get room
/// for it (and a low effort where the API takes one); other models get a tiny cap.
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    m.starts_with("o1")
        || m.starts_with("o3")
        || m.starts_with("o4")
        || m.starts_with("gpt-5")
        || m.contains("reason")
        || m.contains("think")
        || m.starts_with("deepseek-r")
}

/// A kind for an upstream error type or status name found in a body.
pub(crate) fn kind_of_error_type(t: &str) -> Kind {
    let t = t.to_ascii_lowercase();
    if t.contains("overloaded") || t == "unavailable" {
        Kind::Overloaded
    } else if t.contains("rate_limit") || t.contains("resource_exhausted") || t.contains("quota") {
        Kind::RateLimited
    } else if t.contains("auth") || t.contains("permission") || t.contains("invalid_api_key") {
        Kind::Auth
    } else if t.contains("not_found") {
        Kind::NotFound
    } else if t.contains("invalid_request") || t.contains("invalid_argument") {
        Kind::ClientError
    } else {
        Kind::ServerError
    }
}

/// The `error` object of an error body in any of the providers' shapes, as (kind, message).
pub(crate) fn error_in(body: &Value) -> Option<(Kind, String)> {
    let e = body.get("error")?;
    if let Some(s) = e.as_str() {
        return Some((Kind::ServerError, s.to_owned()));
    }
    let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
    let ty = e
        .get("type")
        .or_else(|| e.get("status"))
        .or_else(|| e.get("code"))
        .filter(|v| !v.is_null())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let kind = match e.get("code").and_then(Value::as_u64) {
        Some(code @ 400..=599) => kind_of_status(code as u16),
        _ => kind_of_error_type(&ty),
    };
    let text = match (ty.is_empty(), msg.is_empty()) {
        (false, false) => format!("{ty}: {msg}"),
        (true, false) => msg.to_owned(),
        (false, true) => ty,
        (true, true) => e.to_string(),
    };
    Some((kind, text))
}

/// Text of a JSON string field, or of an array of `{type: text, text}` parts.
pub(crate) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter(|p| {
                    p.get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t == "text" || t == "output_text")
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// An event's type: the JSON `type` field, else the SSE `event:` name.
pub(crate) fn event_type<'a>(v: &'a Value, event: Option<&'a str>) -> &'a str {
    v.get("type")
        .and_then(Value::as_str)
        .or(event)
        .unwrap_or("")
}

pub(crate) fn parse_json(data: &str) -> Result<Value, String> {
    serde_json::from_str(data).map_err(|e| format!("invalid JSON in the reply ({e})"))
}

/// `%XX` for every byte that is not an RFC 3986 unreserved character: safe as one URL path
/// segment or query value whatever the input (the redactor also uses it, to find keys that a
/// client encoded this way).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A token count at `ptr` in `v`, when it is a non-negative integer (saturating at u32).
pub(crate) fn count_at(v: &Value, ptr: &str) -> Option<u32> {
    v.pointer(ptr)
        .and_then(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
}

/// The non-empty model name at `ptr` in `v`, trimmed and cut to 200 characters (a hostile
/// upstream does not get to store an essay per row).
pub(crate) fn model_at(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| m.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let table = [
            (401, Kind::Auth),
            (403, Kind::Auth),
            (404, Kind::NotFound),
            (429, Kind::RateLimited),
            (503, Kind::Overloaded),
            (529, Kind::Overloaded),
            (500, Kind::ServerError),
            (502, Kind::ServerError),
            (400, Kind::ClientError),
            (422, Kind::ClientError),
        ];
        for (s, k) in table {
            assert_eq!(kind_of_status(s), k, "{s}");
        }
    }

    #[test]
    fn messages_keep_the_upstreams_text() {
        let m = error_message(429, br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#);
        assert!(m.contains("Rate limit reached") && m.contains("429"), "{m}");
        let a = error_message(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert!(a.contains("overloaded_error: Overloaded"), "{a}");
        assert_eq!(error_message(502, b""), "HTTP 502 Bad Gateway");
        assert!(error_message(500, b"<html>oops</html>").contains("oops"));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("a-b.c_d~e09AZ"), "a-b.c_d~e09AZ");
        assert_eq!(percent_encode("a/../b?key=x#y"), "a%2F..%2Fb%3Fkey%3Dx%23y");
        assert_eq!(percent_encode("é +"), "%C3%A9%20%2B");
    }
}
