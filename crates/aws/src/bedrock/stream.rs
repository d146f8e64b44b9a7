//! ConverseStream (event-stream frames) → OpenAI `chat.completion.chunk` objects.
//!
//! The decoder is fed the upstream body in whatever pieces the network delivers and yields
//! chunks as soon as each event is complete, so streams pass through with no added
//! buffering. It also keeps what billing needs: the usage from the final `metadata` event,
//! and whether the stream really finished (a cut is an error, never a clean end).

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Value, json};

use super::error::{stream_error, stream_exception};
use super::response::{TokenUsage, finish_reason, usage_json};
use super::{JSON_TOOL_NAME, Usage};
use crate::AwsError;
use crate::eventstream::{Decoder, Message};

/// One output of [`StreamDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A `chat.completion.chunk` JSON object, ready to be sent as an SSE `data:` line.
    Chunk(Bytes),
    /// The usage to bill, from the final `metadata` event.
    Usage(Usage),
    /// An exception Bedrock reported inside the stream; the stream is over. `status` and
    /// `code` follow [`super::error_from`].
    Error {
        /// HTTP status that describes the failure.
        status: u16,
        /// AWS error name, e.g. `ThrottlingException`.
        code: String,
        /// AWS's message.
        message: String,
    },
}

/// What a tool-use content block turned out to be, by `contentBlockIndex`.
#[derive(Debug, Clone, Copy)]
enum Block {
    /// A client tool call, with its position in OpenAI's `tool_calls` array.
    Tool(usize),
    /// The JSON-mode tool, whose input is streamed as content.
    JsonAnswer,
}

/// A tool-use block and whether any input fragment has been sent for it.
#[derive(Debug, Clone, Copy)]
struct ToolBlock {
    kind: Block,
    saw_input: bool,
}

/// Translates one ConverseStream response. Feed it the body; call [`finish`](Self::finish)
/// when the body ends.
///
/// A failure arrives in one of two forms. An `Err` (corrupt frames, unreadable events, a
/// stream that ends early) means the stream is broken; the decoder stays broken and later
/// calls fail too. A [`StreamItem::Error`] is an exception Bedrock sent on purpose: it is
/// the last item, later input is ignored, and `finish` returns `Ok` with nothing so that
/// the error is not reported twice.
#[derive(Debug)]
pub struct StreamDecoder {
    frames: Decoder,
    model: String,
    id: String,
    created: i64,
    role_sent: bool,
    blocks: HashMap<u64, ToolBlock>,
    tool_calls: usize,
    json_answer: bool,
    finish_reason: Option<&'static str>,
    usage: Option<Usage>,
    /// A `StreamItem::Error` was emitted.
    errored: bool,
    /// An `Err` was returned; the stream cannot be trusted any more.
    broken: bool,
}

impl StreamDecoder {
    /// A decoder whose chunks carry `model`, `id` and `created`.
    pub fn new(model: &str, id: &str, created: i64) -> Self {
        Self {
            frames: Decoder::new(),
            model: model.to_owned(),
            id: id.to_owned(),
            created,
            role_sent: false,
            blocks: HashMap::new(),
            tool_calls: 0,
            json_answer: false,
            finish_reason: None,
            usage: None,
            errored: false,
            broken: false,
        }
    }

    /// Consumes the next piece of the body and returns what it completes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<StreamItem>, AwsError> {
        if self.broken {
            return Err(AwsError::Protocol("Bedrock stream already failed".into()));
        }
        if self.errored {
            return Ok(Vec::new());
        }
        let result = self.translate(bytes);
        self.broken = result.is_err();
        result
    }

    fn translate(&mut self, bytes: &[u8]) -> Result<Vec<StreamItem>, AwsError> {
        let mut items = Vec::new();
        for message in self.frames.feed(bytes)? {
            self.on_message(&message, &mut items)?;
            if self.errored {
                break;
            }
        }
        Ok(items)
    }

    /// Ends the stream. `Err` unless Bedrock sent both `messageStop` and `metadata` (with
    /// usage) and no partial frame is left, so a cut upstream is never taken for a clean end.
    pub fn finish(&mut self) -> Result<Vec<StreamItem>, AwsError> {
        if self.broken {
            return Err(AwsError::Protocol("Bedrock stream already failed".into()));
        }
        if self.errored {
            return Ok(Vec::new());
        }
        if !self.frames.is_idle() {
            return Err(AwsError::Protocol("Bedrock stream ended inside an event frame".into()));
        }
        match (self.finish_reason, self.usage) {
            (Some(_), Some(_)) => Ok(Vec::new()),
            (None, _) => Err(AwsError::Protocol("Bedrock stream ended before messageStop".into())),
            (Some(_), None) => Err(AwsError::Protocol(
                "Bedrock stream ended before its usage metadata".into(),
            )),
        }
    }

    /// The usage seen so far, if the `metadata` event has arrived.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The `chat.completion.chunk` OpenAI sends last when `stream_options.include_usage` is
    /// set: no choices, only `usage`.
    pub fn usage_chunk(&self, usage: &Usage) -> Bytes {
        self.chunk_json(json!([]), Some(usage))
    }

    fn on_message(&mut self, message: &Message, items: &mut Vec<StreamItem>) -> Result<(), AwsError> {
        match message.message_type().unwrap_or("event") {
            "exception" => {
                let kind = message
                    .exception_type()
                    .or(message.event_type())
                    .unwrap_or("unknownException");
                let (status, code, text) = stream_exception(kind, &message.payload);
                self.fail(items, status, code, text);
                return Ok(());
            }
            "error" => {
                let code = message.header_str(":error-code").unwrap_or("UnknownError");
                let (status, code, text) = stream_error(code, message.header_str(":error-message").unwrap_or(""));
                self.fail(items, status, code, text);
                return Ok(());
            }
            _ => {}
        }
        let Some(event) = message.event_type() else {
            return Ok(());
        };
        let payload = event_payload(event, &message.payload)?;
        match event {
            "messageStart" => self.ensure_role(items),
            "contentBlockStart" => self.on_block_start(&payload, items)?,
            "contentBlockDelta" => self.on_block_delta(&payload, items)?,
            "messageStop" => {
                let reason = payload.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
                let finish = match finish_reason(reason) {
                    "tool_calls" if self.json_answer && self.tool_calls == 0 => "stop",
                    other => other,
                };
                self.finish_reason = Some(finish);
                self.ensure_role(items);
                items.push(self.chunk(json!({}), Some(finish)));
            }
            "contentBlockStop" => {
                // A tool called without arguments may stream no input at all; OpenAI clients
                // expect `arguments` to parse as JSON, so close it as an empty object.
                if let Ok(index) = block_index(&payload)
                    && let Some(block) = self.blocks.get_mut(&index)
                    && !block.saw_input
                {
                    block.saw_input = true;
                    let kind = block.kind;
                    items.push(self.input_chunk(kind, "{}"));
                }
            }
            "metadata" => {
                let usage: TokenUsage = match payload.get("usage") {
                    Some(usage) => serde_json::from_value(usage.clone())
                        .map_err(|e| AwsError::Protocol(format!("unreadable usage in metadata event: {e}")))?,
                    None => return Err(AwsError::Protocol("metadata event without usage".into())),
                };
                let usage = usage.to_usage();
                self.usage = Some(usage);
                items.push(StreamItem::Usage(usage));
            }
            // Unknown events belong to a newer API version.
            _ => {}
        }
        Ok(())
    }

    fn fail(&mut self, items: &mut Vec<StreamItem>, status: u16, code: String, message: String) {
        self.errored = true;
        items.push(StreamItem::Error { status, code, message });
    }

    fn ensure_role(&mut self, items: &mut Vec<StreamItem>) {
        if !self.role_sent {
            self.role_sent = true;
            items.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn on_block_start(&mut self, payload: &Value, items: &mut Vec<StreamItem>) -> Result<(), AwsError> {
        let Some(tool_use) = payload.pointer("/start/toolUse") else {
            return Ok(());
        };
        let index = block_index(payload)?;
        let name = tool_use.get("name").and_then(Value::as_str).unwrap_or_default();
        self.ensure_role(items);
        if name == JSON_TOOL_NAME {
            self.json_answer = true;
            self.blocks.insert(
                index,
                ToolBlock {
                    kind: Block::JsonAnswer,
                    saw_input: false,
                },
            );
            return Ok(());
        }
        let id = tool_use
            .get("toolUseId")
            .and_then(Value::as_str)
            .ok_or_else(|| AwsError::Protocol("contentBlockStart toolUse without toolUseId".into()))?;
        let position = self.tool_calls;
        self.tool_calls += 1;
        self.blocks.insert(
            index,
            ToolBlock {
                kind: Block::Tool(position),
                saw_input: false,
            },
        );
        let call =
            json!({"index": position, "id": id, "type": "function", "function": {"name": name, "arguments": ""}});
        items.push(self.chunk(json!({"tool_calls": [call]}), None));
        Ok(())
    }

    fn on_block_delta(&mut self, payload: &Value, items: &mut Vec<StreamItem>) -> Result<(), AwsError> {
        let Some(delta) = payload.get("delta") else {
            return Err(AwsError::Protocol("contentBlockDelta without delta".into()));
        };
        if let Some(text) = delta.get("text").and_then(Value::as_str) {
            self.ensure_role(items);
            if !text.is_empty() {
                items.push(self.chunk(json!({"content": text}), None));
            }
        } else if let Some(fragment) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
            let index = block_index(payload)?;
            let block = self.blocks.get_mut(&index).ok_or_else(|| {
                AwsError::Protocol(format!("tool input for content block {index}, which never started"))
            })?;
            if fragment.is_empty() {
                return Ok(());
            }
            block.saw_input = true;
            let kind = block.kind;
            items.push(self.input_chunk(kind, fragment));
        }
        // reasoningContent and citation deltas have no Chat Completions field.
        Ok(())
    }

    fn input_chunk(&self, kind: Block, fragment: &str) -> StreamItem {
        let delta = match kind {
            Block::JsonAnswer => json!({"content": fragment}),
            Block::Tool(position) => json!({"tool_calls": [{"index": position, "function": {"arguments": fragment}}]}),
        };
        self.chunk(delta, None)
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> StreamItem {
        let choice = json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        StreamItem::Chunk(self.chunk_json(choice, None))
    }

    fn chunk_json(&self, choices: Value, usage: Option<&Usage>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage_json(usage);
        }
        // Serialising a `Value` built from strings and numbers cannot fail.
        Bytes::from(serde_json::to_vec(&chunk).unwrap_or_default())
    }
}

/// The event's JSON. On the wire it is the event's members (`{"delta":...}`); a payload
/// wrapped in its own event name (`{"contentBlockDelta":{...}}`), as some proxies and
/// SDK dumps write it, is unwrapped too.
fn event_payload(event: &str, payload: &[u8]) -> Result<Value, AwsError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| AwsError::Protocol(format!("{event} event payload is not JSON: {e}")))?;
    match value {
        Value::Object(mut map) if map.len() == 1 && map.get(event).is_some_and(Value::is_object) => {
            Ok(map.remove(event).unwrap_or_default())
        }
        other => Ok(other),
    }
}

fn block_index(payload: &Value) -> Result<u64, AwsError> {
    payload
        .get("contentBlockIndex")
        .and_then(Value::as_u64)
        .ok_or_else(|| AwsError::Protocol("content block event without contentBlockIndex".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::HeaderValue;

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        Message::new(
            vec![
                (":event-type".into(), HeaderValue::from(kind)),
                (":content-type".into(), "application/json".into()),
                (":message-type".into(), "event".into()),
            ],
            serde_json::to_vec(&payload).unwrap(),
        )
        .encode()
        .unwrap()
    }

    fn chunks(items: &[StreamItem]) -> Vec<Value> {
        items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Chunk(b) => Some(serde_json::from_slice(b).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn json_mode_tool_input_streams_as_content() {
        let mut d = StreamDecoder::new("m", "id", 1);
        let mut wire = event("messageStart", json!({"role": "assistant"}));
        wire.extend(event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": JSON_TOOL_NAME}}}),
        ));
        wire.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\":"}}}),
        ));
        wire.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "1}"}}}),
        ));
        wire.extend(event("messageStop", json!({"stopReason": "tool_use"})));
        let items = d.feed(&wire).unwrap();
        let chunks = chunks(&items);
        let content: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/content")?.as_str())
            .collect();
        assert_eq!(content, "{\"a\":1}");
        assert!(
            chunks
                .iter()
                .all(|c| c.pointer("/choices/0/delta/tool_calls").is_none())
        );
        assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn wrapped_payloads_are_unwrapped() {
        let mut d = StreamDecoder::new("m", "id", 1);
        let items = d
            .feed(&event(
                "contentBlockDelta",
                json!({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "hey"}}}),
            ))
            .unwrap();
        assert_eq!(chunks(&items).last().unwrap()["choices"][0]["delta"]["content"], "hey");
    }

    #[test]
    fn tool_without_input_gets_empty_object_arguments() {
        let mut d = StreamDecoder::new("m", "id", 1);
        let mut wire = event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "now"}}}),
        );
        wire.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
        let chunks = chunks(&d.feed(&wire).unwrap());
        let args: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0/function/arguments")?.as_str())
            .collect();
        assert_eq!(args, "{}");
    }

    #[test]
    fn missing_usage_after_stop_is_an_error() {
        let mut d = StreamDecoder::new("m", "id", 1);
        d.feed(&event("messageStop", json!({"stopReason": "end_turn"})))
            .unwrap();
        assert!(d.finish().unwrap_err().to_string().contains("usage"));
    }
}
