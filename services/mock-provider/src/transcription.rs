//! `POST /v1/audio/transcriptions` and `POST /v1/audio/translations`:
//! OpenAI speech-to-text over `multipart/form-data`.
//!
//! The gateway forwards uploads, bills them by their length and relays five
//! response formats, so the mock checks what a real provider checks and
//! answers what it answers: the file is judged by its bytes (a renamed text
//! file is a 400, as at OpenAI), its duration is measured from the audio,
//! and the transcript (see `mock_transcript`) is rendered by
//! `oneflow_audio`'s renderers in the asked format. `usage` follows the
//! model family: whisper-style models report billed seconds, `gpt-*`
//! models report tokens and, as at OpenAI, answer only `json` or `text`.

use std::time::Duration;

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use oneflow_audio::{Task, TranscriptFormat, TranscriptionRequest, inspect};
use serde_json::{Value, json};

use crate::MockState;
use crate::error::ApiError;
use crate::mock_transcript::{default_text, transcript};
use crate::script::{Directives, gate};
use crate::stats::Counters;

/// OpenAI's limit on a transcription request body: 25 MiB.
pub(crate) const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
/// OpenAI refuses audio shorter than this.
const MIN_AUDIO: Duration = Duration::from_millis(100);
/// Audio tokens a `gpt-*` transcription model bills per second of audio.
const AUDIO_TOKENS_PER_SECOND: u128 = 10;

/// The body limit layer of the speech-to-text routes.
pub(crate) fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_UPLOAD_BYTES)
}

/// `POST /v1/audio/transcriptions`.
pub(crate) async fn transcriptions(
    State(state): State<MockState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    answer(&state, &headers, multipart, Task::Transcribe).await
}

/// `POST /v1/audio/translations`.
pub(crate) async fn translations(
    State(state): State<MockState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    answer(&state, &headers, multipart, Task::Translate).await
}

async fn answer(
    state: &MockState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.transcription_requests);
    counters.record_headers(headers);
    match handle(state, headers, multipart, task).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(
    state: &MockState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Result<Response, ApiError> {
    let multipart = multipart.map_err(|rejection| {
        ApiError::invalid_request(
            format!("Could not parse multipart form: {}", rejection.body_text()),
            None::<&'static str>,
        )
    })?;
    let upload = Upload::read(multipart).await?;
    let directives = Directives::read(headers, None)?;
    gate(state, &directives).await?;

    let request = TranscriptionRequest::from_fields(
        task,
        upload
            .fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )?;
    let file = upload.file.ok_or_else(|| ApiError::missing_param("file"))?;
    if !state.config().transcription_models.contains(&request.model) {
        return Err(ApiError::model_not_found(&request.model));
    }
    let billing = Billing::of(&request.model);
    if billing == Billing::Tokens && request.response_format.needs_timing() {
        return Err(ApiError::invalid_request(
            format!(
                "response_format '{}' is not compatible with model '{}'. Use 'json' or 'text'.",
                format_name(request.response_format),
                request.model
            ),
            Some("response_format"),
        ));
    }

    // Demuxing a 25 MiB upload is real CPU work: keep it off the async workers.
    let info = tokio::task::spawn_blocking(move || inspect(file, None))
        .await
        .map_err(|err| ApiError::internal(&err.to_string()))??;
    if !info.format.is_transcription_input() {
        return Err(oneflow_audio::AudioError::Unsupported {
            format: info.format,
            by: "the transcription endpoints",
        }
        .into());
    }
    if info.duration < MIN_AUDIO {
        return Err(ApiError::invalid_request(
            "Audio file is too short. Minimum audio length is 0.1 seconds.",
            Some("file"),
        )
        .with_code("audio_too_short"));
    }

    let text = directives
        .transcript
        .or_else(|| request.prompt.clone())
        .unwrap_or_else(|| default_text(task, info.duration));
    let language = request.language.as_deref().unwrap_or("en");
    let transcript = transcript(task, language, info.duration, text);
    let rendered = transcript.render(
        request.response_format,
        request.granularities,
        request.temperature.unwrap_or(0.0),
    );
    let body = match (billing, request.response_format) {
        (Billing::Tokens, TranscriptFormat::Json) => {
            let mut body: Value =
                serde_json::from_str(&rendered.body).map_err(|err| ApiError::internal(&err.to_string()))?;
            body["usage"] = token_usage(info.duration, request.prompt.as_deref(), &transcript.text);
            body.to_string()
        }
        _ => rendered.body,
    };
    Ok(([(CONTENT_TYPE, rendered.content_type)], body).into_response())
}

/// The fields of one upload: the text parts in order, and the `file` part.
struct Upload {
    fields: Vec<(String, String)>,
    file: Option<Bytes>,
}

impl Upload {
    async fn read(mut multipart: Multipart) -> Result<Self, ApiError> {
        let mut upload = Upload {
            fields: Vec::new(),
            file: None,
        };
        while let Some(field) = multipart.next_field().await.map_err(form_error)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                if upload.file.is_some() {
                    return Err(ApiError::invalid_request(
                        "Only one 'file' may be uploaded.",
                        Some("file"),
                    ));
                }
                upload.file = Some(field.bytes().await.map_err(form_error)?);
            } else {
                let value = field.text().await.map_err(form_error)?;
                upload.fields.push((name, value));
            }
        }
        Ok(upload)
    }
}

/// A multipart body that broke off or went over the limit.
fn form_error(err: MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(MAX_UPLOAD_BYTES)
    } else {
        ApiError::invalid_request(
            format!("Could not parse multipart form: {}", err.body_text()),
            None::<&'static str>,
        )
    }
}

/// How a model family reports `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Billing {
    /// `{"type": "duration", "seconds": N}` (whisper).
    Duration,
    /// `{"type": "tokens", …}` (`gpt-4o-transcribe` and its kin).
    Tokens,
}

impl Billing {
    fn of(model: &str) -> Self {
        if model.starts_with("gpt-") {
            Billing::Tokens
        } else {
            Billing::Duration
        }
    }
}

/// OpenAI's token usage of a `gpt-*` transcription: audio tokens from the
/// duration (rounded up), text tokens from the prompt's words, output tokens
/// from the transcript's words.
fn token_usage(duration: Duration, prompt: Option<&str>, text: &str) -> Value {
    let words = |text: &str| text.split_whitespace().count() as u64;
    let audio = u64::try_from((duration.as_millis() * AUDIO_TOKENS_PER_SECOND).div_ceil(1000)).unwrap_or(u64::MAX);
    let text_tokens = prompt.map_or(0, words);
    let input = audio.saturating_add(text_tokens);
    let output = words(text);
    json!({
        "type": "tokens",
        "input_tokens": input,
        "input_token_details": {"text_tokens": text_tokens, "audio_tokens": audio},
        "output_tokens": output,
        "total_tokens": input.saturating_add(output),
    })
}

/// OpenAI's spelling of a transcript format, for error messages.
fn format_name(format: TranscriptFormat) -> &'static str {
    match format {
        TranscriptFormat::Json => "json",
        TranscriptFormat::Text => "text",
        TranscriptFormat::Srt => "srt",
        TranscriptFormat::Vtt => "vtt",
        TranscriptFormat::VerboseJson => "verbose_json",
    }
}

#[cfg(test)]
mod tests;
