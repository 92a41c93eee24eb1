//! Tests of the mock upstream itself, with a plain reqwest client: the wire formats, the
//! request validation, the timing knobs (ordering and lower bounds only, never tight timings),
//! stalls and the concurrency counter. chanmon's own integration tests trust all of this.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Behaviour, MockOptions, MockUpstream, challenge_answer};

const PROMPT: &str = "What is 37 + 42? Reply with the number only.";

#[derive(Debug, Clone, Copy, PartialEq)]
enum P {
    Chat,
    Responses,
    Anthropic,
    Gemini,
}

const ALL: [P; 4] = [P::Chat, P::Responses, P::Anthropic, P::Gemini];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A well-formed request for `p`, as a real client would send it.
fn request(m: &MockUpstream, p: P, model: &str, stream: bool) -> reqwest::RequestBuilder {
    let c = client();
    let o = m.origin();
    match p {
        P::Chat => {
            let mut body = json!({"model": model, "max_tokens": 16,
                "messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": PROMPT}]});
            if stream {
                body["stream"] = json!(true);
                body["stream_options"] = json!({"include_usage": true});
            }
            c.post(format!("{o}/v1/chat/completions"))
                .bearer_auth(m.key())
                .json(&body)
        }
        P::Responses => c
            .post(format!("{o}/v1/responses"))
            .bearer_auth(m.key())
            .json(
                &json!({"model": model, "max_output_tokens": 16, "stream": stream,
                "input": [{"role": "user", "content": [{"type": "input_text", "text": PROMPT}]}]}),
            ),
        P::Anthropic => c
            .post(format!("{o}/v1/messages"))
            .header("x-api-key", m.key())
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "max_tokens": 16, "stream": stream,
                "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]})),
        P::Gemini => {
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            c.post(format!("{o}/v1beta/models/{model}:{method}"))
                .header("x-goog-api-key", m.key())
                .json(
                    &json!({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                              "generationConfig": {"maxOutputTokens": 16}}),
                )
        }
    }
}

/// (event name, data) pairs of an SSE body, CRLF or LF framed.
fn sse(body: &str) -> Vec<(Option<String>, String)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

fn json_of(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data}"))
}

/// The visible text of a reply (thinking skipped), parsed the way the real APIs document it.
fn visible_text(p: P, stream: bool, body: &str) -> String {
    if !stream {
        let v = json_of(body);
        return match p {
            P::Chat => v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            P::Responses => v["output"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["type"] == "message")
                .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
                .filter(|c| c["type"] == "output_text")
                .map(|c| c["text"].as_str().unwrap_or("").to_owned())
                .collect(),
            P::Anthropic => v["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b["type"] == "text")
                .map(|b| b["text"].as_str().unwrap_or("").to_owned())
                .collect(),
            P::Gemini => gemini_text(&v),
        };
    }
    let mut text = String::new();
    for (name, data) in sse(body) {
        if data == "[DONE]" {
            continue;
        }
        let v = json_of(&data);
        match p {
            P::Chat => text.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or("")),
            P::Responses if name.as_deref() == Some("response.output_text.delta") => {
                text.push_str(v["delta"].as_str().unwrap_or(""))
            }
            P::Anthropic if v["delta"]["type"] == "text_delta" => {
                text.push_str(v["delta"]["text"].as_str().unwrap_or(""))
            }
            P::Gemini => text.push_str(&gemini_text(&v)),
            _ => {}
        }
    }
    text
}

fn gemini_text(v: &Value) -> String {
    v["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["thought"] != true)
        .map(|p| p["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn call(m: &MockUpstream, p: P, model: &str, stream: bool) -> (u16, String) {
    let resp = request(m, p, model, stream).send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn every_provider_answers_the_challenge_streaming_and_not() {
    let m = MockUpstream::start();
    for p in ALL {
        for stream in [false, true] {
            let resp = request(&m, p, "good", stream).send().await.expect("send");
            assert_eq!(resp.status(), 200, "{p:?} stream={stream}");
            let ct = resp.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let expected_ct = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            assert!(ct.starts_with(expected_ct), "{p:?} stream={stream}: {ct}");
            let body = resp.text().await.expect("body");
            assert_eq!(
                visible_text(p, stream, &body),
                "The answer is 79.",
                "{p:?} stream={stream}"
            );
        }
    }
    assert_eq!(m.requests_for("good").len(), 8);
}

#[tokio::test]
async fn stream_framing_matches_each_provider() {
    let m = MockUpstream::start();

    let (_, body) = call(&m, P::Chat, "gpt-4o-mini", true).await;
    let events = sse(&body);
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));
    let first = json_of(&events[0].1);
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let usage = json_of(&events[events.len() - 2].1);
    assert_eq!(
        usage["choices"],
        json!([]),
        "include_usage adds a choices-less usage chunk"
    );
    assert!(usage["usage"]["total_tokens"].as_u64().is_some());

    let (_, body) = call(&m, P::Responses, "gpt-4o-mini", true).await;
    let events = sse(&body);
    assert_eq!(events[0].0.as_deref(), Some("response.created"));
    assert_eq!(
        events.last().and_then(|e| e.0.as_deref()),
        Some("response.completed")
    );
    for (i, (name, data)) in events.iter().enumerate() {
        let v = json_of(data);
        assert_eq!(v["sequence_number"], json!(i));
        assert_eq!(v["type"].as_str(), name.as_deref());
    }
    assert!(!body.contains("[DONE]"));

    let (_, body) = call(&m, P::Anthropic, "claude", true).await;
    let names: Vec<String> = sse(&body).into_iter().filter_map(|e| e.0).collect();
    assert_eq!(
        names[..3],
        ["message_start", "content_block_start", "ping"].map(String::from)
    );
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"].map(String::from)
    );
    assert!(names.contains(&"content_block_delta".to_owned()));

    let (_, body) = call(&m, P::Gemini, "gemini-2.5-flash", true).await;
    assert!(
        body.starts_with("data: {") && body.ends_with("\r\n\r\n"),
        "CRLF framing"
    );
    let events = sse(&body);
    let last = json_of(&events.last().expect("events").1);
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        last["usageMetadata"]["candidatesTokenCount"]
            .as_u64()
            .is_some()
    );

    // Without alt=sse, streamGenerateContent answers one JSON array of the same objects.
    let r = client()
        .post(format!(
            "{}/v1beta/models/good:streamGenerateContent",
            m.origin()
        ))
        .header("x-goog-api-key", m.key())
        .json(&json!({"contents": [{"parts": [{"text": PROMPT}]}]}))
        .send()
        .await
        .expect("send");
    let chunks: Vec<Value> = r.json().await.expect("a JSON array");
    let text: String = chunks.iter().map(gemini_text).collect();
    assert_eq!(text, "The answer is 79.");
}

#[tokio::test]
async fn full_objects_carry_ids_usage_and_stop_reasons() {
    let m = MockUpstream::start();
    let v = json_of(&call(&m, P::Chat, "good", false).await.1);
    assert!(
        v["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().is_some());

    let v = json_of(&call(&m, P::Responses, "good", false).await.1);
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert!(
        v.get("output_text").is_none(),
        "output_text is an SDK helper, not wire"
    );

    let v = json_of(&call(&m, P::Anthropic, "good", false).await.1);
    assert!(v["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["output_tokens"].as_u64().is_some());

    let v = json_of(&call(&m, P::Gemini, "good", false).await.1);
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["modelVersion"], "good");
}

#[tokio::test]
async fn wrong_or_missing_keys_get_each_providers_auth_error() {
    let m = MockUpstream::start_with(MockOptions {
        key: "sk-right-key-123456".to_owned(),
        ..MockOptions::default()
    });
    let o = m.origin();
    let c = client();
    let body = json!({"model": "good", "max_tokens": 16,
                      "messages": [{"role": "user", "content": PROMPT}]});

    let r = c
        .post(format!("{o}/v1/chat/completions"))
        .bearer_auth("sk-wrong-key-99999")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        !v.to_string().contains("sk-wrong-key-99999"),
        "OpenAI masks the key it echoes"
    );

    let r = c
        .post(format!("{o}/v1/responses"))
        .json(&json!({"model": "good", "input": PROMPT}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);

    let r = c
        .post(format!("{o}/v1/messages"))
        .header("x-api-key", "nope")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(v["error"]["message"], "invalid x-api-key");

    let r = c
        .post(format!("{o}/v1/messages"))
        .header("x-api-key", m.key())
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "anthropic-version is required");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let gemini = json!({"contents": [{"parts": [{"text": PROMPT}]}]});
    let url = format!("{o}/v1beta/models/good:generateContent");
    let r = c
        .post(&url)
        .header("x-goog-api-key", "nope")
        .json(&gemini)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "Gemini answers a bad key with 400");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
    let r = c.post(&url).json(&gemini).send().await.expect("send");
    assert_eq!(r.status(), 403);
    let r = c
        .post(&url)
        .bearer_auth(m.key())
        .json(&gemini)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn gemini_key_in_the_query_is_rejected_and_recorded() {
    let m = MockUpstream::start();
    let r = client()
        .post(format!(
            "{}/v1beta/models/good:streamGenerateContent?alt=sse&key={}",
            m.origin(),
            m.key()
        ))
        .header("x-goog-api-key", m.key())
        .json(&json!({"contents": [{"parts": [{"text": PROMPT}]}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let recorded = m.requests();
    assert_eq!(recorded.len(), 1);
    assert!(
        recorded[0]
            .query
            .as_deref()
            .is_some_and(|q| q.contains("key=test-key"))
    );
    assert_eq!(recorded[0].provider, Some("gemini"));
}

#[tokio::test]
async fn malformed_requests_are_rejected_in_the_providers_shape() {
    let m = MockUpstream::start();
    let o = m.origin();
    let c = client();
    let chat = |body: Value| {
        c.post(format!("{o}/v1/chat/completions"))
            .bearer_auth(m.key())
            .json(&body)
    };

    let r = chat(json!({"model": "good"})).send().await.expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"]["param"],
        "messages"
    );
    let r = chat(
        json!({"model": "good", "messages": [{"role": "user", "content": PROMPT}],
                        "stream_options": {"include_usage": true}}),
    )
    .send()
    .await
    .expect("send");
    assert_eq!(r.status(), 400, "stream_options without stream");
    let r = c
        .post(format!("{o}/v1/chat/completions"))
        .bearer_auth(m.key())
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);

    let r = c
        .post(format!("{o}/v1/responses"))
        .bearer_auth(m.key())
        .json(&json!({"model": "good", "input": PROMPT, "max_output_tokens": 5}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "max_output_tokens has a floor of 16");
    let r = c.post(format!("{o}/v1/responses")).bearer_auth(m.key())
        .json(&json!({"model": "good", "input": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]}))
        .send().await.expect("send");
    assert_eq!(r.status(), 400, "user parts are input_text");

    let anthropic = |body: Value| {
        c.post(format!("{o}/v1/messages"))
            .header("x-api-key", m.key())
            .header("anthropic-version", "2023-06-01")
            .json(&body)
    };
    let r = anthropic(json!({"model": "good", "messages": [{"role": "user", "content": PROMPT}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["message"], "max_tokens: Field required");
    let r = anthropic(json!({"model": "good", "max_tokens": 16, "thinking": {"type": "enabled", "budget_tokens": 1024},
                             "messages": [{"role": "user", "content": PROMPT}]})).send().await.expect("send");
    assert_eq!(
        r.status(),
        400,
        "max_tokens must exceed the thinking budget"
    );

    let gemini = |body: Value| {
        c.post(format!("{o}/v1beta/models/good:generateContent"))
            .header("x-goog-api-key", m.key())
            .json(&body)
    };
    let r = gemini(json!({"contents": [{"parts": [{"text": PROMPT}]}], "max_tokens": 5}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "Gemini rejects unknown fields");
    let r = gemini(json!({"generationConfig": {"maxOutputTokens": 5}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let r = gemini(json!({"contents": [{"parts": [{"text": PROMPT}]}],
                          "generation_config": {"max_output_tokens": 16, "thinking_config": {"thinking_budget": 0}}}))
        .send().await.expect("send");
    assert_eq!(r.status(), 200, "snake_case spellings are valid proto JSON");
}

#[tokio::test]
async fn delay_knobs_order_first_token_before_the_end() {
    let m = MockUpstream::start();
    for p in ALL {
        let start = Instant::now();
        let mut resp = request(&m, p, "delay-150-300", true)
            .send()
            .await
            .expect("send");
        let mut body = String::new();
        let mut first_token = None;
        while let Some(chunk) = resp.chunk().await.expect("chunk") {
            body.push_str(std::str::from_utf8(&chunk).expect("utf8"));
            if first_token.is_none()
                && visible_text(p, true, &complete_events(&body)).contains("The")
            {
                first_token = Some(start.elapsed());
            }
        }
        let end = start.elapsed();
        let first_token = first_token.unwrap_or_else(|| panic!("{p:?}: no content"));
        assert!(
            first_token >= Duration::from_millis(150),
            "{p:?}: first token at {first_token:?}"
        );
        assert!(end >= Duration::from_millis(300), "{p:?}: end at {end:?}");
        assert!(first_token < end);
        assert_eq!(visible_text(p, true, &body), "The answer is 79.");

        let start = Instant::now();
        let (status, body) = call(&m, p, "delay-0-200", false).await;
        assert_eq!(status, 200);
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{p:?} non-streaming"
        );
        assert_eq!(visible_text(p, false, &body), "The answer is 79.");
    }
}

/// The part of a partial SSE body that ends on an event boundary.
fn complete_events(body: &str) -> String {
    let normalised = body.replace("\r\n", "\n");
    match normalised.rfind("\n\n") {
        Some(i) => normalised[..i + 2].to_owned(),
        None => String::new(),
    }
}

#[tokio::test]
async fn stall_sends_headers_then_nothing() {
    let m = MockUpstream::start();
    for p in ALL {
        for stream in [true, false] {
            let mut resp = request(&m, p, "stall", stream)
                .send()
                .await
                .expect("headers arrive");
            assert_eq!(resp.status(), 200);
            let mut got = Vec::new();
            let outcome = tokio::time::timeout(Duration::from_millis(400), async {
                while let Some(chunk) = resp.chunk().await? {
                    got.extend_from_slice(&chunk);
                }
                Ok::<_, reqwest::Error>(())
            })
            .await;
            assert!(
                outcome.is_err(),
                "{p:?} stream={stream}: the body must never finish"
            );
            if !stream {
                assert!(serde_json::from_slice::<Value>(&got).is_err());
            }
        }
    }
    // A stalled request stays in flight until its client hangs up. (Let the stalls above,
    // whose clients are gone, drain first: noticing a hang-up takes the server a moment.)
    let settle = Instant::now() + Duration::from_secs(5);
    while m.in_flight("stall") > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = request(&m, P::Chat, "stall", true)
        .send()
        .await
        .expect("send");
    assert_eq!(m.in_flight("stall"), 1);
    drop(r);
    let deadline = Instant::now() + Duration::from_secs(5);
    while m.in_flight("stall") > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.in_flight("stall"), 0, "released once the client is gone");
}

#[tokio::test]
async fn stall_times_out_a_client_with_a_deadline() {
    let m = MockUpstream::start();
    let body = json!({"model": "stall", "stream": true, "messages": [{"role": "user", "content": PROMPT}]});
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let r = c
        .post(format!("{}/v1/chat/completions", m.origin()))
        .bearer_auth(m.key())
        .json(&body)
        .send()
        .await;
    let err = match r {
        Ok(resp) => resp.text().await.expect_err("the body never completes"),
        Err(e) => e,
    };
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn max_in_flight_counts_concurrent_requests_per_model() {
    let m = MockUpstream::start();
    let calls = (0..3).map(|_| call(&m, P::Anthropic, "delay-200-200", true));
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|(s, _)| *s == 200));
    assert_eq!(m.max_in_flight("delay-200-200"), 3);
    call(&m, P::Anthropic, "solo", false).await;
    call(&m, P::Anthropic, "solo", true).await;
    assert_eq!(m.max_in_flight("solo"), 1);
    assert_eq!(m.max_in_flight("never-called"), 0);
    m.reset();
    assert_eq!(m.max_in_flight("delay-200-200"), 0);
    assert!(m.requests().is_empty());
}

#[tokio::test]
async fn max_posts_in_flight_counts_model_requests_of_any_model_together() {
    let m = MockUpstream::start();
    // Two different models at once: each model alone peaks at 1, together they make 2.
    let (a, b) = tokio::join!(
        call(&m, P::Chat, "delay-300-300", false),
        call(&m, P::Gemini, "delay-250-300", true),
    );
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(m.max_in_flight("delay-300-300"), 1);
    assert_eq!(m.max_in_flight("delay-250-300"), 1);
    assert_eq!(m.max_posts_in_flight(), 2);
    assert_eq!(
        m.posts_in_flight(),
        0,
        "released once each body is complete"
    );

    // One after the other, with a ping overlapping the second: the ping is not a model
    // request, so the peak is 1.
    m.reset();
    assert_eq!(m.max_posts_in_flight(), 0);
    call(&m, P::Anthropic, "good", false).await;
    let ping = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client().head(m.origin()).send().await.expect("head")
    };
    let ((status, _), pong) = tokio::join!(call(&m, P::Responses, "delay-300-300", true), ping);
    assert_eq!((status, pong.status().as_u16()), (200, 200));
    assert_eq!(m.max_posts_in_flight(), 1);

    // Counted from arrival whatever the answer: a rejected request beside a stalled one.
    m.reset();
    let stalled = request(&m, P::Chat, "stall", true)
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(m.posts_in_flight(), 1);
    let rejected = client()
        .post(format!("{}/v1/chat/completions", m.origin()))
        .bearer_auth("not-the-key")
        .json(&json!({"model": "good", "messages": [{"role": "user", "content": PROMPT}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(rejected.status(), 401);
    assert_eq!(m.max_posts_in_flight(), 2);
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(5);
    while m.posts_in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.posts_in_flight(), 0, "released once the client is gone");
}

#[tokio::test]
async fn thinking_comes_first_and_is_not_the_answer() {
    let m = MockUpstream::start();
    for p in ALL {
        for stream in [false, true] {
            let (status, body) = call(&m, p, "thinking", stream).await;
            assert_eq!(status, 200);
            assert_eq!(
                visible_text(p, stream, &body),
                "The answer is 79.",
                "{p:?} {stream}"
            );
            let marker = match p {
                P::Chat => "reasoning_content",
                P::Responses => "\"reasoning\"",
                P::Anthropic => {
                    if stream {
                        "thinking_delta"
                    } else {
                        "\"thinking\""
                    }
                }
                P::Gemini => "\"thought\":true",
            };
            let at = body
                .find(marker)
                .unwrap_or_else(|| panic!("{p:?} {stream}: no {marker}"));
            // A chat message is one JSON object, whose key order means nothing.
            if stream || p != P::Chat {
                let answer_marker = match (p, stream) {
                    (_, false) => "The answer is 79.",
                    (P::Chat, true) => "\"content\":\"The\"",
                    (P::Responses, true) => "event: response.output_text.delta",
                    (P::Anthropic, true) => "text_delta",
                    (P::Gemini, true) => "{\"text\":\"The\"}",
                };
                let answer = body.find(answer_marker).expect("answer");
                assert!(at < answer, "{p:?} {stream}: thinking first");
            }
            if p == P::Anthropic && stream {
                assert!(body.contains("signature_delta"));
            }

            let (status, body) = call(&m, p, "thinking-only", stream).await;
            assert_eq!(status, 200);
            assert_eq!(visible_text(p, stream, &body), "", "{p:?} {stream}");
            assert!(body.contains(marker), "{p:?} {stream}: reasoning is there");
        }
    }
}

#[tokio::test]
async fn misbehaving_models_misbehave_on_every_provider() {
    let m = MockUpstream::start();
    for p in ALL {
        for stream in [false, true] {
            let text = |model: &'static str| {
                let m = &m;
                async move {
                    let (status, body) = call(m, p, model, stream).await;
                    assert_eq!(status, 200, "{p:?} {model}");
                    visible_text(p, stream, &body)
                }
            };
            assert_eq!(text("wrong").await, "The answer is 80.");
            assert_eq!(text("echo").await, PROMPT);
            assert_eq!(text("empty").await, "");
            assert_eq!(text("canned").await, "Hello! How can I help you today?");
            let essay = text("essay").await;
            assert!(essay.len() > 1900 && essay.contains("79"), "{p:?} essay");

            let (status, body) = call(&m, p, "malformed", stream).await;
            assert_eq!(status, 200);
            if stream {
                assert!(
                    sse(&body)
                        .iter()
                        .any(|(_, d)| d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
                );
            } else {
                assert!(serde_json::from_str::<Value>(&body).is_err());
            }

            let (status, body) = call(&m, p, "huge", stream).await;
            assert_eq!(status, 200);
            assert!(
                body.len() >= 5 * 1024 * 1024,
                "{p:?} huge is {} bytes",
                body.len()
            );
        }
    }
}

#[tokio::test]
async fn refusals_use_each_providers_own_signal() {
    let m = MockUpstream::start();
    let v = json_of(&call(&m, P::Chat, "refuse", false).await.1);
    assert!(v["choices"][0]["message"]["refusal"].is_string());
    assert!(v["choices"][0]["message"]["content"].is_null());
    let (_, body) = call(&m, P::Chat, "refuse", true).await;
    assert!(body.contains("\"refusal\":\"I'm"));

    let v = json_of(&call(&m, P::Responses, "refuse", false).await.1);
    assert_eq!(v["output"][0]["content"][0]["type"], "refusal");
    let (_, body) = call(&m, P::Responses, "refuse", true).await;
    assert!(body.contains("event: response.refusal.delta"));

    for stream in [false, true] {
        let (_, body) = call(&m, P::Anthropic, "refuse", stream).await;
        assert!(body.contains("\"stop_reason\":\"refusal\""), "{body}");
    }

    for stream in [false, true] {
        let (_, body) = call(&m, P::Gemini, "refuse", stream).await;
        let v = json_of(&sse_or_body(&body, stream));
        assert_eq!(v["promptFeedback"]["blockReason"], "SAFETY");
        assert!(v.get("candidates").is_none());
        let (_, body) = call(&m, P::Gemini, "safety", stream).await;
        let v = json_of(&sse_or_body(&body, stream));
        assert_eq!(v["candidates"][0]["finishReason"], "SAFETY");
    }
}

fn sse_or_body(body: &str, stream: bool) -> String {
    if stream {
        sse(body).pop().expect("one event").1
    } else {
        body.to_owned()
    }
}

#[tokio::test]
async fn status_models_answer_with_real_error_bodies() {
    let m = MockUpstream::start();
    let v = json_of(&call(&m, P::Chat, "status-429", false).await.1);
    assert_eq!(v["error"]["type"], "requests");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    for p in ALL {
        for code in [400u16, 401, 403, 404, 429, 500, 502, 503, 529] {
            let model = format!("status-{code}");
            let resp = request(&m, p, &model, true).send().await.expect("send");
            assert_eq!(resp.status().as_u16(), code, "{p:?}");
            let body = resp.text().await.expect("body");
            assert!(!body.is_empty(), "{p:?} {code}");
        }
    }
    let (status, body) = call(&m, P::Anthropic, "status-529", false).await;
    assert_eq!(status, 529);
    assert_eq!(json_of(&body)["error"]["type"], "overloaded_error");
    let (status, body) = call(&m, P::Gemini, "status-429", false).await;
    assert_eq!(status, 429);
    assert_eq!(json_of(&body)["error"]["status"], "RESOURCE_EXHAUSTED");
    let (status, body) = call(&m, P::Gemini, "status-503", false).await;
    assert_eq!(status, 503);
    assert_eq!(json_of(&body)["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn stream_errors_arrive_after_a_first_delta() {
    let m = MockUpstream::start();
    let (_, body) = call(&m, P::Anthropic, "stream-error", true).await;
    let events = sse(&body);
    let (name, data) = events.last().expect("events");
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(json_of(data)["error"]["type"], "overloaded_error");
    assert!(body.contains("text_delta"), "a delta came first");
    assert!(!body.contains("message_stop"));

    let (_, body) = call(&m, P::Chat, "stream-error", true).await;
    assert!(json_of(&sse(&body).last().expect("events").1)["error"].is_object());
    assert!(!body.contains("[DONE]"));
    let (_, body) = call(&m, P::Responses, "stream-error", true).await;
    assert_eq!(
        sse(&body).last().and_then(|e| e.0.clone()).as_deref(),
        Some("error")
    );
    let (_, body) = call(&m, P::Gemini, "stream-error", true).await;
    assert_eq!(
        json_of(&sse(&body).last().expect("events").1)["error"]["status"],
        "UNAVAILABLE"
    );

    let (status, _) = call(&m, P::Anthropic, "stream-error", false).await;
    assert_eq!(
        status, 529,
        "outside a stream it is a plain overloaded error"
    );
}

#[tokio::test]
async fn redirect_and_leak_models() {
    let m = MockUpstream::start_with(MockOptions {
        key: "sk-leaky-secret/+42".to_owned(),
        ..MockOptions::default()
    });
    for p in ALL {
        let resp = request(&m, p, "redirect", false)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 302);
        assert_eq!(
            resp.headers()["location"],
            "http://169.254.169.254/latest/meta-data/"
        );

        let (status, body) = call(&m, p, "leak", false).await;
        assert_eq!(status, 400);
        assert!(body.contains("sk-leaky-secret/+42"), "{p:?}: {body}");
        assert!(
            body.contains("sk-leaky-secret%2F%2B42"),
            "{p:?}: URL-encoded too"
        );
    }
}

#[tokio::test]
async fn requests_are_recorded_as_received() {
    let m = MockUpstream::start();
    call(&m, P::Anthropic, "good", true).await;
    let r = client()
        .post(format!(
            "{}/v1beta/models/gemini%2D2.5%2Fpro:generateContent",
            m.origin()
        ))
        .header("x-goog-api-key", m.key())
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(gemini_text(&v), "OK", "no expression: OK");

    let all = m.requests();
    assert_eq!(all.len(), 2);
    let a = &all[0];
    assert_eq!(
        (a.method.as_str(), a.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(a.provider, Some("anthropic"));
    assert_eq!(a.header("X-API-Key"), Some("test-key"));
    assert!(a.headers.iter().all(|(n, _)| *n == n.to_lowercase()));
    assert_eq!(
        a.body.as_ref().map(|b| b["max_tokens"].clone()),
        Some(json!(16))
    );
    assert!(a.wants_stream());
    assert_eq!(
        all[1].model.as_deref(),
        Some("gemini-2.5/pro"),
        "model segment percent-decoded"
    );
    assert!(all[1].at >= a.at);
}

#[tokio::test]
async fn ping_unknown_paths_and_shutdown() {
    let m = MockUpstream::start();
    let c = client();
    let r = c.head(m.origin()).send().await.expect("head");
    assert!(r.status() == 200 || r.status() == 404);
    let r = c
        .post(format!("{}/v2/nothing", m.origin()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.expect("json")["error"]["message"].is_string());
    let r = c
        .get(format!("{}/v1/chat/completions", m.origin()))
        .bearer_auth(m.key())
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 405);

    let origin = m.origin();
    drop(m);
    assert!(
        c.head(origin).send().await.is_err(),
        "dropping the mock stops it"
    );
}

#[test]
fn model_names_and_the_challenge() {
    assert_eq!(Behaviour::from_model("gpt-4o-mini"), Behaviour::Correct);
    assert_eq!(Behaviour::from_model("status-529"), Behaviour::Status(529));
    assert_eq!(Behaviour::from_model("status-abc"), Behaviour::Correct);
    assert_eq!(
        Behaviour::from_model("delay-200-300"),
        Behaviour::Delay {
            first: Duration::from_millis(200),
            total: Duration::from_millis(300)
        }
    );
    assert_eq!(challenge_answer(PROMPT), Some(79));
    assert_eq!(challenge_answer("nothing to add"), None);
}

#[test]
fn a_fixed_port_and_key_are_honoured() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let m = MockUpstream::start_with(MockOptions {
        key: "k".to_owned(),
        port,
        ..MockOptions::default()
    });
    assert_eq!(m.origin(), format!("http://127.0.0.1:{port}"));
    assert_eq!(m.key(), "k");
}

/// Under a base path the mock answers only there, with the SDKs' meaning of the path (OpenAI:
/// it replaces `/v1`; the others: a prefix); and with `auth_header` it wants the key there
/// and nowhere else.
#[tokio::test]
async fn a_base_path_and_an_auth_header_are_strict() {
    let m = MockUpstream::start_with(MockOptions {
        base_path: "/gw/openai/".to_owned(),
        auth_header: Some("Api-Key".to_owned()),
        ..MockOptions::default()
    });
    assert_eq!(m.base_url(), format!("{}/gw/openai", m.origin()));
    let c = client();
    let body = json!({"model": "good", "max_tokens": 16,
                      "messages": [{"role": "user", "content": PROMPT}]});
    let post = |path: &str| c.post(format!("{}{path}", m.origin())).json(&body);
    let ok = post("/gw/openai/chat/completions")
        .header("api-key", m.key())
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    for path in [
        "/v1/chat/completions",
        "/gw/openai/v1/chat/completions",
        "/chat/completions",
    ] {
        let r = post(path)
            .header("api-key", m.key())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 404, "{path}");
    }
    let bearer_too = post("/gw/openai/chat/completions")
        .header("api-key", m.key())
        .bearer_auth(m.key())
        .send()
        .await
        .expect("send");
    assert_eq!(bearer_too.status(), 401);
    let wrong = post("/gw/openai/chat/completions")
        .header("api-key", "nope")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    let anthropic = c
        .post(format!("{}/gw/openai/v1/messages", m.origin()))
        .header("api-key", m.key())
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "good", "max_tokens": 16,
                      "messages": [{"role": "user", "content": PROMPT}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        anthropic.status(),
        200,
        "the prefix applies to Anthropic's whole path"
    );
}
