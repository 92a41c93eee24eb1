//! A mock LLM upstream speaking the real wire formats of OpenAI (Chat Completions and
//! Responses), Anthropic (Messages) and Gemini (generateContent / streamGenerateContent),
//! streaming and not, on loopback.
//!
//! chanmon's integration tests start it, point a monitor at [`MockUpstream::origin`] (or
//! [`MockUpstream::base_url`]) and read back what chanmon sent ([`MockUpstream::requests`]).
//! [`MockOptions`] can mount the APIs under a gateway's path, expect the key in another header
//! (Azure's `api-key`, a relay's bearer token) and serve HTTPS (`mock_tls.rs`: a CA generated
//! per test, mTLS). The behaviour of a reply is chosen by
//! the *model name* (see [`Behaviour`]), so one server covers every case: a correct answer,
//! slow first tokens, wrong/echo/empty/canned answers, thinking blocks, malformed bodies, a
//! stalled stream, an oversized body, refusals, each provider's real error bodies, a redirect
//! to a metadata address and an error message that leaks the key.
//!
//! The formats were written from the providers' public documentation and captured traffic,
//! independently of chanmon's client code: a test passes only when both sides agree with the
//! real API. Requests are validated the way the real services do it (auth header, required
//! fields), so a wrongly shaped request fails the test instead of passing silently.
//!
//! The server runs on its own thread with its own tokio runtime, because chanmon's
//! integration tests are plain synchronous `#[test]`s that spawn the real binary. Dropping the
//! [`MockUpstream`] drops that runtime, which also ends stalled streams.

// Each integration test uses a different part of this module, and the example binary only a
// sliver of it; unused items are expected in any one of those crates. Rejections are a whole
// `Response` (at most one per request), so boxing them would only add noise.
#![allow(dead_code, clippy::result_large_err)]

#[path = "mock_anthropic.rs"]
mod anthropic;
#[path = "mock_gemini.rs"]
mod gemini;
#[path = "mock_openai.rs"]
mod openai;
#[path = "mock_tls.rs"]
pub(crate) mod tls_mock;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::serve::ListenerExt;
use regex::Regex;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The largest request body the mock reads; chanmon's probes are a few hundred bytes.
const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;
/// Size of the `huge` reply: larger than any sane response cap.
const HUGE_REPLY_BYTES: usize = 5 * 1024 * 1024;
/// Where the `redirect` model points: the cloud metadata address an SSRF would aim for.
pub(crate) const REDIRECT_TARGET: &str = "http://169.254.169.254/latest/meta-data/";
/// What the `canned` model answers whatever the question.
pub(crate) const CANNED_REPLY: &str = "Hello! How can I help you today?";
/// The visible text of the `refuse` / `safety` models where the protocol carries text.
pub(crate) const REFUSAL_TEXT: &str = "I'm sorry, but I can't help with that request.";

/// How to start a [`MockUpstream`].
#[derive(Debug, Clone)]
pub(crate) struct MockOptions {
    /// The only API key the mock accepts (every provider).
    pub key: String,
    /// Loopback port to bind; 0 picks a free one.
    pub port: u16,
    /// Serve the APIs under this path, as a gateway or relay does, with the SDKs' meaning of
    /// a base URL: OpenAI at `{base}/chat/completions` and `{base}/responses` (the path
    /// replaces `/v1`), Anthropic at `{base}/v1/messages`, Gemini at `{base}/v1beta/models/…`.
    /// Empty: the providers' own paths. Anything else is a 404.
    pub base_path: String,
    /// Expect the key in this header, whatever the provider (as Azure's `api-key`, or a relay
    /// wanting a bearer token on the Anthropic protocol): `authorization` means
    /// `Bearer KEY`, any other name the key as it is. The provider's own key header must then
    /// be absent.
    pub auth_header: Option<String>,
    /// Serve HTTPS instead of HTTP.
    pub tls: Option<MockTls>,
}

/// The mock's TLS identity (PEM), and the CA whose client certificates it requires (mTLS).
#[derive(Debug, Clone)]
pub(crate) struct MockTls {
    pub cert_pem: String,
    pub key_pem: String,
    /// `Some`: a client certificate signed by this CA is required.
    pub client_ca_pem: Option<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            key: "test-key".to_owned(),
            port: 0,
            base_path: String::new(),
            auth_header: None,
            tls: None,
        }
    }
}

/// One request as the mock received it, before any validation.
#[derive(Debug, Clone)]
pub(crate) struct RecordedRequest {
    pub method: String,
    /// The raw (still percent-encoded) path.
    pub path: String,
    pub query: Option<String>,
    /// Header names are lower-case, in arrival order; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `None` when empty or not JSON.
    pub body: Option<Value>,
    /// `"openai-chat"`, `"openai-responses"`, `"anthropic"` or `"gemini"` when the path
    /// belongs to one of them.
    pub provider: Option<&'static str>,
    /// The model from the body (OpenAI, Anthropic) or the decoded path segment (Gemini).
    pub model: Option<String>,
    pub at: Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body asked for a streamed reply (`"stream": true`), or the path did (Gemini).
    pub(crate) fn wants_stream(&self) -> bool {
        self.path.ends_with(":streamGenerateContent")
            || self
                .body
                .as_ref()
                .and_then(|b| b.get("stream"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }
}

/// A running mock upstream; dropping it stops the server and every open stream.
pub(crate) struct MockUpstream {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockUpstream {
    /// Key `test-key`, a free loopback port.
    pub(crate) fn start() -> MockUpstream {
        MockUpstream::start_with(MockOptions::default())
    }

    /// Panics when the port cannot be bound: this is test support, and a test cannot go on
    /// without its upstream.
    pub(crate) fn start_with(opts: MockOptions) -> MockUpstream {
        let shared = Arc::new(Shared {
            key: opts.key,
            base_path: opts.base_path.trim_end_matches('/').to_owned(),
            auth_header: opts.auth_header.map(|h| h.to_ascii_lowercase()),
            handshake_failures: Mutex::new(0),
            log: Mutex::new(Vec::new()),
            flights: Mutex::new(HashMap::new()),
            posts: Mutex::new(Flight::default()),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server_shared = Arc::clone(&shared);
        let tls = opts.tls.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let thread = std::thread::Builder::new()
            .name("mock-upstream".to_owned())
            .spawn(move || serve_until_stopped(opts.port, tls, server_shared, addr_tx, stop_rx))
            .expect("spawning the mock upstream thread");
        let addr = match addr_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("mock upstream could not bind 127.0.0.1:{}: {e}", opts.port),
            Err(_) => panic!("mock upstream thread died before binding"),
        };
        MockUpstream {
            addr,
            scheme,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS), no trailing slash.
    pub(crate) fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The origin and the base path: what a client's `base_url` would be.
    pub(crate) fn base_url(&self) -> String {
        format!("{}{}", self.origin(), self.shared.base_path)
    }

    /// TLS handshakes that failed on the server's side (a refused client certificate, a
    /// client that did not trust the server).
    pub(crate) fn handshake_failures(&self) -> usize {
        *self
            .shared
            .handshake_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn key(&self) -> &str {
        &self.shared.key
    }

    /// Every request so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log().clone()
    }

    /// The requests that named `model`.
    pub(crate) fn requests_for(&self, model: &str) -> Vec<RecordedRequest> {
        self.shared
            .log()
            .iter()
            .filter(|r| r.model.as_deref() == Some(model))
            .cloned()
            .collect()
    }

    /// The highest number of requests for `model` that were in flight at once, counted from
    /// arrival to the end of the response body (a stalled stream stays in flight until the
    /// client hangs up).
    pub(crate) fn max_in_flight(&self, model: &str) -> usize {
        self.shared.flights().get(model).map_or(0, |f| f.max)
    }

    /// How many requests for `model` are in flight right now.
    pub(crate) fn in_flight(&self, model: &str) -> usize {
        self.shared.flights().get(model).map_or(0, |f| f.now)
    }

    /// The highest number of model requests, whatever the model, that were in flight at once:
    /// POSTs to a provider path, counted from arrival to the end of the response body (or the
    /// client hanging up), whatever the answer. Pings (`HEAD /`) and unknown paths do not count.
    pub(crate) fn max_posts_in_flight(&self) -> usize {
        self.shared.posts().max
    }

    /// How many model requests (see [`MockUpstream::max_posts_in_flight`]) are in flight now.
    pub(crate) fn posts_in_flight(&self) -> usize {
        self.shared.posts().now
    }

    /// Forgets recorded requests and concurrency peaks (requests still in flight stay counted).
    pub(crate) fn reset(&self) {
        self.shared.log().clear();
        for flight in self.shared.flights().values_mut() {
            flight.max = flight.now;
        }
        let mut posts = self.shared.posts();
        posts.max = posts.now;
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_until_stopped(
    port: u16,
    tls: Option<MockTls>,
    shared: Arc<Shared>,
    addr_tx: std::sync::mpsc::Sender<std::io::Result<SocketAddr>>,
    stop_rx: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = addr_tx.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                let _ = addr_tx.send(Err(e));
                return;
            }
        };
        let _ = addr_tx.send(listener.local_addr());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        if let Some(tls) = tls {
            let listener = tls_mock::TlsListener::new(listener, &tls, shared);
            tokio::select! {
                _ = axum::serve(listener, app) => {}
                _ = stop_rx => {}
            }
            return;
        }
        // Without TCP_NODELAY, Nagle plus delayed ACKs hold small SSE chunks back by tens of
        // milliseconds, which would wreck time-to-first-token measurements.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::select! {
            _ = axum::serve(listener, app) => {}
            _ = stop_rx => {}
        }
    });
    // Dropping the runtime here cancels every connection task, stalled streams included.
    drop(runtime);
}

struct Shared {
    key: String,
    /// See [`MockOptions::base_path`]; no trailing `/`.
    base_path: String,
    /// See [`MockOptions::auth_header`]; lower-case.
    auth_header: Option<String>,
    handshake_failures: Mutex<usize>,
    log: Mutex<Vec<RecordedRequest>>,
    /// Per model, so a test can tell one monitor's concurrency from another's.
    flights: Mutex<HashMap<String, Flight>>,
    /// Every model request together: what "one request at a time in total" is measured by.
    posts: Mutex<Flight>,
}

#[derive(Default)]
struct Flight {
    now: usize,
    max: usize,
}

impl Shared {
    /// With [`MockOptions::auth_header`], checks the key there (and that the provider's own
    /// header is absent), then hands the provider's checks the headers it knows.
    fn expected_auth(
        &self,
        provider: Provider,
        mut headers: HeaderMap,
    ) -> Result<HeaderMap, String> {
        let Some(name) = &self.auth_header else {
            return Ok(headers);
        };
        let native = match provider {
            Provider::OpenAiChat | Provider::OpenAiResponses => "authorization",
            Provider::Anthropic => "x-api-key",
            Provider::Gemini => "x-goog-api-key",
        };
        if native != name && headers.contains_key(native) {
            return Err(format!(
                "mock upstream: this server reads the key from `{name}`; `{native}` was sent too"
            ));
        }
        let want = if name == "authorization" {
            format!("Bearer {}", self.key)
        } else {
            self.key.clone()
        };
        let sent = headers.remove(name.as_str());
        if sent.as_ref().and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            return Err(format!("mock upstream: missing or wrong key in `{name}`"));
        }
        let native_value = if native == "authorization" {
            format!("Bearer {}", self.key)
        } else {
            self.key.clone()
        };
        headers.insert(
            native,
            HeaderValue::from_str(&native_value).map_err(|e| e.to_string())?,
        );
        Ok(headers)
    }

    // A panicking test thread may poison these; the data is still fine to read.
    fn log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<String, Flight>> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn posts(&self) -> MutexGuard<'_, Flight> {
        self.posts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enter(self: &Arc<Self>, model: &str) -> InFlight {
        self.flights().entry(model.to_owned()).or_default().enter();
        InFlight {
            shared: Arc::clone(self),
            counter: Counter::Model(model.to_owned()),
        }
    }

    fn enter_post(self: &Arc<Self>) -> InFlight {
        self.posts().enter();
        InFlight {
            shared: Arc::clone(self),
            counter: Counter::Posts,
        }
    }
}

impl Flight {
    fn enter(&mut self) {
        self.now += 1;
        self.max = self.max.max(self.now);
    }

    fn leave(&mut self) {
        self.now = self.now.saturating_sub(1);
    }
}

/// Counts one request as in flight until dropped; it travels inside the response body so the
/// count lasts until the last byte is sent or the client goes away.
struct InFlight {
    shared: Arc<Shared>,
    counter: Counter,
}

/// Which count an [`InFlight`] is part of.
enum Counter {
    Model(String),
    Posts,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        match &self.counter {
            Counter::Model(model) => {
                if let Some(flight) = self.shared.flights().get_mut(model) {
                    flight.leave();
                }
            }
            Counter::Posts => self.shared.posts().leave(),
        }
    }
}

/// Which wire format a path speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
    Gemini,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::OpenAiChat => "openai-chat",
            Provider::OpenAiResponses => "openai-responses",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
        }
    }
}

/// What the path says: the provider, and for Gemini the model and whether it streams.
struct Route {
    provider: Provider,
    /// Gemini only: the decoded model segment (or why it could not be decoded).
    path_model: Option<Result<String, String>>,
    /// Gemini only: `:streamGenerateContent`.
    path_stream: bool,
}

/// The route of `path` under `base` (see [`MockOptions::base_path`]).
fn route(path: &str, base: &str) -> Option<Route> {
    let simple = |provider| {
        Some(Route {
            provider,
            path_model: None,
            path_stream: false,
        })
    };
    let path = if base.is_empty() {
        path
    } else {
        let rest = path.strip_prefix(base)?;
        match rest {
            "/chat/completions" => return simple(Provider::OpenAiChat),
            "/responses" => return simple(Provider::OpenAiResponses),
            "/v1/chat/completions" | "/v1/responses" => return None,
            _ => rest,
        }
    };
    match path {
        "/v1/chat/completions" if base.is_empty() => return simple(Provider::OpenAiChat),
        "/v1/responses" if base.is_empty() => return simple(Provider::OpenAiResponses),
        "/v1/messages" => return simple(Provider::Anthropic),
        _ => {}
    }
    let rest = path.strip_prefix("/v1beta/models/")?;
    let (raw_model, method) = rest.rsplit_once(':')?;
    let path_stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return None,
    };
    // A raw `/` means the client did not path-escape the model name.
    if raw_model.is_empty() || raw_model.contains('/') {
        return None;
    }
    Some(Route {
        provider: Provider::Gemini,
        path_model: Some(percent_decode(raw_model)),
        path_stream,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("model segment {s:?} is not UTF-8"))
}

/// Whether the query string carries an API key (`key=`), which chanmon must never do.
fn query_has_key(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("key"))
    })
}

/// The reply a model name asks for (the model name is the variant in kebab-case, e.g.
/// `thinking-only`). Anything unrecognised answers correctly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// "The answer is N." (or "OK" when the prompt holds no `A + B`).
    Correct,
    /// `delay-T-L`: first content token at T ms after arrival, reply complete at L ms; a
    /// non-streamed reply arrives whole at L.
    Delay { first: Duration, total: Duration },
    /// A wrong number.
    Wrong,
    /// The prompt itself.
    Echo,
    /// No visible text.
    Empty,
    /// "Hello! How can I help you today?"
    Canned,
    /// About 2 000 characters that do contain the right number.
    Essay,
    /// Reasoning first (each provider's own way), then the correct answer.
    Thinking,
    /// Reasoning only, stopped by the output cap.
    ThinkingOnly,
    /// 200 with half a JSON body, or an SSE event whose JSON is cut in half.
    Malformed,
    /// Headers (and for streams the first non-content event), then nothing, ever.
    Stall,
    /// 200 with a body over 5 MiB.
    Huge,
    /// The provider's refusal signal (Gemini: a blocked prompt, no candidates).
    Refuse,
    /// Gemini: `finishReason: SAFETY`; elsewhere like `Refuse`.
    Safety,
    /// `status-NNN` (400..=599): that status with the provider's real error body.
    Status(u16),
    /// A first delta, then the provider's in-stream error; outside a stream a 529/503.
    StreamError,
    /// 302 to the cloud metadata address.
    Redirect,
    /// A 400 whose message quotes the received key verbatim and URL-encoded.
    Leak,
    /// A correct answer whose reply names another model ([`SUBSTITUTE_MODEL`]), as a relay
    /// serving a cheaper model does.
    Substitute,
    /// A correct answer naming a dated snapshot of the requested model (`<model>-2024-07-18`).
    Snapshot,
    /// A correct answer with no model field at all.
    Nameless,
    /// A correct answer with no usage (tokens) anywhere, as some relays send.
    NoUsage,
}

/// What the `substitute` model's replies say answered.
pub(crate) const SUBSTITUTE_MODEL: &str = "cheap-mini-model";

impl Behaviour {
    pub(crate) fn from_model(model: &str) -> Behaviour {
        match model {
            "wrong" => Behaviour::Wrong,
            "echo" => Behaviour::Echo,
            "empty" => Behaviour::Empty,
            "canned" => Behaviour::Canned,
            "essay" => Behaviour::Essay,
            "thinking" => Behaviour::Thinking,
            "thinking-only" => Behaviour::ThinkingOnly,
            "malformed" => Behaviour::Malformed,
            "stall" => Behaviour::Stall,
            "huge" => Behaviour::Huge,
            "refuse" => Behaviour::Refuse,
            "safety" => Behaviour::Safety,
            "stream-error" => Behaviour::StreamError,
            "redirect" => Behaviour::Redirect,
            "leak" => Behaviour::Leak,
            "substitute" => Behaviour::Substitute,
            "snapshot" => Behaviour::Snapshot,
            "nameless" => Behaviour::Nameless,
            "no-usage" => Behaviour::NoUsage,
            _ => Behaviour::parametrised(model).unwrap_or(Behaviour::Correct),
        }
    }

    fn parametrised(model: &str) -> Option<Behaviour> {
        if let Some(code) = model.strip_prefix("status-") {
            let code: u16 = code.parse().ok()?;
            return (400..=599)
                .contains(&code)
                .then_some(Behaviour::Status(code));
        }
        let (first, total) = model.strip_prefix("delay-")?.split_once('-')?;
        let first: u64 = first.parse().ok()?;
        let total: u64 = total.parse().ok()?;
        Some(Behaviour::Delay {
            first: Duration::from_millis(first),
            total: Duration::from_millis(total.max(first)),
        })
    }
}

static SUM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(-?\d+)\s*\+\s*(-?\d+)").expect("literal regex"));

/// The challenge contract: the prompt holds one `A + B`; the answer is the sum.
pub(crate) fn challenge_answer(prompt: &str) -> Option<i128> {
    let caps = SUM.captures(prompt)?;
    let a: i128 = caps[1].parse().ok()?;
    let b: i128 = caps[2].parse().ok()?;
    a.checked_add(b)
}

/// Why a reply ended, in provider-neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Stop,
    /// Output cap reached (the thinking-only case).
    Length,
    Refusal,
    /// Gemini: candidate stopped for SAFETY; elsewhere a refusal.
    Safety,
}

/// A provider-neutral reply, rendered by each provider module into its wire format.
#[derive(Debug, Clone)]
struct Reply {
    thinking: Option<String>,
    /// Visible text in stream-sized pieces; empty for no visible text.
    pieces: Vec<String>,
    /// The refusal text, for protocols that carry one.
    refusal: Option<String>,
    finish: Finish,
}

impl Reply {
    fn text(&self) -> String {
        self.pieces.concat()
    }

    fn answer(text: String) -> Reply {
        Reply {
            thinking: None,
            pieces: split_words(&text),
            refusal: None,
            finish: Finish::Stop,
        }
    }
}

/// Splits text into word-sized stream pieces that concatenate back to it exactly.
fn split_words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch == ' ' && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

fn build_reply(behaviour: &Behaviour, prompt: &str) -> Reply {
    let sum = challenge_answer(prompt);
    let correct = match sum {
        Some(n) => format!("The answer is {n}."),
        None => "OK".to_owned(),
    };
    let reasoning = match sum {
        Some(n) => format!(
            "The user wants a single number. Adding the two operands gives {n}, so I will reply with {n}."
        ),
        None => "There is no arithmetic in the prompt; a short acknowledgement will do.".to_owned(),
    };
    match behaviour {
        Behaviour::Wrong => Reply::answer(match sum {
            Some(n) => format!("The answer is {}.", n + 1),
            None => "The answer is 7.".to_owned(),
        }),
        Behaviour::Echo => Reply::answer(prompt.to_owned()),
        Behaviour::Empty => Reply::answer(String::new()),
        Behaviour::Canned => Reply::answer(CANNED_REPLY.to_owned()),
        Behaviour::Essay => Reply::answer(essay(sum)),
        Behaviour::Thinking => Reply {
            thinking: Some(reasoning),
            ..Reply::answer(correct)
        },
        Behaviour::ThinkingOnly => Reply {
            thinking: Some(reasoning),
            pieces: Vec::new(),
            refusal: None,
            finish: Finish::Length,
        },
        Behaviour::Refuse | Behaviour::Safety => Reply {
            thinking: None,
            pieces: Vec::new(),
            refusal: Some(REFUSAL_TEXT.to_owned()),
            finish: if *behaviour == Behaviour::Safety {
                Finish::Safety
            } else {
                Finish::Refusal
            },
        },
        Behaviour::Huge => Reply {
            pieces: huge_pieces(),
            ..Reply::answer(String::new())
        },
        _ => Reply::answer(correct),
    }
}

/// About 2 000 characters of filler that does contain the right number.
fn essay(sum: Option<i128>) -> String {
    let number = sum.map_or_else(|| "nothing".to_owned(), |n| n.to_string());
    let mut text = format!(
        "What a wonderful question! Before giving the result, which is {number}, let us take a \
         long walk through the history of arithmetic. "
    );
    let filler = "Addition is among the oldest operations people have written down, from tally \
                  marks on bone to clay tablets, abacus beads and the positional notation that \
                  makes carrying digits routine. ";
    while text.len() < 2000 {
        text.push_str(filler);
    }
    let mut cut = 2000;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

fn huge_pieces() -> Vec<String> {
    let block = "lorem ipsum dolor sit amet ".repeat(8192 / 27 + 1);
    let count = HUGE_REPLY_BYTES / block.len() + 1;
    vec![block; count]
}

/// Everything a provider module needs to render one reply.
struct Ctx {
    model: String,
    /// A fresh id per reply, shaped per provider by the provider module.
    id: String,
    created: u64,
    prompt: String,
    prompt_tokens: u64,
    /// OpenAI chat: `stream_options.include_usage`.
    include_usage: bool,
    /// The key the client sent, for the `leak` model.
    received_key: String,
    /// Gemini streamGenerateContent without `alt=sse` answers a JSON array.
    gemini_json_array: bool,
}

fn token_estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

/// One server-sent event before framing; the framing differs per provider.
#[derive(Debug, Clone)]
enum Ev {
    Json {
        /// The SSE `event:` name where the protocol uses one (Anthropic, Responses).
        name: Option<&'static str>,
        data: Value,
    },
    /// A literal `data:` payload such as OpenAI's `[DONE]`.
    Raw(&'static str),
}

/// A streamed reply in phases, so that timing knobs can act between them.
#[derive(Debug, Default)]
struct StreamPlan {
    /// Sent at once: role/start events and any reasoning.
    head: Vec<Ev>,
    /// The first visible content event (empty when the reply has none).
    first: Vec<Ev>,
    /// The remaining content events.
    rest: Vec<Ev>,
    /// Finish, usage and end-of-stream events.
    tail: Vec<Ev>,
}

impl StreamPlan {
    fn len_before_rest(&self) -> usize {
        self.head.len() + self.first.len()
    }
}

/// What a provider module renders; the core decides timing and failure modes.
trait Wire {
    fn provider(&self) -> Provider;
    /// Auth and required-field checks, in the provider's own error shapes.
    fn validate(
        &self,
        headers: &HeaderMap,
        body: Option<&Value>,
        key: &str,
    ) -> Result<(), Response>;
    /// The user-message text where the challenge lives.
    fn prompt(&self, body: &Value) -> String;
    fn full(&self, reply: &Reply, ctx: &Ctx) -> Value;
    fn plan(&self, reply: &Reply, ctx: &Ctx) -> StreamPlan;
    /// The provider's in-stream error event, `seq` being the next sequence number.
    fn stream_error(&self, ctx: &Ctx, seq: usize) -> Ev;
    /// The provider's real error response for `status`.
    fn error(&self, status: u16, ctx: &Ctx) -> Response;
    /// An error response carrying `message` in the provider's shape (the `leak` model).
    fn error_with_message(&self, status: u16, message: &str) -> Response;
    fn frame(&self, ev: &Ev) -> String;
    fn received_key(&self, headers: &HeaderMap) -> String;
}

fn wire(provider: Provider) -> &'static dyn Wire {
    match provider {
        Provider::OpenAiChat => &openai::Chat,
        Provider::OpenAiResponses => &openai::Responses,
        Provider::Anthropic => &anthropic::Anthropic,
        Provider::Gemini => &gemini::Gemini,
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Builds a response; `content_type` and the body are the caller's.
fn respond(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn json_response(status: u16, body: &Value) -> Response {
    respond(status, "application/json", body.to_string())
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    // Counted from here, before the body is read, to the end of whatever answer is given.
    let post = (req.method() == Method::POST
        && route(req.uri().path(), &shared.base_path).is_some())
    .then(|| shared.enter_post());
    let resp = answer(shared, req).await;
    attach_guard(resp, post)
}

async fn answer(shared: Arc<Shared>, req: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let body_bytes = axum::body::to_bytes(body, MAX_REQUEST_BODY)
        .await
        .unwrap_or_default();
    let json_body: Option<Value> = serde_json::from_slice(&body_bytes).ok();
    let route = route(&path, &shared.base_path);
    let model = match &route {
        Some(Route {
            path_model: Some(m),
            ..
        }) => m.as_ref().ok().cloned(),
        Some(_) => json_body
            .as_ref()
            .and_then(|b| b.get("model"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        None => None,
    };
    shared.log().push(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: json_body.clone(),
        provider: route.as_ref().map(|r| r.provider.name()),
        model: model.clone(),
        at,
    });

    let Some(route) = route else {
        if path == "/" && (parts.method == Method::GET || parts.method == Method::HEAD) {
            return respond(200, "text/plain; charset=utf-8", "chanmon mock upstream\n");
        }
        return json_response(
            404,
            &json!({"error": {
                "message": format!("Invalid URL ({} {})", parts.method, path),
                "type": "invalid_request_error", "param": null, "code": null}}),
        );
    };
    let wire = wire(route.provider);
    let guard = model.as_deref().map(|m| shared.enter(m));

    if parts.method != Method::POST {
        return wire.error_with_message(
            405,
            &format!("Method {} not allowed for {path}", parts.method),
        );
    }
    if query_has_key(query.as_deref()) {
        return wire.error_with_message(
            400,
            "mock upstream: an API key was sent in the URL (key= query parameter); send it in a header",
        );
    }
    if let Some(Err(why)) = &route.path_model {
        return wire.error_with_message(400, why);
    }
    let headers = match shared.expected_auth(route.provider, parts.headers.clone()) {
        Ok(h) => h,
        Err(why) => return wire.error_with_message(401, &why),
    };
    if let Err(resp) = wire.validate(&headers, json_body.as_ref(), &shared.key) {
        return resp;
    }
    let Some(body) = json_body else {
        // validate() rejects non-JSON bodies; this only keeps the types honest.
        return wire.error_with_message(400, "body is not JSON");
    };
    let model = model.unwrap_or_default();
    let stream = match route.provider {
        Provider::Gemini => route.path_stream,
        _ => body.get("stream").and_then(Value::as_bool).unwrap_or(false),
    };
    let prompt = wire.prompt(&body);
    let ctx = Ctx {
        id: random_id(24),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        prompt_tokens: token_estimate(&prompt) + 8,
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        received_key: wire.received_key(&parts.headers),
        gemini_json_array: route.path_stream
            && !query
                .as_deref()
                .is_some_and(|q| q.split('&').any(|p| p == "alt=sse")),
        prompt,
        model: model.clone(),
    };
    let behaviour = Behaviour::from_model(&model);
    let resp = respond_to(wire, &behaviour, stream, &ctx, at);
    attach_guard(resp, guard)
}

/// Moves the in-flight guard into the body so it is released only when the body ends.
fn attach_guard(resp: Response, guard: Option<InFlight>) -> Response {
    let Some(guard) = guard else { return resp };
    let (parts, body) = resp.into_parts();
    let stream = futures_util::stream::unfold(
        (body.into_data_stream(), Some(guard)),
        |(mut data, guard)| async move {
            use futures_util::StreamExt;
            let next = data.next().await?;
            Some((next, (data, guard)))
        },
    );
    Response::from_parts(parts, Body::from_stream(stream))
}

fn respond_to(wire: &dyn Wire, b: &Behaviour, stream: bool, ctx: &Ctx, at: Instant) -> Response {
    match b {
        Behaviour::Status(code) => return wire.error(*code, ctx),
        Behaviour::Redirect => {
            let mut resp = respond(302, "text/html; charset=utf-8", "");
            resp.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(REDIRECT_TARGET));
            return resp;
        }
        Behaviour::Leak => {
            let key = &ctx.received_key;
            let message = format!(
                "upstream said: invalid key {key} for channel default \
                 (POST https://relay.example/v1/proxy?key={})",
                url_encode(key)
            );
            return wire.error_with_message(400, &message);
        }
        Behaviour::StreamError if !stream => {
            // Outside a stream the same condition is an ordinary overloaded response.
            let code = if wire.provider() == Provider::Anthropic {
                529
            } else {
                503
            };
            return wire.error(code, ctx);
        }
        _ => {}
    }
    let reply = build_reply(b, &ctx.prompt);
    if stream && !(wire.provider() == Provider::Gemini && ctx.gemini_json_array) {
        return stream_response(wire, b, &reply, ctx, at);
    }
    let body = if wire.provider() == Provider::Gemini && stream {
        // streamGenerateContent without alt=sse: the whole stream as one JSON array.
        let plan = plan_for(wire, b, &reply, ctx);
        let items: Vec<String> = [plan.head, plan.first, plan.rest, plan.tail]
            .into_iter()
            .flatten()
            .filter_map(|ev| match ev {
                Ev::Json { data, .. } => Some(data.to_string()),
                Ev::Raw(_) => None,
            })
            .collect();
        format!("[{}]", items.join(",\r\n"))
    } else {
        let mut full = wire.full(&reply, ctx);
        doctor(b, ctx, &mut full);
        full.to_string()
    };
    let content_type = if wire.provider() == Provider::Gemini {
        "application/json; charset=UTF-8"
    } else {
        "application/json"
    };
    let steps = match b {
        Behaviour::Delay { total, .. } => vec![Step::Until(at + *total), Step::Send(body)],
        Behaviour::Malformed => vec![Step::Send(body[..body.len() / 2].to_owned())],
        Behaviour::Stall => vec![
            Step::Send(body[..body.len().min(16)].to_owned()),
            Step::Hang,
        ],
        _ => vec![Step::Send(body)],
    };
    scripted(200, content_type, steps)
}

fn stream_response(
    wire: &dyn Wire,
    b: &Behaviour,
    reply: &Reply,
    ctx: &Ctx,
    at: Instant,
) -> Response {
    let plan = plan_for(wire, b, reply, ctx);
    let frame_all = |evs: &[Ev]| evs.iter().map(|e| wire.frame(e)).collect::<String>();
    let steps = match b {
        Behaviour::Delay { first, total } => vec![
            Step::Send(frame_all(&plan.head)),
            Step::Until(at + *first),
            Step::Send(frame_all(&plan.first)),
            Step::Until(at + *total),
            Step::Send(frame_all(&plan.rest) + &frame_all(&plan.tail)),
        ],
        Behaviour::Stall => vec![
            Step::Send(frame_all(&plan.head[..1.min(plan.head.len())])),
            Step::Hang,
        ],
        Behaviour::StreamError => vec![
            Step::Send(frame_all(&plan.head) + &frame_all(&plan.first)),
            Step::Send(wire.frame(&wire.stream_error(ctx, plan.len_before_rest()))),
        ],
        Behaviour::Malformed => {
            let broken: String = plan.first.iter().map(|e| corrupt(&wire.frame(e))).collect();
            vec![Step::Send(
                frame_all(&plan.head) + &broken + &frame_all(&plan.rest) + &frame_all(&plan.tail),
            )]
        }
        // One write per event, as a real server flushes them.
        _ => [plan.head, plan.first, plan.rest, plan.tail]
            .iter()
            .flatten()
            .map(|e| Step::Send(wire.frame(e)))
            .collect(),
    };
    let content_type = if wire.provider() == Provider::Gemini {
        "text/event-stream"
    } else {
        "text/event-stream; charset=utf-8"
    };
    let mut resp = scripted(200, content_type, steps);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Cuts the JSON of every `data:` line of one framed event in half.
fn corrupt(framed: &str) -> String {
    let mut out = String::new();
    for line in framed.split_inclusive('\n') {
        match line.strip_prefix("data: ") {
            Some(line) => {
                let data = line.trim_end();
                let ending = &line[data.len()..];
                let mut cut = data.len() / 2;
                while !data.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push_str("data: ");
                out.push_str(&data[..cut]);
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One step of a scripted body: the way the mock pauses between chunks or stalls forever.
enum Step {
    Send(String),
    Until(Instant),
    Hang,
}

fn scripted(status: u16, content_type: &str, steps: Vec<Step>) -> Response {
    let stream = futures_util::stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next()? {
                Step::Send(text) if text.is_empty() => {}
                Step::Send(text) => return Some((Ok::<_, Infallible>(Bytes::from(text)), steps)),
                Step::Until(when) => sleep_precisely(when).await,
                Step::Hang => std::future::pending::<()>().await,
            }
        }
    });
    respond(status, content_type, Body::from_stream(stream))
}

/// Sleeps until `deadline` to well under a millisecond. tokio's timer rounds up to the next
/// millisecond tick, which would bias the latencies the benchmarks compare against by 1-2 ms;
/// so the timer covers all but the last 2 ms and a yielding wait covers the rest.
async fn sleep_precisely(deadline: Instant) {
    if let Some(coarse) = deadline.checked_sub(Duration::from_millis(2)) {
        tokio::time::sleep_until(coarse.into()).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// `****` for short keys, else the first three and last four characters, as OpenAI masks it.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// The provider's stream plan with the behaviour's changes to what the reply says about
/// itself applied to every event.
fn plan_for(wire: &dyn Wire, b: &Behaviour, reply: &Reply, ctx: &Ctx) -> StreamPlan {
    let mut plan = wire.plan(reply, ctx);
    for ev in plan
        .head
        .iter_mut()
        .chain(plan.first.iter_mut())
        .chain(plan.rest.iter_mut())
        .chain(plan.tail.iter_mut())
    {
        if let Ev::Json { data, .. } = ev {
            doctor(b, ctx, data);
        }
    }
    plan
}

/// Rewrites the model name and usage where each provider puts them: top level (OpenAI chat
/// and Responses objects, Gemini), `message` (Anthropic `message_start`) and `response`
/// (Responses stream events).
fn doctor(b: &Behaviour, ctx: &Ctx, v: &mut Value) {
    if !matches!(
        b,
        Behaviour::Substitute | Behaviour::Snapshot | Behaviour::Nameless | Behaviour::NoUsage
    ) {
        return;
    }
    doctor_object(b, ctx, v);
    for key in ["message", "response"] {
        if let Some(inner) = v.get_mut(key).filter(|i| i.is_object()) {
            doctor_object(b, ctx, inner);
        }
    }
}

fn doctor_object(b: &Behaviour, ctx: &Ctx, o: &mut Value) {
    let Value::Object(m) = o else { return };
    for key in ["model", "modelVersion"] {
        if !m.get(key).is_some_and(Value::is_string) {
            continue;
        }
        match b {
            Behaviour::Substitute => {
                m.insert(key.to_owned(), json!(SUBSTITUTE_MODEL));
            }
            Behaviour::Snapshot => {
                m.insert(key.to_owned(), json!(format!("{}-2024-07-18", ctx.model)));
            }
            Behaviour::Nameless => {
                m.remove(key);
            }
            _ => {}
        }
    }
    if *b == Behaviour::NoUsage {
        m.remove("usage");
        m.remove("usageMetadata");
    }
}
