//! Anthropic `Message` → OpenAI `chat.completion`.
//!
//! Text blocks are concatenated (citations split one paragraph into several
//! blocks, so no separator is added), `tool_use` blocks become tool calls
//! with their input as JSON text, and the reserved JSON tool's input becomes
//! the message content.

use bytes::Bytes;
use serde_json::Value;

use super::{Counts, JSON_TOOL, finish_reason};
use crate::completion::{OutChoice, OutToolCall, completion, completion_id};
use crate::{AdapterError, Target, Usage};

pub(crate) fn chat_response(target: &Target<'_>, body: &[u8], hint: &str) -> Result<(Bytes, Usage), AdapterError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AdapterError::Protocol(format!("Anthropic's answer is not JSON ({e})")))?;
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| AdapterError::Protocol("Anthropic's answer has no `content` array".to_owned()))?;

    let mut text = String::new();
    let mut json_answer: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or_default();
                let input = block
                    .get("input")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Default::default()));
                if name == JSON_TOOL {
                    json_answer = Some(input.to_string());
                } else {
                    tool_calls.push(OutToolCall {
                        id: block.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        name: name.to_owned(),
                        arguments: input.to_string(),
                        thought_signature: None,
                    });
                }
            }
            // thinking, redacted_thinking, server tool blocks: nothing OpenAI-shaped to show.
            _ => {}
        }
    }
    let finish = finish_reason(v.get("stop_reason").and_then(Value::as_str), !tool_calls.is_empty());
    let content = match json_answer {
        Some(json) => Some(json),
        None if text.is_empty() && !tool_calls.is_empty() => None,
        None => Some(text),
    };
    let mut counts = Counts::default();
    if let Some(u) = v.get("usage") {
        counts.update(u);
    }
    let report = counts.report();
    let id = completion_id(v.get("id").and_then(Value::as_str), hint);
    let choice = OutChoice {
        index: 0,
        content,
        tool_calls,
        finish,
    };
    Ok((completion(&id, target.upstream_model, &[choice], report), report.usage))
}
