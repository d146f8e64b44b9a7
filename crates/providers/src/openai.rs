//! OpenAI and Azure OpenAI: the body passes through, only the envelope changes.
//!
//! These upstreams already speak the client's language, so translating would
//! only lose information (unknown parameters, number formatting, new fields).
//! Requests are edited in place ([`crate::raw_json`]): `model` replaced, and
//! for streams `stream_options.include_usage` forced so usage is always
//! metered. Responses and stream chunks go back untouched; this module only
//! reads their usage and recognises in-stream errors and the `[DONE]` marker.

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::endpoint::{add_secret, encode, join, json_headers};
use crate::error::{read_openai, safe_message};
use crate::sse::SseEvent;
use crate::stream::StreamItem;
use crate::{AdapterError, Family, Prepared, Target, Usage, raw_json};

/// Azure `api-version` when the deployment sets none (latest GA inference version).
const AZURE_API_VERSION: &str = "2024-10-21";

fn not_an_object() -> AdapterError {
    AdapterError::Invalid("body: expected a JSON object".to_owned())
}

/// Checks the client's body is JSON without building it in memory (bodies may
/// carry megabytes of base64 images); [`raw_json`] then checks it is an object.
fn validate(body: &[u8]) -> Result<(), AdapterError> {
    serde_json::from_slice::<IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| AdapterError::Invalid(format!("body: not valid JSON ({e})")))
}

/// The few fields of an OpenAI answer or chunk this module reads; the rest is
/// skipped without being built.
#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
}

fn with_model(body: &[u8], model: &str) -> Result<Vec<u8>, AdapterError> {
    let quoted = serde_json::to_vec(model).map_err(|e| AdapterError::Config(format!("upstream model: {e}")))?;
    raw_json::set(body, "model", &quoted).ok_or_else(not_an_object)
}

fn prepare(family: Family, target: &Target<'_>, path: &str, body: Vec<u8>) -> Result<Prepared, AdapterError> {
    let mut headers = json_headers();
    let url = match family {
        Family::Azure => {
            add_secret(&mut headers, HeaderName::from_static("api-key"), "", target.api_key)?;
            let version = target.api_version.unwrap_or(AZURE_API_VERSION);
            join(
                target.base_url,
                &format!(
                    "openai/deployments/{}/{path}?api-version={}",
                    encode(target.upstream_model, false),
                    encode(version, false)
                ),
            )
        }
        Family::OpenAi | Family::Anthropic | Family::Gemini => {
            add_secret(&mut headers, AUTHORIZATION, "Bearer ", target.api_key)?;
            join(target.base_url, path)
        }
    };
    Ok(Prepared {
        url,
        headers,
        body: Bytes::from(body),
    })
}

pub(crate) fn chat_request(
    family: Family,
    target: &Target<'_>,
    body: &[u8],
    stream: bool,
) -> Result<Prepared, AdapterError> {
    validate(body)?;
    let mut body = with_model(body, target.upstream_model)?;
    if stream {
        body = raw_json::set(&body, "stream", b"true").ok_or_else(not_an_object)?;
        let options = match raw_json::get(&body, "stream_options") {
            Some(existing) if existing.starts_with(b"{") => {
                raw_json::set(existing, "include_usage", b"true").ok_or_else(not_an_object)?
            }
            _ => br#"{"include_usage":true}"#.to_vec(),
        };
        body = raw_json::set(&body, "stream_options", &options).ok_or_else(not_an_object)?;
    } else {
        if raw_json::get(&body, "stream").is_some_and(|v| v != b"false") {
            body = raw_json::set(&body, "stream", b"false").ok_or_else(not_an_object)?;
        }
        if raw_json::get(&body, "stream_options").is_some() {
            body = raw_json::remove(&body, "stream_options").ok_or_else(not_an_object)?;
        }
    }
    prepare(family, target, "chat/completions", body)
}

pub(crate) fn embeddings_request(family: Family, target: &Target<'_>, body: &[u8]) -> Result<Prepared, AdapterError> {
    validate(body)?;
    let body = with_model(body, target.upstream_model)?;
    prepare(family, target, "embeddings", body)
}

/// Usage of an OpenAI `usage` object (chat or embeddings).
fn usage_of(u: Option<&Value>) -> Option<Usage> {
    let u = u.filter(|u| u.is_object())?;
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let input = match u.get("prompt_tokens").and_then(Value::as_u64) {
        Some(p) => p,
        None => n("/total_tokens"),
    };
    Some(Usage {
        input_tokens: input,
        output_tokens: n("/completion_tokens"),
        cached_input_tokens: n("/prompt_tokens_details/cached_tokens"),
    })
}

fn read_body(body: &[u8]) -> Result<(Bytes, Usage), AdapterError> {
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(AdapterError::Protocol(
            "the upstream's answer is not a JSON object".to_owned(),
        ));
    }
    let peek: Peek = serde_json::from_slice(body)
        .map_err(|e| AdapterError::Protocol(format!("the upstream's answer is not JSON ({e})")))?;
    Ok((
        Bytes::copy_from_slice(body),
        usage_of(peek.usage.as_ref()).unwrap_or_default(),
    ))
}

pub(crate) fn chat_response(body: &[u8]) -> Result<(Bytes, Usage), AdapterError> {
    read_body(body)
}

pub(crate) fn embeddings_response(body: &[u8]) -> Result<(Bytes, Usage), AdapterError> {
    read_body(body)
}

/// Stream state of an OpenAI-compatible upstream.
#[derive(Debug)]
pub(crate) struct PassthroughStream {
    azure: bool,
    done: bool,
    errored: bool,
    usage: Option<Usage>,
}

impl PassthroughStream {
    pub(crate) fn new(azure: bool) -> Self {
        PassthroughStream {
            azure,
            done: false,
            errored: false,
            usage: None,
        }
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub(crate) fn event(&mut self, event: SseEvent, out: &mut Vec<StreamItem>) -> Result<(), AdapterError> {
        if self.done || self.errored {
            return Ok(());
        }
        if event.data.trim_ascii() == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        if !event.data.trim_ascii_start().starts_with(b"{") {
            return Err(AdapterError::Protocol("stream event is not a JSON object".to_owned()));
        }
        let peek: Peek = serde_json::from_slice(&event.data)
            .map_err(|e| AdapterError::Protocol(format!("stream event is not JSON ({e})")))?;
        if let Some(error) = peek.error.filter(|e| !e.is_null())
            && peek.choices.is_none()
        {
            let body = serde_json::json!({ "error": error });
            if let Some(mut error) = read_openai(&body, None) {
                error.message = safe_message(error.kind, &error.message);
                out.push(StreamItem::Error(error));
                self.errored = true;
            }
            return Ok(());
        }
        let usage = usage_of(peek.usage.as_ref());
        let no_choices = peek.choices.is_none_or(|c| c.is_empty());
        if self.azure && no_choices && usage.is_none() {
            // Azure's `prompt_filter_results` chunk: nothing an OpenAI client can use.
            return Ok(());
        }
        out.push(StreamItem::Chunk(Bytes::from(event.data)));
        if let Some(u) = usage {
            self.usage = Some(u);
            out.push(StreamItem::Usage(u));
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> Result<(), AdapterError> {
        if self.done || self.errored {
            Ok(())
        } else {
            Err(AdapterError::Protocol(
                "the upstream stream ended before `data: [DONE]`".to_owned(),
            ))
        }
    }
}
