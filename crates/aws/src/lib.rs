//! The AWS side of OneFlow's provider adapters, with no HTTP client of its own: credentials,
//! SigV4 signing, event-stream framing, and three translations from OpenAI's API:
//!
//! - [`bedrock`]: Chat Completions ⇄ Amazon Bedrock's Converse / ConverseStream.
//! - [`polly`]: `/v1/audio/speech` ⇄ Amazon Polly's `SynthesizeSpeech`.
//! - [`transcribe`]: `/v1/audio/transcriptions` ⇄ Amazon Transcribe's streaming
//!   `StartStreamTranscription`.
//!
//! The router owns the connection; this crate turns an OpenAI request into a signed
//! [`Prepared`] request and turns AWS's bytes back into what OneFlow answers (OpenAI JSON
//! plus the [`bedrock::Usage`] to bill, Polly's audio behind an optional prefix, a
//! provider-neutral `oneflow_audio::Transcript`).
//!
//! Signing, including the chained signatures of Transcribe's event stream, is `aws-sigv4`'s
//! and frame parsing is `aws-smithy-eventstream`'s; nothing here re-implements AWS
//! algorithms.
//!
//! # Decisions
//!
//! **Token accounting.** Bedrock's `inputTokens` excludes prompt-cache reads and writes,
//! which it reports as `cacheReadInputTokens` and `cacheWriteInputTokens`. OneFlow follows
//! OpenAI's convention instead, where `prompt_tokens` includes the cached part:
//! `prompt_tokens = inputTokens + cacheReadInputTokens + cacheWriteInputTokens`,
//! `prompt_tokens_details.cached_tokens = cacheReadInputTokens`, and `total_tokens` is
//! recomputed as prompt plus completion rather than copied. [`bedrock::Usage`] carries the
//! same numbers (`input_tokens` inclusive, `cached_input_tokens` a subset of it). Cache
//! writes are billed as ordinary input tokens; Bedrock charges some models a premium for
//! them, which this does not capture. A non-streaming response without `usage` is a
//! protocol error, never a free request; a stream that ends before its `metadata` event
//! makes [`bedrock::StreamDecoder::finish`] fail.
//!
//! **JSON mode.** Converse has no JSON mode. `response_format` of type `json_schema` (or
//! `json_object`, with the schema `{"type":"object"}`) becomes a single tool named
//! [`bedrock::JSON_TOOL_NAME`] whose input schema is the requested schema, and `toolChoice`
//! forces it. Its input comes back as the assistant's `content` (a JSON string) with
//! `finish_reason: "stop"`, in both the plain and the streaming response, so clients see
//! ordinary structured output. Combining `response_format` with `tools` is rejected, and so
//! is a client tool with the reserved name. Bedrock only accepts a forced `toolChoice` for
//! some model families (Anthropic Claude, Mistral Large, Amazon Nova); others answer with a
//! `ValidationException`, which reaches the client as a 400. `strict` is not enforced.
//!
//! **Messages.** `system` and `developer` messages, wherever they appear, become the
//! `system` blocks in order. `tool` messages become `toolResult` blocks in a user turn
//! (content that is a JSON object is sent as `{json}`, anything else as `{text}`).
//! Consecutive turns of the same role are merged, since Bedrock requires strict
//! alternation; a conversation whose first turn is the assistant's is rejected. Empty text
//! is dropped (Bedrock rejects blank blocks). Images must be `data:` URLs (png, jpeg, gif,
//! webp): Bedrock takes bytes only, so an `http(s)` image URL is rejected with the field
//! named, not fetched by the gateway. A content part marked as a prompt-cache breakpoint
//! (OpenAI's `prompt_cache_breakpoint`, or the `cache_control` some clients send) is
//! followed by a Bedrock `cachePoint` block; that is what makes `cacheReadInputTokens`
//! non-zero, since Bedrock never caches implicitly.
//!
//! **Tools.** `tool_choice` `auto`/`required`/named map to `auto`/`any`/`tool`. `none` omits
//! the tool configuration, except when the history already holds tool calls or results:
//! Bedrock then requires `toolConfig`, so the tools are sent (synthesised with an open
//! schema from the history if the client sent none) and, Bedrock having no "none", the
//! model may still call one.
//!
//! **Unsupported parameters.** Rejected as [`AwsError::Invalid`] (the client asked for
//! something Bedrock cannot do): `n > 1`, `logprobs: true`, `top_logprobs`, audio output,
//! `audio`/`file` content parts, non-function tools, the legacy `functions` /
//! `function_call`, `web_search_options`. Ignored, as they only tune or label the
//! request: `frequency_penalty`, `presence_penalty`, `logit_bias`, `seed`, `user`,
//! `metadata`, `store`, `service_tier`, `parallel_tool_calls`, `reasoning_effort`,
//! `prediction`, `prompt_cache_key`, `prompt_cache_options`, `safety_identifier`,
//! `verbosity`, `stream` and `stream_options` (the caller decides both), and `model` (the
//! deployment's model id is used, and echoed in responses). `temperature` and `top_p` pass
//! through unchanged; Bedrock validates them against the model's own range.
//!
//! **Responses.** Text blocks are concatenated into `content`; `toolUse` blocks become
//! `tool_calls` with their input re-encoded as the `arguments` string (`content` is then
//! `null` if there was no text). `reasoningContent` and citations are dropped: Chat
//! Completions has no field for them. Unknown stop reasons read as `stop`,
//! `model_context_window_exceeded` as `length`.
//!
//! **Streaming.** The first chunk carries `role`; text deltas become `content` deltas and
//! tool input fragments become `tool_calls[].function.arguments` deltas, indexed by tool
//! call (not by content block) and announced with `id` and `name` first. `messageStop`
//! yields the chunk with `finish_reason`; `metadata` yields [`bedrock::StreamItem::Usage`].
//! The usage-only chunk OpenAI sends for `stream_options.include_usage` is left to the
//! caller ([`bedrock::StreamDecoder::usage_chunk`] builds it).
//!
//! **Polly.** `mp3` is Polly's `mp3` at 24 kHz, `opus` its `ogg_opus`, and `wav` its 16 kHz
//! `pcm` behind a 44-byte WAV header that [`polly::SpeechCall::prefix`] carries (sizes
//! 0xFFFFFFFF, so it can precede streamed audio). OpenAI's 24 kHz `pcm` is refused, since
//! Polly's PCM stops at 16 kHz and relabelling it would change pitch and pace; `aac` and
//! `flac` are refused too. Voices come from `oneflow_audio::VoiceMap`, or are a Polly
//! `VoiceId` used with the neural engine; custom voice objects are refused. `speed` becomes
//! SSML `<prosody rate="N%">` (Polly's 20–200 %, so speeds over 2 are refused); a whole
//! `<speak>` document is sent as SSML. Input over Polly's 3,000 billed / 6,000 total
//! characters is refused before the call. `instructions` is ignored.
//!
//! **Transcribe.** The upload is streamed as FLAC (`flac`), Ogg Opus (`ogg-opus`) or, for
//! 16-bit PCM WAV, headerless `pcm`; anything else is refused (no transcoding), as are
//! multi-channel audio, rates outside 8–48 kHz and translations. The whole request body is
//! built up front: one signed `AudioEvent` frame per 100 ms of audio, signatures chained from
//! the request's, then the empty end frame. Without a `language` the configured
//! [`transcribe::Options::default_language`] is used (not language identification).
//! `prompt` and `temperature` are ignored. Final results become segments; pronunciation
//! items become words.
//!
//! **Errors.** A non-streaming failure maps through `x-amzn-ErrorType`
//! ([`bedrock::error_from`], [`polly::error_from`], [`transcribe::error_from`]); an exception
//! inside a ConverseStream becomes [`bedrock::StreamItem::Error`] with the same statuses, and
//! one inside a Transcribe stream [`AwsError::Upstream`]. `modelStreamErrorException` and
//! `ModelErrorException` (AWS says 424) are reported as 502, the retryable "upstream failed"
//! status clients understand. Failures of OneFlow's own AWS credentials (unknown key, bad
//! signature, expired token) are reported as 502 with a fixed message, because the client
//! did nothing wrong and AWS's message may quote the canonical request, session token
//! included.

#![warn(missing_docs)]

mod credentials;
mod sigv4;
mod upstream;

pub mod bedrock;
pub mod eventstream;
pub mod polly;
pub mod transcribe;

pub use upstream::is_credential_failure;

use bytes::Bytes;
use http::header::HeaderMap;

pub use credentials::{Credentials, resolve_region};
pub use sigv4::sign;

/// A signed request ready to send: `POST url` with exactly `headers` (the HTTP client adds
/// `host` and `content-length`, which match what was signed) and `body`.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Full URL, path segments percent-encoded.
    pub url: String,
    /// The operation's headers plus `x-amz-date`, `authorization` and, with temporary
    /// credentials, `x-amz-security-token` (the last two marked sensitive).
    pub headers: HeaderMap,
    /// The request body: JSON, or for Transcribe the whole signed event stream.
    pub body: Bytes,
}

/// Everything that can go wrong in this crate. Messages never contain credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    /// The client's request cannot be expressed for AWS (maps to 400).
    #[error("{0}")]
    Invalid(String),
    /// Credentials or region are missing or unusable (a configuration problem, 500).
    #[error("AWS credentials: {0}")]
    Credentials(String),
    /// The request could not be signed (500).
    #[error("SigV4 signing failed: {0}")]
    Signing(String),
    /// AWS sent something this crate cannot read: corrupt frames, unexpected JSON, a stream
    /// cut short (502).
    #[error("unexpected response from AWS: {0}")]
    Protocol(String),
    /// AWS reported a failure on purpose, e.g. an exception inside a Transcribe stream. The
    /// status is the one to report to OneFlow's client, chosen by the service's error table.
    #[error("{code}: {message}")]
    Upstream {
        /// HTTP status to report.
        status: u16,
        /// AWS error name, e.g. `BadRequestException`.
        code: String,
        /// AWS's message, truncated (or a fixed one for credential failures).
        message: String,
    },
}

impl AwsError {
    /// The HTTP status to report to OneFlow's client.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Credentials(_) | Self::Signing(_) => 500,
            Self::Protocol(_) => 502,
            Self::Upstream { status, .. } => *status,
        }
    }
}

/// `https://{host_prefix}.{region}.amazonaws.com` (`.com.cn` in the China partition), or
/// `endpoint` without its trailing `/` when one is configured. The region is validated
/// because it becomes part of a host name.
pub(crate) fn service_origin(host_prefix: &str, region: &str, endpoint: Option<&str>) -> Result<String, AwsError> {
    credentials::validate_region(region)?;
    Ok(match endpoint {
        Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
        None => {
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{host_prefix}.{region}.{domain}")
        }
    })
}
