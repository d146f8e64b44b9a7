//! Provider error bodies → error kinds, with no credential in any message.

use oneflow_providers::{ErrorKind, Family, error_from};

use crate::fixture::bytes;

#[test]
fn anthropic_errors() {
    let e = error_from(Family::Anthropic, 529, &bytes("anthropic/error_overloaded.json"));
    assert_eq!(
        (e.kind, e.code.as_deref(), e.message.as_str()),
        (ErrorKind::Overloaded, Some("overloaded_error"), "Overloaded")
    );
    assert!(e.is_retryable());
    assert_eq!(e.kind.client_status(), 503);

    let e = error_from(Family::Anthropic, 401, &bytes("anthropic/error_auth.json"));
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert!(!e.message.contains("sk-ant"), "{}", e.message);
    assert_eq!(e.kind.client_status(), 502, "the gateway's key, not the client's");

    let e = error_from(Family::Anthropic, 400, &bytes("anthropic/error_invalid.json"));
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(e.message.starts_with("messages: roles must alternate"));
    assert!(!e.is_retryable());
}

#[test]
fn gemini_errors() {
    let e = error_from(Family::Gemini, 429, &bytes("gemini/error_rate_limited.json"));
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::RateLimited, Some("RESOURCE_EXHAUSTED"))
    );
    assert!(e.is_retryable());
    let e = error_from(Family::Gemini, 400, &bytes("gemini/error_bad_key.json"));
    assert_eq!(
        e.kind,
        ErrorKind::Authentication,
        "an invalid key is INVALID_ARGUMENT with reason API_KEY_INVALID"
    );
    let wrapped = br#"[{"error":{"code":404,"message":"models/nope is not found","status":"NOT_FOUND"}}]"#;
    assert_eq!(error_from(Family::Gemini, 404, wrapped).kind, ErrorKind::NotFound);
}

#[test]
fn openai_and_azure_errors() {
    let e = error_from(Family::OpenAi, 401, &bytes("openai/error_bad_key.json"));
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert!(
        !e.message.contains("ab12") && !e.message.contains("sk-proj"),
        "{}",
        e.message
    );

    let e = error_from(Family::OpenAi, 400, &bytes("openai/error_context_length.json"));
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::InvalidRequest, Some("context_length_exceeded"))
    );
    assert!(e.message.contains("128000"));

    let e = error_from(Family::OpenAi, 429, &bytes("openai/error_quota.json"));
    assert_eq!(e.kind, ErrorKind::QuotaExhausted);
    assert!(!e.is_retryable(), "an empty account does not refill by retrying");

    let e = error_from(Family::Azure, 400, &bytes("azure/error_content_filter.json"));
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::ContentFiltered, Some("content_filter"))
    );
    assert_eq!(
        error_from(
            Family::OpenAi,
            429,
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#
        )
        .kind,
        ErrorKind::RateLimited
    );
}

#[test]
fn unreadable_bodies_fall_back_to_the_status() {
    for family in [Family::OpenAi, Family::Azure, Family::Anthropic, Family::Gemini] {
        let e = error_from(family, 503, b"<html><body>Service Unavailable</body></html>");
        assert_eq!(e.message, "upstream error (HTTP 503)");
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.code, None);
        assert_eq!(error_from(family, 502, b"").kind, ErrorKind::Server);
        assert_eq!(error_from(family, 504, b"").kind, ErrorKind::Timeout);
        assert_eq!(error_from(family, 413, b"").kind, ErrorKind::RequestTooLarge);
    }
}
