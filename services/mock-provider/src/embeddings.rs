//! `POST /v1/embeddings`.
//!
//! Gateways route, cache and meter embeddings like chat calls, so the mock
//! answers them too — deterministically: each input's vector is derived from
//! a SHA-256 of the input and unit-normalised, so equal inputs always embed
//! equally (handy for cache tests) and different inputs almost surely don't.
//! Both of OpenAI's encodings are served: `float` arrays and `base64` of the
//! little-endian `f32` bytes.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::MockState;
use crate::error::{ApiError, parse_json_object};
use crate::script::{Directives, gate};
use crate::stats::Counters;

/// Largest `dimensions` a request may ask for.
const MAX_DIMENSIONS: u64 = 65_536;
/// Most inputs one request may carry (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

/// `POST /v1/embeddings`.
pub(crate) async fn create_embeddings(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.embedding_requests);
    counters.record_headers(&headers);
    match handle(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(state: &MockState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let request = parse_json_object(body)?;
    let directives = Directives::from_request(headers, &request)?;
    gate(state, &directives).await?;

    let model = match request.get("model") {
        Some(Value::String(model)) => model.as_str(),
        Some(Value::Null) | None => return Err(ApiError::missing_param("model")),
        Some(_) => {
            return Err(ApiError::invalid_request("'model' must be a string", Some("model")));
        }
    };
    let inputs = parse_inputs(request.get("input"))?;
    let base64 = match request.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(format)) if format == "float" => false,
        Some(Value::String(format)) if format == "base64" => true,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "'encoding_format' must be \"float\" or \"base64\"",
                Some("encoding_format"),
            ));
        }
    };
    let dimensions = match request.get("dimensions") {
        None | Some(Value::Null) => state.config().embedding_dimensions,
        Some(value) => match value.as_u64() {
            Some(dims @ 1..=MAX_DIMENSIONS) => usize::try_from(dims)
                .map_err(|_| ApiError::invalid_request("'dimensions' is too large", Some("dimensions")))?,
            _ => {
                return Err(ApiError::invalid_request(
                    format!("'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}"),
                    Some("dimensions"),
                ));
            }
        },
    };
    if !state.config().embedding_models.iter().any(|known| known == model) {
        return Err(ApiError::model_not_found(model));
    }

    let mut prompt_tokens = 0u64;
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            prompt_tokens = prompt_tokens.saturating_add(input.tokens());
            let vector = embed(input, dimensions);
            let embedding = if base64 {
                EmbeddingValue::Base64(encode_base64(&vector))
            } else {
                EmbeddingValue::Float(vector)
            };
            EmbeddingObject {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    })
    .into_response())
}

/// One input to embed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Input<'a> {
    Text(&'a str),
    Tokens(&'a [Value]),
}

impl Input<'_> {
    /// Tokens billed for this input: words of a text, length of a token array.
    fn tokens(&self) -> u64 {
        match self {
            Input::Text(text) => text.split_whitespace().count() as u64,
            Input::Tokens(tokens) => tokens.len() as u64,
        }
    }
}

/// Accepts OpenAI's input shapes: a string, an array of strings, an array of
/// token ids (one input), or an array of token-id arrays.
fn parse_inputs(input: Option<&Value>) -> Result<Vec<Input<'_>>, ApiError> {
    let invalid = || {
        ApiError::invalid_request(
            "'input' must be a non-empty string, array of strings, array of integers, \
             or array of integer arrays",
            Some("input"),
        )
    };
    let is_token_array = |items: &[Value]| !items.is_empty() && items.iter().all(Value::is_u64);
    let inputs = match input {
        None | Some(Value::Null) => return Err(ApiError::missing_param("input")),
        Some(Value::String(text)) => vec![Input::Text(text)],
        Some(Value::Array(items)) if items.is_empty() => return Err(invalid()),
        Some(Value::Array(items)) if is_token_array(items) => vec![Input::Tokens(items)],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(Input::Text(text)),
                Value::Array(tokens) if is_token_array(tokens) => Ok(Input::Tokens(tokens)),
                _ => Err(invalid()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(invalid()),
    };
    if inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid_request(
            format!("'input' may hold at most {MAX_INPUTS} items"),
            Some("input"),
        ));
    }
    Ok(inputs)
}

/// The deterministic unit vector of `input`: a SHA-256 of the input seeds a
/// SplitMix64 generator whose outputs, mapped to `[-1, 1)`, are normalised.
pub(crate) fn embed(input: &Input<'_>, dimensions: usize) -> Vec<f32> {
    let mut hasher = Sha256::new();
    match input {
        Input::Text(text) => {
            hasher.update(b"text:");
            hasher.update(text.as_bytes());
        }
        Input::Tokens(tokens) => {
            hasher.update(b"tokens:");
            for token in tokens.iter().filter_map(Value::as_u64) {
                hasher.update(token.to_le_bytes());
            }
        }
    }
    let digest = hasher.finalize();
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    let mut state = u64::from_le_bytes(seed);

    let mut vector: Vec<f32> = (0..dimensions)
        .map(|_| {
            // 24 random bits map exactly onto f32's mantissa.
            let bits = (splitmix64(&mut state) >> 40) as u32;
            (bits as f32 / (1u32 << 23) as f32) - 1.0
        })
        .collect();
    let norm = vector.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in &mut vector {
            *x = (f64::from(*x) / norm) as f32;
        }
    } else if let Some(first) = vector.first_mut() {
        *first = 1.0;
    }
    vector
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Standard base64 of the little-endian `f32` bytes, as OpenAI encodes.
fn encode_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

/// OpenAI's `CreateEmbeddingResponse`.
#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingObject>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingObject {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::MockConfig;
    use crate::test_util::{body_json, default_state, post_json, send};

    fn floats(value: &Value) -> Vec<f32> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }

    fn decode(value: &Value) -> Vec<f32> {
        let bytes = STANDARD.decode(value.as_str().unwrap()).unwrap();
        bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
            .collect()
    }

    async fn embed_request(state: &MockState, body: Value) -> (StatusCode, Value) {
        let response = send(state, post_json("/v1/embeddings", &body, &[])).await;
        let status = response.status();
        (status, body_json(response).await)
    }

    #[tokio::test]
    async fn float_and_base64_encode_the_same_unit_vector() {
        let state = default_state();
        let (status, float) =
            embed_request(&state, json!({"model": "mock-embed", "input": "the quick brown fox"})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(float["object"], "list");
        assert_eq!(float["model"], "mock-embed");
        assert_eq!(float["data"][0]["object"], "embedding");
        assert_eq!(float["data"][0]["index"], 0);
        assert_eq!(float["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
        let from_float = floats(&float["data"][0]["embedding"]);
        assert_eq!(from_float.len(), 16);
        let norm: f32 = from_float.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");

        let (status, b64) = embed_request(
            &state,
            json!({"model": "mock-embed", "input": "the quick brown fox", "encoding_format": "base64"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let from_base64 = decode(&b64["data"][0]["embedding"]);
        assert_eq!(from_base64.len(), 16);
        for (a, b) in from_float.iter().zip(&from_base64) {
            assert!((a - b).abs() <= f32::EPSILON, "{a} vs {b}");
        }
        assert_eq!(b64["usage"], float["usage"]);
    }

    #[tokio::test]
    async fn inputs_arrays_and_tokens_are_deterministic() {
        let state = default_state();
        let (status, body) = embed_request(&state, json!({"model": "mock-embed", "input": ["a b", "c", "a b"]})).await;
        assert_eq!(status, StatusCode::OK);
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(data[2]["index"], 2);
        assert_eq!(data[0]["embedding"], data[2]["embedding"]);
        assert_ne!(data[0]["embedding"], data[1]["embedding"]);
        assert_eq!(body["usage"]["prompt_tokens"], 5);

        let (status, body) = embed_request(&state, json!({"model": "mock-embed", "input": [1, 2, 3]})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"].as_array().unwrap().len(), 1);
        assert_eq!(body["usage"]["prompt_tokens"], 3);

        let (status, body) = embed_request(
            &state,
            json!({"model": "mock-embed", "input": [[1, 2], [3]], "dimensions": 4}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        assert_eq!(body["data"][1]["embedding"].as_array().unwrap().len(), 4);
        assert_eq!(body["usage"]["total_tokens"], 3);
    }

    #[tokio::test]
    async fn configured_dimensions_are_used() {
        let state = MockState::new(MockConfig {
            embedding_dimensions: 3,
            ..MockConfig::default()
        });
        let (_, body) = embed_request(&state, json!({"model": "mock-embed", "input": "x"})).await;
        assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn invalid_requests_are_rejected() {
        let state = default_state();
        let cases = [
            (json!({"model": "nope", "input": "x"}), StatusCode::NOT_FOUND, "model"),
            (json!({"input": "x"}), StatusCode::BAD_REQUEST, "model"),
            (json!({"model": "mock-embed"}), StatusCode::BAD_REQUEST, "input"),
            (
                json!({"model": "mock-embed", "input": []}),
                StatusCode::BAD_REQUEST,
                "input",
            ),
            (
                json!({"model": "mock-embed", "input": [1, "a"]}),
                StatusCode::BAD_REQUEST,
                "input",
            ),
            (
                json!({"model": "mock-embed", "input": "x", "encoding_format": "hex"}),
                StatusCode::BAD_REQUEST,
                "encoding_format",
            ),
            (
                json!({"model": "mock-embed", "input": "x", "dimensions": 0}),
                StatusCode::BAD_REQUEST,
                "dimensions",
            ),
        ];
        for (request, status, param) in cases {
            let (got, body) = embed_request(&state, request.clone()).await;
            assert_eq!(got, status, "{request}");
            assert_eq!(body["error"]["param"], param, "{request}");
        }
        let (_, body) = embed_request(&state, json!({"model": "nope", "input": "x"})).await;
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(state.stats().embedding_requests, 8);
    }

    #[tokio::test]
    async fn scripted_status_applies_to_embeddings() {
        let state = default_state();
        let response = send(
            &state,
            post_json(
                "/v1/embeddings",
                &json!({"model": "mock-embed", "input": "x"}),
                &[("x-mock-status", "503"), ("x-mock-retry-after", "3")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "3");
        let body = body_json(response).await;
        assert_eq!(body["error"]["type"], "server_error");
        assert_eq!(state.stats().errors_injected, 1);
    }
}
