//! `POST /v1/chat/completions`, plain and streamed.
//!
//! This is the route the gateway exercises most, so its answers are fully
//! deterministic — the reply is `"Mock reply to: "` followed by the first 40
//! characters of the last user message, and usage is computed from word
//! counts — which lets tests assert exact content and billing. Streams follow
//! OpenAI's chunk sequence (role chunk, one chunk per word, finish chunk,
//! optional usage chunk, `[DONE]`) and can be slowed down or cut mid-way by
//! the `script` directives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::MockState;
use crate::error::{ApiError, parse_json_object};
use crate::script::{Directives, gate};
use crate::stats::Counters;
use crate::stream_body::paced_body;

/// Text every default reply starts with.
const REPLY_PREFIX: &str = "Mock reply to: ";
/// How many characters of the last user message the default reply echoes.
const ECHO_CHARS: usize = 40;
/// Tokens of overhead counted for every prompt message (OpenAI counts ~3).
pub(crate) const TOKENS_PER_MESSAGE: u64 = 3;
/// `system_fingerprint` sent with every completion.
const SYSTEM_FINGERPRINT: &str = "fp_oneflow_mock";
/// The last SSE event of every complete stream.
const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.chat_requests);
    counters.record_headers(&headers);
    match handle(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(state: &MockState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let request = parse_json_object(body)?;
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if stream {
        Counters::bump(&state.counters().stream_requests);
    }
    let directives = Directives::from_request(headers, &request)?;
    gate(state, &directives).await?;

    let plan = Plan::from_request(&request, state, &directives)?;
    if stream {
        let include_usage = request
            .get("stream_options")
            .and_then(|options| options.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let interval = directives.chunk_interval.unwrap_or(state.config().chunk_interval);
        plan.into_stream(include_usage, interval, directives.cut_after)
    } else {
        Ok(Json(plan.completion()).into_response())
    }
}

/// Everything needed to answer one valid chat request.
#[derive(Debug)]
struct Plan<'a> {
    id: String,
    created: u64,
    model: &'a str,
    /// The reply text, already truncated to the token limit.
    content: String,
    finish_reason: &'static str,
    usage: Usage,
}

impl<'a> Plan<'a> {
    /// Validates the request and computes the deterministic answer.
    fn from_request(request: &'a Value, state: &MockState, directives: &Directives) -> Result<Self, ApiError> {
        let model = match request.get("model") {
            Some(Value::String(model)) => model.as_str(),
            Some(Value::Null) | None => return Err(ApiError::missing_param("model")),
            Some(_) => {
                return Err(ApiError::invalid_request("'model' must be a string", Some("model")));
            }
        };
        let messages = match request.get("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages,
            Some(Value::Array(_)) => {
                return Err(ApiError::invalid_request(
                    "'messages' must contain at least one message",
                    Some("messages"),
                ));
            }
            Some(Value::Null) | None => return Err(ApiError::missing_param("messages")),
            Some(_) => {
                return Err(ApiError::invalid_request(
                    "'messages' must be an array",
                    Some("messages"),
                ));
            }
        };
        if let Some(index) = messages.iter().position(|message| !message.is_object()) {
            return Err(ApiError::invalid_request(
                format!("'messages.{index}' must be an object"),
                Some(format!("messages.{index}")),
            ));
        }
        if !state.config().chat_models.iter().any(|known| known == model) {
            return Err(ApiError::model_not_found(model));
        }
        let max_tokens = [
            token_limit(request, "max_tokens")?,
            token_limit(request, "max_completion_tokens")?,
        ]
        .into_iter()
        .flatten()
        .min();

        let prompt_tokens = messages.iter().fold(0u64, |total, message| {
            let words: usize = text_parts(message.get("content"))
                .map(|text| text.split_whitespace().count())
                .sum();
            total.saturating_add(words as u64).saturating_add(TOKENS_PER_MESSAGE)
        });

        let reply = match &directives.reply {
            Some(reply) => reply.clone(),
            None => default_reply(messages),
        };
        let words = segments(&reply);
        let (content, completion_tokens, finish_reason) = match max_tokens {
            Some(limit) if limit < words.len() as u64 => {
                // `limit < len` so it fits in usize.
                let kept = usize::try_from(limit).unwrap_or(words.len());
                let content = words[..kept].concat().trim_end().to_owned();
                (content, kept, "length")
            }
            _ => {
                let count = words.len();
                (reply, count, "stop")
            }
        };
        Ok(Self {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: unix_now(),
            model,
            content,
            finish_reason,
            usage: Usage::new(
                prompt_tokens,
                completion_tokens as u64,
                directives.cached_tokens.unwrap_or(0),
            ),
        })
    }

    /// The non-streamed `chat.completion` object.
    fn completion(&self) -> Completion<'_> {
        Completion {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: self.model,
            choices: [Choice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: &self.content,
                    refusal: None,
                    annotations: [],
                },
                logprobs: None,
                finish_reason: self.finish_reason,
            }],
            usage: &self.usage,
            service_tier: "default",
            system_fingerprint: SYSTEM_FINGERPRINT,
        }
    }

    /// Renders every SSE event of the stream, in order, `[DONE]` last.
    fn events(&self, include_usage: bool) -> Result<Vec<Bytes>, serde_json::Error> {
        let words = segments(&self.content);
        let mut events = Vec::with_capacity(words.len() + 4);
        // OpenAI sends `"usage": null` on every chunk but the last when usage
        // was requested, and no `usage` key at all otherwise.
        let no_usage = include_usage.then_some(None);
        let chunk = |choices: &[ChunkChoice<'_>], usage: Option<Option<&Usage>>| {
            sse_event(&Chunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model,
                system_fingerprint: SYSTEM_FINGERPRINT,
                choices,
                usage,
            })
        };
        events.push(chunk(&[ChunkChoice::delta(Some("assistant"), Some(""))], no_usage)?);
        for word in &words {
            events.push(chunk(&[ChunkChoice::delta(None, Some(word))], no_usage)?);
        }
        events.push(chunk(
            &[ChunkChoice {
                finish_reason: Some(self.finish_reason),
                ..ChunkChoice::delta(None, None)
            }],
            no_usage,
        )?);
        if include_usage {
            events.push(chunk(&[], Some(Some(&self.usage)))?);
        }
        events.push(Bytes::from_static(DONE_EVENT));
        Ok(events)
    }

    /// The `text/event-stream` response. With `cut_after`, the body aborts
    /// with an error right after that many content chunks (or after the last
    /// one, if the reply is shorter).
    fn into_stream(
        self,
        include_usage: bool,
        interval: Duration,
        cut_after: Option<usize>,
    ) -> Result<Response, ApiError> {
        let events = self
            .events(include_usage)
            .map_err(|err| ApiError::internal(&err.to_string()))?;
        // Event 0 is the role chunk, events 1..=words are content chunks.
        let content_chunks = segments(&self.content).len();
        let cut_at = cut_after.map(|after| 1 + after.min(content_chunks));
        let body = paced_body(events, interval, cut_at);
        Ok((
            [
                (CONTENT_TYPE, "text/event-stream; charset=utf-8"),
                (CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response())
    }
}

/// Serialises one chunk as `data: <json>\n\n`.
fn sse_event<T: Serialize>(chunk: &T) -> Result<Bytes, serde_json::Error> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut buf, chunk)?;
    buf.extend_from_slice(b"\n\n");
    Ok(Bytes::from(buf))
}

/// Reads an optional non-negative integer token limit.
fn token_limit(request: &Value, name: &'static str) -> Result<Option<u64>, ApiError> {
    match request.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_request(format!("'{name}' must be a non-negative integer"), Some(name))),
    }
}

/// The text pieces of a message `content`: the string itself, or the `text`
/// of every `{"type":"text"}` part of an array (other parts are ignored).
fn text_parts(content: Option<&Value>) -> impl Iterator<Item = &str> {
    let (single, parts) = match content {
        Some(Value::String(text)) => (Some(text.as_str()), None),
        Some(Value::Array(parts)) => (None, Some(parts.iter())),
        _ => (None, None),
    };
    single.into_iter().chain(
        parts
            .into_iter()
            .flatten()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str)),
    )
}

/// `"Mock reply to: "` + the first 40 characters of the last user message's
/// text (array parts joined with a space).
fn default_reply(messages: &[Value]) -> String {
    let last_user = messages
        .iter()
        .rev()
        .find(|message| message.get("role").and_then(Value::as_str) == Some("user"));
    echo_reply(
        last_user
            .into_iter()
            .flat_map(|message| text_parts(message.get("content"))),
    )
}

/// The default reply of every dialect: `"Mock reply to: "` + the first 40
/// characters of `parts` (the last user message's texts) joined with a space.
pub(crate) fn echo_reply<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut reply = String::with_capacity(REPLY_PREFIX.len() + ECHO_CHARS * 2);
    reply.push_str(REPLY_PREFIX);
    let mut remaining = ECHO_CHARS;
    for (index, part) in parts.into_iter().enumerate() {
        if remaining == 0 {
            break;
        }
        if index > 0 {
            reply.push(' ');
            remaining -= 1;
        }
        for c in part.chars().take(remaining) {
            reply.push(c);
            remaining -= 1;
        }
    }
    reply
}

/// Splits `text` into words that keep their trailing whitespace (the first
/// also keeps any leading whitespace), so the pieces concatenate back to
/// `text` exactly. There are as many pieces as whitespace-separated words.
pub(crate) fn segments(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut seen_word = false;
    let mut prev_whitespace = true;
    for (index, c) in text.char_indices() {
        let whitespace = c.is_whitespace();
        if !whitespace && prev_whitespace {
            if seen_word {
                pieces.push(&text[start..index]);
                start = index;
            }
            seen_word = true;
        }
        prev_whitespace = whitespace;
    }
    if seen_word {
        pieces.push(&text[start..]);
    }
    pieces
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// OpenAI's `CompletionUsage`.
#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptTokensDetails,
    completion_tokens_details: CompletionTokensDetails,
}

impl Usage {
    /// `cached` prompt tokens (capped at the prompt) are reported in
    /// `prompt_tokens_details.cached_tokens`; OpenAI counts them inside
    /// `prompt_tokens`.
    fn new(prompt_tokens: u64, completion_tokens: u64, cached: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: cached.min(prompt_tokens),
                ..PromptTokensDetails::default()
            },
            completion_tokens_details: CompletionTokensDetails::default(),
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct PromptTokensDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Debug, Default, Serialize)]
struct CompletionTokensDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

/// OpenAI's `CreateChatCompletionResponse`.
#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: &'a Usage,
    service_tier: &'static str,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
    annotations: [(); 0],
}

/// OpenAI's `CreateChatCompletionStreamResponse`.
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent unless usage was requested; then `null` except on the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

impl<'a> ChunkChoice<'a> {
    fn delta(role: Option<&'static str>, content: Option<&'a str>) -> Self {
        Self {
            index: 0,
            delta: Delta { role, content },
            logprobs: None,
            finish_reason: None,
        }
    }
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use super::*;
    use crate::MockConfig;
    use crate::test_util::{body_bytes, body_json, default_state, post_json, send};

    const PATH: &str = "/v1/chat/completions";

    fn request(user: &str) -> Value {
        json!({
            "model": "mock-gpt",
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": user},
            ],
        })
    }

    /// Splits an SSE body into its `data:` payloads, checking the framing.
    fn sse_payloads(body: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.ends_with("\n\n"), "events end with a blank line");
        text.split_terminator("\n\n")
            .map(|event| event.strip_prefix("data: ").unwrap().to_owned())
            .collect()
    }

    async fn stream(state: &MockState, body: &Value, headers: &[(&str, &str)]) -> Vec<String> {
        let response = send(state, post_json(PATH, body, headers)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
        sse_payloads(&body_bytes(response).await)
    }

    #[tokio::test]
    async fn non_streaming_shape_and_usage() {
        let state = default_state();
        let response = send(&state, post_json(PATH, &request("Hello there mock world"), &[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(body["object"], "chat.completion");
        assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(body["model"], "mock-gpt");
        let choice = &body["choices"][0];
        assert_eq!(body["choices"].as_array().unwrap().len(), 1);
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["message"]["content"], "Mock reply to: Hello there mock world");
        assert_eq!(choice["finish_reason"], "stop");
        assert_eq!(choice["logprobs"], Value::Null);
        // 3 + 4 words, plus 3 per message; the reply has 7 words.
        assert_eq!(body["usage"]["prompt_tokens"], 13);
        assert_eq!(body["usage"]["completion_tokens"], 7);
        assert_eq!(body["usage"]["total_tokens"], 20);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    }

    #[tokio::test]
    async fn content_parts_and_forty_char_echo() {
        let state = default_state();
        let body = json!({
            "model": "mock-gpt-mini",
            "messages": [
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": null},
                {"role": "user", "content": [
                    {"type": "text", "text": "alpha beta"},
                    {"type": "image_url", "image_url": {"url": "data:,x"}},
                    {"type": "text", "text": "gamma"},
                ]},
            ],
        });
        let response = send(&state, post_json(PATH, &body, &[])).await;
        let body = body_json(response).await;
        assert_eq!(body["model"], "mock-gpt-mini");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Mock reply to: alpha beta gamma"
        );
        // 2 + 0 + 3 words, plus 3 per message.
        assert_eq!(body["usage"]["prompt_tokens"], 14);

        let long = "é".repeat(30) + &"x".repeat(30);
        let response = send(&state, post_json(PATH, &request(&long), &[])).await;
        let body = body_json(response).await;
        let expected = format!("Mock reply to: {}{}", "é".repeat(30), "x".repeat(10));
        assert_eq!(body["choices"][0]["message"]["content"], expected.as_str());
    }

    #[tokio::test]
    async fn stream_without_usage() {
        let state = default_state();
        let mut body = request("one two");
        body["stream"] = json!(true);
        let payloads = stream(&state, &body, &[]).await;
        // role, 5 words, finish, [DONE]
        assert_eq!(payloads.len(), 8);
        assert_eq!(payloads.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = payloads[..payloads.len() - 1]
            .iter()
            .map(|payload| serde_json::from_str(payload).unwrap())
            .collect();
        let id = chunks[0]["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-"));
        for chunk in &chunks {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["id"], id);
            assert_eq!(chunk["created"], chunks[0]["created"]);
            assert_eq!(chunk["model"], "mock-gpt");
            assert!(chunk.get("usage").is_none(), "no usage key: {chunk}");
        }
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        let words: Vec<&str> = chunks[1..6]
            .iter()
            .map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(words, ["Mock ", "reply ", "to: ", "one ", "two"]);
        for chunk in &chunks[..6] {
            assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
        }
        assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
        assert_eq!(state.stats().stream_requests, 1);
        assert_eq!(state.stats().chat_requests, 1);
    }

    #[tokio::test]
    async fn stream_with_usage() {
        let state = default_state();
        let mut body = request("one two");
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let payloads = stream(&state, &body, &[]).await;
        // role, 5 words, finish, usage, [DONE]
        assert_eq!(payloads.len(), 9);
        assert_eq!(payloads[8], "[DONE]");
        let chunks: Vec<Value> = payloads[..8]
            .iter()
            .map(|payload| serde_json::from_str(payload).unwrap())
            .collect();
        for chunk in &chunks[..7] {
            assert_eq!(chunk["usage"], Value::Null);
            assert!(chunk.get("usage").is_some(), "usage: null present");
        }
        assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
        let usage_chunk = &chunks[7];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 11);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
        assert_eq!(usage_chunk["usage"]["total_tokens"], 16);
    }

    #[tokio::test]
    async fn max_tokens_truncates() {
        let state = default_state();
        let mut body = request("a b c d e");
        body["max_tokens"] = json!(4);
        let response = send(&state, post_json(PATH, &body, &[])).await;
        let json = body_json(response).await;
        assert_eq!(json["choices"][0]["message"]["content"], "Mock reply to: a");
        assert_eq!(json["choices"][0]["finish_reason"], "length");
        assert_eq!(json["usage"]["completion_tokens"], 4);

        // The smaller of the two limits wins; a limit at the word count is no cut.
        let mut body = request("a b");
        body["max_tokens"] = json!(100);
        body["max_completion_tokens"] = json!(5);
        let json = body_json(send(&state, post_json(PATH, &body, &[])).await).await;
        assert_eq!(json["choices"][0]["finish_reason"], "stop");
        assert_eq!(json["usage"]["completion_tokens"], 5);

        let mut body = request("a b c");
        body["max_completion_tokens"] = json!(2);
        body["stream"] = json!(true);
        let payloads = stream(&state, &body, &[]).await;
        // role, 2 words, finish, [DONE]
        assert_eq!(payloads.len(), 5);
        let chunks: Vec<Value> = payloads[..4]
            .iter()
            .map(|payload| serde_json::from_str(payload).unwrap())
            .collect();
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Mock ");
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "reply");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");

        let mut body = request("a");
        body["max_tokens"] = json!(-1);
        let response = send(&state, post_json(PATH, &body, &[])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(response).await["error"]["param"], "max_tokens");
    }

    #[tokio::test]
    async fn scripted_429_via_header_and_metadata() {
        let state = default_state();
        let response = send(
            &state,
            post_json(
                PATH,
                &request("hi"),
                &[("x-mock-status", "429"), ("x-mock-retry-after", "7")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert!(body["error"]["message"].is_string());
        assert!(body["error"].get("param").is_some());

        let mut scripted = request("hi");
        scripted["metadata"] = json!({"mock_status": "429", "user": "abc"});
        let response = send(&state, post_json(PATH, &scripted, &[])).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(body_json(response).await["error"]["code"], "rate_limit_exceeded");

        // The header wins over metadata.
        let response = send(&state, post_json(PATH, &scripted, &[("x-mock-status", "502")])).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(body_json(response).await["error"]["type"], "server_error");

        let response = send(&state, post_json(PATH, &scripted, &[("x-mock-status", "403")])).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(body_json(response).await["error"]["type"], "invalid_request_error");
        assert_eq!(state.stats().errors_injected, 4);
    }

    #[tokio::test]
    async fn cut_after_aborts_the_stream() {
        let state = default_state();
        let mut body = request("one two three");
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let response = send(&state, post_json(PATH, &body, &[("x-mock-cut-after", "2")])).await;
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
        let payloads = sse_payloads(&seen);
        assert!(!payloads.iter().any(|payload| payload == "[DONE]"));
        // role chunk + exactly two content chunks, no finish or usage chunk.
        assert_eq!(payloads.len(), 3);
        assert!(!String::from_utf8_lossy(&seen).contains("finish_reason\":\"stop"));

        // Collecting the whole body fails too.
        let mut body = request("short");
        body["stream"] = json!(true);
        body["metadata"] = json!({"mock_cut_after": "99"});
        let response = send(&state, post_json(PATH, &body, &[])).await;
        assert!(response.into_body().collect().await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn latency_and_chunk_interval_are_applied() {
        let state = MockState::new(MockConfig {
            first_byte_latency: Duration::from_secs(2),
            ..MockConfig::default()
        });
        let start = tokio::time::Instant::now();
        let response = send(&state, post_json(PATH, &request("hi"), &[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(start.elapsed() >= Duration::from_secs(2));

        let start = tokio::time::Instant::now();
        let response = send(&state, post_json(PATH, &request("hi"), &[("x-mock-latency-ms", "0")])).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(start.elapsed() < Duration::from_secs(1));

        let mut body = request("one two");
        body["stream"] = json!(true);
        body["metadata"] = json!({"mock_latency_ms": "500", "mock_chunk_interval_ms": "100"});
        let start = tokio::time::Instant::now();
        let response = send(&state, post_json(PATH, &body, &[])).await;
        let headers_after = start.elapsed();
        assert!(headers_after >= Duration::from_millis(500));
        assert!(headers_after < Duration::from_millis(600));
        let payloads = sse_payloads(&body_bytes(response).await);
        assert_eq!(payloads.len(), 8);
        // 7 gaps between 8 events.
        assert!(start.elapsed() >= Duration::from_millis(500 + 700));
    }

    #[tokio::test]
    async fn error_rate_from_config_and_directive() {
        let state = MockState::new(MockConfig {
            error_rate: 1.0,
            error_status: 503,
            ..MockConfig::default()
        });
        let response = send(&state, post_json(PATH, &request("hi"), &[])).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-mock-injected"], "true");

        let response = send(&state, post_json(PATH, &request("hi"), &[("x-mock-error-rate", "0")])).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(state.stats().errors_injected, 1);

        let state = default_state();
        let response = send(&state, post_json(PATH, &request("hi"), &[("x-mock-error-rate", "1")])).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn scripted_reply() {
        let state = default_state();
        let mut body = request("ignored");
        body["metadata"] = json!({"mock_reply": "from metadata"});
        let json = body_json(send(&state, post_json(PATH, &body, &[("x-mock-reply", "exact  text here")])).await).await;
        assert_eq!(json["choices"][0]["message"]["content"], "exact  text here");
        assert_eq!(json["usage"]["completion_tokens"], 3);

        let json = body_json(send(&state, post_json(PATH, &body, &[])).await).await;
        assert_eq!(json["choices"][0]["message"]["content"], "from metadata");
    }

    #[tokio::test]
    async fn scripted_cached_tokens_are_capped_at_the_prompt() {
        let state = default_state();
        let mut body = request("hi");
        body["metadata"] = json!({"mock_cached_tokens": "4"});
        let json = body_json(send(&state, post_json(PATH, &body, &[])).await).await;
        assert_eq!(json["usage"]["prompt_tokens"], 10);
        assert_eq!(json["usage"]["prompt_tokens_details"]["cached_tokens"], 4);

        let response = send(
            &state,
            post_json(PATH, &request("hi"), &[("x-mock-cached-tokens", "99")]),
        )
        .await;
        let json = body_json(response).await;
        assert_eq!(json["usage"]["prompt_tokens_details"]["cached_tokens"], 10);
    }

    #[tokio::test]
    async fn malformed_requests_get_400_error_shape() {
        let state = default_state();
        let response = send(
            &state,
            axum::http::Request::post(PATH)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{\"model\": "))
                .unwrap(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response).await;
        let error = body["error"].as_object().unwrap();
        assert_eq!(error["type"], "invalid_request_error");
        assert!(error["message"].is_string());
        assert!(error.contains_key("param"));
        assert!(error.contains_key("code"));

        for (request, param) in [
            (json!({"messages": [{"role": "user", "content": "x"}]}), "model"),
            (json!({"model": "mock-gpt"}), "messages"),
            (json!({"model": "mock-gpt", "messages": []}), "messages"),
            (json!({"model": "mock-gpt", "messages": "hi"}), "messages"),
        ] {
            let response = send(&state, post_json(PATH, &request, &[])).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{request}");
            let body = body_json(response).await;
            assert_eq!(body["error"]["param"], param, "{request}");
            assert_eq!(body["error"]["type"], "invalid_request_error");
        }

        let response = send(&state, post_json(PATH, &request("hi"), &[("x-mock-status", "abc")])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(response).await["error"]["param"], "x-mock-status");
    }

    #[tokio::test]
    async fn unknown_model_is_404() {
        let state = default_state();
        let mut body = request("hi");
        body["model"] = json!("gpt-4o");
        let response = send(&state, post_json(PATH, &body, &[])).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "model");
    }

    #[test]
    fn segments_round_trip() {
        assert_eq!(segments("a b  c"), ["a ", "b  ", "c"]);
        assert_eq!(segments("  lead\ttab "), ["  lead\t", "tab "]);
        assert!(segments("   ").is_empty());
        assert!(segments("").is_empty());
        let text = "Mock reply to: héllo\nworld";
        assert_eq!(segments(text).concat(), text);
        assert_eq!(segments(text).len(), text.split_whitespace().count());
    }
}
