//! The gateway binary's edge behaviour when its backends are down: probes,
//! OpenAI-shaped errors with the right status (never a 500), headers on errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]
use serde_json::Value;

fn closed() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

async fn error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert!(resp.headers().contains_key("x-request-id"));
    let v: Value = resp.json().await.unwrap();
    for field in ["message", "type", "param", "code"] {
        assert!(v["error"].get(field).is_some(), "missing {field}: {v}");
    }
    v["error"].clone()
}

#[tokio::test]
async fn backends_down_degrade_to_clear_errors() {
    let (a, b, r) = (closed(), closed(), closed());
    let gw = oneflow_test_support::spawn(
        "oneflow-gateway",
        &["--listen", "127.0.0.1:0"],
        &[
            ("ONEFLOW__AUTH__URL", a.as_str()),
            ("ONEFLOW__BILLING__URL", b.as_str()),
            ("ONEFLOW__ROUTER__URL", r.as_str()),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", gw.url());

    assert_eq!(http.get(url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url("/readyz")).send().await.unwrap().status(), 503);
    let metrics = http.get(url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("oneflow_http_requests_total"), "{metrics}");

    // No credential: 401 without any backend.
    let e = error(http.post(url("/v1/chat/completions")).send().await.unwrap(), 401).await;
    assert_eq!(e["code"], "invalid_api_key");
    // A credential while auth is down: 503, not 500, and no internal detail.
    let resp = http
        .get(url("/v1/models"))
        .bearer_auth("ofk_whatever")
        .send()
        .await
        .unwrap();
    let e = error(resp, 503).await;
    assert!(!e["message"].as_str().unwrap().contains("127.0.0.1"));

    // Unknown route and wrong method, in OpenAI's shape; a supplied request id is echoed.
    let resp = http
        .get(url("/v2/nothing"))
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-123");
    assert_eq!(error(resp, 404).await["code"], "unknown_url");
    error(
        http.get(url("/v1/chat/completions"))
            .bearer_auth("k")
            .send()
            .await
            .unwrap(),
        405,
    )
    .await;

    // The OpenAPI document covers every public route, and /docs renders it.
    let doc: Value = http
        .get(url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (path, method) in [
        ("/v1/chat/completions", "post"),
        ("/v1/embeddings", "post"),
        ("/v1/models", "get"),
        ("/v1/models/{id}", "get"),
        ("/v1/auth/register", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/auth/me", "get"),
        ("/v1/keys", "post"),
        ("/v1/keys", "get"),
        ("/v1/keys/{id}/rotate", "post"),
        ("/v1/keys/{id}", "delete"),
        ("/v1/admin/users", "get"),
        ("/v1/admin/users", "post"),
        ("/v1/admin/users/{id}", "patch"),
        ("/v1/admin/audit", "get"),
        ("/v1/admin/users/{id}/credits", "post"),
        ("/v1/billing/balance", "get"),
        ("/v1/billing/usage", "get"),
        ("/v1/billing/pricing", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
    }
    assert_eq!(
        doc["components"]["schemas"]["ErrorObject"]["properties"]["type"]["type"],
        "string"
    );
    let page = http.get(url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger"));

    // The Authorization header never reaches the logs.
    assert!(!gw.logs().contains("ofk_whatever"));
}
