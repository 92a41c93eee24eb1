//! The provider interface: how to ask (path, headers, body) and how to read the answer,
//! streaming or not. One implementation per protocol, chosen from a table.

use serde_json::Value;

use crate::config::{ApiMode, Provider};
use crate::model::Kind;

use super::{anthropic, gemini, openai_chat, openai_responses};

/// What a piece of a reply says.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Visible answer text (reasoning and thinking never come out as `Text`).
    Text(String),
    /// The model or a safety filter declined; the reason as the upstream gave it.
    Refused(String),
    /// The upstream reported an error inside a 2xx reply.
    Error(Kind, String),
    /// The reply is complete.
    Done,
}

/// The protocol of one provider.
pub trait Strategy: Sync {
    /// Path and query after the origin, e.g. `/v1/chat/completions`.
    fn path(&self, model: &str, stream: bool) -> String;
    /// The authentication headers.
    fn auth_headers(&self, key: &str) -> Vec<(&'static str, String)>;
    /// The request body for `prompt`.
    fn body(&self, model: &str, prompt: &str, stream: bool) -> Value;
    /// Body keys the user's `body` may not override.
    fn reserved(&self) -> &'static [&'static str];
    /// Reads a whole (non-streaming) reply. `Err` = not the expected shape.
    fn parse_full(&self, body: &Value) -> Result<Vec<Piece>, String>;
    /// Reads one SSE event. `Err` = not the expected shape.
    fn parse_event(&self, event: Option<&str>, data: &str) -> Result<Vec<Piece>, String>;
}

/// The strategy table.
pub fn strategy(provider: Provider, api: ApiMode) -> &'static dyn Strategy {
    match (provider, api) {
        (Provider::OpenAi, ApiMode::Chat) => &openai_chat::OpenAiChat,
        (Provider::OpenAi, ApiMode::Responses) => &openai_responses::OpenAiResponses,
        (Provider::Anthropic, _) => &anthropic::Anthropic,
        (Provider::Gemini, _) => &gemini::Gemini,
    }
}

/// Reasoning models spend output tokens thinking before the visible answer: they get room
/// for it (and a low effort where the API takes one); other models get a tiny cap.
pub fn is_reasoning_model(model: &str) -> bool {
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
pub fn kind_of_error_type(t: &str) -> Kind {
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
pub fn error_in(body: &Value) -> Option<(Kind, String)> {
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
        Some(code @ 400..=599) => super::verdict::kind_of_status(code as u16),
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
pub fn text_of(v: &Value) -> Option<String> {
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
pub fn event_type<'a>(v: &'a Value, event: Option<&'a str>) -> &'a str {
    v.get("type")
        .and_then(Value::as_str)
        .or(event)
        .unwrap_or("")
}

pub fn parse_json(data: &str) -> Result<Value, String> {
    serde_json::from_str(data).map_err(|e| format!("invalid JSON in the reply ({e})"))
}
