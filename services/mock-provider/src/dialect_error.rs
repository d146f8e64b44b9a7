//! Error responses in the Anthropic, Gemini and Bedrock wire shapes.
//!
//! The router's adapters map each provider's own error format to the
//! gateway's (and decide on retries from it), so the mock must fail the way
//! each provider fails: Anthropic's `{"type":"error","error":{type,message}}`,
//! Google's `{"error":{code,message,status}}` (Gemini and the Google Cloud
//! audio APIs alike) and Bedrock's
//! `x-amzn-ErrorType` header with a `{"message"}` body. One type carries the
//! dialect-neutral facts (status, message, `Retry-After`, injected or not);
//! the status → error-type tables here are also used for in-stream errors.

use std::borrow::Cow;

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::INJECTED_HEADER;
use crate::script::{Injection, ScriptError};

/// Bedrock's error type header.
const AMZN_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
/// The namespace suffix Bedrock appends to error types in the header.
const AMZN_ERROR_NAMESPACE: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

/// The provider families with a native (non-OpenAI) wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Anthropic,
    Gemini,
    Bedrock,
}

/// An error answered in one dialect's wire format.
#[derive(Debug, Clone)]
pub(crate) struct DialectError {
    dialect: Dialect,
    status: StatusCode,
    message: Cow<'static, str>,
    /// Overrides the error type derived from the status.
    kind: Option<&'static str>,
    retry_after: Option<u64>,
    injected: bool,
}

impl DialectError {
    /// An error with the dialect's error type for `status`.
    pub(crate) fn new(dialect: Dialect, status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            dialect,
            status,
            message: message.into(),
            kind: None,
            retry_after: None,
            injected: false,
        }
    }

    /// A 400 in the dialect's "invalid request" type.
    pub(crate) fn bad_request(dialect: Dialect, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(dialect, StatusCode::BAD_REQUEST, message)
    }

    /// Uses `kind` as the error type instead of the one the status implies.
    pub(crate) fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The error a script or the error rate injects.
    pub(crate) fn injected(dialect: Dialect, injection: &Injection) -> Self {
        let status = StatusCode::from_u16(injection.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            retry_after: injection.retry_after_secs(),
            injected: true,
            ..Self::new(dialect, status, injected_message(status.as_u16()))
        }
    }

    /// A 400 for an unusable scripting directive.
    pub(crate) fn script(dialect: Dialect, err: &ScriptError) -> Self {
        Self::bad_request(dialect, err.message())
    }

    /// The error type name as the dialect spells it in an HTTP response.
    fn kind(&self) -> &'static str {
        self.kind.unwrap_or_else(|| {
            let status = self.status.as_u16();
            match self.dialect {
                Dialect::Anthropic => anthropic_error_type(status),
                Dialect::Gemini => gemini_status(status),
                Dialect::Bedrock => bedrock_error_type(status),
            }
        })
    }
}

/// The message of an injected error.
pub(crate) fn injected_message(status: u16) -> String {
    format!("Request failed with HTTP {status} (injected by the OneFlow mock provider).")
}

impl IntoResponse for DialectError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let mut response = match self.dialect {
            Dialect::Anthropic => (
                self.status,
                Json(json!({"type": "error", "error": {"type": kind, "message": self.message}})),
            )
                .into_response(),
            Dialect::Gemini => (
                self.status,
                Json(json!({"error": {"code": self.status.as_u16(), "message": self.message, "status": kind}})),
            )
                .into_response(),
            Dialect::Bedrock => {
                let mut response = (self.status, Json(json!({"message": self.message}))).into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("{kind}{AMZN_ERROR_NAMESPACE}")) {
                    response.headers_mut().insert(AMZN_ERROR_TYPE, value);
                }
                response
            }
        };
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.injected {
            headers.insert(INJECTED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

/// Anthropic's `error.type` for an HTTP status.
pub(crate) fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// Google's canonical `error.status` for an HTTP status.
pub(crate) fn gemini_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// Bedrock's error type (as in `x-amzn-ErrorType`) for an HTTP status; the
/// in-stream exception name is the same with a lower-case first letter.
pub(crate) fn bedrock_error_type(status: u16) -> &'static str {
    match status {
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        500..=599 => "InternalServerException",
        _ => "ValidationException",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::body_json;

    #[tokio::test]
    async fn each_dialect_has_its_shape() {
        let response = DialectError::new(Dialect::Anthropic, StatusCode::NOT_FOUND, "no").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            body_json(response).await,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "no"}})
        );

        let injection = Injection {
            status: 429,
            retry_after: None,
        };
        let response = DialectError::injected(Dialect::Gemini, &injection).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["x-mock-injected"], "true");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");

        let response = DialectError::new(Dialect::Bedrock, StatusCode::FORBIDDEN, "Missing Authentication Token")
            .with_kind("MissingAuthenticationTokenException")
            .into_response();
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        );
        assert_eq!(
            body_json(response).await,
            json!({"message": "Missing Authentication Token"})
        );
    }

    #[test]
    fn status_tables() {
        assert_eq!(anthropic_error_type(529), "overloaded_error");
        assert_eq!(anthropic_error_type(503), "api_error");
        assert_eq!(anthropic_error_type(422), "invalid_request_error");
        assert_eq!(gemini_status(503), "UNAVAILABLE");
        assert_eq!(gemini_status(502), "INTERNAL");
        assert_eq!(bedrock_error_type(429), "ThrottlingException");
        assert_eq!(bedrock_error_type(400), "ValidationException");
    }
}
