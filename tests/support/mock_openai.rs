//! OpenAI wire formats: Chat Completions (`POST /v1/chat/completions`) and Responses
//! (`POST /v1/responses`), full objects and SSE streams, plus OpenAI's error bodies.
//!
//! Chat streams are bare `data: {chunk}` lines ending in `data: [DONE]`; Responses streams are
//! named semantic events (`event: response.output_text.delta`) whose JSON carries `type` and a
//! `sequence_number`, ending with `response.completed` and no `[DONE]`. Neither full object has
//! a top-level `output_text`: that is an SDK convenience, not part of the wire.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Ctx, Ev, Finish, Provider, Reply, StreamPlan, Wire, header_str, json_response, mask_key,
    token_estimate,
};

pub(super) struct Chat;
pub(super) struct Responses;

fn openai_error(status: u16, message: &str, kind: &str, param: Value, code: Value) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
    )
}

fn invalid(message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    openai_error(
        400,
        message,
        "invalid_request_error",
        json!(param),
        json!(code),
    )
}

fn check_auth(headers: &HeaderMap, key: &str) -> Result<(), Response> {
    let Some(auth) = header_str(headers, "authorization") else {
        return Err(openai_error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization \
             header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password \
             field (with blank username) if you're accessing the API from your browser and are \
             prompted for a username and password. You can obtain an API key from \
             https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Value::Null,
            Value::Null,
        ));
    };
    let sent = auth.strip_prefix("Bearer ").unwrap_or(auth);
    if auth.starts_with("Bearer ") && sent == key {
        return Ok(());
    }
    Err(openai_error(
        401,
        &format!(
            "Incorrect API key provided: {}. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            mask_key(sent)
        ),
        "invalid_request_error",
        Value::Null,
        json!("invalid_api_key"),
    ))
}

fn not_json() -> Response {
    invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't \
         using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was \
         sent was not valid JSON. If you have trouble figuring out how to fix this, please \
         contact us through our help center at help.openai.com.)",
        None,
        None,
    )
}

fn check_common(body: Option<&Value>) -> Result<&Value, Response> {
    let body = body.filter(|b| b.is_object()).ok_or_else(not_json)?;
    if !body.get("model").is_some_and(Value::is_string) {
        return Err(invalid("you must provide a model parameter", None, None));
    }
    if let Some(stream) = body.get("stream")
        && !stream.is_boolean()
    {
        return Err(invalid(
            "Invalid type for 'stream': expected a boolean.",
            Some("stream"),
            Some("invalid_type"),
        ));
    }
    Ok(body)
}

/// Integer fields with a floor, e.g. `max_output_tokens` must be at least 16.
fn check_min(body: &Value, field: &str, min: i64) -> Result<(), Response> {
    let Some(v) = body.get(field) else {
        return Ok(());
    };
    match v.as_i64() {
        Some(n) if n >= min => Ok(()),
        Some(n) => Err(invalid(
            &format!(
                "Invalid '{field}': integer below minimum value. Expected a value >= {min}, but \
                 got {n} instead."
            ),
            Some(field),
            Some("integer_below_min_value"),
        )),
        None => Err(invalid(
            &format!("Invalid type for '{field}': expected an integer."),
            Some(field),
            Some("invalid_type"),
        )),
    }
}

fn status_error(status: u16, model: &str) -> Response {
    match status {
        400 => invalid(
            "This model's maximum context length is 128000 tokens. However, your messages \
             resulted in 131072 tokens. Please reduce the length of the messages.",
            Some("messages"),
            Some("context_length_exceeded"),
        ),
        401 => openai_error(
            401,
            "Incorrect API key provided: sk-proj-****************************************abcd. \
             You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Value::Null,
            json!("invalid_api_key"),
        ),
        403 => openai_error(
            403,
            "Country, region, or territory not supported",
            "request_forbidden",
            Value::Null,
            json!("unsupported_country_region_territory"),
        ),
        404 => openai_error(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Value::Null,
            json!("model_not_found"),
        ),
        429 => {
            let mut resp = openai_error(
                429,
                &format!(
                    "Rate limit reached for {model} in organization org-mock on requests per min \
                     (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit \
                     https://platform.openai.com/account/rate-limits to learn more."
                ),
                "requests",
                Value::Null,
                json!("rate_limit_exceeded"),
            );
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("20"));
            resp
        }
        502 => json_response(
            502,
            &json!({"error": {"code": 502, "message": "Bad gateway.", "param": null,
                              "type": "cf_bad_gateway"}}),
        ),
        503 => openai_error(
            503,
            "The engine is currently overloaded, please try again later",
            "server_error",
            Value::Null,
            Value::Null,
        ),
        s if s >= 500 => openai_error(
            s,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            Value::Null,
            Value::Null,
        ),
        s => openai_error(
            s,
            &format!("Request failed with status {s}"),
            "invalid_request_error",
            Value::Null,
            Value::Null,
        ),
    }
}

fn received_bearer(headers: &HeaderMap) -> String {
    header_str(headers, "authorization")
        .map(|a| a.strip_prefix("Bearer ").unwrap_or(a).to_owned())
        .unwrap_or_default()
}

/// Text of the parts of one message content: a string or an array of typed parts.
fn content_text(content: &Value, text_type: &str) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some(text_type))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Chat Completions

impl Chat {
    fn chunk(&self, ctx: &Ctx, delta: Value, finish: Value) -> Ev {
        let mut data = json!({
            "id": format!("chatcmpl-{}", ctx.id),
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.model,
            "service_tier": "default",
            "system_fingerprint": "fp_mock0001",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if ctx.include_usage {
            data["usage"] = Value::Null;
        }
        Ev::Json { name: None, data }
    }

    fn usage(reply: &Reply, ctx: &Ctx) -> Value {
        let reasoning = reply.thinking.as_deref().map_or(0, token_estimate);
        let completion = token_estimate(&reply.text()) + reasoning;
        json!({
            "prompt_tokens": ctx.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": ctx.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        })
    }

    fn finish_reason(reply: &Reply) -> &'static str {
        match reply.finish {
            Finish::Length => "length",
            Finish::Stop | Finish::Refusal | Finish::Safety => "stop",
        }
    }
}

impl Wire for Chat {
    fn provider(&self) -> Provider {
        Provider::OpenAiChat
    }

    fn validate(
        &self,
        headers: &HeaderMap,
        body: Option<&Value>,
        key: &str,
    ) -> Result<(), Response> {
        check_auth(headers, key)?;
        let body = check_common(body)?;
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return Err(invalid(
                "Missing required parameter: 'messages'.",
                Some("messages"),
                Some("missing_required_parameter"),
            ));
        };
        if !messages.iter().any(|m| {
            m.get("role").and_then(Value::as_str) == Some("user") && m.get("content").is_some()
        }) {
            return Err(invalid(
                "mock upstream: 'messages' must contain a user message with content.",
                Some("messages"),
                None,
            ));
        }
        check_min(body, "max_tokens", 1)?;
        check_min(body, "max_completion_tokens", 1)?;
        if body.get("stream_options").is_some_and(|o| !o.is_null())
            && body.get("stream").and_then(Value::as_bool) != Some(true)
        {
            return Err(invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                Some("stream_options"),
                None,
            ));
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
            .map(|c| content_text(c, "text"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn full(&self, reply: &Reply, ctx: &Ctx) -> Value {
        let mut message = json!({
            "role": "assistant",
            "content": if reply.refusal.is_some() { Value::Null } else { json!(reply.text()) },
            "refusal": reply.refusal,
            "annotations": [],
        });
        if let Some(thinking) = &reply.thinking {
            message["reasoning_content"] = json!(thinking);
        }
        json!({
            "id": format!("chatcmpl-{}", ctx.id),
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [{"index": 0, "message": message, "logprobs": null,
                         "finish_reason": Self::finish_reason(reply)}],
            "usage": Self::usage(reply, ctx),
            "service_tier": "default",
            "system_fingerprint": "fp_mock0001",
        })
    }

    fn plan(&self, reply: &Reply, ctx: &Ctx) -> StreamPlan {
        let mut plan = StreamPlan::default();
        plan.head.push(self.chunk(
            ctx,
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        ));
        if let Some(thinking) = &reply.thinking {
            for piece in super::split_words(thinking) {
                plan.head.push(self.chunk(
                    ctx,
                    json!({"content": null, "reasoning_content": piece}),
                    Value::Null,
                ));
            }
        }
        let content: Vec<Ev> = match &reply.refusal {
            Some(refusal) => super::split_words(refusal)
                .into_iter()
                .map(|p| self.chunk(ctx, json!({"refusal": p}), Value::Null))
                .collect(),
            None => reply
                .pieces
                .iter()
                .map(|p| self.chunk(ctx, json!({"content": p}), Value::Null))
                .collect(),
        };
        let mut content = content.into_iter();
        plan.first.extend(content.next());
        plan.rest.extend(content);
        plan.tail
            .push(self.chunk(ctx, json!({}), json!(Self::finish_reason(reply))));
        if ctx.include_usage {
            plan.tail.push(Ev::Json {
                name: None,
                data: json!({
                    "id": format!("chatcmpl-{}", ctx.id),
                    "object": "chat.completion.chunk",
                    "created": ctx.created,
                    "model": ctx.model,
                    "service_tier": "default",
                    "system_fingerprint": "fp_mock0001",
                    "choices": [],
                    "usage": Self::usage(reply, ctx),
                }),
            });
        }
        plan.tail.push(Ev::Raw("[DONE]"));
        plan
    }

    fn stream_error(&self, _ctx: &Ctx, _seq: usize) -> Ev {
        Ev::Json {
            name: None,
            data: json!({"error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error", "param": null, "code": null}}),
        }
    }

    fn error(&self, status: u16, ctx: &Ctx) -> Response {
        status_error(status, &ctx.model)
    }

    fn error_with_message(&self, status: u16, message: &str) -> Response {
        openai_error(
            status,
            message,
            "invalid_request_error",
            Value::Null,
            Value::Null,
        )
    }

    fn frame(&self, ev: &Ev) -> String {
        match ev {
            Ev::Json { data, .. } => format!("data: {data}\n\n"),
            Ev::Raw(raw) => format!("data: {raw}\n\n"),
        }
    }

    fn received_key(&self, headers: &HeaderMap) -> String {
        received_bearer(headers)
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

impl Responses {
    fn response_object(&self, ctx: &Ctx, status: &str, output: Value, usage: Value) -> Value {
        json!({
            "id": format!("resp_{}", ctx.id),
            "object": "response",
            "created_at": ctx.created,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": if status == "incomplete" {
                json!({"reason": "max_output_tokens"})
            } else {
                Value::Null
            },
            "instructions": null,
            "max_output_tokens": null,
            "model": ctx.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "service_tier": "default",
            "store": true,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": null,
            "metadata": {},
        })
    }

    fn usage(reply: &Reply, ctx: &Ctx) -> Value {
        let reasoning = reply.thinking.as_deref().map_or(0, token_estimate);
        let output = token_estimate(&reply.text()) + reasoning;
        json!({
            "input_tokens": ctx.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": ctx.prompt_tokens + output,
        })
    }

    fn status(reply: &Reply) -> &'static str {
        if reply.finish == Finish::Length {
            "incomplete"
        } else {
            "completed"
        }
    }

    fn reasoning_item(ctx: &Ctx, thinking: &str) -> Value {
        json!({"id": format!("rs_{}", ctx.id), "type": "reasoning",
               "summary": [{"type": "summary_text", "text": thinking}]})
    }

    fn message_part(reply: &Reply) -> Value {
        match &reply.refusal {
            Some(refusal) => json!({"type": "refusal", "refusal": refusal}),
            None => json!({"type": "output_text", "text": reply.text(), "annotations": [],
                           "logprobs": []}),
        }
    }

    fn message_item(ctx: &Ctx, status: &str, content: Value) -> Value {
        json!({"id": format!("msg_{}", ctx.id), "type": "message", "status": status,
               "role": "assistant", "content": content})
    }

    fn output(reply: &Reply, ctx: &Ctx) -> Vec<Value> {
        let mut output = Vec::new();
        if let Some(thinking) = &reply.thinking {
            output.push(Self::reasoning_item(ctx, thinking));
        }
        if reply.finish != Finish::Length {
            output.push(Self::message_item(
                ctx,
                "completed",
                json!([Self::message_part(reply)]),
            ));
        }
        output
    }
}

/// Builds Responses events with increasing sequence numbers.
struct Seq(usize);

impl Seq {
    fn ev(&mut self, name: &'static str, mut data: Value) -> Ev {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.0);
        self.0 += 1;
        Ev::Json {
            name: Some(name),
            data,
        }
    }
}

impl Wire for Responses {
    fn provider(&self) -> Provider {
        Provider::OpenAiResponses
    }

    fn validate(
        &self,
        headers: &HeaderMap,
        body: Option<&Value>,
        key: &str,
    ) -> Result<(), Response> {
        check_auth(headers, key)?;
        let body = check_common(body)?;
        let input = body.get("input");
        match input {
            Some(Value::String(_)) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let Some(Value::Array(parts)) = item.get("content") else {
                        continue;
                    };
                    for part in parts {
                        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                        let allowed =
                            if item.get("role").and_then(Value::as_str) == Some("assistant") {
                                ["output_text", "refusal", ""].contains(&kind)
                            } else {
                                ["input_text", "input_image", "input_file"].contains(&kind)
                            };
                        if !allowed {
                            return Err(invalid(
                                &format!(
                                    "Invalid value: '{kind}'. Supported values are: \
                                     'input_text', 'input_image', and 'input_file'."
                                ),
                                Some("input[0].content[0]"),
                                Some("invalid_value"),
                            ));
                        }
                    }
                }
            }
            _ => {
                return Err(invalid(
                    "Missing required parameter: 'input'.",
                    Some("input"),
                    Some("missing_required_parameter"),
                ));
            }
        }
        check_min(body, "max_output_tokens", 16)
    }

    fn prompt(&self, body: &Value) -> String {
        match body.get("input") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|i| i.get("role").and_then(Value::as_str) == Some("user"))
                .filter_map(|i| i.get("content"))
                .map(|c| content_text(c, "input_text"))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }

    fn full(&self, reply: &Reply, ctx: &Ctx) -> Value {
        self.response_object(
            ctx,
            Self::status(reply),
            json!(Self::output(reply, ctx)),
            Self::usage(reply, ctx),
        )
    }

    fn plan(&self, reply: &Reply, ctx: &Ctx) -> StreamPlan {
        let mut plan = StreamPlan::default();
        let mut seq = Seq(0);
        let pending = self.response_object(ctx, "in_progress", json!([]), Value::Null);
        plan.head
            .push(seq.ev("response.created", json!({"response": pending})));
        plan.head
            .push(seq.ev("response.in_progress", json!({"response": pending})));
        let mut index = 0;
        if let Some(thinking) = &reply.thinking {
            let item_id = format!("rs_{}", ctx.id);
            let empty = json!({"id": item_id, "type": "reasoning", "summary": []});
            let at = json!({"item_id": item_id, "output_index": index, "summary_index": 0});
            let with = |extra: Value| {
                let mut v = at.clone();
                if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
                    v.extend(extra);
                }
                v
            };
            plan.head.push(seq.ev(
                "response.output_item.added",
                json!({"output_index": index, "item": empty}),
            ));
            plan.head.push(seq.ev(
                "response.reasoning_summary_part.added",
                with(json!({"part": {"type": "summary_text", "text": ""}})),
            ));
            for piece in super::split_words(thinking) {
                plan.head.push(seq.ev(
                    "response.reasoning_summary_text.delta",
                    with(json!({"delta": piece})),
                ));
            }
            plan.head.push(seq.ev(
                "response.reasoning_summary_text.done",
                with(json!({"text": thinking})),
            ));
            plan.head.push(seq.ev(
                "response.reasoning_summary_part.done",
                with(json!({"part": {"type": "summary_text", "text": thinking}})),
            ));
            plan.head.push(seq.ev(
                "response.output_item.done",
                json!({"output_index": index, "item": Self::reasoning_item(ctx, thinking)}),
            ));
            index += 1;
        }
        let final_response = self.full(reply, ctx);
        if reply.finish == Finish::Length {
            plan.tail
                .push(seq.ev("response.incomplete", json!({"response": final_response})));
            return plan;
        }
        let item_id = format!("msg_{}", ctx.id);
        let at = |extra: Value| {
            let mut v = json!({"item_id": item_id, "output_index": index, "content_index": 0});
            if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
                v.extend(extra);
            }
            v
        };
        plan.head.push(seq.ev(
            "response.output_item.added",
            json!({"output_index": index, "item": Self::message_item(ctx, "in_progress", json!([]))}),
        ));
        let (empty_part, delta_name, done_name, done_field) = match reply.refusal {
            Some(_) => (
                json!({"type": "refusal", "refusal": ""}),
                "response.refusal.delta",
                "response.refusal.done",
                "refusal",
            ),
            None => (
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []}),
                "response.output_text.delta",
                "response.output_text.done",
                "text",
            ),
        };
        plan.head.push(seq.ev(
            "response.content_part.added",
            at(json!({"part": empty_part})),
        ));
        let pieces = match &reply.refusal {
            Some(refusal) => super::split_words(refusal),
            None => reply.pieces.clone(),
        };
        for (i, piece) in pieces.iter().enumerate() {
            let mut extra = json!({"delta": piece});
            if reply.refusal.is_none() {
                extra["logprobs"] = json!([]);
            }
            let ev = seq.ev(delta_name, at(extra));
            if i == 0 {
                plan.first.push(ev)
            } else {
                plan.rest.push(ev)
            }
        }
        let part = Self::message_part(reply);
        let full_text = pieces.concat();
        let mut done = json!({ done_field: full_text });
        if reply.refusal.is_none() {
            done["logprobs"] = json!([]);
        }
        plan.tail.push(seq.ev(done_name, at(done)));
        plan.tail
            .push(seq.ev("response.content_part.done", at(json!({"part": part}))));
        plan.tail.push(seq.ev(
            "response.output_item.done",
            json!({"output_index": index,
                   "item": Self::message_item(ctx, "completed", json!([Self::message_part(reply)]))}),
        ));
        plan.tail
            .push(seq.ev("response.completed", json!({"response": final_response})));
        plan
    }

    fn stream_error(&self, _ctx: &Ctx, seq: usize) -> Ev {
        Seq(seq).ev(
            "error",
            json!({"code": "server_error",
                   "message": "The server had an error while processing your request. Sorry about that!",
                   "param": null}),
        )
    }

    fn error(&self, status: u16, ctx: &Ctx) -> Response {
        status_error(status, &ctx.model)
    }

    fn error_with_message(&self, status: u16, message: &str) -> Response {
        openai_error(
            status,
            message,
            "invalid_request_error",
            Value::Null,
            Value::Null,
        )
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
        received_bearer(headers)
    }
}
