//! What the Polly and Transcribe routes share: the shape check of a SigV4
//! `authorization` header, and AWS's REST-JSON error answer.
//!
//! As for Bedrock, the signature itself is **not** verified (the mock has no
//! secret keys); the header must have SigV4's shape — `AWS4-HMAC-SHA256
//! Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request,
//! SignedHeaders=…, Signature=<hex>` — and name the route's service in its
//! credential scope, and `x-amz-date` must be present. A client signing for
//! the wrong service is refused the way AWS refuses it, with a 403.
//!
//! Errors are the status, an `x-amzn-ErrorType` header with the error's
//! type name, and a JSON body with the message (under `message` for Polly,
//! `Message` for Transcribe).

use std::borrow::Cow;

use axum::Json;
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::error::INJECTED_HEADER;
use crate::script::Injection;

/// The prefix of a SigV4 `authorization` header.
const SIGV4_PREFIX: &str = "AWS4-HMAC-SHA256 ";
/// AWS's error type header.
pub(crate) const AMZN_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
/// AWS's request id header, set on every answer of the AWS routes.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// An error in AWS's REST-JSON shape.
#[derive(Debug, Clone)]
pub(crate) struct AwsError {
    pub(crate) status: StatusCode,
    pub(crate) kind: Cow<'static, str>,
    pub(crate) message: Cow<'static, str>,
    /// `message` (Polly) or `Message` (Transcribe).
    pub(crate) message_key: &'static str,
    retry_after: Option<u64>,
    injected: bool,
}

impl AwsError {
    pub(crate) fn new(
        message_key: &'static str,
        status: StatusCode,
        kind: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            kind: kind.into(),
            message: message.into(),
            message_key,
            retry_after: None,
            injected: false,
        }
    }

    /// The error a script or the error rate injects, with `kind` the
    /// service's type name for the status.
    pub(crate) fn injected(message_key: &'static str, injection: &Injection, kind: &'static str) -> Self {
        let status = StatusCode::from_u16(injection.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            retry_after: injection.retry_after_secs(),
            injected: true,
            ..Self::new(
                message_key,
                status,
                kind,
                crate::dialect_error::injected_message(status.as_u16()),
            )
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(self.message_key.to_owned(), Value::String(self.message.into_owned()));
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        if let Ok(kind) = HeaderValue::from_str(&self.kind) {
            headers.insert(AMZN_ERROR_TYPE, kind);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.injected {
            headers.insert(INJECTED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

/// Sets a fresh `x-amzn-RequestId` on `response`.
pub(crate) fn with_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().hyphenated().to_string()) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

/// Checks the SigV4 headers have the right shape and scope `service`.
pub(crate) fn check_sigv4(headers: &HeaderMap, service: &str, message_key: &'static str) -> Result<(), AwsError> {
    let forbidden =
        |kind: &'static str, message: String| AwsError::new(message_key, StatusCode::FORBIDDEN, kind, message);
    let Some(authorization) = headers.get(AUTHORIZATION) else {
        return Err(forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token".to_owned(),
        ));
    };
    let incomplete = |what: &str| {
        forbidden(
            "IncompleteSignatureException",
            format!("The authorization header is not a complete AWS Signature Version 4 header: {what}."),
        )
    };
    let Some(rest) = authorization
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix(SIGV4_PREFIX))
    else {
        return Err(incomplete("it must start with `AWS4-HMAC-SHA256 `"));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let Some(credential) = credential else {
        return Err(incomplete("Credential is missing"));
    };
    if signed_headers.is_none_or(str::is_empty) {
        return Err(incomplete("SignedHeaders is missing"));
    }
    match signature {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {}
        _ => return Err(incomplete("Signature is missing or not hexadecimal")),
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, scoped_service, terminator] = scope[..] else {
        return Err(incomplete(
            "the Credential must be <access key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if key.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || terminator != "aws4_request"
    {
        return Err(incomplete(
            "the Credential must be <access key>/<yyyymmdd>/<region>/<service>/aws4_request",
        ));
    }
    if scoped_service != service {
        return Err(forbidden(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{service}'."),
        ));
    }
    if !headers.contains_key("x-amz-date") {
        return Err(incomplete("a signed request needs an x-amz-date header"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_headers {
    //! Signed-looking headers for the AWS routes' tests.

    /// An `authorization` header scoped to `service`.
    pub(crate) fn sigv4(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/{service}/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef"
        )
    }

    /// The `x-amz-date` header.
    pub(crate) const DATE: (&str, &str) = ("x-amz-date", "20250101T000000Z");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn sigv4_shape_and_scope() {
        let good = test_headers::sigv4("polly");
        assert!(
            check_sigv4(
                &headers(&[("authorization", &good), test_headers::DATE]),
                "polly",
                "message"
            )
            .is_ok()
        );
        let kind = |pairs: &[(&str, &str)], service| check_sigv4(&headers(pairs), service, "message").unwrap_err().kind;
        assert_eq!(
            kind(&[test_headers::DATE], "polly"),
            "MissingAuthenticationTokenException"
        );
        assert_eq!(
            kind(&[("authorization", &good)], "polly"),
            "IncompleteSignatureException"
        );
        assert_eq!(
            kind(&[("authorization", &good), test_headers::DATE], "transcribe"),
            "InvalidSignatureException"
        );
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/polly/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKID/2025/us-east-1/polly/aws4_request, SignedHeaders=host, Signature=ab",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/polly/aws4_request, SignedHeaders=host, Signature=ab",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/polly/aws4_request, SignedHeaders=host, Signature=xyz",
        ] {
            assert_eq!(
                kind(&[("authorization", bad), test_headers::DATE], "polly"),
                "IncompleteSignatureException",
                "{bad}"
            );
        }
    }
}
