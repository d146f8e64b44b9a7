//! `POST /v1/audio/speech`: OpenAI text-to-speech.
//!
//! The gateway relays speech as a byte stream it never decodes, so the mock
//! answers with real audio (from `oneflow_audio::generate`) in the requested
//! format and of a believable length — `speech_duration` of the input at the
//! requested speed — so a wrong `Content-Type`, a truncated relay or a
//! mis-measured duration shows up in tests. The audio always goes out as
//! several chunked body frames, paced by the chunk interval and cuttable by
//! `x-mock-cut-after` like every other stream of the mock. The request is
//! strict JSON with no metadata map, so only `x-mock-*` headers script it.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use oneflow_audio::generate::{MAX_SYNTHESIS, speech_duration, synthesize};
use oneflow_audio::{SpeechRequest, Voice, VoiceMap};
use serde_json::Value;

use crate::MockState;
use crate::error::{ApiError, parse_json_object};
use crate::script::{Directives, gate};
use crate::stats::Counters;
use crate::stream_body::chunked_body;

/// Sample rate of every answer: OpenAI's speech output is 24 kHz.
const SAMPLE_RATE: u32 = 24_000;
/// The audio is split into at least this many body chunks...
const MIN_CHUNKS: usize = 4;
/// ...of at most this many bytes each.
const MAX_CHUNK_BYTES: usize = 16 * 1024;

/// OpenAI's built-in voice names (the audio crate's default voice table).
static BUILT_IN_VOICES: LazyLock<VoiceMap> = LazyLock::new(VoiceMap::default);

/// `POST /v1/audio/speech`.
pub(crate) async fn create_speech(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.speech_requests);
    counters.record_headers(&headers);
    match handle(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(state: &MockState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let value = parse_json_object(body)?;
    let directives = Directives::read(headers, None)?;
    gate(state, &directives).await?;

    let request = parse_request(value)?;
    request.validate()?;
    check_voice(&request.voice)?;
    if !state.config().speech_models.contains(&request.model) {
        return Err(ApiError::model_not_found(&request.model));
    }
    let format = request.format()?;
    let duration = speech_duration(request.input.chars().count(), request.speed()?).min(MAX_SYNTHESIS);
    // Writing minutes of FLAC is real CPU work: keep it off the async workers.
    let audio = tokio::task::spawn_blocking(move || synthesize(format, duration, SAMPLE_RATE))
        .await
        .map_err(|err| ApiError::internal(&err.to_string()))??;

    let chunks = split(Bytes::from(audio));
    let interval = directives.chunk_interval.unwrap_or(state.config().chunk_interval);
    let cut_at = directives.cut_after.map(|after| after.min(chunks.len()));
    let counting = state.clone();
    let body = chunked_body(chunks, interval, cut_at, move |bytes| {
        counting.counters().add_audio_bytes(bytes);
    });
    Ok(([(CONTENT_TYPE, format.content_type())], body).into_response())
}

/// Deserialises the body, naming a missing required field the way OpenAI does.
fn parse_request(value: Value) -> Result<SpeechRequest, ApiError> {
    for field in ["model", "input", "voice"] {
        if value.get(field).is_none_or(Value::is_null) {
            return Err(ApiError::missing_param(field));
        }
    }
    serde_json::from_value(value)
        .map_err(|err| ApiError::invalid_request(format!("Invalid request body: {err}"), None::<&'static str>))
}

/// A named voice must be one of OpenAI's built-in voices; a custom voice
/// (`{"id": …}`) is accepted as long as it has an id.
fn check_voice(voice: &Voice) -> Result<(), ApiError> {
    match voice {
        Voice::Custom { .. } => Ok(()),
        Voice::Named(name) if BUILT_IN_VOICES.names().any(|known| known == name) => Ok(()),
        Voice::Named(name) => {
            let supported = BUILT_IN_VOICES
                .names()
                .map(|known| format!("'{known}'"))
                .collect::<Vec<_>>()
                .join(", ");
            Err(ApiError::invalid_request(
                format!("Invalid value: '{name}'. Supported values are: {supported}."),
                Some("voice"),
            ))
        }
    }
}

/// Splits the audio into at least [`MIN_CHUNKS`] chunks (fewer only when
/// there are fewer bytes) of at most [`MAX_CHUNK_BYTES`].
pub(crate) fn split(audio: Bytes) -> Vec<Bytes> {
    let size = audio.len().div_ceil(MIN_CHUNKS).clamp(1, MAX_CHUNK_BYTES);
    let mut chunks = Vec::with_capacity(audio.len().div_ceil(size));
    let mut rest = audio;
    while !rest.is_empty() {
        let chunk = rest.split_to(size.min(rest.len()));
        chunks.push(chunk);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use oneflow_audio::{AudioFormat, duration, sniff};
    use serde_json::json;

    use super::*;
    use crate::test_util::{body_json, default_state, post_json, send};

    const INPUT: &str = "The quick brown fox jumped over the lazy dog.";

    /// How long the answer to `input` at `speed` should play.
    fn expected_duration(input: &str, speed: f32) -> Duration {
        speech_duration(input.chars().count(), speed).min(MAX_SYNTHESIS)
    }

    /// Reads a body frame by frame: (frames, bytes, ended with an error).
    async fn frames(body: Body) -> (Vec<Bytes>, bool) {
        let mut body = body;
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => seen.push(frame.into_data().unwrap()),
                Err(_) => return (seen, true),
            }
        }
        (seen, false)
    }

    fn speech(extra: Value) -> Value {
        let mut body = json!({"model": "tts-1", "input": INPUT, "voice": "alloy"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    }

    /// The longest a frame of `format` lasts at 24 kHz: what a generated
    /// file may differ from the asked length by.
    fn frame(format: AudioFormat) -> Duration {
        let samples = match format {
            AudioFormat::Mp3 => 576,
            AudioFormat::Aac => 1024,
            AudioFormat::Opus => 480,
            _ => 24,
        };
        Duration::from_secs_f64(f64::from(samples) / 24_000.0)
    }

    #[tokio::test]
    async fn every_format_is_real_audio_of_the_expected_length() {
        let state = default_state();
        let mut served = 0;
        for (name, format, speed) in [
            (None, AudioFormat::Mp3, None),
            (Some("mp3"), AudioFormat::Mp3, Some(2.0)),
            (Some("opus"), AudioFormat::Opus, None),
            (Some("aac"), AudioFormat::Aac, Some(0.5)),
            (Some("flac"), AudioFormat::Flac, None),
            (Some("wav"), AudioFormat::Wav, Some(1.25)),
            (Some("pcm"), AudioFormat::Pcm, None),
        ] {
            let body = speech(json!({"response_format": name, "speed": speed}));
            let response = send(&state, post_json("/v1/audio/speech", &body, &[])).await;
            assert_eq!(response.status(), StatusCode::OK, "{format}");
            assert_eq!(response.headers()[CONTENT_TYPE], format.content_type(), "{format}");
            assert!(
                response.headers().get("content-length").is_none(),
                "{format} is chunked"
            );
            let (chunks, cut) = frames(response.into_body()).await;
            assert!(!cut, "{format}");
            assert!(chunks.len() >= MIN_CHUNKS, "{format}: {} chunks", chunks.len());
            let audio = chunks.concat();
            served += audio.len() as u64;
            let sniffed = sniff(&audio);
            if format == AudioFormat::Pcm {
                assert_eq!(sniffed, None, "raw pcm has no signature");
                assert_eq!(audio.len() % 2, 0);
            } else {
                assert_eq!(sniffed, Some(format));
            }
            let hint = (format == AudioFormat::Pcm).then_some(AudioFormat::Pcm);
            let measured = duration(audio, hint).unwrap();
            let wanted = expected_duration(INPUT, speed.unwrap_or(1.0));
            assert!(
                measured.abs_diff(wanted) <= frame(format),
                "{format}: measured {measured:?}, wanted {wanted:?}"
            );
        }
        let stats = state.stats();
        assert_eq!(stats.speech_requests, 7);
        assert_eq!(stats.audio_bytes_served, served);
    }

    #[tokio::test]
    async fn custom_voices_and_long_inputs_are_served() {
        let state = default_state();
        let body = speech(
            json!({"voice": {"id": "voice_1234"}, "input": "a".repeat(4096), "speed": 0.25,
            "response_format": "opus", "model": "gpt-4o-mini-tts", "instructions": "calm"}),
        );
        let response = send(&state, post_json("/v1/audio/speech", &body, &[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let (chunks, _) = frames(response.into_body()).await;
        assert!(chunks.iter().all(|chunk| chunk.len() <= MAX_CHUNK_BYTES));
        // 4096 characters at a quarter speed would be 18 minutes: capped.
        assert_eq!(duration(chunks.concat(), None).unwrap(), MAX_SYNTHESIS);
    }

    #[tokio::test]
    async fn unknown_models_are_404_and_bad_fields_400() {
        let state = default_state();
        let cases = [
            (speech(json!({"model": "nope"})), StatusCode::NOT_FOUND, Some("model")),
            (
                speech(json!({"voice": "nobody"})),
                StatusCode::BAD_REQUEST,
                Some("voice"),
            ),
            (speech(json!({"voice": ""})), StatusCode::BAD_REQUEST, Some("voice")),
            (
                speech(json!({"response_format": "ogg"})),
                StatusCode::BAD_REQUEST,
                Some("response_format"),
            ),
            (speech(json!({"speed": 5.0})), StatusCode::BAD_REQUEST, Some("speed")),
            (speech(json!({"input": " "})), StatusCode::BAD_REQUEST, Some("input")),
            (
                speech(json!({"stream_format": "sse"})),
                StatusCode::BAD_REQUEST,
                Some("stream_format"),
            ),
            (
                json!({"model": "tts-1", "input": INPUT}),
                StatusCode::BAD_REQUEST,
                Some("voice"),
            ),
            (speech(json!({"metadata": {}})), StatusCode::BAD_REQUEST, None),
            (speech(json!({"speed": "fast"})), StatusCode::BAD_REQUEST, None),
        ];
        for (request, status, param) in cases {
            let response = send(&state, post_json("/v1/audio/speech", &request, &[])).await;
            assert_eq!(response.status(), status, "{request}");
            let body = body_json(response).await;
            assert_eq!(body["error"]["type"], "invalid_request_error", "{request}");
            assert_eq!(body["error"]["param"].as_str(), param, "{request}");
            if status == StatusCode::NOT_FOUND {
                assert_eq!(body["error"]["code"], "model_not_found");
            }
        }
        let response = send(&state, post_json("/v1/audio/speech", &json!([1]), &[])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(state.stats().audio_bytes_served, 0);
    }

    #[tokio::test]
    async fn cut_after_aborts_the_body_after_that_many_chunks() {
        let state = default_state();
        let response = send(
            &state,
            post_json(
                "/v1/audio/speech",
                &speech(json!({"response_format": "wav"})),
                &[("x-mock-cut-after", "2")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let (chunks, cut) = frames(response.into_body()).await;
        assert!(cut, "the body ends with an error");
        assert_eq!(chunks.len(), 2);
        let sent: usize = chunks.iter().map(Bytes::len).sum();
        assert_eq!(state.stats().audio_bytes_served, sent as u64);

        // Past the last chunk the body still ends in an error, not cleanly.
        let response = send(
            &state,
            post_json("/v1/audio/speech", &speech(json!({})), &[("x-mock-cut-after", "1000")]),
        )
        .await;
        let (chunks, cut) = frames(response.into_body()).await;
        assert!(cut);
        assert_eq!(sniff(&chunks.concat()), Some(AudioFormat::Mp3));
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_are_paced_by_the_chunk_interval() {
        let state = default_state();
        let started = tokio::time::Instant::now();
        let response = send(
            &state,
            post_json(
                "/v1/audio/speech",
                &speech(json!({})),
                &[("x-mock-chunk-interval-ms", "100"), ("x-mock-latency-ms", "50")],
            ),
        )
        .await;
        let (chunks, cut) = frames(response.into_body()).await;
        assert!(!cut);
        let expected = Duration::from_millis(50 + 100 * (chunks.len() as u64 - 1));
        assert_eq!(started.elapsed(), expected);
    }

    #[tokio::test]
    async fn scripted_errors_apply_to_speech() {
        let state = default_state();
        let response = send(
            &state,
            post_json(
                "/v1/audio/speech",
                &speech(json!({})),
                &[("x-mock-status", "429"), ("x-mock-retry-after", "7")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.headers()["x-mock-injected"], "true");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");

        let response = send(
            &state,
            post_json("/v1/audio/speech", &speech(json!({})), &[("x-mock-error-rate", "1")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = send(
            &state,
            post_json("/v1/audio/speech", &speech(json!({})), &[("x-mock-cut-after", "x")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let stats = state.stats();
        assert_eq!((stats.speech_requests, stats.errors_injected), (3, 2));
    }

    #[test]
    fn split_makes_at_least_four_bounded_chunks() {
        assert!(split(Bytes::new()).is_empty());
        let sizes = |len: usize| {
            split(Bytes::from(vec![0u8; len]))
                .iter()
                .map(Bytes::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(3), [1, 1, 1]);
        assert_eq!(sizes(10), [3, 3, 3, 1]);
        let big = sizes(100_000);
        assert_eq!(big.len(), 7);
        assert_eq!(big.iter().sum::<usize>(), 100_000);
        assert!(big.iter().all(|len| *len <= MAX_CHUNK_BYTES));
    }
}
