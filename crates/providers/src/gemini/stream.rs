//! Gemini `streamGenerateContent?alt=sse` events → OpenAI chunks.
//!
//! Each event is a whole `GenerateContentResponse` holding only the new
//! parts: text arrives in pieces, function calls arrive whole (so one chunk
//! carries a call's id, name and all its arguments). A candidate is finished
//! when it has a `finishReason`; the stream is complete when every candidate
//! seen is. `usageMetadata` is cumulative, so the last one is billed, once
//! the body has ended.

use std::collections::BTreeMap;

use serde_json::Value;

use super::response::read_parts;
use super::{finish_reason, usage_report};
use crate::completion::{ChunkWriter, Finish, UsageReport, completion_id};
use crate::error::{read_gemini, safe_message};
use crate::sse::SseEvent;
use crate::stream::StreamItem;
use crate::{AdapterError, Usage};

#[derive(Debug, Default)]
struct Candidate {
    tool_calls: usize,
    finished: bool,
}

#[derive(Debug)]
pub(crate) struct GeminiStream {
    w: ChunkWriter,
    id_known: bool,
    candidates: BTreeMap<u64, Candidate>,
    next_call: usize,
    usage: Option<UsageReport>,
    errored: bool,
    usage_sent: bool,
}

impl GeminiStream {
    pub(crate) fn new(w: ChunkWriter) -> Self {
        GeminiStream {
            w,
            id_known: false,
            candidates: BTreeMap::new(),
            next_call: 0,
            usage: None,
            errored: false,
            usage_sent: false,
        }
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage.map(|r| r.usage)
    }

    fn complete(&self) -> bool {
        !self.candidates.is_empty() && self.candidates.values().all(|c| c.finished)
    }

    fn candidate(&mut self, index: u64, out: &mut Vec<StreamItem>) -> &mut Candidate {
        if !self.candidates.contains_key(&index) {
            out.push(StreamItem::Chunk(self.w.role(index)));
        }
        self.candidates.entry(index).or_default()
    }

    pub(crate) fn event(&mut self, event: &SseEvent, out: &mut Vec<StreamItem>) -> Result<(), AdapterError> {
        if self.errored || self.usage_sent {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(&event.data)
            .map_err(|e| AdapterError::Protocol(format!("Gemini stream event is not JSON ({e})")))?;
        if let Some(mut error) = read_gemini(&v, None) {
            error.message = safe_message(error.kind, &error.message);
            out.push(StreamItem::Error(error));
            self.errored = true;
            return Ok(());
        }
        if !self.id_known {
            self.id_known = true;
            let id = completion_id(v.get("responseId").and_then(Value::as_str), &self.w.id);
            self.w.id = id;
        }
        if let Some(meta) = v.get("usageMetadata") {
            self.usage = Some(usage_report(meta));
        }
        let candidates = v
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (position, cand) in candidates.iter().enumerate() {
            let index = cand.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
            if self.candidates.get(&index).is_some_and(|c| c.finished) {
                continue;
            }
            self.candidate(index, out);
            let parts = cand
                .pointer("/content/parts")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let (text, calls) = read_parts(parts, &self.w.id, &mut self.next_call);
            if !text.is_empty() {
                out.push(StreamItem::Chunk(self.w.content(index, &text)));
            }
            for call in &calls {
                let state = self.candidate(index, out);
                let n = state.tool_calls;
                state.tool_calls += 1;
                out.push(StreamItem::Chunk(self.w.tool_call_start(index, n, call)));
            }
            if let Some(reason) = cand.get("finishReason").and_then(Value::as_str)
                && reason != "FINISH_REASON_UNSPECIFIED"
            {
                let state = self.candidate(index, out);
                state.finished = true;
                let finish = finish_reason(reason, state.tool_calls > 0);
                out.push(StreamItem::Chunk(self.w.finish(index, finish)));
            }
        }
        if candidates.is_empty() && v.pointer("/promptFeedback/blockReason").is_some() {
            let state = self.candidate(0, out);
            if !state.finished {
                state.finished = true;
                out.push(StreamItem::Chunk(self.w.finish(0, Finish::ContentFilter)));
            }
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, out: &mut Vec<StreamItem>) -> Result<(), AdapterError> {
        if self.errored || self.usage_sent {
            return Ok(());
        }
        if !self.complete() {
            return Err(AdapterError::Protocol(
                "the Gemini stream ended before a finishReason".to_owned(),
            ));
        }
        self.usage_sent = true;
        if let Some(report) = self.usage {
            out.push(StreamItem::Chunk(self.w.usage(report)));
            out.push(StreamItem::Usage(report.usage));
        }
        Ok(())
    }
}
