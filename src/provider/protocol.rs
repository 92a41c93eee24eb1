//! The protocol interface: how to ask (path, headers, body), how to read the answer (whole or
//! streamed), and what an error reply means. One implementation per wire format, each in its
//! own file; the registry (`provider/mod.rs`) says which provider speaks which.
//!
//! This file and `wire.rs` depend on nothing else in `provider/`, so the protocol files can
//! use them and the registry can list the protocols without a cycle.

use std::borrow::Cow;

use serde_json::Value;

use super::wire;
use crate::model::Kind;

/// What a piece of a reply says.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Visible answer text (reasoning and thinking never come out as `Text`).
    Text(String),
    /// The model or a safety filter declined; the reason as the upstream gave it.
    Refused(String),
    /// The upstream reported an error inside a 2xx reply.
    Error(Kind, String),
    /// The model the reply says answered (OpenAI `model`, Anthropic `message.model`, Gemini
    /// `modelVersion`), as the upstream wrote it.
    Model(String),
    /// Token counts the reply reports; a stream may report them in parts (Anthropic: input in
    /// `message_start`, output in `message_delta`), later counts replacing earlier ones.
    Usage(Usage),
    /// The reply is complete.
    Done,
}

/// Token counts as a reply reports them; `None` = not reported. `output` is the billed output,
/// reasoning included (`reasoning` says how much of it was reasoning where reported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: Option<u32>,
    pub output: Option<u32>,
    pub reasoning: Option<u32>,
}

impl Usage {
    /// Later counts replace earlier ones, field by field (streamed counts are cumulative).
    pub fn merge(&mut self, later: Usage) {
        self.input = later.input.or(self.input);
        self.output = later.output.or(self.output);
        self.reasoning = later.reasoning.or(self.reasoning);
    }

    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.reasoning.is_none()
    }
}

/// How the API key travels: the header that carries it, and in what form. A monitor's `auth`
/// picks one; the protocol (or a preset in the registry) gives the default. The header chosen
/// is the one the config's `headers` may not set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Auth {
    /// `authorization: Bearer KEY` (OpenAI and everything compatible).
    Bearer,
    /// `NAME: KEY`, the key as it is; the name lower-case (`x-api-key`, Azure's `api-key`).
    Header(Cow<'static, str>),
}

impl Auth {
    /// Azure OpenAI's header.
    pub const API_KEY: Auth = Auth::Header(Cow::Borrowed("api-key"));
    /// Anthropic's header.
    pub const X_API_KEY: Auth = Auth::Header(Cow::Borrowed("x-api-key"));
    /// Google's header (never a `key=` query parameter).
    pub const X_GOOG_API_KEY: Auth = Auth::Header(Cow::Borrowed("x-goog-api-key"));

    /// The (lower-case) name of the header that carries the key.
    pub fn header_name(&self) -> &str {
        match self {
            Auth::Bearer => "authorization",
            Auth::Header(name) => name,
        }
    }

    /// The header to send for `key`.
    pub fn header(&self, key: &str) -> (&str, String) {
        match self {
            Auth::Bearer => ("authorization", format!("Bearer {key}")),
            Auth::Header(name) => (name, key.to_owned()),
        }
    }

    /// As the config writes it: `bearer`, or the header name.
    pub fn as_config(&self) -> &str {
        match self {
            Auth::Bearer => "bearer",
            Auth::Header(name) => name,
        }
    }
}

/// One wire format: everything chanmon knows about it lives in its implementation.
pub trait Protocol: Sync {
    /// The protocol's name in messages, e.g. `openai chat` or `anthropic`.
    fn name(&self) -> &'static str;
    /// Path and query after the origin, e.g. `/v1/chat/completions`.
    fn path(&self, model: &str, stream: bool) -> String;
    /// The start of [`Protocol::path`] that an SDK's `base_url` already holds, so that an
    /// endpoint with a path replaces it: OpenAI's `base_url` is `https://api.openai.com/v1`, so
    /// `https://openrouter.ai/api/v1` means `/api/v1/chat/completions`. Empty (the default)
    /// when an endpoint's path is a prefix in front of the whole path (Anthropic, Gemini).
    fn base_url_path(&self) -> &'static str {
        ""
    }
    /// How the protocol's own clients send the key: a monitor's `auth` when neither it nor
    /// the provider says otherwise.
    fn default_auth(&self) -> Auth;
    /// Headers the protocol always sends besides the key (lower-case names), e.g. Anthropic's
    /// `anthropic-version`.
    fn fixed_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// The request body for `prompt`.
    fn body(&self, model: &str, prompt: &str, stream: bool) -> Value;
    /// Top-level body keys the probe sets and the user's `body` may not override.
    fn reserved_body_keys(&self) -> &'static [&'static str];
    /// Reads a whole (non-streaming) reply. `Err` = not the expected shape.
    fn parse_full(&self, body: &Value) -> Result<Vec<Piece>, String>;
    /// Reads one SSE event. `Err` = not the expected shape.
    fn parse_event(&self, event: Option<&str>, data: &str) -> Result<Vec<Piece>, String>;
    /// The kind of a non-2xx reply. By status, unless the protocol knows better from the body
    /// (Gemini answers an invalid key with 400).
    fn classify_error(&self, status: u16, _body: &[u8]) -> Kind {
        wire::kind_of_status(status)
    }
    /// A correct reply carrying `answer`, whole and streamed, as this protocol's upstream
    /// sends it: the registry's tests feed it to the parsers and to a loopback probe, so a new
    /// protocol is covered by writing this one method.
    #[cfg(test)]
    fn sample_reply(&self, answer: &str) -> Sample;
}

/// A correct reply, in both shapes (see [`Protocol::sample_reply`]).
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct Sample {
    /// The whole (non-streaming) reply body.
    pub full: Value,
    /// The stream, in order: the SSE `event:` name (when the protocol sends one) and `data:`.
    pub events: Vec<(Option<&'static str>, String)>,
}

/// `s` cut in two near its middle (on a char boundary), for samples that stream in pieces.
#[cfg(test)]
pub(super) fn halves(s: &str) -> [&str; 2] {
    let mut mid = s.len() / 2;
    while !s.is_char_boundary(mid) {
        mid += 1;
    }
    let (a, b) = s.split_at(mid);
    [a, b]
}
