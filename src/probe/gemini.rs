//! Gemini: `POST /v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`.
//!
//! The key goes in the `x-goog-api-key` header, never in the URL. The model is one
//! percent-escaped path segment (a leading `models/` is dropped), so no model name can change
//! the path. Text comes from `candidates[0].content.parts[].text`; parts marked `thought` are
//! skipped; `promptFeedback.blockReason` and safety finish reasons are refusals.
//! `maxOutputTokens` includes thinking tokens on thinking models, so the cap leaves room.

use serde_json::{Value, json};

use super::provider::{Piece, Strategy, error_in, parse_json};

pub struct Gemini;

const REFUSAL_FINISH: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "IMAGE_SAFETY",
];

/// Percent-escapes everything but RFC 3986 unreserved characters.
pub fn escape_segment(s: &str) -> String {
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

impl Gemini {
    fn pieces(&self, v: &Value) -> Vec<Piece> {
        let mut out = Vec::new();
        if let Some(r) = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            out.push(Piece::Refused(format!("prompt blocked: {r}")));
        }
        if let Some(c) = v.pointer("/candidates/0") {
            for p in c
                .pointer("/content/parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if p.get("thought").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    out.push(Piece::Text(t.to_owned()));
                }
            }
            if let Some(f) = c.get("finishReason").and_then(Value::as_str)
                && REFUSAL_FINISH.contains(&f)
            {
                out.push(Piece::Refused(format!("finishReason {f}")));
            }
        }
        out
    }
}

impl Strategy for Gemini {
    fn path(&self, model: &str, stream: bool) -> String {
        let m = escape_segment(model.strip_prefix("models/").unwrap_or(model));
        if stream {
            format!("/v1beta/models/{m}:streamGenerateContent?alt=sse")
        } else {
            format!("/v1beta/models/{m}:generateContent")
        }
    }

    fn auth_headers(&self, key: &str) -> Vec<(&'static str, String)> {
        vec![("x-goog-api-key", key.to_owned())]
    }

    fn body(&self, _model: &str, prompt: &str, _stream: bool) -> Value {
        json!({
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"maxOutputTokens": 1024},
        })
    }

    fn reserved(&self) -> &'static [&'static str] {
        &["contents"]
    }

    fn parse_full(&self, body: &Value) -> Result<Vec<Piece>, String> {
        if let Some((k, m)) = error_in(body) {
            return Ok(vec![Piece::Error(k, m)]);
        }
        // A streaming endpoint may answer with a JSON array of chunks.
        let chunks: Vec<&Value> = match body {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        if chunks
            .iter()
            .all(|c| c.get("candidates").is_none() && c.get("promptFeedback").is_none())
        {
            return Err("no candidates in the reply".to_owned());
        }
        let mut out: Vec<Piece> = chunks.into_iter().flat_map(|c| self.pieces(c)).collect();
        out.push(Piece::Done);
        Ok(out)
    }

    fn parse_event(&self, _event: Option<&str>, data: &str) -> Result<Vec<Piece>, String> {
        let v = parse_json(data)?;
        if let Some((k, m)) = error_in(&v) {
            return Ok(vec![Piece::Error(k, m)]);
        }
        if v.get("candidates").is_none()
            && v.get("promptFeedback").is_none()
            && v.get("usageMetadata").is_none()
        {
            return Err("a stream chunk without candidates".to_owned());
        }
        Ok(self.pieces(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_cannot_change_the_path() {
        assert_eq!(
            Gemini.path("models/gemini-2.5-flash", false),
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            Gemini.path("a/../b?key=x#y", true),
            "/v1beta/models/a%2F..%2Fb%3Fkey%3Dx%23y:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn thoughts_are_skipped_and_safety_is_a_refusal() {
        let v = json!({"candidates":[{"content":{"parts":[{"text":"thinking","thought":true},{"text":"42"}]},"finishReason":"STOP"}]});
        assert_eq!(
            Gemini.parse_full(&v).unwrap(),
            vec![Piece::Text("42".into()), Piece::Done]
        );
        let blocked = json!({"promptFeedback":{"blockReason":"SAFETY"}});
        assert!(matches!(
            Gemini.parse_full(&blocked).unwrap()[0],
            Piece::Refused(_)
        ));
        let safety = json!({"candidates":[{"finishReason":"SAFETY"}]});
        assert!(matches!(
            Gemini.parse_full(&safety).unwrap()[0],
            Piece::Refused(_)
        ));
    }
}
