//! `POST /v1/speech`: Amazon Polly's `SynthesizeSpeech`.
//!
//! Written from Polly's API reference, independently of the router's
//! adapter. The request is SigV4-signed for service `polly` (shape checked,
//! signature not verified, see the `aws` module) and carries a JSON body:
//! `OutputFormat` (`mp3`, `ogg_vorbis`, `ogg_opus`, `pcm` or `json`),
//! `Text`, `VoiceId` (all three required), `TextType` (`text` or `ssml`),
//! `SampleRate` (a string: `8000`–`48000` for mp3 and ogg_vorbis, `8000` or
//! `16000` for pcm, `48000` for ogg_opus; by default 22050 for the
//! `standard` engine and 24000 for the others, 16000 for pcm, 48000 for
//! ogg_opus), `Engine` (`standard`, `neural`, `long-form`, `generative`),
//! `LanguageCode`, `LexiconNames` (the mock stores no lexicons, so any name
//! is `LexiconNotFoundException`) and `SpeechMarkTypes` (only with `json`).
//! Text may have at most 6000 characters, 3000 of them billed (SSML tags
//! are not billed). `VoiceId` is any capitalised name: the mock does not
//! keep Polly's voice list.
//!
//! The answer is real audio as long as the billed characters take to say
//! (see `oneflow_audio::generate::speech_duration`), streamed in at least
//! four chunks paced by the chunk interval and cuttable by
//! `x-mock-cut-after` exactly like OpenAI speech, with `Content-Type`
//! `audio/mpeg`, `audio/ogg` or `audio/pcm` (raw 16-bit little-endian mono
//! at `SampleRate`) and `x-amzn-RequestCharacters`. Two approximations: the
//! generator has no Vorbis encoder, so `ogg_vorbis` is answered with Opus in
//! Ogg (same `audio/ogg` type), and MP3 at 8 kHz comes at 16 kHz. `json`
//! answers `application/x-json-stream` speech marks, one JSON object a line
//! (`sentence` and `word` marks; their `start`/`end` offsets count bytes of
//! the text with SSML tags removed).
//!
//! Errors are AWS REST-JSON: status, `x-amzn-ErrorType` and `{"message"}`
//! (`ValidationException`, `InvalidSampleRateException`,
//! `TextLengthExceededException`, `InvalidSsmlException`,
//! `MarksNotSupportedForFormatException`,
//! `SsmlMarksNotSupportedForTextTypeException`, `LexiconNotFoundException`,
//! all 400). Only `x-mock-*` headers script it.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use oneflow_audio::generate::{MAX_SYNTHESIS, speech_duration, synthesize};
use oneflow_audio::{AudioFormat, Task};
use serde_json::{Value, json};

use crate::MockState;
use crate::audio_out::{closest_rate, raw_pcm};
use crate::aws::{AwsError, check_sigv4, with_request_id};
use crate::google::tts::strip_tags;
use crate::mock_transcript::transcript;
use crate::script::{Directives, injected_failure};
use crate::speech::split;
use crate::stats::Counters;
use crate::stream_body::chunked_body;

/// Polly's error bodies carry `message`.
const MESSAGE: &str = "message";
/// The characters-billed header.
const REQUEST_CHARACTERS: HeaderName = HeaderName::from_static("x-amzn-requestcharacters");
/// Most characters a request's text may have, SSML included.
const MAX_TEXT_CHARS: usize = 6000;
/// Most billed characters (SSML tags excluded).
const MAX_BILLED_CHARS: usize = 3000;
/// Most lexicons a request may name.
const MAX_LEXICONS: usize = 5;

/// `POST /v1/speech`.
pub(crate) async fn synthesize_speech(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.polly_requests);
    counters.record_headers(&headers);
    with_request_id(match handle(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    })
}

fn error(kind: &'static str, message: impl Into<std::borrow::Cow<'static, str>>) -> AwsError {
    AwsError::new(MESSAGE, StatusCode::BAD_REQUEST, kind, message)
}

fn validation(message: impl Into<std::borrow::Cow<'static, str>>) -> AwsError {
    error("ValidationException", message)
}

/// Polly's error type for an injected status.
fn error_type(status: u16) -> &'static str {
    match status {
        403 => "AccessDeniedException",
        429 => "ThrottlingException",
        500..=599 => "ServiceFailureException",
        _ => "ValidationException",
    }
}

/// `OutputFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Mp3,
    OggVorbis,
    OggOpus,
    Pcm,
    Json,
}

impl Output {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "mp3" => Some(Self::Mp3),
            "ogg_vorbis" => Some(Self::OggVorbis),
            "ogg_opus" => Some(Self::OggOpus),
            "pcm" => Some(Self::Pcm),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::OggVorbis | Self::OggOpus => "audio/ogg",
            Self::Pcm => "audio/pcm",
            Self::Json => "application/x-json-stream",
        }
    }

    /// The sample rates Polly accepts for this format.
    fn rates(self) -> &'static [u32] {
        match self {
            Self::Mp3 | Self::OggVorbis => &[8_000, 16_000, 22_050, 24_000, 44_100, 48_000],
            Self::Pcm => &[8_000, 16_000],
            Self::OggOpus => &[48_000],
            Self::Json => &[],
        }
    }
}

/// A string field, `None` when absent or null; a non-string is a validation error.
fn opt_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, AwsError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(validation(format!("Value at '{field}' must be a string."))),
    }
}

fn required<'a>(body: &'a Value, field: &str) -> Result<&'a str, AwsError> {
    opt_str(body, field)?.ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// A list-of-strings field.
fn opt_list<'a>(body: &'a Value, field: &str) -> Result<Vec<&'a str>, AwsError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| validation(format!("Every entry of '{field}' must be a string.")))
            })
            .collect(),
        Some(_) => Err(validation(format!("Value at '{field}' must be a list of strings."))),
    }
}

async fn handle(state: &MockState, headers: &HeaderMap, body: &[u8]) -> Result<Response, AwsError> {
    check_sigv4(headers, "polly", MESSAGE)?;
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return Err(error(
                "SerializationException",
                "The request body is not a JSON object.",
            ));
        }
    };
    let directives = Directives::read(headers, None).map_err(|err| validation(err.message()))?;
    if let Some(voice) = opt_str(&request, "VoiceId")?.filter(|voice| !voice.is_empty()) {
        state.counters().count_model("polly", voice);
    }
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(AwsError::injected(MESSAGE, &injection, error_type(injection.status)));
    }

    let output_name = required(&request, "OutputFormat")?;
    let text = required(&request, "Text")?;
    let voice = required(&request, "VoiceId")?;
    let output = Output::parse(output_name).ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value '{output_name}' at 'outputFormat' failed to satisfy constraint: Member must satisfy enum value set: [json, mp3, ogg_opus, ogg_vorbis, pcm]"
        ))
    })?;
    let mut letters = voice.chars();
    if !letters.next().is_some_and(|first| first.is_ascii_uppercase()) || !letters.all(|c| c.is_ascii_alphabetic()) {
        return Err(validation(format!(
            "1 validation error detected: Value '{voice}' at 'voiceId' failed to satisfy constraint: Member must be a Polly voice id"
        )));
    }
    let engine = opt_str(&request, "Engine")?.unwrap_or("standard");
    if !["standard", "neural", "long-form", "generative"].contains(&engine) {
        return Err(validation(format!(
            "1 validation error detected: Value '{engine}' at 'engine' failed to satisfy constraint: Member must satisfy enum value set: [standard, neural, long-form, generative]"
        )));
    }
    let ssml = match opt_str(&request, "TextType")?.unwrap_or("text") {
        "text" => false,
        "ssml" => true,
        other => {
            return Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'textType' failed to satisfy constraint: Member must satisfy enum value set: [ssml, text]"
            )));
        }
    };
    opt_str(&request, "LanguageCode")?;
    let lexicons = opt_list(&request, "LexiconNames")?;
    if lexicons.len() > MAX_LEXICONS {
        return Err(validation("LexiconNames may name at most 5 lexicons."));
    }
    if let Some(lexicon) = lexicons.first() {
        return Err(error(
            "LexiconNotFoundException",
            format!("Lexicon not found: {lexicon} (the OneFlow mock stores no lexicons)."),
        ));
    }
    let marks = opt_list(&request, "SpeechMarkTypes")?;
    for mark in &marks {
        if !["sentence", "ssml", "viseme", "word"].contains(mark) {
            return Err(validation(format!(
                "1 validation error detected: Value '{mark}' at 'speechMarkTypes' failed to satisfy constraint: Member must satisfy enum value set: [sentence, ssml, viseme, word]"
            )));
        }
    }
    match (output, marks.is_empty()) {
        (Output::Json, true) => {
            return Err(validation("SpeechMarkTypes is required when OutputFormat is json."));
        }
        (Output::Json, false) => {}
        (_, false) => {
            return Err(error(
                "MarksNotSupportedForFormatException",
                "Speech marks are only available with OutputFormat json.",
            ));
        }
        (_, true) => {}
    }
    if marks.contains(&"ssml") && !ssml {
        return Err(error(
            "SsmlMarksNotSupportedForTextTypeException",
            "SSML speech marks need TextType ssml.",
        ));
    }

    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(error(
            "TextLengthExceededException",
            format!("Text is longer than {MAX_TEXT_CHARS} characters."),
        ));
    }
    let spoken = if ssml {
        let trimmed = text.trim();
        if !(trimmed.starts_with("<speak") && trimmed.ends_with("</speak>")) {
            return Err(error(
                "InvalidSsmlException",
                "Invalid SSML request: the text must be one <speak> element.",
            ));
        }
        strip_tags(trimmed)
    } else {
        text.to_owned()
    };
    let billed = spoken.chars().count();
    if billed > MAX_BILLED_CHARS {
        return Err(error(
            "TextLengthExceededException",
            format!("Text has {billed} billed characters; at most {MAX_BILLED_CHARS} are allowed."),
        ));
    }

    let rate = match opt_str(&request, "SampleRate")? {
        Some(rate) if output != Output::Json => match rate.parse::<u32>() {
            Ok(hz) if output.rates().contains(&hz) => hz,
            _ => {
                return Err(error(
                    "InvalidSampleRateException",
                    format!("Sample rate {rate} is not valid for output format {output_name}."),
                ));
            }
        },
        _ => match output {
            Output::Pcm => 16_000,
            Output::OggOpus => 48_000,
            _ if engine == "standard" => 22_050,
            _ => 24_000,
        },
    };

    let duration = speech_duration(billed, 1.0).min(MAX_SYNTHESIS);
    let audio = if output == Output::Json {
        speech_marks(&spoken, duration, &marks).into_bytes()
    } else {
        tokio::task::spawn_blocking(move || match output {
            Output::Mp3 => synthesize(AudioFormat::Mp3, duration, closest_rate(AudioFormat::Mp3, rate)),
            Output::OggVorbis | Output::OggOpus => {
                synthesize(AudioFormat::Opus, duration, closest_rate(AudioFormat::Opus, rate))
            }
            Output::Pcm | Output::Json => raw_pcm(duration, rate),
        })
        .await
        .map_err(|err| service_failure(&err.to_string()))?
        .map_err(|err| service_failure(&err.to_string()))?
    };

    let chunks = split(Bytes::from(audio));
    let interval = directives.chunk_interval.unwrap_or(state.config().chunk_interval);
    let cut_at = directives.cut_after.map(|after| after.min(chunks.len()));
    let counting = state.clone();
    let body = chunked_body(chunks, interval, cut_at, move |bytes| {
        counting.counters().add_audio_bytes(bytes);
    });
    let mut response = ([(CONTENT_TYPE, output.content_type())], body).into_response();
    response
        .headers_mut()
        .insert(REQUEST_CHARACTERS, HeaderValue::from(billed));
    Ok(response)
}

fn service_failure(detail: &str) -> AwsError {
    AwsError::new(
        MESSAGE,
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceFailureException",
        format!("mock provider internal error: {detail}"),
    )
}

/// Sentence and word speech marks of `text` spoken over `duration`, one
/// JSON object a line.
fn speech_marks(text: &str, duration: std::time::Duration, marks: &[&str]) -> String {
    let timed = transcript(Task::Transcribe, "en", duration, text.to_owned());
    let millis = |at: std::time::Duration| u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
    let mut lines = Vec::new();
    let mut cursor = 0;
    let mut words = timed.words.iter();
    for segment in &timed.segments {
        let start = text[cursor..].find(&segment.text).map_or(cursor, |at| cursor + at);
        if marks.contains(&"sentence") {
            lines.push(
                json!({"time": millis(segment.start), "type": "sentence", "start": start,
                "end": start + segment.text.len(), "value": segment.text}),
            );
        }
        let mut word_cursor = start;
        let count = segment
            .text
            .split_whitespace()
            .filter(|token| {
                !token
                    .trim_matches(|c: char| c.is_ascii_punctuation() && c != '\'')
                    .is_empty()
            })
            .count();
        for word in words.by_ref().take(count) {
            let at = text[word_cursor..]
                .find(&word.word)
                .map_or(word_cursor, |at| word_cursor + at);
            word_cursor = at + word.word.len();
            if marks.contains(&"word") {
                lines.push(json!({"time": millis(word.start), "type": "word", "start": at,
                    "end": word_cursor, "value": word.word}));
            }
        }
        cursor = start + segment.text.len();
    }
    lines.sort_by_key(|line| line["time"].as_u64());
    lines.iter().map(|line| format!("{line}\n")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use http_body_util::BodyExt;
    use oneflow_audio::{duration, inspect, sniff};

    use super::*;
    use crate::aws::test_headers::{DATE, sigv4};
    use crate::test_util::{body_bytes, body_json, default_state, post_json, send};

    const TEXT: &str = "Hello from Polly. This is a test.";

    fn request(format: &str) -> Value {
        json!({"OutputFormat": format, "Text": TEXT, "VoiceId": "Joanna"})
    }

    async fn call(state: &MockState, body: &Value, extra: &[(&str, &str)]) -> Response<Body> {
        let auth = sigv4("polly");
        let mut headers = vec![("authorization", auth.as_str()), DATE];
        headers.extend_from_slice(extra);
        send(state, post_json("/v1/speech", body, &headers)).await
    }

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

    use axum::http::Response;

    #[tokio::test]
    async fn every_format_streams_real_audio() {
        let state = default_state();
        let spoken = speech_duration(TEXT.chars().count(), 1.0);
        let mut served = 0;
        for (format, rate, content_type, sniffed, expected_rate) in [
            ("mp3", None, "audio/mpeg", Some(AudioFormat::Mp3), 22_050),
            ("mp3", Some("24000"), "audio/mpeg", Some(AudioFormat::Mp3), 24_000),
            ("ogg_opus", None, "audio/ogg", Some(AudioFormat::Opus), 48_000),
            (
                "ogg_vorbis",
                Some("16000"),
                "audio/ogg",
                Some(AudioFormat::Opus),
                16_000,
            ),
            ("pcm", None, "audio/pcm", None, 16_000),
            ("pcm", Some("8000"), "audio/pcm", None, 8_000),
        ] {
            let mut body = request(format);
            if let Some(rate) = rate {
                body["SampleRate"] = json!(rate);
            }
            let response = call(&state, &body, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{format}");
            assert_eq!(response.headers()[CONTENT_TYPE], content_type);
            assert_eq!(response.headers()["x-amzn-requestcharacters"], "33");
            assert!(response.headers().contains_key("x-amzn-requestid"));
            let (chunks, cut) = frames(response.into_body()).await;
            assert!(!cut);
            assert!(chunks.len() >= 4, "{format}: {} chunks", chunks.len());
            let audio = chunks.concat();
            served += audio.len() as u64;
            assert_eq!(sniff(&audio), sniffed, "{format}");
            let measured = if format == "pcm" {
                assert_eq!(audio.len() % 2, 0);
                Duration::from_nanos((audio.len() as u64 / 2) * 1_000_000_000 / u64::from(expected_rate))
            } else {
                let info = inspect(audio, None).unwrap();
                assert_eq!(info.sample_rate, Some(expected_rate), "{format}");
                info.duration
            };
            assert!(
                measured.abs_diff(spoken) <= Duration::from_millis(30),
                "{format}: {measured:?} vs {spoken:?}"
            );
        }
        let stats = state.stats();
        assert_eq!(stats.polly_requests, 6);
        assert_eq!(stats.calls_by_model["polly/Joanna"], 6);
        assert_eq!(stats.audio_bytes_served, served);
    }

    #[tokio::test]
    async fn ssml_bills_only_the_text_and_marks_come_as_json_lines() {
        let state = default_state();
        let body = json!({"OutputFormat": "mp3", "TextType": "ssml", "VoiceId": "Matthew", "Engine": "neural",
            "Text": "<speak>Hi <break time=\"1s\"/>there.</speak>"});
        let response = call(&state, &body, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-amzn-requestcharacters"], "9");
        let audio = body_bytes(response).await;
        assert_eq!(duration(audio, None).unwrap().as_millis() / 100, 6);

        let body = json!({"OutputFormat": "json", "Text": TEXT, "VoiceId": "Joanna",
            "SpeechMarkTypes": ["sentence", "word"]});
        let response = call(&state, &body, &[]).await;
        assert_eq!(response.headers()[CONTENT_TYPE], "application/x-json-stream");
        let text = String::from_utf8(body_bytes(response).await.to_vec()).unwrap();
        let marks: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(marks[0]["type"], "sentence");
        assert_eq!(marks[0]["value"], "Hello from Polly.");
        assert_eq!(
            marks[1],
            json!({"time": 0, "type": "word", "start": 0, "end": 5, "value": "Hello"})
        );
        let this = marks.iter().find(|mark| mark["value"] == "This").unwrap();
        assert_eq!(this["start"], 18);
        assert_eq!(marks.iter().filter(|mark| mark["type"] == "sentence").count(), 2);
        assert_eq!(marks.iter().filter(|mark| mark["type"] == "word").count(), 7);
    }

    #[tokio::test]
    async fn validation_errors_have_polly_types() {
        let state = default_state();
        let with = |key: &str, value: Value| {
            let mut body = request("mp3");
            body[key] = value;
            body
        };
        let without = |key: &str| {
            let mut body = request("mp3");
            body.as_object_mut().unwrap().remove(key);
            body
        };
        let cases = [
            (without("VoiceId"), "ValidationException"),
            (without("Text"), "ValidationException"),
            (without("OutputFormat"), "ValidationException"),
            (with("OutputFormat", json!("wav")), "ValidationException"),
            (with("VoiceId", json!("joanna!")), "ValidationException"),
            (with("Engine", json!("turbo")), "ValidationException"),
            (with("TextType", json!("html")), "ValidationException"),
            (with("SampleRate", json!("11025")), "InvalidSampleRateException"),
            (
                json!({"OutputFormat": "pcm", "Text": "x", "VoiceId": "Joanna", "SampleRate": "22050"}),
                "InvalidSampleRateException",
            ),
            (
                json!({"OutputFormat": "ogg_opus", "Text": "x", "VoiceId": "Joanna", "SampleRate": "24000"}),
                "InvalidSampleRateException",
            ),
            (with("Text", json!("a".repeat(3001))), "TextLengthExceededException"),
            (with("Text", json!("a".repeat(6001))), "TextLengthExceededException"),
            (
                json!({"OutputFormat": "mp3", "Text": "<p>x</p>", "TextType": "ssml", "VoiceId": "Joanna"}),
                "InvalidSsmlException",
            ),
            (
                with("SpeechMarkTypes", json!(["word"])),
                "MarksNotSupportedForFormatException",
            ),
            (
                json!({"OutputFormat": "json", "Text": "x", "VoiceId": "Joanna"}),
                "ValidationException",
            ),
            (
                json!({"OutputFormat": "json", "Text": "x", "VoiceId": "Joanna", "SpeechMarkTypes": ["ssml"]}),
                "SsmlMarksNotSupportedForTextTypeException",
            ),
            (with("LexiconNames", json!(["mine"])), "LexiconNotFoundException"),
            (json!([1]), "SerializationException"),
        ];
        for (body, kind) in cases {
            let response = call(&state, &body, &[]).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(response.headers()["x-amzn-errortype"], kind, "{body}");
            assert!(body_json(response).await["message"].is_string());
        }
        assert_eq!(state.stats().audio_bytes_served, 0);
    }

    #[tokio::test]
    async fn sigv4_for_polly_is_required() {
        let state = default_state();
        let response = send(&state, post_json("/v1/speech", &request("mp3"), &[DATE])).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        let wrong = sigv4("transcribe");
        let response = send(
            &state,
            post_json("/v1/speech", &request("mp3"), &[("authorization", &wrong), DATE]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()["x-amzn-errortype"], "InvalidSignatureException");
        let right = sigv4("polly");
        let response = send(
            &state,
            post_json("/v1/speech", &request("mp3"), &[("authorization", &right)]),
        )
        .await;
        assert_eq!(response.headers()["x-amzn-errortype"], "IncompleteSignatureException");
        let stats = state.stats();
        assert_eq!(stats.polly_requests, 3);
        assert!(stats.calls_by_model.is_empty(), "refused before the body was read");
    }

    #[tokio::test]
    async fn knobs_inject_pace_and_cut() {
        let state = default_state();
        let response = call(&state, &request("mp3"), &[("x-mock-status", "429")]).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(response.headers()["retry-after"], "1");
        let response = call(&state, &request("mp3"), &[("x-mock-error-rate", "1")]).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-amzn-errortype"], "ServiceFailureException");
        assert!(body_json(response).await["message"].is_string());

        let response = call(&state, &request("pcm"), &[("x-mock-cut-after", "2")]).await;
        let (chunks, cut) = frames(response.into_body()).await;
        assert!(cut);
        assert_eq!(chunks.len(), 2);
        let stats = state.stats();
        assert_eq!(stats.errors_injected, 2);
        assert_eq!(stats.calls_by_model["polly/Joanna"], 3);
        assert_eq!(
            stats.audio_bytes_served,
            chunks.iter().map(|c| c.len() as u64).sum::<u64>()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_are_paced() {
        let state = default_state();
        let started = tokio::time::Instant::now();
        let response = call(
            &state,
            &request("mp3"),
            &[("x-mock-chunk-interval-ms", "100"), ("x-mock-latency-ms", "50")],
        )
        .await;
        let (chunks, _) = frames(response.into_body()).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(50 + 100 * (chunks.len() as u64 - 1))
        );
    }
}
