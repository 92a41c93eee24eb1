//! The one redactor: every message that is stored, logged or printed passes through it.
//!
//! Two layers: the configured secrets themselves (verbatim and URL-encoded, longest first),
//! then the usual key shapes (`sk-…`, `AIza…`, JWTs, `Bearer …`, `x-api-key: …`, `key=` query
//! values), so a key chanmon was never told about is still unlikely to survive.

use std::sync::LazyLock;

use regex::Regex;

use crate::provider::wire::percent_encode;

const MASK: &str = "[redacted]";
/// Shorter configured values are not replaced verbatim: they would shred ordinary text.
const MIN_SECRET_LEN: usize = 4;

/// (pattern, replacement) applied in order.
static SHAPES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    let r = |p: &str| Regex::new(p).expect("redaction patterns are valid");
    vec![
        (
            r(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{6,}"),
            "$1 [redacted]",
        ),
        (
            r(
                r#"(?i)\b(x-api-key|x-goog-api-key|api-key|authorization)(["']?\s*[:=]\s*["']?)[^\s"',;}]{4,}"#,
            ),
            "$1$2[redacted]",
        ),
        (
            r(r"(?i)\b(key|api_key|apikey|api-key|token|access_token|secret)=[^&\s'\x22#]+"),
            "$1=[redacted]",
        ),
        (r(r"\bsk-[A-Za-z0-9_\-]{8,}"), MASK),
        (r(r"\bAIza[0-9A-Za-z_\-]{35}"), MASK),
        (
            r(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
            MASK,
        ),
    ]
});

/// Removes configured secrets (verbatim and URL-encoded) and common key shapes.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Vec<zeroize::Zeroizing<String>>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut all: Vec<zeroize::Zeroizing<String>> = Vec::new();
        for s in secrets {
            let s = s.trim();
            if s.chars().count() < MIN_SECRET_LEN {
                continue;
            }
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            for v in [s.to_owned(), encoded, percent_encode(s)] {
                if !all.iter().any(|x| **x == v) {
                    all.push(zeroize::Zeroizing::new(v));
                }
            }
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets: all }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            // Replacing can join two halves into a new occurrence; repeat until none is left.
            for _ in 0..4 {
                if !out.contains(s.as_str()) {
                    break;
                }
                out = out.replace(s.as_str(), MASK);
            }
        }
        for (re, with) in SHAPES.iter() {
            if re.is_match(&out) {
                out = re.replace_all(&out, *with).into_owned();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_shapes_are_removed() {
        let r = Redactor::default();
        let cases = [
            "Incorrect API key provided: sk-proj-abcdefghijklmnop1234",
            "key sk-ant-api03-AbCdEfGhIjKlMnOp was rejected",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv invalid",
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc123def456 expired",
            "Authorization: Bearer abc.def-123456",
            "x-api-key: hunter2hunter2",
            "GET /v1beta/models/x?key=AIzaSecretValue&alt=sse",
            r#"{"x-goog-api-key": "zzzzzzzz"}"#,
        ];
        for c in cases {
            let out = r.redact(c);
            assert!(out.contains("[redacted]"), "{c} -> {out}");
            for secret in [
                "abcdefghijklmnop1234",
                "AbCdEfGhIjKlMnOp",
                "1234567890abcdefghijklmnopqrstuv",
                "abc123def456",
                "abc.def-123456",
                "hunter2hunter2",
                "AIzaSecretValue",
                "zzzzzzzz",
            ] {
                assert!(!out.contains(secret), "{c} -> {out}");
            }
        }
        assert_eq!(r.redact("all good, 42 tokens"), "all good, 42 tokens");
    }

    #[test]
    fn configured_values_go_verbatim_and_encoded() {
        let r = Redactor::new(["my key/with+chars", "ab"]);
        let out =
            r.redact("a my key/with+chars b my+key%2Fwith%2Bchars c my%20key%2Fwith%2Bchars ab");
        assert!(!out.contains("with"), "{out}");
        assert!(out.ends_with(" ab"), "short values are left alone: {out}");
    }

    proptest! {
        #[test]
        fn an_embedded_key_never_survives(
            key in "[!-~]{8,40}",
            before in "\\PC{0,60}",
            after in "\\PC{0,60}",
        ) {
            let r = Redactor::new([key.as_str()]);
            let out = r.redact(&format!("{before}{key}{after}"));
            prop_assert!(!out.contains(&key), "{out}");
        }

        #[test]
        fn plain_text_is_unchanged(text in "[a-zA-Z ,.!?0-9\u{4e00}-\u{4e10}]{0,120}") {
            prop_assume!(!text.to_lowercase().contains("bearer") && !text.contains("sk-"));
            let r = Redactor::new(["sk-not-in-text-1234"]);
            prop_assert_eq!(r.redact(&text), text);
        }
    }
}
