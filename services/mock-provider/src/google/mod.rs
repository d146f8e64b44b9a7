//! Google Cloud's audio APIs and the OAuth token endpoint in front of them.
//!
//! The router's Google adapters sign a service-account JWT, exchange it for
//! an access token, cache the token, and call Text-to-Speech and
//! Speech-to-Text with it; the mock serves those three routes as Google
//! documents them, written independently of the adapters:
//!
//! - `token`: `POST /token`, the `jwt-bearer` grant.
//! - `tts`: `POST /v1/text:synthesize`.
//! - `stt`: `POST /v1/speech:recognize` and `/v1p1beta1/speech:recognize`.
//!
//! The API routes accept an access token this instance issued
//! (`Authorization: Bearer mock-google-…`, unexpired, granted the
//! `cloud-platform` scope) or an API key (`x-goog-api-key` header or `key`
//! query parameter, any non-empty value). Errors come in Google's
//! `{"error":{code,message,status}}` shape (the one Gemini uses too); the
//! token endpoint answers OAuth's `{"error","error_description"}` instead.

pub(crate) mod stt;
pub(crate) mod token;
pub(crate) mod tts;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::MockState;
use crate::dialect_error::{Dialect, DialectError};

pub(crate) const DIALECT: Dialect = Dialect::Gemini;
/// The header carrying an API key.
const API_KEY: &str = "x-goog-api-key";

/// A 400 `INVALID_ARGUMENT`.
pub(crate) fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> DialectError {
    DialectError::bad_request(DIALECT, message)
}

/// Whether the query string carries a non-empty `key`.
fn query_has_key(query: Option<&str>) -> bool {
    query.unwrap_or_default().split('&').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(name, value)| name == "key" && !value.is_empty())
    })
}

/// Checks the credentials of a Text-to-Speech or Speech-to-Text call.
pub(crate) fn check_auth(state: &MockState, headers: &HeaderMap, query: Option<&str>) -> Result<(), DialectError> {
    if let Some(authorization) = headers.get(AUTHORIZATION) {
        let token = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        return match token::verify(state, token, token::now_unix()) {
            token::Verdict::Valid => Ok(()),
            token::Verdict::MissingScope => Err(DialectError::new(
                DIALECT,
                StatusCode::FORBIDDEN,
                "Request had insufficient authentication scopes: the token was not granted https://www.googleapis.com/auth/cloud-platform.",
            )),
            token::Verdict::Expired => Err(unauthenticated("The access token has expired.")),
            token::Verdict::Invalid => Err(unauthenticated(
                "Request had invalid authentication credentials: expected an OAuth 2 access token issued by this mock's /token endpoint.",
            )),
        };
    }
    let header_key = headers.get(API_KEY).is_some_and(|key| !key.is_empty());
    if header_key || query_has_key(query) {
        return Ok(());
    }
    Err(unauthenticated(
        "Request is missing required authentication credential: send an OAuth 2 access token (Authorization: Bearer) or an API key (x-goog-api-key or ?key=).",
    ))
}

fn unauthenticated(message: &'static str) -> DialectError {
    DialectError::new(DIALECT, StatusCode::UNAUTHORIZED, message)
}

/// Parses a body that must be a JSON object, in Google's words.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, DialectError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(invalid(
            "Invalid JSON payload received. The body must be a JSON object.",
        )),
        Err(err) => Err(invalid(format!("Invalid JSON payload received. {err}"))),
    }
}

/// An optional string field.
pub(crate) fn opt_str<'a>(object: &'a Value, field: &str, at: &str) -> Result<Option<&'a str>, DialectError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(format!("Invalid value at '{at}.{field}': expected a string."))),
    }
}

/// An optional number field.
pub(crate) fn opt_f64(object: &Value, field: &str, at: &str) -> Result<Option<f64>, DialectError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("Invalid value at '{at}.{field}': expected a number."))),
    }
}

/// An optional boolean field.
pub(crate) fn opt_bool(object: &Value, field: &str, at: &str) -> Result<bool, DialectError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(invalid(format!("Invalid value at '{at}.{field}': expected a boolean."))),
    }
}

/// An optional integer field (proto3 JSON also accepts integers as strings).
pub(crate) fn opt_u32(object: &Value, field: &str, at: &str) -> Result<Option<u32>, DialectError> {
    let bad = || invalid(format!("Invalid value at '{at}.{field}': expected an integer."));
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(bad),
        Some(Value::String(text)) => text.parse::<u32>().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! A token issued by the mock, for the Google routes' tests.

    use axum::body::Body;
    use axum::http::Request;

    use crate::MockState;
    use crate::test_util::{body_json, send};

    /// Exchanges a well-formed assertion for a token, through the router.
    pub(crate) async fn fetch_token(state: &MockState) -> String {
        let body = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
            super::token::tests::assertion(&super::token::tests::claims())
        );
        let request = Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let answer = body_json(send(state, request).await).await;
        answer["access_token"].as_str().unwrap().to_owned()
    }
}
