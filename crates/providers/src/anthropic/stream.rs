//! Anthropic stream events → OpenAI chunks.
//!
//! Anthropic streams content blocks by index (`content_block_start`, deltas,
//! `content_block_stop`), then the stop reason and final output count in
//! `message_delta`, then `message_stop`. OpenAI streams one choice whose
//! tool calls are numbered from 0, so block indexes are mapped to tool-call
//! indexes as blocks start. Usage is sent once, at `message_stop`.

use std::collections::HashMap;

use serde_json::Value;

use super::{Counts, JSON_TOOL, finish_reason};
use crate::completion::{ChunkWriter, OutToolCall, completion_id};
use crate::error::{read_anthropic, safe_message};
use crate::sse::SseEvent;
use crate::stream::StreamItem;
use crate::{AdapterError, Usage};

/// What an Anthropic content block becomes.
#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    /// A client tool call, with its OpenAI index and whether arguments were sent.
    Tool {
        index: usize,
        sent: bool,
    },
    /// The reserved JSON tool: its input is the answer's content.
    Json {
        sent: bool,
    },
    /// Thinking and server-side blocks: not shown.
    Hidden,
}

#[derive(Debug)]
pub(crate) struct AnthropicStream {
    w: ChunkWriter,
    started: bool,
    blocks: HashMap<u64, Block>,
    tool_calls: usize,
    counts: Counts,
    saw_usage: bool,
    finished: bool,
    done: bool,
    errored: bool,
}

impl AnthropicStream {
    pub(crate) fn new(w: ChunkWriter) -> Self {
        AnthropicStream {
            w,
            started: false,
            blocks: HashMap::new(),
            tool_calls: 0,
            counts: Counts::default(),
            saw_usage: false,
            finished: false,
            done: false,
            errored: false,
        }
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.saw_usage.then(|| self.counts.report().usage)
    }

    fn start(&mut self, out: &mut Vec<StreamItem>) {
        if !self.started {
            self.started = true;
            out.push(StreamItem::Chunk(self.w.role(0)));
        }
    }

    pub(crate) fn event(&mut self, event: &SseEvent, out: &mut Vec<StreamItem>) -> Result<(), AdapterError> {
        if self.done || self.errored {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(&event.data)
            .map_err(|e| AdapterError::Protocol(format!("Anthropic stream event is not JSON ({e})")))?;
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        match ty {
            "message_start" => {
                let message = v.get("message");
                if let Some(id) = message.and_then(|m| m.get("id")).and_then(Value::as_str) {
                    self.w.id = completion_id(Some(id), &self.w.id);
                }
                if let Some(u) = message.and_then(|m| m.get("usage")) {
                    self.counts.update(u);
                    self.saw_usage = true;
                }
                self.start(out);
            }
            "content_block_start" => {
                self.start(out);
                let index = block_index(&v)?;
                let cb = v.get("content_block").unwrap_or(&Value::Null);
                let block = match cb.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = cb.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(StreamItem::Chunk(self.w.content(0, t)));
                        }
                        Block::Text
                    }
                    Some("tool_use") if cb.get("name").and_then(Value::as_str) == Some(JSON_TOOL) => {
                        Block::Json { sent: false }
                    }
                    Some("tool_use") => {
                        let call = OutToolCall {
                            id: cb.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                            name: cb.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                            arguments: String::new(),
                            thought_signature: None,
                        };
                        let i = self.tool_calls;
                        self.tool_calls += 1;
                        out.push(StreamItem::Chunk(self.w.tool_call_start(0, i, &call)));
                        Block::Tool { index: i, sent: false }
                    }
                    _ => Block::Hidden,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let index = block_index(&v)?;
                let delta = v.get("delta").unwrap_or(&Value::Null);
                let Some(block) = self.blocks.get_mut(&index) else {
                    return Err(AdapterError::Protocol(format!(
                        "Anthropic delta for unknown content block {index}"
                    )));
                };
                match (delta.get("type").and_then(Value::as_str), block) {
                    (Some("text_delta"), Block::Text) => {
                        if let Some(t) = delta.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(StreamItem::Chunk(self.w.content(0, t)));
                        }
                    }
                    (Some("input_json_delta"), Block::Tool { index, sent }) => {
                        if let Some(j) = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .filter(|j| !j.is_empty())
                        {
                            *sent = true;
                            out.push(StreamItem::Chunk(self.w.tool_call_arguments(0, *index, j)));
                        }
                    }
                    (Some("input_json_delta"), Block::Json { sent }) => {
                        if let Some(j) = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .filter(|j| !j.is_empty())
                        {
                            *sent = true;
                            out.push(StreamItem::Chunk(self.w.content(0, j)));
                        }
                    }
                    // thinking_delta, signature_delta, citations_delta, …
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = block_index(&v)?;
                // A call without arguments streams no JSON at all; clients expect `{}`.
                match self.blocks.get(&index).copied() {
                    Some(Block::Tool { index, sent: false }) => {
                        out.push(StreamItem::Chunk(self.w.tool_call_arguments(0, index, "{}")));
                    }
                    Some(Block::Json { sent: false }) => out.push(StreamItem::Chunk(self.w.content(0, "{}"))),
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.counts.update(u);
                    self.saw_usage = true;
                }
                let stop = v.pointer("/delta/stop_reason").and_then(Value::as_str);
                if let Some(stop) = stop
                    && !self.finished
                {
                    self.start(out);
                    self.finished = true;
                    let finish = finish_reason(Some(stop), self.tool_calls > 0);
                    out.push(StreamItem::Chunk(self.w.finish(0, finish)));
                }
            }
            "message_stop" => {
                self.start(out);
                if !self.finished {
                    self.finished = true;
                    out.push(StreamItem::Chunk(self.w.finish(0, finish_reason(None, false))));
                }
                let report = self.counts.report();
                out.push(StreamItem::Chunk(self.w.usage(report)));
                out.push(StreamItem::Usage(report.usage));
                self.done = true;
            }
            "error" => {
                let mut error = read_anthropic(&v, None).unwrap_or_else(|| crate::UpstreamError {
                    message: "upstream stream error".to_owned(),
                    code: None,
                    kind: crate::ErrorKind::Server,
                });
                error.message = safe_message(error.kind, &error.message);
                out.push(StreamItem::Error(error));
                self.errored = true;
            }
            // ping, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> Result<(), AdapterError> {
        if self.done || self.errored {
            Ok(())
        } else {
            Err(AdapterError::Protocol(
                "the Anthropic stream ended before `message_stop`".to_owned(),
            ))
        }
    }
}

fn block_index(v: &Value) -> Result<u64, AdapterError> {
    v.get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| AdapterError::Protocol("Anthropic content block event without an index".to_owned()))
}
