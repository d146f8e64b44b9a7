//! OpenAI chat request → signed Converse request, against fixture pairs.

use std::time::{Duration, SystemTime};

use oneflow_aws::bedrock::{Target, chat_request};
use oneflow_aws::{AwsError, Credentials};
use serde_json::{Value, json};

use crate::fixture;

fn target() -> Target<'static> {
    Target {
        region: "us-east-1",
        endpoint: None,
        model_id: "anthropic.claude-3-5-haiku-20241022-v1:0",
        default_max_tokens: 1024,
    }
}

fn creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn translate(request: &[u8]) -> Result<Value, AwsError> {
    let prepared = chat_request(&target(), request, false, &creds(), now())?;
    Ok(serde_json::from_slice(&prepared.body).unwrap())
}

#[test]
fn fixtures_translate_exactly() {
    let names = [
        "system_multi_turn",
        "stop_max_tokens",
        "tools",
        "tool_results",
        "image_base64",
        "json_schema",
        "merge_alternation",
    ];
    for name in names {
        let request = fixture::bytes(&format!("requests/{name}.openai.json"));
        let expected = fixture::json(&format!("requests/{name}.converse.json"));
        let got = translate(&request).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            got,
            expected,
            "{name}:\n{}",
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
}

#[test]
fn request_is_signed_for_bedrock_and_the_right_operation() {
    let body = fixture::bytes("requests/stop_max_tokens.openai.json");
    let plain = chat_request(&target(), &body, false, &creds(), now()).unwrap();
    assert_eq!(
        plain.url,
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(plain.headers["content-type"], "application/json");
    assert_eq!(plain.headers["accept"], "application/json");
    assert_eq!(plain.headers["x-amz-date"], "20231114T221320Z");
    let auth = plain.headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature="),
        "{auth}"
    );

    let streaming = chat_request(&target(), &body, true, &creds(), now()).unwrap();
    assert!(streaming.url.ends_with("/converse-stream"), "{}", streaming.url);
    assert_eq!(streaming.headers["accept"], "application/vnd.amazon.eventstream");
    assert_ne!(streaming.headers["authorization"], plain.headers["authorization"]);
    assert_eq!(streaming.body, plain.body);
}

#[test]
fn endpoint_override_and_session_token() {
    let t = Target {
        endpoint: Some("http://127.0.0.1:4010"),
        ..target()
    };
    let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("session-token".into()));
    let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let prepared = chat_request(&t, body, false, &creds, now()).unwrap();
    assert!(
        prepared.url.starts_with("http://127.0.0.1:4010/model/"),
        "{}",
        prepared.url
    );
    assert_eq!(prepared.headers["x-amz-security-token"], "session-token");
    assert!(!format!("{prepared:?}").contains("session-token"));
}

#[test]
fn default_max_tokens_zero_leaves_it_to_the_model() {
    let t = Target {
        default_max_tokens: 0,
        ..target()
    };
    let prepared = chat_request(
        &t,
        br#"{"messages":[{"role":"user","content":"hi"}]}"#,
        false,
        &creds(),
        now(),
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&prepared.body).unwrap();
    assert!(body.get("inferenceConfig").is_none(), "{body}");
}

fn rejection(request: Value) -> String {
    match translate(&serde_json::to_vec(&request).unwrap()) {
        Err(AwsError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn http_image_urls_are_rejected_naming_the_field() {
    let message = rejection(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]}]}));
    assert!(message.contains("messages[0].content[1].image_url.url"), "{message}");
}

#[test]
fn unsupported_image_types_and_parts_are_rejected() {
    let message = rejection(json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}
    ]}]}));
    assert!(message.contains("image/bmp"), "{message}");
    let message = rejection(json!({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    ]}]}));
    assert!(
        message.contains("messages[0].content[0]") && message.contains("input_audio"),
        "{message}"
    );
}

#[test]
fn json_mode_with_tools_is_rejected() {
    let message = rejection(json!({
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {"type": "json_object"}
    }));
    assert!(message.contains("response_format"), "{message}");
}

#[test]
fn json_object_forces_the_json_tool_with_an_object_schema() {
    let body =
        translate(br#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#).unwrap();
    assert_eq!(
        body.pointer("/toolConfig/tools/0/toolSpec/inputSchema/json"),
        Some(&json!({"type": "object"}))
    );
    assert_eq!(
        body.pointer("/toolConfig/toolChoice/tool/name"),
        Some(&json!("oneflow_json_response"))
    );
}

#[test]
fn garbage_bodies_are_client_errors() {
    for body in [
        &b"not json"[..],
        b"[]",
        br#"{"messages":[]}"#,
        br#"{"messages":[{"role":"wizard","content":"x"}]}"#,
    ] {
        assert!(
            matches!(translate(body), Err(AwsError::Invalid(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
