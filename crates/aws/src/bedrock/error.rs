//! Bedrock failures → the status, code and message OneFlow reports to its client.
//!
//! One table serves both the non-streaming errors (typed by the `x-amzn-ErrorType` header)
//! and the exceptions inside a ConverseStream (typed by `:exception-type`, camelCase).

use crate::upstream::{
    capitalise, fallback_status, http_error, is_credential_failure, normalise_type, payload_message, truncate,
};

/// Maps a failed Bedrock call to `(status to report, code, message)`.
///
/// `error_type_header` is `x-amzn-ErrorType` (`ThrottlingException` or
/// `ThrottlingException:http://internal.amazon.com/...`); without it the body's `__type` is
/// used. The code is the AWS error name (e.g. `ThrottlingException`), or `HttpError` when
/// AWS gave none. The message is AWS's `message`, truncated, except for credential failures,
/// which get a fixed message because AWS's may quote the signed request.
pub fn error_from(status: u16, error_type_header: Option<&str>, body: &[u8]) -> (u16, String, String) {
    let parts = http_error(error_type_header, body);
    let message = parts
        .message
        .unwrap_or_else(|| format!("Bedrock returned HTTP {status}"));
    match parts.error_type {
        Some(error_type) => classify(&error_type, Some(status), message),
        None => (fallback_status(status), "HttpError".into(), message),
    }
}

/// Maps an in-stream exception (`:exception-type`, e.g. `throttlingException`) and its
/// payload (`{"message": ...}`).
pub(crate) fn stream_exception(exception_type: &str, payload: &[u8]) -> (u16, String, String) {
    let message = payload_message(payload).unwrap_or_else(|| format!("Bedrock stream failed with {exception_type}"));
    classify(&capitalise(&normalise_type(exception_type)), None, message)
}

/// Maps a `:message-type: error` frame (`:error-code`, `:error-message` headers).
pub(crate) fn stream_error(code: &str, message: &str) -> (u16, String, String) {
    let code = capitalise(&normalise_type(code));
    let message = if message.is_empty() {
        format!("Bedrock stream failed with {code}")
    } else {
        truncate(message)
    };
    classify(&code, None, message)
}

fn classify(error_type: &str, upstream_status: Option<u16>, message: String) -> (u16, String, String) {
    if is_credential_failure(error_type) {
        return (
            502,
            error_type.to_owned(),
            format!("Bedrock rejected the gateway's AWS credentials ({error_type})"),
        );
    }
    let status = match error_type {
        "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException" => 429,
        "ValidationException" | "SerializationException" => 400,
        "AccessDeniedException" => 403,
        "ResourceNotFoundException" => 404,
        "ModelTimeoutException" | "ServiceUnavailableException" | "ModelNotReadyException" => 503,
        "InternalServerException" | "InternalFailure" => 500,
        "ModelErrorException" | "ModelStreamErrorException" => 502,
        _ => upstream_status.map_or(502, fallback_status),
    };
    (status, error_type.to_owned(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_types_map_to_statuses() {
        let cases = [
            ("ThrottlingException", 429),
            (
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                400,
            ),
            ("AccessDeniedException", 403),
            ("ResourceNotFoundException", 404),
            ("ModelTimeoutException", 503),
            ("ServiceUnavailableException", 503),
            ("ModelNotReadyException", 503),
            ("InternalServerException", 500),
        ];
        for (header, expected) in cases {
            let (status, code, message) = error_from(400, Some(header), br#"{"message":"boom"}"#);
            assert_eq!(status, expected, "{header}");
            assert!(!code.contains(':'), "{code}");
            assert_eq!(message, "boom");
        }
    }

    #[test]
    fn body_type_is_used_without_header_and_status_kept_without_either() {
        let (status, code, _) = error_from(
            400,
            None,
            br#"{"__type":"com.amazon#ThrottlingException","message":"x"}"#,
        );
        assert_eq!((status, code.as_str()), (429, "ThrottlingException"));
        let (status, code, message) = error_from(504, None, b"<html>gateway timeout</html>");
        assert_eq!((status, code.as_str()), (504, "HttpError"));
        assert!(!message.contains("html"), "{message}");
    }

    #[test]
    fn credential_failures_hide_the_upstream_message() {
        let body =
            br#"{"message":"The request signature we calculated does not match... x-amz-security-token:SECRET"}"#;
        let (status, _, message) = error_from(403, Some("InvalidSignatureException"), body);
        assert_eq!(status, 502);
        assert!(!message.contains("SECRET"), "{message}");
    }

    #[test]
    fn stream_exceptions_are_camel_case() {
        assert_eq!(
            stream_exception("throttlingException", br#"{"message":"slow down"}"#).0,
            429
        );
        let (status, code, message) = stream_exception("modelStreamErrorException", br#"{"message":"m"}"#);
        assert_eq!(
            (status, code.as_str(), message.as_str()),
            (502, "ModelStreamErrorException", "m")
        );
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(5000);
        let body = serde_json::to_vec(&serde_json::json!({"message": long})).unwrap();
        let (_, _, message) = error_from(400, Some("ValidationException"), &body);
        assert_eq!(message.chars().count(), crate::upstream::MAX_MESSAGE_CHARS + 1);
    }
}
