//! `POST /token`: Google's OAuth 2.0 token endpoint for service accounts.
//!
//! A service account proves itself with a JWT it signs (RS256) and sends as
//! a form-encoded `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//! grant; Google answers a bearer token valid for an hour. The mock checks
//! what a broken adapter would get wrong — the grant type, a three-part
//! base64url JWT whose header says `RS256`, claims `iss`, `scope`, `aud`,
//! `iat` and `exp`, a lifetime of at most an hour that has not ended and
//! does not start in the future (five minutes of clock skew allowed), an
//! `aud` naming a token endpoint (any URL ending in `/token`, since the
//! adapter may point at the mock) — but **not** the RSA signature, which it
//! has no public key for (the third part only has to be non-empty base64url).
//!
//! The token it answers is self-verifying: `mock-google-<exp>-<scope>-<nonce>-<mac>`,
//! the MAC a SHA-256 over a per-instance random key, so the API routes
//! accept exactly the tokens this instance issued, until they expire, and
//! know whether the `cloud-platform` scope was granted. Failures use
//! OAuth's `{"error","error_description"}` body: `unsupported_grant_type`,
//! `invalid_request`, `invalid_scope` or `invalid_grant`, all 400.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::MockState;
use crate::error::INJECTED_HEADER;
use crate::script::{Directives, Injection, injected_failure};
use crate::stats::Counters;

/// The grant type of a service-account assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The longest an assertion may live.
const MAX_LIFETIME_SECS: i64 = 3600;
/// How far in the future `iat` may be.
const CLOCK_SKEW_SECS: i64 = 300;
/// Lifetime of an issued token, as Google reports it.
pub(crate) const EXPIRES_IN: u64 = 3599;
/// The prefix of every issued token.
const TOKEN_PREFIX: &str = "mock-google-";
/// The scope the Text-to-Speech and Speech-to-Text routes require.
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// An OAuth error answer.
#[derive(Debug, Clone)]
struct OauthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
    injected: bool,
}

fn oauth_error(error: &'static str, description: impl Into<String>) -> OauthError {
    OauthError {
        status: StatusCode::BAD_REQUEST,
        error,
        description: description.into(),
        retry_after: None,
        injected: false,
    }
}

fn invalid_grant(description: impl Into<String>) -> OauthError {
    oauth_error("invalid_grant", description)
}

impl OauthError {
    fn injected(injection: &Injection) -> Self {
        let status = StatusCode::from_u16(injection.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let error = match status.as_u16() {
            401 => "invalid_client",
            429 | 503 => "temporarily_unavailable",
            500..=599 => "server_error",
            _ => "invalid_request",
        };
        OauthError {
            status,
            error,
            description: crate::dialect_error::injected_message(status.as_u16()),
            retry_after: injection.retry_after_secs(),
            injected: true,
        }
    }
}

impl IntoResponse for OauthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
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

/// `POST /token`.
pub(crate) async fn token(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.google_token_requests);
    counters.record_headers(&headers);
    match handle(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(state: &MockState, headers: &HeaderMap, body: &[u8]) -> Result<Response, OauthError> {
    let directives = Directives::read(headers, None).map_err(|err| oauth_error("invalid_request", err.message()))?;
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(OauthError::injected(&injection));
    }
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(oauth_error(
            "invalid_request",
            "The token request must be application/x-www-form-urlencoded.",
        ));
    }
    let form = parse_form(body).ok_or_else(|| oauth_error("invalid_request", "The form body is not valid."))?;
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    match field("grant_type") {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(oauth_error(
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            ));
        }
        None => return Err(oauth_error("invalid_request", "Missing required parameter: grant_type")),
    }
    let Some(assertion) = field("assertion").filter(|value| !value.is_empty()) else {
        return Err(oauth_error("invalid_request", "Missing required parameter: assertion"));
    };
    let now = now_unix();
    let claims = check_assertion(assertion, now)?;
    let scopes = claims.scope.split_whitespace().any(|scope| scope == CLOUD_PLATFORM);
    let token = mint(state.google_token_key(), now + EXPIRES_IN as i64, scopes);
    Ok((
        [(CACHE_CONTROL, "no-cache, no-store, max-age=0, must-revalidate")],
        Json(json!({"access_token": token, "expires_in": EXPIRES_IN, "token_type": "Bearer"})),
    )
        .into_response())
}

/// The claims the mock needs from a valid assertion.
#[derive(Debug)]
struct Claims {
    scope: String,
}

/// Checks the JWT's structure, header and claims (not its signature).
fn check_assertion(assertion: &str, now: i64) -> Result<Claims, OauthError> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(invalid_grant(
            "Invalid JWT: the assertion must have three dot-separated parts.",
        ));
    };
    let decode = |part: &str, what: &str| -> Result<Vec<u8>, OauthError> {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| invalid_grant(format!("Invalid JWT: the {what} is not base64url.")))
    };
    let json = |part: &str, what: &str| -> Result<Value, OauthError> {
        match serde_json::from_slice::<Value>(&decode(part, what)?) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(invalid_grant(format!("Invalid JWT: the {what} is not a JSON object."))),
        }
    };
    let header = json(header, "header")?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid_grant("Invalid JWT: the header's alg must be RS256."));
    }
    if decode(signature, "signature")?.is_empty() {
        return Err(invalid_grant("Invalid JWT Signature."));
    }
    let claims = json(claims, "claim set")?;
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    };
    if text("iss").is_none() {
        return Err(invalid_grant(
            "Invalid JWT: the iss claim (the service account email) is missing.",
        ));
    }
    let Some(scope) = text("scope") else {
        return Err(oauth_error(
            "invalid_scope",
            "Invalid OAuth scope: the scope claim is missing or empty.",
        ));
    };
    if !text("aud").is_some_and(|aud| aud.ends_with("/token")) {
        return Err(invalid_grant(
            "Invalid JWT: the aud claim must be the token endpoint (https://oauth2.googleapis.com/token).",
        ));
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let (Some(iat), Some(exp)) = (number("iat"), number("exp")) else {
        return Err(invalid_grant("Invalid JWT: iat and exp must be integer seconds."));
    };
    if exp <= iat || exp - iat > MAX_LIFETIME_SECS || exp <= now || iat > now + CLOCK_SKEW_SECS {
        return Err(invalid_grant(
            "Invalid JWT: the token must be short-lived (at most 60 minutes) and current; check iat and exp.",
        ));
    }
    Ok(Claims {
        scope: scope.to_owned(),
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// What [`verify`] makes of a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Valid,
    Expired,
    MissingScope,
    Invalid,
}

/// Issues a token expiring at `expires_at`.
pub(crate) fn mint(key: &[u8; 32], expires_at: i64, cloud_platform: bool) -> String {
    let nonce = format!("{:016x}", rand::random::<u64>());
    let scope = if cloud_platform { "cp" } else { "xx" };
    let body = format!("{expires_at}-{scope}-{nonce}");
    format!("{TOKEN_PREFIX}{body}-{}", mac(key, &body))
}

/// Checks a token was issued by this instance, is current and has the scope.
pub(crate) fn verify(state: &MockState, token: &str, now: i64) -> Verdict {
    let Some(rest) = token.strip_prefix(TOKEN_PREFIX) else {
        return Verdict::Invalid;
    };
    let Some((body, given)) = rest.rsplit_once('-') else {
        return Verdict::Invalid;
    };
    if mac(state.google_token_key(), body) != given {
        return Verdict::Invalid;
    }
    let mut fields = body.split('-');
    let (Some(expires_at), Some(scope)) = (fields.next().and_then(|exp| exp.parse::<i64>().ok()), fields.next()) else {
        return Verdict::Invalid;
    };
    if expires_at <= now {
        Verdict::Expired
    } else if scope != "cp" {
        Verdict::MissingScope
    } else {
        Verdict::Valid
    }
}

fn mac(key: &[u8; 32], body: &str) -> String {
    let digest = Sha256::new().chain_update(key).chain_update(body.as_bytes()).finalize();
    digest[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Decodes an `application/x-www-form-urlencoded` body; `None` when it is
/// not UTF-8 or has a broken `%` escape.
fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 2;
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::body::Body;
    use axum::http::Request;

    use super::*;
    use crate::test_util::{body_json, default_state, send};

    /// Valid claims issued now.
    pub(crate) fn claims() -> Value {
        let now = now_unix();
        json!({
            "iss": "mock@project.iam.gserviceaccount.com",
            "scope": CLOUD_PLATFORM,
            "aud": "https://oauth2.googleapis.com/token",
            "iat": now,
            "exp": now + 3600,
        })
    }

    /// An unsigned-but-well-formed RS256 assertion carrying `claims`.
    pub(crate) fn assertion(claims: &Value) -> String {
        assertion_with(&json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}), claims)
    }

    fn assertion_with(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(b"not-really-a-signature")
        )
    }

    fn form_request(body: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::post("/token").header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    fn grant(assertion: &str) -> String {
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}")
    }

    #[tokio::test]
    async fn a_valid_assertion_gets_a_bearer_token_the_instance_accepts() {
        let state = default_state();
        let response = send(&state, form_request(&grant(&assertion(&claims())), &[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        let token = body["access_token"].as_str().unwrap();
        assert!(token.starts_with("mock-google-"), "{token}");
        let now = now_unix();
        assert_eq!(verify(&state, token, now), Verdict::Valid);
        assert_eq!(verify(&state, token, now + 3600), Verdict::Expired);
        // Another instance did not issue it; a tampered token is refused.
        assert_eq!(verify(&default_state(), token, now), Verdict::Invalid);
        let tampered = token.replacen("-cp-", "-xx-", 1);
        assert_eq!(verify(&state, &tampered, now), Verdict::Invalid);
        assert_eq!(verify(&state, "mock-google-", now), Verdict::Invalid);
        assert_eq!(state.stats().google_token_requests, 1);

        // A token without the cloud-platform scope is issued, but marked.
        let mut narrow = claims();
        narrow["scope"] = json!("https://www.googleapis.com/auth/devstorage.read_only");
        let body = body_json(send(&state, form_request(&grant(&assertion(&narrow)), &[])).await).await;
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(verify(&state, token, now), Verdict::MissingScope);
    }

    #[tokio::test]
    async fn bad_grants_get_oauth_errors() {
        let state = default_state();
        let now = now_unix();
        let with = |key: &str, value: Value| {
            let mut claims = claims();
            claims[key] = value;
            grant(&assertion(&claims))
        };
        let without = |key: &str| {
            let mut claims = claims();
            claims.as_object_mut().unwrap().remove(key);
            grant(&assertion(&claims))
        };
        let cases = [
            (
                "grant_type=client_credentials&assertion=x".to_owned(),
                "unsupported_grant_type",
            ),
            ("assertion=x".to_owned(), "invalid_request"),
            (grant(""), "invalid_request"),
            (grant("only.two"), "invalid_grant"),
            (grant("a!.b.c"), "invalid_grant"),
            (
                grant(&assertion_with(&json!({"alg": "HS256"}), &claims())),
                "invalid_grant",
            ),
            (without("iss"), "invalid_grant"),
            (without("scope"), "invalid_scope"),
            (without("aud"), "invalid_grant"),
            (with("aud", json!("https://example.com/")), "invalid_grant"),
            (without("exp"), "invalid_grant"),
            (with("exp", json!(now + 7200)), "invalid_grant"),
            (with("iat", json!(now - 7200)), "invalid_grant"),
            (with("iat", json!(now + 3000)), "invalid_grant"),
            ("grant_type=%zz".to_owned(), "invalid_request"),
        ];
        for (body, error) in cases {
            let response = send(&state, form_request(&body, &[])).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let answer = body_json(response).await;
            assert_eq!(answer["error"], error, "{body}: {answer}");
            assert!(answer["error_description"].is_string());
        }
        // A JSON body is not a form.
        let request = Request::post("/token")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(body_json(send(&state, request).await).await["error"], "invalid_request");
    }

    #[tokio::test]
    async fn injected_failures_use_the_oauth_shape() {
        let state = default_state();
        let body = grant(&assertion(&claims()));
        let response = send(&state, form_request(&body, &[("x-mock-status", "503")])).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-mock-injected"], "true");
        assert_eq!(body_json(response).await["error"], "temporarily_unavailable");
        let stats = state.stats();
        assert_eq!((stats.google_token_requests, stats.errors_injected), (1, 1));
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            parse_form(b"a=1+2&b=%2Fx%3D&c").unwrap(),
            [
                ("a".to_owned(), "1 2".to_owned()),
                ("b".to_owned(), "/x=".to_owned()),
                ("c".to_owned(), String::new())
            ]
        );
        assert!(parse_form(b"a=%4").is_none());
    }
}
