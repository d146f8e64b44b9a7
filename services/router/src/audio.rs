//! The audio dialects, seen from the router: how a speech or transcription
//! request goes to each provider family and how its answer comes back in
//! OpenAI's shape.
//!
//! OpenAI and Azure take OpenAI's own request and their answer is relayed
//! untouched. Google Cloud, Polly and Transcribe take a translated request
//! (`oneflow-audio`'s `google` module, `oneflow-aws`'s `polly` and
//! `transcribe`) and their answer is translated back: Google's base64 audio
//! is decoded, Polly's raw PCM gets the WAV header the client asked for, and
//! both transcripts are rendered in the `response_format` the client asked
//! for. A [`Reply`] carries what reading the answer needs from the request.
use std::collections::HashMap;
use std::time::SystemTime;

use bytes::Bytes;
use oneflow_audio::google::auth::AccessToken;
use oneflow_audio::{AudioError, AudioInfo, Task, Transcript, TranscriptionRequest};
use serde_json::{Map, Value};

use crate::catalog::Deployment;
use crate::config::ProviderKind;
use crate::dialect::{self, Op, Prepared};
use crate::upstream::UpstreamError;

/// What the client asked for, before it is shaped for a deployment.
#[derive(Debug)]
pub enum Payload<'a> {
    /// OpenAI's speech JSON (validated by the gateway and the router).
    Speech(&'a Map<String, Value>),
    /// A transcription or translation upload.
    Upload(&'a Upload),
}

/// A speech-to-text upload and its measurement.
#[derive(Debug)]
pub struct Upload {
    /// The audio file.
    pub audio: Vec<u8>,
    /// Its name as the client sent it.
    pub filename: String,
    /// The other form fields (language, prompt, response_format, ...).
    pub fields: HashMap<String, String>,
    /// Format and duration, read from the bytes.
    pub info: AudioInfo,
}

/// How to read a provider's successful answer.
#[derive(Debug)]
pub enum Reply {
    /// Relay the provider's bytes as they are (OpenAI, Azure, Polly).
    Raw,
    /// Send these bytes first, then the provider's (Polly's PCM as WAV).
    Prefixed(Bytes),
    /// Google Text-to-Speech JSON with base64 audio of this format.
    GoogleSpeech(oneflow_audio::AudioFormat),
    /// A Google Speech-to-Text answer, to render for `request`.
    GoogleTranscript {
        /// The call made (the measured audio and language are in it).
        call: Box<oneflow_audio::google::stt::RecognizeCall>,
        /// The client's form.
        request: Box<TranscriptionRequest>,
    },
    /// A Transcribe event stream, to decode and render for `request`.
    Transcribe {
        /// Reads the event stream.
        decoder: Box<oneflow_aws::transcribe::TranscriptDecoder>,
        /// The client's form.
        request: Box<TranscriptionRequest>,
    },
}

fn audio_error(e: &AudioError) -> UpstreamError {
    if e.is_client_error() {
        UpstreamError::Unsupported(e.to_string())
    } else {
        UpstreamError::Config(e.to_string())
    }
}

/// `url` with its origin replaced by `base` (a deployment's `base_url`).
fn rebase(url: &str, base: &str) -> String {
    if base.is_empty() {
        return url.to_owned();
    }
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    format!("{base}{path}")
}

fn speech_request(body: &Map<String, Value>) -> Result<oneflow_audio::SpeechRequest, UpstreamError> {
    serde_json::from_value(Value::Object(body.clone()))
        .map_err(|e| UpstreamError::Unsupported(format!("invalid speech request: {e}")))
}

fn transcription_request(upload: &Upload, op: Op, model: &str) -> Result<TranscriptionRequest, UpstreamError> {
    let task = match op {
        Op::Transcription { translate: true } => Task::Translate,
        _ => Task::Transcribe,
    };
    let fields = upload
        .fields
        .iter()
        .filter(|(k, _)| k.as_str() != "model")
        .flat_map(|(k, v)| {
            // Repeated fields arrive joined with commas (see `dialect::multipart`).
            let values: Vec<&str> = if k.ends_with("[]") {
                v.split(',').filter(|s| !s.is_empty()).collect()
            } else {
                vec![v.as_str()]
            };
            values.into_iter().map(move |v| (k.as_str(), v))
        })
        .chain(std::iter::once(("model", model)));
    TranscriptionRequest::from_fields(task, fields).map_err(|e| audio_error(&e))
}

fn google_headers(dep: &Deployment, token: Option<&AccessToken>) -> Result<http::HeaderMap, UpstreamError> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(token) = token {
        let (name, value) = token.authorization().map_err(|e| audio_error(&e))?;
        headers.insert(name, value);
    } else if let Some(key) = &dep.provider.api_key {
        let mut value = http::HeaderValue::from_str(key.expose())
            .map_err(|_| UpstreamError::Config("the Google API key is not a valid header value".to_owned()))?;
        value.set_sensitive(true);
        headers.insert("x-goog-api-key", value);
    }
    Ok(headers)
}

fn aws(dep: &Deployment) -> Result<&crate::catalog::Aws, UpstreamError> {
    dep.provider
        .aws
        .as_ref()
        .ok_or_else(|| UpstreamError::Config("AWS provider without AWS settings".to_owned()))
}

fn endpoint(dep: &Deployment) -> Option<&str> {
    (!dep.provider.base_url.is_empty()).then_some(dep.provider.base_url.as_str())
}

/// The upstream request for `payload` to `dep`, and how to read its answer.
/// `token` is the Google access token when the provider has a service account.
pub fn prepare(
    dep: &Deployment,
    op: Op,
    payload: &Payload<'_>,
    token: Option<&AccessToken>,
    now: SystemTime,
) -> Result<(Prepared, Reply), UpstreamError> {
    let p = &dep.provider;
    match (p.kind, payload) {
        (ProviderKind::OpenaiCompatible | ProviderKind::Azure, Payload::Speech(body)) => {
            let mut body = (*body).clone();
            body.insert("model".into(), Value::String(dep.upstream_model.clone()));
            let bytes = serde_json::to_vec(&body)
                .map_err(|e| UpstreamError::Config(format!("could not encode the request: {e}")))?;
            let prepared = dialect::audio_request(dep, op, &Bytes::from(bytes), "application/json")?;
            Ok((prepared, Reply::Raw))
        }
        (ProviderKind::OpenaiCompatible | ProviderKind::Azure, Payload::Upload(u)) => {
            let (content_type, bytes) = dialect::multipart(&dialect::Upload {
                audio: &u.audio,
                filename: &u.filename,
                model: &dep.upstream_model,
                fields: &u.fields,
            });
            let prepared = dialect::audio_request(dep, op, &bytes, &content_type)?;
            Ok((prepared, Reply::Raw))
        }
        (ProviderKind::Google, Payload::Speech(body)) => {
            let request = speech_request(body)?;
            let call =
                oneflow_audio::google::tts::synthesize_request(&request, &p.voices).map_err(|e| audio_error(&e))?;
            let body = call.to_json().map_err(|e| audio_error(&e))?;
            let prepared = Prepared {
                url: rebase(oneflow_audio::google::tts::SYNTHESIZE_URL, &p.base_url),
                headers: google_headers(dep, token)?,
                body: Bytes::from(body),
            };
            Ok((prepared, Reply::GoogleSpeech(call.format)))
        }
        (ProviderKind::Google, Payload::Upload(u)) => {
            let request = transcription_request(u, op, &dep.upstream_model)?;
            let options = oneflow_audio::google::stt::SttOptions {
                default_language: p.default_language.clone(),
                model: p.recognition_model.clone(),
                automatic_punctuation: true,
            };
            let call = oneflow_audio::google::stt::recognize_request(&u.audio, &u.info, &request, &options)
                .map_err(|e| audio_error(&e))?;
            let body = call.to_json().map_err(|e| audio_error(&e))?;
            let prepared = Prepared {
                url: rebase(call.url, &p.base_url),
                headers: google_headers(dep, token)?,
                body: Bytes::from(body),
            };
            Ok((
                prepared,
                Reply::GoogleTranscript {
                    call: Box::new(call),
                    request: Box::new(request),
                },
            ))
        }
        (ProviderKind::Polly, Payload::Speech(body)) => {
            let request = speech_request(body)?;
            let a = aws(dep)?;
            let target = oneflow_aws::polly::Target {
                region: &a.region,
                endpoint: endpoint(dep),
            };
            let call = oneflow_aws::polly::speech_request(&target, &request, &p.voices, &a.credentials, now)
                .map_err(dialect::aws_error)?;
            let reply = call.prefix.map_or(Reply::Raw, Reply::Prefixed);
            Ok((call.prepared.into(), reply))
        }
        (ProviderKind::Transcribe, Payload::Upload(u)) => {
            let request = transcription_request(u, op, &dep.upstream_model)?;
            let a = aws(dep)?;
            let target = oneflow_aws::transcribe::Target {
                region: &a.region,
                endpoint: endpoint(dep),
            };
            let options = oneflow_aws::transcribe::Options {
                default_language: p.default_language.clone(),
            };
            let call = oneflow_aws::transcribe::transcription_request(
                &target,
                &request,
                &u.audio,
                &u.info,
                &options,
                &a.credentials,
                now,
            )
            .map_err(dialect::aws_error)?;
            let decoder = Box::new(call.decoder());
            Ok((
                call.prepared.into(),
                Reply::Transcribe {
                    decoder,
                    request: Box::new(request),
                },
            ))
        }
        (kind, _) => Err(UpstreamError::Unsupported(format!(
            "model: {} deployments do not serve {}",
            kind_name(kind),
            match op {
                Op::Speech => "speech",
                Op::Transcription { translate: true } => "translations",
                _ => "transcriptions",
            }
        ))),
    }
}

fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenaiCompatible => "OpenAI-compatible",
        ProviderKind::Azure => "Azure OpenAI",
        ProviderKind::Anthropic => "Anthropic",
        ProviderKind::Gemini => "Gemini",
        ProviderKind::Bedrock => "Bedrock",
        ProviderKind::Google => "Google Cloud",
        ProviderKind::Polly => "Amazon Polly",
        ProviderKind::Transcribe => "Amazon Transcribe",
    }
}

/// Google's synthesis answer as audio bytes.
pub fn google_speech(body: &[u8], format: oneflow_audio::AudioFormat) -> Result<Bytes, UpstreamError> {
    oneflow_audio::google::tts::parse_synthesize_response(body, format).map_err(|e| {
        tracing::warn!(error = %e, "unreadable Google Text-to-Speech answer");
        UpstreamError::Protocol
    })
}

/// A transcript rendered as the client asked: (content type, body).
pub fn render(transcript: &Transcript, request: &TranscriptionRequest) -> (String, Bytes) {
    let r = transcript.render(
        request.response_format,
        request.granularities,
        request.temperature.unwrap_or(0.0),
    );
    (r.content_type.to_owned(), Bytes::from(r.body))
}

/// Google's recognition answer, rendered.
pub fn google_transcript(
    body: &[u8],
    call: &oneflow_audio::google::stt::RecognizeCall,
    request: &TranscriptionRequest,
) -> Result<(String, Bytes), UpstreamError> {
    let t = oneflow_audio::google::stt::parse_recognize_response(body, call, request).map_err(|e| {
        tracing::warn!(error = %e, "unreadable Google Speech-to-Text answer");
        UpstreamError::Protocol
    })?;
    Ok(render(&t.transcript, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_keeps_the_path() {
        assert_eq!(
            rebase(
                "https://speech.googleapis.com/v1p1beta1/speech:recognize",
                "http://127.0.0.1:9"
            ),
            "http://127.0.0.1:9/v1p1beta1/speech:recognize"
        );
        assert_eq!(
            rebase("https://texttospeech.googleapis.com/v1/text:synthesize", ""),
            "https://texttospeech.googleapis.com/v1/text:synthesize"
        );
    }

    #[test]
    fn repeated_fields_are_split_back() {
        let upload = Upload {
            audio: Vec::new(),
            filename: "a.wav".into(),
            fields: HashMap::from([
                ("timestamp_granularities[]".to_owned(), "word,segment".to_owned()),
                ("response_format".to_owned(), "verbose_json".to_owned()),
                ("language".to_owned(), "de".to_owned()),
            ]),
            info: AudioInfo {
                format: oneflow_audio::AudioFormat::Wav,
                codec: oneflow_audio::Codec::Linear16,
                duration: std::time::Duration::from_secs(1),
                sample_rate: Some(16_000),
                channels: Some(1),
            },
        };
        let r = transcription_request(&upload, Op::Transcription { translate: false }, "latest_long").expect("valid");
        assert!(r.granularities.word && r.granularities.segment);
        assert_eq!(r.language.as_deref(), Some("de"));
        assert_eq!(r.model, "latest_long");
        let bad = Upload {
            fields: HashMap::from([("response_format".to_owned(), "mp4".to_owned())]),
            ..upload
        };
        assert!(matches!(
            transcription_request(&bad, Op::Transcription { translate: false }, "m"),
            Err(UpstreamError::Unsupported(_))
        ));
    }
}
