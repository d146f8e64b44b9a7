//! OpenAI-compatible and Azure upstreams: the body passes through.

use http::header::AUTHORIZATION;
use oneflow_providers::{
    AdapterError, EmbeddingFormat, Family, Target, Usage, chat_request, chat_response, embeddings_request,
    embeddings_response,
};
use serde_json::{Value, json};

use crate::fixture::target;

#[test]
fn body_passes_byte_for_byte_with_only_the_model_replaced() {
    let body = br#"{"model":"public-alias","messages":[{"role":"user","content":"hi"}],"x_vendor":{"b":1,"a":[1.10,2]},"temperature":0.70}"#;
    let p = chat_request(Family::OpenAi, &target("http://mock/v1/", "gpt-4o-mini"), body, false).unwrap();
    assert_eq!(
        std::str::from_utf8(&p.body).unwrap(),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x_vendor":{"b":1,"a":[1.10,2]},"temperature":0.70}"#
    );
    assert_eq!(p.url, "http://mock/v1/chat/completions");
    assert_eq!(p.headers[AUTHORIZATION], "Bearer test-key-123");
    assert!(p.headers[AUTHORIZATION].is_sensitive());
    assert_eq!(p.headers["content-type"], "application/json");
}

#[test]
fn streams_force_usage_reporting_and_keep_other_stream_options() {
    let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":false,"include_obfuscation":false},"messages":[]}"#;
    let p = chat_request(Family::OpenAi, &target("http://h/v1", "up"), body, true).unwrap();
    let v: Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(v["stream"], true);
    assert_eq!(
        v["stream_options"],
        json!({"include_usage": true, "include_obfuscation": false})
    );

    let p = chat_request(
        Family::OpenAi,
        &target("http://h/v1", "up"),
        br#"{"model":"m","messages":[]}"#,
        true,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(
        v,
        json!({"model": "up", "messages": [], "stream": true, "stream_options": {"include_usage": true}})
    );
}

#[test]
fn non_streamed_calls_drop_stream_options() {
    let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let p = chat_request(Family::OpenAi, &target("http://h/v1", "up"), body, false).unwrap();
    let v: Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(v, json!({"model": "up", "stream": false, "messages": []}));
}

#[test]
fn no_key_means_no_auth_header() {
    let t = Target {
        api_key: None,
        ..target("http://ollama:11434/v1", "llama3")
    };
    let p = chat_request(Family::OpenAi, &t, br#"{"messages":[]}"#, false).unwrap();
    assert!(p.headers.get(AUTHORIZATION).is_none());
    assert_eq!(serde_json::from_slice::<Value>(&p.body).unwrap()["model"], "llama3");
}

#[test]
fn azure_uses_deployment_urls_and_the_api_key_header() {
    let t = target("https://res.openai.azure.com/", "gpt4o-prod");
    let p = chat_request(Family::Azure, &t, br#"{"model":"x","messages":[]}"#, false).unwrap();
    assert_eq!(
        p.url,
        "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(p.headers["api-key"], "test-key-123");
    assert!(p.headers["api-key"].is_sensitive());
    assert!(p.headers.get(AUTHORIZATION).is_none());

    let t = Target {
        api_version: Some("2025-01-01-preview"),
        ..t
    };
    let p = embeddings_request(Family::Azure, &t, br#"{"model":"x","input":"a"}"#).unwrap();
    assert_eq!(
        p.url,
        "https://res.openai.azure.com/openai/deployments/gpt4o-prod/embeddings?api-version=2025-01-01-preview"
    );
}

#[test]
fn malformed_bodies_are_the_clients_fault() {
    let t = target("http://h/v1", "m");
    assert!(matches!(
        chat_request(Family::OpenAi, &t, b"{not json", false),
        Err(AdapterError::Invalid(_))
    ));
    assert!(matches!(
        chat_request(Family::Azure, &t, b"[1,2]", false),
        Err(AdapterError::Invalid(_))
    ));
}

#[test]
fn keys_that_cannot_be_headers_are_a_config_error_without_the_key() {
    let t = Target {
        api_key: Some("sk-bad\r\nkey"),
        ..target("http://h/v1", "m")
    };
    let err = chat_request(Family::OpenAi, &t, br#"{"messages":[]}"#, false).unwrap_err();
    assert!(matches!(err, AdapterError::Config(_)));
    assert!(!err.to_string().contains("sk-bad"));
}

#[test]
fn responses_pass_unchanged_and_report_usage() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":1024}}}"#;
    let (out, usage) = chat_response(Family::OpenAi, &target("h", "m"), body, "hint").unwrap();
    assert_eq!(&out[..], &body[..]);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 1117,
            output_tokens: 46,
            cached_input_tokens: 1024
        }
    );
    assert!(matches!(
        chat_response(Family::Azure, &target("h", "m"), b"<html>bad gateway</html>", "hint"),
        Err(AdapterError::Protocol(_))
    ));
}

#[test]
fn embeddings_pass_through_with_usage() {
    let p = embeddings_request(
        Family::OpenAi,
        &target("http://h/v1", "text-embedding-3-small"),
        br#"{"input":["a","b"],"model":"emb","encoding_format":"base64"}"#,
    )
    .unwrap();
    assert_eq!(p.url, "http://h/v1/embeddings");
    assert_eq!(
        &p.body[..],
        br#"{"input":["a","b"],"model":"text-embedding-3-small","encoding_format":"base64"}"#
    );
    let body = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAA"}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    let (out, usage) = embeddings_response(Family::OpenAi, &target("h", "m"), body).unwrap();
    assert_eq!(&out[..], &body[..]);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 8,
            output_tokens: 0,
            cached_input_tokens: 0
        }
    );
    assert_eq!(
        EmbeddingFormat::of_request(br#"{"input":"a","encoding_format":"base64"}"#),
        EmbeddingFormat::Base64
    );
    assert_eq!(EmbeddingFormat::of_request(br#"{"input":"a"}"#), EmbeddingFormat::Float);
}
