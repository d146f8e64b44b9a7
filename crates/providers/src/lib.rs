//! Wire translation between OpenAI's Chat Completions / Embeddings API and
//! each upstream provider family, with no I/O of its own.
//!
//! Clients of the gateway speak OpenAI's API. The router picks a deployment,
//! asks this crate for the upstream request ([`chat_request`],
//! [`embeddings_request`]), sends it, and hands the answer back to be read in
//! OpenAI's shape ([`chat_response`], [`embeddings_response`],
//! [`StreamDecoder`] for streams, [`error_from`] for error statuses). Every
//! function is pure, so the translations are tested from documented fixtures
//! alone and cost no more than a JSON parse on the hot path.
//!
//! # Families
//!
//! | [`Family`] | endpoint | auth header |
//! |---|---|---|
//! | `OpenAi` (OpenAI, Ollama, vLLM, Groq, Mistral, DeepSeek, Together, the mock) | `{base_url}/chat/completions`, `{base_url}/embeddings` | `Authorization: Bearer` |
//! | `Azure` | `{base_url}/openai/deployments/{upstream_model}/chat/completions?api-version=…` (and `/embeddings`) | `api-key` |
//! | `Anthropic` | `{base_url}/v1/messages` | `x-api-key`, `anthropic-version: 2023-06-01` |
//! | `Gemini` | `{base_url}/v1beta/models/{model}:generateContent` / `:streamGenerateContent?alt=sse` / `:batchEmbedContents` | `x-goog-api-key` |
//!
//! `Target::api_version` is Azure's `api-version` (default `2024-10-21`),
//! overrides the `anthropic-version` header for Anthropic, and the path
//! version (default `v1beta`) for Gemini. Without an API key no auth header
//! is sent (local Ollama or vLLM). Secret headers are marked sensitive.
//!
//! # Decisions
//!
//! **OpenAI-compatible pass-through.** The client's body reaches the upstream
//! byte for byte, unknown parameters and key order included; only `model` is
//! replaced by the deployment's upstream model and, for streams, `stream` is
//! set and `stream_options.include_usage` forced to `true` so every stream
//! reports its usage (for non-streamed calls `stream_options` is removed, as
//! OpenAI refuses it there). Responses and stream chunks pass through
//! unchanged, so the client sees the upstream's own `model` and `id`. Azure
//! keeps the replaced `model` in the body (it is ignored there). Azure's
//! stream chunks with an empty `choices` array and no `usage` (they carry
//! `prompt_filter_results`) are dropped, since clients that read
//! `choices[0]` break on them.
//!
//! **Translated families** (Anthropic, Gemini) answer with the deployment's
//! upstream model name as `model`, the provider's message id prefixed
//! `chatcmpl-` as `id` (else the id the router passed), and the shapes of
//! OpenAI's `chat.completion` / `chat.completion.chunk`. Streams start with a
//! role chunk, then content and tool-call deltas (`index`, `id`, `name` in the
//! first delta of a call, argument fragments after), a chunk with the
//! `finish_reason`, and a last chunk with empty `choices` and the `usage`, as
//! OpenAI sends with `include_usage`. The decoder yields chunk JSON without
//! SSE framing; the router frames it and writes `data: [DONE]`.
//!
//! **Cached tokens.** [`Usage::input_tokens`] is always the whole prompt,
//! cached part included, as in OpenAI's `prompt_tokens`, and
//! [`Usage::cached_input_tokens`] is the part read from the cache, so billing
//! can price it apart. Anthropic reports `input_tokens` *without* cache reads
//! and writes, so input = `input_tokens + cache_read_input_tokens +
//! cache_creation_input_tokens` and cached = `cache_read_input_tokens`. Cache
//! writes (which Anthropic bills at a premium) are counted as plain input and
//! shown to the client as `prompt_tokens_details.cache_write_tokens`. Gemini's
//! `promptTokenCount` already includes `cachedContentTokenCount`; its
//! `toolUsePromptTokenCount` is added to input.
//!
//! **Thinking tokens.** Gemini's `thoughtsTokenCount` is billed as output
//! (Google bills it at the output price; OpenAI also counts reasoning inside
//! `completion_tokens`) and shown as `completion_tokens_details.reasoning_tokens`.
//! Thought text (Gemini `thought: true` parts, Anthropic `thinking` blocks) is
//! not passed to the client. Anthropic's `output_tokens` already include thinking.
//!
//! **JSON mode on Anthropic.** Anthropic has no JSON mode, so `response_format`
//! `json_schema` (and `json_object`, with an any-object schema) becomes a tool
//! named `oneflow_json_response` whose `input_schema` is the schema, forced
//! with `tool_choice`. When the client also sends tools, `tool_choice` becomes
//! `any` (a real tool or the JSON tool) unless it named a tool. The tool's
//! input comes back as the message `content` (JSON text; `input_json_delta`
//! fragments become content deltas in streams) with `finish_reason: stop`,
//! never as a tool call. The schema's root must be an object. A client tool
//! with that reserved name is refused.
//!
//! **JSON mode on Gemini.** `json_object` sets `responseMimeType:
//! application/json`; `json_schema` adds `responseJsonSchema` (JSON Schema as
//! sent, not the OpenAPI subset of `responseSchema`). Tool parameters use
//! `parametersJsonSchema` for the same reason.
//!
//! **Tool calls on Gemini.** Gemini rarely gives calls an id, so ids are made
//! up as `call_<completion id>_<n>`; a tool result names the function, found
//! by looking up its `tool_call_id` in the earlier assistant messages.
//! Gemini 3 needs its `thoughtSignature` back with each call: it is handed to
//! the client as `tool_calls[].extra_content.google.thought_signature`
//! (Google's own OpenAI-compatibility convention) and read back from there.
//!
//! **Messages.** System and developer messages go to Anthropic's top-level
//! `system` and Gemini's `systemInstruction`, wherever they appear. Consecutive
//! messages of one role are merged (tool results of parallel calls become one
//! user message of `tool_result` blocks / `functionResponse` parts). Images:
//! `data:` URLs become base64 sources / `inlineData`, `http(s)` URLs become URL
//! sources / `fileData` (media type guessed from the extension, else
//! `image/jpeg`). PDF `file` parts become Anthropic `document` blocks / Gemini
//! `inlineData`; audio parts go to Gemini only. Anthropic-style
//! `cache_control` on content parts, system parts and tools is passed to Anthropic.
//!
//! **Sampling parameters.** Anthropic needs `max_tokens`: `max_completion_tokens`,
//! else `max_tokens`, else `Target::default_max_tokens`. Anthropic's temperature
//! range is 0–1, so larger values are clamped to 1; recent Claude models refuse
//! `temperature` and `top_p` together, so `top_p` is only sent alone. `stop` becomes
//! `stop_sequences` / `stopSequences`; `user` (else `safety_identifier`) becomes
//! Anthropic's `metadata.user_id`; `parallel_tool_calls: false` becomes
//! `disable_parallel_tool_use`. Gemini takes `n` as `candidateCount`, plus
//! `seed`, `presence_penalty`, `frequency_penalty`.
//!
//! **Unsupported parameters.** Parameters that change what the client gets
//! back are refused with [`AdapterError::Invalid`] (400, naming the field):
//! on both families `logprobs: true`, `top_logprobs`, `audio` and
//! `modalities` with audio, `prediction`, `web_search_options`, the
//! deprecated `functions`/`function_call`, non-function tools, OpenAI
//! `file_id` references; on Anthropic also `n > 1` and audio input; token
//! arrays as Gemini embedding input; every Anthropic embeddings call.
//! Hints are dropped silently: on Anthropic `seed`, `presence_penalty`,
//! `frequency_penalty`, `logit_bias`, `reasoning_effort`, `verbosity`,
//! `service_tier`, `store`, `metadata`, `prompt_cache_key`; on Gemini
//! `logit_bias`, `parallel_tool_calls`, `reasoning_effort`, `verbosity`,
//! `service_tier`, `store`, `metadata`, `prompt_cache_key`, `user`.
//!
//! **Embeddings.** Gemini's `batchEmbedContents` gets one request per input
//! string (`dimensions` → `outputDimensionality`). It reports no token count,
//! so its [`Usage`] is zero unless the body has `usageMetadata`: the router
//! should estimate from the input. `encoding_format: base64` is honoured by
//! [`embeddings_response_as`] (little-endian `f32`, as OpenAI encodes it).
//!
//! **Errors.** [`error_from`] reads each provider's error body into an
//! [`ErrorKind`]; authentication messages are replaced by a fixed text and
//! anything that looks like a key is masked, because providers echo the key
//! they were sent. In-stream error events become [`StreamItem::Error`]; a
//! stream that ends before the provider's end marker (`[DONE]`,
//! `message_stop`, a `finishReason` for every candidate) makes
//! [`StreamDecoder::finish`] fail, so a cut is never reported as a clean end.

mod anthropic;
mod completion;
mod endpoint;
mod error;
mod gemini;
mod openai;
mod openai_request;
mod raw_json;
mod sse;
mod stream;

use bytes::Bytes;
use http::HeaderMap;

pub use error::{AdapterError, ErrorKind, UpstreamError, error_from};
pub use stream::{StreamDecoder, StreamItem};

/// The wire protocol a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// OpenAI and every server that speaks its API.
    #[serde(rename = "openai", alias = "openai_compatible")]
    OpenAi,
    /// Azure OpenAI (deployment URLs, `api-key` header).
    Azure,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (Google AI, `generativelanguage.googleapis.com`).
    Gemini,
}

/// Where and as what a request is sent: the deployment's settings.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Base URL: for OpenAI with its version path (`https://api.openai.com/v1`),
    /// for the others the bare origin (`https://api.anthropic.com`,
    /// `https://generativelanguage.googleapis.com`, `https://x.openai.azure.com`).
    pub base_url: &'a str,
    /// The model (Azure: the deployment name) the upstream knows.
    pub upstream_model: &'a str,
    /// The API key, if the upstream needs one.
    pub api_key: Option<&'a str>,
    /// Azure `api-version`; Anthropic `anthropic-version`; Gemini path version.
    pub api_version: Option<&'a str>,
    /// `max_tokens` for Anthropic when the client sets none.
    pub default_max_tokens: u64,
}

/// An upstream request ready to send with `POST`.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Full URL, query included.
    pub url: String,
    /// Content type, authentication and provider headers (secrets marked sensitive).
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Bytes,
}

/// Tokens used by one request, as billed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Every prompt token, cached ones included (OpenAI's `prompt_tokens`).
    pub input_tokens: u64,
    /// Every generated token, reasoning included (OpenAI's `completion_tokens`).
    pub output_tokens: u64,
    /// The part of `input_tokens` read from the provider's prompt cache.
    pub cached_input_tokens: u64,
}

/// How the client asked for embedding vectors (`encoding_format`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingFormat {
    /// Arrays of numbers (the default).
    #[default]
    Float,
    /// Base64 of little-endian `f32` values, as OpenAI encodes them.
    Base64,
}

impl EmbeddingFormat {
    /// The format a client's OpenAI embeddings body asks for.
    pub fn of_request(openai_body: &[u8]) -> Self {
        match raw_json::get(openai_body, "encoding_format") {
            Some(b"\"base64\"") => EmbeddingFormat::Base64,
            _ => EmbeddingFormat::Float,
        }
    }
}

/// Builds the upstream request for an OpenAI chat completion body.
///
/// `stream` says whether the router will read the answer as a stream (and
/// then feed it to a [`StreamDecoder`]).
pub fn chat_request(
    family: Family,
    target: &Target<'_>,
    openai_body: &[u8],
    stream: bool,
) -> Result<Prepared, AdapterError> {
    match family {
        Family::OpenAi | Family::Azure => openai::chat_request(family, target, openai_body, stream),
        Family::Anthropic => anthropic::chat_request(target, openai_body, stream),
        Family::Gemini => gemini::chat_request(target, openai_body, stream),
    }
}

/// Reads a successful (2xx) non-streamed upstream answer as an OpenAI
/// `chat.completion` body, with its usage.
///
/// `request_id_hint` becomes the completion id when the provider gives none.
pub fn chat_response(
    family: Family,
    target: &Target<'_>,
    upstream_body: &[u8],
    request_id_hint: &str,
) -> Result<(Bytes, Usage), AdapterError> {
    match family {
        Family::OpenAi | Family::Azure => openai::chat_response(upstream_body),
        Family::Anthropic => anthropic::chat_response(target, upstream_body, request_id_hint),
        Family::Gemini => gemini::chat_response(target, upstream_body, request_id_hint),
    }
}

/// Builds the upstream request for an OpenAI embeddings body.
///
/// Anthropic has no embeddings API: that is [`AdapterError::Invalid`].
pub fn embeddings_request(family: Family, target: &Target<'_>, openai_body: &[u8]) -> Result<Prepared, AdapterError> {
    match family {
        Family::OpenAi | Family::Azure => openai::embeddings_request(family, target, openai_body),
        Family::Anthropic => Err(AdapterError::Invalid(
            "model: Anthropic has no embeddings API".to_owned(),
        )),
        Family::Gemini => gemini::embeddings_request(target, openai_body),
    }
}

/// Reads a successful upstream embeddings answer as an OpenAI
/// `CreateEmbeddingResponse` with float vectors. See [`embeddings_response_as`]
/// to honour `encoding_format: base64`.
pub fn embeddings_response(
    family: Family,
    target: &Target<'_>,
    upstream_body: &[u8],
) -> Result<(Bytes, Usage), AdapterError> {
    embeddings_response_as(family, target, upstream_body, EmbeddingFormat::Float)
}

/// Like [`embeddings_response`], encoding translated vectors as `format`.
/// OpenAI-compatible answers pass through unchanged (the upstream already
/// honoured the client's `encoding_format`).
pub fn embeddings_response_as(
    family: Family,
    target: &Target<'_>,
    upstream_body: &[u8],
    format: EmbeddingFormat,
) -> Result<(Bytes, Usage), AdapterError> {
    match family {
        Family::OpenAi | Family::Azure => openai::embeddings_response(upstream_body),
        Family::Anthropic => Err(AdapterError::Invalid(
            "model: Anthropic has no embeddings API".to_owned(),
        )),
        Family::Gemini => gemini::embeddings_response(target, upstream_body, format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_can_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<StreamDecoder>();
        send_sync::<AdapterError>();
        send_sync::<UpstreamError>();
    }

    #[test]
    fn family_names_in_configuration() {
        assert_eq!(serde_json::to_string(&Family::OpenAi).unwrap(), "\"openai\"");
        assert_eq!(serde_json::to_string(&Family::Anthropic).unwrap(), "\"anthropic\"");
        let f: Family = serde_json::from_str("\"openai_compatible\"").unwrap();
        assert_eq!(f, Family::OpenAi);
        let f: Family = serde_json::from_str("\"gemini\"").unwrap();
        assert_eq!(f, Family::Gemini);
    }
}
