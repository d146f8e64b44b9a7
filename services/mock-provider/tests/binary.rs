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

/// Speech leaves the process as a chunked stream a relay can forward piece by
/// piece, and a transcription upload works over a real connection.
#[tokio::test]
async fn audio_routes_stream_and_accept_uploads_over_http() {
    let svc = oneflow_test_support::spawn("oneflow-mock-provider", &["--listen", "127.0.0.1:0"], &[]).await;
    let client = reqwest::Client::new();
    let speech = serde_json::json!({"model": "tts-1", "input": "Hello from the mock provider.", "voice": "alloy",
        "response_format": "wav"});
    let mut response = client
        .post(format!("{}/v1/audio/speech", svc.url()))
        .header("x-mock-chunk-interval-ms", "30")
        .json(&speech)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut chunks = 0;
    let mut audio = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks += 1;
        audio.extend_from_slice(&chunk);
    }
    assert!(chunks >= 4, "{chunks} chunks");
    assert_eq!(&audio[..4], b"RIFF");

    let mut cut = client
        .post(format!("{}/v1/audio/speech", svc.url()))
        .header("x-mock-cut-after", "1")
        .json(&speech)
        .send()
        .await
        .unwrap();
    assert_eq!(cut.status(), 200);
    let mut outcome = Ok(());
    while outcome.is_ok() {
        match cut.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(err) => outcome = Err(err),
        }
    }
    assert!(outcome.is_err(), "a cut speech body ends in a transport error");

    // The WAV just received, uploaded back as multipart.
    let boundary = "binary-test-boundary";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\ntext\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"speech.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&audio);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let text = client
        .post(format!("{}/v1/audio/transcriptions", svc.url()))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .header("x-mock-transcript", "Hello from the mock provider.")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    assert_eq!(text.text().await.unwrap(), "Hello from the mock provider.\n");

    let stats: serde_json::Value = reqwest::get(format!("{}/mock/stats", svc.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["speech_requests"], 2);
    assert_eq!(stats["transcription_requests"], 1);
    assert!(stats["audio_bytes_served"].as_u64().unwrap() > audio.len() as u64);
}

/// Polly streams its audio over a real connection, and the Google token
/// endpoint is reachable with a form body; the stats name the voice.
#[tokio::test]
async fn polly_and_google_token_over_http() {
    let svc = oneflow_test_support::spawn("oneflow-mock-provider", &["--listen", "127.0.0.1:0"], &[]).await;
    let client = reqwest::Client::new();
    let mut response = client
        .post(format!("{}/v1/speech", svc.url()))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/polly/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
        )
        .header("x-amz-date", "20250101T000000Z")
        .json(&serde_json::json!({"OutputFormat": "mp3", "Text": "Hello from Polly.", "VoiceId": "Joanna"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.headers()["x-amzn-requestcharacters"], "17");
    let mut chunks = 0;
    while response.chunk().await.unwrap().is_some() {
        chunks += 1;
    }
    assert!(chunks >= 4, "{chunks} chunks");

    let token = client
        .post(format!("{}/token", svc.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400);
    let error: serde_json::Value = token.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");

    let stats: serde_json::Value = reqwest::get(format!("{}/mock/stats", svc.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["polly_requests"], 1);
    assert_eq!(stats["google_token_requests"], 1);
    assert_eq!(stats["calls_by_model"]["polly/Joanna"], 1);
}
