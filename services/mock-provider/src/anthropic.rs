//! `POST /v1/messages`: Anthropic's Messages API, plain and streamed.
//!
//! The router's Anthropic adapter translates OpenAI-shaped requests into
//! Messages requests and the answers back; to test it end to end the mock
//! speaks the dialect as Anthropic documents it, written independently of
//! the adapter: `x-api-key` and `anthropic-version` headers, strict request
//! validation (required `max_tokens`, alternating roles, `system` as a string
//! or text blocks), `message` objects with content blocks, `tool_use` blocks
//! for scripted tool calls, named SSE events for streams and
//! `{"type":"error"}` bodies for failures, including the in-stream `error`
//! event and 529 `overloaded_error`. Content and usage follow the shared
//! rules of the `answer` module.

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::MockState;
use crate::answer::{Answer, Prompt, Stop, ToolDecl, Usage, fragments};
use crate::dialect_error::{Dialect, DialectError, anthropic_error_type, injected_message};
use crate::script::{Directives, injected_failure};
use crate::stats::Counters;
use crate::stream_body::{Ending, EventList};

const DIALECT: Dialect = Dialect::Anthropic;
/// The header carrying the API key (any non-empty value is accepted).
const API_KEY: &str = "x-api-key";
/// The API version header every request must send.
const VERSION: &str = "anthropic-version";
/// Anthropic's request id header, set on every answer.
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
/// In-stream error status when `x-mock-stream-error-status` is not given.
const DEFAULT_STREAM_ERROR_STATUS: u16 = 529;
/// `output_tokens` of `message_start` (the real API sends a small
/// placeholder there; the final count comes with `message_delta`).
const START_OUTPUT_TOKENS: u64 = 1;

/// `POST /v1/messages`.
pub(crate) async fn create_message(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.anthropic_requests);
    counters.record_headers(&headers);
    let mut response = match handle(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    if let Ok(id) = HeaderValue::from_str(&format!("req_{}", uuid::Uuid::new_v4().simple())) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

async fn handle(state: &MockState, headers: &HeaderMap, body: &[u8]) -> Result<Response, DialectError> {
    if headers.get(API_KEY).is_none_or(|key| key.is_empty()) {
        return Err(DialectError::new(
            DIALECT,
            StatusCode::UNAUTHORIZED,
            "Missing the x-api-key header (the OneFlow mock accepts any key).",
        ));
    }
    if headers.get(VERSION).is_none_or(|version| version.is_empty()) {
        return Err(DialectError::bad_request(
            DIALECT,
            "The anthropic-version header is required.",
        ));
    }
    let request = parse_object(body)?;
    let stream = match request.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(invalid("stream: must be a boolean")),
    };
    if stream {
        Counters::bump(&state.counters().stream_requests);
    }
    let metadata = request.get("metadata").and_then(Value::as_object);
    let directives = Directives::read(headers, metadata).map_err(|err| DialectError::script(DIALECT, &err))?;
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(DialectError::injected(DIALECT, &injection));
    }

    let parsed = Parsed::from_request(&request)?;
    if !state.accepts_dialect_model(parsed.model) {
        return Err(DialectError::new(
            DIALECT,
            StatusCode::NOT_FOUND,
            format!("model: {}", parsed.model),
        ));
    }
    let answer = Answer::plan(
        parsed.prompt,
        &directives,
        Some(parsed.max_tokens),
        &parsed.tools,
        "toolu_",
    )
    .map_err(|err| DialectError::bad_request(DIALECT, err.message()))?;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    if !stream {
        return Ok(Json(message(&id, parsed.model, &answer)).into_response());
    }

    if directives.stream_error_after.is_some() {
        Counters::bump(&state.counters().errors_injected);
    }
    let events = stream_events(&id, parsed.model, &answer);
    let error = directives.stream_error_after.map(|after| {
        let status = directives.stream_error_status.unwrap_or(DEFAULT_STREAM_ERROR_STATUS);
        let body = json!({
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": injected_message(status)},
        });
        (after, sse("error", &body))
    });
    let ending = Ending {
        cut_after: directives.cut_after,
        error,
    };
    let interval = directives.chunk_interval.unwrap_or(state.config().chunk_interval);
    Ok((
        [
            (CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        events.into_body(interval, ending),
    )
        .into_response())
}

/// The parts of a valid Messages request the answer needs.
struct Parsed<'a> {
    model: &'a str,
    max_tokens: u64,
    prompt: Prompt<'a>,
    tools: Vec<ToolDecl<'a>>,
}

impl<'a> Parsed<'a> {
    /// Validates the request the way the Messages API does.
    fn from_request(request: &'a Value) -> Result<Self, DialectError> {
        let model = match request.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.as_str(),
            None | Some(Value::Null) => return Err(invalid("model: Field required")),
            Some(_) => return Err(invalid("model: must be a non-empty string")),
        };
        let max_tokens = match request.get("max_tokens") {
            None | Some(Value::Null) => return Err(invalid("max_tokens: Field required")),
            Some(value) => match value.as_u64() {
                Some(tokens) if tokens >= 1 => tokens,
                _ => return Err(invalid("max_tokens: must be an integer greater than or equal to 1")),
            },
        };

        let mut prompt = Prompt::default();
        match request.get("system") {
            None | Some(Value::Null) => {}
            Some(Value::String(system)) => prompt.add_message(false, vec![system.as_str()]),
            Some(Value::Array(blocks)) => {
                let mut texts = Vec::with_capacity(blocks.len());
                for (index, block) in blocks.iter().enumerate() {
                    match (block_type(block), block.get("text")) {
                        (Some("text"), Some(Value::String(text))) => texts.push(text.as_str()),
                        _ => {
                            return Err(invalid(format!(
                                "system.{index}: system blocks must be text blocks with a string `text`"
                            )));
                        }
                    }
                }
                prompt.add_message(false, texts);
            }
            Some(_) => return Err(invalid("system: must be a string or an array of text blocks")),
        }

        let messages = match request.get("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages,
            Some(Value::Array(_)) => return Err(invalid("messages: at least one message is required")),
            None | Some(Value::Null) => return Err(invalid("messages: Field required")),
            Some(_) => return Err(invalid("messages: must be an array")),
        };
        let mut previous: Option<&str> = None;
        for (index, message) in messages.iter().enumerate() {
            let role = match message.get("role").and_then(Value::as_str) {
                Some(role @ ("user" | "assistant")) => role,
                _ => {
                    return Err(invalid(format!(
                        "messages.{index}.role: must be \"user\" or \"assistant\""
                    )));
                }
            };
            match previous {
                None if role != "user" => {
                    return Err(invalid("messages: the first message must use the \"user\" role"));
                }
                Some(last) if last == role => {
                    return Err(invalid(
                        "messages: roles must alternate between \"user\" and \"assistant\"",
                    ));
                }
                _ => {}
            }
            previous = Some(role);
            let texts = content_texts(message.get("content"), index)?;
            prompt.add_message(role == "user", texts);
        }

        let tools = match request.get("tools") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(tools)) => tools
                .iter()
                .enumerate()
                .map(|(index, tool)| match tool.get("name").and_then(Value::as_str) {
                    Some(name) if !name.is_empty() => match tool.get("input_schema") {
                        None | Some(Value::Object(_)) => Ok(ToolDecl {
                            name,
                            schema: tool.get("input_schema"),
                        }),
                        Some(_) => Err(invalid(format!("tools.{index}.input_schema: must be an object"))),
                    },
                    _ => Err(invalid(format!("tools.{index}.name: Field required"))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("tools: must be an array")),
        };
        Ok(Self {
            model,
            max_tokens,
            prompt,
            tools,
        })
    }
}

/// The texts of a message's `content`: the string itself, or the `text` of
/// every text block (other blocks are checked to have a `type` and ignored).
fn content_texts(content: Option<&Value>, index: usize) -> Result<Vec<&str>, DialectError> {
    match content {
        Some(Value::String(text)) => Ok(vec![text.as_str()]),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (block_index, block) in blocks.iter().enumerate() {
                match (block_type(block), block.get("text")) {
                    (Some("text"), Some(Value::String(text))) => texts.push(text.as_str()),
                    (Some("text"), _) => {
                        return Err(invalid(format!(
                            "messages.{index}.content.{block_index}.text: Field required"
                        )));
                    }
                    (Some(_), _) => {}
                    (None, _) => {
                        return Err(invalid(format!(
                            "messages.{index}.content.{block_index}.type: Field required"
                        )));
                    }
                }
            }
            Ok(texts)
        }
        None | Some(Value::Null) => Err(invalid(format!("messages.{index}.content: Field required"))),
        Some(_) => Err(invalid(format!(
            "messages.{index}.content: must be a string or an array of content blocks"
        ))),
    }
}

fn block_type(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> DialectError {
    DialectError::bad_request(DIALECT, message)
}

fn parse_object(body: &[u8]) -> Result<Value, DialectError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(invalid("The request body must be a JSON object.")),
        Err(err) => Err(invalid(format!("The request body is not valid JSON: {err}"))),
    }
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolUse => "tool_use",
    }
}

fn usage(usage: &Usage, output_tokens: u64) -> Value {
    // Anthropic's `input_tokens` leaves out the tokens read from the cache.
    json!({
        "input_tokens": usage.uncached_prompt(),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached,
        "output_tokens": output_tokens,
    })
}

/// The non-streamed `message` object.
fn message(id: &str, model: &str, answer: &Answer) -> Value {
    let mut content = Vec::with_capacity(2);
    if let Some(text) = &answer.text {
        content.push(json!({"type": "text", "text": text}));
    }
    if let Some(call) = &answer.tool_call {
        content.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}));
    }
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(answer.stop),
        "stop_sequence": null,
        "usage": usage(&answer.usage, answer.usage.completion),
    })
}

/// Renders one named SSE event.
fn sse(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Every event of a complete stream: `message_start`, per block
/// `content_block_start` / deltas / `content_block_stop` (a `ping` after the
/// first block starts), `message_delta`, `message_stop`.
fn stream_events(id: &str, model: &str, answer: &Answer) -> EventList {
    let mut events = EventList::default();
    events.push(sse(
        "message_start",
        &json!({
            "type": "message_start",
            "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage(&answer.usage, START_OUTPUT_TOKENS),
            },
        }),
    ));
    let mut index = 0usize;
    let mut start_block = |events: &mut EventList, block: Value| {
        events.push(sse(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        if index == 0 {
            events.push(sse("ping", &json!({"type": "ping"})));
        }
        index += 1;
        index - 1
    };
    let stop_block = |events: &mut EventList, index: usize| {
        events.push(sse(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    };
    if answer.text.is_some() {
        let block = start_block(&mut events, json!({"type": "text", "text": ""}));
        for chunk in answer.text_chunks() {
            events.push_content(sse(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": block, "delta": {"type": "text_delta", "text": chunk}}),
            ));
        }
        stop_block(&mut events, block);
    }
    if let Some(call) = &answer.tool_call {
        let block = start_block(
            &mut events,
            json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}),
        );
        for fragment in fragments(&call.input_json()) {
            events.push_content(sse(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": fragment}}),
            ));
        }
        stop_block(&mut events, block);
    }
    events.push(sse(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(answer.stop), "stop_sequence": null},
            "usage": {"output_tokens": answer.usage.completion},
        }),
    ));
    events.push(sse("message_stop", &json!({"type": "message_stop"})));
    events
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use crate::test_util::{body_bytes, body_json, default_state, post_json, send};
    use crate::{MockConfig, MockState};

    const PATH: &str = "/v1/messages";
    const AUTH: [(&str, &str); 2] = [("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01")];

    fn request(user: &str) -> Value {
        json!({
            "model": "claude-mock",
            "max_tokens": 100,
            "system": "You are helpful.",
            "messages": [{"role": "user", "content": user}],
        })
    }

    fn weather_tools(mut body: Value) -> Value {
        body["tools"] = json!([{
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        }]);
        body
    }

    async fn call(state: &MockState, body: &Value, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut headers = AUTH.to_vec();
        headers.extend_from_slice(extra);
        let response = send(state, post_json(PATH, body, &headers)).await;
        let status = response.status();
        (status, body_json(response).await)
    }

    /// Parses a named-event SSE body, checking that every event has exactly
    /// one `event:` and one `data:` line and that the name matches `type`.
    fn events(body: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.ends_with("\n\n"), "events end with a blank line");
        text.split_terminator("\n\n")
            .map(|event| {
                let mut lines = event.lines();
                let name = lines.next().unwrap().strip_prefix("event: ").unwrap().to_owned();
                let data: Value = serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
                assert!(lines.next().is_none(), "{event}");
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect()
    }

    async fn stream(state: &MockState, body: &Value, extra: &[(&str, &str)]) -> Vec<(String, Value)> {
        let mut body = body.clone();
        body["stream"] = json!(true);
        let mut headers = AUTH.to_vec();
        headers.extend_from_slice(extra);
        let response = send(state, post_json(PATH, &body, &headers)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
        events(&body_bytes(response).await)
    }

    #[tokio::test]
    async fn plain_message_shape_and_usage() {
        let state = default_state();
        let response = send(&state, post_json(PATH, &request("Hello there mock world"), &AUTH)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["request-id"].to_str().unwrap().starts_with("req_"));
        let body = body_json(response).await;
        assert!(body["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(body["type"], "message");
        assert_eq!(body["role"], "assistant");
        assert_eq!(body["model"], "claude-mock");
        assert_eq!(
            body["content"],
            json!([{"type": "text", "text": "Mock reply to: Hello there mock world"}])
        );
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["stop_sequence"], Value::Null);
        // Same as the OpenAI path: (3 + 3) system + (4 + 3) user; 7 words out.
        assert_eq!(
            body["usage"],
            json!({"input_tokens": 13, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
        );
        let stats = state.stats();
        assert_eq!(stats.anthropic_requests, 1);
        assert_eq!(stats.chat_requests, 0);
        assert!(!stats.last_authorization_present);
    }

    #[tokio::test]
    async fn blocks_system_multi_turn_max_tokens_and_cache() {
        let state = default_state();
        let body = json!({
            "model": "claude-mock",
            "max_tokens": 4,
            "system": [{"type": "text", "text": "Be brief."}],
            "metadata": {"user_id": "u1", "mock_cached_tokens": "5"},
            "messages": [
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": [{"type": "text", "text": "an answer"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "alpha beta"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
                    {"type": "text", "text": "gamma"},
                ]},
            ],
        });
        let (status, body) = call(&state, &body, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["content"][0]["text"], "Mock reply to: alpha");
        assert_eq!(body["stop_reason"], "max_tokens");
        // (2 + 3) + (2 + 3) + (2 + 3) + (3 + 3) = 21 prompt tokens, 5 cached.
        assert_eq!(body["usage"]["input_tokens"], 16);
        assert_eq!(body["usage"]["cache_read_input_tokens"], 5);
        assert_eq!(body["usage"]["output_tokens"], 4);
    }

    #[tokio::test]
    async fn missing_auth_headers_and_invalid_bodies() {
        let state = default_state();
        let response = send(
            &state,
            post_json(PATH, &request("hi"), &[("anthropic-version", "2023-06-01")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = body_json(response).await;
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("x-api-key"));

        let response = send(&state, post_json(PATH, &request("hi"), &[("x-api-key", "k")])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response).await;
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("anthropic-version"));

        let user = |text: &str| json!({"role": "user", "content": text});
        let assistant = json!({"role": "assistant", "content": "ok"});
        let cases = [
            (json!({"model": "m", "messages": [user("x")]}), "max_tokens"),
            (
                json!({"model": "m", "max_tokens": 0, "messages": [user("x")]}),
                "max_tokens",
            ),
            (json!({"max_tokens": 5, "messages": [user("x")]}), "model"),
            (json!({"model": "m", "max_tokens": 5, "messages": []}), "messages"),
            (json!({"model": "m", "max_tokens": 5}), "messages"),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [assistant.clone()]}),
                "first message",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [user("a"), user("b")]}),
                "alternate",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}),
                "role",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [user("x")], "system": 3}),
                "system",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [user("x")], "system": [{"type": "image"}]}),
                "system.0",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]}),
                "type",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [user("x")], "tools": [{"input_schema": {}}]}),
                "tools.0.name",
            ),
        ];
        for (body, needle) in cases {
            let (status, error) = call(&state, &body, &[]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error["type"], "error");
            assert_eq!(error["error"]["type"], "invalid_request_error", "{body}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{message} should mention {needle}");
        }
        let (status, error) = call(&state, &request("x"), &[("x-mock-status", "abc")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error["error"]["message"].as_str().unwrap().contains("x-mock-status"));
        assert_eq!(state.stats().anthropic_requests, 15);
    }

    #[tokio::test]
    async fn unknown_model_when_models_are_configured() {
        let state = MockState::new(MockConfig {
            dialect_models: vec!["claude-mock".to_owned()],
            ..MockConfig::default()
        });
        let (status, _) = call(&state, &request("hi"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        let mut body = request("hi");
        body["model"] = json!("claude-nope");
        let (status, error) = call(&state, &body, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["error"]["type"], "not_found_error");
    }

    #[tokio::test]
    async fn stream_event_sequence() {
        let state = default_state();
        let events = stream(&state, &request("one two"), &[]).await;
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        let start = &events[0].1["message"];
        assert!(start["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(start["content"], json!([]));
        assert_eq!(start["stop_reason"], Value::Null);
        assert_eq!(start["usage"]["input_tokens"], 11);
        assert_eq!(events[1].1["content_block"], json!({"type": "text", "text": ""}));
        let text: String = events[3..8]
            .iter()
            .map(|(_, data)| {
                assert_eq!(data["index"], 0);
                assert_eq!(data["delta"]["type"], "text_delta");
                data["delta"]["text"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(text, "Mock reply to: one two");
        assert_eq!(events[8].1["index"], 0);
        assert_eq!(
            events[9].1["delta"],
            json!({"stop_reason": "end_turn", "stop_sequence": null})
        );
        assert_eq!(events[9].1["usage"], json!({"output_tokens": 5}));
        let stats = state.stats();
        assert_eq!(stats.stream_requests, 1);
        assert_eq!(stats.anthropic_requests, 1);
    }

    #[tokio::test]
    async fn tool_use_plain_and_streamed() {
        let state = default_state();
        let body = weather_tools(request("weather in Paris?"));
        let (status, plain) = call(&state, &body, &[("x-mock-tool-call", "get_weather")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(plain["stop_reason"], "tool_use");
        let content = plain["content"].as_array().unwrap();
        assert_eq!(content.len(), 1);
        assert_eq!(content[0]["type"], "tool_use");
        assert!(content[0]["id"].as_str().unwrap().starts_with("toolu_"));
        assert_eq!(content[0]["name"], "get_weather");
        assert_eq!(content[0]["input"], json!({"city": "mock", "days": 1}));
        assert_eq!(plain["usage"]["output_tokens"], 3);

        // A scripted reply comes as a text block before the call.
        let mut scripted = body.clone();
        scripted["metadata"] = json!({"mock_tool_call": "*", "mock_reply": "Checking now."});
        let events = stream(&state, &scripted, &[]).await;
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(&names[..3], ["message_start", "content_block_start", "ping"]);
        assert_eq!(names.iter().filter(|name| **name == "ping").count(), 1);
        let tool_start = events
            .iter()
            .find(|(name, data)| name == "content_block_start" && data["index"] == 1)
            .unwrap();
        assert_eq!(tool_start.1["content_block"]["type"], "tool_use");
        assert_eq!(tool_start.1["content_block"]["name"], "get_weather");
        assert_eq!(tool_start.1["content_block"]["input"], json!({}));
        let fragments: Vec<&str> = events
            .iter()
            .filter(|(_, data)| data["delta"]["type"] == "input_json_delta")
            .map(|(_, data)| {
                assert_eq!(data["index"], 1);
                data["delta"]["partial_json"].as_str().unwrap()
            })
            .collect();
        assert!(fragments.len() >= 2, "{fragments:?}");
        let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
        assert_eq!(input, json!({"city": "mock", "days": 1}));
        let text: String = events
            .iter()
            .filter(|(_, data)| data["delta"]["type"] == "text_delta")
            .map(|(_, data)| data["delta"]["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(text, "Checking now.");
        let delta = &events[events.len() - 2].1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(delta["usage"]["output_tokens"], 2 + 3);

        let (status, error) = call(&state, &body, &[("x-mock-tool-call", "nope")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"]["type"], "invalid_request_error");
        let (status, _) = call(&state, &request("no tools"), &[("x-mock-tool-call", "*")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn scripted_statuses() {
        let state = default_state();
        let (status, body) = call(&state, &request("hi"), &[("x-mock-status", "529")]).await;
        assert_eq!(status.as_u16(), 529);
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": body["error"]["message"]}})
        );

        let response = send(
            &state,
            post_json(
                PATH,
                &request("hi"),
                &[AUTH[0], AUTH[1], ("x-mock-status", "429"), ("x-mock-retry-after", "7")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.headers()["x-mock-injected"], "true");
        assert_eq!(body_json(response).await["error"]["type"], "rate_limit_error");

        let mut scripted = request("hi");
        scripted["metadata"] = json!({"mock_status": "500"});
        let (status, body) = call(&state, &scripted, &[]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["type"], "api_error");
        assert_eq!(state.stats().errors_injected, 3);
    }

    #[tokio::test]
    async fn mid_stream_error_event() {
        let state = default_state();
        let events = stream(&state, &request("one two three"), &[("x-mock-stream-error-after", "2")]).await;
        let (name, data) = events.last().unwrap();
        assert_eq!(name, "error");
        assert_eq!(data["error"]["type"], "overloaded_error");
        let deltas = events.iter().filter(|(name, _)| name == "content_block_delta").count();
        assert_eq!(deltas, 2);
        assert!(!events.iter().any(|(name, _)| name == "message_stop"));

        let events = stream(
            &state,
            &request("x"),
            &[
                ("x-mock-stream-error-after", "0"),
                ("x-mock-stream-error-status", "429"),
            ],
        )
        .await;
        assert_eq!(events.last().unwrap().1["error"]["type"], "rate_limit_error");
        assert_eq!(state.stats().errors_injected, 2);
    }

    #[tokio::test]
    async fn cut_stream_ends_without_message_stop() {
        let state = default_state();
        let mut body = request("one two three");
        body["stream"] = json!(true);
        let response = send(
            &state,
            post_json(PATH, &body, &[AUTH[0], AUTH[1], ("x-mock-cut-after", "2")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut seen = Vec::new();
        let error = loop {
            match body.frame().await {
                Some(Ok(frame)) => seen.extend_from_slice(frame.data_ref().unwrap()),
                Some(Err(err)) => break err,
                None => panic!("the stream ended cleanly instead of being cut"),
            }
        };
        assert!(error.to_string().contains("cut"), "{error}");
        let events = events(&seen);
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta"
            ]
        );
    }
}
