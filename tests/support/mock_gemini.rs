//! Gemini wire format (`POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`): `GenerateContentResponse` objects, SSE chunks framed as
//! `data: {json}\r\n\r\n` (Google's frontends use CRLF), `thought: true` parts, prompt blocks
//! (`promptFeedback.blockReason`, no candidates), `finishReason: SAFETY`, and Google's error
//! bodies (`{"error":{"code","message","status","details"}}`).
//!
//! Like the real API, a wrong key is `400 INVALID_ARGUMENT` with reason `API_KEY_INVALID` (not a
//! 401), a missing key is `403 PERMISSION_DENIED`, and unknown request fields are rejected.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Ctx, Ev, Finish, Provider, Reply, StreamPlan, Wire, header_str, json_response, respond,
    token_estimate,
};

pub(super) struct Gemini;

const TOP_LEVEL_FIELDS: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
];

const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
    "imageConfig",
];

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        c if c >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

fn google_error(code: u16, message: &str, details: Option<Value>) -> Response {
    let mut error = json!({"code": code, "message": message, "status": status_name(code)});
    if let Some(details) = details {
        error["details"] = details;
    }
    let mut resp = json_response(code, &json!({ "error": error }));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

/// Proto JSON accepts `snake_case` spellings of every field too.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for ch in name.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn unknown_field(obj: &Value, known: &[&str], prefix: &str) -> Option<String> {
    obj.as_object()?
        .keys()
        .find(|k| !known.contains(&camel(k).as_str()))
        .map(|k| format!("{prefix}{k}"))
}

impl Gemini {
    fn usage(ctx: &Ctx, reply: Option<&Reply>) -> Value {
        let mut usage = json!({
            "promptTokenCount": ctx.prompt_tokens,
            "totalTokenCount": ctx.prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": ctx.prompt_tokens}],
        });
        if let Some(reply) = reply {
            let text = token_estimate(&reply.text());
            let thoughts = reply.thinking.as_deref().map_or(0, token_estimate);
            usage["candidatesTokenCount"] = json!(text);
            usage["totalTokenCount"] = json!(ctx.prompt_tokens + text + thoughts);
            if thoughts > 0 {
                usage["thoughtsTokenCount"] = json!(thoughts);
            }
        }
        usage
    }

    fn response(ctx: &Ctx, candidates: Value, usage: Value) -> Value {
        json!({"candidates": candidates, "usageMetadata": usage, "modelVersion": ctx.model,
               "responseId": ctx.id})
    }

    fn candidate(parts: Vec<Value>, finish: Option<&str>) -> Value {
        let content = if parts.is_empty() {
            json!({"role": "model"})
        } else {
            json!({"parts": parts, "role": "model"})
        };
        let mut c = json!({"content": content, "index": 0});
        if let Some(finish) = finish {
            c["finishReason"] = json!(finish);
        }
        c
    }

    fn safety_ratings(blocked: bool) -> Value {
        let mut dangerous =
            json!({"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"});
        if blocked {
            dangerous["blocked"] = json!(true);
        }
        json!([
            {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
            {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
            dangerous,
        ])
    }

    /// The body that ends a reply: a blocked prompt, a safety stop, or the finish chunk.
    fn closing(reply: &Reply, ctx: &Ctx, parts: Vec<Value>) -> Value {
        match reply.finish {
            Finish::Refusal => json!({
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": Self::safety_ratings(true)},
                "usageMetadata": Self::usage(ctx, None),
                "modelVersion": ctx.model,
                "responseId": ctx.id,
            }),
            Finish::Safety => Self::response(
                ctx,
                json!([{"finishReason": "SAFETY", "index": 0,
                        "safetyRatings": Self::safety_ratings(true)}]),
                Self::usage(ctx, Some(reply)),
            ),
            Finish::Length => Self::response(
                ctx,
                json!([Self::candidate(parts, Some("MAX_TOKENS"))]),
                Self::usage(ctx, Some(reply)),
            ),
            Finish::Stop => Self::response(
                ctx,
                json!([Self::candidate(parts, Some("STOP"))]),
                Self::usage(ctx, Some(reply)),
            ),
        }
    }

    fn chunk(ctx: &Ctx, part: Value) -> Ev {
        Ev::Json {
            name: None,
            data: Self::response(
                ctx,
                json!([Self::candidate(vec![part], None)]),
                Self::usage(ctx, None),
            ),
        }
    }
}

impl Wire for Gemini {
    fn provider(&self) -> Provider {
        Provider::Gemini
    }

    fn validate(
        &self,
        headers: &HeaderMap,
        body: Option<&Value>,
        key: &str,
    ) -> Result<(), Response> {
        match header_str(headers, "x-goog-api-key") {
            Some(sent) if sent == key => {}
            Some(_) => {
                return Err(google_error(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    Some(json!([
                        {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                         "metadata": {"service": "generativelanguage.googleapis.com"}},
                        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                         "locale": "en-US", "message": "API key not valid. Please pass a valid API key."}
                    ])),
                ));
            }
            None if headers.contains_key("authorization") => {
                return Err(google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access \
                     token, login cookie or other valid authentication credential. See \
                     https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    None,
                ));
            }
            None => {
                return Err(google_error(
                    403,
                    "Method doesn't allow unregistered callers (callers without established \
                     identity). Please use API Key or other form of API consumer identity to call \
                     this API.",
                    None,
                ));
            }
        }
        let Some(body) = body.filter(|b| b.is_object()) else {
            return Err(google_error(
                400,
                "Invalid JSON payload received. Unexpected token.",
                None,
            ));
        };
        let unknown = unknown_field(body, TOP_LEVEL_FIELDS, "").or_else(|| {
            body.get("generationConfig")
                .or_else(|| body.get("generation_config"))
                .and_then(|g| unknown_field(g, GENERATION_CONFIG_FIELDS, "generation_config."))
        });
        if let Some(name) = unknown {
            return Err(google_error(
                400,
                &format!(
                    "Invalid JSON payload received. Unknown name \"{name}\": Cannot find field."
                ),
                None,
            ));
        }
        if body
            .get("contents")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            return Err(google_error(
                400,
                "* GenerateContentRequest.contents: contents is not specified\n",
                None,
            ));
        }
        Ok(())
    }

    fn prompt(&self, body: &Value) -> String {
        body.get("contents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| matches!(c.get("role").and_then(Value::as_str), None | Some("user")))
            .filter_map(|c| c.get("parts").and_then(Value::as_array))
            .flatten()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn full(&self, reply: &Reply, ctx: &Ctx) -> Value {
        let mut parts = Vec::new();
        if let Some(thinking) = &reply.thinking {
            parts.push(json!({"text": thinking, "thought": true}));
        }
        if !reply.pieces.is_empty() {
            parts.push(json!({"text": reply.text()}));
        }
        Self::closing(reply, ctx, parts)
    }

    fn plan(&self, reply: &Reply, ctx: &Ctx) -> StreamPlan {
        let mut plan = StreamPlan::default();
        if matches!(reply.finish, Finish::Refusal | Finish::Safety) {
            plan.tail.push(Ev::Json {
                name: None,
                data: Self::closing(reply, ctx, Vec::new()),
            });
            return plan;
        }
        if let Some(thinking) = &reply.thinking {
            for piece in super::split_words(thinking) {
                plan.head
                    .push(Self::chunk(ctx, json!({"text": piece, "thought": true})));
            }
        }
        for (i, piece) in reply.pieces.iter().enumerate() {
            let ev = Self::chunk(ctx, json!({"text": piece}));
            if i == 0 {
                plan.first.push(ev)
            } else {
                plan.rest.push(ev)
            }
        }
        // The finish chunk carries no new text, so a delayed reply can end later than its
        // first token.
        let closing_parts = if reply.pieces.is_empty() {
            Vec::new()
        } else {
            vec![json!({"text": ""})]
        };
        plan.tail.push(Ev::Json {
            name: None,
            data: Self::closing(reply, ctx, closing_parts),
        });
        plan
    }

    fn stream_error(&self, _ctx: &Ctx, _seq: usize) -> Ev {
        Ev::Json {
            name: None,
            data: json!({"error": {"code": 503,
                                   "message": "The model is overloaded. Please try again later.",
                                   "status": "UNAVAILABLE"}}),
        }
    }

    fn error(&self, status: u16, ctx: &Ctx) -> Response {
        match status {
            400 => google_error(400, "Request contains an invalid argument.", None),
            401 => google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
                None,
            ),
            403 => google_error(403, "The caller does not have permission", None),
            404 => google_error(
                404,
                &format!(
                    "models/{} is not found for API version v1beta, or is not supported for \
                     generateContent. Call ListModels to see the list of available models and \
                     their supported methods.",
                    ctx.model
                ),
                None,
            ),
            429 => google_error(
                429,
                "You exceeded your current quota, please check your plan and billing details. For \
                 more information on this error, head to: \
                 https://ai.google.dev/gemini-api/docs/rate-limits.",
                Some(json!([
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                     "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                                     "quotaDimensions": {"location": "global", "model": ctx.model},
                                     "quotaValue": "10"}]},
                    {"@type": "type.googleapis.com/google.rpc.Help",
                     "links": [{"description": "Learn more about Gemini API quotas",
                                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
                ])),
            ),
            500 => google_error(
                500,
                "An internal error has occurred. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting",
                None,
            ),
            // Google's front end answers a bad gateway with its own HTML page.
            502 => respond(
                502,
                "text/html; charset=UTF-8",
                "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server \
                 Error)!!1</title>\n  <p><b>502.</b> <ins>That's an error.</ins>\n  <p>The server \
                 encountered a temporary error and could not complete your request.<p>Please try \
                 again in 30 seconds.  <ins>That's all we know.</ins>\n",
            ),
            503 | 529 => google_error(
                status,
                "The model is overloaded. Please try again later.",
                None,
            ),
            504 => google_error(
                504,
                "Deadline expired before operation could complete.",
                None,
            ),
            s => google_error(s, &format!("Request failed with status {s}"), None),
        }
    }

    fn error_with_message(&self, status: u16, message: &str) -> Response {
        google_error(status, message, None)
    }

    fn frame(&self, ev: &Ev) -> String {
        match ev {
            Ev::Json { data, .. } => format!("data: {data}\r\n\r\n"),
            Ev::Raw(raw) => format!("data: {raw}\r\n\r\n"),
        }
    }

    fn received_key(&self, headers: &HeaderMap) -> String {
        header_str(headers, "x-goog-api-key")
            .unwrap_or_default()
            .to_owned()
    }
}
