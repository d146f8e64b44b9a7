//! The OpenAI audio requests as OneFlow receives them, validated once at the edge so every
//! provider adapter gets the same checked values: `POST /v1/audio/speech` (JSON) and the
//! text fields of `POST /v1/audio/transcriptions` and `/translations` (multipart; the file
//! part is the gateway's to read).

use serde::{Deserialize, Serialize};

use crate::error::AudioError;
use crate::format::AudioFormat;

/// OpenAI's limit on `input` and `instructions`, in characters.
pub const MAX_SPEECH_CHARS: usize = 4096;

/// A voice: a built-in name (`alloy`) or a custom voice object (`{"id": "voice_1234"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Voice {
    /// A voice name.
    Named(String),
    /// A custom voice, by id.
    Custom {
        /// The custom voice's id.
        id: String,
    },
}

impl Voice {
    /// The name or id, whichever this is.
    pub fn as_str(&self) -> &str {
        match self {
            Voice::Named(name) => name,
            Voice::Custom { id } => id,
        }
    }
}

/// The body of `POST /v1/audio/speech`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechRequest {
    /// `tts-1`, `tts-1-hd`, `gpt-4o-mini-tts`, … (routing decides what it means).
    pub model: String,
    /// The text to speak, at most 4096 characters.
    pub input: String,
    /// The voice.
    pub voice: Voice,
    /// Style instructions; providers without such a control ignore them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// `mp3` (default), `opus`, `aac`, `flac`, `wav` or `pcm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    /// 0.25 to 4.0, default 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f32>,
    /// `audio` (default) or `sse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_format: Option<String>,
}

impl SpeechRequest {
    /// The requested output format, `mp3` when absent.
    pub fn format(&self) -> Result<AudioFormat, AudioError> {
        match self.response_format.as_deref() {
            None => Ok(AudioFormat::Mp3),
            Some(name) => AudioFormat::from_openai_name(name).ok_or_else(|| {
                AudioError::invalid(
                    "response_format",
                    format!("`{name}` is not one of mp3, opus, aac, flac, wav, pcm"),
                )
            }),
        }
    }

    /// The speaking rate, 1.0 when absent.
    pub fn speed(&self) -> Result<f32, AudioError> {
        match self.speed {
            None => Ok(1.0),
            Some(s) if (0.25..=4.0).contains(&s) => Ok(s),
            Some(s) => Err(AudioError::invalid("speed", format!("{s} is outside 0.25 to 4.0"))),
        }
    }

    /// Checks every field against OpenAI's rules.
    pub fn validate(&self) -> Result<(), AudioError> {
        if self.model.trim().is_empty() {
            return Err(AudioError::invalid("model", "must not be empty"));
        }
        if self.input.trim().is_empty() {
            return Err(AudioError::invalid("input", "must not be empty"));
        }
        let chars = self.input.chars().count();
        if chars > MAX_SPEECH_CHARS {
            return Err(AudioError::invalid(
                "input",
                format!("{chars} characters; the limit is {MAX_SPEECH_CHARS}"),
            ));
        }
        if self
            .instructions
            .as_ref()
            .is_some_and(|i| i.chars().count() > MAX_SPEECH_CHARS)
        {
            return Err(AudioError::invalid(
                "instructions",
                format!("the limit is {MAX_SPEECH_CHARS} characters"),
            ));
        }
        if self.voice.as_str().trim().is_empty() {
            return Err(AudioError::invalid("voice", "must not be empty"));
        }
        match self.stream_format.as_deref() {
            None | Some("audio") => {}
            Some("sse") => {
                return Err(AudioError::invalid(
                    "stream_format",
                    "`sse` is not supported; use `audio`",
                ));
            }
            Some(other) => {
                return Err(AudioError::invalid(
                    "stream_format",
                    format!("`{other}` is not audio or sse"),
                ));
            }
        }
        self.format()?;
        self.speed()?;
        Ok(())
    }
}

/// Which endpoint a speech-to-text request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// `/v1/audio/transcriptions`: text in the spoken language.
    Transcribe,
    /// `/v1/audio/translations`: English text.
    Translate,
}

impl Task {
    /// OpenAI's spelling in `verbose_json`: `transcribe` or `translate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Transcribe => "transcribe",
            Task::Translate => "translate",
        }
    }
}

/// The `response_format` of a transcription or translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TranscriptFormat {
    /// `{"text": …}`.
    #[default]
    Json,
    /// The text alone.
    Text,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// `{task, language, duration, text, segments, words}`.
    VerboseJson,
}

impl TranscriptFormat {
    /// Parses OpenAI's spelling. `diarized_json` is refused: no provider here labels speakers.
    pub fn from_openai_name(name: &str) -> Option<TranscriptFormat> {
        match name {
            "json" => Some(TranscriptFormat::Json),
            "text" => Some(TranscriptFormat::Text),
            "srt" => Some(TranscriptFormat::Srt),
            "vtt" => Some(TranscriptFormat::Vtt),
            "verbose_json" => Some(TranscriptFormat::VerboseJson),
            _ => None,
        }
    }

    /// Whether the output carries timestamps, so the provider must be asked for them.
    pub fn needs_timing(self) -> bool {
        match self {
            TranscriptFormat::Srt | TranscriptFormat::Vtt | TranscriptFormat::VerboseJson => true,
            TranscriptFormat::Json | TranscriptFormat::Text => false,
        }
    }
}

/// Which timestamps `verbose_json` carries (`timestamp_granularities[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granularities {
    /// `segments[]`.
    pub segment: bool,
    /// `words[]`.
    pub word: bool,
}

impl Default for Granularities {
    /// OpenAI's default: segments only.
    fn default() -> Self {
        Granularities {
            segment: true,
            word: false,
        }
    }
}

/// The text fields of a transcription or translation upload, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionRequest {
    /// Which endpoint.
    pub task: Task,
    /// `whisper-1`, `gpt-4o-transcribe`, …
    pub model: String,
    /// ISO 639-1 language of the audio (transcriptions only).
    pub language: Option<String>,
    /// Text to guide style or vocabulary.
    pub prompt: Option<String>,
    /// How to render the result.
    pub response_format: TranscriptFormat,
    /// 0 to 1.
    pub temperature: Option<f32>,
    /// Which timestamps `verbose_json` carries.
    pub granularities: Granularities,
}

impl TranscriptionRequest {
    /// Builds the request from the multipart text fields (name, value), in any order.
    /// `timestamp_granularities[]` may repeat. Fields this crate does not know (such as the
    /// `file` part or `include[]`) are left to the caller and ignored here; `stream=true` is
    /// refused because transcripts are returned whole.
    pub fn from_fields<'a>(
        task: Task,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TranscriptionRequest, AudioError> {
        let mut model = None;
        let mut request = TranscriptionRequest {
            task,
            model: String::new(),
            language: None,
            prompt: None,
            response_format: TranscriptFormat::Json,
            temperature: None,
            granularities: Granularities::default(),
        };
        let mut granularities: Option<Granularities> = None;
        for (name, value) in fields {
            match name {
                "model" => model = Some(value.trim().to_owned()),
                "language" if task == Task::Transcribe && !value.trim().is_empty() => {
                    request.language = Some(value.trim().to_owned())
                }
                "prompt" if !value.is_empty() => request.prompt = Some(value.to_owned()),
                "response_format" => {
                    request.response_format = TranscriptFormat::from_openai_name(value).ok_or_else(|| {
                        AudioError::invalid(
                            "response_format",
                            format!("`{value}` is not one of json, text, srt, verbose_json, vtt"),
                        )
                    })?
                }
                "temperature" => {
                    let t: f32 = value
                        .trim()
                        .parse()
                        .map_err(|_| AudioError::invalid("temperature", format!("`{value}` is not a number")))?;
                    if !(0.0..=1.0).contains(&t) {
                        return Err(AudioError::invalid("temperature", format!("{t} is outside 0 to 1")));
                    }
                    request.temperature = Some(t);
                }
                "timestamp_granularities[]" | "timestamp_granularities" => {
                    let g = granularities.get_or_insert(Granularities {
                        segment: false,
                        word: false,
                    });
                    match value.trim() {
                        "word" => g.word = true,
                        "segment" => g.segment = true,
                        other => {
                            return Err(AudioError::invalid(
                                "timestamp_granularities",
                                format!("`{other}` is not word or segment"),
                            ));
                        }
                    }
                }
                "stream" if value.trim() == "true" => {
                    return Err(AudioError::invalid("stream", "streamed transcription is not supported"));
                }
                _ => {}
            }
        }
        request.model = model
            .filter(|m| !m.is_empty())
            .ok_or_else(|| AudioError::invalid("model", "is required"))?;
        if let Some(g) = granularities {
            if request.response_format != TranscriptFormat::VerboseJson {
                return Err(AudioError::invalid(
                    "timestamp_granularities",
                    "needs response_format verbose_json",
                ));
            }
            request.granularities = g;
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(json: serde_json::Value) -> Result<SpeechRequest, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn speech_request_parses_named_and_custom_voices() {
        let named = speech(serde_json::json!({"model": "tts-1", "input": "hi", "voice": "alloy"})).unwrap();
        assert_eq!(named.voice, Voice::Named("alloy".into()));
        assert_eq!(named.format().unwrap(), AudioFormat::Mp3);
        assert_eq!(named.speed().unwrap(), 1.0);
        named.validate().unwrap();
        let custom = speech(serde_json::json!({"model": "m", "input": "hi", "voice": {"id": "voice_1"}})).unwrap();
        assert_eq!(custom.voice.as_str(), "voice_1");
        assert!(speech(serde_json::json!({"model": "m", "input": "hi", "voice": "a", "extra": 1})).is_err());
    }

    #[test]
    fn speech_validation_names_the_field() {
        let base = speech(serde_json::json!({"model": "tts-1", "input": "hi", "voice": "alloy"})).unwrap();
        let field = |r: SpeechRequest| match r.validate() {
            Err(AudioError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(
            field(SpeechRequest {
                input: " ".into(),
                ..base.clone()
            }),
            "input"
        );
        assert_eq!(
            field(SpeechRequest {
                input: "é".repeat(4097),
                ..base.clone()
            }),
            "input"
        );
        assert_eq!(
            field(SpeechRequest {
                speed: Some(4.5),
                ..base.clone()
            }),
            "speed"
        );
        assert_eq!(
            field(SpeechRequest {
                response_format: Some("ogg".into()),
                ..base.clone()
            }),
            "response_format"
        );
        assert_eq!(
            field(SpeechRequest {
                stream_format: Some("sse".into()),
                ..base.clone()
            }),
            "stream_format"
        );
        // 4096 multi-byte characters are fine: the limit counts characters, not bytes.
        SpeechRequest {
            input: "é".repeat(4096),
            speed: Some(0.25),
            ..base
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn transcription_fields_parse_and_validate() {
        let fields = [
            ("model", "whisper-1"),
            ("language", "de"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
            ("temperature", "0.2"),
            ("include[]", "logprobs"),
        ];
        let r = TranscriptionRequest::from_fields(Task::Transcribe, fields).unwrap();
        assert_eq!(r.model, "whisper-1");
        assert_eq!(r.language.as_deref(), Some("de"));
        assert_eq!(r.response_format, TranscriptFormat::VerboseJson);
        assert_eq!(
            r.granularities,
            Granularities {
                segment: true,
                word: true
            }
        );
        assert_eq!(r.temperature, Some(0.2));

        let translate =
            TranscriptionRequest::from_fields(Task::Translate, [("model", "whisper-1"), ("language", "de")]);
        assert_eq!(
            translate.unwrap().language,
            None,
            "translations have no source language field"
        );

        let err = |fields: &[(&str, &str)]| match TranscriptionRequest::from_fields(Task::Transcribe, fields.to_vec()) {
            Err(AudioError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(err(&[]), "model");
        assert_eq!(
            err(&[("model", "m"), ("response_format", "diarized_json")]),
            "response_format"
        );
        assert_eq!(err(&[("model", "m"), ("temperature", "2")]), "temperature");
        assert_eq!(
            err(&[("model", "m"), ("timestamp_granularities[]", "word")]),
            "timestamp_granularities"
        );
        assert_eq!(err(&[("model", "m"), ("stream", "true")]), "stream");
    }
}
