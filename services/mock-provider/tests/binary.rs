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
