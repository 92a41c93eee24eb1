//! OpenAI Chat Completions: `POST /v1/chat/completions`, `Authorization: Bearer`.
//!
//! Streams `data: {chat.completion.chunk}` lines and `data: [DONE]`; only
//! `choices[0].delta.content` is answer text (`reasoning_content` / `reasoning` deltas from
//! relays and reasoning models are not), `delta.refusal` is a refusal. Reasoning models
//! (`o1`, `o3`, `o4`, `gpt-5`…) get `max_completion_tokens` with room to think and
//! `reasoning_effort: "low"`; other models the widely supported `max_tokens`, tiny.

use serde_json::{Value, json};

use super::protocol::{Auth, Piece, Protocol, Usage};
use super::wire::{count_at, error_in, is_reasoning_model, model_at, parse_json, text_of};
use crate::model::Kind;

pub(super) struct OpenAiChat;

impl Protocol for OpenAiChat {
    fn name(&self) -> &'static str {
        "openai chat"
    }

    fn path(&self, _model: &str, _stream: bool) -> String {
        "/v1/chat/completions".to_owned()
    }

    fn base_url_path(&self) -> &'static str {
        "/v1"
    }

    fn default_auth(&self) -> Auth {
        Auth::Bearer
    }

    fn body(&self, model: &str, prompt: &str, stream: bool) -> Value {
        let mut b = json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        });
        if is_reasoning_model(model) {
            b["max_completion_tokens"] = json!(1024);
            b["reasoning_effort"] = json!("low");
        } else {
            b["max_tokens"] = json!(64);
        }
        if stream {
            b["stream_options"] = json!({"include_usage": true});
        }
        b
    }

    /// Google's OpenAI-compatible endpoint (and relays in front of it) says "bad key" as
    /// Gemini does: a 400 with a marker.
    fn classify_error(&self, status: u16, body: &[u8]) -> Kind {
        super::gemini::classify_google_error(status, body)
    }

    fn reserved_body_keys(&self) -> &'static [&'static str] {
        &["model", "messages", "stream", "stream_options", "n"]
    }

    fn parse_full(&self, body: &Value) -> Result<Vec<Piece>, String> {
        if let Some((k, m)) = error_in(body) {
            return Ok(vec![Piece::Error(k, m)]);
        }
        let msg = body
            .pointer("/choices/0/message")
            .ok_or("no choices[0].message in the reply")?;
        let mut out = facts(body);
        if let Some(r) = msg
            .get("refusal")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            out.push(Piece::Refused(r.to_owned()));
        }
        if let Some(t) = msg.get("content").and_then(text_of) {
            out.push(Piece::Text(t));
        }
        out.push(Piece::Done);
        Ok(out)
    }

    fn parse_event(&self, _event: Option<&str>, data: &str) -> Result<Vec<Piece>, String> {
        if data.trim() == "[DONE]" {
            return Ok(vec![Piece::Done]);
        }
        let v = parse_json(data)?;
        if let Some((k, m)) = error_in(&v) {
            return Ok(vec![Piece::Error(k, m)]);
        }
        // Every chunk names the model; with `include_usage` a last chunk (empty `choices`)
        // carries the usage, earlier chunks `"usage": null`.
        let mut out = facts(&v);
        if let Some(d) = v.pointer("/choices/0/delta") {
            if let Some(r) = d
                .get("refusal")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                out.push(Piece::Refused(r.to_owned()));
            }
            if let Some(t) = d.get("content").and_then(text_of) {
                out.push(Piece::Text(t));
            }
        } else if v.get("choices").is_none() {
            return Err("a stream chunk without choices".to_owned());
        }
        Ok(out)
    }

    #[cfg(test)]
    fn sample_reply(&self, answer: &str) -> super::protocol::Sample {
        let [a, b] = super::protocol::halves(answer);
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string()
        };
        super::protocol::Sample {
            full: json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": answer, "refusal": null}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}),
            events: vec![
                (
                    None,
                    chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                ),
                (None, chunk(json!({"content": a}), Value::Null)),
                (None, chunk(json!({"content": b}), Value::Null)),
                (None, chunk(json!({}), json!("stop"))),
                (
                    None,
                    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
                        "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3,
                        "total_tokens": 15}})
                    .to_string(),
                ),
                (None, "[DONE]".to_owned()),
            ],
        }
    }
}

/// The model and usage a completion or chunk reports.
fn facts(v: &Value) -> Vec<Piece> {
    let usage = Usage {
        input: count_at(v, "/usage/prompt_tokens"),
        output: count_at(v, "/usage/completion_tokens"),
        reasoning: count_at(v, "/usage/completion_tokens_details/reasoning_tokens"),
    };
    let model = model_at(v, "/model").map(Piece::Model);
    model
        .into_iter()
        .chain((!usage.is_empty()).then_some(Piece::Usage(usage)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn googles_bad_key_reply_is_an_auth_error_on_its_openai_endpoint() {
        let body = br#"[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}]"#;
        assert_eq!(OpenAiChat.classify_error(400, body), Kind::Auth);
        assert_eq!(
            OpenAiChat.classify_error(400, br#"{"error":{"message":"bad field"}}"#),
            Kind::ClientError
        );
        assert_eq!(OpenAiChat.classify_error(429, body), Kind::RateLimited);
    }

    #[test]
    fn reads_streams_skipping_reasoning() {
        let s = OpenAiChat;
        let ev = |d: &str| s.parse_event(None, d).unwrap();
        assert_eq!(
            ev(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#),
            vec![Piece::Text(String::new())]
        );
        assert!(ev(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#).is_empty());
        assert_eq!(
            ev(r#"{"choices":[{"delta":{"content":"42"}}]}"#),
            vec![Piece::Text("42".into())]
        );
        assert!(ev(r#"{"choices":[],"usage":{"total_tokens":3}}"#).is_empty());
        assert_eq!(
            ev(
                r#"{"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"completion_tokens_details":{"reasoning_tokens":2}}}"#
            ),
            vec![
                Piece::Model("gpt-4o-mini-2024-07-18".into()),
                Piece::Usage(Usage {
                    input: Some(9),
                    output: Some(4),
                    reasoning: Some(2)
                })
            ]
        );
        assert!(ev(r#"{"model":"","choices":[{"delta":{}}],"usage":null}"#).is_empty());
        assert_eq!(ev("[DONE]"), vec![Piece::Done]);
        assert!(matches!(
            ev(r#"{"error":{"message":"boom","type":"server_error"}}"#)[0],
            Piece::Error(..)
        ));
        assert!(s.parse_event(None, "{not json").is_err());
    }

    #[test]
    fn reads_full_replies_and_refusals() {
        let s = OpenAiChat;
        let ok =
            json!({"choices":[{"message":{"role":"assistant","content":"42","refusal":null}}]});
        assert_eq!(s.parse_full(&ok).unwrap()[0], Piece::Text("42".into()));
        let parts = json!({"choices":[{"message":{"content":[{"type":"text","text":"4"},{"type":"text","text":"2"}]}}]});
        assert_eq!(s.parse_full(&parts).unwrap()[0], Piece::Text("42".into()));
        let refused = json!({"choices":[{"message":{"content":null,"refusal":"no"}}]});
        assert_eq!(
            s.parse_full(&refused).unwrap()[0],
            Piece::Refused("no".into())
        );
        assert!(s.parse_full(&json!({"id": 1})).is_err());
    }

    #[test]
    fn reasoning_models_get_room() {
        let b = OpenAiChat.body("o3-mini", "q", true);
        assert_eq!(b["max_completion_tokens"], 1024);
        assert!(b.get("max_tokens").is_none());
        let b = OpenAiChat.body("gpt-4o-mini", "q", false);
        assert_eq!(b["max_tokens"], 64);
        assert!(b.get("stream_options").is_none());
    }
}
