//! From HTTP status and upstream text to kind and message.

use serde_json::Value;

use super::provider::error_in;
use crate::model::Kind;

/// The kind of a non-2xx HTTP status (3xx is handled before: redirects are never followed).
pub fn kind_of_status(status: u16) -> Kind {
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

/// The kind of an error reply: by status, except where a provider reports a bad key with
/// another status (Gemini answers an invalid key with 400 `API_KEY_INVALID`).
pub fn kind_of_reply(status: u16, body: &[u8]) -> Kind {
    let kind = kind_of_status(status);
    if kind == Kind::ClientError {
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
        if text.contains("API_KEY_INVALID")
            || text.contains("API key not valid")
            || text.contains("API_KEY_SERVICE_BLOCKED")
        {
            return Kind::Auth;
        }
    }
    kind
}

/// The upstream's own words from an error body: the `error` object's type and message when
/// the body is one of the providers' JSON shapes, else the start of the body.
pub fn error_message(status: u16, body: &[u8]) -> String {
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
    fn gemini_invalid_keys_are_auth_errors() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(kind_of_reply(400, body), Kind::Auth);
        assert_eq!(
            kind_of_reply(400, br#"{"error":{"message":"bad field"}}"#),
            Kind::ClientError
        );
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
}
