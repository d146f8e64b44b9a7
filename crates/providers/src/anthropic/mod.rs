//! Anthropic's Messages API behind OpenAI's chat API.
//!
//! Requests are rebuilt from the parsed OpenAI body ([`request`]), answers
//! rebuilt as OpenAI completions ([`response`]) and SSE events turned into
//! chunks ([`stream`]). What the three share lives here: the reserved JSON
//! tool, the stop-reason mapping and the usage arithmetic (Anthropic counts
//! cache reads and writes outside `input_tokens`; OpenAI counts them inside).

mod request;
mod response;
mod stream;

use serde_json::Value;

use crate::Usage;
use crate::completion::{Finish, UsageReport};

pub(crate) use request::chat_request;
pub(crate) use response::chat_response;
pub(crate) use stream::AnthropicStream;

/// Name of the forced tool that carries `response_format` JSON answers.
pub(crate) const JSON_TOOL: &str = "oneflow_json_response";

/// `anthropic-version` when the deployment sets none.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// OpenAI's finish reason for Anthropic's `stop_reason`. `real_tool_calls`
/// tells a `tool_use` stop for client tools from one for the JSON tool.
fn finish_reason(stop_reason: Option<&str>, real_tool_calls: bool) -> Finish {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => Finish::Length,
        Some("tool_use") if real_tool_calls => Finish::ToolCalls,
        Some("refusal") => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

/// Token counts as Anthropic reports them, merged across stream events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

impl Counts {
    /// Overwrites the counts present in an Anthropic `usage` object. Stream
    /// events carry cumulative values, so the latest one wins.
    fn update(&mut self, usage: &Value) {
        let get = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(n) = get("input_tokens") {
            self.input = n;
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.cache_read = n;
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.cache_write = n;
        }
        if let Some(n) = get("output_tokens") {
            self.output = n;
        }
    }

    fn report(self) -> UsageReport {
        UsageReport {
            usage: Usage {
                input_tokens: self
                    .input
                    .saturating_add(self.cache_read)
                    .saturating_add(self.cache_write),
                output_tokens: self.output,
                cached_input_tokens: self.cache_read,
            },
            cache_write_tokens: self.cache_write,
            reasoning_tokens: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_reads_and_writes_count_as_input() {
        let mut c = Counts::default();
        c.update(&json!({"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 1}));
        c.update(&json!({"output_tokens": 42}));
        let r = c.report();
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 115,
                output_tokens: 42,
                cached_input_tokens: 100
            }
        );
        assert_eq!(r.cache_write_tokens, 5);
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(finish_reason(Some("end_turn"), false), Finish::Stop);
        assert_eq!(finish_reason(Some("stop_sequence"), false), Finish::Stop);
        assert_eq!(finish_reason(Some("max_tokens"), true), Finish::Length);
        assert_eq!(finish_reason(Some("tool_use"), true), Finish::ToolCalls);
        assert_eq!(finish_reason(Some("tool_use"), false), Finish::Stop);
        assert_eq!(finish_reason(Some("refusal"), false), Finish::ContentFilter);
    }
}
