//! OpenAI `POST /v1/audio/transcriptions` ⇄ Amazon Transcribe streaming
//! `StartStreamTranscription` (`POST /stream-transcription` over HTTP/2, SigV4 service name
//! `transcribe`).
//!
//! Transcribe has no "here is a file" call that answers synchronously; its streaming API is
//! the one that does. The request body is an event stream: each `AudioEvent` message is
//! wrapped in an envelope frame carrying `:date` and `:chunk-signature`, the signature
//! chained from the previous frame's and, for the first, from the request's own (the seed),
//! and an empty signed frame ends the audio. OneFlow already holds the whole upload, so
//! [`transcription_request`] builds and signs the whole body up front and the router sends it
//! like any other body. The signing is `aws-sigv4`'s event-stream signer; nothing here
//! computes an HMAC.
//!
//! The endpoint is `https://transcribestreaming.{region}.amazonaws.com/stream-transcription`
//! on the default port: port 8443 belongs to the WebSocket flavour of the API, not to the
//! HTTP/2 one used here. The router must speak HTTP/2 to it, and send the body soon after
//! signing: every frame is signed with the request's time.
//!
//! - **Formats.** Transcribe streams FLAC, Ogg Opus and raw 16-bit little-endian PCM, and
//!   nothing else (not even WAV). FLAC goes as `flac` and Ogg Opus as `ogg-opus`, whole. WAV
//!   holding 16-bit PCM goes as `pcm` with its header removed by walking the RIFF chunks to
//!   `data`, the rate taken from its `fmt ` chunk. Everything else (MP3, AAC, M4A/MP4, WebM,
//!   Ogg Vorbis, float or 8-bit WAV) is refused naming `file`: the gateway does not transcode.
//!   Audio must be mono (channel identification is not enabled, so Transcribe would expect
//!   one channel) and sampled at 8–48 kHz, the range Transcribe accepts.
//! - **Chunks.** AWS recommends sending audio in chunks of about 100 ms (and at most 1 s).
//!   PCM is cut into exactly [`CHUNK_DURATION`] of samples; FLAC and Opus, whose bytes are not
//!   evenly spread in time, into the file's average bytes per 100 ms, kept between
//!   [`MIN_COMPRESSED_CHUNK`] and [`MAX_CHUNK_BYTES`].
//! - **Language.** `language` (ISO 639-1) becomes the locale Transcribe expects (`en` →
//!   `en-US`, `zh` → `zh-CN`, `he` → `he-IL`); a tag with a region passes through. Without
//!   one, [`Options::default_language`] is used rather than Transcribe's language
//!   identification, which needs a list of candidate languages the client never gives and
//!   answers with lower accuracy.
//! - **Refused and ignored.** Translations are refused (Transcribe only transcribes).
//!   `prompt` and `temperature` have no counterpart and are ignored; so is `model`.
//! - **Answer.** [`TranscriptDecoder`] reads the response stream: only final results
//!   (`IsPartial: false`) count; each becomes a segment (its `StartTime`–`EndTime` and best
//!   transcript), its `pronunciation` items become words (punctuation items are dropped from
//!   the words and stay in the segment text), and the text is the segments joined by spaces.
//!   The duration is the measured one, which is what OneFlow bills.
//! - **Errors.** A non-200 answer maps through [`error_from`]; an `exception` message in the
//!   stream becomes [`AwsError::Upstream`] with the same table: `BadRequestException` 400,
//!   `LimitExceededException` 429, `ConflictException` 503 (OneFlow sets no session id, so a
//!   conflict is AWS's and a retry is the cure), `InternalFailureException` 502,
//!   `ServiceUnavailableException` 503; credential failures 502 with a fixed message.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use oneflow_audio::language;
use oneflow_audio::transcript::{Segment, Transcript, Word};
use oneflow_audio::{AudioFormat, AudioInfo, Codec, Task, TranscriptionRequest};
use serde::{Deserialize, Serialize};

use crate::eventstream::{Decoder, HeaderValue as EventHeader, Message};
use crate::sigv4::{STREAMING_EVENTS_PAYLOAD, sign_event, sign_streaming};
use crate::upstream::{
    capitalise, fallback_status, http_error, is_credential_failure, normalise_type, payload_message,
};
use crate::{AwsError, Credentials, Prepared};

/// The SigV4 service name of Transcribe (the host is `transcribestreaming`).
pub const SERVICE: &str = "transcribe";
/// The `x-amz-target` of the operation.
pub const OPERATION_TARGET: &str = "com.amazonaws.transcribe.Transcribe.StartStreamTranscription";
/// How much audio each `AudioEvent` carries (exactly, for PCM; on average, for FLAC and Opus).
pub const CHUNK_DURATION: Duration = Duration::from_millis(100);
/// Smallest chunk of FLAC or Opus sent in one event.
pub const MIN_COMPRESSED_CHUNK: usize = 1024;
/// Largest chunk sent in one event (AWS documents 32 KB as the most one `AudioEvent` carries).
pub const MAX_CHUNK_BYTES: usize = 32_000;
/// The lowest sample rate Transcribe streams.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// The highest sample rate Transcribe streams.
pub const MAX_SAMPLE_RATE: u32 = 48_000;

/// The formats named when an upload is refused.
const ACCEPTED: &str = "FLAC, Ogg Opus or 16-bit PCM WAV";

/// Where to call Transcribe.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// AWS region, e.g. `us-east-1`; also the signing region.
    pub region: &'a str,
    /// Base URL replacing `https://transcribestreaming.{region}.amazonaws.com` (tests, VPC
    /// endpoints, the mock provider). No trailing path beyond an optional `/`.
    pub endpoint: Option<&'a str>,
}

/// Deployment choices for the Transcribe route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The Transcribe language code used when the client names no language, e.g. `en-US`.
    pub default_language: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_language: "en-US".into(),
        }
    }
}

/// A prepared `StartStreamTranscription` call and what reading its answer needs.
#[derive(Debug, Clone)]
pub struct TranscribeCall {
    /// The signed request; its body is the complete signed event stream.
    pub prepared: Prepared,
    /// `x-amzn-transcribe-language-code`.
    pub language_code: String,
    /// `x-amzn-transcribe-media-encoding`: `pcm`, `flac` or `ogg-opus`.
    pub media_encoding: &'static str,
    /// `x-amzn-transcribe-sample-rate`.
    pub sample_rate: u32,
    /// How many `AudioEvent` frames the body carries (before the empty end frame).
    pub audio_events: usize,
    /// The measured upload (its duration is what is billed).
    pub audio: AudioInfo,
}

impl TranscribeCall {
    /// A decoder for this call's response body.
    pub fn decoder(&self) -> TranscriptDecoder {
        TranscriptDecoder::new(&self.language_code, self.audio.duration)
    }
}

/// Builds the signed call for an upload already measured with `oneflow_audio::inspect`.
///
/// Refusals are [`AwsError::Invalid`] naming the OpenAI field (`file`, `model` for a
/// translation); signing failures are [`AwsError::Signing`].
pub fn transcription_request(
    target: &Target<'_>,
    request: &TranscriptionRequest,
    audio: &[u8],
    info: &AudioInfo,
    options: &Options,
    creds: &Credentials,
    now: SystemTime,
) -> Result<TranscribeCall, AwsError> {
    if request.task == Task::Translate {
        return Err(AwsError::Invalid(
            "invalid `model`: Amazon Transcribe cannot translate; route translations elsewhere".into(),
        ));
    }
    let media = media(audio, info)?;
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&media.sample_rate) {
        return Err(AwsError::Invalid(format!(
            "invalid `file`: Amazon Transcribe takes audio sampled at 8 to 48 kHz; this is {} Hz",
            media.sample_rate
        )));
    }
    if media.channels > 1 {
        return Err(AwsError::Invalid(format!(
            "invalid `file`: Amazon Transcribe is given mono audio here; this has {} channels",
            media.channels
        )));
    }
    if media.bytes.is_empty() {
        return Err(AwsError::Invalid("invalid `file`: the upload holds no audio".into()));
    }
    let language_code = match request.language.as_deref() {
        Some(code) => transcribe_language(code),
        None => options.default_language.clone(),
    };

    let url = format!(
        "{}/stream-transcription",
        crate::service_origin("transcribestreaming", target.region, target.endpoint)?
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    headers.insert("x-amz-target", HeaderValue::from_static(OPERATION_TARGET));
    headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static(STREAMING_EVENTS_PAYLOAD),
    );
    headers.insert(
        "x-amzn-transcribe-language-code",
        HeaderValue::from_str(&language_code)
            .map_err(|_| AwsError::Invalid(format!("invalid `language`: `{language_code}` is not a language code")))?,
    );
    headers.insert("x-amzn-transcribe-sample-rate", HeaderValue::from(media.sample_rate));
    headers.insert(
        "x-amzn-transcribe-media-encoding",
        HeaderValue::from_static(media.encoding),
    );
    let (signed, seed) = sign_streaming(&http::Method::POST, &url, &headers, SERVICE, target.region, creds, now)?;
    headers.extend(signed);

    let chunk = media.chunk_bytes(info.duration);
    let mut body = Vec::with_capacity(media.bytes.len() + (media.bytes.len() / chunk + 2) * 160);
    let mut prior = seed;
    let mut audio_events = 0;
    for piece in media.bytes.chunks(chunk) {
        let event = audio_event(piece);
        let (frame, signature) = sign_event(Some(&event), &prior, SERVICE, target.region, creds, now)?;
        body.extend_from_slice(&frame);
        prior = signature;
        audio_events += 1;
    }
    let (end, _) = sign_event(None, &prior, SERVICE, target.region, creds, now)?;
    body.extend_from_slice(&end);

    Ok(TranscribeCall {
        prepared: Prepared {
            url,
            headers,
            body: Bytes::from(body),
        },
        language_code,
        media_encoding: media.encoding,
        sample_rate: media.sample_rate,
        audio_events,
        audio: *info,
    })
}

/// One `AudioEvent` message, before signing.
fn audio_event(chunk: &[u8]) -> Message {
    Message::new(
        vec![
            (":message-type".into(), EventHeader::from("event")),
            (":event-type".into(), EventHeader::from("AudioEvent")),
            (":content-type".into(), EventHeader::from("application/octet-stream")),
        ],
        Bytes::copy_from_slice(chunk),
    )
}

/// The bytes to stream and how to describe them.
struct Media<'a> {
    encoding: &'static str,
    sample_rate: u32,
    channels: u16,
    bytes: &'a [u8],
}

impl Media<'_> {
    /// Bytes per `AudioEvent`: [`CHUNK_DURATION`] of audio.
    fn chunk_bytes(&self, duration: Duration) -> usize {
        let tenth = |per_second: u128| {
            usize::try_from(per_second * CHUNK_DURATION.as_millis() / 1000).unwrap_or(MAX_CHUNK_BYTES)
        };
        if self.encoding == "pcm" {
            let per_second = u128::from(self.sample_rate) * 2 * u128::from(self.channels.max(1));
            // Whole samples only, so no sample straddles two events.
            let bytes = tenth(per_second).clamp(2, MAX_CHUNK_BYTES);
            return bytes - bytes % 2;
        }
        let millis = duration.as_millis().max(1);
        let per_second = self.bytes.len() as u128 * 1000 / millis;
        tenth(per_second).clamp(MIN_COMPRESSED_CHUNK, MAX_CHUNK_BYTES)
    }
}

/// Chooses the media encoding for an upload, or refuses it.
fn media<'a>(audio: &'a [u8], info: &AudioInfo) -> Result<Media<'a>, AwsError> {
    let refuse = |what: &str| {
        AwsError::Invalid(format!(
            "invalid `file`: Amazon Transcribe does not accept {what}; send {ACCEPTED} (the gateway does not convert audio)"
        ))
    };
    let channels = info.channels.unwrap_or(1);
    match (info.format, info.codec) {
        (AudioFormat::Flac, _) => Ok(Media {
            encoding: "flac",
            sample_rate: info
                .sample_rate
                .ok_or_else(|| AwsError::Invalid("invalid `file`: the FLAC header declares no sample rate".into()))?,
            channels,
            bytes: audio,
        }),
        (AudioFormat::Opus, _) => Ok(Media {
            encoding: "ogg-opus",
            sample_rate: info.sample_rate.unwrap_or(MAX_SAMPLE_RATE),
            channels,
            bytes: audio,
        }),
        (AudioFormat::Wav, Codec::Linear16) => {
            let wav = wav_pcm(audio)?;
            Ok(Media {
                encoding: "pcm",
                sample_rate: wav.sample_rate,
                channels: wav.channels,
                bytes: &audio[wav.data],
            })
        }
        (AudioFormat::Pcm, _) => Ok(Media {
            encoding: "pcm",
            sample_rate: info.sample_rate.unwrap_or(oneflow_audio::duration::PCM_SAMPLE_RATE),
            channels,
            bytes: &audio[..audio.len() - audio.len() % 2],
        }),
        (AudioFormat::Wav, _) => Err(refuse("WAV that is not 16-bit PCM")),
        (other, _) => Err(refuse(&format!("{other} audio"))),
    }
}

/// Where a WAV file's 16-bit PCM samples are, and their layout.
struct WavPcm {
    sample_rate: u32,
    channels: u16,
    data: std::ops::Range<usize>,
}

/// Walks a WAV file's chunks to `data` (a fixed 44-byte cut would break on files with `LIST`
/// or `fact` chunks). Sizes of 0 or 0xFFFFFFFF, as streaming writers leave them, mean "to the
/// end of the file"; a size past the end counts only the bytes present.
fn wav_pcm(wav: &[u8]) -> Result<WavPcm, AwsError> {
    let corrupt = |why: &str| AwsError::Invalid(format!("invalid `file`: corrupt WAV ({why})"));
    let le16 = |at: usize| wav.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let le32 = |at: usize| {
        wav.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if wav.get(..4) != Some(b"RIFF") || wav.get(8..12) != Some(b"WAVE") {
        return Err(corrupt("no RIFF/WAVE header"));
    }
    let mut layout: Option<(u32, u16)> = None;
    let mut pos = 12usize;
    while let (Some(id), Some(size)) = (wav.get(pos..pos + 4), le32(pos + 4)) {
        let body = pos + 8;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        match id {
            b"fmt " => {
                let (Some(mut tag), Some(channels), Some(rate), Some(bits)) =
                    (le16(body), le16(body + 2), le32(body + 4), le16(body + 14))
                else {
                    return Err(corrupt("fmt chunk is too short"));
                };
                if tag == 0xFFFE {
                    // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
                    tag = le16(body + 24).unwrap_or(0);
                }
                if (tag, bits) != (1, 16) {
                    return Err(AwsError::Invalid(format!(
                        "invalid `file`: Amazon Transcribe does not accept WAV that is not 16-bit PCM; send {ACCEPTED}"
                    )));
                }
                layout = Some((rate, channels));
            }
            b"data" => {
                let (sample_rate, channels) = layout.ok_or_else(|| corrupt("data chunk before fmt chunk"))?;
                let end = if size == 0 || size == u32::MAX as usize {
                    wav.len()
                } else {
                    body.saturating_add(size).min(wav.len())
                };
                let frame = 2 * usize::from(channels.max(1));
                let end = end - (end.saturating_sub(body)) % frame;
                return Ok(WavPcm {
                    sample_rate,
                    channels,
                    data: body.min(end)..end,
                });
            }
            _ => {}
        }
        pos = body.saturating_add(size).saturating_add(size % 2);
    }
    Err(corrupt("no data chunk"))
}

/// The language code Transcribe expects for an OpenAI `language`: a bare code gets its
/// usual region (Google's table, with Transcribe's own spelling where the two differ); a tag
/// with a region passes through with `_` read as `-`.
fn transcribe_language(code: &str) -> String {
    const OWN_SPELLING: &[(&str, &str)] = &[
        ("ar", "ar-SA"),
        ("fa", "fa-IR"),
        ("he", "he-IL"),
        ("iw", "he-IL"),
        ("no", "no-NO"),
        ("zh", "zh-CN"),
    ];
    let code = code.trim();
    if code.contains(['-', '_']) {
        return code.replace('_', "-");
    }
    let lower = code.to_ascii_lowercase();
    OWN_SPELLING
        .iter()
        .find(|(c, _)| *c == lower)
        .map_or_else(|| language::google_tag(&lower), |(_, tag)| (*tag).to_owned())
}

/// Maps a non-200 answer to `StartStreamTranscription` to `(status to report, code,
/// message)`, like [`crate::bedrock::error_from`]: `x-amzn-ErrorType` (or the body's
/// `__type`) picks the status, the message is Transcribe's, truncated, and credential
/// failures get a fixed message.
pub fn error_from(status: u16, error_type_header: Option<&str>, body: &[u8]) -> (u16, String, String) {
    let parts = http_error(error_type_header, body);
    let message = parts
        .message
        .unwrap_or_else(|| format!("Amazon Transcribe returned HTTP {status}"));
    match parts.error_type {
        Some(code) => classify(&code, Some(status), message),
        None => (fallback_status(status), "HttpError".into(), message),
    }
}

fn classify(code: &str, upstream_status: Option<u16>, message: String) -> (u16, String, String) {
    if is_credential_failure(code) {
        return (
            502,
            code.to_owned(),
            format!("Amazon Transcribe rejected the gateway's AWS credentials ({code})"),
        );
    }
    let status = match code {
        "BadRequestException" | "ValidationException" | "SerializationException" => 400,
        "LimitExceededException" | "ThrottlingException" | "TooManyRequestsException" => 429,
        "AccessDeniedException" => 403,
        "ConflictException" | "ServiceUnavailableException" => 503,
        "InternalFailureException" | "InternalFailure" | "InternalServerException" => 502,
        _ => upstream_status.map_or(502, fallback_status),
    };
    (status, code.to_owned(), message)
}

/// Reads a `StartStreamTranscription` response body, fed as it arrives, into a
/// [`Transcript`].
///
/// After the first failure (an exception from Transcribe, corrupt frames, unreadable JSON)
/// every later call returns that same error.
#[derive(Debug)]
pub struct TranscriptDecoder {
    frames: Decoder,
    language: String,
    duration: Duration,
    segments: Vec<Segment>,
    words: Vec<Word>,
    failed: Option<AwsError>,
}

impl TranscriptDecoder {
    /// A decoder for a stream in `language_code` (reported as the transcript's language) of
    /// audio lasting `duration` (the billed duration).
    pub fn new(language_code: &str, duration: Duration) -> Self {
        TranscriptDecoder {
            frames: Decoder::new(),
            language: language_code.to_owned(),
            duration,
            segments: Vec::new(),
            words: Vec::new(),
            failed: None,
        }
    }

    /// Consumes the next piece of the body. An exception sent by Transcribe is returned as
    /// [`AwsError::Upstream`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), AwsError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.read(bytes);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    /// Ends the body and returns the transcript. Fails with the stream's error if there was
    /// one, and with [`AwsError::Protocol`] if the body stopped inside a frame.
    pub fn finish(self) -> Result<Transcript, AwsError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if !self.frames.is_idle() {
            return Err(AwsError::Protocol(
                "Amazon Transcribe stream ended inside an event frame".into(),
            ));
        }
        let text = self
            .segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Transcript {
            task: Task::Transcribe,
            language: self.language,
            duration: self.duration,
            text,
            segments: self.segments,
            words: self.words,
        })
    }

    fn read(&mut self, bytes: &[u8]) -> Result<(), AwsError> {
        for message in self.frames.feed(bytes)? {
            match message.message_type().unwrap_or("event") {
                "exception" => {
                    let kind = message
                        .exception_type()
                        .or(message.event_type())
                        .unwrap_or("UnknownException");
                    let code = capitalise(&normalise_type(kind));
                    let text = payload_message(&message.payload)
                        .unwrap_or_else(|| format!("Amazon Transcribe stream failed with {code}"));
                    return Err(upstream(classify(&code, None, text)));
                }
                "error" => {
                    let code = capitalise(&normalise_type(
                        message.header_str(":error-code").unwrap_or("UnknownError"),
                    ));
                    let text = message
                        .header_str(":error-message")
                        .filter(|m| !m.is_empty())
                        .map_or_else(
                            || format!("Amazon Transcribe stream failed with {code}"),
                            crate::upstream::truncate,
                        );
                    return Err(upstream(classify(&code, None, text)));
                }
                _ if message.event_type() == Some("TranscriptEvent") => self.on_transcript(&message.payload)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn on_transcript(&mut self, payload: &[u8]) -> Result<(), AwsError> {
        let event: TranscriptEvent = serde_json::from_slice(payload)
            .map_err(|e| AwsError::Protocol(format!("unreadable TranscriptEvent: {e}")))?;
        for result in event.transcript.results.into_iter().filter(|r| !r.is_partial) {
            let Some(best) = result.alternatives.into_iter().next() else {
                continue;
            };
            let start = seconds(result.start_time)?;
            let end = seconds(result.end_time)?.max(start);
            let mut confidences = Vec::new();
            for item in &best.items {
                if item.kind != "pronunciation" {
                    continue;
                }
                let word_start = seconds(item.start_time)?;
                self.words.push(Word {
                    word: item.content.clone(),
                    start: word_start,
                    end: seconds(item.end_time)?.max(word_start),
                });
                confidences.push(item.confidence);
            }
            let text = best.transcript.trim();
            if text.is_empty() {
                continue;
            }
            let confidence = confidences
                .iter()
                .copied()
                .collect::<Option<Vec<f64>>>()
                .filter(|c| !c.is_empty())
                .map(|c| (c.iter().sum::<f64>() / c.len() as f64) as f32);
            self.segments.push(Segment {
                start,
                end,
                text: text.to_owned(),
                confidence,
            });
        }
        Ok(())
    }
}

fn upstream((status, code, message): (u16, String, String)) -> AwsError {
    AwsError::Upstream { status, code, message }
}

/// A time in seconds as Transcribe sends it.
fn seconds(value: f64) -> Result<Duration, AwsError> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| AwsError::Protocol(format!("`{value}` is not a time offset in seconds")))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TranscriptEvent {
    transcript: TranscriptBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TranscriptBody {
    #[serde(default)]
    results: Vec<TranscribeResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TranscribeResult {
    #[serde(default)]
    start_time: f64,
    #[serde(default)]
    end_time: f64,
    #[serde(default)]
    is_partial: bool,
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Alternative {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    #[serde(default)]
    content: String,
    #[serde(default)]
    start_time: f64,
    #[serde(default)]
    end_time: f64,
    #[serde(rename = "Type", default)]
    kind: String,
    confidence: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_follow_transcribes_spelling() {
        assert_eq!(transcribe_language("en"), "en-US");
        assert_eq!(transcribe_language("ZH"), "zh-CN");
        assert_eq!(transcribe_language("he"), "he-IL");
        assert_eq!(transcribe_language("de"), "de-DE");
        assert_eq!(transcribe_language("en_GB"), "en-GB");
    }

    #[test]
    fn wav_with_odd_sizes_is_cut_to_whole_samples() {
        let mut wav = crate::polly::wav_header(16_000).to_vec();
        wav.extend_from_slice(&[1, 2, 3, 4, 5]);
        let pcm = wav_pcm(&wav).unwrap();
        assert_eq!((pcm.sample_rate, pcm.channels), (16_000, 1));
        assert_eq!(pcm.data, 44..48);
        assert!(wav_pcm(b"RIFF\0\0\0\0WAVEdata\0\0\0\0").is_err());
    }
}
