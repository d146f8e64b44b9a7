//! Event-stream framing: round trips under any split, corruption rejected.

use bytes::Bytes;
use oneflow_aws::eventstream::{Decoder, HeaderValue, Message, decode_one, encode};
use proptest::prelude::*;

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| HeaderValue::ByteArray(Bytes::from(b))),
        ".{0,30}".prop_map(HeaderValue::String),
        (-1_000_000_000_000i64..4_000_000_000_000i64).prop_map(HeaderValue::Timestamp),
        any::<u128>().prop_map(HeaderValue::Uuid),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        proptest::collection::vec(("[:a-z-]{1,20}", header_value()), 0..5),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(headers, payload)| Message::new(headers, payload))
}

/// Feeds `wire` cut at `cuts` (positions, any order, duplicates allowed).
fn decode_split(wire: &[u8], cuts: &[usize]) -> (Vec<Message>, bool) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for pair in points.windows(2) {
        out.extend(decoder.feed(&wire[pair[0]..pair[1]]).unwrap());
    }
    (out, decoder.is_idle())
}

proptest! {
    #[test]
    fn round_trip_under_any_split(
        messages in proptest::collection::vec(message(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut wire = Vec::new();
        for m in &messages {
            wire.extend(encode(&m.headers, &m.payload).unwrap());
        }
        let (decoded, idle) = decode_split(&wire, &cuts);
        prop_assert_eq!(decoded, messages);
        prop_assert!(idle);
    }

    #[test]
    fn any_flipped_bit_is_detected(msg in message(), position in any::<usize>(), bit in 0u8..8) {
        let mut wire = msg.encode().unwrap();
        let position = position % wire.len();
        wire[position] ^= 1 << bit;
        // CRC-32 catches every single-bit error, in the prelude or after it.
        prop_assert!(Decoder::new().feed(&wire).is_err());
    }
}

fn sample() -> Message {
    Message::new(
        vec![
            (":event-type".into(), HeaderValue::from("contentBlockDelta")),
            (":message-type".into(), HeaderValue::from("event")),
            (":content-type".into(), HeaderValue::from("application/json")),
        ],
        &br#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#[..],
    )
}

#[test]
fn accessors_read_the_standard_headers() {
    let m = decode_one(&sample().encode().unwrap()).unwrap();
    assert_eq!(m.event_type(), Some("contentBlockDelta"));
    assert_eq!(m.message_type(), Some("event"));
    assert_eq!(m.content_type(), Some("application/json"));
    assert_eq!(m.exception_type(), None);
}

#[test]
fn bad_message_crc_is_rejected() {
    let mut wire = sample().encode().unwrap();
    let last = wire.len() - 1;
    wire[last] ^= 0x01;
    assert!(
        Decoder::new()
            .feed(&wire)
            .unwrap_err()
            .to_string()
            .contains("malformed event stream frame")
    );

    let mut wire = sample().encode().unwrap();
    wire[20] ^= 0x40; // inside the headers: the message CRC no longer matches
    assert!(Decoder::new().feed(&wire).is_err());
}

#[test]
fn bad_prelude_crc_is_rejected_before_the_body_arrives() {
    let mut wire = sample().encode().unwrap();
    wire[8] ^= 0x01;
    let err = Decoder::new().feed(&wire[..12]).unwrap_err();
    assert!(err.to_string().contains("prelude checksum"), "{err}");
}

#[test]
fn a_partial_frame_is_not_idle() {
    let wire = sample().encode().unwrap();
    let mut decoder = Decoder::new();
    assert!(decoder.is_idle());
    assert!(decoder.feed(&wire[..wire.len() - 3]).unwrap().is_empty());
    assert!(!decoder.is_idle());
    assert_eq!(decoder.feed(&wire[wire.len() - 3..]).unwrap(), vec![sample()]);
    assert!(decoder.is_idle());
}

#[test]
fn oversized_header_name_cannot_be_encoded() {
    let headers = vec![("x".repeat(300), HeaderValue::Bool(true))];
    assert!(encode(&headers, b"").is_err());
}
