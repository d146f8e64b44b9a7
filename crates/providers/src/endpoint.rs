//! URLs and headers of upstream requests.
//!
//! Kept apart from the body translations so that the one place where a
//! credential touches the wire is small and easy to audit: every secret header
//! is marked sensitive (redacted by `Debug` and by tracing layers that honour
//! it), and a key that cannot be a header value is reported without its bytes.

use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::AdapterError;

/// `base` and `path` joined by exactly one slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/`
/// when `keep_slash`), for model and deployment names placed in a path or query.
pub(crate) fn encode(segment: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Headers every JSON request carries.
pub(crate) fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// Adds `name: prefix + key` as a sensitive header, when there is a key.
pub(crate) fn add_secret(
    headers: &mut HeaderMap,
    name: HeaderName,
    prefix: &str,
    key: Option<&str>,
) -> Result<(), AdapterError> {
    let Some(key) = key else { return Ok(()) };
    let mut value = HeaderValue::from_str(&format!("{prefix}{key}")).map_err(|_| {
        AdapterError::Config(format!(
            "the API key contains characters not allowed in the `{name}` header"
        ))
    })?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(())
}

/// Adds a non-secret header whose value comes from configuration.
pub(crate) fn add_plain(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), AdapterError> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| AdapterError::Config(format!("`{value}` is not a valid value for the `{name}` header")))?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_encodes() {
        assert_eq!(
            join("http://h/v1/", "/chat/completions"),
            "http://h/v1/chat/completions"
        );
        assert_eq!(encode("gpt-4o mini/x", false), "gpt-4o%20mini%2Fx");
        assert_eq!(encode("models/gemini-2.0-flash", true), "models/gemini-2.0-flash");
    }

    #[test]
    fn bad_keys_are_reported_without_their_bytes() {
        let mut h = HeaderMap::new();
        let err = add_secret(&mut h, http::header::AUTHORIZATION, "Bearer ", Some("sk-secret\nvalue")).unwrap_err();
        assert!(!err.to_string().contains("sk-secret"));
        add_secret(&mut h, http::header::AUTHORIZATION, "Bearer ", Some("sk-ok")).unwrap();
        assert!(h[http::header::AUTHORIZATION].is_sensitive());
        assert!(!format!("{h:?}").contains("sk-ok"));
    }
}
