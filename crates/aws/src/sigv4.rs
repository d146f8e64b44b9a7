//! AWS Signature Version 4 for plain HTTP requests, delegated to the `aws-sigv4` crate.
//!
//! The algorithm is AWS's own implementation; this module only adapts OneFlow's request
//! parts to it, refuses inputs that would make it panic (a URL without a host), and returns
//! the headers to add, with the credential-bearing ones marked sensitive so that tracing
//! layers redact them.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::eventstream::Message;
use crate::{AwsError, Credentials};

/// Signs a request with SigV4 and returns the headers to add to it: `authorization`,
/// `x-amz-date` and, for temporary credentials, `x-amz-security-token`.
///
/// `url` must be absolute and already percent-encoded as it will be sent. Every header in
/// `headers` is signed (except the ones proxies rewrite: `user-agent`, `authorization`,
/// `x-amzn-trace-id`, `transfer-encoding`), so send exactly these headers; the `host`
/// header is derived from `url` when absent. The payload hash covers `body` but is not sent as
/// `x-amz-content-sha256`, which only S3 requires. The path is encoded once more for the
/// canonical request, as every service except S3 expects.
#[expect(
    clippy::too_many_arguments,
    reason = "the signature the router integrates against: one call, no builder"
)]
pub fn sign(
    method: &http::Method,
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    service: &str,
    region: &str,
    creds: &Credentials,
    time: SystemTime,
) -> Result<HeaderMap, AwsError> {
    sign_with(
        method,
        url,
        headers,
        SignableBody::Bytes(body),
        service,
        region,
        creds,
        time,
    )
    .map(|(out, _)| out)
}

/// The payload hash Transcribe's streaming operations sign instead of the body's: the body
/// is a chain of individually signed event-stream frames (see [`sign_event`]).
pub(crate) const STREAMING_EVENTS_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-EVENTS";

/// Signs the opening request of a signed event stream: like [`sign`], but the payload hash is
/// [`STREAMING_EVENTS_PAYLOAD`], and the request's signature is returned too. It seeds the
/// chain of frame signatures.
pub(crate) fn sign_streaming(
    method: &http::Method,
    url: &str,
    headers: &HeaderMap,
    service: &str,
    region: &str,
    creds: &Credentials,
    time: SystemTime,
) -> Result<(HeaderMap, String), AwsError> {
    let body = SignableBody::Precomputed(STREAMING_EVENTS_PAYLOAD.to_owned());
    sign_with(method, url, headers, body, service, region, creds, time)
}

/// Signs one event-stream frame with `aws-sigv4`'s event-stream signer and returns the
/// envelope frame (`:date`, `:chunk-signature`, the encoded `inner` message as payload) and
/// its signature, which the next frame chains from. `inner: None` gives the empty frame that
/// ends the stream.
pub(crate) fn sign_event(
    inner: Option<&Message>,
    prior_signature: &str,
    service: &str,
    region: &str,
    creds: &Credentials,
    time: SystemTime,
) -> Result<(Vec<u8>, String), AwsError> {
    let identity = creds.to_sdk().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(())
        .build()
        .map_err(|e| AwsError::Signing(e.to_string()))?;
    let output = match inner {
        Some(message) => aws_sigv4::event_stream::sign_message(&message.to_smithy(), prior_signature, &params),
        None => aws_sigv4::event_stream::sign_empty_message(prior_signature, &params),
    }
    .map_err(signing_error)?;
    let (envelope, signature) = output.into_parts();
    Ok((crate::eventstream::encode_smithy(&envelope)?, signature))
}

#[expect(
    clippy::too_many_arguments,
    reason = "the shared body of `sign` and `sign_streaming`"
)]
fn sign_with(
    method: &http::Method,
    url: &str,
    headers: &HeaderMap,
    body: SignableBody<'_>,
    service: &str,
    region: &str,
    creds: &Credentials,
    time: SystemTime,
) -> Result<(HeaderMap, String), AwsError> {
    require_absolute(url)?;
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = value
            .to_str()
            .map_err(|_| AwsError::Signing(format!("header `{name}` is not visible ASCII and cannot be signed")))?;
        pairs.push((name.as_str(), value));
    }

    // The builder's parameter fixes the type: aws-smithy-runtime-api's `Identity`.
    let identity = creds.to_sdk().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| AwsError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(method.as_str(), url, pairs.into_iter(), body).map_err(signing_error)?;
    let (instructions, signature) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(signing_error)?
        .into_parts();

    let (signed_headers, _params) = instructions.into_parts();
    let mut out = HeaderMap::with_capacity(signed_headers.len());
    for header in signed_headers {
        let name = HeaderName::from_static(header.name());
        let mut value = HeaderValue::from_str(header.value())
            .map_err(|_| AwsError::Signing(format!("signer produced an invalid `{}` header", header.name())))?;
        if header.sensitive() || name == http::header::AUTHORIZATION || name == "x-amz-security-token" {
            value.set_sensitive(true);
        }
        out.insert(name, value);
    }
    Ok((out, signature))
}

/// `aws-sigv4` expects a host in the URI and panics without one; refuse such URLs here.
fn require_absolute(url: &str) -> Result<(), AwsError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| AwsError::Signing("the URL to sign is not a valid, percent-encoded URI".into()))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("https" | "http"));
    let authority = uri.authority().map(http::uri::Authority::as_str).unwrap_or_default();
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || authority.contains('@') {
        return Err(AwsError::Signing(
            "the URL to sign must be an absolute http(s) URL with a host and no user info".into(),
        ));
    }
    Ok(())
}

/// The crate's messages name what failed, never a header value or key, so they are safe to show.
fn signing_error(err: aws_sigv4::http_request::SigningError) -> AwsError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    AwsError::Signing(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_or_hostless_urls_are_refused_not_panicked_on() {
        let creds = Credentials::new("AKID", "secret", None);
        for url in [
            "/model/x/converse",
            "example.com/x",
            "https://user:pw@example.com/",
            "ftp://example.com/",
        ] {
            let err = sign(
                &http::Method::POST,
                url,
                &HeaderMap::new(),
                b"{}",
                "bedrock",
                "us-east-1",
                &creds,
                SystemTime::UNIX_EPOCH,
            )
            .unwrap_err();
            assert!(matches!(err, AwsError::Signing(_)), "{url}: {err:?}");
        }
    }

    #[test]
    fn token_and_authorization_are_marked_sensitive() {
        let creds = Credentials::new("AKID", "secret", Some("the-token".into()));
        let out = sign(
            &http::Method::POST,
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
            &HeaderMap::new(),
            b"{}",
            "bedrock",
            "us-east-1",
            &creds,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        assert!(out["authorization"].is_sensitive());
        assert!(out["x-amz-security-token"].is_sensitive());
        assert_eq!(out["x-amz-security-token"], "the-token");
        assert!(out["authorization"].to_str().unwrap().contains("x-amz-security-token"));
        assert!(!format!("{out:?}").contains("the-token"));
    }
}
