//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`.
//!
//! Each candidate becomes a choice: its non-thought text parts joined, its
//! `functionCall` parts as tool calls (with made-up ids when Gemini gives
//! none, and the thought signature handed to the client). A prompt blocked
//! before generation has no candidates, only `promptFeedback`; it becomes one
//! empty choice finished by `content_filter`.

use bytes::Bytes;
use serde_json::Value;

use super::{call_id, finish_reason, usage_report};
use crate::completion::{Finish, OutChoice, OutToolCall, completion, completion_id};
use crate::{AdapterError, Target, Usage};

/// Text and tool calls of one candidate's `content.parts`.
pub(super) fn read_parts(parts: &[Value], id: &str, next_call: &mut usize) -> (String, Vec<OutToolCall>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in parts {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(fc) = part.get("functionCall") {
            let call_id = match fc.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                Some(own) => own.to_owned(),
                None => call_id(id, *next_call),
            };
            *next_call += 1;
            calls.push(OutToolCall {
                id: call_id,
                name: fc.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                arguments: fc.get("args").map_or_else(|| "{}".to_owned(), Value::to_string),
                thought_signature: part.get("thoughtSignature").and_then(Value::as_str).map(str::to_owned),
            });
        }
    }
    (text, calls)
}

pub(crate) fn chat_response(target: &Target<'_>, body: &[u8], hint: &str) -> Result<(Bytes, Usage), AdapterError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AdapterError::Protocol(format!("Gemini's answer is not JSON ({e})")))?;
    if !v.is_object() {
        return Err(AdapterError::Protocol(
            "Gemini's answer is not a JSON object".to_owned(),
        ));
    }
    let id = completion_id(v.get("responseId").and_then(Value::as_str), hint);
    let candidates = v
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut choices = Vec::with_capacity(candidates.len().max(1));
    let mut next_call = 0;
    for (position, cand) in candidates.iter().enumerate() {
        let index = cand.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
        let parts = cand
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (text, tool_calls) = read_parts(parts, &id, &mut next_call);
        let finish = finish_reason(
            cand.get("finishReason").and_then(Value::as_str).unwrap_or("STOP"),
            !tool_calls.is_empty(),
        );
        let content = if text.is_empty() && (!tool_calls.is_empty() || finish == Finish::ContentFilter) {
            None
        } else {
            Some(text)
        };
        choices.push(OutChoice {
            index,
            content,
            tool_calls,
            finish,
        });
    }
    if choices.is_empty() {
        if v.pointer("/promptFeedback/blockReason").is_none() {
            return Err(AdapterError::Protocol(
                "Gemini's answer has neither candidates nor a block reason".to_owned(),
            ));
        }
        choices.push(OutChoice {
            index: 0,
            content: None,
            tool_calls: Vec::new(),
            finish: Finish::ContentFilter,
        });
    }
    let report = v.get("usageMetadata").map(usage_report).unwrap_or_default();
    Ok((completion(&id, target.upstream_model, &choices, report), report.usage))
}
