//! Graceful shutdown: SIGTERM during a stream lets the stream finish, refuses
//! new connections, and exits 0 within the drain bound.
use std::time::Duration;

use serde_json::json;

use crate::client::chat;

#[tokio::test]
async fn sigterm_drains_an_in_flight_stream_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let data_arg = format!("data_dir={}", dir.path().join("data").display());
    let mut svc = oneflow_test_support::spawn(
        "oneflow",
        &[
            "--listen",
            "127.0.0.1:0",
            "--set",
            &data_arg,
            "--set",
            "server.shutdown_grace=20s",
        ],
        &[],
    )
    .await;
    let key = std::fs::read_to_string(dir.path().join("data/admin.key"))
        .unwrap()
        .trim()
        .to_owned();

    let mut req = chat("mock-gpt", "one two three four five six seven eight nine ten");
    req["stream"] = json!(true);
    req["metadata"] = json!({ "mock_chunk_interval_ms": "150" });
    let mut resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", svc.url()))
        .bearer_auth(&key)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut received = String::from_utf8(resp.chunk().await.unwrap().unwrap().to_vec()).unwrap();

    svc.terminate();

    // New connections are refused once the listener has closed.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(svc.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener still accepts connections after SIGTERM");

    // The in-flight stream still completes.
    while let Some(chunk) = resp.chunk().await.unwrap() {
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        received.ends_with("data: [DONE]\n\n"),
        "stream did not complete: {received}"
    );
    assert!(received.contains("ten"));

    let status = tokio::time::timeout(Duration::from_secs(30), svc.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}; logs:\n{}", svc.logs());
    assert!(svc.logs().contains("drained"), "{}", svc.logs());
}
