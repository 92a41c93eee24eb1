//! Every status and kind, for every provider, streaming and not: the real binary against the
//! mock upstream, one `chanmon check --all --format json` per provider and mode; and the same
//! matrix through a base URL with a path (the mock serving under a gateway's prefix).

mod harness;
mod support;

use std::collections::BTreeMap;

use harness::{Env, monitor, preamble, s, text};
use support::mock::MockUpstream;

/// (model, expected status, expected kind). Timeouts: the monitors use timeout 3s,
/// degraded_after 1s.
const CASES: &[(&str, &str, &str)] = &[
    ("good", "operational", "ok"),
    ("delay-1300-1400", "degraded", "slow"),
    ("thinking", "operational", "ok"),
    ("wrong", "failed", "challenge_mismatch"),
    ("echo", "failed", "challenge_mismatch"),
    ("canned", "failed", "challenge_mismatch"),
    ("essay", "failed", "challenge_mismatch"),
    ("empty", "failed", "empty"),
    ("thinking-only", "failed", "empty"),
    ("malformed", "failed", "malformed"),
    ("refuse", "failed", "refused"),
    ("stall", "error", "timeout"),
    ("status-401", "error", "auth"),
    ("status-403", "error", "auth"),
    ("status-404", "error", "not_found"),
    ("status-429", "error", "rate_limited"),
];

const MORE_CASES: &[(&str, &str, &str)] = &[
    ("status-500", "error", "server_error"),
    ("status-502", "error", "server_error"),
    ("status-503", "error", "overloaded"),
    ("status-529", "error", "overloaded"),
    ("status-400", "error", "client_error"),
    ("redirect", "error", "redirect"),
    ("huge", "failed", "malformed"),
    ("leak", "error", "client_error"),
];

fn run_matrix(provider: &str, stream: bool) {
    run_matrix_at(provider, stream, "");
}

/// The matrix with the mock serving under `base_path` and the monitors' endpoint naming it.
fn run_matrix_at(provider: &str, stream: bool, base_path: &str) {
    let mock = MockUpstream::start_with(support::mock::MockOptions {
        base_path: base_path.to_owned(),
        ..Default::default()
    });
    let extra =
        format!("stream = {stream}\ninterval = \"60s\"\ntimeout = \"3s\"\ndegraded_after = \"1s\"");
    let mut c = preamble("model_concurrency = 16");
    for (i, cases) in [CASES, MORE_CASES].iter().enumerate() {
        let models: Vec<&str> = cases.iter().map(|c| c.0).collect();
        c.push_str(&monitor(
            &format!("m{i}"),
            provider,
            &mock.base_url(),
            mock.key(),
            &models,
            &extra,
        ));
    }
    let env = Env::new(&c);
    let out = env.run(&["check", "--all", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let got: BTreeMap<&str, (&str, &str)> = rows
        .iter()
        .map(|r| (s(r, "model"), (s(r, "status"), s(r, "kind"))))
        .collect();
    let mut wrong = Vec::new();
    for (model, status, kind) in CASES.iter().chain(MORE_CASES) {
        match got.get(model) {
            Some(&(st, k)) if st == *status && k == *kind => {}
            other => wrong.push(format!("{model}: expected {status}/{kind}, got {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{provider} stream={stream} base={base_path}:\n{}\n\nrows: {rows:#?}",
        wrong.join("\n")
    );

    // Timings are recorded for answered probes; ttft only from streams.
    let good = rows.iter().find(|r| s(r, "model") == "good").unwrap();
    assert!(good["latency_ms"].as_u64().is_some());
    assert_eq!(good["ttft_ms"].as_u64().is_some(), stream, "{good}");
    assert!(good["ping_ms"].as_u64().is_some(), "ping recorded: {good}");
    let err = rows.iter().find(|r| s(r, "model") == "status-429").unwrap();
    assert_eq!(err["http_status"].as_u64(), Some(429));
    assert!(
        !s(err, "message").is_empty(),
        "the upstream's error text is kept"
    );

    // No secret anywhere in the output, the stored messages or the requests' URLs.
    assert!(!text(&out.stdout).contains(mock.key()));
    assert!(!text(&out.stderr).contains(mock.key()));
    let hist = env.run(&["history", "--format", "json", "--limit", "1000"]);
    assert!(!text(&hist.stdout).contains(mock.key()));
    for r in mock.requests() {
        assert!(
            !r.path.contains(mock.key())
                && !r.query.clone().unwrap_or_default().contains(mock.key())
        );
    }
}

#[test]
fn openai_chat_streaming() {
    run_matrix("openai", true);
}

#[test]
fn openai_chat_plain() {
    run_matrix("openai", false);
}

#[test]
fn openai_responses_streaming() {
    run_matrix("openai-responses", true);
}

#[test]
fn openai_responses_plain() {
    run_matrix("openai-responses", false);
}

#[test]
fn anthropic_streaming() {
    run_matrix("anthropic", true);
}

#[test]
fn anthropic_plain() {
    run_matrix("anthropic", false);
}

#[test]
fn gemini_streaming() {
    run_matrix("gemini", true);
}

#[test]
fn gemini_plain() {
    run_matrix("gemini", false);
}

// The same verdicts through a base URL with a path: OpenRouter-style (the path is the SDK's
// base_url), Cloudflare AI Gateway-style prefixes for each protocol.
#[test]
fn openai_chat_under_a_path() {
    run_matrix_at("openai", true, "/api/v1");
}

#[test]
fn openai_responses_under_a_path() {
    run_matrix_at("openai-responses", false, "/v1/acct-1/gw/openai");
}

#[test]
fn anthropic_under_a_path() {
    run_matrix_at("anthropic", true, "/v1/acct-1/gw/anthropic");
}

#[test]
fn gemini_under_a_path() {
    run_matrix_at("gemini", false, "/v1/acct-1/gw/google-ai-studio");
}

fn header<'a>(r: &'a support::mock::RecordedRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn request_shapes_are_the_providers_own() {
    let mock = MockUpstream::start();
    let mut c = preamble("");
    let extra = "headers = { x-client = \"chanmon-test\" }\nbody = { temperature = 0 }";
    c.push_str(&monitor(
        "oc",
        "openai",
        &mock.origin(),
        mock.key(),
        &["gpt-x"],
        extra,
    ));
    c.push_str(&monitor(
        "or",
        "openai-responses",
        &mock.origin(),
        mock.key(),
        &["gpt-r"],
        extra,
    ));
    c.push_str(&monitor(
        "an",
        "anthropic",
        &mock.origin(),
        mock.key(),
        &["claude-x"],
        extra,
    ));
    c.push_str(&monitor(
        "ge",
        "gemini",
        &mock.origin(),
        mock.key(),
        &["models/gemini-x"],
        // Gemini takes sampling settings inside generationConfig (the real API refuses a
        // top-level `temperature`); the probe deep-merges them with its own output cap.
        "headers = { x-client = \"chanmon-test\" }\nbody = { generationConfig = { temperature = 0 } }",
    ));
    let env = Env::new(&c);
    let out = env.run(&["check", "--all"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let reqs: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    let find = |p: &str| {
        reqs.iter()
            .find(|r| r.path.starts_with(p))
            .unwrap_or_else(|| panic!("no request to {p}: {reqs:#?}"))
    };

    let oc = find("/v1/chat/completions");
    assert_eq!(
        header(oc, "authorization"),
        Some(format!("Bearer {}", mock.key()).as_str())
    );
    let b = oc.body.as_ref().unwrap();
    assert_eq!(b["model"], "gpt-x");
    assert_eq!(b["stream"], true);
    assert_eq!(b["messages"][0]["role"], "user");
    assert_eq!(b["temperature"], 0);

    let or = find("/v1/responses");
    assert_eq!(or.body.as_ref().unwrap()["model"], "gpt-r");
    assert!(
        or.body.as_ref().unwrap()["input"].is_string()
            || or.body.as_ref().unwrap()["input"].is_array()
    );

    let an = find("/v1/messages");
    assert_eq!(header(an, "x-api-key"), Some(mock.key()));
    assert_eq!(header(an, "anthropic-version"), Some("2023-06-01"));
    assert!(header(an, "authorization").is_none());
    assert!(an.body.as_ref().unwrap()["max_tokens"].as_u64().is_some());

    let ge = find("/v1beta/models/");
    assert_eq!(header(ge, "x-goog-api-key"), Some(mock.key()));
    let gb = ge.body.as_ref().unwrap();
    assert_eq!(gb["generationConfig"]["temperature"], 0);
    assert!(
        gb["generationConfig"]["maxOutputTokens"].as_u64().is_some(),
        "{gb}"
    );
    assert!(
        ge.path.contains("gemini-x:streamGenerateContent"),
        "{}",
        ge.path
    );
    assert_eq!(ge.query.as_deref(), Some("alt=sse"));

    for r in &reqs {
        assert_eq!(
            header(r, "x-client"),
            Some("chanmon-test"),
            "custom headers on {}",
            r.path
        );
    }
}

#[test]
fn network_failures_and_policy_are_errors_not_outages_of_the_wrong_kind() {
    // A closed port (connect), a blocked private address (blocked, nothing sent), a TLS
    // handshake against a plain-HTTP server (tls), and a missing key (key_unavailable).
    let mock = MockUpstream::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let tls_origin = mock.origin().replace("http://", "https://");
    let c = format!(
        "{}\n[[monitor]]\nid = \"refused\"\nprovider = \"openai\"\nendpoint = \"http://127.0.0.1:{closed_port}\"\napi_key = \"k\"\nmodel = \"m\"\n\
         \n[[monitor]]\nid = \"private\"\nprovider = \"openai\"\nendpoint = \"https://10.1.2.3\"\napi_key = \"k\"\nmodel = \"m\"\n\
         \n[[monitor]]\nid = \"tls\"\nprovider = \"openai\"\nendpoint = \"{tls_origin}\"\napi_key = \"k\"\nmodel = \"m\"\n\
         \n[[monitor]]\nid = \"nokey\"\nprovider = \"openai\"\nendpoint = \"{}\"\napi_key_env = \"CHANMON_TEST_NEVER_SET\"\nmodel = \"m\"\n",
        preamble(""),
        mock.origin()
    );
    let env = Env::new(&c);
    let out = env.run(&["check", "--all", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kind = |id: &str| {
        rows.iter()
            .find(|r| s(r, "monitor") == id)
            .map(|r| s(r, "kind").to_owned())
    };
    assert_eq!(kind("refused").as_deref(), Some("connect"));
    assert_eq!(kind("private").as_deref(), Some("blocked"));
    assert_eq!(kind("tls").as_deref(), Some("tls"));
    assert_eq!(kind("nokey").as_deref(), Some("key_unavailable"));
    let blocked = rows.iter().find(|r| s(r, "monitor") == "private").unwrap();
    assert!(
        s(blocked, "message").contains("allow"),
        "says how to allow it: {blocked}"
    );
    assert!(
        mock.requests().iter().all(|r| r.method != "POST"),
        "no key-less request was sent"
    );
}

#[test]
fn errors_inside_a_200_stream_are_errors_of_their_kind() {
    let mock = MockUpstream::start();
    let mut c = preamble("");
    for (id, provider) in [
        ("oc", "openai"),
        ("or", "openai-responses"),
        ("an", "anthropic"),
        ("ge", "gemini"),
    ] {
        c.push_str(&monitor(
            id,
            provider,
            &mock.origin(),
            mock.key(),
            &["stream-error"],
            "timeout = \"5s\"",
        ));
    }
    let env = Env::new(&c);
    let out = env.run(&["check", "--all", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kind = |id: &str| {
        rows.iter()
            .find(|r| s(r, "monitor") == id)
            .map(|r| (s(r, "status").to_owned(), s(r, "kind").to_owned()))
    };
    assert_eq!(kind("oc"), Some(("error".into(), "server_error".into())));
    assert_eq!(kind("or"), Some(("error".into(), "server_error".into())));
    assert_eq!(kind("an"), Some(("error".into(), "overloaded".into())));
    assert_eq!(kind("ge"), Some(("error".into(), "overloaded".into())));
    for r in &rows {
        assert_eq!(r["http_status"], 200, "the stream itself was a 200: {r}");
        assert!(!s(r, "message").is_empty());
    }
}
