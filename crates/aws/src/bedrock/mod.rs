//! Amazon Bedrock behind OneFlow's OpenAI-compatible chat API, through the model-agnostic
//! Converse and ConverseStream operations (service name `bedrock`).
//!
//! [`chat_request`] builds the signed upstream request, [`chat_response`] and
//! [`StreamDecoder`] translate the answer back, [`error_from`] maps failures. The crate-level
//! documentation lists the translation decisions.

mod error;
mod request;
mod response;
mod stream;

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};

use crate::credentials::validate_region;
use crate::{AwsError, Credentials};

pub use crate::Prepared;
pub use error::error_from;
pub use stream::{StreamDecoder, StreamItem};

/// Name of the tool that carries `response_format` JSON output (see the crate docs).
/// Client tools may not use it.
pub const JSON_TOOL_NAME: &str = "oneflow_json_response";

/// The SigV4 service name of the Bedrock runtime.
pub const SERVICE: &str = "bedrock";

/// Where and what to call: one Bedrock deployment.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// AWS region, e.g. `us-east-1`; also the signing region.
    pub region: &'a str,
    /// Base URL replacing `https://bedrock-runtime.{region}.amazonaws.com` (tests, VPC
    /// endpoints, the mock provider). No trailing path beyond an optional `/`.
    pub endpoint: Option<&'a str>,
    /// Model id, inference profile id or ARN, e.g. `anthropic.claude-3-haiku-20240307-v1:0`.
    pub model_id: &'a str,
    /// `maxTokens` to send when the client gives neither `max_completion_tokens` nor
    /// `max_tokens`; 0 leaves it to the model's default.
    pub default_max_tokens: u64,
}

/// Tokens to bill for one call, in OpenAI's convention: `input_tokens` includes the cached
/// ones, `cached_input_tokens` is the part read from Bedrock's prompt cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens: Bedrock's `inputTokens + cacheReadInputTokens + cacheWriteInputTokens`.
    pub input_tokens: u64,
    /// Completion tokens: Bedrock's `outputTokens`.
    pub output_tokens: u64,
    /// Bedrock's `cacheReadInputTokens`; a subset of `input_tokens`.
    pub cached_input_tokens: u64,
}

/// Translates an OpenAI `POST /v1/chat/completions` body into a signed Converse
/// (`stream == false`) or ConverseStream (`stream == true`) request for `target`.
///
/// The body's own `stream` flag is not consulted: the caller decides. Errors are
/// [`AwsError::Invalid`] for requests Bedrock cannot express (with the offending field
/// named) and [`AwsError::Signing`] for signing failures.
pub fn chat_request(
    target: &Target<'_>,
    openai_body: &[u8],
    stream: bool,
    creds: &Credentials,
    now: SystemTime,
) -> Result<Prepared, AwsError> {
    let url = operation_url(target, stream)?;
    let body = request::converse_body(openai_body, target.default_max_tokens)?;
    let body = serde_json::to_vec(&body).map_err(|e| AwsError::Invalid(format!("cannot encode the request: {e}")))?;

    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let accept = if stream {
        "application/vnd.amazon.eventstream"
    } else {
        "application/json"
    };
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
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
    Ok(Prepared {
        url,
        headers,
        body: Bytes::from(body),
    })
}

/// Translates a successful Converse response body into an OpenAI `chat.completion` object
/// with the given `id` and `created`, and the usage to bill.
pub fn chat_response(
    target: &Target<'_>,
    upstream_body: &[u8],
    id: &str,
    created: i64,
) -> Result<(Bytes, Usage), AwsError> {
    response::chat_completion(target.model_id, upstream_body, id, created)
}

fn operation_url(target: &Target<'_>, stream: bool) -> Result<String, AwsError> {
    validate_region(target.region)?;
    if target.model_id.trim().is_empty() {
        return Err(AwsError::Invalid("the Bedrock model id is empty".into()));
    }
    let base = match target.endpoint {
        Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
        None => {
            // China regions live under their own partition's domain.
            let domain = if target.region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://bedrock-runtime.{}.{domain}", target.region)
        }
    };
    let operation = if stream { "converse-stream" } else { "converse" };
    Ok(format!("{base}/model/{}/{operation}", percent_encode(target.model_id)))
}

/// Encodes everything but RFC 3986's unreserved characters, so that ARNs (`:` and `/`) stay
/// one path segment.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() * 3);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(model_id: &'a str, endpoint: Option<&'a str>) -> Target<'a> {
        Target {
            region: "us-west-2",
            endpoint,
            model_id,
            default_max_tokens: 0,
        }
    }

    #[test]
    fn model_ids_and_arns_are_one_encoded_segment() {
        assert_eq!(
            operation_url(&target("anthropic.claude-3-haiku-20240307-v1:0", None), false).unwrap(),
            "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        );
        assert_eq!(
            operation_url(
                &target(
                    "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
                    Some("http://127.0.0.1:9000/")
                ),
                true
            )
            .unwrap(),
            "http://127.0.0.1:9000/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.meta.llama3-2-1b-instruct-v1%3A0/converse-stream"
        );
    }

    #[test]
    fn bad_region_or_empty_model_is_refused() {
        let t = Target {
            region: "x.evil.com/",
            endpoint: None,
            model_id: "m",
            default_max_tokens: 0,
        };
        assert!(operation_url(&t, false).is_err());
        assert!(operation_url(&target(" ", None), false).is_err());
    }
}
