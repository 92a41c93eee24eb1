//! Anthropic Messages: `POST /v1/messages`, `x-api-key`, `anthropic-version: 2023-06-01`.
//!
//! Only `text` blocks are answer text: `thinking` and `redacted_thinking` blocks come first in
//! some replies and are skipped, as are `thinking_delta` / `signature_delta` stream deltas.
//! `stop_reason: "refusal"` is a refusal; `event: error` (e.g. `overloaded_error`) an error.

use serde_json::{Value, json};

use super::protocol::{Auth, Piece, Protocol, Usage};
use super::wire::{count_at, error_in, event_type, model_at, parse_json};

pub(super) struct Anthropic;

impl Protocol for Anthropic {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn path(&self, _model: &str, _stream: bool) -> String {
        "/v1/messages".to_owned()
    }

    fn default_auth(&self) -> Auth {
        Auth::X_API_KEY
    }

    fn fixed_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("anthropic-version", "2023-06-01")]
    }

    fn body(&self, model: &str, prompt: &str, stream: bool) -> Value {
        json!({
            "model": model,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        })
    }

    fn reserved_body_keys(&self) -> &'static [&'static str] {
        &["model", "messages", "stream"]
    }

    fn parse_full(&self, body: &Value) -> Result<Vec<Piece>, String> {
        if let Some((k, m)) = error_in(body) {
            return Ok(vec![Piece::Error(k, m)]);
        }
        let blocks = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or("no content in the reply")?;
        let mut out: Vec<Piece> = facts(body, "");
        out.extend(
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .map(|t| Piece::Text(t.to_owned())),
        );
        if body.get("stop_reason").and_then(Value::as_str) == Some("refusal") {
            out.insert(0, Piece::Refused("stop_reason: refusal".to_owned()));
        }
        out.push(Piece::Done);
        Ok(out)
    }

    fn parse_event(&self, event: Option<&str>, data: &str) -> Result<Vec<Piece>, String> {
        let v = parse_json(data)?;
        let ty = event_type(&v, event);
        Ok(match ty {
            "content_block_delta" => match v.pointer("/delta/type").and_then(Value::as_str) {
                Some("text_delta") => vec![Piece::Text(
                    v.pointer("/delta/text")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                )],
                _ => Vec::new(),
            },
            // The model and the input tokens come first; the output count in the last delta.
            "message_start" => facts(&v, "/message"),
            "message_delta" => {
                let mut out = facts(&v, "");
                if v.pointer("/delta/stop_reason").and_then(Value::as_str) == Some("refusal") {
                    out.push(Piece::Refused("stop_reason: refusal".to_owned()));
                }
                out
            }
            "message_stop" => vec![Piece::Done],
            "error" => {
                let (k, m) =
                    error_in(&v).unwrap_or((crate::model::Kind::ServerError, data.to_owned()));
                vec![Piece::Error(k, m)]
            }
            _ => Vec::new(),
        })
    }

    #[cfg(test)]
    fn sample_reply(&self, answer: &str) -> super::protocol::Sample {
        let [a, b] = super::protocol::halves(answer);
        let message = |content: Value, stop: Value| {
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                "content": content, "stop_reason": stop, "stop_sequence": null,
                "usage": {"input_tokens": 12, "output_tokens": 3}})
        };
        let event = |ty: &'static str, v: Value| (Some(ty), v.to_string());
        let delta = |t: &str| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": t}}),
            )
        };
        super::protocol::Sample {
            full: message(json!([{"type": "text", "text": answer}]), json!("end_turn")),
            events: vec![
                event(
                    "message_start",
                    json!({"type": "message_start", "message": message(json!([]), Value::Null)}),
                ),
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                ),
                (Some("ping"), json!({"type": "ping"}).to_string()),
                delta(a),
                delta(b),
                event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                event(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                        "usage": {"output_tokens": 3}}),
                ),
                event("message_stop", json!({"type": "message_stop"})),
            ],
        }
    }
}

/// The model and usage of the message at `at` (`""` = the value itself). Anthropic reports no
/// reasoning count: thinking tokens are inside `output_tokens`.
fn facts(v: &Value, at: &str) -> Vec<Piece> {
    let usage = Usage {
        input: count_at(v, &format!("{at}/usage/input_tokens")),
        output: count_at(v, &format!("{at}/usage/output_tokens")),
        reasoning: None,
    };
    model_at(v, &format!("{at}/model"))
        .map(Piece::Model)
        .into_iter()
        .chain((!usage.is_empty()).then_some(Piece::Usage(usage)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn thinking_blocks_are_skipped() {
        let body = json!({"content":[
            {"type":"thinking","thinking":"let me add","signature":"x"},
            {"type":"text","text":"42"}], "stop_reason":"end_turn"});
        assert_eq!(
            Anthropic.parse_full(&body).unwrap(),
            vec![Piece::Text("42".into()), Piece::Done]
        );
        let ev = Anthropic
            .parse_event(Some("content_block_delta"), r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#)
            .unwrap();
        assert!(ev.is_empty());
    }

    #[test]
    fn model_and_usage_come_in_two_parts_when_streamed() {
        let start = Anthropic
            .parse_event(
                Some("message_start"),
                r#"{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","content":[],"usage":{"input_tokens":21,"output_tokens":1}}}"#,
            )
            .unwrap();
        assert_eq!(
            start,
            vec![
                Piece::Model("claude-sonnet-4-5-20250929".into()),
                Piece::Usage(Usage {
                    input: Some(21),
                    output: Some(1),
                    reasoning: None
                })
            ]
        );
        let delta = Anthropic
            .parse_event(
                Some("message_delta"),
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}"#,
            )
            .unwrap();
        assert_eq!(
            delta,
            vec![Piece::Usage(Usage {
                input: None,
                output: Some(7),
                reasoning: None
            })]
        );
    }

    #[test]
    fn stream_errors_and_refusals() {
        let e = Anthropic
            .parse_event(
                Some("error"),
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
            .unwrap();
        assert!(matches!(&e[0], Piece::Error(Kind::Overloaded, m) if m.contains("Overloaded")));
        let r = Anthropic
            .parse_event(
                None,
                r#"{"type":"message_delta","delta":{"stop_reason":"refusal"}}"#,
            )
            .unwrap();
        assert!(matches!(r[0], Piece::Refused(_)));
    }
}
