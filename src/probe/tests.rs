//! The probe's tests: body merging and verdicts as plain functions, then whole probes of every
//! registry entry against a loopback upstream that answers in the protocol's own sample reply
//! (so a new protocol or provider is probed here without a test of its own), and the `fake`
//! provider taken from config text to verdicts through the registry alone.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::config::{self, Config};
use crate::model::Status;
use crate::provider::{Api, Provider};
use crate::secret::Secret;

#[test]
fn user_body_merges_but_never_overrides_protocol_keys() {
    let mut base = serde_json::json!({"model": "m", "generationConfig": {"maxOutputTokens": 1024}});
    let extra: serde_json::Map<String, Value> = serde_json::from_str(
        r#"{"model": "evil", "temperature": 0, "generationConfig": {"temperature": 0.1}}"#,
    )
    .unwrap();
    merge_body(&mut base, &extra, &["model"]);
    assert_eq!(base["model"], "m");
    assert_eq!(base["temperature"], 0);
    assert_eq!(base["generationConfig"]["maxOutputTokens"], 1024);
    assert_eq!(base["generationConfig"]["temperature"], 0.1);
}

/// What the loopback upstream saw of one POST.
#[derive(Debug, Clone)]
struct Seen {
    /// Path and query.
    target: String,
    headers: HeaderMap,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An upstream speaking `protocol` on 127.0.0.1. A model named `status-NNN` (found in the
/// path or the body) gets HTTP NNN with an error body saying `slow down`; any other gets
/// the protocol's sample reply carrying the challenge's answer, streamed when asked to.
struct Upstream {
    origin: String,
    seen: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn upstream(protocol: &'static dyn Protocol) -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Log::default();
    let app = Router::new()
        .fallback(answer)
        .with_state((protocol, seen.clone()));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Upstream {
        origin: format!("http://{addr}"),
        seen,
        task,
    }
}

async fn answer(
    State((protocol, seen)): State<(&'static dyn Protocol, Log)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return StatusCode::OK.into_response(); // the ping
    }
    let target = uri.path_and_query().map_or("", |p| p.as_str()).to_owned();
    let text = String::from_utf8_lossy(&body).into_owned();
    seen.lock().unwrap().push(Seen {
        target: target.clone(),
        headers: headers.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let wanted = format!("{target} {text}");
    if let Some(at) = wanted.find("status-") {
        let code: u16 = wanted[at + 7..at + 10].parse().unwrap();
        let body = r#"{"error":{"message":"slow down","type":"test_error"}}"#;
        let status = StatusCode::from_u16(code).unwrap();
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let sample = protocol.sample_reply(&format!("The answer is {}.", sum_asked(&text)));
    let streaming = headers
        .get(header::ACCEPT)
        .is_some_and(|a| a.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        let mut out = String::new();
        for (event, data) in sample.events {
            if let Some(e) = event {
                out.push_str(&format!("event: {e}\n"));
            }
            out.push_str(&format!("data: {data}\n\n"));
        }
        ([(header::CONTENT_TYPE, "text/event-stream")], out).into_response()
    } else {
        let full = sample.full.to_string();
        ([(header::CONTENT_TYPE, "application/json")], full).into_response()
    }
}

/// The sum the challenge asks for ("What is A + B?"), read from the raw request.
fn sum_asked(request: &str) -> u32 {
    let at = request
        .find("What is ")
        .expect("the challenge is in the request")
        + 8;
    let question = &request[at..at + request[at..].find('?').unwrap()];
    let (a, b) = question.split_once(" + ").unwrap();
    a.parse::<u32>().unwrap() + b.parse::<u32>().unwrap()
}

const KEY: &str = "k-loopback-7c1e";

/// A config with one monitor of `provider`/`api`, plus `extra` lines in its table.
fn config_text(provider: Provider, api: Api, extra: &str) -> String {
    format!(
        "[network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n\n\
         [[monitor]]\nid = \"m\"\nprovider = \"{provider}\"\napi = \"{}\"\n\
         model = \"some/model\"\napi_key = \"{KEY}\"\ntimeout = \"10s\"\n\
         model_aliases = {{ \"some/model\" = \"m\" }}\n{extra}",
        api.as_str()
    )
}

fn parse(text: &str) -> Result<Config, Vec<String>> {
    config::parse(text, Path::new("loopback.toml"), &|_| None)
        .map(|l| l.config)
        .map_err(|e| e.errors.into_iter().map(|d| d.message).collect())
}

/// Probes the config's only monitor, with the key it names.
async fn probe(config: &Config) -> Vec<CheckResult> {
    let monitor = Monitor {
        config: config.monitors[0].clone(),
        key: KeyState::Ready(Secret::new(KEY)),
    };
    let client = HttpClient::new(&monitor.config.network).unwrap();
    probe_monitor(&monitor, &client, Arc::new(Redactor::default()), 2).await
}

const STATUSES: [(u16, Kind); 5] = [
    (401, Kind::Auth),
    (403, Kind::Auth),
    (429, Kind::RateLimited),
    (503, Kind::Overloaded),
    (500, Kind::ServerError),
];

#[tokio::test]
async fn every_registry_entry_probes_operational_and_classifies_errors_over_loopback() {
    let extra_models: Vec<String> = STATUSES
        .iter()
        .map(|(s, _)| format!("\"status-{s}\""))
        .collect();
    for provider in Provider::all() {
        for api in provider.apis() {
            let protocol = api.protocol();
            let up = upstream(protocol).await;
            for stream in [true, false] {
                let extra = format!(
                    "endpoint = \"{}\"\nstream = {stream}\nextra_models = [{}]\n",
                    up.origin,
                    extra_models.join(", ")
                );
                let config = parse(&config_text(provider, api, &extra)).unwrap();
                let results = probe(&config).await;
                let what = format!("{provider}/{} stream={stream}", api.as_str());
                let ok = &results[0];
                assert_eq!(
                    (ok.status, ok.kind, ok.http_status),
                    (Status::Operational, Kind::Ok, Some(200)),
                    "{what}: {}",
                    ok.message
                );
                assert!(ok.latency_ms.is_some() && ok.ping_ms.is_some(), "{what}");
                assert_eq!(
                    ok.ttft_ms.is_some(),
                    stream,
                    "{what}: ttft only when streaming"
                );
                for (r, (status, kind)) in results[1..].iter().zip(STATUSES) {
                    assert_eq!(
                        (r.status, r.kind, r.http_status),
                        (Status::Error, kind, Some(status)),
                        "{what}: {}",
                        r.message
                    );
                    assert!(r.message.contains("slow down"), "{what}: {}", r.message);
                }

                // What went on the wire: the protocol's path, headers and body, every time.
                let seen = std::mem::take(&mut *up.seen.lock().unwrap());
                assert_eq!(seen.len(), 1 + STATUSES.len(), "{what}");
                let path = protocol.path("some/model", stream);
                assert!(
                    seen.iter().any(|s| s.target == path),
                    "{what}: nothing on {path}"
                );
                let Value::Object(expected) = protocol.body("some/model", "q", stream) else {
                    panic!("{what}: the body is an object");
                };
                for s in &seen {
                    let auth = provider.default_auth(api);
                    let (name, value) = auth.header(KEY);
                    assert_eq!(s.headers[name], value.as_str(), "{what}: {name}");
                    for (name, value) in protocol.fixed_headers() {
                        assert_eq!(s.headers[*name], *value, "{what}: {name}");
                    }
                    for key in expected.keys() {
                        assert!(s.body.get(key).is_some(), "{what}: body key {key}");
                    }
                }
            }
        }
    }
}

/// The acceptance test of the registry: a fifth provider, added as one file and one registry
/// line (`provider/fake.rs`, test builds only), goes through config validation and a probe.
#[tokio::test]
async fn a_fifth_provider_is_validated_and_probed_through_the_registry_alone() {
    let fake = Provider::from_name("fake").expect("registered in test builds");
    let api = fake.default_api();
    assert_eq!(api.protocol().name(), "fake");

    // Validation: the default origin, its key header, its reserved body keys.
    let config = parse(&config_text(fake, api, "")).unwrap();
    let m = &config.monitors[0];
    assert_eq!((m.provider, m.api), (fake, api));
    assert_eq!(m.endpoint.as_str(), "https://api.fake.example/");
    let errors = parse(&config_text(
        fake,
        api,
        "headers = { X-Fake-Key = \"k\" }\n",
    ))
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "header `x-fake-key` carries the fake API key, which chanmon sets itself (monitor `m`); use api_key or api_key_env instead"
        ]
    );
    let errors = parse(&config_text(fake, api, "body = { question = \"2 + 2\" }\n")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("set by the probe for the fake protocol")
            && errors[0].contains("(reserved: question, stream)"),
        "{errors:?}"
    );
    let errors =
        parse(&config_text(fake, api, "").replace("\"chat\"", "\"responses\"")).unwrap_err();
    assert!(
        errors[0].contains("works only with provider = \"openai\", ")
            && errors[0].contains(" or \"azure\", not \"fake\""),
        "{errors:?}"
    );
    // The user's headers and tuning keys are fine.
    assert!(
        parse(&config_text(
            fake,
            api,
            "headers = { x-title = \"t\" }\nbody = { limit = 3 }\n"
        ))
        .is_ok()
    );

    // A probe against a loopback upstream speaking it: correct, a generic error status, and
    // the protocol's own rule (400 "slow down" is rate limiting).
    let up = upstream(api.protocol()).await;
    let extra = format!(
        "endpoint = \"{}\"\nextra_models = [\"status-401\", \"status-400\"]\nbody = {{ limit = 3 }}\n",
        up.origin
    );
    let results = probe(&parse(&config_text(fake, api, &extra)).unwrap()).await;
    let kinds: Vec<(Status, Kind)> = results.iter().map(|r| (r.status, r.kind)).collect();
    assert_eq!(
        kinds,
        [
            (Status::Operational, Kind::Ok),
            (Status::Error, Kind::Auth),
            (Status::Error, Kind::RateLimited)
        ],
        "{results:#?}"
    );
    let seen = up.seen.lock().unwrap().clone();
    let ok = seen
        .iter()
        .find(|s| s.target.contains("some%2Fmodel"))
        .unwrap();
    assert_eq!(ok.target, "/fake/v0/ask/some%2Fmodel?stream=1");
    assert_eq!(ok.headers["x-fake-key"], KEY);
    assert_eq!(ok.body["limit"], 3, "the user's body is merged");
    assert_eq!(ok.body["stream"], true);
}
