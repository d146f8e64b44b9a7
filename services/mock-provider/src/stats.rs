//! Request counters of the mock provider.
//!
//! Tests and benchmarks assert on what reached the upstream (how many calls
//! a retry policy made, which provider dialect the router's adapter spoke,
//! whether the gateway forwarded `traceparent` and stripped or set
//! `Authorization`, how much audio a speech relay passed on), so the provider
//! counts every request to a provider route. Counters are atomics so the hot path never blocks; only
//! the last `traceparent` and the per-model tally of the Google, Polly and
//! Transcribe routes (never on the chat hot path) sit behind short,
//! uncontended mutexes.
//!
//! The audio dialects of Google, Polly and Transcribe are counted twice: once
//! per route as soon as the request arrives (`google_tts_requests` …), and
//! once per route and model in [`MockStats::calls_by_model`] as soon as the
//! request names its model (voice, recognition model or language), before
//! any injected failure, so a test can tell which voice a fallback chain
//! tried.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::MockState;

/// Snapshot of the mock provider's counters, as served by `GET /mock/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MockStats {
    /// OpenAI-format chat completion requests received (streaming ones
    /// included), on `/v1/chat/completions` and on Azure's deployment route.
    pub chat_requests: u64,
    /// Streamed requests of any dialect: OpenAI/Azure `"stream": true`,
    /// Anthropic `"stream": true`, Gemini `:streamGenerateContent`,
    /// Bedrock `converse-stream` and Transcribe `stream-transcription`.
    pub stream_requests: u64,
    /// OpenAI-format embedding requests received (Azure's included).
    pub embedding_requests: u64,
    /// Requests answered with an injected error (scripted status or error
    /// rate), every dialect included.
    pub errors_injected: u64,
    /// `traceparent` header of the last request to a provider route (`None`
    /// if it had none).
    pub last_traceparent: Option<String>,
    /// Whether the last request to a provider route carried an
    /// `Authorization` header (SigV4 for Bedrock, Polly and Transcribe,
    /// Azure's Entra ID and Google's bearer tokens use it; Anthropic,
    /// Gemini, Google API keys and Azure keys do not).
    pub last_authorization_present: bool,
    /// Anthropic Messages requests (`POST /v1/messages`).
    #[serde(default)]
    pub anthropic_requests: u64,
    /// Gemini requests (`POST /v1beta/models/{model}:{method}`), embeddings included.
    #[serde(default)]
    pub gemini_requests: u64,
    /// Bedrock Converse requests (`converse` and `converse-stream`).
    #[serde(default)]
    pub bedrock_requests: u64,
    /// Azure OpenAI requests (chat completions and embeddings); they are
    /// counted in `chat_requests` / `embedding_requests` too.
    #[serde(default)]
    pub azure_requests: u64,
    /// Text-to-speech requests (`POST /v1/audio/speech`).
    #[serde(default)]
    pub speech_requests: u64,
    /// Speech-to-text requests: `POST /v1/audio/transcriptions` and
    /// `POST /v1/audio/translations`.
    #[serde(default)]
    pub transcription_requests: u64,
    /// Bytes of speech audio handed to the server for sending by OpenAI
    /// speech, Polly and Google Text-to-Speech (decoded, not base64); a body
    /// cut by `x-mock-cut-after` counts only the chunks before the cut.
    #[serde(default)]
    pub audio_bytes_served: u64,
    /// Google OAuth token exchanges (`POST /token`), failed ones included.
    #[serde(default)]
    pub google_token_requests: u64,
    /// Google Cloud Text-to-Speech requests (`POST /v1/text:synthesize`).
    #[serde(default)]
    pub google_tts_requests: u64,
    /// Google Cloud Speech-to-Text requests (`POST /v1/speech:recognize`
    /// and `/v1p1beta1/speech:recognize`).
    #[serde(default)]
    pub google_stt_requests: u64,
    /// Amazon Polly `SynthesizeSpeech` requests (`POST /v1/speech`).
    #[serde(default)]
    pub polly_requests: u64,
    /// Amazon Transcribe streaming requests (`POST /stream-transcription`).
    #[serde(default)]
    pub transcribe_requests: u64,
    /// Requests per route and model of the Google, Polly and Transcribe
    /// routes, keyed `google-tts/<voice.name, else voice.languageCode>`,
    /// `google-stt/<config.model, else "default">`, `polly/<VoiceId>` and
    /// `transcribe/<x-amzn-transcribe-language-code>`.
    #[serde(default)]
    pub calls_by_model: BTreeMap<String, u64>,
}

/// The live, shared counters behind [`MockStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) chat_requests: AtomicU64,
    pub(crate) stream_requests: AtomicU64,
    pub(crate) embedding_requests: AtomicU64,
    pub(crate) errors_injected: AtomicU64,
    pub(crate) anthropic_requests: AtomicU64,
    pub(crate) gemini_requests: AtomicU64,
    pub(crate) bedrock_requests: AtomicU64,
    pub(crate) azure_requests: AtomicU64,
    pub(crate) speech_requests: AtomicU64,
    pub(crate) transcription_requests: AtomicU64,
    pub(crate) google_token_requests: AtomicU64,
    pub(crate) google_tts_requests: AtomicU64,
    pub(crate) google_stt_requests: AtomicU64,
    pub(crate) polly_requests: AtomicU64,
    pub(crate) transcribe_requests: AtomicU64,
    calls_by_model: Mutex<BTreeMap<String, u64>>,
    audio_bytes_served: AtomicU64,
    last_traceparent: Mutex<Option<String>>,
    last_authorization_present: AtomicBool,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `bytes` of speech audio as served.
    pub(crate) fn add_audio_bytes(&self, bytes: usize) {
        self.audio_bytes_served
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts one request of `route` for `model` in `calls_by_model`.
    pub(crate) fn count_model(&self, route: &str, model: &str) {
        let mut calls = self
            .calls_by_model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *calls.entry(format!("{route}/{model}")).or_default() += 1;
    }

    /// Remembers the tracing and auth headers of a provider request.
    pub(crate) fn record_headers(&self, headers: &HeaderMap) {
        self.last_authorization_present
            .store(headers.contains_key(AUTHORIZATION), Ordering::Relaxed);
        let traceparent = headers.get("traceparent").and_then(|value| value.to_str().ok());
        let mut last = self
            .last_traceparent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (traceparent, last.as_mut()) {
            // Reuse the allocation: traceparents all have the same length.
            (Some(new), Some(old)) => {
                old.clear();
                old.push_str(new);
            }
            (Some(new), None) => *last = Some(new.to_owned()),
            (None, _) => *last = None,
        }
    }

    /// Copies the counters into a [`MockStats`].
    pub(crate) fn snapshot(&self) -> MockStats {
        let last_traceparent = self
            .last_traceparent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        MockStats {
            chat_requests: self.chat_requests.load(Ordering::Relaxed),
            stream_requests: self.stream_requests.load(Ordering::Relaxed),
            embedding_requests: self.embedding_requests.load(Ordering::Relaxed),
            errors_injected: self.errors_injected.load(Ordering::Relaxed),
            last_traceparent,
            last_authorization_present: self.last_authorization_present.load(Ordering::Relaxed),
            anthropic_requests: self.anthropic_requests.load(Ordering::Relaxed),
            gemini_requests: self.gemini_requests.load(Ordering::Relaxed),
            bedrock_requests: self.bedrock_requests.load(Ordering::Relaxed),
            azure_requests: self.azure_requests.load(Ordering::Relaxed),
            speech_requests: self.speech_requests.load(Ordering::Relaxed),
            transcription_requests: self.transcription_requests.load(Ordering::Relaxed),
            audio_bytes_served: self.audio_bytes_served.load(Ordering::Relaxed),
            google_token_requests: self.google_token_requests.load(Ordering::Relaxed),
            google_tts_requests: self.google_tts_requests.load(Ordering::Relaxed),
            google_stt_requests: self.google_stt_requests.load(Ordering::Relaxed),
            polly_requests: self.polly_requests.load(Ordering::Relaxed),
            transcribe_requests: self.transcribe_requests.load(Ordering::Relaxed),
            calls_by_model: self
                .calls_by_model
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Zeroes every counter and forgets the recorded headers.
    pub(crate) fn reset(&self) {
        self.chat_requests.store(0, Ordering::Relaxed);
        self.stream_requests.store(0, Ordering::Relaxed);
        self.embedding_requests.store(0, Ordering::Relaxed);
        self.errors_injected.store(0, Ordering::Relaxed);
        self.anthropic_requests.store(0, Ordering::Relaxed);
        self.gemini_requests.store(0, Ordering::Relaxed);
        self.bedrock_requests.store(0, Ordering::Relaxed);
        self.azure_requests.store(0, Ordering::Relaxed);
        self.speech_requests.store(0, Ordering::Relaxed);
        self.transcription_requests.store(0, Ordering::Relaxed);
        self.audio_bytes_served.store(0, Ordering::Relaxed);
        self.google_token_requests.store(0, Ordering::Relaxed);
        self.google_tts_requests.store(0, Ordering::Relaxed);
        self.google_stt_requests.store(0, Ordering::Relaxed);
        self.polly_requests.store(0, Ordering::Relaxed);
        self.transcribe_requests.store(0, Ordering::Relaxed);
        self.calls_by_model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.last_authorization_present.store(false, Ordering::Relaxed);
        *self
            .last_traceparent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// `GET /mock/stats`.
pub(crate) async fn stats_handler(State(state): State<MockState>) -> Json<MockStats> {
    Json(state.stats())
}

/// `POST /mock/reset`: zeroes the counters and answers the zeroed snapshot.
pub(crate) async fn reset_handler(State(state): State<MockState>) -> Json<MockStats> {
    state.reset();
    Json(state.stats())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn records_and_resets() {
        let counters = Counters::default();
        Counters::bump(&counters.chat_requests);
        Counters::bump(&counters.chat_requests);
        Counters::bump(&counters.errors_injected);
        Counters::bump(&counters.anthropic_requests);
        Counters::bump(&counters.bedrock_requests);
        Counters::bump(&counters.speech_requests);
        Counters::bump(&counters.transcription_requests);
        counters.add_audio_bytes(1000);
        counters.add_audio_bytes(24);
        Counters::bump(&counters.polly_requests);
        counters.count_model("polly", "Joanna");
        counters.count_model("polly", "Joanna");
        counters.count_model("google-tts", "en-US");

        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-aa-bb-01"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        counters.record_headers(&headers);
        headers.insert("traceparent", HeaderValue::from_static("00-cc-dd-01"));
        counters.record_headers(&headers);

        let stats = counters.snapshot();
        assert_eq!(stats.chat_requests, 2);
        assert_eq!(stats.errors_injected, 1);
        assert_eq!(stats.anthropic_requests, 1);
        assert_eq!(stats.bedrock_requests, 1);
        assert_eq!(stats.gemini_requests, 0);
        assert_eq!(stats.speech_requests, 1);
        assert_eq!(stats.transcription_requests, 1);
        assert_eq!(stats.audio_bytes_served, 1024);
        assert_eq!(stats.polly_requests, 1);
        assert_eq!(stats.calls_by_model["polly/Joanna"], 2);
        assert_eq!(stats.calls_by_model["google-tts/en-US"], 1);
        assert_eq!(stats.last_traceparent.as_deref(), Some("00-cc-dd-01"));
        assert!(stats.last_authorization_present);

        counters.record_headers(&HeaderMap::new());
        let stats = counters.snapshot();
        assert_eq!(stats.last_traceparent, None);
        assert!(!stats.last_authorization_present);

        counters.record_headers(&headers);
        counters.reset();
        assert_eq!(counters.snapshot(), MockStats::default());
    }

    #[test]
    fn snapshots_without_dialect_fields_still_parse() {
        let old = r#"{"chat_requests":1,"stream_requests":0,"embedding_requests":0,"errors_injected":0,
            "last_traceparent":null,"last_authorization_present":false}"#;
        let stats: MockStats = serde_json::from_str(old).unwrap();
        assert_eq!(stats.chat_requests, 1);
        assert_eq!(stats.azure_requests, 0);
        assert_eq!(stats.speech_requests, 0);
        assert_eq!(stats.audio_bytes_served, 0);
        assert_eq!(stats.transcribe_requests, 0);
        assert!(stats.calls_by_model.is_empty());
    }
}
