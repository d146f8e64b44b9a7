//! `POST /model/{modelId}/converse` and `/converse-stream`: Amazon Bedrock's Converse API.
//!
//! The router's Bedrock adapter signs requests with SigV4, translates them
//! into Converse's content blocks and decodes the binary event stream of
//! `converse-stream`; the mock speaks that dialect as AWS documents it,
//! written independently of the adapter (and of the project's own AWS
//! crate): Converse request validation, `output.message` answers with `text`
//! and `toolUse` blocks, `application/vnd.amazon.eventstream` frames with
//! CRCs, exception frames for in-stream failures, and HTTP errors with an
//! `x-amzn-ErrorType` header. Authentication is only checked for shape — an
//! `authorization` header starting `AWS4-HMAC-SHA256 Credential=` and an
//! `x-amz-date` header must be present — the signature itself is **not**
//! verified. Content and usage follow the shared rules of the `answer`
//! module; `metrics.latencyMs` is the first-byte latency the request was
//! given (scripted or configured), so it is deterministic too.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::MockState;
use crate::answer::{Answer, Prompt, Stop, ToolDecl, Usage, fragments};
use crate::dialect_error::{Dialect, DialectError, bedrock_error_type, injected_message};
use crate::eventstream::{self, FrameTooLarge};
use crate::script::{Directives, injected_failure};
use crate::stats::Counters;
use crate::stream_body::{Ending, EventList};

const DIALECT: Dialect = Dialect::Bedrock;
/// The prefix of a SigV4 `authorization` header.
const SIGV4_PREFIX: &str = "AWS4-HMAC-SHA256 Credential=";
/// The header SigV4 signs the request time in.
const AMZ_DATE: &str = "x-amz-date";
/// Bedrock's request id header, set on every answer.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
/// In-stream exception status when `x-mock-stream-error-status` is not given.
const DEFAULT_STREAM_ERROR_STATUS: u16 = 429;
/// Bedrock pads stream event payloads with a `p` field of filler so their
/// sizes do not leak the content; clients must ignore it.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";

/// `POST /model/{modelId}/converse`.
pub(crate) async fn converse(
    State(state): State<MockState>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&state, &model_id, &headers, &body, false).await
}

/// `POST /model/{modelId}/converse-stream`.
pub(crate) async fn converse_stream(
    State(state): State<MockState>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&state, &model_id, &headers, &body, true).await
}

async fn respond(state: &MockState, model_id: &str, headers: &HeaderMap, body: &[u8], stream: bool) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.bedrock_requests);
    counters.record_headers(headers);
    if stream {
        Counters::bump(&counters.stream_requests);
    }
    let mut response = match handle(state, model_id, headers, body, stream).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().hyphenated().to_string()) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

async fn handle(
    state: &MockState,
    model_id: &str,
    headers: &HeaderMap,
    body: &[u8],
    stream: bool,
) -> Result<Response, DialectError> {
    check_auth(headers)?;
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return Err(invalid("The request body must be a JSON object.")),
        Err(err) => return Err(invalid(format!("The request body is not valid JSON: {err}"))),
    };
    let metadata = ["requestMetadata", "metadata"]
        .iter()
        .find_map(|key| request.get(*key).and_then(Value::as_object));
    let directives = Directives::read(headers, metadata).map_err(|err| DialectError::script(DIALECT, &err))?;
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(DialectError::injected(DIALECT, &injection));
    }

    let parsed = Parsed::from_request(&request)?;
    if !state.accepts_dialect_model(model_id) {
        return Err(invalid("The provided model identifier is invalid."));
    }
    let answer = Answer::plan(parsed.prompt, &directives, parsed.max_tokens, &parsed.tools, "tooluse_")
        .map_err(|err| invalid(err.message()))?;
    let latency = directives.latency.unwrap_or(state.config().first_byte_latency);
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    if !stream {
        return Ok(Json(converse_output(&answer, latency_ms)).into_response());
    }

    if directives.stream_error_after.is_some() {
        Counters::bump(&state.counters().errors_injected);
    }
    let frame_error = |_: FrameTooLarge| {
        DialectError::new(
            DIALECT,
            StatusCode::INTERNAL_SERVER_ERROR,
            "mock provider internal error: event too large to frame",
        )
    };
    let events = stream_events(&answer, latency_ms).map_err(frame_error)?;
    let error = match directives.stream_error_after {
        Some(after) => {
            let status = directives.stream_error_status.unwrap_or(DEFAULT_STREAM_ERROR_STATUS);
            let payload = json!({"message": injected_message(status)}).to_string();
            let frame = eventstream::exception(&lower_first(bedrock_error_type(status)), payload.as_bytes())
                .map_err(frame_error)?;
            Some((after, frame))
        }
        None => None,
    };
    let ending = Ending {
        cut_after: directives.cut_after,
        error,
    };
    let interval = directives.chunk_interval.unwrap_or(state.config().chunk_interval);
    Ok((
        [(CONTENT_TYPE, "application/vnd.amazon.eventstream")],
        events.into_body(interval, ending),
    )
        .into_response())
}

/// Checks the SigV4 headers are there (not that the signature is right).
fn check_auth(headers: &HeaderMap) -> Result<(), DialectError> {
    let Some(authorization) = headers.get(AUTHORIZATION) else {
        return Err(
            DialectError::new(DIALECT, StatusCode::FORBIDDEN, "Missing Authentication Token")
                .with_kind("MissingAuthenticationTokenException"),
        );
    };
    if !authorization.as_bytes().starts_with(SIGV4_PREFIX.as_bytes()) {
        return Err(DialectError::new(
            DIALECT,
            StatusCode::FORBIDDEN,
            "The authorization header must be an AWS Signature Version 4 header (`AWS4-HMAC-SHA256 Credential=…`).",
        )
        .with_kind("IncompleteSignatureException"));
    }
    if !headers.contains_key(AMZ_DATE) {
        return Err(DialectError::new(
            DIALECT,
            StatusCode::FORBIDDEN,
            "A SigV4-signed request needs an x-amz-date header.",
        )
        .with_kind("IncompleteSignatureException"));
    }
    Ok(())
}

/// The parts of a valid Converse request the answer needs.
struct Parsed<'a> {
    max_tokens: Option<u64>,
    prompt: Prompt<'a>,
    tools: Vec<ToolDecl<'a>>,
}

impl<'a> Parsed<'a> {
    /// Validates the request the way Converse does.
    fn from_request(request: &'a Value) -> Result<Self, DialectError> {
        let mut prompt = Prompt::default();
        match request.get("system") {
            None | Some(Value::Null) => {}
            Some(Value::Array(blocks)) => {
                let mut texts = Vec::with_capacity(blocks.len());
                for block in blocks {
                    let Some(block) = block.as_object() else {
                        return Err(invalid("system: every entry must be an object"));
                    };
                    if let Some(text) = block.get("text") {
                        texts.push(
                            text.as_str()
                                .ok_or_else(|| invalid("system: `text` must be a string"))?,
                        );
                    }
                }
                prompt.add_message(false, texts);
            }
            Some(_) => return Err(invalid("system: must be an array of system content blocks")),
        }

        let messages = match request.get("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages,
            Some(Value::Array(_)) => {
                return Err(invalid("messages: at least one message is required"));
            }
            None | Some(Value::Null) => return Err(invalid("messages: the field is required")),
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
                None if role != "user" => return Err(invalid("A conversation must start with a user message.")),
                Some(last) if last == role => {
                    return Err(invalid(
                        "A conversation must alternate between user and assistant roles.",
                    ));
                }
                _ => {}
            }
            previous = Some(role);
            let blocks = match message.get("content") {
                Some(Value::Array(blocks)) if !blocks.is_empty() => blocks,
                _ => {
                    return Err(invalid(format!(
                        "messages.{index}.content: must be a non-empty array of content blocks"
                    )));
                }
            };
            let mut texts = Vec::with_capacity(blocks.len());
            for (block_index, block) in blocks.iter().enumerate() {
                match block.as_object() {
                    Some(block) if !block.is_empty() => {
                        if let Some(text) = block.get("text") {
                            texts.push(text.as_str().ok_or_else(|| {
                                invalid(format!("messages.{index}.content.{block_index}.text: must be a string"))
                            })?);
                        }
                    }
                    _ => {
                        return Err(invalid(format!(
                            "messages.{index}.content.{block_index}: must be a content block object"
                        )));
                    }
                }
            }
            prompt.add_message(role == "user", texts);
        }

        let max_tokens = match request
            .get("inferenceConfig")
            .and_then(|config| config.get("maxTokens"))
        {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64() {
                Some(tokens) if tokens >= 1 => Some(tokens),
                _ => return Err(invalid("inferenceConfig.maxTokens: must be an integer of at least 1")),
            },
        };

        let mut tools = Vec::new();
        match request.get("toolConfig").map(|config| config.get("tools")) {
            None | Some(None) => {}
            Some(Some(Value::Array(entries))) => {
                for (index, entry) in entries.iter().enumerate() {
                    // Entries without a `toolSpec` (cache points) declare no tool.
                    let Some(spec) = entry.get("toolSpec") else { continue };
                    let Some(name) = spec.get("name").and_then(Value::as_str).filter(|name| !name.is_empty()) else {
                        return Err(invalid(format!(
                            "toolConfig.tools.{index}.toolSpec.name: the field is required"
                        )));
                    };
                    tools.push(ToolDecl {
                        name,
                        schema: spec.get("inputSchema").and_then(|schema| schema.get("json")),
                    });
                }
            }
            Some(Some(_)) => return Err(invalid("toolConfig.tools: must be an array")),
        }
        Ok(Self {
            max_tokens,
            prompt,
            tools,
        })
    }
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> DialectError {
    DialectError::bad_request(DIALECT, message)
}

/// `ThrottlingException` → `throttlingException`, the in-stream spelling.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolUse => "tool_use",
    }
}

/// Converse's `TokenUsage`: `inputTokens` leaves out cache reads, which
/// `cacheReadInputTokens` reports (only when there are some);
/// `totalTokens` counts every token.
fn usage(usage: &Usage) -> Value {
    let mut fields = Map::new();
    fields.insert("inputTokens".to_owned(), usage.uncached_prompt().into());
    fields.insert("outputTokens".to_owned(), usage.completion.into());
    fields.insert(
        "totalTokens".to_owned(),
        usage.prompt.saturating_add(usage.completion).into(),
    );
    if usage.cached > 0 {
        fields.insert("cacheReadInputTokens".to_owned(), usage.cached.into());
    }
    Value::Object(fields)
}

/// The non-streamed Converse answer.
fn converse_output(answer: &Answer, latency_ms: u64) -> Value {
    let mut content = Vec::with_capacity(2);
    if let Some(text) = &answer.text {
        content.push(json!({"text": text}));
    }
    if let Some(call) = &answer.tool_call {
        content.push(json!({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.input}}));
    }
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(answer.stop),
        "usage": usage(&answer.usage),
        "metrics": {"latencyMs": latency_ms},
    })
}

/// One event frame whose JSON payload is `fields` plus the padding.
fn event(event_type: &str, fields: Value) -> Result<Bytes, FrameTooLarge> {
    let mut payload = fields;
    if let Value::Object(map) = &mut payload {
        map.insert("p".to_owned(), Value::String(PADDING.to_owned()));
    }
    eventstream::event(event_type, payload.to_string().as_bytes())
}

/// Every frame of a complete stream: `messageStart`; text deltas (text
/// blocks have no start event); for a tool call `contentBlockStart` with its
/// id and name then input fragments; a `contentBlockStop` per block;
/// `messageStop`; `metadata` with usage and metrics.
fn stream_events(answer: &Answer, latency_ms: u64) -> Result<EventList, FrameTooLarge> {
    let mut events = EventList::default();
    events.push(event("messageStart", json!({"role": "assistant"}))?);
    let mut index = 0usize;
    if answer.text.is_some() {
        for chunk in answer.text_chunks() {
            events.push_content(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"text": chunk}}),
            )?);
        }
        events.push(event("contentBlockStop", json!({"contentBlockIndex": index}))?);
        index += 1;
    }
    if let Some(call) = &answer.tool_call {
        events.push(event(
            "contentBlockStart",
            json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": call.id, "name": call.name}}}),
        )?);
        for fragment in fragments(&call.input_json()) {
            events.push_content(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}}),
            )?);
        }
        events.push(event("contentBlockStop", json!({"contentBlockIndex": index}))?);
    }
    events.push(event("messageStop", json!({"stopReason": stop_reason(answer.stop)}))?);
    events.push(event(
        "metadata",
        json!({"usage": usage(&answer.usage), "metrics": {"latencyMs": latency_ms}}),
    )?);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use crate::test_util::{body_bytes, body_json, default_state, post_json, send};
    use crate::{MockConfig, MockState};

    const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
    const SIGV4: (&str, &str) = (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0123abcd",
    );
    const DATE: (&str, &str) = ("x-amz-date", "20250101T000000Z");

    fn path(model: &str, stream: bool) -> String {
        let suffix = if stream { "converse-stream" } else { "converse" };
        format!("/model/{model}/{suffix}")
    }

    fn request(user: &str) -> Value {
        json!({
            "system": [{"text": "You are helpful."}],
            "messages": [{"role": "user", "content": [{"text": user}]}],
        })
    }

    fn with_tools(mut body: Value) -> Value {
        body["toolConfig"] = json!({"tools": [
            {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            }}}},
        ]});
        body
    }

    async fn call(state: &MockState, body: &Value, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut headers = vec![SIGV4, DATE];
        headers.extend_from_slice(extra);
        let response = send(state, post_json(&path(MODEL, false), body, &headers)).await;
        let status = response.status();
        (status, body_json(response).await)
    }

    /// One decoded event-stream message.
    #[derive(Debug)]
    struct Frame {
        headers: HashMap<String, String>,
        payload: Value,
    }

    /// Decodes event-stream messages written back to back, verifying both
    /// CRCs, the lengths and that every header is a string; returns the
    /// frames and the bytes left over (a truncated message).
    fn decode(mut bytes: &[u8]) -> (Vec<Frame>, usize) {
        let mut frames = Vec::new();
        let be32 = |bytes: &[u8]| u32::from_be_bytes(bytes[..4].try_into().unwrap());
        while bytes.len() >= 12 {
            let total = be32(bytes) as usize;
            let headers_len = be32(&bytes[4..]) as usize;
            assert_eq!(be32(&bytes[8..]), crc32fast::hash(&bytes[..8]), "prelude CRC");
            if bytes.len() < total {
                break;
            }
            let message = &bytes[..total];
            assert_eq!(
                be32(&message[total - 4..]),
                crc32fast::hash(&message[..total - 4]),
                "message CRC"
            );
            let mut raw_headers = &message[12..12 + headers_len];
            let mut headers = HashMap::new();
            while !raw_headers.is_empty() {
                let name_len = raw_headers[0] as usize;
                let name = std::str::from_utf8(&raw_headers[1..1 + name_len]).unwrap().to_owned();
                assert_eq!(raw_headers[1 + name_len], 7, "string header");
                let value_len = u16::from_be_bytes([raw_headers[2 + name_len], raw_headers[3 + name_len]]) as usize;
                let start = 4 + name_len;
                let value = std::str::from_utf8(&raw_headers[start..start + value_len])
                    .unwrap()
                    .to_owned();
                headers.insert(name, value);
                raw_headers = &raw_headers[start + value_len..];
            }
            let payload = serde_json::from_slice(&message[12 + headers_len..total - 4]).unwrap();
            frames.push(Frame { headers, payload });
            bytes = &bytes[total..];
        }
        (frames, bytes.len())
    }

    async fn stream(state: &MockState, body: &Value, extra: &[(&str, &str)]) -> Vec<Frame> {
        let mut headers = vec![SIGV4, DATE];
        headers.extend_from_slice(extra);
        let response = send(state, post_json(&path(MODEL, true), body, &headers)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/vnd.amazon.eventstream");
        let (frames, rest) = decode(&body_bytes(response).await);
        assert_eq!(rest, 0);
        frames
    }

    fn event_types(frames: &[Frame]) -> Vec<&str> {
        frames
            .iter()
            .map(|frame| {
                let kind = frame.headers[":message-type"].as_str();
                let name = if kind == "event" {
                    ":event-type"
                } else {
                    ":exception-type"
                };
                assert_eq!(frame.headers[":content-type"], "application/json");
                frame.headers[name].as_str()
            })
            .collect()
    }

    #[tokio::test]
    async fn plain_converse_shape_and_usage() {
        let state = default_state();
        let response = send(
            &state,
            post_json(&path(MODEL, false), &request("Hello there mock world"), &[SIGV4, DATE]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("x-amzn-requestid"));
        let body = body_json(response).await;
        assert_eq!(
            body,
            json!({
                "output": {"message": {"role": "assistant", "content": [{"text": "Mock reply to: Hello there mock world"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 13, "outputTokens": 7, "totalTokens": 20},
                "metrics": {"latencyMs": 0},
            })
        );
        let stats = state.stats();
        assert_eq!(stats.bedrock_requests, 1);
        assert!(stats.last_authorization_present);
    }

    #[tokio::test(start_paused = true)]
    async fn model_ids_are_decoded_and_limits_cache_and_latency_apply() {
        let state = MockState::new(MockConfig {
            dialect_models: vec!["arn:aws:bedrock:us-east-1:123:inference-profile/us.mock-v1:0".to_owned()],
            ..MockConfig::default()
        });
        let mut body = request("a b c d e");
        body["inferenceConfig"] = json!({"maxTokens": 4, "temperature": 0.5});
        body["requestMetadata"] = json!({"mock_cached_tokens": "3", "mock_latency_ms": "250"});
        let encoded = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.mock-v1%3A0";
        let response = send(&state, post_json(&path(encoded, false), &body, &[SIGV4, DATE])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["output"]["message"]["content"][0]["text"], "Mock reply to: a");
        assert_eq!(body["stopReason"], "max_tokens");
        // (3 + 3) + (5 + 3) = 14 prompt tokens, 3 from the cache.
        assert_eq!(
            body["usage"],
            json!({"inputTokens": 11, "outputTokens": 4, "totalTokens": 18, "cacheReadInputTokens": 3})
        );
        assert_eq!(body["metrics"]["latencyMs"], 250);

        let (status, body) = call(&state, &request("x"), &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["message"], "The provided model identifier is invalid.");
    }

    #[tokio::test]
    async fn missing_auth_and_invalid_requests() {
        let state = default_state();
        let response = send(&state, post_json(&path(MODEL, false), &request("x"), &[DATE])).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            response.headers()["x-amzn-errortype"]
                .to_str()
                .unwrap()
                .starts_with("MissingAuthenticationTokenException:")
        );
        assert_eq!(
            body_json(response).await,
            json!({"message": "Missing Authentication Token"})
        );

        for headers in [vec![SIGV4], vec![("authorization", "Bearer abc"), DATE]] {
            let response = send(&state, post_json(&path(MODEL, true), &request("x"), &headers)).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert!(
                response.headers()["x-amzn-errortype"]
                    .to_str()
                    .unwrap()
                    .starts_with("IncompleteSignatureException:")
            );
        }

        let user = json!({"role": "user", "content": [{"text": "x"}]});
        let assistant = json!({"role": "assistant", "content": [{"text": "y"}]});
        let cases = [
            json!({}),
            json!({"messages": []}),
            json!({"messages": [assistant.clone()]}),
            json!({"messages": [user.clone(), user.clone()]}),
            json!({"messages": [{"role": "user", "content": []}]}),
            json!({"messages": [{"role": "user", "content": "x"}]}),
            json!({"messages": [{"role": "user", "content": [{"text": 3}]}]}),
            json!({"messages": [user.clone()], "system": "x"}),
            json!({"messages": [user.clone()], "inferenceConfig": {"maxTokens": 0}}),
            json!({"messages": [user.clone()], "toolConfig": {"tools": [{"toolSpec": {}}]}}),
        ];
        for body in cases {
            let (status, error) = call(&state, &body, &[]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(error["message"].is_string(), "{body}");
        }
        let response = send(&state, post_json(&path(MODEL, false), &request("x"), &[SIGV4, DATE])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let (status, _) = call(&state, &json!({"messages": [user, assistant]}), &[]).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn stream_frames_and_usage() {
        let state = default_state();
        let frames = stream(&state, &request("one two"), &[]).await;
        assert_eq!(
            event_types(&frames),
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata",
            ]
        );
        assert!(frames.iter().all(|frame| frame.headers[":message-type"] == "event"));
        assert_eq!(frames[0].payload["role"], "assistant");
        let text: String = frames[1..6]
            .iter()
            .map(|frame| {
                assert_eq!(frame.payload["contentBlockIndex"], 0);
                frame.payload["delta"]["text"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(text, "Mock reply to: one two");
        assert_eq!(frames[6].payload["contentBlockIndex"], 0);
        assert_eq!(frames[7].payload["stopReason"], "end_turn");
        assert_eq!(
            frames[8].payload["usage"],
            json!({"inputTokens": 11, "outputTokens": 5, "totalTokens": 16})
        );
        assert_eq!(frames[8].payload["metrics"], json!({"latencyMs": 0}));
        let stats = state.stats();
        assert_eq!(stats.stream_requests, 1);
        assert_eq!(stats.bedrock_requests, 1);
    }

    #[tokio::test]
    async fn tool_use_plain_and_streamed() {
        let state = default_state();
        let body = with_tools(request("weather?"));
        let (status, plain) = call(&state, &body, &[("x-mock-tool-call", "get_weather")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(plain["stopReason"], "tool_use");
        let content = plain["output"]["message"]["content"].as_array().unwrap();
        assert_eq!(content.len(), 1);
        let tool_use = &content[0]["toolUse"];
        assert!(tool_use["toolUseId"].as_str().unwrap().starts_with("tooluse_"));
        assert_eq!(tool_use["name"], "get_weather");
        assert_eq!(tool_use["input"], json!({"city": "mock", "unit": "c"}));
        assert_eq!(plain["usage"]["outputTokens"], 3);

        let frames = stream(&state, &body, &[("x-mock-tool-call", "*")]).await;
        let types = event_types(&frames);
        assert_eq!(types[..2], ["messageStart", "contentBlockStart"]);
        assert_eq!(
            types[types.len() - 3..],
            ["contentBlockStop", "messageStop", "metadata"]
        );
        let start = &frames[1].payload;
        assert_eq!(start["contentBlockIndex"], 0);
        assert_eq!(start["start"]["toolUse"]["name"], "get_weather");
        assert!(
            start["start"]["toolUse"]["toolUseId"]
                .as_str()
                .unwrap()
                .starts_with("tooluse_")
        );
        let fragments: Vec<&str> = frames[2..frames.len() - 3]
            .iter()
            .map(|frame| frame.payload["delta"]["toolUse"]["input"].as_str().unwrap())
            .collect();
        assert!(fragments.len() >= 2);
        let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
        assert_eq!(input, json!({"city": "mock", "unit": "c"}));
        assert_eq!(frames[frames.len() - 2].payload["stopReason"], "tool_use");

        let (status, error) = call(&state, &body, &[("x-mock-tool-call", "nope")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error["message"].as_str().unwrap().contains("nope"));
    }

    #[tokio::test]
    async fn scripted_http_errors_and_exception_frames() {
        let state = default_state();
        let response = send(
            &state,
            post_json(
                &path(MODEL, true),
                &request("x"),
                &[SIGV4, DATE, ("x-mock-status", "429"), ("x-mock-retry-after", "2")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(
            response.headers()["x-amzn-errortype"]
                .to_str()
                .unwrap()
                .starts_with("ThrottlingException:")
        );
        assert!(body_json(response).await["message"].is_string());

        let frames = stream(&state, &request("one two three"), &[("x-mock-stream-error-after", "1")]).await;
        assert_eq!(
            event_types(&frames),
            ["messageStart", "contentBlockDelta", "throttlingException"]
        );
        let last = frames.last().unwrap();
        assert_eq!(last.headers[":message-type"], "exception");
        assert!(last.payload["message"].is_string());

        let mut body = request("x");
        body["requestMetadata"] = json!({"mock_stream_error_after": "0", "mock_stream_error_status": "503"});
        let frames = stream(&state, &body, &[]).await;
        assert_eq!(event_types(&frames), ["messageStart", "serviceUnavailableException"]);
        assert_eq!(state.stats().errors_injected, 3);
    }

    #[tokio::test]
    async fn cut_stream_ends_without_message_stop() {
        let state = default_state();
        let response = send(
            &state,
            post_json(
                &path(MODEL, true),
                &request("one two three"),
                &[SIGV4, DATE, ("x-mock-cut-after", "2")],
            ),
        )
        .await;
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
        let (frames, rest) = decode(&seen);
        assert_eq!(rest, 0);
        assert_eq!(
            event_types(&frames),
            ["messageStart", "contentBlockDelta", "contentBlockDelta"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn chunk_interval_paces_frames() {
        let state = default_state();
        let start = tokio::time::Instant::now();
        let frames = stream(&state, &request("one"), &[("x-mock-chunk-interval-ms", "100")]).await;
        // messageStart, 4 deltas, stop, messageStop, metadata: 7 gaps.
        assert_eq!(frames.len(), 8);
        assert!(start.elapsed() >= Duration::from_millis(700));
    }
}
