//! Bedrock Converse response → OpenAI `chat.completion`, plus the pieces the streaming
//! translation shares with it: stop-reason and usage mapping.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{JSON_TOOL_NAME, Usage};
use crate::AwsError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: Option<Output>,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Output {
    message: Option<OutputMessage>,
}

#[derive(Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<Value>,
}

/// Bedrock's `TokenUsage`, as found in Converse responses and ConverseStream `metadata`.
#[derive(Deserialize, Debug, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

impl TokenUsage {
    /// Converts to OpenAI's convention (see the crate docs): prompt tokens include cache
    /// reads and writes, which Bedrock counts separately.
    pub(crate) fn to_usage(self) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let written = self.cache_write_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens.saturating_add(cached).saturating_add(written),
            output_tokens: self.output_tokens,
            cached_input_tokens: cached,
        }
    }
}

/// OpenAI's `usage` object for `usage`.
pub(crate) fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens.saturating_add(usage.output_tokens),
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
    })
}

/// Bedrock `stopReason` → OpenAI `finish_reason`. Unknown reasons read as a normal stop.
pub(crate) fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

pub(crate) fn chat_completion(model: &str, body: &[u8], id: &str, created: i64) -> Result<(Bytes, Usage), AwsError> {
    let response: ConverseResponse = serde_json::from_slice(body)
        .map_err(|e| AwsError::Protocol(format!("Converse response is not the expected JSON: {e}")))?;
    let usage = response
        .usage
        .ok_or_else(|| AwsError::Protocol("Converse response carries no usage".into()))?
        .to_usage();
    let blocks = response
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default();

    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut json_answer: Option<String> = None;
    for block in &blocks {
        if let Some(piece) = block.get("text").and_then(Value::as_str) {
            text.push_str(piece);
        } else if let Some(tool_use) = block.get("toolUse") {
            let name = tool_use.get("name").and_then(Value::as_str).unwrap_or_default();
            let input = tool_use.get("input").cloned().unwrap_or_else(|| json!({}));
            let arguments = serde_json::to_string(&input)
                .map_err(|e| AwsError::Protocol(format!("tool input cannot be re-encoded: {e}")))?;
            if name == JSON_TOOL_NAME {
                // JSON mode: the forced tool's input is the answer itself.
                json_answer = Some(arguments);
                continue;
            }
            let id = tool_use
                .get("toolUseId")
                .and_then(Value::as_str)
                .ok_or_else(|| AwsError::Protocol("toolUse block without toolUseId".into()))?;
            tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }));
        }
        // reasoningContent, citations and other block kinds have no Chat Completions field.
    }

    // In JSON mode the forced tool's input is the whole answer; any text around it would
    // make `content` unparseable.
    if let Some(answer) = json_answer.as_ref() {
        text.clone_from(answer);
    }
    let stop_reason = response.stop_reason.as_deref().unwrap_or("end_turn");
    let finish = match finish_reason(stop_reason) {
        "tool_calls" if json_answer.is_some() && tool_calls.is_empty() => "stop",
        other => other,
    };
    let mut message = json!({"role": "assistant"});
    message["content"] = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        json!(text)
    };
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let completion = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish,
            "logprobs": null,
        }],
        "usage": usage_json(&usage),
    });
    let bytes = serde_json::to_vec(&completion)
        .map_err(|e| AwsError::Protocol(format!("cannot encode the completion: {e}")))?;
    Ok((Bytes::from(bytes), usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_reads_and_writes_count_as_prompt_tokens() {
        let usage: TokenUsage = serde_json::from_value(json!({
            "inputTokens": 10, "outputTokens": 5, "totalTokens": 1315,
            "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 300
        }))
        .unwrap();
        assert_eq!(
            usage.to_usage(),
            Usage {
                input_tokens: 1310,
                output_tokens: 5,
                cached_input_tokens: 1000
            }
        );
    }

    #[test]
    fn missing_usage_is_a_protocol_error() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},"stopReason":"end_turn"}"#;
        assert!(matches!(
            chat_completion("m", body, "id", 0),
            Err(AwsError::Protocol(_))
        ));
    }

    #[test]
    fn unknown_stop_reasons_read_as_stop() {
        assert_eq!(finish_reason("something_new"), "stop");
        assert_eq!(finish_reason("model_context_window_exceeded"), "length");
    }
}
