//! Anthropic Messages wire format (`POST /v1/messages`): the full `message` object, the named
//! SSE events (`message_start`, `content_block_start`, `ping`, `content_block_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`, and `error` mid-stream), thinking
//! blocks with `thinking_delta` + `signature_delta`, and Anthropic's error bodies
//! (`{"type":"error","error":{"type":…,"message":…},"request_id":…}`).

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Ctx, Ev, Finish, Provider, Reply, StreamPlan, Wire, header_str, json_response, respond,
    token_estimate,
};

pub(super) struct Anthropic;

/// The versions the real API accepts in `anthropic-version`.
const KNOWN_VERSIONS: [&str; 2] = ["2023-06-01", "2023-01-01"];

fn anthropic_error(status: u16, kind: &str, message: &str) -> Response {
    let request_id = format!("req_011C{}", super::random_id(20));
    let mut resp = json_response(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message},
                "request_id": request_id}),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

fn invalid(message: &str) -> Response {
    anthropic_error(400, "invalid_request_error", message)
}

impl Anthropic {
    fn stop_reason(reply: &Reply) -> &'static str {
        match reply.finish {
            Finish::Stop => "end_turn",
            Finish::Length => "max_tokens",
            Finish::Refusal | Finish::Safety => "refusal",
        }
    }

    fn output_tokens(reply: &Reply) -> u64 {
        token_estimate(&reply.text()) + reply.thinking.as_deref().map_or(0, token_estimate)
    }

    fn usage(ctx: &Ctx, output_tokens: u64) -> Value {
        json!({"input_tokens": ctx.prompt_tokens, "cache_creation_input_tokens": 0,
               "cache_read_input_tokens": 0, "output_tokens": output_tokens,
               "service_tier": "standard"})
    }

    fn signature(ctx: &Ctx) -> String {
        format!("EqQBCkYIBxgCKkB{}mockSignature==", ctx.id)
    }

    fn message(&self, ctx: &Ctx, content: Value, stop: Value, usage: Value) -> Value {
        json!({"id": format!("msg_01{}", ctx.id), "type": "message", "role": "assistant",
               "model": ctx.model, "content": content, "stop_reason": stop,
               "stop_sequence": null, "usage": usage})
    }
}

fn ev(name: &'static str, mut data: Value) -> Ev {
    data["type"] = json!(name);
    Ev::Json {
        name: Some(name),
        data,
    }
}

impl Wire for Anthropic {
    fn provider(&self) -> Provider {
        Provider::Anthropic
    }

    fn validate(
        &self,
        headers: &HeaderMap,
        body: Option<&Value>,
        key: &str,
    ) -> Result<(), Response> {
        match header_str(headers, "x-api-key") {
            None => {
                return Err(anthropic_error(
                    401,
                    "authentication_error",
                    "x-api-key header is required",
                ));
            }
            Some(sent) if sent != key => {
                return Err(anthropic_error(
                    401,
                    "authentication_error",
                    "invalid x-api-key",
                ));
            }
            Some(_) => {}
        }
        match header_str(headers, "anthropic-version") {
            None => return Err(invalid("anthropic-version: header is required")),
            Some(v) if !KNOWN_VERSIONS.contains(&v) => {
                return Err(invalid(&format!(
                    "anthropic-version: invalid version '{v}'"
                )));
            }
            Some(_) => {}
        }
        let Some(body) = body.filter(|b| b.is_object()) else {
            return Err(invalid(
                "There was an issue with the request body: the body is not valid JSON",
            ));
        };
        if !body.get("model").is_some_and(Value::is_string) {
            return Err(invalid("model: Field required"));
        }
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return Err(invalid("messages: Field required"));
        };
        let max_tokens = match body.get("max_tokens") {
            None => return Err(invalid("max_tokens: Field required")),
            Some(v) => match v.as_i64() {
                Some(n) if n >= 1 => n,
                _ => {
                    return Err(invalid(
                        "max_tokens: Input should be greater than or equal to 1",
                    ));
                }
            },
        };
        if messages
            .first()
            .and_then(|m| m.get("role"))
            .and_then(Value::as_str)
            != Some("user")
        {
            return Err(invalid(
                "messages: first message must use the \"user\" role",
            ));
        }
        if let Some(stream) = body.get("stream")
            && !stream.is_boolean()
        {
            return Err(invalid("stream: Input should be a valid boolean"));
        }
        if body.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled") {
            let budget = body
                .pointer("/thinking/budget_tokens")
                .and_then(Value::as_i64);
            match budget {
                None => return Err(invalid("thinking.enabled.budget_tokens: Field required")),
                Some(b) if b < 1024 => {
                    return Err(invalid(
                        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                    ));
                }
                Some(b) if b >= max_tokens => {
                    return Err(invalid(
                        "`max_tokens` must be greater than `thinking.budget_tokens`",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn prompt(&self, body: &Value) -> String {
        body.get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .filter_map(|m| m.get("content"))
            .map(|c| match c {
                Value::String(s) => s.clone(),
                Value::Array(blocks) => blocks
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn full(&self, reply: &Reply, ctx: &Ctx) -> Value {
        let mut content = Vec::new();
        if let Some(thinking) = &reply.thinking {
            content.push(json!({"type": "thinking", "thinking": thinking,
                                "signature": Self::signature(ctx)}));
        }
        if !reply.pieces.is_empty() {
            content.push(json!({"type": "text", "text": reply.text()}));
        }
        self.message(
            ctx,
            json!(content),
            json!(Self::stop_reason(reply)),
            Self::usage(ctx, Self::output_tokens(reply)),
        )
    }

    fn plan(&self, reply: &Reply, ctx: &Ctx) -> StreamPlan {
        let mut plan = StreamPlan::default();
        plan.head.push(ev(
            "message_start",
            json!({"message": self.message(ctx, json!([]), Value::Null, Self::usage(ctx, 1))}),
        ));
        let mut index = 0;
        let mut pinged = false;
        if let Some(thinking) = &reply.thinking {
            plan.head.push(ev(
                "content_block_start",
                json!({"index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ));
            plan.head.push(ev("ping", json!({})));
            pinged = true;
            for piece in super::split_words(thinking) {
                plan.head.push(ev(
                    "content_block_delta",
                    json!({"index": index, "delta": {"type": "thinking_delta", "thinking": piece}}),
                ));
            }
            plan.head.push(ev(
                "content_block_delta",
                json!({"index": index, "delta": {"type": "signature_delta", "signature": Self::signature(ctx)}}),
            ));
            plan.head
                .push(ev("content_block_stop", json!({"index": index})));
            index += 1;
        }
        if !reply.pieces.is_empty() {
            plan.head.push(ev(
                "content_block_start",
                json!({"index": index, "content_block": {"type": "text", "text": ""}}),
            ));
        }
        if !pinged {
            plan.head.push(ev("ping", json!({})));
        }
        for (i, piece) in reply.pieces.iter().enumerate() {
            let delta = ev(
                "content_block_delta",
                json!({"index": index, "delta": {"type": "text_delta", "text": piece}}),
            );
            if i == 0 {
                plan.first.push(delta)
            } else {
                plan.rest.push(delta)
            }
        }
        if !reply.pieces.is_empty() {
            plan.tail
                .push(ev("content_block_stop", json!({"index": index})));
        }
        plan.tail.push(ev(
            "message_delta",
            json!({"delta": {"stop_reason": Self::stop_reason(reply), "stop_sequence": null},
                   "usage": {"output_tokens": Self::output_tokens(reply)}}),
        ));
        plan.tail.push(ev("message_stop", json!({})));
        plan
    }

    fn stream_error(&self, _ctx: &Ctx, _seq: usize) -> Ev {
        ev(
            "error",
            json!({"error": {"type": "overloaded_error", "message": "Overloaded"},
                   "request_id": format!("req_011C{}", super::random_id(20))}),
        )
    }

    fn error(&self, status: u16, ctx: &Ctx) -> Response {
        match status {
            400 => invalid("prompt is too long: 210000 tokens > 200000 maximum"),
            401 => anthropic_error(401, "authentication_error", "invalid x-api-key"),
            403 => anthropic_error(
                403,
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
            404 => anthropic_error(404, "not_found_error", &format!("model: {}", ctx.model)),
            413 => anthropic_error(
                413,
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.",
            ),
            429 => {
                let mut resp = anthropic_error(
                    429,
                    "rate_limit_error",
                    "This request would exceed the rate limit for your organization (mock-org) of \
                     50 requests per minute. For details, refer to: \
                     https://docs.claude.com/en/api/rate-limits. You can see the response headers \
                     for current usage. Please reduce the prompt length or the maximum tokens \
                     requested, or try again later.",
                );
                resp.headers_mut()
                    .insert("retry-after", HeaderValue::from_static("12"));
                resp
            }
            500 => anthropic_error(500, "api_error", "Internal server error"),
            // Anthropic sits behind Cloudflare: a bad gateway is an HTML page, not JSON.
            502 => respond(
                502,
                "text/html",
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center>\
                 <h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n",
            ),
            529 => anthropic_error(529, "overloaded_error", "Overloaded"),
            s if s >= 500 => anthropic_error(s, "api_error", "Service unavailable"),
            s => anthropic_error(
                s,
                "invalid_request_error",
                &format!("Request failed with status {s}"),
            ),
        }
    }

    fn error_with_message(&self, status: u16, message: &str) -> Response {
        anthropic_error(status, "invalid_request_error", message)
    }

    fn frame(&self, ev: &Ev) -> String {
        match ev {
            Ev::Json {
                name: Some(name),
                data,
            } => format!("event: {name}\ndata: {data}\n\n"),
            Ev::Json { name: None, data } => format!("data: {data}\n\n"),
            Ev::Raw(raw) => format!("data: {raw}\n\n"),
        }
    }

    fn received_key(&self, headers: &HeaderMap) -> String {
        header_str(headers, "x-api-key")
            .unwrap_or_default()
            .to_owned()
    }
}
