//! The public error: always OpenAI's `{"error":{"message","type","param","code"}}`
//! with the right status. The one mapping from internal gRPC statuses lives here.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable, client-safe message.
    pub message: String,
    /// OpenAI error type.
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<String>,
    /// Machine-readable code.
    pub code: Option<String>,
    /// Seconds for `Retry-After`.
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after_secs: None,
        }
    }
    /// Sets `param`.
    #[must_use]
    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
    /// Sets `code`.
    #[must_use]
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
    /// 400 for a malformed or invalid request.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }
    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message).code("invalid_api_key")
    }
    /// 500 without detail.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server had an error while processing your request.",
        )
    }

    /// The SSE `data:` payload for an error inside a stream.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Envelope {
            error: Body {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        })
        .unwrap_or_else(|_| {
            "{\"error\":{\"message\":\"error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}".to_owned()
        })
    }

    /// Maps an internal gRPC status to the public error. Every code is listed:
    /// a new one must be decided here.
    pub fn from_status(status: &tonic::Status) -> Self {
        let info = oneflow_proto::error_info(status).unwrap_or_default();
        let code = (!info.code.is_empty()).then(|| info.code.clone());
        let param = (!info.param.is_empty()).then(|| info.param.clone());
        let retry = (info.retry_after_millis > 0).then(|| info.retry_after_millis.div_ceil(1000));
        let msg = status.message().to_owned();
        let (http, kind, message) = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => (StatusCode::BAD_REQUEST, "invalid_request_error", msg),
            Code::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Incorrect API key provided.".to_owned(),
            ),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_error", msg),
            Code::NotFound => (StatusCode::NOT_FOUND, "invalid_request_error", msg),
            Code::AlreadyExists | Code::Aborted => (StatusCode::CONFLICT, "invalid_request_error", msg),
            Code::FailedPrecondition if info.code == "insufficient_credits" => {
                (StatusCode::PAYMENT_REQUIRED, "insufficient_quota", msg)
            }
            Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "invalid_request_error", msg),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "requests", msg),
            Code::Unavailable if info.upstream_status == 502 => (StatusCode::BAD_GATEWAY, "server_error", msg),
            Code::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "The service is temporarily unavailable; please retry.".to_owned(),
            ),
            Code::DeadlineExceeded => (
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                "The upstream provider did not answer in time.".to_owned(),
            ),
            Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "invalid_request_error", msg),
            Code::Cancelled => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "The request was cancelled.".to_owned(),
            ),
            Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => {
                tracing::error!(code = ?status.code(), message = %status.message(), "internal service error");
                return Self::internal();
            }
        };
        let mut err = Self::new(http, kind, message);
        err.code = code.or_else(|| (http == StatusCode::UNAUTHORIZED).then(|| "invalid_api_key".to_owned()));
        err.param = param;
        err.retry_after_secs = retry.or((http == StatusCode::TOO_MANY_REQUESTS).then_some(1));
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("oneflow_gateway_errors_total", "status" => self.status.as_str().to_owned()).increment(1);
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.to_json(),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oneflow_proto::common::v1::ErrorInfo;

    #[test]
    fn insufficient_credits_is_402_and_rate_limit_is_429_with_retry_after() {
        let s = oneflow_proto::status_with_info(
            Code::FailedPrecondition,
            "insufficient credits",
            ErrorInfo {
                code: "insufficient_credits".into(),
                ..ErrorInfo::default()
            },
        );
        let e = ApiError::from_status(&s);
        assert_eq!(e.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(e.code.as_deref(), Some("insufficient_credits"));
        let s = oneflow_proto::status_with_info(
            Code::ResourceExhausted,
            "slow down",
            ErrorInfo {
                code: "rate_limit_exceeded".into(),
                retry_after_millis: 2500,
                ..ErrorInfo::default()
            },
        );
        let e = ApiError::from_status(&s);
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after_secs, Some(3));
    }

    #[test]
    fn internal_details_never_leak() {
        let e = ApiError::from_status(&tonic::Status::internal("password=hunter2 at db.rs:42"));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.to_json().contains("hunter2"));
        let e = ApiError::from_status(&tonic::Status::unavailable("connect to 10.0.0.7 refused"));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.to_json().contains("10.0.0.7"));
    }

    #[test]
    fn body_has_the_openai_shape() {
        let v: serde_json::Value = serde_json::from_str(&ApiError::invalid("bad").param("model").to_json()).unwrap();
        assert_eq!(v["error"]["message"], "bad");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert!(v["error"]["code"].is_null());
    }
}
