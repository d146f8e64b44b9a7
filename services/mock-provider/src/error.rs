//! OpenAI-shaped error responses.
//!
//! Clients and the gateway's error mapping parse upstream failures as
//! `{"error":{"message","type","param","code"}}`; every failure the mock
//! provider produces — invalid requests, unknown models and scripted
//! (injected) errors — goes through [`ApiError`] so they all share that shape
//! and the right `Retry-After` behaviour.

use std::borrow::Cow;

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Header set on responses whose error was injected by a script or error rate,
/// so a test can tell an injected failure from a genuine one.
pub(crate) const INJECTED_HEADER: HeaderName = HeaderName::from_static("x-mock-injected");

/// `Retry-After` seconds sent with an injected 429 when none was scripted.
pub(crate) const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// An error answered in OpenAI's wire format.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    kind: &'static str,
    param: Option<Cow<'static, str>>,
    code: Option<&'static str>,
    retry_after: Option<u64>,
    injected: bool,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// 400 `invalid_request_error` about `param`.
    pub(crate) fn invalid_request(
        message: impl Into<Cow<'static, str>>,
        param: Option<impl Into<Cow<'static, str>>>,
    ) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(Into::into),
            code: None,
            retry_after: None,
            injected: false,
        }
    }

    /// 400 for a body that is not a JSON object.
    pub(crate) fn malformed_json(detail: &str) -> Self {
        Self::invalid_request(
            format!(
                "We could not parse the JSON body of your request. (HINT: This likely means \
                 you aren't using your HTTP library correctly. The OpenAI API expects a JSON \
                 payload, but what was sent was not valid JSON.) Detail: {detail}"
            ),
            None::<&'static str>,
        )
    }

    /// 400 for a missing required parameter.
    pub(crate) fn missing_param(param: &'static str) -> Self {
        Self::invalid_request(format!("you must provide a '{param}' parameter"), Some(param))
    }

    /// 404 `model_not_found`.
    pub(crate) fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist or you do not have access to it.").into(),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
            retry_after: None,
            injected: false,
        }
    }

    /// 404 for a route the provider does not serve.
    pub(crate) fn invalid_url(method: &Method, uri: &Uri) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("Invalid URL ({method} {})", uri.path()).into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
            injected: false,
        }
    }

    /// 500 for a failure inside the mock itself (should not happen).
    pub(crate) fn internal(detail: &str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("mock provider internal error: {detail}").into(),
            kind: "server_error",
            param: None,
            code: None,
            retry_after: None,
            injected: false,
        }
    }

    /// 413 for a request body over the route's limit, worded as OpenAI words it.
    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("Maximum content size limit ({limit}) exceeded.").into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
            injected: false,
        }
    }

    /// The same error with OpenAI's machine-readable `code` set.
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// An error injected by a script or the error rate, with OpenAI's shape
    /// for that status: `server_error` for 5xx, `rate_limit_exceeded` (plus a
    /// `Retry-After`, default 1 s) for 429, `invalid_request_error` otherwise.
    /// `retry_after` (scripted seconds) adds a `Retry-After` to any status.
    pub(crate) fn injected(status: u16, retry_after: Option<u64>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (kind, code, message): (_, _, Cow<'static, str>) = match status.as_u16() {
            429 => (
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests (injected by the OneFlow mock provider). \
                 Please try again later."
                    .into(),
            ),
            500..=599 => (
                "server_error",
                None,
                format!(
                    "The server had an error while processing your request (HTTP {}, \
                     injected by the OneFlow mock provider).",
                    status.as_u16()
                )
                .into(),
            ),
            401 => (
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided (injected by the OneFlow mock provider).".into(),
            ),
            other => (
                "invalid_request_error",
                None,
                format!("Request rejected with HTTP {other} (injected by the OneFlow mock provider).").into(),
            ),
        };
        let retry_after = match (status, retry_after) {
            (_, Some(secs)) => Some(secs),
            (StatusCode::TOO_MANY_REQUESTS, None) => Some(DEFAULT_RETRY_AFTER_SECS),
            _ => None,
        };
        Self {
            status,
            message,
            kind,
            param: None,
            code,
            retry_after,
            injected: true,
        }
    }

    /// The HTTP status this error is answered with.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            error: ErrorBody {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
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

/// Upload formats OpenAI's transcription endpoints accept, in the list its own
/// "Invalid file format" error quotes.
const SUPPORTED_UPLOADS: &str = "['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']";

/// The one mapping from the audio crate's errors to OpenAI's: whatever the
/// client sent wrong (a field, an upload) is a 400 naming the field; the
/// variants only a real provider produces cannot happen in the mock and
/// would be its own bug, a 500.
impl From<oneflow_audio::AudioError> for ApiError {
    fn from(err: oneflow_audio::AudioError) -> Self {
        use oneflow_audio::AudioError;
        match err {
            AudioError::Invalid { field, .. } => Self::invalid_request(err.to_string(), Some(field)),
            AudioError::Unrecognized => Self::invalid_request(
                format!(
                    "Invalid file format: the uploaded bytes are not audio in a supported format. \
                     Supported formats: {SUPPORTED_UPLOADS}"
                ),
                Some("file"),
            ),
            AudioError::Unsupported { format, .. } => Self::invalid_request(
                format!("Invalid file format: {format} audio is not accepted. Supported formats: {SUPPORTED_UPLOADS}"),
                Some("file"),
            ),
            AudioError::Corrupt { .. } => Self::invalid_request(
                format!("Audio file might be corrupted or unsupported: {err}"),
                Some("file"),
            ),
            AudioError::Credentials(_) | AudioError::Upstream { .. } => Self::internal(&err.to_string()),
        }
    }
}

/// Parses a request body that must be a JSON object.
pub(crate) fn parse_json_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::malformed_json("the body must be a JSON object")),
        Err(err) => Err(ApiError::malformed_json(&err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_statuses_have_openai_shapes() {
        let err = ApiError::injected(429, None);
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        let response = err.into_response();
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(response.headers()[INJECTED_HEADER], "true");

        let response = ApiError::injected(503, Some(9)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "9");

        let response = ApiError::injected(500, None).into_response();
        assert!(response.headers().get(RETRY_AFTER).is_none());

        assert_eq!(ApiError::injected(0, None).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn json_bodies_must_be_objects() {
        assert!(parse_json_object(br#"{"a":1}"#).is_ok());
        assert!(parse_json_object(b"[1]").is_err());
        assert!(parse_json_object(b"{").is_err());
    }
}
