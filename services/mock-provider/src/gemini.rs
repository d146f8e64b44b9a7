//! `POST /v1beta/models/{model}:{method}`: Google's Gemini API.
//!
//! The router's Gemini adapter translates requests into `contents` of
//! `parts`, reads `candidates` back and parses the SSE stream of
//! `streamGenerateContent`; the mock speaks that dialect as Google documents
//! it, written independently of the adapter: `x-goog-api-key` (or `?key=`)
//! authentication, `contents` / `systemInstruction` / `generationConfig` /
//! `tools[].functionDeclarations` requests (camelCase or snake_case field
//! names, as the REST API accepts both), `GenerateContentResponse` answers
//! with `functionCall` parts for scripted tool calls, `data:` SSE events
//! separated by CRLF blank lines (as Google's servers send them) whose last
//! one carries `finishReason` and `usageMetadata`, `batchEmbedContents`, and
//! `{"error":{code,message,status}}` failures. Content and usage follow the
//! shared rules of the `answer` module.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::MockState;
use crate::answer::{Answer, Prompt, Stop, ToolDecl, Usage};
use crate::dialect_error::{Dialect, DialectError, gemini_status, injected_message};
use crate::embeddings::{Input, embed};
use crate::script::{Directives, injected_failure};
use crate::stats::Counters;
use crate::stream_body::{Ending, EventList};

const DIALECT: Dialect = Dialect::Gemini;
/// The header carrying the API key (any non-empty value is accepted).
const API_KEY: &str = "x-goog-api-key";
/// In-stream error status when `x-mock-stream-error-status` is not given.
const DEFAULT_STREAM_ERROR_STATUS: u16 = 503;
/// Largest `outputDimensionality` a request may ask for.
const MAX_DIMENSIONS: u64 = 65_536;

/// `POST /v1beta/models/{model}:{method}`.
pub(crate) async fn model_call(
    State(state): State<MockState>,
    Path(call): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.gemini_requests);
    counters.record_headers(&headers);
    let query = Query::parse(query.as_deref());
    match handle(&state, &call, &query, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// The query parameters the mock looks at.
#[derive(Debug, Default)]
struct Query {
    alt_sse: bool,
    has_key: bool,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut parsed = Self::default();
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "alt" => parsed.alt_sse = value == "sse",
                "key" => parsed.has_key = !value.is_empty(),
                _ => {}
            }
        }
        parsed
    }
}

/// The methods the mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Generate,
    StreamGenerate,
    BatchEmbed,
}

async fn handle(
    state: &MockState,
    call: &str,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, DialectError> {
    let has_header_key = headers.get(API_KEY).is_some_and(|key| !key.is_empty());
    if !has_header_key && !query.has_key {
        return Err(DialectError::new(
            DIALECT,
            StatusCode::FORBIDDEN,
            "The request is missing an API key: send it in x-goog-api-key or ?key= (the OneFlow mock accepts any key).",
        ));
    }
    let (model, method) = match call.rsplit_once(':') {
        Some((model, "generateContent")) => (model, Method::Generate),
        Some((model, "streamGenerateContent")) => (model, Method::StreamGenerate),
        Some((model, "batchEmbedContents")) => (model, Method::BatchEmbed),
        _ => {
            return Err(DialectError::new(
                DIALECT,
                StatusCode::NOT_FOUND,
                format!(
                    "models/{call} is not served by the OneFlow mock (generateContent, streamGenerateContent and batchEmbedContents are)."
                ),
            ));
        }
    };
    if method == Method::StreamGenerate {
        Counters::bump(&state.counters().stream_requests);
        if !query.alt_sse {
            return Err(DialectError::bad_request(
                DIALECT,
                "The OneFlow mock streams only as server-sent events: add ?alt=sse.",
            ));
        }
    }
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return Err(DialectError::bad_request(
                DIALECT,
                "The request body must be a JSON object.",
            ));
        }
        Err(err) => {
            return Err(DialectError::bad_request(
                DIALECT,
                format!("Invalid JSON payload received. {err}"),
            ));
        }
    };
    let metadata = ["labels", "metadata"]
        .iter()
        .find_map(|key| request.get(*key).and_then(Value::as_object));
    let directives = Directives::read(headers, metadata).map_err(|err| DialectError::script(DIALECT, &err))?;
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(DialectError::injected(DIALECT, &injection));
    }

    match method {
        Method::Generate | Method::StreamGenerate => {
            let parsed = Parsed::from_request(&request)?;
            check_model(state, model)?;
            let answer = Answer::plan(parsed.prompt, &directives, parsed.max_tokens, &parsed.tools, "")
                .map_err(|err| DialectError::bad_request(DIALECT, err.message()))?;
            let response_id = uuid::Uuid::new_v4().simple().to_string();
            if method == Method::Generate {
                return Ok(Json(full_response(&answer, model, &response_id)).into_response());
            }
            if directives.stream_error_after.is_some() {
                Counters::bump(&state.counters().errors_injected);
            }
            let error = directives.stream_error_after.map(|after| {
                let status = directives.stream_error_status.unwrap_or(DEFAULT_STREAM_ERROR_STATUS);
                let body = json!({"error": {"code": status, "message": injected_message(status), "status": gemini_status(status)}});
                (after, sse(&body))
            });
            let ending = Ending {
                cut_after: directives.cut_after,
                error,
            };
            let interval = directives.chunk_interval.unwrap_or(state.config().chunk_interval);
            Ok((
                [(CONTENT_TYPE, "text/event-stream"), (CACHE_CONTROL, "no-cache")],
                stream_events(&answer, model, &response_id).into_body(interval, ending),
            )
                .into_response())
        }
        Method::BatchEmbed => batch_embed(state, model, &request),
    }
}

fn check_model(state: &MockState, model: &str) -> Result<(), DialectError> {
    if state.accepts_dialect_model(model) {
        Ok(())
    } else {
        Err(DialectError::new(
            DIALECT,
            StatusCode::NOT_FOUND,
            format!("models/{model} is not found for API version v1beta."),
        ))
    }
}

/// A field under its camelCase name or, failing that, its snake_case one.
fn field<'a>(object: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake))
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> DialectError {
    DialectError::bad_request(DIALECT, message)
}

/// The parts of a valid `generateContent` request the answer needs.
struct Parsed<'a> {
    max_tokens: Option<u64>,
    prompt: Prompt<'a>,
    tools: Vec<ToolDecl<'a>>,
}

impl<'a> Parsed<'a> {
    fn from_request(request: &'a Value) -> Result<Self, DialectError> {
        let mut prompt = Prompt::default();
        if let Some(system) = field(request, "systemInstruction", "system_instruction") {
            let texts = part_texts(system, "systemInstruction")?;
            prompt.add_message(false, texts);
        }
        let contents = match request.get("contents") {
            Some(Value::Array(contents)) if !contents.is_empty() => contents,
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                return Err(invalid("* GenerateContentRequest.contents: contents is not specified"));
            }
            Some(_) => return Err(invalid("contents: must be an array of Content")),
        };
        for (index, content) in contents.iter().enumerate() {
            let from_user = match content.get("role") {
                None | Some(Value::Null) => true,
                Some(Value::String(role)) if role == "user" => true,
                Some(Value::String(role)) if role == "model" => false,
                Some(_) => {
                    return Err(invalid(format!(
                        "contents.{index}.role: Please use a valid role: user, model."
                    )));
                }
            };
            let texts = part_texts(content, &format!("contents.{index}"))?;
            prompt.add_message(from_user, texts);
        }

        let config = field(request, "generationConfig", "generation_config");
        let max_tokens = match config.and_then(|config| field(config, "maxOutputTokens", "max_output_tokens")) {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .ok_or_else(|| invalid("generationConfig.maxOutputTokens: must be a non-negative integer"))?,
            ),
        };

        let mut tools = Vec::new();
        match request.get("tools") {
            None | Some(Value::Null) => {}
            Some(Value::Array(entries)) => {
                for (index, entry) in entries.iter().enumerate() {
                    let declarations = match field(entry, "functionDeclarations", "function_declarations") {
                        None => continue,
                        Some(Value::Array(declarations)) => declarations,
                        Some(_) => {
                            return Err(invalid(format!("tools.{index}.functionDeclarations: must be an array")));
                        }
                    };
                    for (decl_index, declaration) in declarations.iter().enumerate() {
                        let Some(name) = declaration
                            .get("name")
                            .and_then(Value::as_str)
                            .filter(|name| !name.is_empty())
                        else {
                            return Err(invalid(format!(
                                "tools.{index}.functionDeclarations.{decl_index}.name: is required"
                            )));
                        };
                        let schema = declaration
                            .get("parameters")
                            .or_else(|| field(declaration, "parametersJsonSchema", "parameters_json_schema"));
                        tools.push(ToolDecl { name, schema });
                    }
                }
            }
            Some(_) => return Err(invalid("tools: must be an array of Tool")),
        }
        Ok(Self {
            max_tokens,
            prompt,
            tools,
        })
    }
}

/// The `text` of every part of a `Content`; checks `parts` is a non-empty
/// array of objects (inline data, function calls and responses count no
/// words).
fn part_texts<'a>(content: &'a Value, at: &str) -> Result<Vec<&'a str>, DialectError> {
    let parts = match content.get("parts") {
        Some(Value::Array(parts)) if !parts.is_empty() => parts,
        _ => return Err(invalid(format!("{at}.parts: must not be empty"))),
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let Some(part) = part.as_object() else {
            return Err(invalid(format!("{at}.parts.{index}: must be a Part object")));
        };
        match part.get("text") {
            None => {}
            Some(Value::String(text)) => texts.push(text.as_str()),
            Some(_) => return Err(invalid(format!("{at}.parts.{index}.text: must be a string"))),
        }
    }
    Ok(texts)
}

fn finish_reason(stop: Stop) -> &'static str {
    match stop {
        // Gemini reports a function call as a normal stop.
        Stop::EndTurn | Stop::ToolUse => "STOP",
        Stop::MaxTokens => "MAX_TOKENS",
    }
}

/// `usageMetadata`: `promptTokenCount` includes the cached tokens, which
/// `cachedContentTokenCount` reports (only when there are some).
fn usage_metadata(usage: &Usage) -> Value {
    let mut fields = Map::new();
    fields.insert("promptTokenCount".to_owned(), usage.prompt.into());
    fields.insert("candidatesTokenCount".to_owned(), usage.completion.into());
    fields.insert(
        "totalTokenCount".to_owned(),
        usage.prompt.saturating_add(usage.completion).into(),
    );
    if usage.cached > 0 {
        fields.insert("cachedContentTokenCount".to_owned(), usage.cached.into());
    }
    Value::Object(fields)
}

/// A `GenerateContentResponse` with one candidate made of `parts`.
fn response(parts: Vec<Value>, finish: Option<(Stop, &Usage)>, model: &str, response_id: &str) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    let mut body = json!({"candidates": [], "modelVersion": model, "responseId": response_id});
    if let Some((stop, usage)) = finish {
        candidate["finishReason"] = json!(finish_reason(stop));
        body["usageMetadata"] = usage_metadata(usage);
    }
    body["candidates"] = json!([candidate]);
    body
}

fn function_call(answer: &Answer) -> Option<Value> {
    answer
        .tool_call
        .as_ref()
        .map(|call| json!({"functionCall": {"name": call.name, "args": call.input}}))
}

/// The `generateContent` answer.
fn full_response(answer: &Answer, model: &str, response_id: &str) -> Value {
    let mut parts = Vec::with_capacity(2);
    if let Some(text) = &answer.text {
        parts.push(json!({"text": text}));
    }
    parts.extend(function_call(answer));
    response(parts, Some((answer.stop, &answer.usage)), model, response_id)
}

/// Renders one SSE event the way Google's servers do.
fn sse(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\r\n\r\n"))
}

/// Every event of a complete stream: one chunk per word, one with the whole
/// function call, then a closing chunk with an empty text part, the
/// `finishReason` and `usageMetadata`.
fn stream_events(answer: &Answer, model: &str, response_id: &str) -> EventList {
    let mut events = EventList::default();
    for chunk in answer.text_chunks() {
        events.push_content(sse(&response(vec![json!({"text": chunk})], None, model, response_id)));
    }
    if let Some(call) = function_call(answer) {
        events.push_content(sse(&response(vec![call], None, model, response_id)));
    }
    events.push(sse(&response(
        vec![json!({"text": ""})],
        Some((answer.stop, &answer.usage)),
        model,
        response_id,
    )));
    events
}

/// `:batchEmbedContents`: one vector per request, the same vector the OpenAI
/// embeddings path gives for the request's text (its text parts joined by a
/// space).
fn batch_embed(state: &MockState, model: &str, request: &Value) -> Result<Response, DialectError> {
    let requests = match request.get("requests") {
        Some(Value::Array(requests)) if !requests.is_empty() => requests,
        _ => {
            return Err(invalid(
                "* BatchEmbedContentsRequest.requests: requests is not specified",
            ));
        }
    };
    let expected_model = format!("models/{model}");
    let mut embeddings = Vec::with_capacity(requests.len());
    for (index, item) in requests.iter().enumerate() {
        match item.get("model") {
            None | Some(Value::Null) => {}
            Some(Value::String(name)) if *name == expected_model => {}
            Some(_) => {
                return Err(invalid(format!(
                    "requests.{index}.model: must be {expected_model}, the model of the batch"
                )));
            }
        }
        let Some(content) = item.get("content") else {
            return Err(invalid(format!("requests.{index}.content: is required")));
        };
        let text = part_texts(content, &format!("requests.{index}.content"))?.join(" ");
        let dimensions = match field(item, "outputDimensionality", "output_dimensionality") {
            None | Some(Value::Null) => state.config().embedding_dimensions,
            Some(value) => match value.as_u64() {
                Some(dims @ 1..=MAX_DIMENSIONS) => usize::try_from(dims)
                    .map_err(|_| invalid(format!("requests.{index}.outputDimensionality: is too large")))?,
                _ => {
                    return Err(invalid(format!(
                        "requests.{index}.outputDimensionality: must be between 1 and {MAX_DIMENSIONS}"
                    )));
                }
            },
        };
        embeddings.push(ContentEmbedding {
            values: embed(&Input::Text(&text), dimensions),
        });
    }
    check_model(state, model)?;
    Ok(Json(BatchEmbedResponse { embeddings }).into_response())
}

/// `BatchEmbedContentsResponse`, typed so the `f32` values print as the
/// OpenAI path prints them (through `json!` they would be widened first).
#[derive(Serialize)]
struct BatchEmbedResponse {
    embeddings: Vec<ContentEmbedding>,
}

#[derive(Serialize)]
struct ContentEmbedding {
    values: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use crate::test_util::{body_bytes, body_json, default_state, post_json, send};
    use crate::{MockConfig, MockState};

    const KEY: (&str, &str) = ("x-goog-api-key", "AIza-test");
    const GENERATE: &str = "/v1beta/models/gemini-mock:generateContent";
    const STREAM: &str = "/v1beta/models/gemini-mock:streamGenerateContent?alt=sse";

    fn request(user: &str) -> Value {
        json!({
            "systemInstruction": {"parts": [{"text": "You are helpful."}]},
            "contents": [{"role": "user", "parts": [{"text": user}]}],
        })
    }

    fn with_tools(mut body: Value) -> Value {
        body["tools"] = json!([{"functionDeclarations": [{
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
        }]}]);
        body
    }

    async fn call(state: &MockState, path: &str, body: &Value, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut headers = vec![KEY];
        headers.extend_from_slice(extra);
        let response = send(state, post_json(path, body, &headers)).await;
        let status = response.status();
        (status, body_json(response).await)
    }

    /// Parses a Gemini SSE body: every event is one `data:` line ended by a
    /// CRLF blank line.
    fn chunks(body: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.ends_with("\r\n\r\n"), "events end with a CRLF blank line");
        text.split_terminator("\r\n\r\n")
            .map(|event| {
                assert!(!event.contains('\n'), "{event}");
                serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap()
            })
            .collect()
    }

    async fn stream(state: &MockState, body: &Value, extra: &[(&str, &str)]) -> Vec<Value> {
        let mut headers = vec![KEY];
        headers.extend_from_slice(extra);
        let response = send(state, post_json(STREAM, body, &headers)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        chunks(&body_bytes(response).await)
    }

    #[tokio::test]
    async fn generate_content_shape_and_usage() {
        let state = default_state();
        let (status, body) = call(&state, GENERATE, &request("Hello there mock world"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        let candidate = &body["candidates"][0];
        assert_eq!(body["candidates"].as_array().unwrap().len(), 1);
        assert_eq!(
            candidate["content"],
            json!({"parts": [{"text": "Mock reply to: Hello there mock world"}], "role": "model"})
        );
        assert_eq!(candidate["finishReason"], "STOP");
        assert_eq!(candidate["index"], 0);
        assert_eq!(
            body["usageMetadata"],
            json!({"promptTokenCount": 13, "candidatesTokenCount": 7, "totalTokenCount": 20})
        );
        assert_eq!(body["modelVersion"], "gemini-mock");
        assert!(!body["responseId"].as_str().unwrap().is_empty());
        let stats = state.stats();
        assert_eq!(stats.gemini_requests, 1);
        assert_eq!(stats.stream_requests, 0);
    }

    #[tokio::test]
    async fn snake_case_fields_max_tokens_cache_and_key_query() {
        let state = default_state();
        let body = json!({
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "first"}]},
                {"role": "model", "parts": [{"text": "ok"}]},
                {"parts": [{"text": "a b c"}, {"inline_data": {"mime_type": "image/png", "data": "AA=="}}]},
            ],
            "generation_config": {"max_output_tokens": 4},
            "labels": {"mock_cached_tokens": "2"},
        });
        let response = send(&state, post_json(&format!("{GENERATE}?key=abc"), &body, &[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["candidates"][0]["content"]["parts"][0]["text"], "Mock reply to: a");
        assert_eq!(body["candidates"][0]["finishReason"], "MAX_TOKENS");
        // (2 + 3) + (1 + 3) + (1 + 3) + (3 + 3) = 19.
        assert_eq!(
            body["usageMetadata"],
            json!({"promptTokenCount": 19, "candidatesTokenCount": 4, "totalTokenCount": 23, "cachedContentTokenCount": 2})
        );
    }

    #[tokio::test]
    async fn missing_key_bad_requests_and_unknown_methods() {
        let state = default_state();
        let response = send(&state, post_json(GENERATE, &request("x"), &[])).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], 403);
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");

        let cases = [
            json!({}),
            json!({"contents": []}),
            json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}),
            json!({"contents": [{"role": "user", "parts": []}]}),
            json!({"contents": [{"role": "user", "parts": [{"text": 1}]}]}),
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": "many"}}),
            json!({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{}]}]}),
        ];
        for body in cases {
            let (status, error) = call(&state, GENERATE, &body, &[]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error["error"]["status"], "INVALID_ARGUMENT", "{body}");
            assert_eq!(error["error"]["code"], 400);
        }

        let (status, error) = call(&state, "/v1beta/models/gemini-mock:countTokens", &request("x"), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["error"]["status"], "NOT_FOUND");
        let (status, _) = call(
            &state,
            "/v1beta/models/gemini-mock:streamGenerateContent",
            &request("x"),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let state = MockState::new(MockConfig {
            dialect_models: vec!["gemini-mock".to_owned()],
            ..MockConfig::default()
        });
        let (status, _) = call(&state, GENERATE, &request("x"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        let (status, error) = call(&state, "/v1beta/models/gemini-nope:generateContent", &request("x"), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("models/gemini-nope")
        );
    }

    #[tokio::test]
    async fn stream_chunks_end_with_finish_and_usage() {
        let state = default_state();
        let chunks = stream(&state, &request("one two"), &[]).await;
        // 5 words, then the closing chunk.
        assert_eq!(chunks.len(), 6);
        let text: String = chunks[..5]
            .iter()
            .map(|chunk| {
                let candidate = &chunk["candidates"][0];
                assert_eq!(candidate["content"]["role"], "model");
                assert!(candidate.get("finishReason").is_none());
                assert!(chunk.get("usageMetadata").is_none());
                assert_eq!(chunk["responseId"], chunks[0]["responseId"]);
                candidate["content"]["parts"][0]["text"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(text, "Mock reply to: one two");
        let last = &chunks[5];
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["candidates"][0]["content"]["parts"], json!([{"text": ""}]));
        assert_eq!(
            last["usageMetadata"],
            json!({"promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16})
        );
        assert_eq!(state.stats().stream_requests, 1);
    }

    #[tokio::test]
    async fn function_calls_plain_and_streamed() {
        let state = default_state();
        let body = with_tools(request("weather?"));
        let (status, plain) = call(&state, GENERATE, &body, &[("x-mock-tool-call", "get_weather")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            plain["candidates"][0]["content"]["parts"],
            json!([{"functionCall": {"name": "get_weather", "args": {"city": "mock"}}}])
        );
        assert_eq!(plain["candidates"][0]["finishReason"], "STOP");
        assert_eq!(plain["usageMetadata"]["candidatesTokenCount"], 2);

        let chunks = stream(&state, &body, &[("x-mock-tool-call", "*"), ("x-mock-reply", "On it.")]).await;
        assert_eq!(chunks.len(), 4);
        assert_eq!(chunks[0]["candidates"][0]["content"]["parts"][0]["text"], "On ");
        assert_eq!(chunks[1]["candidates"][0]["content"]["parts"][0]["text"], "it.");
        assert_eq!(
            chunks[2]["candidates"][0]["content"]["parts"][0]["functionCall"],
            json!({"name": "get_weather", "args": {"city": "mock"}})
        );
        assert_eq!(chunks[3]["usageMetadata"]["candidatesTokenCount"], 2 + 2);

        let (status, error) = call(&state, GENERATE, &body, &[("x-mock-tool-call", "nope")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    }

    #[tokio::test]
    async fn scripted_errors_http_and_in_stream() {
        let state = default_state();
        let (status, body) = call(&state, GENERATE, &request("x"), &[("x-mock-status", "429")]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert!(body["error"]["message"].is_string());

        let chunks = stream(&state, &request("one two three"), &[("x-mock-stream-error-after", "2")]).await;
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[2]["error"]["code"], 503);
        assert_eq!(chunks[2]["error"]["status"], "UNAVAILABLE");
        assert!(chunks.iter().all(|chunk| chunk.get("usageMetadata").is_none()));
        assert_eq!(state.stats().errors_injected, 2);
    }

    #[tokio::test]
    async fn cut_stream_ends_without_finish_chunk() {
        let state = default_state();
        let response = send(
            &state,
            post_json(STREAM, &request("one two three"), &[KEY, ("x-mock-cut-after", "2")]),
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
        let chunks = chunks(&seen);
        assert_eq!(chunks.len(), 2);
        assert!(
            chunks
                .iter()
                .all(|chunk| chunk["candidates"][0].get("finishReason").is_none())
        );
    }

    #[tokio::test]
    async fn batch_embed_matches_the_openai_vectors() {
        let state = default_state();
        let path = "/v1beta/models/embed-mock:batchEmbedContents";
        let body = json!({"requests": [
            {"model": "models/embed-mock", "content": {"parts": [{"text": "the quick brown fox"}]}},
            {"model": "models/embed-mock", "content": {"parts": [{"text": "other"}]}, "outputDimensionality": 4},
        ]});
        let (status, gemini) = call(&state, path, &body, &[]).await;
        assert_eq!(status, StatusCode::OK);
        let embeddings = gemini["embeddings"].as_array().unwrap();
        assert_eq!(embeddings.len(), 2);
        assert_eq!(embeddings[1]["values"].as_array().unwrap().len(), 4);

        let openai = body_json(
            send(
                &state,
                post_json(
                    "/v1/embeddings",
                    &json!({"model": "mock-embed", "input": "the quick brown fox"}),
                    &[],
                ),
            )
            .await,
        )
        .await;
        assert_eq!(embeddings[0]["values"], openai["data"][0]["embedding"]);

        let bad = json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]});
        let (status, error) = call(&state, path, &bad, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
        let (status, _) = call(&state, path, &json!({"requests": []}), &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(state.stats().gemini_requests, 3);
    }
}
