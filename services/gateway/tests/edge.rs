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
        ("/v1/admin/pricing/{model}", "put"),
        ("/v1/admin/providers", "get"),
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
    // Audio prices are decimal strings, optional in a price update.
    for schema in ["Price", "PriceUpdate"] {
        for field in ["per_million_characters", "per_minute_audio"] {
            let property = &doc["components"]["schemas"][schema]["properties"][field];
            assert!(property.to_string().contains("string"), "{schema}.{field}: {property}");
            let required = doc["components"]["schemas"][schema]["required"].to_string();
            assert!(!required.contains(field), "{schema}.{field} is optional: {required}");
        }
    }
    let page = http.get(url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger"));

    // Security headers on errors too; strict CSP for the API, a looser one for /docs.
    let resp = http.get(url("/v1/models")).send().await.unwrap();
    assert_eq!(
        resp.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    assert!(!resp.headers().contains_key("server"));
    assert!(!resp.headers().contains_key("strict-transport-security"));
    let page = http.get(url("/docs/")).send().await.unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );

    // JSON is compressed on request (gzip, br); a bad query string is a 400 in OpenAI's shape.
    let resp = http
        .get(url("/openapi.json"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "br");
    let resp = http
        .get(url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");

    // An unsupported Content-Encoding is a 415 in OpenAI's shape.
    let resp = http
        .post(url("/v1/auth/login"))
        .header("content-encoding", "compress")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp, 415).await["code"], "unsupported_content_encoding");

    // The Authorization header never reaches the logs.
    assert!(!gw.logs().contains("ofk_whatever"));
}

#[tokio::test]
async fn cors_answers_allowed_origins_only_and_production_refuses_a_wildcard() {
    let (a, b, r) = (closed(), closed(), closed());
    let gw = oneflow_test_support::spawn(
        "oneflow-gateway",
        &["--listen", "127.0.0.1:0"],
        &[
            ("ONEFLOW__AUTH__URL", a.as_str()),
            ("ONEFLOW__BILLING__URL", b.as_str()),
            ("ONEFLOW__ROUTER__URL", r.as_str()),
            ("ONEFLOW__EDGE__CORS_ALLOWED_ORIGINS", "[\"https://app.example.com\"]"),
            ("ONEFLOW__EDGE__HSTS", "true"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("{}/v1/chat/completions", gw.url()))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(
        ok.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));

    let status = std::process::Command::new(oneflow_test_support::bin("oneflow-gateway"))
        .env("ONEFLOW__MODE", "production")
        .env("ONEFLOW__EDGE__CORS_ALLOWED_ORIGINS", "[\"*\"]")
        .env("ONEFLOW__SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("refuses `*`"));
}

#[tokio::test]
async fn terminates_tls_itself_when_given_a_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let (a, b, r) = (closed(), closed(), closed());
    let gw = oneflow_test_support::spawn(
        "oneflow-gateway",
        &["--listen", "127.0.0.1:0"],
        &[
            ("ONEFLOW__AUTH__URL", a.as_str()),
            ("ONEFLOW__BILLING__URL", b.as_str()),
            ("ONEFLOW__ROUTER__URL", r.as_str()),
            ("ONEFLOW__TLS__CERT_FILE", cert_path.to_str().unwrap()),
            ("ONEFLOW__TLS__KEY_FILE", key_path.to_str().unwrap()),
        ],
    )
    .await;
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = https
        .get(format!("https://localhost:{}/healthz", gw.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let resp = https
        .get(format!("https://localhost:{}/v1/models", gw.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp, 401).await["code"], "invalid_api_key");
    // Plain HTTP on the TLS port gets no answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/healthz", gw.addr.port()))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );
}
