//! `POST /stream-transcription`: Amazon Transcribe's `StartStreamTranscription`.
//!
//! Written from Transcribe's API reference and its event-stream encoding
//! description, independently of the router's adapter. The request is
//! SigV4-signed for service `transcribe` (shape checked, signature not
//! verified, see the `aws` module) with `x-amz-content-sha256:
//! STREAMING-AWS4-HMAC-SHA256-EVENTS`, and names its audio in headers:
//! `x-amzn-transcribe-language-code` (required), `-sample-rate` (8000–48000),
//! `-media-encoding` (`pcm`, `flac` or `ogg-opus`) and optionally
//! `-session-id` (a UUID; one is made up otherwise). A bad header is an HTTP
//! 400 `BadRequestException` before the stream starts.
//!
//! The body is event-stream messages: each a signed envelope (`:date`, a
//! timestamp header, and `:chunk-signature`, 32 bytes) whose payload is
//! itself a message — `:message-type` `event`, `:event-type` `AudioEvent`,
//! `:content-type` `application/octet-stream` — carrying audio bytes; the
//! last envelope has an empty payload. The mock reads the whole body (it is
//! not full-duplex: results come after the client ends its stream), checks
//! every length, CRC and header, reassembles and measures the audio (pcm by
//! its byte count, flac and ogg-opus with `oneflow_audio::inspect`, which
//! must find that container). What it cannot accept is answered in-stream,
//! as Transcribe does once the stream is open: a 200 whose body is one
//! `:message-type exception` message, `:exception-type`
//! `BadRequestException`, payload `{"Message": …}`.
//!
//! The answer (`application/vnd.amazon.eventstream`, with
//! `x-amzn-transcribe-session-id`, `-language-code`, `-sample-rate`,
//! `-media-encoding` and `x-amzn-RequestId` headers) is one `TranscriptEvent`
//! message after another, payload `{"Transcript":{"Results":[…]}}`: for each
//! sentence of the transcript (see `mock_transcript`: `x-mock-transcript`,
//! else a sentence naming the measured duration) partial results
//! (`IsPartial: true`, growing) and then the final one, all under one
//! `ResultId`, with `StartTime`/`EndTime` in seconds and
//! `Alternatives[0]` holding `Transcript` and `Items` (`pronunciation` and
//! `punctuation`, each with `Content`, `StartTime`, `EndTime`,
//! `Confidence`). The chunk interval paces the events; `x-mock-cut-after`
//! cuts the body and `x-mock-stream-error-after` /
//! `x-mock-stream-error-status` end it with an exception message (default
//! `LimitExceededException`), both counting transcript events. Other
//! injected errors are HTTP errors with an `x-amzn-ErrorType` header.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use oneflow_audio::{AudioFormat, Task, inspect};
use serde_json::{Value, json};

use crate::MockState;
use crate::aws::{AwsError, check_sigv4, with_request_id};
use crate::eventstream::{self, FrameTooLarge, HeaderValue as EventHeader, Message};
use crate::mock_transcript::{default_text, transcript};
use crate::script::{Directives, injected_failure};
use crate::stats::Counters;
use crate::stream_body::{Ending, EventList};

/// Transcribe's error bodies carry `Message`.
const MESSAGE: &str = "Message";
/// The payload hash a streaming SigV4 request declares.
const STREAMING_SHA256: &str = "STREAMING-AWS4-HMAC-SHA256-EVENTS";
const LANGUAGE: &str = "x-amzn-transcribe-language-code";
const SAMPLE_RATE: &str = "x-amzn-transcribe-sample-rate";
const MEDIA_ENCODING: &str = "x-amzn-transcribe-media-encoding";
const SESSION_ID: HeaderName = HeaderName::from_static("x-amzn-transcribe-session-id");
/// Bytes of a SigV4 chunk signature (an HMAC-SHA256).
const SIGNATURE_BYTES: usize = 32;
/// The most audio a request body may carry.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// In-stream exception status when `x-mock-stream-error-status` is not given.
const DEFAULT_STREAM_ERROR_STATUS: u16 = 429;
/// Confidence of every recognised word.
const CONFIDENCE: f64 = 0.98;

/// The body limit layer of the route.
pub(crate) fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_BODY_BYTES)
}

/// `POST /stream-transcription`.
pub(crate) async fn stream_transcription(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.transcribe_requests);
    Counters::bump(&counters.stream_requests);
    counters.record_headers(&headers);
    with_request_id(match handle(&state, &headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    })
}

fn bad_request(message: impl Into<std::borrow::Cow<'static, str>>) -> AwsError {
    AwsError::new(MESSAGE, StatusCode::BAD_REQUEST, "BadRequestException", message)
}

/// Transcribe's exception type for a status.
fn error_type(status: u16) -> &'static str {
    match status {
        403 => "AccessDeniedException",
        409 => "ConflictException",
        429 => "LimitExceededException",
        503 => "ServiceUnavailableException",
        500..=599 => "InternalFailureException",
        _ => "BadRequestException",
    }
}

/// `x-amzn-transcribe-media-encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Pcm,
    Flac,
    OggOpus,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Self::Pcm => "pcm",
            Self::Flac => "flac",
            Self::OggOpus => "ogg-opus",
        }
    }
}

/// The stream's parameters, from the request headers.
struct Session {
    language: String,
    sample_rate: u32,
    encoding: Encoding,
    id: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn handle(state: &MockState, headers: &HeaderMap, body: Bytes) -> Result<Response, AwsError> {
    check_sigv4(headers, "transcribe", MESSAGE)?;
    if header(headers, "x-amz-content-sha256") != Some(STREAMING_SHA256) {
        return Err(AwsError::new(
            MESSAGE,
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            format!("A streaming request must declare x-amz-content-sha256: {STREAMING_SHA256}."),
        ));
    }
    let language = header(headers, LANGUAGE).unwrap_or_default().trim();
    if !language.is_empty() {
        state.counters().count_model("transcribe", language);
    }
    let directives = Directives::read(headers, None).map_err(|err| bad_request(err.message()))?;
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(AwsError::injected(MESSAGE, &injection, error_type(injection.status)));
    }
    let session = session(headers, language)?;

    let events = match read_audio(body, session.encoding, session.sample_rate) {
        Ok(duration) => transcript_events(&session, duration, directives.transcript.clone()),
        Err(why) => {
            let payload = json!({"Message": why}).to_string();
            let mut events = EventList::default();
            events.push(eventstream::exception("BadRequestException", payload.as_bytes()).map_err(frame_error)?);
            Ok(events)
        }
    }
    .map_err(frame_error)?;

    if directives.stream_error_after.is_some() {
        Counters::bump(&state.counters().errors_injected);
    }
    let error = match directives.stream_error_after {
        Some(after) => {
            let status = directives.stream_error_status.unwrap_or(DEFAULT_STREAM_ERROR_STATUS);
            let payload = json!({"Message": crate::dialect_error::injected_message(status)}).to_string();
            Some((
                after,
                eventstream::exception(error_type(status), payload.as_bytes()).map_err(frame_error)?,
            ))
        }
        None => None,
    };
    let ending = Ending {
        cut_after: directives.cut_after,
        error,
    };
    let interval = directives.chunk_interval.unwrap_or(state.config().chunk_interval);
    let mut response = (
        [(CONTENT_TYPE, "application/vnd.amazon.eventstream")],
        events.into_body(interval, ending),
    )
        .into_response();
    let out = response.headers_mut();
    for (name, value) in [
        (SESSION_ID, session.id),
        (HeaderName::from_static(LANGUAGE), session.language),
        (HeaderName::from_static(SAMPLE_RATE), session.sample_rate.to_string()),
        (
            HeaderName::from_static(MEDIA_ENCODING),
            session.encoding.name().to_owned(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    }
    Ok(response)
}

fn frame_error(_: FrameTooLarge) -> AwsError {
    AwsError::new(
        MESSAGE,
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalFailureException",
        "mock provider internal error: event too large to frame",
    )
}

/// Validates the stream's headers.
fn session(headers: &HeaderMap, language: &str) -> Result<Session, AwsError> {
    let well_formed = language.len() >= 2
        && language
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !well_formed {
        return Err(bad_request(format!(
            "{LANGUAGE} is required and must be a language code such as en-US."
        )));
    }
    let sample_rate = header(headers, SAMPLE_RATE)
        .and_then(|rate| rate.trim().parse::<u32>().ok())
        .filter(|rate| (8_000..=48_000).contains(rate))
        .ok_or_else(|| bad_request(format!("{SAMPLE_RATE} is required and must be from 8000 to 48000.")))?;
    let encoding = match header(headers, MEDIA_ENCODING).map(str::trim) {
        Some("pcm") => Encoding::Pcm,
        Some("flac") => Encoding::Flac,
        Some("ogg-opus") => Encoding::OggOpus,
        _ => {
            return Err(bad_request(format!(
                "{MEDIA_ENCODING} is required and must be pcm, flac or ogg-opus."
            )));
        }
    };
    let id = match header(headers, SESSION_ID.as_str()) {
        Some(id) if is_uuid(id) => id.to_owned(),
        Some(_) => return Err(bad_request("x-amzn-transcribe-session-id must be a UUID.")),
        None => uuid::Uuid::new_v4().hyphenated().to_string(),
    };
    Ok(Session {
        language: language.to_owned(),
        sample_rate,
        encoding,
        id,
    })
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Unwraps the signed envelopes, reassembles the audio and measures it.
/// The error is the message of the `BadRequestException` to answer.
fn read_audio(body: Bytes, encoding: Encoding, sample_rate: u32) -> Result<Duration, String> {
    let envelopes = eventstream::decode_all(body).map_err(|err| format!("Invalid event stream: {}", err.0))?;
    let mut audio = BytesMut::new();
    let mut ended = false;
    for (index, envelope) in envelopes.iter().enumerate() {
        if ended {
            return Err(format!("Message {index} follows the empty end frame."));
        }
        check_envelope(index, envelope)?;
        if envelope.payload.is_empty() {
            ended = true;
            continue;
        }
        let inner = eventstream::decode_all(envelope.payload.clone())
            .map_err(|err| format!("Message {index}: its payload is not an event message: {}", err.0))?;
        let [event] = &inner[..] else {
            return Err(format!(
                "Message {index}: its payload must be exactly one event message."
            ));
        };
        let string = |name: &str| event.header(name).and_then(EventHeader::as_str);
        if string(":message-type") != Some("event") {
            return Err(format!("Message {index}: the inner :message-type must be event."));
        }
        match string(":event-type") {
            Some("AudioEvent") => {
                if string(":content-type") != Some("application/octet-stream") {
                    return Err(format!(
                        "Message {index}: an AudioEvent's :content-type must be application/octet-stream."
                    ));
                }
                audio.extend_from_slice(&event.payload);
            }
            Some("ConfigurationEvent") => {}
            other => {
                return Err(format!(
                    "Message {index}: unknown :event-type {}.",
                    other.unwrap_or("(none)")
                ));
            }
        }
    }
    if !ended {
        return Err("The stream ended without the empty end frame.".to_owned());
    }
    let audio = audio.freeze();
    match encoding {
        Encoding::Pcm => {
            if !audio.len().is_multiple_of(2) {
                return Err("pcm audio must be whole 16-bit samples (an even number of bytes).".to_owned());
            }
            let samples = (audio.len() / 2) as u128;
            Ok(Duration::from_nanos(
                u64::try_from(samples * 1_000_000_000 / u128::from(sample_rate)).unwrap_or(u64::MAX),
            ))
        }
        Encoding::Flac | Encoding::OggOpus => {
            if audio.is_empty() {
                return Ok(Duration::ZERO);
            }
            let wanted = if encoding == Encoding::Flac {
                AudioFormat::Flac
            } else {
                AudioFormat::Opus
            };
            let info =
                inspect(audio, None).map_err(|err| format!("The audio is not valid {}: {err}", encoding.name()))?;
            if info.format != wanted {
                return Err(format!(
                    "The media encoding is {} but the audio is {}.",
                    encoding.name(),
                    info.format
                ));
            }
            Ok(info.duration)
        }
    }
}

/// Checks the signing headers of one envelope.
fn check_envelope(index: usize, envelope: &Message) -> Result<(), String> {
    match envelope.header(":date") {
        Some(EventHeader::Timestamp(_)) => {}
        Some(_) => return Err(format!("Message {index}: :date must be a timestamp header.")),
        None => return Err(format!("Message {index}: the :date header is missing.")),
    }
    match envelope.header(":chunk-signature") {
        Some(EventHeader::Bytes(signature)) if signature.len() == SIGNATURE_BYTES => Ok(()),
        Some(_) => Err(format!(
            "Message {index}: :chunk-signature must be a {SIGNATURE_BYTES}-byte bytes header."
        )),
        None => Err(format!("Message {index}: the :chunk-signature header is missing.")),
    }
}

/// Seconds with millisecond precision.
fn seconds(at: Duration) -> f64 {
    at.as_millis() as f64 / 1000.0
}

/// The transcript events of `duration` of audio: partial then final results per sentence.
fn transcript_events(
    session: &Session,
    duration: Duration,
    scripted: Option<String>,
) -> Result<EventList, FrameTooLarge> {
    let mut events = EventList::default();
    let event = |results: Vec<Value>| {
        let payload = json!({"Transcript": {"Results": results}}).to_string();
        eventstream::event("TranscriptEvent", payload.as_bytes())
    };
    if duration.is_zero() && scripted.is_none() {
        events.push_content(event(Vec::new())?);
        return Ok(events);
    }
    let text = scripted.unwrap_or_else(|| default_text(Task::Transcribe, duration));
    let heard = transcript(Task::Transcribe, &session.language, duration, text);
    let mut words = heard.words.iter();
    for segment in &heard.segments {
        // Each whitespace token: its word (timed) and trailing punctuation.
        let mut tokens = Vec::new();
        for token in segment.text.split_whitespace() {
            let word = token.trim_matches(|c: char| c.is_ascii_punctuation() && c != '\'');
            let punctuation: String = token
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_punctuation() && *c != '\'')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let timed = if word.is_empty() { None } else { words.next() };
            tokens.push((token, timed, punctuation));
        }
        let result_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let count = tokens.len();
        let mut cuts: Vec<usize> = [count.div_ceil(3), (2 * count).div_ceil(3)]
            .into_iter()
            .filter(|cut| *cut > 0 && *cut < count)
            .collect();
        cuts.dedup();
        cuts.push(count);
        let mut last_end = segment.start;
        for cut in cuts {
            let mut items = Vec::new();
            let mut end = segment.start;
            for (_, timed, punctuation) in &tokens[..cut] {
                if let Some(word) = timed {
                    items.push(json!({"Type": "pronunciation", "Content": word.word,
                        "StartTime": seconds(word.start), "EndTime": seconds(word.end),
                        "Confidence": CONFIDENCE, "VocabularyFilterMatch": false}));
                    end = word.end;
                }
                if !punctuation.is_empty() {
                    items.push(json!({"Type": "punctuation", "Content": punctuation,
                        "StartTime": seconds(end), "EndTime": seconds(end),
                        "Confidence": 0.0, "VocabularyFilterMatch": false}));
                }
            }
            let partial = cut < count;
            let end = if partial { end.max(last_end) } else { segment.end };
            last_end = end;
            let text: Vec<&str> = tokens[..cut].iter().map(|(token, _, _)| *token).collect();
            events.push_content(event(vec![json!({
                "ResultId": result_id,
                "StartTime": seconds(segment.start),
                "EndTime": seconds(end),
                "IsPartial": partial,
                "Alternatives": [{"Transcript": text.join(" "), "Items": items}],
            })])?);
        }
    }
    Ok(events)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use oneflow_audio::generate::synthesize;

    use super::*;
    use crate::audio_out::raw_pcm;
    use crate::aws::test_headers::{DATE, sigv4};
    use crate::eventstream::encode_typed;
    use crate::test_util::{body_bytes, body_json, default_state, send};

    /// One audio event wrapped in a signed envelope; `None` is the end frame.
    pub(crate) fn envelope(audio: Option<&[u8]>) -> Vec<u8> {
        let payload = match audio {
            Some(audio) => encode_typed(
                &[
                    (":message-type", EventHeader::String("event".to_owned())),
                    (":event-type", EventHeader::String("AudioEvent".to_owned())),
                    (
                        ":content-type",
                        EventHeader::String("application/octet-stream".to_owned()),
                    ),
                ],
                audio,
            )
            .unwrap()
            .to_vec(),
            None => Vec::new(),
        };
        encode_typed(
            &[
                (":date", EventHeader::Timestamp(1_735_689_600_000)),
                (":chunk-signature", EventHeader::Bytes(Bytes::from(vec![0xAB; 32]))),
            ],
            &payload,
        )
        .unwrap()
        .to_vec()
    }

    /// The body streaming `audio` in chunks of `chunk` bytes, then the end frame.
    fn stream_body(audio: &[u8], chunk: usize) -> Vec<u8> {
        let mut body: Vec<u8> = audio.chunks(chunk).flat_map(|part| envelope(Some(part))).collect();
        body.extend(envelope(None));
        body
    }

    fn request(body: Vec<u8>, encoding: &str, rate: &str, extra: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::post("/stream-transcription")
            .header("authorization", sigv4("transcribe"))
            .header(DATE.0, DATE.1)
            .header("x-amz-content-sha256", STREAMING_SHA256)
            .header("content-type", "application/vnd.amazon.eventstream")
            .header(LANGUAGE, "en-US")
            .header(SAMPLE_RATE, rate)
            .header(MEDIA_ENCODING, encoding);
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::from(body)).unwrap()
    }

    /// One decoded answer message.
    #[derive(Debug)]
    struct Answer {
        headers: HashMap<String, String>,
        payload: Value,
    }

    async fn answers(body: Body) -> Vec<Answer> {
        let bytes = body.collect().await.unwrap().to_bytes();
        eventstream::decode_all(bytes)
            .unwrap()
            .into_iter()
            .map(|message| Answer {
                headers: message
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
                    .collect(),
                payload: serde_json::from_slice(&message.payload).unwrap(),
            })
            .collect()
    }

    #[tokio::test]
    async fn pcm_frames_round_trip_into_partial_then_final_results() {
        let state = default_state();
        let audio = raw_pcm(Duration::from_millis(2500), 16_000).unwrap();
        let session = "12345678-90ab-cdef-1234-567890abcdef";
        let response = send(
            &state,
            request(
                stream_body(&audio, 3200),
                "pcm",
                "16000",
                &[("x-amzn-transcribe-session-id", session)],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], "application/vnd.amazon.eventstream");
        assert_eq!(headers["x-amzn-transcribe-session-id"], session);
        assert_eq!(headers["x-amzn-transcribe-language-code"], "en-US");
        assert_eq!(headers["x-amzn-transcribe-sample-rate"], "16000");
        assert_eq!(headers["x-amzn-transcribe-media-encoding"], "pcm");
        assert!(headers.contains_key("x-amzn-requestid"));
        let messages = answers(response.into_body()).await;
        assert!(messages.iter().all(|m| m.headers[":message-type"] == "event"
            && m.headers[":event-type"] == "TranscriptEvent"
            && m.headers[":content-type"] == "application/json"));
        let results: Vec<&Value> = messages
            .iter()
            .map(|m| &m.payload["Transcript"]["Results"][0])
            .collect();
        let finals: Vec<&&Value> = results.iter().filter(|r| r["IsPartial"] == false).collect();
        assert_eq!(finals.len(), 2);
        assert!(results.len() > finals.len(), "partials come first");
        assert_eq!(results[0]["IsPartial"], true);
        assert_eq!(results[0]["ResultId"], finals[0]["ResultId"]);
        assert_eq!(
            finals[0]["Alternatives"][0]["Transcript"],
            "This is a mock transcription of 2.5 seconds of audio."
        );
        assert_eq!(finals[0]["StartTime"], 0.0);
        assert_eq!(finals[1]["EndTime"], 2.5);
        let items = finals[0]["Alternatives"][0]["Items"].as_array().unwrap();
        assert_eq!(items[0]["Type"], "pronunciation");
        assert_eq!(items[0]["Content"], "This");
        assert_eq!(items[0]["StartTime"], 0.0);
        let last = items.last().unwrap();
        assert_eq!(last["Type"], "punctuation");
        assert_eq!(last["Content"], ".");
        assert!(
            items
                .iter()
                .all(|item| item["Confidence"].is_number() && item["EndTime"].is_number())
        );
        let stats = state.stats();
        assert_eq!(stats.transcribe_requests, 1);
        assert_eq!(stats.calls_by_model["transcribe/en-US"], 1);
    }

    #[tokio::test]
    async fn flac_and_ogg_opus_are_measured_and_checked() {
        let state = default_state();
        let second = Duration::from_secs(1);
        for (encoding, format) in [("flac", AudioFormat::Flac), ("ogg-opus", AudioFormat::Opus)] {
            let audio = synthesize(format, second, 16_000).unwrap();
            let response = send(&state, request(stream_body(&audio, 1000), encoding, "16000", &[])).await;
            let messages = answers(response.into_body()).await;
            let text: Vec<&str> = messages
                .iter()
                .map(|m| &m.payload["Transcript"]["Results"][0])
                .filter(|result| result["IsPartial"] == false)
                .map(|result| result["Alternatives"][0]["Transcript"].as_str().unwrap())
                .collect();
            assert_eq!(text.len(), 2, "{encoding}");
            assert!(text[0].contains("of 1 seconds"), "{encoding}: {}", text[0]);
        }
        // FLAC bytes declared as ogg-opus are refused in-stream.
        let flac = synthesize(AudioFormat::Flac, second, 16_000).unwrap();
        let response = send(&state, request(stream_body(&flac, 1000), "ogg-opus", "16000", &[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let messages = answers(response.into_body()).await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].headers[":message-type"], "exception");
        assert_eq!(messages[0].headers[":exception-type"], "BadRequestException");
        assert!(messages[0].payload["Message"].as_str().unwrap().contains("ogg-opus"));
    }

    #[tokio::test]
    async fn scripted_transcript_and_empty_audio() {
        let state = default_state();
        let audio = raw_pcm(Duration::from_secs(1), 8_000).unwrap();
        let response = send(
            &state,
            request(
                stream_body(&audio, 4000),
                "pcm",
                "8000",
                &[("x-mock-transcript", "Hi!")],
            ),
        )
        .await;
        let messages = answers(response.into_body()).await;
        assert_eq!(messages.len(), 1, "one token: no partials");
        let result = &messages[0].payload["Transcript"]["Results"][0];
        assert_eq!(result["Alternatives"][0]["Transcript"], "Hi!");
        let items = result["Alternatives"][0]["Items"].as_array().unwrap();
        assert_eq!(
            (items[0]["Content"].clone(), items[1]["Content"].clone()),
            (json!("Hi"), json!("!"))
        );
        assert_eq!(items[0]["EndTime"], 1.0);

        let response = send(&state, request(envelope(None), "pcm", "8000", &[])).await;
        let messages = answers(response.into_body()).await;
        assert_eq!(messages[0].payload, json!({"Transcript": {"Results": []}}));
    }

    #[tokio::test]
    async fn broken_frames_are_bad_request_exceptions() {
        let state = default_state();
        let audio = raw_pcm(Duration::from_millis(200), 8_000).unwrap();
        let good = stream_body(&audio, 800);
        let mut bad_crc = good.clone();
        bad_crc[20] ^= 0xFF;
        let unsigned = {
            let mut body = encode_typed(&[(":date", EventHeader::Timestamp(0))], b"")
                .unwrap()
                .to_vec();
            body.extend(envelope(None));
            body
        };
        let short_signature = {
            let mut body = encode_typed(
                &[
                    (":date", EventHeader::Timestamp(0)),
                    (":chunk-signature", EventHeader::Bytes(Bytes::from_static(b"short"))),
                ],
                b"",
            )
            .unwrap()
            .to_vec();
            body.extend(envelope(None));
            body
        };
        let no_date = encode_typed(
            &[(":chunk-signature", EventHeader::Bytes(Bytes::from(vec![0; 32])))],
            b"",
        )
        .unwrap()
        .to_vec();
        let wrong_inner = {
            let inner = eventstream::encode(&[(":message-type", "event"), (":event-type", "Nope")], b"x").unwrap();
            let mut body = encode_typed(
                &[
                    (":date", EventHeader::Timestamp(0)),
                    (":chunk-signature", EventHeader::Bytes(Bytes::from(vec![0; 32]))),
                ],
                &inner,
            )
            .unwrap()
            .to_vec();
            body.extend(envelope(None));
            body
        };
        let no_end = stream_body(&audio, 800)[..envelope(Some(&audio[..800])).len()].to_vec();
        let mut after_end = good.clone();
        after_end.extend(envelope(Some(&audio[..2])));
        let odd = stream_body(&audio[..3], 800);
        for (name, body) in [
            ("bad crc", bad_crc),
            ("unsigned", unsigned),
            ("short signature", short_signature),
            ("no date", no_date),
            ("wrong inner", wrong_inner),
            ("no end frame", no_end),
            ("after end", after_end),
            ("odd pcm", odd),
            ("garbage", b"not an event stream at all".to_vec()),
        ] {
            let response = send(&state, request(body, "pcm", "8000", &[])).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            let messages = answers(response.into_body()).await;
            assert_eq!(messages.len(), 1, "{name}");
            assert_eq!(messages[0].headers[":message-type"], "exception", "{name}");
            assert_eq!(messages[0].headers[":exception-type"], "BadRequestException", "{name}");
            assert!(messages[0].payload["Message"].is_string(), "{name}");
        }
    }

    #[tokio::test]
    async fn headers_and_auth_are_checked_before_the_stream() {
        let state = default_state();
        let body = || envelope(None);
        for (encoding, rate, extra) in [
            ("mp3", "16000", vec![]),
            ("pcm", "4000", vec![]),
            ("pcm", "fast", vec![]),
            ("pcm", "16000", vec![("x-amzn-transcribe-session-id", "abc")]),
        ] {
            let response = send(&state, request(body(), encoding, rate, &extra)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{encoding} {rate}");
            assert_eq!(response.headers()["x-amzn-errortype"], "BadRequestException");
            assert!(body_json(response).await["Message"].is_string());
        }
        let no_language = Request::post("/stream-transcription")
            .header("authorization", sigv4("transcribe"))
            .header(DATE.0, DATE.1)
            .header("x-amz-content-sha256", STREAMING_SHA256)
            .header(SAMPLE_RATE, "16000")
            .header(MEDIA_ENCODING, "pcm")
            .body(Body::from(body()))
            .unwrap();
        let response = send(&state, no_language).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        let mut unsigned = request(body(), "pcm", "16000", &[]);
        unsigned.headers_mut().remove("authorization");
        let response = send(&state, unsigned).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        let mut polly_signed = request(body(), "pcm", "16000", &[]);
        polly_signed
            .headers_mut()
            .insert("authorization", HeaderValue::from_str(&sigv4("polly")).unwrap());
        let response = send(&state, polly_signed).await;
        assert_eq!(response.headers()["x-amzn-errortype"], "InvalidSignatureException");
        let mut unsigned_payload = request(body(), "pcm", "16000", &[]);
        unsigned_payload
            .headers_mut()
            .insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
        let response = send(&state, unsigned_payload).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let _ = body_bytes(response).await;
        assert_eq!(state.stats().transcribe_requests, 8);
    }

    #[tokio::test]
    async fn knobs_inject_http_and_in_stream_errors() {
        let state = default_state();
        let audio = raw_pcm(Duration::from_secs(2), 8_000).unwrap();
        let response = send(
            &state,
            request(stream_body(&audio, 8000), "pcm", "8000", &[("x-mock-status", "429")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-amzn-errortype"], "LimitExceededException");
        assert!(body_json(response).await["Message"].is_string());

        let response = send(
            &state,
            request(
                stream_body(&audio, 8000),
                "pcm",
                "8000",
                &[("x-mock-stream-error-after", "1")],
            ),
        )
        .await;
        let messages = answers(response.into_body()).await;
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].headers[":event-type"], "TranscriptEvent");
        assert_eq!(messages[1].headers[":exception-type"], "LimitExceededException");

        let response = send(
            &state,
            request(stream_body(&audio, 8000), "pcm", "8000", &[("x-mock-cut-after", "1")]),
        )
        .await;
        let mut body = response.into_body();
        let mut cut = false;
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                cut = true;
            }
        }
        assert!(cut);
        let stats = state.stats();
        assert_eq!(stats.errors_injected, 2);
        assert_eq!(stats.calls_by_model["transcribe/en-US"], 3);
    }
}
