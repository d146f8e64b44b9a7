//! What every AWS service's failure looks like, read once for all adapters: the error type
//! (from `x-amzn-ErrorType`, the body's `__type`, or an event-stream `:exception-type`), the
//! message (`message` or `Message`), and the credential failures whose text must not reach a
//! client.
//!
//! Each service keeps its own table from error type to the status OneFlow reports; only the
//! reading and the hygiene (truncation, fixed messages for signature errors) live here.

use serde_json::Value;

/// Longest upstream message passed on; AWS messages are short, anything longer is noise.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1024;

/// The error type and message of a failed call, as far as AWS gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorParts {
    /// Normalised type name, e.g. `ThrottlingException`.
    pub(crate) error_type: Option<String>,
    /// AWS's message, truncated.
    pub(crate) message: Option<String>,
}

/// Reads a non-2xx answer: `error_type_header` is `x-amzn-ErrorType`; without it the body's
/// `__type` (or `code`) is used.
pub(crate) fn http_error(error_type_header: Option<&str>, body: &[u8]) -> ErrorParts {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let error_type = error_type_header
        .map(normalise_type)
        .filter(|t| !t.is_empty())
        .or_else(|| {
            json.as_ref()
                .and_then(|j| j.get("__type").or_else(|| j.get("code")))
                .and_then(Value::as_str)
                .map(normalise_type)
                .filter(|t| !t.is_empty())
        });
    ErrorParts {
        error_type,
        message: json.as_ref().and_then(message_of),
    }
}

/// The `message` (or `Message`) of an exception payload, truncated.
pub(crate) fn payload_message(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .as_ref()
        .and_then(message_of)
}

fn message_of(json: &Value) -> Option<String> {
    json.get("message")
        .or_else(|| json.get("Message"))
        .and_then(Value::as_str)
        .map(truncate)
}

/// Errors caused by OneFlow's own AWS credentials or signature. The client did nothing wrong,
/// and AWS's message may quote the canonical request, session token included.
pub fn is_credential_failure(error_type: &str) -> bool {
    matches!(
        error_type,
        "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignatureException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "MissingAuthenticationTokenException"
    )
}

/// Keeps the upstream status when it is an error status, else reports a bad gateway.
pub(crate) fn fallback_status(status: u16) -> u16 {
    if (400..600).contains(&status) { status } else { 502 }
}

/// `ThrottlingException:http://...` and `com.amazon...#ThrottlingException` → `ThrottlingException`.
pub(crate) fn normalise_type(raw: &str) -> String {
    let raw = raw.split(':').next().unwrap_or_default();
    raw.rsplit('#').next().unwrap_or_default().trim().to_owned()
}

/// `throttlingException` → `ThrottlingException` (event streams spell some types in camelCase).
pub(crate) fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Cuts `message` to [`MAX_MESSAGE_CHARS`] characters, marking the cut with `…`.
pub(crate) fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_normalised_from_header_or_body() {
        let parts = http_error(Some("ThrottlingException:http://internal.amazon.com/"), b"{}");
        assert_eq!(parts.error_type.as_deref(), Some("ThrottlingException"));
        assert_eq!(parts.message, None);
        let parts = http_error(None, br#"{"__type":"com.amazon#BadRequestException","Message":"m"}"#);
        assert_eq!(parts.error_type.as_deref(), Some("BadRequestException"));
        assert_eq!(parts.message.as_deref(), Some("m"));
        assert_eq!(payload_message(b"not json"), None);
        assert_eq!(capitalise("limitExceededException"), "LimitExceededException");
    }
}
