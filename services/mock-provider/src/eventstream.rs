//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`).
//!
//! Bedrock's `converse-stream` and Transcribe's streaming transcription do
//! not use SSE: each event is a binary message with a length prelude, typed
//! headers, a payload and two CRC32 checksums. The router's AWS adapters
//! must encode, decode and verify those frames, so the mock does both
//! byte-exactly, from AWS's published description of the format:
//!
//! ```text
//! total length u32 BE | headers length u32 BE | CRC32 of the previous 8 bytes
//! headers: name length u8, name, value type u8, value (see HeaderValue)
//! payload
//! CRC32 of every byte before it
//! ```
//!
//! The encoder writes the mock's answers (Bedrock events, Transcribe
//! transcript events and exceptions); the decoder reads what a Transcribe
//! client streams in (signed envelopes around audio events).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Header value type of a UTF-8 string.
const STRING_VALUE: u8 = 7;
/// Bytes of the prelude (two lengths and their CRC) plus the message CRC.
const OVERHEAD: usize = 16;
/// Bytes of the prelude and its CRC.
const PRELUDE: usize = 12;

/// A frame that cannot be encoded because a field outgrew its length field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameTooLarge;

/// A typed header value; the wire type byte is in each variant's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderValue {
    /// 0 (true) or 1 (false), no value bytes.
    Bool(bool),
    /// 2: one signed byte.
    Byte(i8),
    /// 3: i16 BE.
    Short(i16),
    /// 4: i32 BE.
    Int(i32),
    /// 5: i64 BE.
    Long(i64),
    /// 6: u16 BE length, then the bytes.
    Bytes(Bytes),
    /// 7: u16 BE length, then UTF-8.
    String(String),
    /// 8: i64 BE milliseconds since the Unix epoch.
    Timestamp(i64),
    /// 9: 16 bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The value as text when it is a string header.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(text) => Some(text),
            _ => None,
        }
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), FrameTooLarge> {
        match self {
            HeaderValue::Bool(true) => out.put_u8(0),
            HeaderValue::Bool(false) => out.put_u8(1),
            HeaderValue::Byte(value) => {
                out.put_u8(2);
                out.put_i8(*value);
            }
            HeaderValue::Short(value) => {
                out.put_u8(3);
                out.put_i16(*value);
            }
            HeaderValue::Int(value) => {
                out.put_u8(4);
                out.put_i32(*value);
            }
            HeaderValue::Long(value) => {
                out.put_u8(5);
                out.put_i64(*value);
            }
            HeaderValue::Bytes(bytes) => {
                out.put_u8(6);
                out.put_u16(u16::try_from(bytes.len()).map_err(|_| FrameTooLarge)?);
                out.put_slice(bytes);
            }
            HeaderValue::String(text) => {
                out.put_u8(STRING_VALUE);
                out.put_u16(u16::try_from(text.len()).map_err(|_| FrameTooLarge)?);
                out.put_slice(text.as_bytes());
            }
            HeaderValue::Timestamp(millis) => {
                out.put_u8(8);
                out.put_i64(*millis);
            }
            HeaderValue::Uuid(bytes) => {
                out.put_u8(9);
                out.put_slice(bytes);
            }
        }
        Ok(())
    }
}

/// Encodes one message with string-valued `headers` and `payload`.
pub(crate) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Result<Bytes, FrameTooLarge> {
    let typed: Vec<(&str, HeaderValue)> = headers
        .iter()
        .map(|(name, value)| (*name, HeaderValue::String((*value).to_owned())))
        .collect();
    encode_typed(&typed, payload)
}

/// Encodes one message with typed `headers` and `payload`.
pub(crate) fn encode_typed(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Result<Bytes, FrameTooLarge> {
    let mut encoded_headers = BytesMut::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len()).map_err(|_| FrameTooLarge)?;
        encoded_headers.put_u8(name_len);
        encoded_headers.put_slice(name.as_bytes());
        value.write(&mut encoded_headers)?;
    }
    let total = OVERHEAD + encoded_headers.len() + payload.len();
    let total_len = u32::try_from(total).map_err(|_| FrameTooLarge)?;
    let headers_len = u32::try_from(encoded_headers.len()).map_err(|_| FrameTooLarge)?;

    let mut frame = BytesMut::with_capacity(total);
    frame.put_u32(total_len);
    frame.put_u32(headers_len);
    let prelude_crc = crc32fast::hash(&frame[..8]);
    frame.put_u32(prelude_crc);
    frame.put_slice(&encoded_headers);
    frame.put_slice(payload);
    let message_crc = crc32fast::hash(&frame);
    frame.put_u32(message_crc);
    Ok(frame.freeze())
}

/// An `event` message of type `event_type` with a JSON payload.
pub(crate) fn event(event_type: &str, payload: &[u8]) -> Result<Bytes, FrameTooLarge> {
    encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An `exception` message of type `exception_type` with a JSON payload.
pub(crate) fn exception(exception_type: &str, payload: &[u8]) -> Result<Bytes, FrameTooLarge> {
    encode(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The headers in wire order.
    pub(crate) headers: Vec<(String, HeaderValue)>,
    /// The payload.
    pub(crate) payload: Bytes,
}

impl Message {
    /// The first header called `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find_map(|(key, value)| (key == name).then_some(value))
    }
}

/// Why bytes are not a well-formed sequence of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

fn decode_error(message: impl Into<String>) -> DecodeError {
    DecodeError(message.into())
}

/// Decodes messages written back to back, verifying the lengths and both
/// CRCs; bytes left after the last whole message are an error (a message
/// cut short).
pub(crate) fn decode_all(mut bytes: Bytes) -> Result<Vec<Message>, DecodeError> {
    let mut messages = Vec::new();
    while !bytes.is_empty() {
        let index = messages.len();
        if bytes.len() < OVERHEAD {
            return Err(decode_error(format!(
                "message {index}: {} bytes are too few for a message (at least {OVERHEAD})",
                bytes.len()
            )));
        }
        let total = u32_at(&bytes, 0) as usize;
        let headers_len = u32_at(&bytes, 4) as usize;
        if crc32fast::hash(&bytes[..8]) != u32_at(&bytes, 8) {
            return Err(decode_error(format!("message {index}: prelude CRC mismatch")));
        }
        if total < OVERHEAD + headers_len {
            return Err(decode_error(format!(
                "message {index}: total length {total} cannot hold {headers_len} header bytes"
            )));
        }
        if total > bytes.len() {
            return Err(decode_error(format!(
                "message {index}: declares {total} bytes but only {} remain",
                bytes.len()
            )));
        }
        let mut message = bytes.split_to(total);
        if crc32fast::hash(&message[..total - 4]) != u32_at(&message, total - 4) {
            return Err(decode_error(format!("message {index}: message CRC mismatch")));
        }
        message.truncate(total - 4);
        message.advance(PRELUDE);
        let header_bytes = message.split_to(headers_len);
        let headers =
            decode_headers(header_bytes).map_err(|DecodeError(why)| decode_error(format!("message {index}: {why}")))?;
        messages.push(Message {
            headers,
            payload: message,
        });
    }
    Ok(messages)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        word.copy_from_slice(slice);
    }
    u32::from_be_bytes(word)
}

fn decode_headers(mut bytes: Bytes) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    let short = || decode_error("a header runs past the header section");
    let mut headers = Vec::new();
    while bytes.has_remaining() {
        let name_len = usize::from(bytes.get_u8());
        if bytes.remaining() < name_len + 1 {
            return Err(short());
        }
        let name = String::from_utf8(bytes.split_to(name_len).to_vec())
            .map_err(|_| decode_error("a header name is not UTF-8"))?;
        let need = |bytes: &Bytes, n: usize| if bytes.remaining() < n { Err(short()) } else { Ok(()) };
        let value = match bytes.get_u8() {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => {
                need(&bytes, 1)?;
                HeaderValue::Byte(bytes.get_i8())
            }
            3 => {
                need(&bytes, 2)?;
                HeaderValue::Short(bytes.get_i16())
            }
            4 => {
                need(&bytes, 4)?;
                HeaderValue::Int(bytes.get_i32())
            }
            5 => {
                need(&bytes, 8)?;
                HeaderValue::Long(bytes.get_i64())
            }
            kind @ (6 | 7) => {
                need(&bytes, 2)?;
                let len = usize::from(bytes.get_u16());
                need(&bytes, len)?;
                let value = bytes.split_to(len);
                if kind == 6 {
                    HeaderValue::Bytes(value)
                } else {
                    HeaderValue::String(
                        String::from_utf8(value.to_vec())
                            .map_err(|_| decode_error(format!("header {name} is not UTF-8")))?,
                    )
                }
            }
            8 => {
                need(&bytes, 8)?;
                HeaderValue::Timestamp(bytes.get_i64())
            }
            9 => {
                need(&bytes, 16)?;
                let mut uuid = [0u8; 16];
                bytes.copy_to_slice(&mut uuid);
                HeaderValue::Uuid(uuid)
            }
            other => return Err(decode_error(format!("header {name} has unknown value type {other}"))),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_headers_round_trip_and_damage_is_caught() {
        let headers = [
            (":date", HeaderValue::Timestamp(1_700_000_000_123)),
            (":chunk-signature", HeaderValue::Bytes(Bytes::from_static(&[1, 2, 3]))),
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-2)),
            ("s", HeaderValue::Short(-300)),
            ("i", HeaderValue::Int(70_000)),
            ("l", HeaderValue::Long(-5)),
            ("u", HeaderValue::Uuid([7; 16])),
            ("text", HeaderValue::String("hello".to_owned())),
        ];
        let first = encode_typed(&headers, b"payload").unwrap();
        let second = encode(&[("k", "v")], b"").unwrap();
        let both = Bytes::from([first.to_vec(), second.to_vec()].concat());
        let messages = decode_all(both.clone()).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].headers.len(), headers.len());
        for ((name, value), (got_name, got_value)) in headers.iter().zip(&messages[0].headers) {
            assert_eq!(name, got_name);
            assert_eq!(value, got_value);
        }
        assert_eq!(&messages[0].payload[..], b"payload");
        assert_eq!(messages[1].header("k").and_then(HeaderValue::as_str), Some("v"));
        assert!(messages[1].payload.is_empty());

        // A flipped payload bit fails the message CRC; a flipped length the prelude CRC.
        let mut damaged = both.to_vec();
        damaged[first.len() - 6] ^= 1;
        assert!(decode_all(Bytes::from(damaged)).unwrap_err().0.contains("message CRC"));
        let mut damaged = both.to_vec();
        damaged[3] ^= 1;
        assert!(decode_all(Bytes::from(damaged)).unwrap_err().0.contains("prelude CRC"));
        // A message cut short.
        let cut = both.slice(..both.len() - 1);
        assert!(decode_all(cut).is_err());
        assert_eq!(decode_all(Bytes::new()).unwrap(), Vec::new());
    }

    #[test]
    fn matches_published_vectors() {
        // Known encodings of `{"foo": "bar"}` without and with one header.
        let payload = br#"{"foo": "bar"}"#;
        let bare = encode(&[], payload).unwrap();
        let mut expected = vec![0, 0, 0, 30, 0, 0, 0, 0, 186, 242, 246, 138];
        expected.extend_from_slice(payload);
        expected.extend_from_slice(&[174, 114, 88, 228]);
        assert_eq!(&bare[..], &expected[..]);

        let with_header = encode(&[("content-type", "application/json")], payload).unwrap();
        assert_eq!(&with_header[..12], &[0, 0, 0, 62, 0, 0, 0, 32, 64, 93, 249, 70]);
        assert_eq!(&with_header[12..14], &[12, b'c']);
        assert_eq!(&with_header[with_header.len() - 4..], &[111, 162, 191, 59]);
    }

    #[test]
    fn oversized_fields_are_refused() {
        let long_name = "n".repeat(256);
        assert_eq!(encode(&[(&long_name, "v")], b""), Err(FrameTooLarge));
        let long_value = "v".repeat(70_000);
        assert_eq!(encode(&[("n", &long_value)], b""), Err(FrameTooLarge));
    }
}
