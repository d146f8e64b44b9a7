//! `POST /v1/chat/completions` and `POST /v1/embeddings`: validate, reserve the
//! worst case with billing, call the router, relay the answer (streams as SSE
//! bytes), and settle the real usage — also when the client hangs up or the
//! upstream breaks off mid-stream.
use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oneflow_proto::billing::v1 as billing;
use oneflow_proto::common::v1::{Operation, Usage};
use oneflow_proto::router::v1 as pb;
use oneflow_proto::router::v1::chat_stream_event::Event;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::principal::Principal;
use crate::settle::{Pending, Settlement};
use crate::state::AppState;

/// Turns a body extraction failure into the OpenAI error (413 for too large).
pub(crate) fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "invalid_request_error",
                "Request body is larger than the allowed limit.",
            )
            .code("request_too_large")
        } else {
            ApiError::invalid("Could not read the request body.")
        }
    })
}

pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("The request body must be a JSON object.")),
        Err(e) => Err(ApiError::invalid(format!(
            "We could not parse the JSON body of your request ({e}). The OpenAI API expects a JSON payload."
        ))),
    }
}

pub(crate) fn string_field(map: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(ApiError::invalid(format!("you must provide a {name} parameter")).param(name)),
        Some(_) => Err(ApiError::invalid(format!("`{name}` must be a non-empty string")).param(name)),
    }
}

fn count_field(map: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("`{name}` must be a non-negative integer")).param(name)),
    }
}

pub(crate) fn require_inference(p: &Principal) -> Result<(), ApiError> {
    if p.inference {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "This API key lacks the `inference` scope.",
        )
        .code("insufficient_scope"))
    }
}

pub(crate) fn client_request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn bytes_len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(crate) async fn authorize(
    state: &AppState,
    principal: &Principal,
    billing_id: &str,
    model: &str,
    operation: Operation,
    worst_case: Usage,
) -> Result<Option<billing::RateLimitStatus>, ApiError> {
    let mut client = state.clients.billing.clone();
    let answer = client
        .authorize(state.clients.billing_request(billing::AuthorizeRequest {
            request_id: billing_id.to_owned(),
            user_id: principal.user_id.clone(),
            key_id: principal.key_id.clone(),
            model: model.to_owned(),
            operation: operation.into(),
            worst_case: Some(worst_case),
            key_limits: principal.limits.clone(),
        }))
        .await
        .map_err(|s| ApiError::from_status(&s))?;
    Ok(answer.into_inner().requests)
}

/// Adds `X-RateLimit-*` (the key's first request window) to whatever the
/// request ended with.
pub(crate) fn with_rate_headers(
    outcome: Result<Response, ApiError>,
    window: Option<&billing::RateLimitStatus>,
) -> Response {
    let mut resp = outcome.unwrap_or_else(IntoResponse::into_response);
    if let Some(w) = window {
        let h = resp.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", w.limit),
            ("x-ratelimit-remaining", w.remaining),
            ("x-ratelimit-reset", w.reset_millis.div_ceil(1000)),
        ] {
            h.insert(name, HeaderValue::from(value));
        }
    }
    resp
}

/// Whether the client opted in to the response cache (`x-oneflow-cache: use`).
fn wants_cache(headers: &HeaderMap) -> bool {
    headers
        .get("x-oneflow-cache")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("use"))
}

pub(crate) fn route_headers(resp: &mut Response, route: Option<&pb::Route>, request_id: &str) {
    let headers = resp.headers_mut();
    if let Some(r) = route {
        for (name, value) in [
            ("x-oneflow-provider", &r.provider),
            ("x-oneflow-deployment", &r.deployment),
            ("x-oneflow-variant", &r.variant),
        ] {
            if !value.is_empty()
                && let Ok(v) = HeaderValue::from_str(value)
            {
                headers.insert(name, v);
            }
        }
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-oneflow-billing-id", v);
    }
}

fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// What a unary router call returns: the route, the body, the usage.
type UnaryAnswer = (Option<pb::Route>, Vec<u8>, Option<Usage>);

/// Settles a unary call and turns it into the client's response.
fn finish_unary(
    mut pending: Pending,
    call: Result<UnaryAnswer, tonic::Status>,
    billing_id: &str,
    cache_requested: bool,
) -> Result<Response, ApiError> {
    match call {
        Ok((route, body, usage)) => {
            if let Some(r) = &route {
                pending.route(&r.provider, &r.deployment);
            }
            if route.as_ref().is_some_and(|r| r.cache_hit) {
                pending.exact_usage(usage.unwrap_or_default());
            } else {
                pending.usage(usage.unwrap_or_default());
            }
            pending.finish();
            let mut out = json_response(body);
            route_headers(&mut out, route.as_ref(), billing_id);
            if cache_requested {
                let hit = route.as_ref().is_some_and(|r| r.cache_hit);
                out.headers_mut().insert(
                    "x-oneflow-cache",
                    HeaderValue::from_static(if hit { "hit" } else { "miss" }),
                );
            }
            Ok(out)
        }
        Err(status) => {
            let err = ApiError::from_status(&status);
            pending.status(err.status.as_u16());
            pending.finish();
            Err(err)
        }
    }
}

/// `POST /v1/chat/completions`
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, key = %principal.key_prefix, model, billing_id))]
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_inference(&principal)?;
    let body = body_or_error(body)?;
    let map = parse_object(&body)?;
    let model = string_field(&map, "model")?;
    match map.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        _ => return Err(ApiError::invalid("`messages` must be a non-empty array").param("messages")),
    }
    let stream = match map.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("`stream` must be a boolean").param("stream")),
    };
    let max_out = match count_field(&map, "max_completion_tokens")? {
        Some(v) => Some(v),
        None => count_field(&map, "max_tokens")?,
    };
    let n = count_field(&map, "n")?.unwrap_or(1).max(1);
    let info = state.models.get(&state, &model).await?;
    let billing_id = uuid::Uuid::now_v7().to_string();
    let span = tracing::Span::current();
    span.record("model", model.as_str());
    span.record("billing_id", billing_id.as_str());

    // Worst case: every byte of the body a token (no tokenizer yields more
    // tokens than bytes), and the whole output allowance for each choice.
    let worst = Usage {
        input_tokens: bytes_len(body.len()),
        output_tokens: max_out.unwrap_or(info.max_output_tokens).saturating_mul(n),
        ..Usage::default()
    };
    let window = authorize(&state, &principal, &billing_id, &model, Operation::Chat, worst).await?;
    let outcome: Result<Response, ApiError> = async move {
        let input_estimate = bytes_len(body.len()).div_ceil(4);
        let mut pending = Pending::new(
            &state.settler,
            Settlement::new(&billing_id, &principal, &model, Operation::Chat)
                .with_client_request_id(client_request_id(&headers)),
            input_estimate,
        );
        let cache = !stream && wants_cache(&headers);
        let request = pb::ChatRequest {
            meta: Some(pb::RequestMeta {
                request_id: client_request_id(&headers),
                user_id: principal.user_id.clone(),
                key_id: principal.key_id.clone(),
                cache,
            }),
            body: body.to_vec(),
        };
        let mut router = state.clients.router.clone();
        if !stream {
            let call = router.chat_completion(state.clients.router_request(request)).await;
            return finish_unary(
                pending,
                call.map(|r| {
                    let r = r.into_inner();
                    (r.route, r.body, r.usage)
                }),
                &billing_id,
                cache,
            );
        }

        let mut upstream = match router.stream_chat_completion(request).await {
            Ok(s) => s.into_inner(),
            Err(status) => {
                let err = ApiError::from_status(&status);
                pending.status(err.status.as_u16());
                return Err(err);
            }
        };
        // The route comes first; anything else before it is a broken stream.
        let route = match upstream.message().await {
            Ok(Some(pb::ChatStreamEvent {
                event: Some(Event::Route(r)),
            })) => r,
            Ok(_) => {
                pending.status(502);
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    "The upstream stream ended before it began.",
                ));
            }
            Err(status) => {
                let err = ApiError::from_status(&status);
                pending.status(err.status.as_u16());
                return Err(err);
            }
        };
        pending.route(&route.provider, &route.deployment);
        let relay = SseRelay {
            upstream,
            pending: Some(pending),
            finished: false,
        };
        let body_stream = futures::stream::unfold(relay, |mut relay| async move {
            let frame = relay.next_frame().await?;
            Some((Ok::<_, Infallible>(frame), relay))
        });
        let mut out = Response::new(Body::from_stream(futures::StreamExt::fuse(body_stream)));
        let h = out.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        route_headers(&mut out, Some(&route), &billing_id);
        Ok(out)
    }
    .await;
    Ok(with_rate_headers(outcome, window.as_ref()))
}

/// Relays router events as SSE frames; the pending settlement rides along and
/// settles when the relay is dropped (stream done, client gone, or cut).
struct SseRelay {
    upstream: tonic::Streaming<pb::ChatStreamEvent>,
    pending: Option<Pending>,
    finished: bool,
}

impl SseRelay {
    /// The next SSE frame for the client, or `None` when the body is complete.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        loop {
            let event = match self.upstream.message().await {
                Ok(Some(pb::ChatStreamEvent { event: Some(e) })) => e,
                Ok(Some(pb::ChatStreamEvent { event: None })) => continue,
                Ok(None) => {
                    self.finished = true;
                    if let Some(p) = self.pending.take() {
                        p.finish();
                    }
                    return Some(Bytes::from_static(b"data: [DONE]\n\n"));
                }
                Err(status) => {
                    self.finished = true;
                    self.set_status(502);
                    let err = ApiError::from_status(&status);
                    return Some(sse_error(&err));
                }
            };
            match event {
                Event::Data(data) => {
                    if let Some(p) = self.pending.as_mut() {
                        p.chunks += 1;
                    }
                    let mut frame = Vec::with_capacity(data.len() + 8);
                    frame.extend_from_slice(b"data: ");
                    frame.extend_from_slice(&data);
                    frame.extend_from_slice(b"\n\n");
                    return Some(Bytes::from(frame));
                }
                Event::Usage(usage) => {
                    if let Some(p) = self.pending.as_mut() {
                        p.usage(usage);
                    }
                }
                Event::Error(e) => {
                    self.finished = true;
                    self.set_status(502);
                    let info = e.info.unwrap_or_default();
                    let err = ApiError::new(StatusCode::BAD_GATEWAY, "server_error", e.message).code(
                        if info.code.is_empty() {
                            "upstream_error".to_owned()
                        } else {
                            info.code
                        },
                    );
                    return Some(sse_error(&err));
                }
                Event::Route(_) => {}
            }
        }
    }

    fn set_status(&mut self, status: u16) {
        if let Some(p) = self.pending.as_mut() {
            p.status(status);
        }
    }
}

fn sse_error(err: &ApiError) -> Bytes {
    Bytes::from(format!("data: {}\n\n", err.to_json()))
}

/// `POST /v1/embeddings`
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, key = %principal.key_prefix))]
pub async fn embeddings(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_inference(&principal)?;
    let body = body_or_error(body)?;
    let map = parse_object(&body)?;
    let model = string_field(&map, "model")?;
    match map.get("input") {
        Some(Value::String(_) | Value::Array(_)) => {}
        _ => return Err(ApiError::invalid("`input` must be a string or an array").param("input")),
    }
    match map.get("encoding_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "float" || f == "base64" => {}
        Some(_) => {
            return Err(ApiError::invalid("`encoding_format` must be `float` or `base64`").param("encoding_format"));
        }
    }
    state.models.get(&state, &model).await?;
    let billing_id = uuid::Uuid::now_v7().to_string();
    let worst = Usage {
        input_tokens: bytes_len(body.len()),
        ..Usage::default()
    };
    let window = authorize(&state, &principal, &billing_id, &model, Operation::Embeddings, worst).await?;
    let outcome: Result<Response, ApiError> = async move {
        let pending = Pending::new(
            &state.settler,
            Settlement::new(&billing_id, &principal, &model, Operation::Embeddings)
                .with_client_request_id(client_request_id(&headers)),
            bytes_len(body.len()).div_ceil(4),
        );
        let mut router = state.clients.router.clone();
        let request = pb::EmbeddingsRequest {
            meta: Some(pb::RequestMeta {
                request_id: client_request_id(&headers),
                user_id: principal.user_id.clone(),
                key_id: principal.key_id.clone(),
                cache: false,
            }),
            body: body.to_vec(),
        };
        let call = router.embeddings(state.clients.router_request(request)).await;
        finish_unary(
            pending,
            call.map(|r| {
                let r = r.into_inner();
                (r.route, r.body, r.usage)
            }),
            &billing_id,
            false,
        )
    }
    .await;
    Ok(with_rate_headers(outcome, window.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn request_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(map) = parse_object(&body) {
                let _ = string_field(&map, "model");
                let _ = count_field(&map, "max_tokens");
                let _ = count_field(&map, "n");
            }
        }

        #[test]
        fn fields_of_any_json_type_get_a_400_naming_them(value in prop_oneof![
            Just(serde_json::json!(null)), any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from), any::<f64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from), Just(serde_json::json!([1, "x"])), Just(serde_json::json!({"a": 1})),
        ]) {
            let mut map = Map::new();
            map.insert("model".into(), value.clone());
            map.insert("max_tokens".into(), value.clone());
            if let Err(e) = string_field(&map, "model") {
                prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                prop_assert_eq!(e.param.as_deref(), Some("model"));
            }
            match count_field(&map, "max_tokens") {
                Ok(Some(n)) => prop_assert_eq!(Some(n), value.as_u64()),
                Ok(None) => prop_assert!(value.is_null()),
                Err(e) => prop_assert_eq!(e.param.as_deref(), Some("max_tokens")),
            }
        }
    }
}
