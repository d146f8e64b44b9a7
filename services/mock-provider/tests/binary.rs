//! The mock provider as a process: it serves, and its `health-check`
//! subcommand reports health through the exit code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]
#[tokio::test]
async fn health_check_subcommand_reflects_the_server() {
    let svc = oneflow_test_support::spawn("oneflow-mock-provider", &["--listen", "127.0.0.1:0"], &[]).await;
    let url = format!("{}/healthz", svc.url());
    oneflow_test_support::run("oneflow-mock-provider", &["health-check", "--url", &url], &[]).await;
    let models: serde_json::Value = reqwest::get(format!("{}/v1/models", svc.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");

    // The native dialects answer over real HTTP too.
    let client = reqwest::Client::new();
    let message: serde_json::Value = client
        .post(format!("{}/v1/messages", svc.url()))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["content"][0]["text"], "Mock reply to: hi");
    let stream = client
        .post(format!("{}/model/mock.model-v1%3A0/converse-stream", svc.url()))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/bedrock/aws4_request",
        )
        .header("x-amz-date", "20250101T000000Z")
        .json(&serde_json::json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "application/vnd.amazon.eventstream");
    let frames = stream.bytes().await.unwrap();
    let first_len = u32::from_be_bytes(frames[..4].try_into().unwrap()) as usize;
    assert!(first_len < frames.len());
    let sse = client
        .post(format!(
            "{}/v1beta/models/gemini-mock:streamGenerateContent?alt=sse",
            svc.url()
        ))
        .header("x-goog-api-key", "k")
        .json(&serde_json::json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sse.starts_with("data: {") && sse.contains("\"finishReason\":\"STOP\""),
        "{sse}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let status = std::process::Command::new(oneflow_test_support::bin("oneflow-mock-provider"))
        .args(["health-check", "--url", &format!("http://{closed}/healthz")])
        .status()
        .unwrap();
    assert!(!status.success());
}
