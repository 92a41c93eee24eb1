//! A made-up protocol, compiled only into tests: the proof that a protocol is one file and a
//! provider one registry line. The registry lists it as provider `fake`; the tests of
//! `provider`, `config` and `probe` take it through validation and a loopback probe like the
//! real ones, and `probe`'s tests check its own error rule.
//!
//! `POST /fake/v0/ask/{model}` (`?stream=1` to stream), the key in `x-fake-key`, a body of
//! `question`, `stream` and `limit`. A whole reply is `{"say": text}`; a stream sends
//! `{"say": piece}` events and ends with `{"end": true}`; `{"oops": message}` is an error inside
//! a 2xx reply. Its own error rule: a 400 whose body says `slow down` is rate limiting.

use serde_json::{Value, json};

use super::protocol::{Auth, Piece, Protocol, Sample, halves};
use super::wire::{kind_of_status, parse_json, percent_encode};
use crate::model::Kind;

pub(super) struct Fake;

impl Fake {
    fn pieces(v: &Value) -> Result<Vec<Piece>, String> {
        if let Some(m) = v.get("oops").and_then(Value::as_str) {
            return Ok(vec![Piece::Error(Kind::ServerError, m.to_owned())]);
        }
        let mut out = Vec::new();
        if let Some(t) = v.get("say").and_then(Value::as_str) {
            out.push(Piece::Text(t.to_owned()));
        }
        if v.get("end").and_then(Value::as_bool) == Some(true) {
            out.push(Piece::Done);
        }
        if out.is_empty() {
            return Err("neither `say` nor `end` in the reply".to_owned());
        }
        Ok(out)
    }
}

impl Protocol for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn path(&self, model: &str, stream: bool) -> String {
        let query = if stream { "?stream=1" } else { "" };
        format!("/fake/v0/ask/{}{query}", percent_encode(model))
    }

    fn default_auth(&self) -> Auth {
        Auth::Header(std::borrow::Cow::Borrowed("x-fake-key"))
    }

    fn fixed_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("x-fake-version", "0")]
    }

    fn body(&self, _model: &str, prompt: &str, stream: bool) -> Value {
        json!({"question": prompt, "stream": stream, "limit": 16})
    }

    fn reserved_body_keys(&self) -> &'static [&'static str] {
        &["question", "stream"]
    }

    fn parse_full(&self, body: &Value) -> Result<Vec<Piece>, String> {
        let mut out = Fake::pieces(body)?;
        if !out.contains(&Piece::Done) {
            out.push(Piece::Done);
        }
        Ok(out)
    }

    fn parse_event(&self, _event: Option<&str>, data: &str) -> Result<Vec<Piece>, String> {
        Fake::pieces(&parse_json(data)?)
    }

    fn classify_error(&self, status: u16, body: &[u8]) -> Kind {
        if status == 400 && String::from_utf8_lossy(body).contains("slow down") {
            Kind::RateLimited
        } else {
            kind_of_status(status)
        }
    }

    fn sample_reply(&self, answer: &str) -> Sample {
        let [a, b] = halves(answer);
        Sample {
            full: json!({"say": answer}),
            events: vec![
                (None, json!({"say": a}).to_string()),
                (None, json!({"say": b}).to_string()),
                (None, json!({"end": true}).to_string()),
            ],
        }
    }
}
