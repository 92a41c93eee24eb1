//! A mock LLM upstream on loopback that speaks the providers' real wire formats: OpenAI Chat
//! Completions and Responses, Anthropic Messages and Gemini generateContent, streaming (SSE)
//! and not, with their real error bodies.
//!
//! The model name picks the behaviour, so one mock serves every case:
//! any ordinary name answers the challenge (`A + B` in the prompt) correctly;
//! `delay-T-L` sends the first token at T ms and ends at L ms; `wrong`, `echo`, `empty`,
//! `canned`, `essay`, `thinking`, `thinking-only`, `malformed`, `stall`, `huge`, `refuse`,
//! `safety`, `stream-error`, `redirect`, `leak` and `status-NNN` do what they say.
//!
//! It validates what it receives (method, path, auth header, required body fields) and records
//! every request, so tests can pin request shapes. It runs on its own thread and runtime so
//! synchronous tests can use it; dropping it stops the server.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct MockOptions {
    pub key: String,
    pub port: u16,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            key: "test-key".into(),
            port: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub provider: Option<&'static str>,
    pub model: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    key: String,
    requests: Mutex<Vec<RecordedRequest>>,
    /// model → (in flight now, most ever at once)
    in_flight: Mutex<HashMap<String, (usize, usize)>>,
}

pub struct MockUpstream {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockUpstream {
    pub fn start() -> MockUpstream {
        MockUpstream::start_with(MockOptions::default())
    }

    pub fn start_with(opts: MockOptions) -> MockUpstream {
        let state = Arc::new(State {
            key: opts.key.clone(),
            ..State::default()
        });
        let listener = std::net::TcpListener::bind(("127.0.0.1", opts.port)).expect("bind mock");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("mock runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(move |req: Request<Body>| {
                    let st = st.clone();
                    async move { Ok::<_, Infallible>(handle(st, req).await) }
                });
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        MockUpstream {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn key(&self) -> &str {
        &self.state.key
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn requests_for(&self, model: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.model.as_deref() == Some(model))
            .collect()
    }

    pub fn max_in_flight(&self, model: &str) -> usize {
        self.state
            .in_flight
            .lock()
            .unwrap()
            .get(model)
            .map_or(0, |v| v.1)
    }

    pub fn reset(&self) {
        self.state.requests.lock().unwrap().clear();
        self.state.in_flight.lock().unwrap().clear();
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Streams that stall forever would hold graceful shutdown: do not wait for the thread.
        drop(self.thread.take());
    }
}

/// Decrements the model's in-flight count when the response body is done or dropped.
struct Flight {
    state: Arc<State>,
    model: String,
}

impl Flight {
    fn new(state: Arc<State>, model: &str) -> Flight {
        let mut m = state.in_flight.lock().unwrap();
        let e = m.entry(model.to_owned()).or_default();
        e.0 += 1;
        e.1 = e.1.max(e.0);
        drop(m);
        Flight {
            state,
            model: model.to_owned(),
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if let Some(e) = self.state.in_flight.lock().unwrap().get_mut(&self.model) {
            e.0 = e.0.saturating_sub(1);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Provider {
    Chat,
    Responses,
    Anthropic,
    Gemini,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Chat => "openai",
            Provider::Responses => "openai-responses",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
        }
    }
}

/// A body sent as timed pieces: (offset from the request's arrival, bytes); `stall` keeps the
/// body open forever after the last piece.
struct Timed {
    pieces: Vec<(Duration, Bytes)>,
    stall: bool,
}

fn respond(
    status: u16,
    ctype: &str,
    body: Timed,
    flight: Flight,
    extra: &[(&str, String)],
) -> Response<Body> {
    let start = tokio::time::Instant::now();
    let pieces = body.pieces;
    let stall = body.stall;
    let stream = futures_util::stream::unfold(
        (pieces.into_iter(), flight, stall),
        move |(mut it, flight, stall)| async move {
            match it.next() {
                Some((at, bytes)) => {
                    tokio::time::sleep_until(start + at).await;
                    Some((Ok::<Bytes, Infallible>(bytes), (it, flight, stall)))
                }
                None if stall => {
                    std::future::pending::<()>().await;
                    None
                }
                None => {
                    drop(flight);
                    None
                }
            }
        },
    );
    let mut b = Response::builder()
        .status(status)
        .header("content-type", ctype);
    for (k, v) in extra {
        b = b.header(*k, v.as_str());
    }
    b.body(Body::from_stream(stream)).expect("response")
}

fn now_body(v: Vec<u8>) -> Timed {
    Timed {
        pieces: vec![(Duration::ZERO, Bytes::from(v))],
        stall: false,
    }
}

fn json_now(status: u16, v: &Value, flight: Flight) -> Response<Body> {
    respond(
        status,
        "application/json",
        now_body(v.to_string().into_bytes()),
        flight,
        &[],
    )
}

async fn handle(state: Arc<State>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();

    let (provider, gemini_model, gemini_stream) = route(&parts.method, &path);
    let model = match provider {
        Some(Provider::Gemini) => gemini_model.clone(),
        Some(_) => json
            .as_ref()
            .and_then(|j| j.get("model"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        None => None,
    };
    state.requests.lock().unwrap().push(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers,
        body: json.clone(),
        provider: provider.map(Provider::name),
        model: model.clone(),
        at: Instant::now(),
    });
    let flight = Flight::new(state.clone(), model.as_deref().unwrap_or(""));

    if parts.method == Method::HEAD || (parts.method == Method::GET && path == "/") {
        return respond(200, "text/plain", now_body(Vec::new()), flight, &[]);
    }
    let Some(p) = provider else {
        return json_now(
            404,
            &json!({"error": {"message": format!("no route for {} {path}", parts.method), "type": "invalid_request_error"}}),
            flight,
        );
    };
    if let Some(err) = check_auth(p, &parts.headers, query.as_deref(), &state.key) {
        return json_now(err.0, &err.1, flight);
    }
    let Some(body) = json else {
        return json_now(
            400,
            &error_body(p, 400, "request body is not valid JSON"),
            flight,
        );
    };
    if let Some(missing) = missing_field(p, &body) {
        return json_now(
            400,
            &error_body(p, 400, &format!("missing required field: {missing}")),
            flight,
        );
    }
    let model = model.unwrap_or_default();
    let stream = match p {
        Provider::Gemini => gemini_stream,
        _ => body.get("stream").and_then(Value::as_bool).unwrap_or(false),
    };
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let prompt = prompt_text(p, &body);
    let key_sent = sent_key(p, &parts.headers);
    behave(p, &model, stream, include_usage, &prompt, &key_sent, flight)
}

fn route(method: &Method, path: &str) -> (Option<Provider>, Option<String>, bool) {
    if method != Method::POST {
        return (None, None, false);
    }
    match path {
        "/v1/chat/completions" => (Some(Provider::Chat), None, false),
        "/v1/responses" => (Some(Provider::Responses), None, false),
        "/v1/messages" => (Some(Provider::Anthropic), None, false),
        _ => {
            let Some(seg) = path.strip_prefix("/v1beta/models/") else {
                return (None, None, false);
            };
            let Some((model, method)) = seg.rsplit_once(':') else {
                return (None, None, false);
            };
            let model = percent_decode(model);
            match method {
                "generateContent" => (Some(Provider::Gemini), Some(model), false),
                "streamGenerateContent" => (Some(Provider::Gemini), Some(model), true),
                _ => (None, None, false),
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn sent_key(p: Provider, h: &HeaderMap) -> String {
    match p {
        Provider::Chat | Provider::Responses => header(h, "authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or(""),
        Provider::Anthropic => header(h, "x-api-key").unwrap_or(""),
        Provider::Gemini => header(h, "x-goog-api-key").unwrap_or(""),
    }
    .to_owned()
}

fn check_auth(p: Provider, h: &HeaderMap, query: Option<&str>, key: &str) -> Option<(u16, Value)> {
    if p == Provider::Gemini && query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("key=")))
    {
        return Some((
            400,
            error_body(p, 400, "API keys in the URL are refused by this mock"),
        ));
    }
    if p == Provider::Anthropic && header(h, "anthropic-version").is_none() {
        return Some((
            400,
            error_body(p, 400, "anthropic-version: header is required"),
        ));
    }
    if sent_key(p, h) != key {
        return Some((401, error_body(p, 401, "")));
    }
    None
}

fn missing_field(p: Provider, b: &Value) -> Option<&'static str> {
    let has_array = |k: &str| {
        b.get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    match p {
        Provider::Chat => {
            if b.get("model").and_then(Value::as_str).is_none() {
                Some("model")
            } else if !has_array("messages") {
                Some("messages")
            } else {
                None
            }
        }
        Provider::Responses => {
            if b.get("model").and_then(Value::as_str).is_none() {
                Some("model")
            } else if b.get("input").is_none() {
                Some("input")
            } else {
                None
            }
        }
        Provider::Anthropic => {
            if b.get("model").and_then(Value::as_str).is_none() {
                Some("model")
            } else if !has_array("messages") {
                Some("messages")
            } else if b.get("max_tokens").and_then(Value::as_u64).is_none() {
                Some("max_tokens")
            } else {
                None
            }
        }
        Provider::Gemini => (!has_array("contents")).then_some("contents"),
    }
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|x| collect_text(x, out)),
        Value::Object(o) => {
            for k in ["content", "text", "parts"] {
                if let Some(x) = o.get(k) {
                    collect_text(x, out);
                }
            }
        }
        _ => {}
    }
}

fn prompt_text(p: Provider, b: &Value) -> String {
    let mut out = String::new();
    let field = match p {
        Provider::Chat | Provider::Anthropic => "messages",
        Provider::Responses => "input",
        Provider::Gemini => "contents",
    };
    if let Some(v) = b.get(field) {
        collect_text(v, &mut out);
    }
    out.trim().to_owned()
}

fn correct_answer(prompt: &str) -> Option<u64> {
    let re = regex::Regex::new(r"(\d+) \+ (\d+)").expect("regex");
    let c = re.captures(prompt)?;
    Some(c[1].parse::<u64>().ok()? + c[2].parse::<u64>().ok()?)
}

fn error_body(p: Provider, status: u16, msg: &str) -> Value {
    let (oa_type, oa_code, an_type, g_status, default_msg) = match status {
        400 => (
            "invalid_request_error",
            "invalid_request",
            "invalid_request_error",
            "INVALID_ARGUMENT",
            "Invalid request",
        ),
        401 => (
            "invalid_request_error",
            "invalid_api_key",
            "authentication_error",
            "UNAUTHENTICATED",
            "Incorrect API key provided.",
        ),
        403 => (
            "invalid_request_error",
            "unsupported_country_region_territory",
            "permission_error",
            "PERMISSION_DENIED",
            "Permission denied",
        ),
        404 => (
            "invalid_request_error",
            "model_not_found",
            "not_found_error",
            "NOT_FOUND",
            "The model does not exist or you do not have access to it.",
        ),
        429 => (
            "requests",
            "rate_limit_exceeded",
            "rate_limit_error",
            "RESOURCE_EXHAUSTED",
            "Rate limit reached for requests",
        ),
        503 => (
            "server_error",
            "service_unavailable",
            "api_error",
            "UNAVAILABLE",
            "The server is overloaded or not ready yet.",
        ),
        529 => (
            "server_error",
            "overloaded",
            "overloaded_error",
            "UNAVAILABLE",
            "Overloaded",
        ),
        _ => (
            "server_error",
            "server_error",
            "api_error",
            "INTERNAL",
            "The server had an error while processing your request.",
        ),
    };
    let m = if msg.is_empty() { default_msg } else { msg };
    match p {
        Provider::Chat | Provider::Responses => {
            json!({"error": {"message": m, "type": oa_type, "param": null, "code": oa_code}})
        }
        Provider::Anthropic => {
            json!({"type": "error", "error": {"type": an_type, "message": m}, "request_id": "req_mock"})
        }
        Provider::Gemini => json!({"error": {"code": status, "message": m, "status": g_status}}),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Normal,
    Thinking,
    ThinkingOnly,
    Refuse,
    Safety,
}

fn behave(
    p: Provider,
    model: &str,
    stream: bool,
    usage: bool,
    prompt: &str,
    key: &str,
    flight: Flight,
) -> Response<Body> {
    let answer = correct_answer(prompt);
    let right = match answer {
        Some(a) => format!("The answer is {a}."),
        None => "OK".to_owned(),
    };
    let ms = Duration::from_millis;
    let (mut first, mut last) = (ms(5), ms(10));
    let name = model.strip_prefix("models/").unwrap_or(model);
    let mut shape = Shape::Normal;
    let text = match name {
        "wrong" => format!("The answer is {}.", answer.unwrap_or(0) + 1),
        "echo" => prompt.to_owned(),
        "empty" => String::new(),
        "canned" => "Hello! How can I help you today?".to_owned(),
        "essay" => {
            let mut s = String::from("Let me explain addition in depth. ");
            while s.len() < 1000 {
                s.push_str(
                    "Numbers combine when we add them, and the process has a long history. ",
                );
            }
            s.push_str(&right);
            while s.len() < 2000 {
                s.push_str(" Addition is commutative and associative, which is worth remembering.");
            }
            s
        }
        "thinking" => {
            shape = Shape::Thinking;
            right.clone()
        }
        "thinking-only" => {
            shape = Shape::ThinkingOnly;
            String::new()
        }
        "refuse" => {
            shape = Shape::Refuse;
            String::new()
        }
        "safety" => {
            shape = Shape::Safety;
            String::new()
        }
        "malformed" => {
            return if stream {
                respond(
                    200,
                    "text/event-stream",
                    now_body(b"data: {not json\n\n".to_vec()),
                    flight,
                    &[],
                )
            } else {
                respond(
                    200,
                    "application/json",
                    now_body(br#"{"choices": ["#.to_vec()),
                    flight,
                    &[],
                )
            };
        }
        "huge" => {
            let big = json!({"padding": "x".repeat(5 << 20)});
            return json_now(200, &big, flight);
        }
        "redirect" => {
            return respond(
                302,
                "text/plain",
                now_body(Vec::new()),
                flight,
                &[(
                    "location",
                    "http://169.254.169.254/latest/meta-data/".to_owned(),
                )],
            );
        }
        "leak" => {
            return json_now(
                400,
                &error_body(p, 400, &format!("Invalid API key provided: {key}")),
                flight,
            );
        }
        "stall" => {
            let head = if stream {
                stream_head(p, model)
            } else {
                Vec::new()
            };
            let mut pieces: Vec<(Duration, Bytes)> = head
                .into_iter()
                .map(|e| (Duration::ZERO, Bytes::from(e)))
                .collect();
            if !stream {
                pieces.push((Duration::ZERO, Bytes::from_static(b"{")));
            }
            let ctype = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            return respond(
                200,
                ctype,
                Timed {
                    pieces,
                    stall: true,
                },
                flight,
                &[],
            );
        }
        "stream-error" => {
            if !stream {
                return json_now(500, &error_body(p, 500, ""), flight);
            }
            let mut events = stream_head(p, model);
            events.extend(content_events(p, model, "The"));
            events.push(stream_error(p));
            let pieces = events
                .into_iter()
                .map(|e| (ms(5), Bytes::from(e)))
                .collect();
            return respond(
                200,
                "text/event-stream",
                Timed {
                    pieces,
                    stall: false,
                },
                flight,
                &[],
            );
        }
        other => {
            if let Some(code) = other
                .strip_prefix("status-")
                .and_then(|c| c.parse::<u16>().ok())
            {
                return json_now(code, &error_body(p, code, ""), flight);
            }
            if let Some(rest) = other.strip_prefix("delay-") {
                let mut it = rest.split('-').filter_map(|v| v.parse::<u64>().ok());
                if let (Some(t), Some(l)) = (it.next(), it.next()) {
                    first = ms(t);
                    last = ms(l.max(t));
                }
            }
            right.clone()
        }
    };
    if !stream {
        let body = full_body(p, model, &text, shape);
        return respond(
            200,
            "application/json",
            Timed {
                pieces: vec![(last, Bytes::from(body.to_string()))],
                stall: false,
            },
            flight,
            &[],
        );
    }
    // Stream: head now, reasoning next, the first content at `first`, the rest and the end at `last`.
    let mut pieces: Vec<(Duration, Bytes)> = stream_head(p, model)
        .into_iter()
        .map(|e| (Duration::ZERO, Bytes::from(e)))
        .collect();
    if matches!(shape, Shape::Thinking | Shape::ThinkingOnly) {
        pieces.extend(
            thinking_events(p, model)
                .into_iter()
                .map(|e| (ms(1), Bytes::from(e))),
        );
    }
    let chunks = split3(&text);
    for (i, c) in chunks.iter().enumerate() {
        let at = if i == 0 { first } else { last };
        if i == 0 && p == Provider::Anthropic {
            let start = json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}});
            pieces.push((at, Bytes::from(sse(Some("content_block_start"), &start))));
        }
        pieces.extend(
            content_events(p, model, c)
                .into_iter()
                .map(|e| (at, Bytes::from(e))),
        );
    }
    pieces.extend(
        stream_tail(p, model, shape, usage)
            .into_iter()
            .map(|e| (last, Bytes::from(e))),
    );
    respond(
        200,
        "text/event-stream",
        Timed {
            pieces,
            stall: false,
        },
        flight,
        &[],
    )
}

/// Splits an answer into up to three deltas (char boundaries respected).
fn split3(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let cuts = [0, n / 3, 2 * n / 3, n];
    cuts.windows(2)
        .map(|w| chars[w[0]..w[1]].iter().collect::<String>())
        .filter(|s| !s.is_empty())
        .collect()
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

fn gemini_sse(data: &Value) -> String {
    format!("data: {data}\r\n\r\n")
}

fn created() -> u64 {
    1_764_000_000
}

fn chat_chunk(model: &str, delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created(), "model": model,
        "system_fingerprint": "fp_mock", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

fn resp_event(ty: &str, seq: &mut u32, mut v: Value) -> String {
    v["type"] = json!(ty);
    v["sequence_number"] = json!(*seq);
    *seq += 1;
    sse(Some(ty), &v)
}

fn response_object(model: &str, status: &str, output: Value) -> Value {
    json!({"id": "resp_mock", "object": "response", "created_at": created(), "status": status, "model": model,
        "output": output, "usage": {"input_tokens": 20, "output_tokens": 6, "total_tokens": 26}})
}

fn stream_head(p: Provider, model: &str) -> Vec<String> {
    match p {
        Provider::Chat => vec![sse(
            None,
            &chat_chunk(
                model,
                json!({"role": "assistant", "content": "", "refusal": null}),
                Value::Null,
            ),
        )],
        Provider::Responses => {
            let mut seq = 0;
            vec![
                resp_event(
                    "response.created",
                    &mut seq,
                    json!({"response": response_object(model, "in_progress", json!([]))}),
                ),
                resp_event(
                    "response.in_progress",
                    &mut seq,
                    json!({"response": response_object(model, "in_progress", json!([]))}),
                ),
                resp_event(
                    "response.output_item.added",
                    &mut seq,
                    json!({"output_index": 0, "item": {"id": "msg_mock", "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
                ),
                resp_event(
                    "response.content_part.added",
                    &mut seq,
                    json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
                ),
            ]
        }
        Provider::Anthropic => vec![
            sse(
                Some("message_start"),
                &json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
            ),
            sse(Some("ping"), &json!({"type": "ping"})),
        ],
        Provider::Gemini => Vec::new(),
    }
}

fn thinking_events(p: Provider, model: &str) -> Vec<String> {
    match p {
        Provider::Chat => vec![sse(
            None,
            &chat_chunk(
                model,
                json!({"reasoning_content": "Let me add the two numbers."}),
                Value::Null,
            ),
        )],
        Provider::Responses => vec![sse(
            Some("response.reasoning_summary_text.delta"),
            &json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 90, "item_id": "rs_mock", "output_index": 0, "summary_index": 0, "delta": "Adding."}),
        )],
        Provider::Anthropic => vec![
            sse(
                Some("content_block_start"),
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ),
            sse(
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me add the two numbers."}}),
            ),
            sse(
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}}),
            ),
            sse(
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": 0}),
            ),
        ],
        Provider::Gemini => vec![gemini_sse(
            &json!({"candidates": [{"content": {"parts": [{"text": "Let me add the two numbers.", "thought": true}], "role": "model"}, "index": 0}], "modelVersion": model}),
        )],
    }
}

fn content_events(p: Provider, model: &str, text: &str) -> Vec<String> {
    match p {
        Provider::Chat => vec![sse(
            None,
            &chat_chunk(model, json!({"content": text}), Value::Null),
        )],
        Provider::Responses => vec![sse(
            Some("response.output_text.delta"),
            &json!({"type": "response.output_text.delta", "sequence_number": 50, "item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": text}),
        )],
        Provider::Anthropic => vec![
            // Each delta is its own well-formed event; the text block starts once, before the first.
            sse(
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": text}}),
            ),
        ],
        Provider::Gemini => vec![gemini_sse(
            &json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}], "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 2, "totalTokenCount": 22}, "modelVersion": model}),
        )],
    }
}

fn stream_tail(p: Provider, model: &str, shape: Shape, usage: bool) -> Vec<String> {
    match p {
        Provider::Chat => {
            let mut v = Vec::new();
            if shape == Shape::Refuse || shape == Shape::Safety {
                v.push(sse(
                    None,
                    &chat_chunk(
                        model,
                        json!({"refusal": "I'm sorry, I can't help with that."}),
                        Value::Null,
                    ),
                ));
            }
            v.push(sse(None, &chat_chunk(model, json!({}), json!("stop"))));
            if usage {
                v.push(sse(None, &json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created(), "model": model, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26}})));
            }
            v.push("data: [DONE]\n\n".to_owned());
            v
        }
        Provider::Responses => {
            let mut seq = 100;
            let mut v = Vec::new();
            if shape == Shape::Refuse || shape == Shape::Safety {
                v.push(resp_event("response.refusal.delta", &mut seq, json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": "I can't help with that."})));
            }
            v.push(resp_event(
                "response.output_text.done",
                &mut seq,
                json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "text": ""}),
            ));
            v.push(resp_event(
                "response.completed",
                &mut seq,
                json!({"response": response_object(model, "completed", json!([]))}),
            ));
            v
        }
        Provider::Anthropic => {
            let stop = if shape == Shape::Refuse || shape == Shape::Safety {
                "refusal"
            } else {
                "end_turn"
            };
            vec![
                sse(
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": 1}),
                ),
                sse(
                    Some("message_delta"),
                    &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 6}}),
                ),
                sse(Some("message_stop"), &json!({"type": "message_stop"})),
            ]
        }
        Provider::Gemini => match shape {
            Shape::Refuse => vec![gemini_sse(
                &json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20}, "modelVersion": model}),
            )],
            Shape::Safety => vec![gemini_sse(
                &json!({"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}], "modelVersion": model}),
            )],
            _ => vec![gemini_sse(
                &json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 6, "totalTokenCount": 26}, "modelVersion": model}),
            )],
        },
    }
}

fn stream_error(p: Provider) -> String {
    match p {
        Provider::Chat => sse(
            None,
            &json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}}),
        ),
        Provider::Responses => sse(
            Some("error"),
            &json!({"type": "error", "sequence_number": 99, "code": "server_error", "message": "The server had an error", "param": null}),
        ),
        Provider::Anthropic => sse(
            Some("error"),
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
        Provider::Gemini => gemini_sse(
            &json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}),
        ),
    }
}

fn full_body(p: Provider, model: &str, text: &str, shape: Shape) -> Value {
    let refused = matches!(shape, Shape::Refuse | Shape::Safety);
    match p {
        Provider::Chat => {
            let mut message = json!({"role": "assistant", "content": if refused { Value::Null } else { json!(text) }, "refusal": if refused { json!("I'm sorry, I can't help with that.") } else { Value::Null }});
            if matches!(shape, Shape::Thinking | Shape::ThinkingOnly) {
                message["reasoning_content"] = json!("Let me add the two numbers.");
            }
            json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": created(), "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26}, "system_fingerprint": "fp_mock"})
        }
        Provider::Responses => {
            let mut output = Vec::new();
            if matches!(shape, Shape::Thinking | Shape::ThinkingOnly) {
                output.push(json!({"id": "rs_mock", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Adding."}]}));
            }
            if refused {
                output.push(json!({"id": "msg_mock", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}));
            } else if shape != Shape::ThinkingOnly {
                output.push(json!({"id": "msg_mock", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}));
            }
            response_object(model, "completed", Value::Array(output))
        }
        Provider::Anthropic => {
            let mut content = Vec::new();
            if matches!(shape, Shape::Thinking | Shape::ThinkingOnly) {
                content.push(json!({"type": "thinking", "thinking": "Let me add the two numbers.", "signature": "EqQBCgIYAhIM"}));
            }
            if !refused && shape != Shape::ThinkingOnly {
                content.push(json!({"type": "text", "text": text}));
            }
            json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": if refused { "refusal" } else { "end_turn" }, "stop_sequence": null,
                "usage": {"input_tokens": 20, "output_tokens": 6}})
        }
        Provider::Gemini => match shape {
            Shape::Refuse => {
                json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20}, "modelVersion": model})
            }
            Shape::Safety => {
                json!({"candidates": [{"finishReason": "SAFETY", "index": 0}], "modelVersion": model})
            }
            _ => {
                let mut parts = Vec::new();
                if matches!(shape, Shape::Thinking | Shape::ThinkingOnly) {
                    parts.push(json!({"text": "Let me add the two numbers.", "thought": true}));
                }
                if shape != Shape::ThinkingOnly {
                    parts.push(json!({"text": text}));
                }
                json!({"candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 6, "totalTokenCount": 26}, "modelVersion": model})
            }
        },
    }
}
