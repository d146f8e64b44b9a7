//! `application/vnd.amazon.eventstream` framing: the binary stream Bedrock's ConverseStream
//! and Transcribe's streaming API speak instead of SSE (Transcribe in both directions).
//!
//! Frame parsing and CRC checks are `aws-smithy-eventstream`'s. This module adds what a
//! proxy needs on top: byte slices split anywhere, a bound on how much one frame may make us
//! buffer (checked on the prelude, before the frame arrives), a poisoned state after the
//! first corrupt frame, and header types that do not tie callers to the smithy crates.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder, read_message_from, write_message_to};
use aws_smithy_types::DateTime;
use aws_smithy_types::event_stream::{Header as SmithyHeader, HeaderValue as SmithyValue, Message as SmithyMessage};
use bytes::{Bytes, BytesMut};

use crate::AwsError;

/// Total length, header length, prelude CRC.
const PRELUDE_LEN: usize = 12;
/// Prelude plus the trailing message CRC: the smallest possible frame.
const MIN_FRAME_LEN: u32 = 16;
/// AWS's limit on one event-stream message; a larger length in a prelude is corruption.
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;

/// A typed event-stream header value, mirroring the wire format's value types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Type 0/1.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6.
    ByteArray(Bytes),
    /// Type 7, UTF-8.
    String(String),
    /// Type 8, milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid(u128),
}

impl HeaderValue {
    /// The value when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

/// One decoded event-stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order (names are case-sensitive, e.g. `:event-type`).
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload, usually JSON.
    pub payload: Bytes,
}

impl Message {
    /// A message from headers and payload.
    pub fn new(headers: Vec<(String, HeaderValue)>, payload: impl Into<Bytes>) -> Self {
        Self {
            headers,
            payload: payload.into(),
        }
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The first header called `name`, when it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// `:event-type`, e.g. `contentBlockDelta`.
    pub fn event_type(&self) -> Option<&str> {
        self.header_str(":event-type")
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(":message-type")
    }

    /// `:exception-type`, e.g. `throttlingException`, on exception messages.
    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(":exception-type")
    }

    /// `:content-type`, e.g. `application/json`.
    pub fn content_type(&self) -> Option<&str> {
        self.header_str(":content-type")
    }

    /// The same message in the smithy crates' form, for `aws-sigv4`'s event signer.
    pub(crate) fn to_smithy(&self) -> SmithyMessage {
        smithy_message(&self.headers, &self.payload)
    }

    /// This message framed for the wire (see [`encode`]).
    pub fn encode(&self) -> Result<Vec<u8>, AwsError> {
        encode(&self.headers, &self.payload)
    }
}

/// Frames one message: prelude, headers, payload and both CRCs.
///
/// Fails only when a limit of the format is exceeded (a header name over 255 bytes, a
/// string or byte-array value over 32 KiB, a frame over [`MAX_FRAME_LEN`]).
pub fn encode(headers: &[(String, HeaderValue)], payload: &[u8]) -> Result<Vec<u8>, AwsError> {
    encode_smithy(&smithy_message(headers, payload))
}

fn smithy_message(headers: &[(String, HeaderValue)], payload: &[u8]) -> SmithyMessage {
    let headers = headers
        .iter()
        .map(|(name, value)| SmithyHeader::new(name.clone(), to_smithy(value)))
        .collect();
    SmithyMessage::new_from_parts(headers, Bytes::copy_from_slice(payload))
}

/// Frames a message in the smithy crates' form (what `aws-sigv4`'s event signer returns).
pub(crate) fn encode_smithy(message: &SmithyMessage) -> Result<Vec<u8>, AwsError> {
    let mut out = Vec::with_capacity(message.payload().len() + 128);
    write_message_to(message, &mut out).map_err(|e| AwsError::Protocol(format!("cannot encode event: {e}")))?;
    if out.len() > MAX_FRAME_LEN as usize {
        return Err(AwsError::Protocol(format!(
            "event of {} bytes exceeds the 16 MiB frame limit",
            out.len()
        )));
    }
    Ok(out)
}

/// Decodes one complete frame held in `bytes` (and nothing else).
pub fn decode_one(bytes: &[u8]) -> Result<Message, AwsError> {
    let mut buf = bytes;
    let message = read_message_from(&mut buf).map_err(frame_error)?;
    if !buf.is_empty() {
        return Err(AwsError::Protocol(format!(
            "{} bytes after the end of the frame",
            buf.len()
        )));
    }
    from_smithy(message)
}

/// Incremental decoder: feed it the response body as it arrives, in pieces of any size.
///
/// After the first error (bad CRC, impossible length, malformed header) the stream cannot be
/// resynchronised, so every later `feed` fails too.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    frames: MessageFrameDecoder,
    /// The frame decoder has taken this frame's prelude out of `buf`.
    in_frame: bool,
    failed: bool,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffers `bytes` and returns every message they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Message>, AwsError> {
        if self.failed {
            return Err(AwsError::Protocol(
                "event stream is corrupt; no further frames can be read".into(),
            ));
        }
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        match self.drain(&mut out) {
            Ok(()) => Ok(out),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// True when no partial frame is buffered: the stream may end here cleanly.
    pub fn is_idle(&self) -> bool {
        !self.failed && !self.in_frame && self.buf.is_empty()
    }

    fn drain(&mut self, out: &mut Vec<Message>) -> Result<(), AwsError> {
        loop {
            if !self.in_frame {
                if self.buf.len() < PRELUDE_LEN {
                    return Ok(());
                }
                check_prelude(&self.buf[..PRELUDE_LEN])?;
                // The frame decoder consumes the prelude now that 12 bytes are present.
                self.in_frame = true;
            }
            match self.frames.decode_frame(&mut self.buf).map_err(frame_error)? {
                DecodedFrame::Complete(message) => {
                    self.in_frame = false;
                    out.push(from_smithy(message)?);
                }
                DecodedFrame::Incomplete => return Ok(()),
            }
        }
    }
}

/// Validates the prelude before buffering the rest of the frame: a corrupt length would
/// otherwise make us wait for (and hold) up to 4 GiB.
fn check_prelude(prelude: &[u8]) -> Result<(), AwsError> {
    let word = |i: usize| u32::from_be_bytes([prelude[i], prelude[i + 1], prelude[i + 2], prelude[i + 3]]);
    let (total, headers, crc) = (word(0), word(4), word(8));
    let computed = crc32fast::hash(&prelude[..8]);
    if computed != crc {
        return Err(AwsError::Protocol(format!(
            "event stream prelude checksum mismatch (expected {computed:#010x}, got {crc:#010x})"
        )));
    }
    if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&total) || headers > total - MIN_FRAME_LEN {
        return Err(AwsError::Protocol(format!(
            "event stream frame length {total} (headers {headers}) is out of bounds"
        )));
    }
    Ok(())
}

fn frame_error(err: aws_smithy_eventstream::error::Error) -> AwsError {
    AwsError::Protocol(format!("malformed event stream frame: {err}"))
}

fn from_smithy(message: SmithyMessage) -> Result<Message, AwsError> {
    let headers = message
        .headers()
        .iter()
        .map(|h| Ok((h.name().as_str().to_owned(), from_smithy_value(h.value())?)))
        .collect::<Result<Vec<_>, AwsError>>()?;
    Ok(Message {
        headers,
        payload: message.payload().clone(),
    })
}

fn from_smithy_value(value: &SmithyValue) -> Result<HeaderValue, AwsError> {
    Ok(match value {
        SmithyValue::Bool(v) => HeaderValue::Bool(*v),
        SmithyValue::Byte(v) => HeaderValue::Byte(*v),
        SmithyValue::Int16(v) => HeaderValue::Int16(*v),
        SmithyValue::Int32(v) => HeaderValue::Int32(*v),
        SmithyValue::Int64(v) => HeaderValue::Int64(*v),
        SmithyValue::ByteArray(v) => HeaderValue::ByteArray(v.clone()),
        SmithyValue::String(v) => HeaderValue::String(v.as_str().to_owned()),
        SmithyValue::Timestamp(v) => HeaderValue::Timestamp(
            v.to_millis()
                .map_err(|_| AwsError::Protocol("event stream timestamp header out of range".into()))?,
        ),
        SmithyValue::Uuid(v) => HeaderValue::Uuid(*v),
        // The smithy enum is non-exhaustive; a new wire type is a format we do not speak.
        _ => return Err(AwsError::Protocol("event stream header of an unknown type".into())),
    })
}

fn to_smithy(value: &HeaderValue) -> SmithyValue {
    match value {
        HeaderValue::Bool(v) => SmithyValue::Bool(*v),
        HeaderValue::Byte(v) => SmithyValue::Byte(*v),
        HeaderValue::Int16(v) => SmithyValue::Int16(*v),
        HeaderValue::Int32(v) => SmithyValue::Int32(*v),
        HeaderValue::Int64(v) => SmithyValue::Int64(*v),
        HeaderValue::ByteArray(v) => SmithyValue::ByteArray(v.clone()),
        HeaderValue::String(v) => SmithyValue::String(v.clone().into()),
        HeaderValue::Timestamp(v) => SmithyValue::Timestamp(DateTime::from_millis(*v)),
        HeaderValue::Uuid(v) => SmithyValue::Uuid(*v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message::new(
            vec![
                (":event-type".into(), "chunk".into()),
                (":message-type".into(), "event".into()),
                ("n".into(), HeaderValue::Int32(7)),
            ],
            &b"{\"a\":1}"[..],
        )
    }

    #[test]
    fn byte_at_a_time_yields_one_message_at_the_last_byte() {
        let wire = sample().encode().unwrap();
        let mut decoder = Decoder::new();
        for (i, b) in wire.iter().enumerate() {
            let got = decoder.feed(std::slice::from_ref(b)).unwrap();
            if i + 1 < wire.len() {
                assert!(got.is_empty());
                assert!(!decoder.is_idle());
            } else {
                assert_eq!(got, vec![sample()]);
            }
        }
        assert!(decoder.is_idle());
    }

    #[test]
    fn absurd_length_is_rejected_from_the_prelude_alone() {
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&(MAX_FRAME_LEN + 1).to_be_bytes());
        prelude.extend_from_slice(&0u32.to_be_bytes());
        prelude.extend_from_slice(&crc32fast::hash(&prelude).to_be_bytes());
        let err = Decoder::new().feed(&prelude).unwrap_err();
        assert!(err.to_string().contains("out of bounds"), "{err}");
    }

    #[test]
    fn decoder_stays_failed_after_corruption() {
        let mut wire = sample().encode().unwrap();
        wire[9] ^= 0xff;
        let mut decoder = Decoder::new();
        assert!(decoder.feed(&wire).is_err());
        assert!(decoder.feed(&sample().encode().unwrap()).is_err());
        assert!(!decoder.is_idle());
    }

    #[test]
    fn decode_one_rejects_trailing_bytes() {
        let mut wire = sample().encode().unwrap();
        assert_eq!(decode_one(&wire).unwrap(), sample());
        wire.push(0);
        assert!(decode_one(&wire).is_err());
    }
}
