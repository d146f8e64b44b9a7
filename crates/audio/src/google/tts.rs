//! OpenAI `POST /v1/audio/speech` ⇄ Google Cloud Text-to-Speech v1 `text:synthesize`.
//!
//! - `input` becomes `input.text`, or `input.ssml` when it is a whole `<speak>…</speak>`
//!   document, so callers who know Google can use SSML through the OpenAI API.
//! - `voice` goes through the [`VoiceMap`]; a name that is not mapped but looks like a Google
//!   voice (`de-DE-Neural2-B`) is used as is, with its first two parts as the language.
//! - `speed` becomes `speakingRate` (both 0.25–4.0). `instructions` and `model` have no
//!   counterpart in v1 and are ignored.
//! - `mp3` → `MP3`, `opus` → `OGG_OPUS` (Ogg Opus, as OpenAI's), `wav` → `LINEAR16` at
//!   24 kHz (Google wraps LINEAR16 in a WAV header), and `pcm` → the same `LINEAR16`
//!   request with the WAV header removed by walking its chunks to `data` (not by cutting 44
//!   bytes: the header may carry extra chunks). Google's v1beta1 `PCM` encoding would skip the
//!   header, but v1 is the stable API. `aac` and `flac` are refused: Google produces neither.

use bytes::Bytes;
use serde::Serialize;

use crate::error::AudioError;
use crate::format::{AudioFormat, sniff};
use crate::openai::SpeechRequest;
use crate::voices::{GoogleVoice, VoiceMap};

/// The v1 synthesis endpoint.
pub const SYNTHESIZE_URL: &str = "https://texttospeech.googleapis.com/v1/text:synthesize";
/// How this provider is named in errors.
pub const PROVIDER: &str = "Google Cloud Text-to-Speech";
/// Google's limit on `input`, in bytes of UTF-8 (OpenAI's is 4096 characters).
pub const MAX_INPUT_BYTES: usize = 5000;
/// OpenAI's `pcm` and `wav` are 24 kHz.
const SAMPLE_RATE: u32 = 24_000;

/// `SynthesisInput`: plain text or SSML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthesisInput {
    /// Plain text.
    Text(String),
    /// An SSML document.
    Ssml(String),
}

/// `VoiceSelectionParams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceSelection {
    /// BCP-47 language.
    pub language_code: String,
    /// Voice name.
    pub name: String,
}

/// `AudioEncoding` values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TtsEncoding {
    /// 16-bit PCM in a WAV container.
    Linear16,
    /// MP3.
    Mp3,
    /// Opus in Ogg.
    OggOpus,
}

/// `AudioConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioConfig {
    /// Output encoding.
    pub audio_encoding: TtsEncoding,
    /// 0.25–4.0; omitted for 1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaking_rate: Option<f32>,
    /// Output rate; omitted to get the voice's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate_hertz: Option<u32>,
}

/// The `text:synthesize` request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SynthesizeRequest {
    /// What to say.
    pub input: SynthesisInput,
    /// Who says it.
    pub voice: VoiceSelection,
    /// How it is encoded.
    pub audio_config: AudioConfig,
}

/// A prepared call: the body to POST to [`SYNTHESIZE_URL`] and the format the client asked
/// for, which [`parse_synthesize_response`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthesizeCall {
    /// The JSON body.
    pub body: SynthesizeRequest,
    /// The OpenAI `response_format`.
    pub format: AudioFormat,
}

impl SynthesizeCall {
    /// The body serialized.
    pub fn to_json(&self) -> Result<Vec<u8>, AudioError> {
        serde_json::to_vec(&self.body).map_err(|e| AudioError::Upstream {
            provider: PROVIDER,
            message: format!("could not encode request: {e}"),
        })
    }
}

/// Translates an OpenAI speech request.
pub fn synthesize_request(request: &SpeechRequest, voices: &VoiceMap) -> Result<SynthesizeCall, AudioError> {
    request.validate()?;
    let format = request.format()?;
    let (encoding, sample_rate) = match format {
        AudioFormat::Mp3 => (TtsEncoding::Mp3, None),
        AudioFormat::Opus => (TtsEncoding::OggOpus, None),
        AudioFormat::Wav | AudioFormat::Pcm => (TtsEncoding::Linear16, Some(SAMPLE_RATE)),
        AudioFormat::Aac
        | AudioFormat::Flac
        | AudioFormat::Ogg
        | AudioFormat::Webm
        | AudioFormat::Mp4
        | AudioFormat::M4a
        | AudioFormat::Mpeg => return Err(AudioError::Unsupported { format, by: PROVIDER }),
    };
    if request.input.len() > MAX_INPUT_BYTES {
        return Err(AudioError::invalid(
            "input",
            format!(
                "{} bytes of UTF-8; {PROVIDER} accepts at most {MAX_INPUT_BYTES}",
                request.input.len()
            ),
        ));
    }
    let voice = google_voice(request.voice.as_str(), voices)?;
    let trimmed = request.input.trim();
    let input = if trimmed.starts_with("<speak") && trimmed.ends_with("</speak>") {
        SynthesisInput::Ssml(request.input.clone())
    } else {
        SynthesisInput::Text(request.input.clone())
    };
    let speed = request.speed()?;
    Ok(SynthesizeCall {
        body: SynthesizeRequest {
            input,
            voice: VoiceSelection {
                language_code: voice.language_code,
                name: voice.name,
            },
            audio_config: AudioConfig {
                audio_encoding: encoding,
                speaking_rate: (speed != 1.0).then_some(speed),
                sample_rate_hertz: sample_rate,
            },
        },
        format,
    })
}

/// The mapped voice, or a Google voice name used directly.
fn google_voice(name: &str, voices: &VoiceMap) -> Result<GoogleVoice, AudioError> {
    if let Some(voice) = voices.google(name) {
        return Ok(voice.clone());
    }
    let parts: Vec<&str> = name.split('-').collect();
    let looks_like_google = parts.len() >= 3
        && (2..=3).contains(&parts[0].len())
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1].len() >= 2
        && parts.iter().all(|p| !p.is_empty());
    if looks_like_google {
        return Ok(GoogleVoice {
            name: name.to_owned(),
            language_code: format!("{}-{}", parts[0], parts[1]),
        });
    }
    Err(AudioError::invalid(
        "voice",
        format!("no {PROVIDER} voice is configured for `{name}`"),
    ))
}

/// Decodes a `text:synthesize` answer into the bytes the client gets.
pub fn parse_synthesize_response(body: &[u8], format: AudioFormat) -> Result<Bytes, AudioError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        audio_content: String,
    }
    let upstream = |message: String| AudioError::Upstream {
        provider: PROVIDER,
        message,
    };
    let answer: Answer = serde_json::from_slice(body).map_err(|_| upstream("response has no audioContent".into()))?;
    use base64::Engine as _;
    let audio = base64::engine::general_purpose::STANDARD
        .decode(answer.audio_content.as_bytes())
        .map_err(|_| upstream("audioContent is not base64".into()))?;
    let expected = if format == AudioFormat::Pcm {
        AudioFormat::Wav
    } else {
        format
    };
    if sniff(&audio) != Some(expected) {
        return Err(upstream(format!("audioContent is not {expected} audio")));
    }
    if format == AudioFormat::Pcm {
        return wav_samples(&audio)
            .map(|range| Bytes::copy_from_slice(&audio[range]))
            .map_err(upstream);
    }
    Ok(Bytes::from(audio))
}

/// The byte range of a WAV file's samples, checked to be OpenAI's `pcm` layout.
fn wav_samples(wav: &[u8]) -> Result<std::ops::Range<usize>, String> {
    let le16 = |at: usize| wav.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let le32 = |at: usize| {
        wav.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut pos = 12;
    let mut layout_ok = false;
    while let (Some(id), Some(size)) = (wav.get(pos..pos + 4), le32(pos + 4)) {
        let body = pos + 8;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        match id {
            b"fmt " => {
                let (tag, channels, rate, bits) = (le16(body), le16(body + 2), le32(body + 4), le16(body + 14));
                if (tag, channels, rate, bits) != (Some(1), Some(1), Some(SAMPLE_RATE), Some(16)) {
                    return Err(format!(
                        "LINEAR16 audio is not 16-bit mono at {SAMPLE_RATE} Hz (format {tag:?}, {channels:?} channels, {rate:?} Hz, {bits:?} bits)"
                    ));
                }
                layout_ok = true;
            }
            b"data" if layout_ok => {
                let end = body.saturating_add(size).min(wav.len());
                return Ok(body..end - (end - body) % 2);
            }
            b"data" => return Err("WAV data before its format".into()),
            _ => {}
        }
        pos = body.saturating_add(size).saturating_add(size % 2);
    }
    Err("WAV has no data chunk".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine as _;
    use serde_json::{Value, json};

    use super::*;
    use crate::generate::synthesize;

    fn request(format: &str, voice: &str, speed: Option<f32>) -> SpeechRequest {
        serde_json::from_value(json!({
            "model": "tts-1", "input": "Hello there.", "voice": voice, "response_format": format, "speed": speed,
        }))
        .unwrap()
    }

    fn body(call: &SynthesizeCall) -> Value {
        serde_json::from_slice(&call.to_json().unwrap()).unwrap()
    }

    #[test]
    fn mp3_request_has_googles_field_names() {
        let call = synthesize_request(&request("mp3", "alloy", Some(1.25)), &VoiceMap::default()).unwrap();
        assert_eq!(
            body(&call),
            json!({
                "input": {"text": "Hello there."},
                "voice": {"languageCode": "en-US", "name": "en-US-Neural2-F"},
                "audioConfig": {"audioEncoding": "MP3", "speakingRate": 1.25},
            })
        );
    }

    #[test]
    fn pcm_and_wav_ask_for_linear16_at_24khz_and_opus_for_ogg_opus() {
        for format in ["pcm", "wav"] {
            let call = synthesize_request(&request(format, "onyx", None), &VoiceMap::default()).unwrap();
            let config = &body(&call)["audioConfig"];
            assert_eq!(config, &json!({"audioEncoding": "LINEAR16", "sampleRateHertz": 24000}));
        }
        let call = synthesize_request(&request("opus", "fable", None), &VoiceMap::default()).unwrap();
        let b = body(&call);
        assert_eq!(b["audioConfig"]["audioEncoding"], "OGG_OPUS");
        assert_eq!(b["voice"]["languageCode"], "en-GB");
    }

    #[test]
    fn aac_and_flac_are_refused_naming_format_and_provider() {
        for format in ["aac", "flac"] {
            let err = synthesize_request(&request(format, "alloy", None), &VoiceMap::default()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(format) && text.contains("Google Cloud Text-to-Speech"),
                "{text}"
            );
            assert!(err.is_client_error());
        }
    }

    #[test]
    fn voices_map_pass_through_or_fail_clearly() {
        let voices = VoiceMap::default();
        let call = synthesize_request(&request("mp3", "de-DE-Neural2-B", None), &voices).unwrap();
        assert_eq!(
            call.body.voice,
            VoiceSelection {
                language_code: "de-DE".into(),
                name: "de-DE-Neural2-B".into()
            }
        );
        let err = synthesize_request(&request("mp3", "robot", None), &voices).unwrap_err();
        assert!(matches!(err, AudioError::Invalid { field: "voice", .. }), "{err}");
    }

    #[test]
    fn ssml_documents_go_as_ssml_and_long_input_is_refused() {
        let mut r = request("mp3", "alloy", None);
        r.input = "  <speak>Hi <break time=\"1s\"/> there</speak>\n".into();
        let call = synthesize_request(&r, &VoiceMap::default()).unwrap();
        assert!(matches!(call.body.input, SynthesisInput::Ssml(_)));
        r.input = "ж".repeat(2600); // 2600 characters, 5200 bytes
        let err = synthesize_request(&r, &VoiceMap::default()).unwrap_err();
        assert!(matches!(err, AudioError::Invalid { field: "input", .. }), "{err}");
    }

    fn answer(audio: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&json!({"audioContent": base64::engine::general_purpose::STANDARD.encode(audio)})).unwrap()
    }

    #[test]
    fn pcm_strips_the_wav_header_by_walking_chunks() {
        let wav = synthesize(AudioFormat::Wav, Duration::from_millis(100), 24_000).unwrap();
        // Insert a LIST chunk before data, as some encoders do: a fixed 44-byte cut would break.
        let mut with_list = wav[..36].to_vec();
        with_list.extend_from_slice(b"LIST\x04\0\0\0INFO");
        with_list.extend_from_slice(&wav[36..]);
        let pcm = parse_synthesize_response(&answer(&with_list), AudioFormat::Pcm).unwrap();
        assert_eq!(pcm.len(), 2400 * 2);
        assert_eq!(&pcm[..], &wav[44..]);
        let as_wav = parse_synthesize_response(&answer(&wav), AudioFormat::Wav).unwrap();
        assert_eq!(&as_wav[..], &wav[..]);
    }

    #[test]
    fn responses_that_are_not_the_promised_audio_are_upstream_errors() {
        let wav_16k = synthesize(AudioFormat::Wav, Duration::from_millis(100), 16_000).unwrap();
        let err = parse_synthesize_response(&answer(&wav_16k), AudioFormat::Pcm).unwrap_err();
        assert!(
            matches!(err, AudioError::Upstream { .. }) && err.to_string().contains("24000"),
            "{err}"
        );
        let mp3 = synthesize(AudioFormat::Mp3, Duration::from_millis(100), 24_000).unwrap();
        assert!(parse_synthesize_response(&answer(&mp3), AudioFormat::Opus).is_err());
        assert_eq!(
            parse_synthesize_response(&answer(&mp3), AudioFormat::Mp3)
                .unwrap()
                .len(),
            mp3.len()
        );
        assert!(parse_synthesize_response(br#"{"audioContent": "%%%"}"#, AudioFormat::Mp3).is_err());
        assert!(parse_synthesize_response(b"{}", AudioFormat::Mp3).is_err());
    }
}
