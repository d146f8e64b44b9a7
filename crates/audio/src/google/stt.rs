//! OpenAI transcription ⇄ Google Cloud Speech-to-Text `speech:recognize` (synchronous).
//!
//! - FLAC and WAV (16-bit PCM or mu-law) go without `encoding` or `sampleRateHertz`: Google
//!   reads both from the header and rejects a mismatch. Multi-channel files get
//!   `audioChannelCount` (only the first channel is transcribed).
//! - MP3 is `MP3` with its sample rate, sent to `v1p1beta1`: MP3 began there as a beta
//!   encoding and is listed in v1 only in newer revisions; the beta endpoint accepts every v1
//!   field used here, so both old and new accept the call.
//! - Ogg Opus is `OGG_OPUS` and WebM Opus `WEBM_OPUS`, with a rate Opus allows (8, 12, 16, 24
//!   or 48 kHz; the header's input rate when it is one of them, else 48 kHz).
//! - AAC, MP4/M4A, MPEG Layer I/II, Ogg Vorbis and WebM Vorbis are refused as unsupported: the
//!   gateway does not transcode. Translation is refused too (Speech-to-Text only transcribes).
//! - `language` (ISO 639-1) becomes a BCP-47 tag with its usual region; without one the
//!   configured default is used, as Google cannot detect the language in v1. `prompt` and
//!   `temperature` have no counterpart and are ignored.
//! - Word offsets are requested when the output has timestamps (`srt`, `vtt`,
//!   `verbose_json`). Each result becomes a segment from the previous result's end (or its
//!   first word) to its `resultEndTime`.
//! - Synchronous recognition takes at most one minute of audio and a 10 MB body: larger
//!   uploads are refused before the call, with the measured length or size.

use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::duration::{AudioInfo, Codec};
use crate::error::AudioError;
use crate::format::AudioFormat;
use crate::google::parse_proto_duration;
use crate::language;
use crate::openai::{Task, TranscriptionRequest};
use crate::transcript::{Segment, Transcript, Word};

/// The v1 endpoint.
pub const RECOGNIZE_URL_V1: &str = "https://speech.googleapis.com/v1/speech:recognize";
/// The v1p1beta1 endpoint, used for MP3.
pub const RECOGNIZE_URL_V1P1BETA1: &str = "https://speech.googleapis.com/v1p1beta1/speech:recognize";
/// How this provider is named in errors.
pub const PROVIDER: &str = "Google Cloud Speech-to-Text";
/// The longest audio `speech:recognize` accepts.
pub const MAX_SYNC_AUDIO: Duration = Duration::from_secs(60);

/// The largest request body `speech:recognize` accepts (inline audio is base64 in it).
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Sample rates Speech-to-Text accepts for Opus.
const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// Deployment choices for the Google speech-to-text route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SttOptions {
    /// Used when the client names no language.
    pub default_language: String,
    /// Google's `model` (`latest_long`, `phone_call`, …); Google chooses when absent.
    pub model: Option<String>,
    /// Ask Google to punctuate.
    pub automatic_punctuation: bool,
}

impl Default for SttOptions {
    fn default() -> Self {
        SttOptions {
            default_language: "en-US".into(),
            model: None,
            automatic_punctuation: true,
        }
    }
}

/// `RecognitionConfig`, the fields used here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecognitionConfig {
    /// Omitted for FLAC and WAV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
    /// Omitted for FLAC and WAV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate_hertz: Option<u32>,
    /// Set only for multi-channel audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_channel_count: Option<u16>,
    /// BCP-47.
    pub language_code: String,
    /// Whether words come with start and end times.
    pub enable_word_time_offsets: bool,
    /// Whether Google punctuates.
    pub enable_automatic_punctuation: bool,
    /// Recognition model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// `RecognitionAudio` with inline content.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RecognitionAudio {
    /// The file, base64.
    pub content: String,
}

impl std::fmt::Debug for RecognitionAudio {
    /// The audio is user content and can be megabytes: only its size is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecognitionAudio {{ {} base64 chars }}", self.content.len())
    }
}

/// The `speech:recognize` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecognizeRequest {
    /// How to recognise.
    pub config: RecognitionConfig,
    /// What to recognise.
    pub audio: RecognitionAudio,
}

/// A prepared call and what is needed to read its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognizeCall {
    /// Where to POST.
    pub url: &'static str,
    /// The JSON body.
    pub body: RecognizeRequest,
    /// The measured upload (its duration is what is billed).
    pub audio: AudioInfo,
}

impl RecognizeCall {
    /// The body serialized.
    pub fn to_json(&self) -> Result<Vec<u8>, AudioError> {
        serde_json::to_vec(&self.body).map_err(|e| AudioError::Upstream {
            provider: PROVIDER,
            message: format!("could not encode request: {e}"),
        })
    }
}

/// Builds the call for an upload already measured with [`crate::inspect`].
pub fn recognize_request(
    audio: &[u8],
    info: &AudioInfo,
    request: &TranscriptionRequest,
    options: &SttOptions,
) -> Result<RecognizeCall, AudioError> {
    if request.task == Task::Translate {
        return Err(AudioError::invalid(
            "model",
            format!("{PROVIDER} cannot translate; route translations elsewhere"),
        ));
    }
    if info.duration > MAX_SYNC_AUDIO {
        return Err(AudioError::invalid(
            "file",
            format!(
                "{PROVIDER} transcribes at most {} s per request; this audio is {:.1} s",
                MAX_SYNC_AUDIO.as_secs(),
                info.duration.as_secs_f64()
            ),
        ));
    }
    let unsupported = || AudioError::Unsupported {
        format: info.format,
        by: PROVIDER,
    };
    let opus_rate = || Some(info.sample_rate.filter(|r| OPUS_RATES.contains(r)).unwrap_or(48_000));
    let (url, encoding, sample_rate) = match (info.format, info.codec) {
        (AudioFormat::Flac, _) | (AudioFormat::Wav, Codec::Linear16 | Codec::Mulaw) => (RECOGNIZE_URL_V1, None, None),
        (AudioFormat::Mp3, _) => (RECOGNIZE_URL_V1P1BETA1, Some("MP3"), info.sample_rate),
        (AudioFormat::Opus, _) => (RECOGNIZE_URL_V1, Some("OGG_OPUS"), opus_rate()),
        (AudioFormat::Webm, Codec::Opus) => (RECOGNIZE_URL_V1, Some("WEBM_OPUS"), opus_rate()),
        (AudioFormat::Pcm, _) => (RECOGNIZE_URL_V1, Some("LINEAR16"), info.sample_rate),
        (AudioFormat::Wav, _) => {
            return Err(AudioError::Unsupported {
                format: info.format,
                by: "Google Cloud Speech-to-Text (WAV must hold 16-bit PCM or mu-law)",
            });
        }
        (AudioFormat::Webm, _) => {
            return Err(AudioError::Unsupported {
                format: info.format,
                by: "Google Cloud Speech-to-Text (WebM must hold Opus)",
            });
        }
        (AudioFormat::Aac | AudioFormat::Ogg | AudioFormat::Mp4 | AudioFormat::M4a | AudioFormat::Mpeg, _) => {
            return Err(unsupported());
        }
    };
    let content = base64::engine::general_purpose::STANDARD.encode(audio);
    if content.len() > MAX_REQUEST_BYTES {
        return Err(AudioError::invalid(
            "file",
            format!(
                "{PROVIDER} takes at most 10 MB per request; this audio is {} bytes as base64",
                content.len()
            ),
        ));
    }
    let language_code = request
        .language
        .as_deref()
        .map_or_else(|| options.default_language.clone(), language::google_tag);
    Ok(RecognizeCall {
        url,
        body: RecognizeRequest {
            config: RecognitionConfig {
                encoding,
                sample_rate_hertz: sample_rate,
                // Google refuses multi-channel audio unless told the count (MP3 excepted).
                audio_channel_count: info.channels.filter(|&c| c > 1 && encoding != Some("MP3")),
                language_code,
                enable_word_time_offsets: request.response_format.needs_timing(),
                enable_automatic_punctuation: options.automatic_punctuation,
                model: options.model.clone(),
            },
            audio: RecognitionAudio { content },
        },
        audio: *info,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecognizeResponse {
    #[serde(default)]
    results: Vec<RecognitionResult>,
    total_billed_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecognitionResult {
    #[serde(default)]
    alternatives: Vec<Alternative>,
    result_end_time: Option<String>,
    language_code: Option<String>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
    confidence: Option<f32>,
    #[serde(default)]
    words: Vec<WordInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WordInfo {
    start_time: Option<String>,
    end_time: Option<String>,
    #[serde(default)]
    word: String,
}

/// A parsed answer: the transcript and what Google says it billed.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleTranscript {
    /// The provider-neutral transcript; its duration is the measured one.
    pub transcript: Transcript,
    /// Google's `totalBilledTime`, for reconciliation (Google rounds up to whole seconds).
    pub billed: Option<Duration>,
}

/// Reads a `speech:recognize` answer for `call` (made for `request`).
pub fn parse_recognize_response(
    body: &[u8],
    call: &RecognizeCall,
    request: &TranscriptionRequest,
) -> Result<GoogleTranscript, AudioError> {
    let upstream = |message: String| AudioError::Upstream {
        provider: PROVIDER,
        message,
    };
    let answer: RecognizeResponse =
        serde_json::from_slice(body).map_err(|e| upstream(format!("response is not a RecognizeResponse: {e}")))?;
    let time = |text: &Option<String>| -> Result<Option<Duration>, AudioError> {
        text.as_deref()
            .map(|t| parse_proto_duration(t).ok_or_else(|| upstream(format!("`{t}` is not a duration"))))
            .transpose()
    };

    let mut segments = Vec::new();
    let mut words = Vec::new();
    let mut language = None;
    let mut previous_end = Duration::ZERO;
    for result in &answer.results {
        let Some(best) = result.alternatives.first() else {
            continue;
        };
        language = language.or(result.language_code.clone());
        let mut result_words = Vec::new();
        for w in &best.words {
            let (Some(start), Some(end)) = (time(&w.start_time)?, time(&w.end_time)?) else {
                continue;
            };
            result_words.push(Word {
                word: w.word.clone(),
                start,
                end,
            });
        }
        let end = time(&result.result_end_time)?
            .or_else(|| result_words.last().map(|w| w.end))
            .unwrap_or(call.audio.duration)
            .min(call.audio.duration.max(previous_end));
        let start = result_words.first().map_or(previous_end, |w| w.start).min(end);
        let text = best.transcript.trim();
        if !text.is_empty() {
            segments.push(Segment {
                start,
                end,
                text: text.to_owned(),
                confidence: best.confidence,
            });
        }
        words.extend(result_words);
        previous_end = end;
    }
    let text = segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
    let language = language
        .or_else(|| request.language.clone())
        .unwrap_or_else(|| call.body.config.language_code.clone());
    Ok(GoogleTranscript {
        transcript: Transcript {
            task: request.task,
            language,
            duration: call.audio.duration,
            text,
            segments,
            words,
        },
        billed: time(&answer.total_billed_time)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::duration::inspect;
    use crate::generate::synthesize;
    use crate::openai::TranscriptFormat;

    fn transcription(format: &str, language: Option<&str>) -> TranscriptionRequest {
        let mut fields = vec![("model", "whisper-1"), ("response_format", format)];
        if let Some(l) = language {
            fields.push(("language", l));
        }
        TranscriptionRequest::from_fields(Task::Transcribe, fields).unwrap()
    }

    fn call_for(format: AudioFormat, request: &TranscriptionRequest) -> Result<RecognizeCall, AudioError> {
        let bytes = synthesize(format, Duration::from_millis(1200), 24_000).unwrap();
        let info = inspect(bytes.clone(), None).unwrap();
        recognize_request(&bytes, &info, request, &SttOptions::default())
    }

    fn config(call: &RecognizeCall) -> Value {
        serde_json::from_slice::<Value>(&call.to_json().unwrap()).unwrap()["config"].clone()
    }

    #[test]
    fn flac_and_wav_let_google_read_the_header() {
        for format in [AudioFormat::Flac, AudioFormat::Wav] {
            let call = call_for(format, &transcription("json", Some("en"))).unwrap();
            assert_eq!(call.url, RECOGNIZE_URL_V1);
            assert_eq!(
                config(&call),
                json!({"languageCode": "en-US", "enableWordTimeOffsets": false, "enableAutomaticPunctuation": true})
            );
        }
    }

    #[test]
    fn compressed_formats_name_encoding_and_rate() {
        let request = transcription("srt", Some("fr"));
        let mp3 = call_for(AudioFormat::Mp3, &request).unwrap();
        assert_eq!(mp3.url, RECOGNIZE_URL_V1P1BETA1);
        let c = config(&mp3);
        assert_eq!(
            (c["encoding"].clone(), c["sampleRateHertz"].clone()),
            (json!("MP3"), json!(24000))
        );
        assert_eq!(c["languageCode"], "fr-FR");
        assert_eq!(c["enableWordTimeOffsets"], true);
        let opus = call_for(AudioFormat::Opus, &request).unwrap();
        let c = config(&opus);
        assert_eq!(
            (c["encoding"].clone(), c["sampleRateHertz"].clone()),
            (json!("OGG_OPUS"), json!(24000))
        );
        let body: Value = serde_json::from_slice(&opus.to_json().unwrap()).unwrap();
        let content = body["audio"]["content"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(content).unwrap();
        assert!(decoded.starts_with(b"OggS"));
        assert!(!format!("{:?}", opus.body.audio).contains(content));
    }

    #[test]
    fn unsupported_uploads_translations_and_long_audio_are_refused_before_the_call() {
        let err = call_for(AudioFormat::Aac, &transcription("json", None)).unwrap_err();
        assert!(
            matches!(
                err,
                AudioError::Unsupported {
                    format: AudioFormat::Aac,
                    by: PROVIDER
                }
            ),
            "{err}"
        );
        let translate = TranscriptionRequest::from_fields(Task::Translate, [("model", "whisper-1")]).unwrap();
        assert!(matches!(
            call_for(AudioFormat::Flac, &translate),
            Err(AudioError::Invalid { field: "model", .. })
        ));
        let long = synthesize(AudioFormat::Opus, Duration::from_secs(61), 48_000).unwrap();
        let info = inspect(long.clone(), None).unwrap();
        let err = recognize_request(&long, &info, &transcription("json", None), &SttOptions::default()).unwrap_err();
        assert!(err.to_string().contains("61.0 s"), "{err}");
    }

    #[test]
    fn oversized_bodies_and_float_wav_are_refused_with_the_reason() {
        let big = synthesize(AudioFormat::Wav, Duration::from_secs(50), 96_000).unwrap();
        let info = inspect(big.clone(), None).unwrap();
        let err = recognize_request(&big, &info, &transcription("json", None), &SttOptions::default()).unwrap_err();
        assert!(err.to_string().contains("10 MB"), "{err}");

        let mut float = synthesize(AudioFormat::Wav, Duration::from_secs(1), 16_000).unwrap();
        float[20..22].copy_from_slice(&3u16.to_le_bytes());
        let info = inspect(float.clone(), None).unwrap();
        let err = recognize_request(&float, &info, &transcription("json", None), &SttOptions::default()).unwrap_err();
        assert!(err.to_string().contains("16-bit PCM or mu-law"), "{err}");
    }

    #[test]
    fn results_become_segments_words_and_text() {
        let request = transcription("verbose_json", None);
        let call = call_for(AudioFormat::Flac, &request).unwrap();
        let body = json!({
            "results": [
                {"alternatives": [{"transcript": "Hello world", "confidence": 0.9, "words": [
                    {"startTime": "0.100s", "endTime": "0.400s", "word": "Hello"},
                    {"startTime": "0.400s", "endTime": "0.700s", "word": "world"}]}],
                 "resultEndTime": "0.750s", "languageCode": "en-us"},
                {"alternatives": [{"transcript": " again", "confidence": 0.8}], "resultEndTime": "1.150s", "languageCode": "en-us"},
                {"alternatives": []}
            ],
            "totalBilledTime": "2s",
            "requestId": "42"
        });
        let parsed = parse_recognize_response(&serde_json::to_vec(&body).unwrap(), &call, &request).unwrap();
        assert_eq!(parsed.billed, Some(Duration::from_secs(2)));
        let t = parsed.transcript;
        assert_eq!(t.text, "Hello world again");
        assert_eq!(t.language, "en-us");
        assert_eq!(t.duration, Duration::from_millis(1200));
        assert_eq!(t.words.len(), 2);
        assert_eq!(
            t.segments
                .iter()
                .map(|s| (s.start.as_millis(), s.end.as_millis()))
                .collect::<Vec<_>>(),
            vec![(100, 750), (750, 1150)]
        );
        let srt = t.render(TranscriptFormat::Srt, request.granularities, 0.0).body;
        assert!(
            srt.starts_with("1\n00:00:00,100 --> 00:00:00,750\nHello world\n\n2\n00:00:00,750 --> 00:00:01,150\nagain")
        );
    }

    #[test]
    fn silence_and_malformed_answers() {
        let request = transcription("json", Some("de"));
        let call = call_for(AudioFormat::Wav, &request).unwrap();
        let silent =
            parse_recognize_response(br#"{"totalBilledTime": "1s", "requestId": "1"}"#, &call, &request).unwrap();
        assert_eq!(silent.transcript.text, "");
        assert_eq!(silent.transcript.language, "de");
        let bad_time = br#"{"results": [{"alternatives": [{"transcript": "x"}], "resultEndTime": "soon"}]}"#;
        assert!(matches!(
            parse_recognize_response(bad_time, &call, &request),
            Err(AudioError::Upstream { .. })
        ));
        assert!(parse_recognize_response(b"[]", &call, &request).is_err());
    }
}
