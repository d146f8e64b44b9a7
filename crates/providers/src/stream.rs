//! Turning an upstream's streamed body into OpenAI chunks, usage and errors.
//!
//! The router reads the upstream body as it arrives and cannot know where
//! events end, so [`StreamDecoder`] takes raw bytes split anywhere, frames
//! them as SSE and hands each event to the family's state machine. Streams
//! are where billing goes wrong in other gateways: usage comes out as its own
//! [`StreamItem::Usage`], and [`StreamDecoder::finish`] refuses a body that
//! ended before the provider said it was done, so a cut is never billed or
//! reported as a clean end.

use bytes::Bytes;

use crate::anthropic::AnthropicStream;
use crate::completion::ChunkWriter;
use crate::gemini::GeminiStream;
use crate::openai::PassthroughStream;
use crate::sse::SseParser;
use crate::{AdapterError, Family, UpstreamError, Usage};

/// One thing the decoder found in the upstream stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// One OpenAI `chat.completion.chunk` JSON object, without SSE framing.
    /// For OpenAI-compatible upstreams these are the upstream's bytes as sent.
    Chunk(Bytes),
    /// The request's usage, once per successful stream, when the upstream
    /// reported it. Its chunk (empty `choices`, `usage`) has been yielded too.
    Usage(Usage),
    /// An error event inside the stream; nothing more will follow.
    Error(UpstreamError),
}

#[derive(Debug)]
enum Inner {
    Passthrough(PassthroughStream),
    Anthropic(AnthropicStream),
    Gemini(GeminiStream),
}

/// Incremental decoder of one upstream stream.
#[derive(Debug)]
pub struct StreamDecoder {
    sse: SseParser,
    inner: Inner,
}

impl StreamDecoder {
    /// A decoder for a stream from `family`. Translated families put
    /// `model_name_for_chunks`, `id` (unless the provider has its own id) and
    /// `created` in every chunk; OpenAI-compatible chunks pass unchanged.
    pub fn new(family: Family, model_name_for_chunks: &str, id: &str, created: i64) -> Self {
        let writer = ChunkWriter {
            id: id.to_owned(),
            model: model_name_for_chunks.to_owned(),
            created,
        };
        let inner = match family {
            Family::OpenAi => Inner::Passthrough(PassthroughStream::new(false)),
            Family::Azure => Inner::Passthrough(PassthroughStream::new(true)),
            Family::Anthropic => Inner::Anthropic(AnthropicStream::new(writer)),
            Family::Gemini => Inner::Gemini(GeminiStream::new(writer)),
        };
        StreamDecoder {
            sse: SseParser::default(),
            inner,
        }
    }

    /// Feed raw bytes of the upstream response body as they arrive (any split,
    /// even mid-line or mid-UTF-8 character).
    ///
    /// Err([`AdapterError::Protocol`]) when an event cannot be read; the
    /// stream should then be reported as failed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<StreamItem>, AdapterError> {
        let mut events = Vec::new();
        self.sse.push(bytes, &mut events);
        self.handle(events)
    }

    /// The upstream body ended.
    ///
    /// Err([`AdapterError::Protocol`]) if it ended before the provider's end
    /// marker (`[DONE]`, `message_stop`, a `finishReason` for every candidate),
    /// so the router can report a cut stream. After an in-stream
    /// [`StreamItem::Error`] the end is expected and this is `Ok`.
    pub fn finish(&mut self) -> Result<Vec<StreamItem>, AdapterError> {
        let mut events = Vec::new();
        self.sse.finish(&mut events);
        let mut out = self.handle(events)?;
        match &mut self.inner {
            Inner::Passthrough(s) => s.finish()?,
            Inner::Anthropic(s) => s.finish()?,
            Inner::Gemini(s) => s.finish(&mut out)?,
        }
        Ok(out)
    }

    /// The most complete usage seen so far, also when the stream was cut:
    /// what the upstream will bill for a stream that did not end cleanly.
    pub fn usage(&self) -> Option<Usage> {
        match &self.inner {
            Inner::Passthrough(s) => s.usage(),
            Inner::Anthropic(s) => s.usage(),
            Inner::Gemini(s) => s.usage(),
        }
    }

    fn handle(&mut self, events: Vec<crate::sse::SseEvent>) -> Result<Vec<StreamItem>, AdapterError> {
        let mut out = Vec::new();
        for event in events {
            match &mut self.inner {
                Inner::Passthrough(s) => s.event(event, &mut out)?,
                Inner::Anthropic(s) => s.event(&event, &mut out)?,
                Inner::Gemini(s) => s.event(&event, &mut out)?,
            }
        }
        Ok(out)
    }
}
