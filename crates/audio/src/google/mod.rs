//! Google Cloud's speech services without a Google SDK: service-account OAuth (signed JWT
//! exchanged for an access token), Text-to-Speech v1 `text:synthesize` and Speech-to-Text
//! `speech:recognize`, as pure request builders and response parsers. The router owns the
//! HTTP client and the clock; nothing here sends a byte.

pub mod auth;
pub mod stt;
pub mod tts;

use std::time::Duration;

use serde::Deserialize;

/// The error body every Google REST API returns (`{"error": {code, message, status}}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GoogleApiError {
    /// The HTTP status code.
    pub code: u16,
    /// A human-readable message; it describes the request, never credentials.
    #[serde(default)]
    pub message: String,
    /// The canonical status name, e.g. `INVALID_ARGUMENT`.
    #[serde(default)]
    pub status: String,
}

/// Parses a Google error body; `None` when `body` is not one.
pub fn parse_error(body: &[u8]) -> Option<GoogleApiError> {
    #[derive(Deserialize)]
    struct Envelope {
        error: GoogleApiError,
    }
    serde_json::from_slice::<Envelope>(body).ok().map(|e| e.error)
}

/// Parses the JSON form of `google.protobuf.Duration`: decimal seconds with an `s` suffix,
/// up to nine fractional digits (`"1.500s"`, `"0s"`). Negative values are refused.
pub(crate) fn parse_proto_duration(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_durations_parse() {
        assert_eq!(parse_proto_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_proto_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_proto_duration("3.000000001s"), Some(Duration::new(3, 1)));
        assert_eq!(parse_proto_duration("-1s"), None);
        assert_eq!(parse_proto_duration("1.5"), None);
        assert_eq!(parse_proto_duration(".5s"), None);
        assert_eq!(parse_proto_duration("1.1234567890s"), None);
    }

    #[test]
    fn error_bodies_parse() {
        let body = br#"{"error": {"code": 400, "message": "Invalid audio", "status": "INVALID_ARGUMENT"}}"#;
        let err = parse_error(body).unwrap();
        assert_eq!((err.code, err.status.as_str()), (400, "INVALID_ARGUMENT"));
        assert_eq!(parse_error(b"<html>"), None);
    }
}
