//! OpenAI `POST /v1/audio/speech` ⇄ Amazon Polly `SynthesizeSpeech` (`POST /v1/speech`,
//! SigV4 service name `polly`).
//!
//! Polly answers with the audio itself as the body, so there is nothing to translate on the
//! way back: the router relays the bytes, after [`SpeechCall::prefix`] when there is one.
//! The choices, and why:
//!
//! - **Voice.** Through [`VoiceMap::polly`] (engine, `VoiceId`, optional `LanguageCode`). A
//!   name that is not mapped but looks like a Polly `VoiceId` (one capitalised ASCII word,
//!   `Matthew`) is used as is with the `neural` engine, so callers who know Polly can pick
//!   any voice. Custom OpenAI voice objects (`{"id": …}`) have no Polly meaning and are
//!   refused.
//! - **Formats.** `mp3` is Polly's `mp3` at 24 kHz (OpenAI's rate, valid for every engine);
//!   `opus` is Polly's `ogg_opus` (Ogg Opus, as OpenAI's), at Polly's default rate. `pcm` is
//!   refused: OpenAI's `pcm` is 24 kHz and Polly's `pcm` only comes at 8 or 16 kHz, and
//!   relabelling 16 kHz samples as 24 kHz would play them fast and high. `wav` is Polly's
//!   `pcm` at 16 kHz behind a 44-byte WAV header written here ([`wav_header`]) with the
//!   sizes a streaming writer uses (0xFFFFFFFF), so it can be sent before the audio is
//!   complete. `aac` and `flac` are refused: Polly produces neither, and the gateway does
//!   not transcode.
//! - **Speed.** Polly has no rate parameter; `speed` ≠ 1 becomes SSML
//!   `<speak><prosody rate="N%">…</prosody></speak>` with the text XML-escaped. Polly's
//!   prosody rate spans 20 %–200 %, so speeds above 2.0 are refused rather than clamped.
//! - **SSML.** Input that is a whole `<speak>…</speak>` document is sent as SSML unchanged
//!   (as the Google adapter does); with a speed, the prosody element is put inside its
//!   `<speak>` element.
//! - **Limits.** `SynthesizeSpeech` takes at most 3,000 billed characters (SSML tags are not
//!   billed) and 6,000 characters in all; longer input is refused before the call, naming
//!   `input` and the limit.
//! - **Ignored.** `instructions` (Polly has no style prompt) and `model` (routing already
//!   chose Polly; the engine comes from the voice).
//! - **Errors.** [`error_from`] maps Polly's error types: the caller's mistakes (bad SSML,
//!   text too long, a voice that lacks the engine or language) are 400, throttling 429,
//!   `ServiceFailureException` 502, `ServiceUnavailableException` 503, and failures of the
//!   gateway's own credentials 502 with a fixed message.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use oneflow_audio::voices::{PollyEngine, PollyVoice};
use oneflow_audio::{AudioFormat, SpeechRequest, Voice, VoiceMap};
use serde::Serialize;

use crate::upstream::{fallback_status, http_error, is_credential_failure};
use crate::{AwsError, Credentials, Prepared};

/// The SigV4 service name of Polly.
pub const SERVICE: &str = "polly";
/// Polly's limit on billed characters per `SynthesizeSpeech` call (SSML tags excluded).
pub const MAX_BILLED_CHARS: usize = 3000;
/// Polly's limit on all characters per `SynthesizeSpeech` call, SSML tags included.
pub const MAX_TOTAL_CHARS: usize = 6000;
/// Rate of the `mp3` asked for: OpenAI's.
pub const MP3_SAMPLE_RATE: u32 = 24_000;
/// Rate of the PCM behind `wav`: the highest Polly's `pcm` offers.
pub const WAV_SAMPLE_RATE: u32 = 16_000;
/// Length of the header [`wav_header`] writes.
pub const WAV_HEADER_LEN: usize = 44;

/// Polly's prosody rate range, as a fraction of normal speed.
const MIN_SPEED: f32 = 0.2;
const MAX_SPEED: f32 = 2.0;

/// Where to call Polly.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// AWS region, e.g. `us-east-1`; also the signing region.
    pub region: &'a str,
    /// Base URL replacing `https://polly.{region}.amazonaws.com` (tests, VPC endpoints, the
    /// mock provider). No trailing path beyond an optional `/`.
    pub endpoint: Option<&'a str>,
}

/// A prepared `SynthesizeSpeech` call and how to hand its answer to the client.
#[derive(Debug, Clone)]
pub struct SpeechCall {
    /// The signed request.
    pub prepared: Prepared,
    /// The format the client asked for; its `content_type()` is what the client gets.
    pub format: AudioFormat,
    /// Bytes to send the client before Polly's audio (the WAV header for `wav`), which
    /// follows unchanged.
    pub prefix: Option<Bytes>,
}

/// The `SynthesizeSpeech` JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SynthesizeSpeech<'a> {
    engine: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    language_code: Option<&'a str>,
    output_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_rate: Option<String>,
    text: String,
    text_type: &'static str,
    voice_id: &'a str,
}

/// Translates an OpenAI speech request into a signed `SynthesizeSpeech` request.
///
/// Every refusal is [`AwsError::Invalid`] naming the OpenAI field (`voice`,
/// `response_format`, `speed`, `input`); signing failures are [`AwsError::Signing`].
pub fn speech_request(
    target: &Target<'_>,
    request: &SpeechRequest,
    voices: &VoiceMap,
    creds: &Credentials,
    now: SystemTime,
) -> Result<SpeechCall, AwsError> {
    request.validate().map_err(|e| AwsError::Invalid(e.to_string()))?;
    let format = request.format().map_err(|e| AwsError::Invalid(e.to_string()))?;
    let (output_format, sample_rate, prefix) = match format {
        AudioFormat::Mp3 => ("mp3", Some(MP3_SAMPLE_RATE), None),
        AudioFormat::Opus => ("ogg_opus", None, None),
        AudioFormat::Wav => (
            "pcm",
            Some(WAV_SAMPLE_RATE),
            Some(Bytes::from(wav_header(WAV_SAMPLE_RATE).to_vec())),
        ),
        AudioFormat::Pcm => {
            return Err(AwsError::Invalid(
                "invalid `response_format`: `pcm` is 24 kHz PCM and Amazon Polly only produces PCM at 8 or 16 kHz; \
                 ask for `wav` (16 kHz) instead"
                    .into(),
            ));
        }
        other => {
            return Err(AwsError::Invalid(format!(
                "invalid `response_format`: Amazon Polly cannot produce `{other}`; use mp3, opus or wav"
            )));
        }
    };
    let voice = polly_voice(&request.voice, voices)?;
    let speed = request.speed().map_err(|e| AwsError::Invalid(e.to_string()))?;
    let (text, text_type) = input_text(&request.input, speed)?;

    let body = SynthesizeSpeech {
        engine: voice.engine.as_str(),
        language_code: voice.language_code.as_deref(),
        output_format,
        sample_rate: sample_rate.map(|r| r.to_string()),
        text,
        text_type,
        voice_id: &voice.voice_id,
    };
    let body = serde_json::to_vec(&body).map_err(|e| AwsError::Invalid(format!("cannot encode the request: {e}")))?;
    let url = format!(
        "{}/v1/speech",
        crate::service_origin("polly", target.region, target.endpoint)?
    );

    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let signed = crate::sign(
        &http::Method::POST,
        &url,
        &headers,
        &body,
        SERVICE,
        target.region,
        creds,
        now,
    )?;
    headers.extend(signed);
    Ok(SpeechCall {
        prepared: Prepared {
            url,
            headers,
            body: Bytes::from(body),
        },
        format,
        prefix,
    })
}

/// A canonical 44-byte WAV header for 16-bit mono PCM at `sample_rate`, with the RIFF and
/// `data` sizes set to 0xFFFFFFFF as streaming writers do when the length is not known yet.
pub fn wav_header(sample_rate: u32) -> [u8; WAV_HEADER_LEN] {
    let mut header = [0u8; WAV_HEADER_LEN];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        header[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"RIFF");
    put(&u32::MAX.to_le_bytes());
    put(b"WAVE");
    put(b"fmt ");
    put(&16u32.to_le_bytes());
    put(&1u16.to_le_bytes()); // PCM
    put(&1u16.to_le_bytes()); // mono
    put(&sample_rate.to_le_bytes());
    put(&(sample_rate * 2).to_le_bytes()); // byte rate
    put(&2u16.to_le_bytes()); // block align
    put(&16u16.to_le_bytes()); // bits per sample
    put(b"data");
    put(&u32::MAX.to_le_bytes());
    header
}

/// The mapped voice, or a Polly `VoiceId` used directly.
fn polly_voice(voice: &Voice, voices: &VoiceMap) -> Result<PollyVoice, AwsError> {
    let name = match voice {
        Voice::Named(name) => name.trim(),
        Voice::Custom { id } => {
            return Err(AwsError::Invalid(format!(
                "invalid `voice`: custom voice `{id}` does not exist on Amazon Polly; use an OpenAI voice name or a Polly VoiceId"
            )));
        }
    };
    if let Some(mapped) = voices.polly(name) {
        return Ok(mapped.clone());
    }
    let mut chars = name.chars();
    let looks_like_polly = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && name.len() <= 32
        && chars.clone().next().is_some()
        && chars.all(|c| c.is_ascii_lowercase());
    if looks_like_polly {
        return Ok(PollyVoice {
            voice_id: name.to_owned(),
            engine: PollyEngine::Neural,
            language_code: None,
        });
    }
    Err(AwsError::Invalid(format!(
        "invalid `voice`: no Amazon Polly voice is configured for `{name}`"
    )))
}

/// The `Text` and `TextType` for `input` at `speed`, checked against Polly's limits.
fn input_text(input: &str, speed: f32) -> Result<(String, &'static str), AwsError> {
    if !(MIN_SPEED..=MAX_SPEED).contains(&speed) {
        return Err(AwsError::Invalid(format!(
            "invalid `speed`: {speed} is outside the 0.25 to 2.0 that Amazon Polly can speak"
        )));
    }
    let trimmed = input.trim();
    let is_ssml = trimmed.starts_with("<speak") && trimmed.ends_with("</speak>");
    let (text, text_type) = if speed == 1.0 {
        if is_ssml {
            (input.to_owned(), "ssml")
        } else {
            (input.to_owned(), "text")
        }
    } else {
        let rate = (speed * 100.0).round() as u32;
        let open = format!("<prosody rate=\"{rate}%\">");
        let ssml = if is_ssml {
            wrap_speak_content(trimmed, &open)?
        } else {
            format!("<speak>{open}{}</prosody></speak>", xml_escape(input))
        };
        (ssml, "ssml")
    };
    let billed = if text_type == "ssml" {
        billed_chars(&text)
    } else {
        text.chars().count()
    };
    let total = text.chars().count();
    if billed > MAX_BILLED_CHARS || total > MAX_TOTAL_CHARS {
        return Err(AwsError::Invalid(format!(
            "invalid `input`: Amazon Polly speaks at most {MAX_BILLED_CHARS} characters of text \
             ({MAX_TOTAL_CHARS} with SSML markup) per request; this input is {billed} ({total} in all)"
        )));
    }
    Ok((text, text_type))
}

/// Puts `open` … `</prosody>` just inside the `<speak>` element of an SSML document.
fn wrap_speak_content(document: &str, open: &str) -> Result<String, AwsError> {
    let start = document
        .find('>')
        .map(|i| i + 1)
        .ok_or_else(|| AwsError::Invalid("invalid `input`: the <speak> tag is not closed".into()))?;
    let end = document.len() - "</speak>".len();
    if start > end {
        return Err(AwsError::Invalid("invalid `input`: malformed <speak> document".into()));
    }
    Ok(format!(
        "{}{open}{}</prosody></speak>",
        &document[..start],
        &document[start..end]
    ))
}

/// Escapes the five XML special characters.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Characters Polly bills in an SSML document: text outside tags, an entity counting as one.
fn billed_chars(ssml: &str) -> usize {
    let mut count = 0;
    let mut in_tag = false;
    let mut in_entity = false;
    for c in ssml.chars() {
        match (in_tag, in_entity, c) {
            (false, _, '<') => in_tag = true,
            (true, _, '>') => in_tag = false,
            (true, _, _) => {}
            (false, false, '&') => {
                in_entity = true;
                count += 1;
            }
            (false, true, ';') => in_entity = false,
            (false, true, _) => {}
            (false, false, _) => count += 1,
        }
    }
    count
}

/// Maps a failed `SynthesizeSpeech` call to `(status to report, code, message)`.
///
/// `error_type_header` is `x-amzn-ErrorType`; without it the body's `__type` is used. The
/// code is Polly's error name (`InvalidSsmlException`), or `HttpError` when there is none.
/// The message is Polly's, truncated, except for failures of the gateway's credentials,
/// which get a fixed one.
pub fn error_from(status: u16, error_type_header: Option<&str>, body: &[u8]) -> (u16, String, String) {
    let parts = http_error(error_type_header, body);
    let message = parts
        .message
        .unwrap_or_else(|| format!("Amazon Polly returned HTTP {status}"));
    let Some(code) = parts.error_type else {
        return (fallback_status(status), "HttpError".into(), message);
    };
    if is_credential_failure(&code) {
        let message = format!("Amazon Polly rejected the gateway's AWS credentials ({code})");
        return (502, code, message);
    }
    let reported = match code.as_str() {
        "InvalidSsmlException"
        | "TextLengthExceededException"
        | "LanguageNotSupportedException"
        | "EngineNotSupportedException"
        | "InvalidSampleRateException"
        | "MarksNotSupportedForFormatException"
        | "SsmlMarksNotSupportedForTextTypeException"
        | "LexiconNotFoundException"
        | "ValidationException" => 400,
        "ThrottlingException" | "TooManyRequestsException" | "ServiceQuotaExceededException" => 429,
        "AccessDeniedException" => 403,
        "ServiceFailureException" | "InternalFailure" | "InternalServerException" => 502,
        "ServiceUnavailableException" => 503,
        _ => fallback_status(status),
    };
    (reported, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_characters_skip_tags_and_count_entities_once() {
        assert_eq!(billed_chars("<speak>Hi &amp; bye</speak>"), 8);
        assert_eq!(billed_chars("<speak><break time=\"1s\"/></speak>"), 0);
    }

    #[test]
    fn prosody_goes_inside_an_existing_speak_element() {
        let wrapped = wrap_speak_content("<speak xml:lang=\"en-US\">Hi</speak>", "<prosody rate=\"50%\">").unwrap();
        assert_eq!(
            wrapped,
            "<speak xml:lang=\"en-US\"><prosody rate=\"50%\">Hi</prosody></speak>"
        );
    }
}
