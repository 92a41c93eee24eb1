//! Tests that iterate over the registry: whatever a line of `PROVIDERS` adds is checked here
//! for the shape of the registry, the protocol's headers and body keys, its sample reply
//! (whole and streamed) and its error classification. `config` and `probe` have their own
//! registry-wide tests (validation, a loopback probe).

use serde_json::Value;

use super::*;
use crate::model::Kind;

/// Every (provider, api) pair of the registry.
fn entries() -> Vec<(Provider, Api)> {
    Provider::all()
        .flat_map(|p| p.apis().map(move |a| (p, a)))
        .collect()
}

/// Every protocol once.
fn protocols() -> Vec<&'static dyn Protocol> {
    let mut out: Vec<&'static dyn Protocol> = Vec::new();
    for (_, a) in entries() {
        if !out.iter().any(|p| p.name() == a.protocol().name()) {
            out.push(a.protocol());
        }
    }
    out
}

#[test]
fn the_registry_is_well_formed() {
    let names: Vec<&str> = Provider::all().map(Provider::as_str).collect();
    assert_eq!(
        &names[..3],
        ["openai", "anthropic", "gemini"],
        "the stored names"
    );
    for (i, p) in Provider::all().enumerate() {
        assert!(!names[..i].contains(&p.as_str()), "{p} is listed twice");
        assert_eq!(Provider::from_name(p.as_str()), Some(p));
        assert_eq!(p.to_string(), p.as_str());
        let apis: Vec<&str> = p.apis().map(Api::as_str).collect();
        assert!(!apis.is_empty(), "{p} offers no api");
        assert_eq!(p.default_api().as_str(), apis[0]);
        for (j, a) in apis.iter().enumerate() {
            assert!(!apis[..j].contains(a), "{p} offers api {a} twice");
            assert!(api_names().contains(a));
        }
        match p.base_url() {
            BaseUrl::Known(base) => {
                let base = url::Url::parse(base).expect("the base URL is a URL");
                let local = base.host_str() == Some("127.0.0.1");
                assert_eq!(base.scheme(), if local { "http" } else { "https" }, "{p}");
                assert!(!base.path().ends_with('/') || base.path() == "/", "{p}");
                assert!(base.query().is_none() && base.fragment().is_none(), "{p}");
            }
            BaseUrl::Required(shape) => assert!(shape.starts_with("https://"), "{p}"),
        }
        if let Some((page, _)) = p.status_page() {
            let page = url::Url::parse(page).expect("the status page is a URL");
            assert_eq!(page.scheme(), "https", "{p}");
        }
    }
    assert_eq!(Provider::from_name("OpenAI"), None);
    let openai = Provider::from_name("openai").expect("registered");
    assert_eq!(openai.api("responses").map(Api::as_str), Some("responses"));
    assert_eq!(openai.default_api().protocol().name(), "openai chat");
    let gemini = Provider::from_name("gemini").expect("registered");
    assert!(gemini.api("responses").is_none());
    assert_ne!(
        gemini.default_api(),
        openai.default_api(),
        "same name, other protocol"
    );
    assert_eq!(&api_names()[..2], ["chat", "responses"]);
}

#[test]
fn auth_and_fixed_headers_are_lower_case_and_apart() {
    let key = "k-registry-test-8f3a";
    for p in protocols() {
        let auth = p.default_auth();
        let (name, value) = auth.header(key);
        assert_eq!(name, name.to_ascii_lowercase(), "{}", p.name());
        assert_eq!(name, auth.header_name(), "{}", p.name());
        assert!(value.contains(key), "{}", p.name());
        for (fixed, v) in p.fixed_headers() {
            assert_eq!(*fixed, fixed.to_ascii_lowercase(), "{}", p.name());
            assert_ne!(
                *fixed,
                name,
                "{}: a fixed header is the key header",
                p.name()
            );
            assert!(!v.contains(key));
        }
    }
}

#[test]
fn the_question_model_and_stream_keys_are_reserved() {
    let prompt = "What is 12 + 34? Reply with only the number.";
    let model = "some-model-7";
    for p in protocols() {
        for stream in [false, true] {
            let body = p.body(model, prompt, stream);
            let Value::Object(map) = &body else {
                panic!("{}: the body is not an object", p.name());
            };
            for (k, v) in map {
                let text = v.to_string();
                if text.contains(prompt) || text.contains(model) || k == "stream" {
                    assert!(
                        p.reserved_body_keys().contains(&k.as_str()),
                        "{}: body key {k} is set by the probe but not reserved",
                        p.name()
                    );
                }
            }
            assert!(
                body.to_string().contains(prompt),
                "{}: the prompt is not sent",
                p.name()
            );
        }
    }
}

#[test]
fn model_names_cannot_change_a_path() {
    for p in protocols() {
        for stream in [false, true] {
            let path = p.path("a/../b?key=x#y", stream);
            assert!(path.starts_with('/'), "{}: {path}", p.name());
            assert!(
                !path.contains("/../") && !path.contains('#') && !path.contains("key=x"),
                "{}: {path}",
                p.name()
            );
        }
    }
}

/// The text of `pieces`, and whether they say the reply is done; panics on errors or refusals.
fn text_of(protocol: &str, pieces: &[Piece]) -> (String, bool) {
    let mut text = String::new();
    let mut done = false;
    for piece in pieces {
        match piece {
            Piece::Text(t) => text.push_str(t),
            Piece::Done => done = true,
            Piece::Model(_) | Piece::Usage(_) => {}
            other => panic!("{protocol}: unexpected {other:?} in a correct reply"),
        }
    }
    (text, done)
}

#[test]
fn sample_replies_read_as_their_answer_whole_and_streamed() {
    for answer in ["The answer is 46.", "46", "Réponse : 46"] {
        for p in protocols() {
            let sample = p.sample_reply(answer);
            let pieces = p.parse_full(&sample.full).expect("the sample parses");
            assert_eq!(pieces.last(), Some(&Piece::Done), "{}", p.name());
            assert_eq!(text_of(p.name(), &pieces), (answer.to_owned(), true));

            assert!(sample.events.len() >= 2, "{}: a stream in pieces", p.name());
            let mut streamed = String::new();
            for (event, data) in &sample.events {
                let pieces = p
                    .parse_event(*event, data)
                    .unwrap_or_else(|e| panic!("{}: {e}: {data}", p.name()));
                let (text, done) = text_of(p.name(), &pieces);
                streamed.push_str(&text);
                if done {
                    break;
                }
            }
            assert_eq!(streamed, answer, "{}", p.name());
        }
    }
}

#[test]
fn error_statuses_have_their_generic_kinds_everywhere() {
    let table = [
        (401, Kind::Auth),
        (403, Kind::Auth),
        (404, Kind::NotFound),
        (429, Kind::RateLimited),
        (503, Kind::Overloaded),
        (500, Kind::ServerError),
        (502, Kind::ServerError),
    ];
    let bodies: [&[u8]; 3] = [
        b"",
        br#"{"error":{"message":"something went wrong","type":"server_error"}}"#,
        b"<html>oops</html>",
    ];
    for p in protocols() {
        for (status, kind) in table {
            for body in bodies {
                assert_eq!(
                    p.classify_error(status, body),
                    kind,
                    "{} {status}",
                    p.name()
                );
            }
        }
    }
}

/// Moved from `config::validate`, which used to keep its own copy of these tables.
#[test]
fn protocol_keys_per_provider() {
    let protocol = |p: &str, api: &str| {
        Provider::from_name(p)
            .and_then(|p| p.api(api))
            .expect("registered")
            .protocol()
    };
    let chat = protocol("openai", "chat").reserved_body_keys();
    assert!(chat.contains(&"messages") && chat.contains(&"n"));
    assert!(!chat.contains(&"max_tokens") && !chat.contains(&"reasoning_effort"));
    let resp = protocol("openai", "responses").reserved_body_keys();
    assert!(resp.contains(&"input") && !resp.contains(&"messages"));
    assert_eq!(
        protocol("gemini", "chat").reserved_body_keys(),
        &["contents"]
    );
    assert!(
        protocol("anthropic", "chat")
            .reserved_body_keys()
            .contains(&"messages")
    );
    assert_eq!(
        protocol("anthropic", "chat").default_auth(),
        Auth::X_API_KEY
    );
    assert_eq!(
        protocol("gemini", "chat").default_auth(),
        Auth::X_GOOG_API_KEY
    );
    assert_eq!(protocol("openai", "responses").default_auth(), Auth::Bearer);
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).expect("a test URL")
}

/// The SDKs' meaning of a base URL: OpenAI's path replaces `/v1`, the others' is a prefix;
/// an origin alone keeps the protocol's whole path; the monitor's query comes last, encoded.
#[test]
fn request_urls_join_the_endpoint_path_as_the_sdks_do() {
    let p = |name: &str, api: &str| {
        Provider::from_name(name)
            .and_then(|p| p.api(api))
            .expect("registered")
            .protocol()
    };
    let none: &[(String, String)] = &[];
    let cases = [
        (
            "https://api.openai.com/",
            p("openai", "chat"),
            "https://api.openai.com/v1/chat/completions",
        ),
        (
            "https://api.openai.com/v1",
            p("openai", "chat"),
            "https://api.openai.com/v1/chat/completions",
        ),
        (
            "https://openrouter.ai/api/v1",
            p("openai", "chat"),
            "https://openrouter.ai/api/v1/chat/completions",
        ),
        (
            "https://h/v1beta/openai",
            p("openai", "responses"),
            "https://h/v1beta/openai/responses",
        ),
        (
            "https://h/",
            p("openai", "responses"),
            "https://h/v1/responses",
        ),
        (
            "https://gw/v1/acct/gw/anthropic",
            p("anthropic", "chat"),
            "https://gw/v1/acct/gw/anthropic/v1/messages",
        ),
        (
            "https://api.anthropic.com/",
            p("anthropic", "chat"),
            "https://api.anthropic.com/v1/messages",
        ),
        (
            "https://gw/google",
            p("gemini", "chat"),
            "https://gw/google/v1beta/models/m:generateContent",
        ),
    ];
    for (base, protocol, want) in cases {
        assert_eq!(
            request_url(&url(base), protocol, none, "m", false).as_str(),
            want,
            "{base}"
        );
    }
    let streamed = request_url(
        &url("https://gw/google"),
        p("gemini", "chat"),
        none,
        "m",
        true,
    );
    assert_eq!(
        streamed.as_str(),
        "https://gw/google/v1beta/models/m:streamGenerateContent?alt=sse"
    );
    let q = [(
        "api-version".to_owned(),
        "2024-10-21 preview&x=1".to_owned(),
    )];
    let with_query = request_url(
        &url("https://r.openai.azure.com/openai/v1"),
        p("openai", "chat"),
        &q,
        "m",
        true,
    );
    assert_eq!(
        with_query.as_str(),
        "https://r.openai.azure.com/openai/v1/chat/completions?api-version=2024-10-21+preview%26x%3D1"
    );
    let both = request_url(&url("https://gw/g"), p("gemini", "chat"), &q[..], "m", true);
    assert_eq!(
        both.query(),
        Some("alt=sse&api-version=2024-10-21+preview%26x%3D1")
    );
}

/// Every preset's request URL and auth header, pinned: a changed line in the registry shows
/// here. (Integration tests send each preset's request to a loopback mock.)
#[test]
fn every_preset_is_pinned() {
    let pinned: &[(&str, &str, &str)] = &[
        (
            "openai",
            "https://api.openai.com/v1/chat/completions",
            "authorization",
        ),
        (
            "anthropic",
            "https://api.anthropic.com/v1/messages",
            "x-api-key",
        ),
        (
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent",
            "x-goog-api-key",
        ),
        (
            "openrouter",
            "https://openrouter.ai/api/v1/chat/completions",
            "authorization",
        ),
        (
            "groq",
            "https://api.groq.com/openai/v1/chat/completions",
            "authorization",
        ),
        (
            "deepseek",
            "https://api.deepseek.com/v1/chat/completions",
            "authorization",
        ),
        (
            "xai",
            "https://api.x.ai/v1/chat/completions",
            "authorization",
        ),
        (
            "mistral",
            "https://api.mistral.ai/v1/chat/completions",
            "authorization",
        ),
        (
            "together",
            "https://api.together.xyz/v1/chat/completions",
            "authorization",
        ),
        (
            "fireworks",
            "https://api.fireworks.ai/inference/v1/chat/completions",
            "authorization",
        ),
        (
            "moonshot",
            "https://api.moonshot.ai/v1/chat/completions",
            "authorization",
        ),
        (
            "zhipu",
            "https://open.bigmodel.cn/api/paas/v4/chat/completions",
            "authorization",
        ),
        ("azure", "", "api-key"),
        (
            "ollama",
            "http://127.0.0.1:11434/v1/chat/completions",
            "authorization",
        ),
        (
            "vllm",
            "http://127.0.0.1:8000/v1/chat/completions",
            "authorization",
        ),
        (
            "fake",
            "https://api.fake.example/fake/v0/ask/m",
            "x-fake-key",
        ),
    ];
    let names: Vec<&str> = Provider::all().map(Provider::as_str).collect();
    assert_eq!(names, pinned.iter().map(|(n, _, _)| *n).collect::<Vec<_>>());
    for (name, want_url, want_header) in pinned {
        let p = Provider::from_name(name).expect("registered");
        let api = p.default_api();
        assert_eq!(p.default_auth(api).header_name(), *want_header, "{name}");
        match p.base_url() {
            BaseUrl::Known(base) => {
                let got = request_url(&url(base), api.protocol(), &[], "m", false);
                assert_eq!(got.as_str(), *want_url, "{name}");
            }
            BaseUrl::Required(_) => assert!(want_url.is_empty(), "{name}"),
        }
    }
    let azure = Provider::from_name("azure").expect("registered");
    let responses = azure.api("responses").expect("azure offers responses");
    assert_eq!(azure.default_auth(responses), Auth::API_KEY);
}

/// The model and the merged usage `pieces` report.
fn facts_of(pieces: &[Piece]) -> (Option<String>, crate::provider::Usage) {
    let mut model = None;
    let mut usage = crate::provider::Usage::default();
    for piece in pieces {
        match piece {
            Piece::Model(m) => model = Some(m.clone()),
            Piece::Usage(u) => usage.merge(*u),
            _ => {}
        }
    }
    (model, usage)
}

#[test]
fn sample_replies_report_their_model_and_usage_whole_and_streamed() {
    for p in protocols().into_iter().filter(|p| p.name() != "fake") {
        let sample = p.sample_reply("46");
        let full = p.parse_full(&sample.full).expect("the sample parses");
        let (model, usage) = facts_of(&full);
        assert_eq!(model.as_deref(), Some("m"), "{}", p.name());
        assert_eq!(
            (usage.input, usage.output),
            (Some(12), Some(3)),
            "{}",
            p.name()
        );
        let streamed: Vec<Piece> = sample
            .events
            .iter()
            .flat_map(|(event, data)| p.parse_event(*event, data).expect("the sample parses"))
            .collect();
        let (model, usage) = facts_of(&streamed);
        assert_eq!(model.as_deref(), Some("m"), "{} streamed", p.name());
        assert_eq!(
            (usage.input, usage.output),
            (Some(12), Some(3)),
            "{} streamed",
            p.name()
        );
    }
}
