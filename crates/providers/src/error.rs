//! What can go wrong in a translation, and what an upstream's error meant.
//!
//! [`AdapterError`] is this crate's own error: the client asked for something
//! a provider cannot express, the upstream answered something unreadable, or
//! the deployment's settings cannot be put on the wire. [`UpstreamError`] is
//! the provider's error body read into one small, fixed vocabulary
//! ([`ErrorKind`]) so the router decides retries, fall-over and the client's
//! status the same way for every provider. Upstream messages are shown to
//! clients, so anything that looks like a credential is masked first.

use serde_json::Value;

use crate::Family;

/// Why a translation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The client's request cannot be expressed for this provider (answer 400).
    /// The message names the offending field.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The upstream answered something that cannot be read (answer 502).
    #[error("unreadable upstream response: {0}")]
    Protocol(String),
    /// The deployment's settings cannot be used, e.g. an API key with bytes
    /// that are not allowed in a header (answer 500; never names the secret).
    #[error("deployment configuration: {0}")]
    Config(String),
}

/// What an upstream error means, independent of the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request was rejected as malformed or unsupported (the client's fault).
    InvalidRequest,
    /// The upstream refused the gateway's credentials.
    Authentication,
    /// The credentials are valid but may not use this model or resource.
    PermissionDenied,
    /// The model, deployment or endpoint does not exist upstream.
    NotFound,
    /// The request body was too large for the upstream.
    RequestTooLarge,
    /// The upstream's rate limit was hit; retrying later may work.
    RateLimited,
    /// The gateway's account has no quota or credit left; retrying will not help.
    QuotaExhausted,
    /// The upstream is temporarily overloaded (Anthropic 529, Gemini UNAVAILABLE).
    Overloaded,
    /// The upstream gave up in time.
    Timeout,
    /// The provider's content filter refused the prompt or the answer.
    ContentFiltered,
    /// Any other failure on the upstream's side.
    Server,
}

impl ErrorKind {
    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Authentication => "authentication",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::Server => "server",
        }
    }

    /// Whether the same request may succeed if sent again later. Defaults to
    /// no: only transient upstream conditions say yes.
    pub fn is_retryable(self) -> bool {
        match self {
            ErrorKind::RateLimited | ErrorKind::Overloaded | ErrorKind::Timeout | ErrorKind::Server => true,
            ErrorKind::InvalidRequest
            | ErrorKind::Authentication
            | ErrorKind::PermissionDenied
            | ErrorKind::NotFound
            | ErrorKind::RequestTooLarge
            | ErrorKind::QuotaExhausted
            | ErrorKind::ContentFiltered => false,
        }
    }

    /// The HTTP status the gateway should give its own client when no other
    /// deployment can serve the request. Credential and deployment problems
    /// are the gateway's, not the client's, so they become 502 rather than
    /// 401/403/404 (which would tell the client its own key or model is wrong).
    pub fn client_status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::ContentFiltered => 400,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::QuotaExhausted | ErrorKind::Overloaded => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Authentication | ErrorKind::PermissionDenied | ErrorKind::NotFound | ErrorKind::Server => 502,
        }
    }

    /// Fallback classification from the HTTP status alone.
    fn from_status(status: u16) -> Self {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        }
    }
}

/// An upstream's error, read from its body (or from an in-stream error event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// Human-readable message, safe to show to the client (credentials masked).
    pub message: String,
    /// The provider's own error code or type, e.g. `overloaded_error`,
    /// `RESOURCE_EXHAUSTED`, `context_length_exceeded`.
    pub code: Option<String>,
    /// What the error means.
    pub kind: ErrorKind,
}

impl UpstreamError {
    /// Shorthand for `self.kind.is_retryable()`.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Longest message passed on; provider messages are short, anything longer is
/// probably an HTML error page or a dump.
const MAX_MESSAGE: usize = 1000;

/// Reads a provider's error body for an HTTP error `status`.
///
/// Never fails: a body that cannot be read gives `upstream error (HTTP 503)`
/// and a kind from the status alone. Messages of authentication errors are
/// replaced by a fixed text, and anything else that looks like a key is masked,
/// because providers echo (parts of) the key they were sent.
pub fn error_from(family: Family, status: u16, body: &[u8]) -> UpstreamError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let read = parsed.as_ref().and_then(|v| match family {
        Family::OpenAi | Family::Azure => read_openai(v, Some(status)),
        Family::Anthropic => read_anthropic(v, Some(status)),
        Family::Gemini => read_gemini(v, Some(status)),
    });
    let mut error = read.unwrap_or_else(|| UpstreamError {
        message: format!("upstream error (HTTP {status})"),
        code: None,
        kind: ErrorKind::from_status(status),
    });
    error.message = safe_message(error.kind, &error.message);
    error
}

/// An OpenAI-style `{"error": {...}}` object, from a body or an in-stream
/// error chunk (then without a status).
pub(crate) fn read_openai(v: &Value, status: Option<u16>) -> Option<UpstreamError> {
    let e = v.get("error")?;
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_owned();
    let code = e.get("code").and_then(|c| match c {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let ty = e.get("type").and_then(Value::as_str);
    let is = |name: &str| code.as_deref() == Some(name) || ty == Some(name);
    let kind = if is("insufficient_quota") {
        ErrorKind::QuotaExhausted
    } else if is("content_filter") || is("content_policy_violation") {
        ErrorKind::ContentFiltered
    } else if is("invalid_api_key") || is("authentication_error") {
        ErrorKind::Authentication
    } else if let Some(status) = status {
        ErrorKind::from_status(status)
    } else if is("invalid_request_error") {
        ErrorKind::InvalidRequest
    } else if is("rate_limit_exceeded") || is("rate_limit_error") {
        ErrorKind::RateLimited
    } else {
        ErrorKind::Server
    };
    Some(UpstreamError {
        message,
        code: code.or_else(|| ty.map(str::to_owned)),
        kind,
    })
}

/// Anthropic's `{"type":"error","error":{"type":..,"message":..}}`, from a
/// body or an `error` stream event (then without a status).
pub(crate) fn read_anthropic(v: &Value, status: Option<u16>) -> Option<UpstreamError> {
    let e = v.get("error")?;
    let ty = e.get("type").and_then(Value::as_str);
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_owned();
    let kind = match ty {
        Some("invalid_request_error") => ErrorKind::InvalidRequest,
        Some("authentication_error") => ErrorKind::Authentication,
        Some("permission_error") => ErrorKind::PermissionDenied,
        Some("not_found_error") => ErrorKind::NotFound,
        Some("request_too_large") => ErrorKind::RequestTooLarge,
        Some("rate_limit_error") => ErrorKind::RateLimited,
        Some("overloaded_error") => ErrorKind::Overloaded,
        Some("timeout_error") => ErrorKind::Timeout,
        Some("billing_error") => ErrorKind::QuotaExhausted,
        Some("api_error") => ErrorKind::Server,
        _ => status.map_or(ErrorKind::Server, ErrorKind::from_status),
    };
    Some(UpstreamError {
        message,
        code: ty.map(str::to_owned),
        kind,
    })
}

/// Google's `{"error":{"code":..,"message":..,"status":..}}`, sometimes
/// wrapped in a one-element array.
pub(crate) fn read_gemini(v: &Value, status: Option<u16>) -> Option<UpstreamError> {
    let v = match v {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let e = v.get("error")?;
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_owned();
    let grpc = e.get("status").and_then(Value::as_str);
    let http = status.or_else(|| {
        e.get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
    });
    // An invalid key is reported as INVALID_ARGUMENT with reason API_KEY_INVALID.
    let bad_key = e.get("details").and_then(Value::as_array).is_some_and(|d| {
        d.iter()
            .any(|x| x.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"))
    });
    let kind = if bad_key {
        ErrorKind::Authentication
    } else {
        match grpc {
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => ErrorKind::InvalidRequest,
            Some("UNAUTHENTICATED") => ErrorKind::Authentication,
            Some("PERMISSION_DENIED") => ErrorKind::PermissionDenied,
            Some("NOT_FOUND") => ErrorKind::NotFound,
            Some("RESOURCE_EXHAUSTED") => ErrorKind::RateLimited,
            Some("UNAVAILABLE") => ErrorKind::Overloaded,
            Some("DEADLINE_EXCEEDED") => ErrorKind::Timeout,
            Some("INTERNAL" | "UNKNOWN") => ErrorKind::Server,
            _ => http.map_or(ErrorKind::Server, ErrorKind::from_status),
        }
    };
    Some(UpstreamError {
        message,
        code: grpc.map(str::to_owned),
        kind,
    })
}

/// The message a client may see.
pub(crate) fn safe_message(kind: ErrorKind, message: &str) -> String {
    if kind == ErrorKind::Authentication {
        return "the upstream provider rejected the gateway's credentials".to_owned();
    }
    let masked = mask_secrets(message);
    if masked.chars().count() > MAX_MESSAGE {
        let cut: String = masked.chars().take(MAX_MESSAGE).collect();
        format!("{cut}…")
    } else {
        masked
    }
}

/// Replaces words that look like API keys with `[redacted]`: known key
/// prefixes (`sk-`, `AIza`, …), partially starred keys as OpenAI echoes them,
/// and long random-looking tokens.
fn mask_secrets(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_secret(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.' | '+' | '/' | '=') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn looks_secret(word: &str) -> bool {
    let w = word.trim_end_matches('.');
    const PREFIXES: [&str; 5] = ["sk-", "AIza", "key-", "xai-", "gsk_"];
    if w.len() >= 12 && PREFIXES.iter().any(|p| w.starts_with(p)) {
        return true;
    }
    if w.len() >= 12 && w.contains("****") {
        return true;
    }
    // Request ids and UUIDs help support and are no secret.
    if w.starts_with("req_") || w.starts_with("request-") || is_uuid(w) {
        return false;
    }
    // Long tokens mixing letters and digits (32+ characters, no dots or slashes,
    // so URLs, paths and model names survive).
    w.len() >= 32
        && !w.contains(['.', '/'])
        && w.chars().any(|c| c.is_ascii_digit())
        && w.chars().any(|c| c.is_ascii_alphabetic())
}

fn is_uuid(w: &str) -> bool {
    let groups: Vec<&str> = w.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_messages_are_masked() {
        let m = mask_secrets(
            "Incorrect API key provided: sk-proj-abc1********************xyz9. See https://platform.openai.com/account/api-keys.",
        );
        assert!(!m.contains("abc1"), "{m}");
        assert!(m.contains("[redacted]"));
        assert!(m.contains("https://platform.openai.com/account/api-keys"));
        let m = mask_secrets("key AIzaSyD-1234567890abcdefghijklmnop is bad");
        assert_eq!(m, "key [redacted] is bad");
        let m = mask_secrets("model claude-3-5-sonnet-20241022 not found");
        assert_eq!(m, "model claude-3-5-sonnet-20241022 not found");
        let m = mask_secrets("token 9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc here");
        assert_eq!(m, "token [redacted] here");
        let m = mask_secrets(
            "include request ID req_8f3c9a1b2d4e5f60718293a4b5c6d7e8 or 123e4567-e89b-12d3-a456-426614174000",
        );
        assert!(
            m.contains("req_8f3c9a1b2d4e5f60718293a4b5c6d7e8") && m.contains("123e4567-e89b"),
            "{m}"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let m = safe_message(ErrorKind::Server, &"x ".repeat(2000));
        assert!(m.chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn retryability_defaults_to_no() {
        assert!(ErrorKind::Overloaded.is_retryable());
        assert!(!ErrorKind::InvalidRequest.is_retryable());
        assert!(!ErrorKind::QuotaExhausted.is_retryable());
    }
}
