//! Gemini: `POST /v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`.
//!
//! The key goes in the `x-goog-api-key` header, never in the URL. The model is one
//! percent-escaped path segment (a leading `models/` is dropped), so no model name can change
//! the path. Text comes from `candidates[0].content.parts[].text`; parts marked `thought` are
//! skipped; `promptFeedback.blockReason` and safety finish reasons are refusals.
//! `maxOutputTokens` includes thinking tokens on thinking models, so the cap leaves room.
//! An invalid or blocked key comes back as 400 (`API_KEY_INVALID`): an auth error here.

use serde_json::{Value, json};

use super::protocol::{Auth, Piece, Protocol, Usage};
use super::wire::{count_at, error_in, kind_of_status, model_at, parse_json, percent_encode};
use crate::model::Kind;

pub(super) struct Gemini;

const REFUSAL_FINISH: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "IMAGE_SAFETY",
];

/// What a 400 says when the key itself is the problem.
const BAD_KEY_MARKERS: &[&str] = &[
    "API_KEY_INVALID",
    "API key not valid",
    "API_KEY_SERVICE_BLOCKED",
];

/// Google answers a bad key with 400 and a marker in the body, natively and on its
/// OpenAI-compatible endpoint (which speaks the openai chat protocol, so that one asks here too).
pub(super) fn classify_google_error(status: u16, body: &[u8]) -> Kind {
    let kind = kind_of_status(status);
    if kind == Kind::ClientError {
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
        if BAD_KEY_MARKERS.iter().any(|m| text.contains(m)) {
            return Kind::Auth;
        }
    }
    kind
}

impl Gemini {
    fn pieces(&self, v: &Value) -> Vec<Piece> {
        let mut out: Vec<Piece> = model_at(v, "/modelVersion")
            .map(Piece::Model)
            .into_iter()
            .collect();
        // Thinking tokens are billed as output but counted apart from the candidates'.
        let candidates = count_at(v, "/usageMetadata/candidatesTokenCount");
        let thoughts = count_at(v, "/usageMetadata/thoughtsTokenCount");
        let usage = Usage {
            input: count_at(v, "/usageMetadata/promptTokenCount"),
            output: match (candidates, thoughts) {
                (None, None) => None,
                (c, t) => Some(c.unwrap_or(0).saturating_add(t.unwrap_or(0))),
            },
            reasoning: thoughts,
        };
        if !usage.is_empty() {
            out.push(Piece::Usage(usage));
        }
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

impl Protocol for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn path(&self, model: &str, stream: bool) -> String {
        let m = percent_encode(model.strip_prefix("models/").unwrap_or(model));
        if stream {
            format!("/v1beta/models/{m}:streamGenerateContent?alt=sse")
        } else {
            format!("/v1beta/models/{m}:generateContent")
        }
    }

    fn default_auth(&self) -> Auth {
        Auth::X_GOOG_API_KEY
    }

    fn body(&self, _model: &str, prompt: &str, _stream: bool) -> Value {
        json!({
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"maxOutputTokens": 1024},
        })
    }

    fn reserved_body_keys(&self) -> &'static [&'static str] {
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

    fn classify_error(&self, status: u16, body: &[u8]) -> Kind {
        classify_google_error(status, body)
    }

    #[cfg(test)]
    fn sample_reply(&self, answer: &str) -> super::protocol::Sample {
        let [a, b] = super::protocol::halves(answer);
        let chunk = |text: &str, finish: Option<&str>| {
            let mut c = json!({"candidates": [{"index": 0,
                "content": {"role": "model", "parts": [{"text": text}]}}],
                "modelVersion": "m"});
            if let Some(f) = finish {
                c["candidates"][0]["finishReason"] = json!(f);
                c["usageMetadata"] = json!({"promptTokenCount": 12, "candidatesTokenCount": 3,
                    "totalTokenCount": 15});
            }
            c
        };
        let mut full = chunk(answer, Some("STOP"));
        full["candidates"][0]["content"]["parts"]
            .as_array_mut()
            .expect("built above as an array")
            .insert(0, json!({"text": "adding", "thought": true}));
        super::protocol::Sample {
            full,
            events: vec![
                (None, chunk(a, None).to_string()),
                (None, chunk(b, Some("STOP")).to_string()),
            ],
        }
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
    fn invalid_keys_are_auth_errors() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(Gemini.classify_error(400, body), Kind::Auth);
        assert_eq!(
            Gemini.classify_error(400, br#"{"error":{"message":"bad field"}}"#),
            Kind::ClientError
        );
    }

    #[test]
    fn model_version_and_usage_with_thoughts() {
        let v = json!({"candidates":[{"content":{"parts":[{"text":"42"}]}}],
            "modelVersion":"gemini-2.5-flash",
            "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":2,"thoughtsTokenCount":30}});
        assert_eq!(
            Gemini.parse_full(&v).unwrap(),
            vec![
                Piece::Model("gemini-2.5-flash".into()),
                Piece::Usage(Usage {
                    input: Some(10),
                    output: Some(32),
                    reasoning: Some(30)
                }),
                Piece::Text("42".into()),
                Piece::Done
            ]
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
