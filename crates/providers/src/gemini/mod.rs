//! Google's Gemini API (`generateContent`, `batchEmbedContents`) behind OpenAI's API.
//!
//! Requests are rebuilt from the parsed OpenAI body ([`request`]); answers
//! ([`response`]) and SSE streams ([`stream`]) of `GenerateContentResponse`
//! objects become OpenAI completions and chunks; [`embeddings`] maps the
//! batch embeddings call. Shared here: URLs, the finish-reason mapping, usage
//! arithmetic and tool-call ids (Gemini rarely gives calls an id).

mod embeddings;
mod request;
mod response;
mod stream;

use serde_json::Value;

use crate::completion::{Finish, UsageReport};
use crate::endpoint::{add_secret, encode, join, json_headers};
use crate::{AdapterError, Target, Usage};

pub(crate) use embeddings::{embeddings_request, embeddings_response};
pub(crate) use request::chat_request;
pub(crate) use response::chat_response;
pub(crate) use stream::GeminiStream;

/// API version in the path when the deployment sets none.
const API_VERSION: &str = "v1beta";

/// `{base}/{version}/models/{model}:{method}`; the model may already carry its
/// `models/` or `tunedModels/` prefix.
fn url(target: &Target<'_>, method: &str) -> String {
    let model = target.upstream_model;
    let path = if model.starts_with("models/") || model.starts_with("tunedModels/") {
        encode(model, true)
    } else {
        format!("models/{}", encode(model, false))
    };
    let version = encode(target.api_version.unwrap_or(API_VERSION), false);
    join(target.base_url, &format!("{version}/{path}:{method}"))
}

/// The resource name Gemini expects inside request bodies (`models/…`).
fn model_resource(model: &str) -> String {
    if model.starts_with("models/") || model.starts_with("tunedModels/") {
        model.to_owned()
    } else {
        format!("models/{model}")
    }
}

fn headers(target: &Target<'_>) -> Result<http::HeaderMap, AdapterError> {
    let mut headers = json_headers();
    add_secret(
        &mut headers,
        http::HeaderName::from_static("x-goog-api-key"),
        "",
        target.api_key,
    )?;
    Ok(headers)
}

/// OpenAI's finish reason for a candidate's `finishReason`. Gemini says
/// `STOP` after function calls too; OpenAI says `tool_calls`.
fn finish_reason(reason: &str, has_tool_calls: bool) -> Finish {
    match reason {
        "MAX_TOKENS" => Finish::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "LANGUAGE" => {
            Finish::ContentFilter
        }
        _ if has_tool_calls => Finish::ToolCalls,
        _ => Finish::Stop,
    }
}

/// Usage of a `usageMetadata` object. Thoughts are output; tool-use prompt
/// tokens are input; `promptTokenCount` already includes cached content.
fn usage_report(meta: &Value) -> UsageReport {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    UsageReport {
        usage: Usage {
            input_tokens: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
            output_tokens: n("candidatesTokenCount").saturating_add(thoughts),
            cached_input_tokens: n("cachedContentTokenCount"),
        },
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

/// An id for a tool call Gemini gave none: unique within the completion `id`.
fn call_id(completion_id: &str, n: usize) -> String {
    let base = completion_id.strip_prefix("chatcmpl-").unwrap_or(completion_id);
    format!("call_{base}_{n}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(model: &str) -> Target<'_> {
        Target {
            base_url: "https://g.example/",
            upstream_model: model,
            api_key: None,
            api_version: None,
            default_max_tokens: 0,
        }
    }

    #[test]
    fn urls_take_bare_and_prefixed_model_names() {
        assert_eq!(
            url(&target("gemini-2.0-flash"), "generateContent"),
            "https://g.example/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            url(&target("models/x"), "batchEmbedContents"),
            "https://g.example/v1beta/models/x:batchEmbedContents"
        );
        assert_eq!(
            url(&target("a/b"), "generateContent"),
            "https://g.example/v1beta/models/a%2Fb:generateContent"
        );
    }

    #[test]
    fn thoughts_are_output_and_tool_prompts_are_input() {
        let r = usage_report(
            &json!({"promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 10,
            "thoughtsTokenCount": 30, "toolUsePromptTokenCount": 5, "totalTokenCount": 145}),
        );
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 105,
                output_tokens: 40,
                cached_input_tokens: 60
            }
        );
        assert_eq!(r.reasoning_tokens, 30);
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("STOP", false), Finish::Stop);
        assert_eq!(finish_reason("STOP", true), Finish::ToolCalls);
        assert_eq!(finish_reason("MAX_TOKENS", true), Finish::Length);
        assert_eq!(finish_reason("SAFETY", false), Finish::ContentFilter);
        assert_eq!(finish_reason("RECITATION", false), Finish::ContentFilter);
        assert_eq!(finish_reason("OTHER", false), Finish::Stop);
    }
}
