//! # oneflow-mock-provider
//!
//! OneFlow is a gateway: almost everything it does (routing, retries, circuit
//! breaking, streaming pass-through, usage metering, tracing) only shows when
//! there is an upstream model provider behind it. Real providers are slow,
//! cost money, are non-deterministic and cannot be told to fail on cue, so
//! tests, the demo and the benchmarks talk to this crate instead.
//!
//! It serves OpenAI's wire format (chat completions, streaming chunks,
//! embeddings, models, and the audio API: speech as real generated audio,
//! transcriptions and translations of uploads measured by their bytes) and,
//! so the router's provider adapters can be tested end to end, the native
//! dialects of the other provider families:
//! Anthropic Messages, Gemini `generateContent`, Bedrock Converse (with
//! binary event-stream framing) and Azure OpenAI's deployment routes, and
//! the audio dialects of the other speech providers: Google's OAuth token
//! exchange for service accounts, Cloud Text-to-Speech `text:synthesize` and
//! Speech-to-Text `speech:recognize`, Amazon Polly `SynthesizeSpeech` and
//! Amazon Transcribe streaming (`StartStreamTranscription`, event-stream
//! framing both ways). Each dialect is written from the providers'
//! published documentation, independently of the adapters it tests. Answers carry **deterministic**
//! content and token usage (the same rules in every dialect, see the
//! `answer` module), and every dialect can be **scripted per request** —
//! through `x-mock-*` request headers or `mock_*` keys of the body's metadata
//! map — to add latency, slow down streams, answer with an error status, cut
//! a stream mid-way, fail in-stream, call a tool, reply with a fixed text,
//! or hear a fixed transcript in an audio upload. The audio routes answer
//! real audio from `oneflow_audio::generate` and measure what they are sent
//! with `oneflow_audio::inspect`.
//! See [`router`] for the routes and the `script` module docs for the
//! directives.
//!
//! The hot path is lock-free apart from one uncontended mutex around the last
//! seen `traceparent` (the Google, Polly and Transcribe routes also take one
//! for their per-model tally), so the provider comfortably exceeds the
//! request rates the benchmarks need.
//!
//! Public API: [`MockConfig`], [`MockState`], [`MockStats`] and [`router`].

mod answer;
mod anthropic;
mod audio_out;
mod aws;
mod azure;
mod bedrock;
mod chat;
mod dialect_error;
mod embeddings;
mod error;
mod eventstream;
mod gemini;
mod google;
mod mock_transcript;
mod models;
mod polly;
mod script;
mod speech;
mod stats;
mod stream_body;
mod transcribe;
mod transcription;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use stats::MockStats;

/// Static configuration of a mock provider instance.
///
/// Every field has a default, so an empty TOML/JSON object is a valid
/// configuration; unknown fields are rejected to catch typos.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockConfig {
    /// Model ids accepted by `POST /v1/chat/completions` (others get a 404).
    pub chat_models: Vec<String>,
    /// Model ids accepted by `POST /v1/embeddings` (others get a 404).
    pub embedding_models: Vec<String>,
    /// Model ids accepted by `POST /v1/audio/speech` (others get a 404).
    pub speech_models: Vec<String>,
    /// Model ids accepted by `POST /v1/audio/transcriptions` and
    /// `/translations` (others get a 404). Ids starting with `gpt-` report
    /// token usage, like `gpt-4o-transcribe`; the others report seconds,
    /// like `whisper-1`.
    pub transcription_models: Vec<String>,
    /// Length of every embedding vector unless the request sets `dimensions`.
    pub embedding_dimensions: usize,
    /// Delay before the first byte of every response of a provider route,
    /// the Google token endpoint included (overridable per request with
    /// `x-mock-latency-ms`).
    #[serde(with = "humantime_serde")]
    pub first_byte_latency: Duration,
    /// Delay between two events of a stream, of any dialect (Transcribe's
    /// transcript events included), and between two body chunks of OpenAI
    /// or Polly speech audio (overridable per request with
    /// `x-mock-chunk-interval-ms`).
    #[serde(with = "humantime_serde")]
    pub chunk_interval: Duration,
    /// Fraction (0..=1) of requests to provider routes answered with
    /// [`MockConfig::error_status`] (overridable with `x-mock-error-rate`),
    /// in each dialect's own error shape; the Google token endpoint answers
    /// OAuth's `{"error","error_description"}`.
    pub error_rate: f64,
    /// HTTP status used for errors injected through `error_rate`.
    pub error_status: u16,
    /// Model ids accepted by the Anthropic, Gemini and Bedrock routes
    /// (others get the dialect's "not found"); empty, the default, accepts
    /// any id. Azure deployments are named after `chat_models` /
    /// `embedding_models` instead.
    pub dialect_models: Vec<String>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            chat_models: vec!["mock-gpt".to_owned(), "mock-gpt-mini".to_owned()],
            embedding_models: vec!["mock-embed".to_owned()],
            speech_models: ["mock-tts", "tts-1", "gpt-4o-mini-tts"].map(str::to_owned).to_vec(),
            transcription_models: [
                "mock-whisper",
                "whisper-1",
                "gpt-4o-transcribe",
                "gpt-4o-mini-transcribe",
            ]
            .map(str::to_owned)
            .to_vec(),
            embedding_dimensions: 16,
            first_byte_latency: Duration::ZERO,
            chunk_interval: Duration::ZERO,
            error_rate: 0.0,
            error_status: 500,
            dialect_models: Vec::new(),
        }
    }
}

/// Shared state of a mock provider: its configuration and its counters.
///
/// Cheap to clone (one `Arc` inside); every clone sees the same counters, so
/// a test can keep one clone to inspect [`MockState::stats`] while the router
/// owns another.
#[derive(Debug, Clone)]
pub struct MockState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MockConfig,
    counters: stats::Counters,
    /// Signs the Google access tokens this instance issues, so its Google
    /// routes accept exactly those (see `google::token`).
    google_token_key: [u8; 32],
}

impl MockState {
    /// Creates the state for a provider running with `config`.
    pub fn new(config: MockConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                counters: stats::Counters::default(),
                google_token_key: rand::random(),
            }),
        }
    }

    /// Returns a snapshot of the request counters.
    pub fn stats(&self) -> MockStats {
        self.inner.counters.snapshot()
    }

    /// Zeroes every counter and forgets the last `traceparent` (what
    /// `POST /mock/reset` does).
    pub fn reset(&self) {
        self.inner.counters.reset();
    }

    /// The configuration this provider runs with.
    pub fn config(&self) -> &MockConfig {
        &self.inner.config
    }

    pub(crate) fn counters(&self) -> &stats::Counters {
        &self.inner.counters
    }

    /// The key signing this instance's Google access tokens.
    pub(crate) fn google_token_key(&self) -> &[u8; 32] {
        &self.inner.google_token_key
    }

    /// Whether the Anthropic, Gemini and Bedrock routes serve `model`.
    pub(crate) fn accepts_dialect_model(&self, model: &str) -> bool {
        let known = &self.inner.config.dialect_models;
        known.is_empty() || known.iter().any(|id| id == model)
    }
}

impl Default for MockState {
    fn default() -> Self {
        Self::new(MockConfig::default())
    }
}

/// Builds the axum router serving every route of the mock provider:
///
/// | route | answer |
/// | --- | --- |
/// | `POST /v1/chat/completions` | `chat.completion` object, or an SSE stream of `chat.completion.chunk` objects when `"stream": true` |
/// | `POST /v1/embeddings` | `list` of `embedding` objects (`float` or `base64` encoding) |
/// | `POST /v1/audio/speech` | real audio of the input's spoken length (15 characters a second at `speed` 1, at most 10 minutes) in `response_format` (`mp3` default, `opus`, `aac`, `flac`, `wav`, `pcm`) at 24 kHz, with that format's `Content-Type`, sent chunked in at least four body frames of at most 16 KiB paced by the chunk interval; model one of [`MockConfig::speech_models`], voice a built-in OpenAI voice or `{"id": …}` |
/// | `POST /v1/audio/transcriptions` | multipart upload (at most 25 MiB) judged by its bytes and measured; the transcript in `response_format` `json` (default), `text`, `srt`, `vtt` or `verbose_json` (`timestamp_granularities[]` `segment`/`word`); text from `x-mock-transcript`, else `prompt`, else a sentence naming the duration; `usage` in seconds, or in tokens for `gpt-*` models (which answer `json` and `text` only); model one of [`MockConfig::transcription_models`] |
/// | `POST /v1/audio/translations` | the same, answered in English (`verbose_json` says `"language": "english"`) |
/// | `GET /v1/models` | `list` of every configured chat and embedding model (not the audio ones) |
/// | `GET /v1/models/{id}` | one `model` object, or 404 `model_not_found` |
/// | `POST /v1/messages` | Anthropic Messages: `message` object, or named SSE events (`message_start` … `message_stop`) when `"stream": true`; needs `x-api-key` (401 `authentication_error`) and `anthropic-version` (400) |
/// | `POST /v1beta/models/{model}:generateContent` | Gemini `GenerateContentResponse`; needs `x-goog-api-key` or `?key=` (403 `PERMISSION_DENIED`) |
/// | `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` | SSE `data:` lines of partial `GenerateContentResponse`s, the last with `finishReason` and `usageMetadata` (400 without `alt=sse`) |
/// | `POST /v1beta/models/{model}:batchEmbedContents` | `{"embeddings":[{"values":[…]}]}`, the vectors of the OpenAI embeddings path |
/// | `POST /model/{modelId}/converse` | Bedrock Converse JSON (`output.message`, `stopReason`, `usage`, `metrics`); needs a SigV4-looking `authorization` and `x-amz-date` (403), the signature is **not** verified |
/// | `POST /model/{modelId}/converse-stream` | `application/vnd.amazon.eventstream` frames: `messageStart`, `contentBlockStart` (tool use), `contentBlockDelta`, `contentBlockStop`, `messageStop`, `metadata` |
/// | `POST /openai/deployments/{deployment}/chat/completions?api-version=…` | Azure OpenAI: the `/v1/chat/completions` answer with the deployment as model; needs `api-key` (or a bearer token, 401) and `api-version` (400) |
/// | `POST /openai/deployments/{deployment}/embeddings?api-version=…` | Azure OpenAI: the `/v1/embeddings` answer |
/// | `POST /token` | Google OAuth: a form-encoded `jwt-bearer` grant whose RS256 assertion has `iss`, `scope`, `aud`, `iat`, `exp` (at most an hour, current; the signature is **not** verified) gets `{"access_token": "mock-google-…", "expires_in": 3599, "token_type": "Bearer"}`; errors `{"error": "invalid_grant", "error_description": …}` (400) |
/// | `POST /v1/text:synthesize` | Google Text-to-Speech v1: `{"audioContent": base64}`, real `LINEAR16` (WAV), `MP3`, `OGG_OPUS`, `MULAW` or `ALAW` (WAV) audio as long as the text at `speakingRate`; needs a bearer token from `/token` (with the `cloud-platform` scope) or an API key (`x-goog-api-key` / `?key=`), else 401 `UNAUTHENTICATED` |
/// | `POST /v1/speech:recognize`, `POST /v1p1beta1/speech:recognize` | Google Speech-to-Text: `audio.content` decoded and measured (at most 60 s; encoding, rate and channels must agree with a WAV/FLAC header; `MP3` only on v1p1beta1), `results[]` per sentence with `alternatives[0]` (`transcript`, `confidence`, `words` with `"1.500s"` times when `enableWordTimeOffsets`), `resultEndTime`, `languageCode`, and `totalBilledTime`; same credentials as Text-to-Speech |
/// | `POST /v1/speech` | Amazon Polly `SynthesizeSpeech`: `mp3`, `ogg_opus`, `ogg_vorbis` (answered as Ogg Opus), `pcm` (raw 16-bit LE mono at `SampleRate`) audio streamed in chunks, or `json` speech marks; `x-amzn-RequestCharacters`; needs SigV4-looking `authorization` scoped to `polly` and `x-amz-date` (403); errors JSON `{"message"}` with `x-amzn-ErrorType` |
/// | `POST /stream-transcription` | Amazon Transcribe streaming: signed event-stream envelopes of `AudioEvent`s in (CRCs, `:date`, `:chunk-signature` checked), `TranscriptEvent` messages out (partial then final results with `Items`); needs SigV4 scoped to `transcribe`, `x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-EVENTS` and the `x-amzn-transcribe-*` headers; bad frames are an in-stream `BadRequestException` |
/// | `GET /healthz` | `200 ok` |
/// | `GET /mock/stats` | [`MockStats`] as JSON |
/// | `POST /mock/reset` | zeroes the counters, answers the zeroed [`MockStats`] |
///
/// Errors come in each dialect's own shape (OpenAI's for the OpenAI and
/// Azure routes, Google's for Gemini and Google Cloud, AWS's for Bedrock,
/// Polly and Transcribe). Any other path answers 404 with an OpenAI-shaped
/// error body. See the `google`, `polly` and `transcribe` modules for the
/// details of those dialects.
pub fn router(state: MockState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/embeddings", post(embeddings::create_embeddings))
        .route("/v1/audio/speech", post(speech::create_speech))
        .route(
            "/v1/audio/transcriptions",
            post(transcription::transcriptions).layer(transcription::body_limit()),
        )
        .route(
            "/v1/audio/translations",
            post(transcription::translations).layer(transcription::body_limit()),
        )
        .route("/v1/models", get(models::list_models))
        .route("/v1/models/{*id}", get(models::get_model))
        .route("/v1/messages", post(anthropic::create_message))
        .route("/v1beta/models/{*call}", post(gemini::model_call))
        .route("/model/{model_id}/converse", post(bedrock::converse))
        .route("/model/{model_id}/converse-stream", post(bedrock::converse_stream))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure::chat_completions),
        )
        .route("/openai/deployments/{deployment}/embeddings", post(azure::embeddings))
        .route("/token", post(google::token::token))
        .route("/v1/text:synthesize", post(google::tts::synthesize_speech))
        .route(
            "/v1/speech:recognize",
            post(google::stt::recognize_v1).layer(google::stt::body_limit()),
        )
        .route(
            "/v1p1beta1/speech:recognize",
            post(google::stt::recognize_v1p1beta1).layer(google::stt::body_limit()),
        )
        .route("/v1/speech", post(polly::synthesize_speech))
        .route(
            "/stream-transcription",
            post(transcribe::stream_transcription).layer(transcribe::body_limit()),
        )
        .route("/healthz", get(healthz))
        .route("/mock/stats", get(stats::stats_handler))
        .route("/mock/reset", post(stats::reset_handler))
        .fallback(fallback)
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn fallback(method: Method, uri: Uri) -> Response {
    error::ApiError::invalid_url(&method, &uri).into_response()
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the unit tests of every module.

    use axum::body::Body;
    use axum::http::{Request, Response};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::{MockConfig, MockState, router};

    /// Sends one request through a fresh router over `state`.
    pub async fn send(state: &MockState, request: Request<Body>) -> Response<Body> {
        router(state.clone()).oneshot(request).await.unwrap()
    }

    /// A JSON POST with optional extra headers.
    pub fn post_json(path: &str, body: &serde_json::Value, headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::post(path).header("content-type", "application/json");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::from(body.to_string())).unwrap()
    }

    /// Collects a response body into bytes.
    pub async fn body_bytes(response: Response<Body>) -> bytes::Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    /// Collects a response body and parses it as JSON.
    pub async fn body_json(response: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(&body_bytes(response).await).unwrap()
    }

    /// State with the default configuration.
    pub fn default_state() -> MockState {
        MockState::new(MockConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::json;

    use super::test_util::{body_bytes, body_json, default_state, post_json, send};
    use super::*;

    #[test]
    fn config_defaults_and_deny_unknown_fields() {
        let config: MockConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.chat_models, ["mock-gpt", "mock-gpt-mini"]);
        assert_eq!(config.embedding_models, ["mock-embed"]);
        assert_eq!(config.speech_models, ["mock-tts", "tts-1", "gpt-4o-mini-tts"]);
        assert_eq!(
            config.transcription_models,
            [
                "mock-whisper",
                "whisper-1",
                "gpt-4o-transcribe",
                "gpt-4o-mini-transcribe"
            ]
        );
        assert_eq!(config.embedding_dimensions, 16);
        assert_eq!(config.first_byte_latency, Duration::ZERO);
        assert_eq!(config.error_status, 500);
        assert!(config.dialect_models.is_empty());

        let config: MockConfig =
            serde_json::from_value(json!({"first_byte_latency": "150ms", "chunk_interval": "2s"})).unwrap();
        assert_eq!(config.first_byte_latency, Duration::from_millis(150));
        assert_eq!(config.chunk_interval, Duration::from_secs(2));

        assert!(serde_json::from_value::<MockConfig>(json!({"chat_model": []})).is_err());
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let state = default_state();
        let response = send(&state, Request::get("/healthz").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(&body_bytes(response).await[..], b"ok");
    }

    #[tokio::test]
    async fn unknown_route_gets_openai_shaped_404() {
        let state = default_state();
        let response = send(&state, Request::post("/v1/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = body_json(response).await;
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "Invalid URL (POST /v1/nope)");
    }

    #[tokio::test]
    async fn stats_count_record_headers_and_reset() {
        let state = default_state();
        let chat = json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]});
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

        let response = send(
            &state,
            post_json(
                "/v1/chat/completions",
                &chat,
                &[("traceparent", traceparent), ("authorization", "Bearer sk-test")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let stats = state.stats();
        assert_eq!(stats.chat_requests, 1);
        assert_eq!(stats.last_traceparent.as_deref(), Some(traceparent));
        assert!(stats.last_authorization_present);

        let mut stream = chat.clone();
        stream["stream"] = json!(true);
        let response = send(&state, post_json("/v1/chat/completions", &stream, &[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let _ = body_bytes(response).await;

        let embed = json!({"model": "mock-embed", "input": "hello"});
        let response = send(&state, post_json("/v1/embeddings", &embed, &[])).await;
        assert_eq!(response.status(), StatusCode::OK);

        let response = send(
            &state,
            post_json("/v1/chat/completions", &chat, &[("x-mock-status", "503")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

        let response = send(&state, Request::get("/mock/stats").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let stats: MockStats = serde_json::from_value(body_json(response).await).unwrap();
        assert_eq!(stats.chat_requests, 3);
        assert_eq!(stats.stream_requests, 1);
        assert_eq!(stats.embedding_requests, 1);
        assert_eq!(stats.errors_injected, 1);
        assert_eq!(stats.last_traceparent, None);
        assert!(!stats.last_authorization_present);

        let response = send(&state, Request::post("/mock/reset").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let stats = state.stats();
        assert_eq!(stats.chat_requests, 0);
        assert_eq!(stats.stream_requests, 0);
        assert_eq!(stats.embedding_requests, 0);
        assert_eq!(stats.errors_injected, 0);
    }
}
