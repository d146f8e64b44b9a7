//! The AWS side of OneFlow's provider adapters, with no HTTP client of its own: credentials,
//! SigV4 signing, event-stream framing and the translation between OpenAI Chat Completions
//! and Amazon Bedrock's Converse / ConverseStream API. The router owns the connection; this
//! crate turns an OpenAI request into a signed [`bedrock::Prepared`] request and turns
//! Bedrock's bytes back into OpenAI JSON plus the [`bedrock::Usage`] to bill.
//!
//! Signing is `aws-sigv4`'s and frame parsing is `aws-smithy-eventstream`'s; nothing here
//! re-implements AWS algorithms.
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
//! **Errors.** A non-streaming failure maps through `x-amzn-ErrorType`
//! ([`bedrock::error_from`]); an exception inside the stream becomes
//! [`bedrock::StreamItem::Error`] with the same statuses. `modelStreamErrorException` and
//! `ModelErrorException` (AWS says 424) are reported as 502, the retryable "upstream failed"
//! status clients understand. Failures of OneFlow's own AWS credentials (unknown key, bad
//! signature, expired token) are reported as 502 with a fixed message, because the client
//! did nothing wrong and AWS's message may quote the canonical request, session token
//! included.

#![warn(missing_docs)]

mod credentials;
mod sigv4;

pub mod bedrock;
pub mod eventstream;

pub use credentials::{Credentials, resolve_region};
pub use sigv4::sign;

/// Everything that can go wrong in this crate. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
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
}

impl AwsError {
    /// The HTTP status to report to OneFlow's client.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Credentials(_) | Self::Signing(_) => 500,
            Self::Protocol(_) => 502,
        }
    }
}
