//! Google's OAuth 2.0 service-account flow ("two-legged OAuth"): sign a JWT with the service
//! account's RSA key (RS256, `kid` = the key id), post it to the token endpoint as a
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` assertion, and use the returned bearer token
//! until shortly before it expires. The private key, the assertion and the access token are
//! all credentials: none of them appears in `Debug` output or in an error message.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::error::AudioError;

/// The scope every Cloud API accepts, Text-to-Speech and Speech-to-Text included.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, used when the key file does not name one.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The longest life Google accepts for an assertion.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// The OAuth grant type for a JWT assertion (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The content type of the token request body.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

const REDACTED: &str = "[redacted]";

/// A service-account key file (the JSON downloaded from the Cloud console).
#[derive(Clone)]
pub struct ServiceAccountKey {
    /// The account's e-mail, the JWT issuer.
    pub client_email: String,
    /// The key's id, sent as the JWT `kid` so Google picks the right public key.
    pub private_key_id: String,
    /// The project, when the file names one.
    pub project_id: Option<String>,
    /// Where assertions are exchanged for tokens.
    pub token_uri: String,
    signing_key: EncodingKey,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &REDACTED)
            .finish()
    }
}

/// The file's fields, read once and dropped (the PEM text is not kept).
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key_id: String,
    private_key: String,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// The claims Google requires in the assertion.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssertionClaims {
    /// The service account's e-mail.
    pub iss: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, at most an hour after `iat`.
    pub exp: u64,
}

fn unix_seconds(t: SystemTime) -> Result<u64, AudioError> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| AudioError::Credentials("the clock is before 1970".into()))
}

impl ServiceAccountKey {
    /// Reads a key file. Refuses anything but `"type": "service_account"` and a private key
    /// that is not an RSA PEM; the error says which, never what the key holds.
    pub fn from_json(json: &[u8]) -> Result<ServiceAccountKey, AudioError> {
        let file: KeyFile = serde_json::from_slice(json).map_err(|e| {
            // serde's message names the missing or mistyped field, not the values.
            AudioError::Credentials(format!("not a Google service-account key file: {}", field_only(&e)))
        })?;
        if file.kind != "service_account" {
            return Err(AudioError::Credentials(format!(
                "key file has type `{}`, expected `service_account`",
                file.kind
            )));
        }
        let signing_key = EncodingKey::from_rsa_pem(file.private_key.as_bytes())
            .map_err(|_| AudioError::Credentials("`private_key` is not an RSA private key in PEM form".into()))?;
        Ok(ServiceAccountKey {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            project_id: file.project_id,
            token_uri: file.token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            signing_key,
        })
    }

    /// The claims of an assertion issued at `now` for `scope`.
    pub fn claims(&self, scope: &str, now: SystemTime) -> Result<AssertionClaims, AudioError> {
        let iat = unix_seconds(now)?;
        Ok(AssertionClaims {
            iss: self.client_email.clone(),
            scope: scope.to_owned(),
            aud: self.token_uri.clone(),
            iat,
            exp: iat.saturating_add(ASSERTION_LIFETIME.as_secs()),
        })
    }

    /// Signs an RS256 assertion for `scope` issued at `now`.
    pub fn assertion(&self, scope: &str, now: SystemTime) -> Result<String, AudioError> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.private_key_id.clone());
        jsonwebtoken::encode(&header, &self.claims(scope, now)?, &self.signing_key)
            .map_err(|e| AudioError::Credentials(format!("could not sign the assertion: {e}")))
    }

    /// The token request for the cloud-platform scope, issued at `now`.
    pub fn token_request(&self, now: SystemTime) -> Result<TokenRequest, AudioError> {
        let assertion = self.assertion(CLOUD_PLATFORM_SCOPE, now)?;
        Ok(TokenRequest {
            uri: self.token_uri.clone(),
            body: form_urlencode(&[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)]),
        })
    }
}

/// Keeps serde's "missing field `x`" / "invalid type … at line" without any quoted value.
fn field_only(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.split_once(" at line") {
        Some((head, _)) if head.starts_with("missing field") => head.to_owned(),
        _ => format!("invalid JSON at line {} column {}", e.line(), e.column()),
    }
}

/// `application/x-www-form-urlencoded` encoding (WHATWG): unreserved bytes as is, space as
/// `+`, everything else percent-encoded.
pub fn form_urlencode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(key, &mut out);
        out.push('=');
        encode_component(value, &mut out);
    }
    out
}

fn encode_component(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
}

/// A ready token-endpoint call. The body holds a signed assertion (a credential), so `Debug`
/// hides it.
#[derive(Clone)]
pub struct TokenRequest {
    /// The token endpoint.
    pub uri: String,
    body: String,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("uri", &self.uri)
            .field("body", &REDACTED)
            .finish()
    }
}

impl TokenRequest {
    /// The form body: `grant_type=…&assertion=…`.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The request as an `http::Request` (POST, form content type).
    pub fn into_http(self) -> Result<Request<Bytes>, AudioError> {
        Request::builder()
            .method(Method::POST)
            .uri(&self.uri)
            .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
            .body(Bytes::from(self.body))
            .map_err(|_| AudioError::Credentials(format!("token_uri `{}` is not a valid URI", self.uri)))
    }
}

/// A bearer token and when it stops working.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: String,
    /// Always `Bearer` from Google.
    pub token_type: String,
    /// When Google stops accepting it.
    pub expires_at: SystemTime,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AccessToken {
    /// The raw token. Handle with care: it is a credential.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// The `Authorization` header value, marked sensitive so HTTP stacks and tracing layers
    /// that honour the flag do not record it.
    pub fn authorization(&self) -> Result<(http::HeaderName, HeaderValue), AudioError> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", self.token)).map_err(|_| AudioError::Upstream {
            provider: "Google OAuth",
            message: "token is not header-safe".into(),
        })?;
        value.set_sensitive(true);
        Ok((AUTHORIZATION, value))
    }
}

/// Parses the token endpoint's answer, success or OAuth error, with `now` the time the
/// response arrived.
pub fn parse_token_response(body: &[u8], now: SystemTime) -> Result<AccessToken, AudioError> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: Option<String>,
        expires_in: Option<u64>,
        token_type: Option<String>,
        error: Option<String>,
        error_description: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| AudioError::Upstream {
        provider: "Google OAuth",
        message: "token response is not JSON".into(),
    })?;
    if let Some(error) = answer.error {
        let description = answer.error_description.unwrap_or_default();
        return Err(AudioError::Credentials(format!(
            "Google refused the service-account assertion: {error} {description}"
        )));
    }
    match (answer.access_token, answer.expires_in) {
        (Some(token), Some(expires_in)) if !token.is_empty() => Ok(AccessToken {
            token,
            token_type: answer.token_type.unwrap_or_else(|| "Bearer".into()),
            expires_at: now + Duration::from_secs(expires_in),
        }),
        _ => Err(AudioError::Upstream {
            provider: "Google OAuth",
            message: "token response lacks access_token or expires_in".into(),
        }),
    }
}

/// What a [`TokenCache`] holds at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState<'a> {
    /// No token yet: fetch one before calling Google.
    Missing,
    /// Use this token.
    Fresh(&'a AccessToken),
    /// Still valid, but inside the refresh margin: use it, and fetch a new one now.
    Refresh(&'a AccessToken),
    /// Expired: fetch a new one before calling Google.
    Expired,
}

/// When to refresh a token: the policy only, no clock and no I/O. The caller passes the
/// time, stores what it fetched, and (being the one with locks) makes sure a single refresh
/// runs at a time.
#[derive(Debug, Clone)]
pub struct TokenCache {
    token: Option<AccessToken>,
    refresh_before: Duration,
}

impl Default for TokenCache {
    /// Refreshes five minutes before expiry: long enough to ride out a slow token endpoint,
    /// short enough to use most of each hour-long token.
    fn default() -> Self {
        TokenCache::new(Duration::from_secs(300))
    }
}

impl TokenCache {
    /// A cache that starts refreshing `refresh_before` ahead of expiry.
    pub fn new(refresh_before: Duration) -> Self {
        TokenCache {
            token: None,
            refresh_before,
        }
    }

    /// Keeps a newly fetched token.
    pub fn store(&mut self, token: AccessToken) {
        self.token = Some(token);
    }

    /// Forgets the token (after Google answered 401 with it).
    pub fn clear(&mut self) {
        self.token = None;
    }

    /// The state at `now`.
    pub fn state(&self, now: SystemTime) -> TokenState<'_> {
        match &self.token {
            None => TokenState::Missing,
            Some(token) if now >= token.expires_at => TokenState::Expired,
            Some(token) if now + self.refresh_before >= token.expires_at => TokenState::Refresh(token),
            Some(token) => TokenState::Fresh(token),
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    const PRIVATE_PEM: &str = include_str!("../../tests/fixtures/test-only-rsa-private.pem");
    const PUBLIC_PEM: &str = include_str!("../../tests/fixtures/test-only-rsa-public.pem");

    fn key_file() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": "service_account",
            "project_id": "oneflow-test",
            "private_key_id": "0123456789abcdef",
            "private_key": PRIVATE_PEM,
            "client_email": "tts@oneflow-test.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
        }))
        .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn assertion_verifies_with_the_public_key_and_carries_every_claim() {
        let key = ServiceAccountKey::from_json(&key_file()).unwrap();
        let jwt = key.assertion(CLOUD_PLATFORM_SCOPE, at(1_700_000_000)).unwrap();

        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("0123456789abcdef"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));

        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://oauth2.googleapis.com/token"]);
        validation.set_issuer(&["tts@oneflow-test.iam.gserviceaccount.com"]);
        validation.validate_exp = false; // the test clock is in the past
        validation.set_required_spec_claims(&["iss", "aud", "exp"]);
        let decoding = DecodingKey::from_rsa_pem(PUBLIC_PEM.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<AssertionClaims>(&jwt, &decoding, &validation)
            .unwrap()
            .claims;
        assert_eq!(
            claims,
            AssertionClaims {
                iss: "tts@oneflow-test.iam.gserviceaccount.com".into(),
                scope: "https://www.googleapis.com/auth/cloud-platform".into(),
                aud: "https://oauth2.googleapis.com/token".into(),
                iat: 1_700_000_000,
                exp: 1_700_003_600,
            }
        );

        // A signature from another key must not verify.
        let mut tampered = jwt.clone();
        tampered.replace_range(jwt.len() - 4.., "AAAA");
        assert!(jsonwebtoken::decode::<AssertionClaims>(&tampered, &decoding, &validation).is_err());
    }

    #[test]
    fn token_request_is_the_documented_form_post() {
        let key = ServiceAccountKey::from_json(&key_file()).unwrap();
        let request = key.token_request(at(1_700_000_000)).unwrap();
        let body = request.body().to_owned();
        let (grant, assertion) = body.split_once('&').unwrap();
        assert_eq!(
            grant,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
        let jwt = assertion.strip_prefix("assertion=").unwrap();
        assert_eq!(jwt.split('.').count(), 3, "a compact JWS needs no escaping");
        let http = request.into_http().unwrap();
        assert_eq!(http.method(), Method::POST);
        assert_eq!(http.uri(), "https://oauth2.googleapis.com/token");
        assert_eq!(http.headers()[CONTENT_TYPE], FORM_CONTENT_TYPE);
        assert_eq!(http.body(), &Bytes::from(body));
    }

    #[test]
    fn secrets_never_print() {
        let key = ServiceAccountKey::from_json(&key_file()).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("tts@oneflow-test") && debug.contains("[redacted]"));
        assert!(!debug.contains("PRIVATE KEY") && !debug.contains("MII"));
        let request = key.token_request(at(1)).unwrap();
        assert!(!format!("{request:?}").contains("assertion"));
        let token = parse_token_response(
            br#"{"access_token":"ya29.secret","expires_in":3599,"token_type":"Bearer"}"#,
            at(0),
        )
        .unwrap();
        assert!(!format!("{token:?}").contains("ya29"));
        let (name, value) = token.authorization().unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert!(value.is_sensitive());
        assert_eq!(value, "Bearer ya29.secret");
    }

    #[test]
    fn bad_key_files_say_what_is_wrong_without_echoing_them() {
        let mut wrong_type: serde_json::Value = serde_json::from_slice(&key_file()).unwrap();
        wrong_type["type"] = "authorized_user".into();
        let err = ServiceAccountKey::from_json(&serde_json::to_vec(&wrong_type).unwrap()).unwrap_err();
        assert!(err.to_string().contains("authorized_user"));

        let mut bad_pem = wrong_type.clone();
        bad_pem["type"] = "service_account".into();
        bad_pem["private_key"] = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXZhbHVl\n-----END PRIVATE KEY-----\n".into();
        let err = ServiceAccountKey::from_json(&serde_json::to_vec(&bad_pem).unwrap()).unwrap_err();
        assert!(err.to_string().contains("RSA") && !err.to_string().contains("c2VjcmV0"));

        let mut missing = bad_pem;
        missing.as_object_mut().unwrap().remove("client_email");
        let err = ServiceAccountKey::from_json(&serde_json::to_vec(&missing).unwrap()).unwrap_err();
        assert!(err.to_string().contains("client_email"), "{err}");
        assert!(!err.is_client_error());
    }

    #[test]
    fn token_responses_parse_with_expiry_and_errors() {
        let token = parse_token_response(
            br#"{"access_token":"t","expires_in":3599,"token_type":"Bearer"}"#,
            at(100),
        )
        .unwrap();
        assert_eq!(token.expires_at, at(3699));
        assert_eq!(token.secret(), "t");
        let refused = parse_token_response(
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
            at(0),
        );
        assert!(matches!(refused, Err(AudioError::Credentials(m)) if m.contains("invalid_grant")));
        assert!(matches!(
            parse_token_response(b"{}", at(0)),
            Err(AudioError::Upstream { .. })
        ));
        assert!(matches!(
            parse_token_response(b"<html>", at(0)),
            Err(AudioError::Upstream { .. })
        ));
    }

    #[test]
    fn cache_refreshes_five_minutes_early_and_drops_expired_tokens() {
        let mut cache = TokenCache::default();
        assert_eq!(cache.state(at(0)), TokenState::Missing);
        cache.store(parse_token_response(br#"{"access_token":"t","expires_in":3600}"#, at(0)).unwrap());
        assert!(matches!(cache.state(at(3299)), TokenState::Fresh(_)));
        assert!(matches!(cache.state(at(3300)), TokenState::Refresh(_)));
        assert!(matches!(cache.state(at(3599)), TokenState::Refresh(_)));
        assert_eq!(cache.state(at(3600)), TokenState::Expired);
        cache.clear();
        assert_eq!(cache.state(at(0)), TokenState::Missing);
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            form_urlencode(&[("a b", "c&d=e/é"), ("x", "")]),
            "a+b=c%26d%3De%2F%C3%A9&x="
        );
    }
}
