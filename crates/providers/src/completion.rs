//! OpenAI response objects built from a translated provider answer.
//!
//! The Anthropic and Gemini adapters differ in how they read their provider,
//! but must produce the very same `chat.completion` and
//! `chat.completion.chunk` shapes, usage block included, or clients would see
//! one gateway behave like two. Both build their output here.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Usage;

/// Usage plus the details that only go into the client's usage block.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageReport {
    pub(crate) usage: Usage,
    /// Input tokens written to the provider's prompt cache (Anthropic).
    pub(crate) cache_write_tokens: u64,
    /// Output tokens spent thinking (Gemini), already inside `output_tokens`.
    pub(crate) reasoning_tokens: u64,
}

impl UsageReport {
    /// OpenAI's `CompletionUsage` object.
    pub(crate) fn to_json(self) -> Value {
        let u = self.usage;
        let mut prompt_details = json!({"cached_tokens": u.cached_input_tokens});
        if self.cache_write_tokens > 0 {
            prompt_details["cache_write_tokens"] = json!(self.cache_write_tokens);
        }
        json!({
            "prompt_tokens": u.input_tokens,
            "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens.saturating_add(u.output_tokens),
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        })
    }
}

/// OpenAI's `finish_reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl Finish {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::ContentFilter => "content_filter",
        }
    }
}

/// A tool call as the client receives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// JSON text of the arguments.
    pub(crate) arguments: String,
    /// Gemini's thought signature, which the client must send back.
    pub(crate) thought_signature: Option<String>,
}

impl OutToolCall {
    fn to_json(&self, index: Option<usize>) -> Value {
        let mut v = json!({
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        });
        if let Some(i) = index {
            v["index"] = json!(i);
        }
        if let Some(sig) = &self.thought_signature {
            v["extra_content"] = json!({"google": {"thought_signature": sig}});
        }
        v
    }
}

/// One choice of a non-streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutChoice {
    pub(crate) index: u64,
    pub(crate) content: Option<String>,
    pub(crate) tool_calls: Vec<OutToolCall>,
    pub(crate) finish: Finish,
}

/// Seconds since the Unix epoch, for `created`.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The completion id: the provider's own id prefixed `chatcmpl-`, else the hint.
pub(crate) fn completion_id(provider_id: Option<&str>, hint: &str) -> String {
    match provider_id.filter(|id| !id.is_empty()) {
        Some(id) if id.starts_with("chatcmpl-") => id.to_owned(),
        Some(id) => format!("chatcmpl-{id}"),
        None => hint.to_owned(),
    }
}

/// A `chat.completion` object.
pub(crate) fn completion(id: &str, model: &str, choices: &[OutChoice], usage: UsageReport) -> Bytes {
    let choices: Vec<Value> = choices
        .iter()
        .map(|c| {
            let mut message = json!({"role": "assistant", "content": c.content, "refusal": null});
            if !c.tool_calls.is_empty() {
                message["tool_calls"] = c.tool_calls.iter().map(|t| t.to_json(None)).collect();
            }
            json!({"index": c.index, "message": message, "logprobs": null, "finish_reason": c.finish.as_str()})
        })
        .collect();
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": choices,
        "usage": usage.to_json(),
    });
    Bytes::from(body.to_string())
}

/// Writes `chat.completion.chunk` objects that share one id, model and time.
#[derive(Debug, Clone)]
pub(crate) struct ChunkWriter {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) created: i64,
}

impl ChunkWriter {
    fn chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        Bytes::from(v.to_string())
    }

    fn delta(&self, index: u64, delta: Value, finish: Option<Finish>) -> Bytes {
        self.chunk(
            json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish.map(Finish::as_str)}]),
            None,
        )
    }

    /// The first chunk of a choice: the role, with empty content.
    pub(crate) fn role(&self, index: u64) -> Bytes {
        self.delta(index, json!({"role": "assistant", "content": ""}), None)
    }

    pub(crate) fn content(&self, index: u64, text: &str) -> Bytes {
        self.delta(index, json!({"content": text}), None)
    }

    /// The first delta of a tool call: id, name and possibly the first arguments.
    pub(crate) fn tool_call_start(&self, index: u64, call_index: usize, call: &OutToolCall) -> Bytes {
        self.delta(index, json!({"tool_calls": [call.to_json(Some(call_index))]}), None)
    }

    pub(crate) fn tool_call_arguments(&self, index: u64, call_index: usize, fragment: &str) -> Bytes {
        self.delta(
            index,
            json!({"tool_calls": [{"index": call_index, "function": {"arguments": fragment}}]}),
            None,
        )
    }

    pub(crate) fn finish(&self, index: u64, finish: Finish) -> Bytes {
        self.delta(index, json!({}), Some(finish))
    }

    /// The closing chunk with no choices and the usage, as OpenAI sends it
    /// with `stream_options.include_usage`.
    pub(crate) fn usage(&self, usage: UsageReport) -> Bytes {
        self.chunk(json!([]), Some(usage.to_json()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_use_the_provider_id_when_there_is_one() {
        assert_eq!(completion_id(Some("msg_1"), "chatcmpl-h"), "chatcmpl-msg_1");
        assert_eq!(completion_id(Some("chatcmpl-x"), "chatcmpl-h"), "chatcmpl-x");
        assert_eq!(completion_id(Some(""), "chatcmpl-h"), "chatcmpl-h");
        assert_eq!(completion_id(None, "req-7"), "req-7");
    }

    #[test]
    fn usage_block_totals_and_details() {
        let r = UsageReport {
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                cached_input_tokens: 4,
            },
            cache_write_tokens: 2,
            reasoning_tokens: 3,
        };
        let v = r.to_json();
        assert_eq!(v["total_tokens"], 15);
        assert_eq!(v["prompt_tokens_details"]["cached_tokens"], 4);
        assert_eq!(v["prompt_tokens_details"]["cache_write_tokens"], 2);
        assert_eq!(v["completion_tokens_details"]["reasoning_tokens"], 3);
    }
}
