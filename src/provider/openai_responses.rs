//! OpenAI Responses: `POST /v1/responses` with `input` and `max_output_tokens`.
//!
//! Streams typed events: `response.output_text.delta` carries answer text,
//! `response.refusal.delta` a refusal, `response.completed` ends, `response.failed` and
//! `error` are errors. A whole reply is read from `output_text` when a relay adds it, else from
//! the `message` items' `output_text` parts; `reasoning` items are skipped.

use serde_json::{Value, json};

use super::protocol::{Auth, Piece, Protocol, Usage};
use super::wire::{count_at, error_in, event_type, is_reasoning_model, model_at, parse_json};
use crate::model::Kind;

pub(super) struct OpenAiResponses;

impl Protocol for OpenAiResponses {
    fn name(&self) -> &'static str {
        "openai responses"
    }

    fn path(&self, _model: &str, _stream: bool) -> String {
        "/v1/responses".to_owned()
    }

    fn base_url_path(&self) -> &'static str {
        "/v1"
    }

    fn default_auth(&self) -> Auth {
        Auth::Bearer
    }

    fn body(&self, model: &str, prompt: &str, stream: bool) -> Value {
        let mut b = json!({"model": model, "input": prompt, "stream": stream});
        if is_reasoning_model(model) {
            b["max_output_tokens"] = json!(1024);
            b["reasoning"] = json!({"effort": "low"});
        } else {
            b["max_output_tokens"] = json!(64);
        }
        b
    }

    fn reserved_body_keys(&self) -> &'static [&'static str] {
        &["model", "input", "stream"]
    }

    fn parse_full(&self, body: &Value) -> Result<Vec<Piece>, String> {
        if let Some((k, m)) = error_in(body).filter(|_| !body["error"].is_null()) {
            return Ok(vec![Piece::Error(k, m)]);
        }
        if body.get("status").and_then(Value::as_str) == Some("failed") {
            return Ok(vec![Piece::Error(
                Kind::ServerError,
                "response failed".to_owned(),
            )]);
        }
        let mut out = facts(body);
        if let Some(t) = body.get("output_text").and_then(Value::as_str) {
            out.push(Piece::Text(t.to_owned()));
            out.push(Piece::Done);
            return Ok(out);
        }
        let items = body
            .get("output")
            .and_then(Value::as_array)
            .ok_or("no output in the reply")?;
        for item in items
            .iter()
            .filter(|i| i.get("type").and_then(Value::as_str) == Some("message"))
        {
            for part in item
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match part.get("type").and_then(Value::as_str) {
                    Some("output_text") => {
                        if let Some(t) = part.get("text").and_then(Value::as_str) {
                            out.push(Piece::Text(t.to_owned()));
                        }
                    }
                    Some("refusal") => out.push(Piece::Refused(
                        part.get("refusal")
                            .and_then(Value::as_str)
                            .unwrap_or("refused")
                            .to_owned(),
                    )),
                    _ => {}
                }
            }
        }
        out.push(Piece::Done);
        Ok(out)
    }

    fn parse_event(&self, event: Option<&str>, data: &str) -> Result<Vec<Piece>, String> {
        let v = parse_json(data)?;
        let ty = event_type(&v, event);
        Ok(match ty {
            "response.output_text.delta" => {
                vec![Piece::Text(
                    v.get("delta")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                )]
            }
            "response.refusal.delta" | "response.refusal.done" => vec![Piece::Refused(
                v.get("delta")
                    .or_else(|| v.get("refusal"))
                    .and_then(Value::as_str)
                    .unwrap_or("refused")
                    .to_owned(),
            )],
            "response.created" => facts(v.get("response").unwrap_or(&Value::Null)),
            "response.completed" | "response.incomplete" => {
                let mut out = facts(v.get("response").unwrap_or(&Value::Null));
                out.push(Piece::Done);
                out
            }
            "response.failed" => {
                let e = v.pointer("/response/error").cloned().unwrap_or(Value::Null);
                let wrapped = json!({"error": e});
                let (k, m) = error_in(&wrapped)
                    .filter(|_| !e.is_null())
                    .unwrap_or((Kind::ServerError, "response failed".to_owned()));
                vec![Piece::Error(k, m)]
            }
            "error" => {
                // `{"type":"error","code":…,"message":…}`: the code names the problem.
                let inner = json!({"code": v.get("code"), "message": v.get("message")});
                let (k, m) = error_in(&json!({"error": inner}))
                    .unwrap_or((Kind::ServerError, data.to_owned()));
                vec![Piece::Error(k, m)]
            }
            _ => Vec::new(),
        })
    }

    #[cfg(test)]
    fn sample_reply(&self, answer: &str) -> super::protocol::Sample {
        let [a, b] = super::protocol::halves(answer);
        let full = json!({"id": "resp_1", "object": "response", "status": "completed",
            "model": "m",
            "usage": {"input_tokens": 12, "output_tokens": 3,
                "output_tokens_details": {"reasoning_tokens": 0}},
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": answer, "annotations": []}]}]});
        let mut pending = full.clone();
        pending["status"] = json!("in_progress");
        pending["output"] = json!([]);
        pending["usage"] = Value::Null;
        let event = |ty: &'static str, v: Value| (Some(ty), v.to_string());
        let delta = |d: &str, n: u32| {
            event(
                "response.output_text.delta",
                json!({"type": "response.output_text.delta", "item_id": "msg_1",
                    "output_index": 1, "content_index": 0, "delta": d, "sequence_number": n}),
            )
        };
        super::protocol::Sample {
            events: vec![
                event(
                    "response.created",
                    json!({"type": "response.created", "response": pending, "sequence_number": 0}),
                ),
                delta(a, 1),
                delta(b, 2),
                event(
                    "response.completed",
                    json!({"type": "response.completed", "response": full, "sequence_number": 3}),
                ),
            ],
            full,
        }
    }
}

/// The model and usage of a response object.
fn facts(v: &Value) -> Vec<Piece> {
    let usage = Usage {
        input: count_at(v, "/usage/input_tokens"),
        output: count_at(v, "/usage/output_tokens"),
        reasoning: count_at(v, "/usage/output_tokens_details/reasoning_tokens"),
    };
    model_at(v, "/model")
        .map(Piece::Model)
        .into_iter()
        .chain((!usage.is_empty()).then_some(Piece::Usage(usage)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_items_and_skips_reasoning() {
        let body = json!({"output":[
            {"type":"reasoning","summary":[]},
            {"type":"message","content":[{"type":"output_text","text":"42"}]}]});
        assert_eq!(
            OpenAiResponses.parse_full(&body).unwrap()[0],
            Piece::Text("42".into())
        );
        let refused =
            json!({"output":[{"type":"message","content":[{"type":"refusal","refusal":"no"}]}]});
        assert_eq!(
            OpenAiResponses.parse_full(&refused).unwrap()[0],
            Piece::Refused("no".into())
        );
        assert!(OpenAiResponses.parse_full(&json!({})).is_err());
    }

    #[test]
    fn reads_stream_events() {
        let s = OpenAiResponses;
        let d = s
            .parse_event(
                None,
                r#"{"type":"response.output_text.delta","delta":"4","sequence_number":3}"#,
            )
            .unwrap();
        assert_eq!(d, vec![Piece::Text("4".into())]);
        assert!(
            s.parse_event(None, r#"{"type":"response.created","response":{}}"#)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.parse_event(None, r#"{"type":"response.completed","response":{}}"#)
                .unwrap(),
            vec![Piece::Done]
        );
        assert_eq!(
            s.parse_event(None, r#"{"type":"response.completed","response":{"model":"o4-mini-2025-04-16","usage":{"input_tokens":8,"output_tokens":40,"output_tokens_details":{"reasoning_tokens":32}}}}"#)
                .unwrap(),
            vec![
                Piece::Model("o4-mini-2025-04-16".into()),
                Piece::Usage(Usage { input: Some(8), output: Some(40), reasoning: Some(32) }),
                Piece::Done
            ]
        );
        let e = s
            .parse_event(
                None,
                r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down"}"#,
            )
            .unwrap();
        assert!(matches!(&e[0], Piece::Error(Kind::RateLimited, m) if m.contains("slow down")));
    }
}
