//! `POST /v1/speech:recognize` and `POST /v1p1beta1/speech:recognize`:
//! Google Cloud Speech-to-Text's synchronous recognition.
//!
//! The request is `config` (`languageCode` required; `encoding`,
//! `sampleRateHertz` 8000–48000, `audioChannelCount`, `model`,
//! `enableWordTimeOffsets`, `enableWordConfidence`,
//! `enableAutomaticPunctuation`) and `audio.content` (base64; `audio.uri`
//! is refused, the mock cannot read Cloud Storage). The audio is decoded and
//! measured, and checked the way Google checks it:
//!
//! - WAV and FLAC carry their own header: `encoding` may be left out, and
//!   when given it (and `sampleRateHertz`, `audioChannelCount`) must match
//!   the header. WAV holds `LINEAR16` or `MULAW`.
//! - Every other encoding needs `encoding` and `sampleRateHertz`; headerless
//!   `LINEAR16` and `MULAW` are measured from their byte count, `OGG_OPUS`
//!   (8, 12, 16, 24 or 48 kHz only), `WEBM_OPUS` and `MP3` (only on
//!   `v1p1beta1`, as at Google) must really be that container.
//! - `AMR`, `AMR_WB` and `SPEEX_WITH_HEADER_BYTE` are refused: the mock
//!   cannot measure them.
//! - Audio over one minute is refused, as synchronous recognition is.
//!
//! The answer has one result per sentence of the transcript (see
//! `mock_transcript`: `x-mock-transcript`, else a sentence naming the
//! measured duration), each with `alternatives[0]` (`transcript`,
//! `confidence`, and `words` with `startTime`/`endTime` such as `"1.500s"`
//! when `enableWordTimeOffsets`), `resultEndTime` and `languageCode` (lower
//! case, as Google answers it); then `totalBilledTime` (whole seconds,
//! rounded up) and `requestId`. Punctuation is kept whatever
//! `enableAutomaticPunctuation` says.

use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use oneflow_audio::{AudioFormat, AudioInfo, Codec, Task, inspect, sniff};
use serde_json::{Value, json};

use super::{DIALECT, check_auth, invalid, opt_bool, opt_str, opt_u32, parse_body};
use crate::MockState;
use crate::dialect_error::DialectError;
use crate::mock_transcript::{default_text, transcript};
use crate::script::{Directives, injected_failure};
use crate::stats::Counters;

/// Synchronous recognition takes at most this much audio.
const MAX_SYNC_AUDIO: Duration = Duration::from_secs(60);
/// Google's limit on inline audio is 10 MB; base64 and JSON around it.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The confidence reported for every result.
const CONFIDENCE: f64 = 0.92;
/// Sample rates Opus audio may declare.
const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// The body limit layer of the recognition routes.
pub(crate) fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_BODY_BYTES)
}

/// Which API version was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V1p1beta1,
}

/// `POST /v1/speech:recognize`.
pub(crate) async fn recognize_v1(
    State(state): State<MockState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    recognize(&state, query.as_deref(), &headers, &body, Version::V1).await
}

/// `POST /v1p1beta1/speech:recognize`.
pub(crate) async fn recognize_v1p1beta1(
    State(state): State<MockState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    recognize(&state, query.as_deref(), &headers, &body, Version::V1p1beta1).await
}

async fn recognize(
    state: &MockState,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    version: Version,
) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.google_stt_requests);
    counters.record_headers(headers);
    match handle(state, query, headers, body, version).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// `config.encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Linear16,
    Flac,
    Mulaw,
    OggOpus,
    WebmOpus,
    Mp3,
    Unmeasurable,
}

impl Encoding {
    fn parse(name: &str) -> Result<Option<Self>, DialectError> {
        Ok(Some(match name {
            "ENCODING_UNSPECIFIED" => return Ok(None),
            "LINEAR16" => Self::Linear16,
            "FLAC" => Self::Flac,
            "MULAW" => Self::Mulaw,
            "OGG_OPUS" => Self::OggOpus,
            "WEBM_OPUS" => Self::WebmOpus,
            "MP3" => Self::Mp3,
            "AMR" | "AMR_WB" | "SPEEX_WITH_HEADER_BYTE" => Self::Unmeasurable,
            other => {
                return Err(invalid(format!(
                    "Invalid value at 'config.encoding': '{other}' is not an AudioEncoding."
                )));
            }
        }))
    }
}

/// The parts of `config` that decide how the audio is read.
#[derive(Debug, Clone, Copy)]
struct AudioSpec {
    encoding: Option<Encoding>,
    sample_rate: Option<u32>,
    channels: Option<u32>,
}

async fn handle(
    state: &MockState,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    version: Version,
) -> Result<Response, DialectError> {
    check_auth(state, headers, query)?;
    let request = parse_body(body)?;
    let directives = Directives::read(headers, None).map_err(|err| DialectError::script(DIALECT, &err))?;
    let Some(config) = request.get("config").filter(|config| config.is_object()) else {
        return Err(invalid("Invalid argument: RecognitionConfig (config) is required."));
    };
    let model = opt_str(config, "model", "config")?
        .filter(|model| !model.is_empty())
        .unwrap_or("default");
    state.counters().count_model("google-stt", model);
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(DialectError::injected(DIALECT, &injection));
    }

    let Some(language) = opt_str(config, "languageCode", "config")?.filter(|code| !code.is_empty()) else {
        return Err(invalid("Invalid argument: config.languageCode is required."));
    };
    let encoding = match opt_str(config, "encoding", "config")? {
        Some(name) => Encoding::parse(name)?,
        None => None,
    };
    if encoding == Some(Encoding::Mp3) && version == Version::V1 {
        return Err(invalid("Invalid argument: MP3 is only accepted by the v1p1beta1 API."));
    }
    if encoding == Some(Encoding::Unmeasurable) {
        return Err(invalid(
            "The OneFlow mock cannot measure AMR, AMR_WB or SPEEX_WITH_HEADER_BYTE audio; send LINEAR16, FLAC, MULAW, OGG_OPUS, WEBM_OPUS or MP3.",
        ));
    }
    let sample_rate = opt_u32(config, "sampleRateHertz", "config")?.filter(|rate| *rate != 0);
    if let Some(rate) = sample_rate
        && !(8_000..=48_000).contains(&rate)
    {
        return Err(invalid(format!(
            "Invalid argument: config.sampleRateHertz {rate} must be between 8000 and 48000."
        )));
    }
    let channels = opt_u32(config, "audioChannelCount", "config")?.filter(|count| *count != 0);
    if channels.is_some_and(|count| count > 8) {
        return Err(invalid(
            "Invalid argument: config.audioChannelCount must be between 1 and 8.",
        ));
    }
    let word_times = opt_bool(config, "enableWordTimeOffsets", "config")?;
    let word_confidence = opt_bool(config, "enableWordConfidence", "config")?;
    opt_bool(config, "enableAutomaticPunctuation", "config")?;

    let Some(audio) = request.get("audio").filter(|audio| audio.is_object()) else {
        return Err(invalid("Invalid argument: RecognitionAudio (audio) is required."));
    };
    if opt_str(audio, "uri", "audio")?.is_some() {
        return Err(invalid(
            "The OneFlow mock cannot read audio.uri (Cloud Storage); send audio.content.",
        ));
    }
    let content = opt_str(audio, "content", "audio")?.unwrap_or_default();
    if content.is_empty() {
        return Err(invalid("Invalid argument: audio.content is empty."));
    }
    let bytes = STANDARD
        .decode(content)
        .map_err(|_| invalid("Invalid value at 'audio.content': not valid base64."))?;
    let spec = AudioSpec {
        encoding,
        sample_rate,
        channels,
    };
    let duration = tokio::task::spawn_blocking(move || measure(Bytes::from(bytes), spec))
        .await
        .map_err(|err| {
            DialectError::new(
                DIALECT,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("mock provider internal error: {err}"),
            )
        })??;
    if duration > MAX_SYNC_AUDIO {
        return Err(invalid(format!(
            "Synchronous recognition takes at most one minute of audio and this audio lasts {:.3} s; use LongRunningRecognize for longer audio.",
            duration.as_secs_f64()
        )));
    }

    let text = directives
        .transcript
        .unwrap_or_else(|| default_text(Task::Transcribe, duration));
    let heard = transcript(Task::Transcribe, language, duration, text);
    let language_tag = language.to_ascii_lowercase();
    let results: Vec<Value> = heard
        .segments
        .iter()
        .map(|segment| {
            let mut alternative = json!({"transcript": segment.text, "confidence": CONFIDENCE});
            if word_times || word_confidence {
                let words: Vec<Value> = heard
                    .words
                    .iter()
                    .filter(|word| word.start >= segment.start && word.end <= segment.end && word.start < segment.end)
                    .map(|word| {
                        let mut info = json!({"word": word.word});
                        if word_times {
                            info["startTime"] = json!(google_duration(word.start));
                            info["endTime"] = json!(google_duration(word.end));
                        }
                        if word_confidence {
                            info["confidence"] = json!(CONFIDENCE);
                        }
                        info
                    })
                    .collect();
                alternative["words"] = Value::Array(words);
            }
            json!({
                "alternatives": [alternative],
                "resultEndTime": google_duration(segment.end),
                "languageCode": language_tag,
            })
        })
        .collect();
    let billed = Duration::from_secs(heard.billed_seconds());
    let mut answer = json!({
        "totalBilledTime": google_duration(billed),
        "requestId": rand::random::<u32>().to_string(),
    });
    if !results.is_empty() {
        answer["results"] = Value::Array(results);
    }
    Ok(Json(answer).into_response())
}

/// Measures the audio as `spec` says to read it, refusing what Google refuses.
fn measure(audio: Bytes, spec: AudioSpec) -> Result<Duration, DialectError> {
    let mismatch = |found: &str| {
        invalid(format!(
            "Invalid argument: config.encoding {:?} does not match the audio, which is {found}.",
            spec.encoding
        ))
    };
    let header_checks = |info: &AudioInfo| -> Result<Duration, DialectError> {
        if let (Some(asked), Some(declared)) = (spec.sample_rate, info.sample_rate)
            && asked != declared
        {
            return Err(invalid(format!(
                "Invalid argument: sample_rate_hertz ({asked}) must be left out or match the audio header ({declared})."
            )));
        }
        if let (Some(asked), Some(declared)) = (spec.channels, info.channels)
            && asked != u32::from(declared)
        {
            return Err(invalid(format!(
                "Invalid argument: audio_channel_count ({asked}) must be left out or match the audio header ({declared})."
            )));
        }
        Ok(info.duration)
    };
    let corrupt = |err: oneflow_audio::AudioError| invalid(format!("Invalid audio content: {err}"));
    match sniff(&audio) {
        Some(AudioFormat::Wav) => {
            let info = inspect(audio, None).map_err(corrupt)?;
            match (spec.encoding, info.codec) {
                (None | Some(Encoding::Linear16), Codec::Linear16) | (None | Some(Encoding::Mulaw), Codec::Mulaw) => {
                    header_checks(&info)
                }
                (_, Codec::Linear16 | Codec::Mulaw) => Err(mismatch("a WAV file")),
                _ => Err(invalid(
                    "Invalid audio content: WAV audio must hold LINEAR16 or MULAW samples.",
                )),
            }
        }
        Some(AudioFormat::Flac) => match spec.encoding {
            None | Some(Encoding::Flac) => header_checks(&inspect(audio, None).map_err(corrupt)?),
            Some(_) => Err(mismatch("a FLAC file")),
        },
        sniffed => {
            let Some(encoding) = spec.encoding else {
                return Err(invalid(
                    "Invalid argument: config.encoding is required for audio other than WAV or FLAC.",
                ));
            };
            let Some(rate) = spec.sample_rate else {
                return Err(invalid(
                    "Invalid argument: config.sampleRateHertz is required for audio other than WAV or FLAC.",
                ));
            };
            let channels = spec.channels.unwrap_or(1);
            let container = |format: AudioFormat| -> Result<Duration, DialectError> {
                if sniffed != Some(format) {
                    return Err(mismatch(&match sniffed {
                        Some(found) => format!("{found} audio"),
                        None => "not recognisable audio".to_owned(),
                    }));
                }
                Ok(inspect(audio.clone(), None).map_err(corrupt)?.duration)
            };
            match encoding {
                Encoding::Linear16 | Encoding::Mulaw => {
                    if let Some(found @ (AudioFormat::Opus | AudioFormat::Ogg | AudioFormat::Webm)) = sniffed {
                        return Err(mismatch(&format!("{found} audio")));
                    }
                    let width = if encoding == Encoding::Linear16 { 2 } else { 1 };
                    let frame = u64::from(channels) * width;
                    if !(audio.len() as u64).is_multiple_of(frame) {
                        return Err(invalid(
                            "Invalid audio content: the byte count is not a whole number of sample frames.",
                        ));
                    }
                    let frames = audio.len() as u64 / frame;
                    Ok(Duration::from_nanos(
                        u64::try_from(u128::from(frames) * 1_000_000_000 / u128::from(rate)).unwrap_or(u64::MAX),
                    ))
                }
                Encoding::OggOpus => {
                    if !OPUS_RATES.contains(&rate) {
                        return Err(invalid(format!(
                            "Invalid argument: OGG_OPUS audio must be at 8000, 12000, 16000, 24000 or 48000 Hz, not {rate}."
                        )));
                    }
                    container(AudioFormat::Opus)
                }
                Encoding::WebmOpus => container(AudioFormat::Webm),
                Encoding::Mp3 => container(AudioFormat::Mp3),
                Encoding::Flac => Err(mismatch("not a FLAC file")),
                Encoding::Unmeasurable => Err(invalid("The OneFlow mock cannot measure this encoding.")),
            }
        }
    }
}

/// A protobuf `Duration` in JSON: `"2s"`, `"1.500s"`.
fn google_duration(duration: Duration) -> String {
    let millis = duration.subsec_millis();
    if millis == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}.{millis:03}s", duration.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use oneflow_audio::generate::synthesize;

    use super::*;
    use crate::audio_out::{Law, g711_wav, raw_pcm};
    use crate::google::test_util::fetch_token;
    use crate::test_util::{body_json, default_state, post_json, send};

    const KEY: (&str, &str) = ("x-goog-api-key", "k");

    fn request(config: Value, audio: &[u8]) -> Value {
        json!({"config": config, "audio": {"content": STANDARD.encode(audio)}})
    }

    async fn call(state: &MockState, path: &str, body: &Value, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = send(state, post_json(path, body, headers)).await;
        let status = response.status();
        (status, body_json(response).await)
    }

    #[tokio::test]
    async fn wav_is_measured_and_timed_by_word() {
        let state = default_state();
        let token = fetch_token(&state).await;
        let bearer = format!("Bearer {token}");
        let wav = synthesize(AudioFormat::Wav, Duration::from_millis(2500), 16_000).unwrap();
        let body = request(
            json!({"languageCode": "en-US", "enableWordTimeOffsets": true, "model": "latest_short"}),
            &wav,
        );
        let (status, answer) = call(&state, "/v1/speech:recognize", &body, &[("authorization", &bearer)]).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(
            results[0]["alternatives"][0]["transcript"],
            "This is a mock transcription of 2.5 seconds of audio."
        );
        assert_eq!(results[0]["languageCode"], "en-us");
        assert_eq!(results[1]["resultEndTime"], "2.500s");
        let words = results[0]["alternatives"][0]["words"].as_array().unwrap();
        assert_eq!(words[0]["word"], "This");
        assert_eq!(words[0]["startTime"], "0s");
        assert!(
            words
                .iter()
                .all(|word| word["endTime"].as_str().unwrap().ends_with('s'))
        );
        let last = results[1]["alternatives"][0]["words"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["word"], "speech");
        assert_eq!(last["endTime"], "2.500s");
        assert_eq!(answer["totalBilledTime"], "3s");
        assert!(answer["requestId"].is_string());
        let stats = state.stats();
        assert_eq!(stats.google_stt_requests, 1);
        assert_eq!(stats.calls_by_model["google-stt/latest_short"], 1);
    }

    #[tokio::test]
    async fn every_readable_encoding_is_measured() {
        let state = default_state();
        let second = Duration::from_secs(1);
        let pcm = raw_pcm(second, 8_000).unwrap();
        let mulaw_raw: Vec<u8> = g711_wav(second, 8_000, Law::Mu).unwrap()[44..].to_vec();
        let cases = [
            (
                "/v1/speech:recognize",
                json!({"encoding": "LINEAR16", "sampleRateHertz": 8000}),
                pcm.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"encoding": "MULAW", "sampleRateHertz": 8000}),
                mulaw_raw,
            ),
            (
                "/v1/speech:recognize",
                json!({"encoding": "MULAW"}),
                g711_wav(second, 8_000, Law::Mu).unwrap(),
            ),
            (
                "/v1/speech:recognize",
                json!({}),
                synthesize(AudioFormat::Flac, second, 16_000).unwrap(),
            ),
            (
                "/v1/speech:recognize",
                json!({"encoding": "OGG_OPUS", "sampleRateHertz": 48000}),
                synthesize(AudioFormat::Opus, second, 48_000).unwrap(),
            ),
            (
                "/v1p1beta1/speech:recognize",
                json!({"encoding": "MP3", "sampleRateHertz": 24000}),
                synthesize(AudioFormat::Mp3, second, 24_000).unwrap(),
            ),
        ];
        for (path, mut config, audio) in cases {
            config["languageCode"] = json!("de-DE");
            let (status, answer) = call(&state, path, &request(config.clone(), &audio), &[KEY]).await;
            assert_eq!(status, StatusCode::OK, "{config}: {answer}");
            let text = answer["results"][0]["alternatives"][0]["transcript"].as_str().unwrap();
            assert!(text.contains(" of 1") || text.contains(" of 0.9"), "{config}: {text}");
            let billed = answer["totalBilledTime"].as_str().unwrap();
            assert!(billed == "1s" || billed == "2s", "{config}: {billed}");
            assert!(answer["results"][0]["alternatives"][0].get("words").is_none());
        }
        assert_eq!(state.stats().calls_by_model["google-stt/default"], 6);
    }

    #[tokio::test]
    async fn scripted_transcript_and_long_audio() {
        let state = default_state();
        let wav = synthesize(AudioFormat::Wav, Duration::from_secs(2), 8_000).unwrap();
        let body = request(json!({"languageCode": "en-US", "enableWordConfidence": true}), &wav);
        let (status, answer) = call(
            &state,
            "/v1/speech:recognize",
            &body,
            &[KEY, ("x-mock-transcript", "Hello there.")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["results"][0]["alternatives"][0]["transcript"], "Hello there.");
        assert_eq!(
            answer["results"][0]["alternatives"][0]["words"][1]["confidence"],
            CONFIDENCE
        );

        let long = raw_pcm(Duration::from_secs(61), 8_000).unwrap();
        let body = request(
            json!({"languageCode": "en-US", "encoding": "LINEAR16", "sampleRateHertz": 8000}),
            &long,
        );
        let (status, answer) = call(&state, "/v1/speech:recognize", &body, &[KEY]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
        assert!(answer["error"]["message"].as_str().unwrap().contains("one minute"));
    }

    #[tokio::test]
    async fn mismatches_and_bad_configs_are_invalid_argument() {
        let state = default_state();
        let second = Duration::from_secs(1);
        let wav = synthesize(AudioFormat::Wav, second, 16_000).unwrap();
        let flac = synthesize(AudioFormat::Flac, second, 16_000).unwrap();
        let mp3 = synthesize(AudioFormat::Mp3, second, 16_000).unwrap();
        let pcm = raw_pcm(second, 16_000).unwrap();
        let cases = [
            ("/v1/speech:recognize", json!({}), wav.clone()),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "FLAC"}),
                wav.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "LINEAR16"}),
                flac.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "sampleRateHertz": 8000}),
                wav.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "audioChannelCount": 2}),
                flac,
            ),
            ("/v1/speech:recognize", json!({"languageCode": "en-US"}), pcm.clone()),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "LINEAR16"}),
                pcm.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "LINEAR16", "sampleRateHertz": 16000}),
                pcm[1..].to_vec(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "MP3", "sampleRateHertz": 16000}),
                mp3.clone(),
            ),
            (
                "/v1p1beta1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "OGG_OPUS", "sampleRateHertz": 16000}),
                mp3.clone(),
            ),
            (
                "/v1p1beta1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "OGG_OPUS", "sampleRateHertz": 22050}),
                mp3.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "AMR", "sampleRateHertz": 8000}),
                pcm.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "encoding": "WAV"}),
                wav.clone(),
            ),
            (
                "/v1/speech:recognize",
                json!({"languageCode": "en-US", "sampleRateHertz": 100000}),
                wav.clone(),
            ),
            ("/v1/speech:recognize", json!({"languageCode": "en-US"}), Vec::new()),
        ];
        for (path, config, audio) in cases {
            let (status, answer) = call(&state, path, &request(config.clone(), &audio), &[KEY]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{config}: {answer}");
            assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{config}");
        }
        let other = [
            json!({"audio": {"content": ""}}),
            json!({"config": {"languageCode": "en-US"}}),
            json!({"config": {"languageCode": "en-US"}, "audio": {"uri": "gs://b/o"}}),
            json!({"config": {"languageCode": "en-US"}, "audio": {"content": "!!"}}),
        ];
        for body in other {
            let (status, answer) = call(&state, "/v1/speech:recognize", &body, &[KEY]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
        }
    }

    #[tokio::test]
    async fn auth_and_failure_knobs() {
        let state = default_state();
        let wav = synthesize(AudioFormat::Wav, Duration::from_secs(1), 16_000).unwrap();
        let body = request(json!({"languageCode": "en-US"}), &wav);
        let (status, answer) = call(&state, "/v1/speech:recognize", &body, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer["error"]["status"], "UNAUTHENTICATED");
        let (status, answer) = call(&state, "/v1/speech:recognize", &body, &[KEY, ("x-mock-status", "500")]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer["error"]["status"], "INTERNAL");
        let stats = state.stats();
        assert_eq!(stats.google_stt_requests, 2);
        assert_eq!(stats.errors_injected, 1);
        // Refused for lack of credentials, the first call named no model.
        assert_eq!(stats.calls_by_model["google-stt/default"], 1);
    }

    #[test]
    fn durations_in_protobuf_json() {
        assert_eq!(google_duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(google_duration(Duration::from_secs(3)), "3s");
        assert_eq!(google_duration(Duration::from_millis(45)), "0.045s");
    }
}
