//! Encoder for AWS's binary event-stream framing (`application/vnd.amazon.eventstream`).
//!
//! Bedrock's `converse-stream` does not use SSE: each event is a binary
//! message with a length prelude, typed headers, a JSON payload and two
//! CRC32 checksums. The router's Bedrock adapter must decode and verify
//! those frames, so the mock encodes them byte-exactly, from AWS's published
//! description of the format:
//!
//! ```text
//! total length u32 BE | headers length u32 BE | CRC32 of the previous 8 bytes
//! headers: name length u8, name, value type u8 (7 = string), value length u16 BE, value
//! payload
//! CRC32 of every byte before it
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// Header value type of a UTF-8 string.
const STRING_VALUE: u8 = 7;
/// Bytes of the prelude (two lengths and their CRC) plus the message CRC.
const OVERHEAD: usize = 16;

/// A frame that cannot be encoded because a field outgrew its length field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameTooLarge;

/// Encodes one message with string-valued `headers` and `payload`.
pub(crate) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Result<Bytes, FrameTooLarge> {
    let mut encoded_headers = BytesMut::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len()).map_err(|_| FrameTooLarge)?;
        let value_len = u16::try_from(value.len()).map_err(|_| FrameTooLarge)?;
        encoded_headers.put_u8(name_len);
        encoded_headers.put_slice(name.as_bytes());
        encoded_headers.put_u8(STRING_VALUE);
        encoded_headers.put_u16(value_len);
        encoded_headers.put_slice(value.as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

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
