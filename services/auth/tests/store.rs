//! The auth store and binary against real databases: SQLite always,
//! PostgreSQL too (required under CI=true).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]
use oneflow_auth::{AuthGrpc, AuthStore, Role, Scope};
use oneflow_proto::auth::v1 as pb;
use oneflow_proto::auth::v1::auth_service_server::AuthService;
use oneflow_runtime::{DatabaseConfig, Secret};

async fn stores() -> Vec<(&'static str, AuthStore)> {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let mut urls = vec![("sqlite", format!("sqlite://{}", dir.path().join("a.db").display()))];
    if let Some(pg) = oneflow_test_support::fresh_postgres().await {
        urls.push(("postgres", pg));
    }
    let mut out = Vec::new();
    for (name, url) in urls {
        let store = AuthStore::connect(&DatabaseConfig {
            url: Secret::new(url),
            ..DatabaseConfig::default()
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap(); // idempotent
        out.push((name, store));
    }
    out
}

#[tokio::test]
async fn bootstrap_creates_one_admin_whose_key_validates() {
    for (name, store) in stores().await {
        let admin = store
            .bootstrap_admin("Admin@Example.COM ")
            .await
            .unwrap()
            .expect("created");
        assert!(
            store.bootstrap_admin("other@example.com").await.unwrap().is_none(),
            "{name}: second admin"
        );
        let p = store.principal_for_key(&admin.secret, 0).await.unwrap().expect("valid");
        assert_eq!(p.user_id, admin.user_id);
        assert_eq!(p.role, Role::Admin);
        assert_eq!(p.scopes, vec![Scope::Inference, Scope::Admin]);
        assert!(admin.secret.starts_with(&p.key_prefix));
        assert!(
            store.principal_for_key("ofk_wrong", 0).await.unwrap().is_none(),
            "{name}"
        );

        let config = oneflow_auth::AuthConfig {
            principal_cache_ttl: std::time::Duration::from_secs(7),
            ..oneflow_auth::AuthConfig::default()
        };
        let grpc = AuthGrpc::new(
            store.clone(),
            &config,
            oneflow_auth::Clock::system(),
            oneflow_auth::Revocations::new(None),
        );
        let ok = grpc
            .validate_credential(tonic::Request::new(pb::ValidateCredentialRequest {
                credential: admin.secret.clone(),
                request_id: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ok.cache_ttl_millis, 7000);
        assert_eq!(ok.key_id, admin.key_id);
        for bad in [
            "",
            "   ",
            "Bearer x",
            &"ofk_".repeat(2000),
            &admin.secret[..admin.secret.len() - 1],
        ] {
            let status = grpc
                .validate_credential(tonic::Request::new(pb::ValidateCredentialRequest {
                    credential: bad.to_owned(),
                    request_id: String::new(),
                }))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::InvalidArgument
                ),
                "{name}: {bad:?} -> {status:?}"
            );
            assert!(!status.message().contains(&admin.secret));
        }
    }
}

#[tokio::test]
async fn check_config_redacts_secrets_and_rejects_unknown_keys() {
    let out = oneflow_test_support::run(
        "oneflow-auth",
        &["check-config"],
        &[
            ("ONEFLOW__JWT__SECRET", "very-secret-signing-key-123"),
            ("ONEFLOW__DATABASE__URL", "postgres://u:pw-xyz@db/auth"),
        ],
    )
    .await;
    assert!(
        !out.contains("very-secret-signing-key-123") && !out.contains("pw-xyz"),
        "{out}"
    );
    assert!(out.contains("[redacted]"));
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["principal_cache_ttl"], "1m");

    let bin = oneflow_test_support::bin("oneflow-auth");
    let failed = std::process::Command::new(bin)
        .arg("check-config")
        .env("ONEFLOW__NO_SUCH_KEY", "1")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no_such_key"));
}
