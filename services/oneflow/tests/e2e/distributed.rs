//! The deployed shape: gateway, auth, billing, router and the mock provider as
//! separate processes, auth and billing on their own PostgreSQL databases,
//! billing's counters in Redis.
use serde_json::{Value, json};

use crate::client::{Api, chat, error_of};

pub(crate) const ROUTER_TOML: &str = r#"
[[providers]]
name = "mock"
kind = "openai_compatible"
base_url = "MOCK_URL/v1"

[[deployments]]
name = "mock-a"
provider = "mock"
upstream_model = "mock-gpt"

[[models]]
name = "mock-gpt"
operation = "chat"
deployments = ["mock-a"]
context_window = 128000
max_output_tokens = 1000
"#;

pub(crate) const BILLING_TOML: &str = r#"
[pricing]
credits_per_usd = "100"

[[pricing.models]]
model = "mock-gpt"
input_per_million = "0.15"
output_per_million = "0.60"
"#;

async fn ledger(url: &str, user: &str) -> (i64, i64, i64) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    // One statement: one consistent snapshot while settlements land.
    let row: (Option<i64>, i64, i64) = sqlx::query_as(
        "SELECT (SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_entries WHERE user_id = $1), \
         (SELECT balance FROM accounts WHERE user_id = $1), (SELECT COUNT(*) FROM usage_records WHERE user_id = $1)",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    (row.0.unwrap_or(0), row.1, row.2)
}

#[tokio::test]
async fn four_processes_on_postgres_and_redis() {
    let (Some(auth_db), Some(billing_db), Some(redis)) = (
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::redis().await,
    ) else {
        return;
    };
    let prefix = oneflow_test_support::unique_prefix();
    let dir = tempfile::tempdir().unwrap();
    let listen = ["--listen", "127.0.0.1:0"];

    let mock = oneflow_test_support::spawn("oneflow-mock-provider", &listen, &[]).await;

    let auth_env = [
        ("ONEFLOW__DATABASE__URL", auth_db.as_str()),
        ("ONEFLOW__JWT__SECRET", "e2e-signing-secret-of-at-least-32-bytes"),
    ];
    let admin: Value =
        serde_json::from_str(&oneflow_test_support::run("oneflow-auth", &["bootstrap-admin"], &auth_env).await)
            .unwrap();
    let key = admin["api_key"].as_str().unwrap().to_owned();
    let user = admin["user_id"].as_str().unwrap().to_owned();

    let billing_file = dir.path().join("billing.toml");
    std::fs::write(&billing_file, BILLING_TOML).unwrap();
    let billing_cfg = billing_file.to_str().unwrap();
    let billing_env = [
        ("ONEFLOW__DATABASE__URL", billing_db.as_str()),
        ("ONEFLOW__REDIS__URL", redis.as_str()),
        ("ONEFLOW__REDIS__KEY_PREFIX", prefix.as_str()),
    ];
    oneflow_test_support::run(
        "oneflow-billing",
        &["--config", billing_cfg, "grant", "--user", &user, "--amount", "10"],
        &billing_env,
    )
    .await;

    let router_file = dir.path().join("router.toml");
    std::fs::write(&router_file, ROUTER_TOML.replace("MOCK_URL", &mock.url())).unwrap();

    let auth = oneflow_test_support::spawn("oneflow-auth", &listen, &auth_env).await;
    // A second auth replica on the same database: revocations must cross replicas.
    let auth2 = oneflow_test_support::spawn("oneflow-auth", &listen, &auth_env).await;
    let billing = oneflow_test_support::spawn(
        "oneflow-billing",
        &["--config", billing_cfg, "--listen", "127.0.0.1:0"],
        &billing_env,
    )
    .await;
    let router = oneflow_test_support::spawn(
        "oneflow-router",
        &["--config", router_file.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[],
    )
    .await;
    let (a, b, r) = (auth.url(), billing.url(), router.url());
    let gateway = oneflow_test_support::spawn(
        "oneflow-gateway",
        &listen,
        &[
            ("ONEFLOW__AUTH__URL", a.as_str()),
            ("ONEFLOW__BILLING__URL", b.as_str()),
            ("ONEFLOW__ROUTER__URL", r.as_str()),
            ("ONEFLOW__IDEMPOTENCY__REDIS__URL", redis.as_str()),
            ("ONEFLOW__IDEMPOTENCY__REDIS__KEY_PREFIX", prefix.as_str()),
        ],
    )
    .await;
    let a2 = auth2.url();
    let gateway2 = oneflow_test_support::spawn(
        "oneflow-gateway",
        &listen,
        &[
            ("ONEFLOW__AUTH__URL", a2.as_str()),
            ("ONEFLOW__BILLING__URL", b.as_str()),
            ("ONEFLOW__ROUTER__URL", r.as_str()),
            ("ONEFLOW__IDEMPOTENCY__REDIS__URL", redis.as_str()),
            ("ONEFLOW__IDEMPOTENCY__REDIS__KEY_PREFIX", prefix.as_str()),
        ],
    )
    .await;
    let api = Api::new(gateway.url(), key.clone());

    let resp = reqwest::get(format!("{}/readyz", gateway.url())).await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let resp = api
        .post("/v1/chat/completions", &chat("mock-gpt", "through four processes"))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("through four processes")
    );

    let mut req = chat("mock-gpt", "streamed through four processes");
    req["stream"] = json!(true);
    req["stream_options"] = json!({ "include_usage": true });
    let events = api.stream(&req).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    let models: Value = api.get("/v1/models").await.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "mock-gpt");

    // No key, and a worst case beyond the balance.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/models", gateway.url()))
        .send()
        .await
        .unwrap();
    error_of(resp, 401).await;
    let mut req = chat("mock-gpt", "too expensive");
    req["max_tokens"] = json!(100_000_000u64);
    let e = error_of(api.post("/v1/chat/completions", &req).await, 402).await;
    assert_eq!(e["code"], "insufficient_credits");

    // The two successful requests are charged once each, in PostgreSQL.
    let mut seen = (0, 0, 0);
    for _ in 0..100 {
        seen = ledger(&billing_db, &user).await;
        if seen.2 >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (sum, balance, records) = seen;
    assert_eq!(records, 2);
    assert_eq!(sum, balance);
    assert!(balance < 1000 && balance > 0, "balance {balance}");

    // Trace context reached the upstream.
    let stats: Value = reqwest::get(format!("{}/mock/stats", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["last_traceparent"].as_str().is_some_and(|t| t.starts_with("00-")),
        "{stats}"
    );

    // --- Accounts, keys and revocation across replicas ---
    let http = reqwest::Client::new();

    // An Idempotency-Key used on gateway 1 replays on gateway 2 (shared Redis).
    let first = http
        .post(format!("{}/v1/chat/completions", gateway.url()))
        .bearer_auth(&key)
        .header("idempotency-key", "across-replicas")
        .json(&chat("mock-gpt", "once across replicas"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let second = http
        .post(format!("{}/v1/chat/completions", gateway2.url()))
        .bearer_auth(&key)
        .header("idempotency-key", "across-replicas")
        .json(&chat("mock-gpt", "once across replicas"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let password = "a long enough passphrase";
    let resp = http
        .post(format!("{}/v1/auth/register", gateway.url()))
        .json(&json!({ "email": "user@example.com", "password": "too short" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp, 400).await["param"], "password");
    let resp = http
        .post(format!("{}/v1/auth/register", gateway.url()))
        .json(&json!({ "email": "User@Example.com", "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = http
        .post(format!("{}/v1/auth/register", gateway.url()))
        .json(&json!({ "email": "user@example.com", "password": password }))
        .send()
        .await
        .unwrap();
    error_of(resp, 409).await;
    let tokens: Value = http
        .post(format!("{}/v1/auth/login", gateway.url()))
        .json(&json!({ "email": "user@example.com", "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let me: Value = http
        .get(format!("{}/v1/auth/me", gateway2.url()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "user@example.com");
    assert_eq!(me["role"], "user");

    // A non-admin gets 403 on admin routes; an unsigned token gets 401.
    let resp = http
        .get(format!("{}/v1/admin/users", gateway.url()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    error_of(resp, 403).await;
    let forged = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        access.split('.').nth(1).unwrap()
    );
    error_of(
        http.get(format!("{}/v1/auth/me", gateway.url()))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;

    // Refresh rotates; the spent token is refused.
    let resp = http
        .post(format!("{}/v1/auth/refresh", gateway.url()))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(format!("{}/v1/auth/refresh", gateway.url()))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    error_of(resp, 401).await;

    // A key made through gateway 1 works on gateway 2 (and is cached there) ...
    let made: Value = http
        .post(format!("{}/v1/keys", gateway.url()))
        .bearer_auth(&access)
        .json(&json!({ "name": "laptop" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_key = made["key"].as_str().unwrap().to_owned();
    let key_id = made["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        if gateway2.logs().contains("revocation stream connected") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gateway2.logs().contains("revocation stream connected"));
    for _ in 0..2 {
        assert_eq!(
            http.get(format!("{}/v1/models", gateway2.url()))
                .bearer_auth(&user_key)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // ... an inference-only key cannot mint keys ...
    let resp = http
        .post(format!("{}/v1/keys", gateway2.url()))
        .bearer_auth(&user_key)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    error_of(resp, 403).await;
    // ... and once revoked through gateway 1 (auth replica 1), gateway 2
    // (auth replica 2) refuses it within a second.
    let resp = http
        .delete(format!("{}/v1/keys/{key_id}", gateway.url()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let revoked_at = std::time::Instant::now();
    let mut refused = false;
    while revoked_at.elapsed() < std::time::Duration::from_secs(1) {
        let status = http
            .get(format!("{}/v1/models", gateway2.url()))
            .bearer_auth(&user_key)
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(refused, "gateway 2 still accepted the revoked key after 1 s");

    // The admin (bootstrap key) sees the audit trail.
    let audit: Value = http
        .get(format!("{}/v1/admin/audit", gateway.url()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "user.register",
        "login.success",
        "refresh.reuse",
        "key.create",
        "key.revoke",
    ] {
        assert!(actions.contains(&expected), "{expected} missing: {actions:?}");
    }

    // No secret reached any log.
    for svc in [&gateway, &gateway2, &auth, &auth2, &billing, &router] {
        let logs = svc.logs();
        for secret in [
            key.as_str(),
            user_key.as_str(),
            password,
            access.as_str(),
            refresh.as_str(),
        ] {
            assert!(!logs.contains(secret), "a service logged a secret");
        }
    }
}
