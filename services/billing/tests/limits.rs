//! Rate limits and quotas against real backends: SQLite + memory always,
//! PostgreSQL + Redis (required under CI=true), including two billing replicas
//! sharing Redis and Redis becoming unreachable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]

use oneflow_billing::{BillingConfig, BillingGrpc, EntryKind, LimitsConfig, ModelPrice, PricingConfig};
use oneflow_proto::billing::v1 as pb;
use oneflow_proto::billing::v1::billing_service_server::BillingService;
use oneflow_proto::common::v1::{KeyLimits, Operation, Usage};
use oneflow_runtime::Secret;
use rust_decimal::Decimal;
use tonic::{Code, Request};

/// One token costs one credit.
fn config() -> BillingConfig {
    BillingConfig {
        pricing: PricingConfig {
            credits_per_usd: Decimal::from(100),
            models: vec![
                ModelPrice {
                    model: "m".into(),
                    input_per_million: Decimal::from(10_000),
                    output_per_million: Decimal::from(10_000),
                    cached_input_per_million: None,
                    ..ModelPrice::default()
                },
                // One character costs one credit, and so does one second of audio.
                ModelPrice {
                    model: "audio".into(),
                    per_million_characters: Some(Decimal::from(10_000)),
                    per_minute_audio: Some(Decimal::new(6, 1)),
                    ..ModelPrice::default()
                },
            ],
        },
        limits: LimitsConfig {
            key_requests_per_minute: Some(60),
            key_requests_per_hour: Some(1000),
            ..LimitsConfig::default()
        },
        ..BillingConfig::default()
    }
}

/// (name, config) pairs: SQLite + memory, and PostgreSQL + Redis.
async fn configs() -> Vec<(&'static str, BillingConfig)> {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let mut sqlite = config();
    sqlite.database.url = Secret::new(format!("sqlite://{}", dir.path().join("l.db").display()));
    let mut out = vec![("sqlite+memory", sqlite)];
    if let (Some(pg), Some(redis)) = (
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::redis().await,
    ) {
        let mut cfg = config();
        cfg.database.url = Secret::new(pg);
        cfg.redis.url = Secret::new(redis);
        cfg.redis.key_prefix = oneflow_test_support::unique_prefix();
        out.push(("postgres+redis", cfg));
    }
    out
}

fn authorize(user: &str, key: &str, id: &str, tokens: u64, limits: Option<KeyLimits>) -> Request<pb::AuthorizeRequest> {
    Request::new(pb::AuthorizeRequest {
        request_id: id.into(),
        user_id: user.into(),
        key_id: key.into(),
        model: "m".into(),
        operation: Operation::Chat.into(),
        worst_case: Some(Usage {
            input_tokens: tokens,
            ..Usage::default()
        }),
        key_limits: limits,
    })
}

fn settle(user: &str, key: &str, id: &str, tokens: u64) -> Request<pb::SettleRequest> {
    Request::new(pb::SettleRequest {
        request_id: id.into(),
        reservation_id: id.into(),
        user_id: user.into(),
        key_id: key.into(),
        model: "m".into(),
        operation: Operation::Chat.into(),
        usage: Some(Usage {
            input_tokens: tokens,
            ..Usage::default()
        }),
        status: 200,
        ..pb::SettleRequest::default()
    })
}

fn audio_usage(characters: u64, audio_millis: u64) -> Usage {
    Usage {
        characters,
        audio_millis,
        ..Usage::default()
    }
}

fn authorize_audio(user: &str, key: &str, id: &str, usage: Usage, limits: &KeyLimits) -> Request<pb::AuthorizeRequest> {
    Request::new(pb::AuthorizeRequest {
        request_id: id.into(),
        user_id: user.into(),
        key_id: key.into(),
        model: "audio".into(),
        operation: Operation::Speech.into(),
        worst_case: Some(usage),
        key_limits: Some(limits.clone()),
    })
}

fn settle_audio(user: &str, key: &str, id: &str, usage: Usage) -> Request<pb::SettleRequest> {
    Request::new(pb::SettleRequest {
        request_id: id.into(),
        reservation_id: id.into(),
        user_id: user.into(),
        key_id: key.into(),
        model: "audio".into(),
        operation: Operation::Speech.into(),
        usage: Some(usage),
        status: 200,
        ..pb::SettleRequest::default()
    })
}

async fn funded(billing: &BillingGrpc) -> String {
    let user = uuid::Uuid::new_v4().to_string();
    billing
        .grant(&user, 10_000_000, EntryKind::Grant, &format!("g:{user}"), None, None)
        .await
        .unwrap();
    user
}

fn refusal(status: &tonic::Status) -> (String, u64) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let info = oneflow_proto::error_info(status).unwrap();
    (info.code, info.retry_after_millis)
}

#[tokio::test]
async fn a_key_gets_exactly_its_requests_per_minute_with_honest_headers() {
    oneflow_test_support::away_from_minute_boundary(std::time::Duration::from_secs(15)).await;
    for (name, cfg) in configs().await {
        let billing = oneflow_billing::grpc(&cfg).await.unwrap();
        let user = funded(&billing).await;
        let mut last_remaining = u64::MAX;
        for i in 0..60 {
            let resp = billing
                .authorize(authorize(&user, "k1", &format!("{user}-{i}"), 1, None))
                .await
                .unwrap()
                .into_inner();
            let window = resp.requests.unwrap();
            assert_eq!(window.limit, 60, "{name}");
            assert!(window.remaining < last_remaining);
            assert!(window.reset_millis > 0 && window.reset_millis <= 60_000);
            last_remaining = window.remaining;
        }
        assert_eq!(last_remaining, 0, "{name}");
        let (code, retry) = refusal(
            &billing
                .authorize(authorize(&user, "k1", "over", 1, None))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, "rate_limit_exceeded", "{name}");
        assert!(retry > 0 && retry <= 60_000, "{name}: {retry}");
        // Another key of the same user has its own window.
        billing
            .authorize(authorize(&user, "k2", "other-key", 1, None))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn quotas_per_key_refuse_with_quota_exceeded() {
    oneflow_test_support::away_from_minute_boundary(std::time::Duration::from_secs(15)).await;
    for (name, cfg) in configs().await {
        let billing = oneflow_billing::grpc(&cfg).await.unwrap();
        let user = funded(&billing).await;

        let daily = KeyLimits {
            requests_per_day: Some(3),
            ..KeyLimits::default()
        };
        for i in 0..3 {
            billing
                .authorize(authorize(&user, "kd", &format!("d{i}"), 1, Some(daily.clone())))
                .await
                .unwrap();
        }
        let (code, retry) = refusal(
            &billing
                .authorize(authorize(&user, "kd", "d3", 1, Some(daily)))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, "quota_exceeded", "{name}");
        assert!(retry <= 86_400_000);

        // Credits per month count reservations, corrected to the real charge.
        let monthly = KeyLimits {
            credits_per_month: Some("5".into()),
            ..KeyLimits::default()
        };
        billing
            .authorize(authorize(&user, "kc", "c1", 2, Some(monthly.clone())))
            .await
            .unwrap();
        billing
            .authorize(authorize(&user, "kc", "c2", 2, Some(monthly.clone())))
            .await
            .unwrap();
        let (code, _) = refusal(
            &billing
                .authorize(authorize(&user, "kc", "c3", 2, Some(monthly.clone())))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, "quota_exceeded", "{name}: 2.00 + 2.00 + 2.00 > 5.00");
        billing.settle(settle(&user, "kc", "c1", 1)).await.unwrap();
        // 1.00 charged + 2.00 held: another 2.00 fits exactly.
        billing
            .authorize(authorize(&user, "kc", "c4", 2, Some(monthly)))
            .await
            .unwrap();

        // Tokens per minute count real usage at settlement.
        let tpm = KeyLimits {
            tokens_per_minute: Some(10),
            ..KeyLimits::default()
        };
        billing
            .authorize(authorize(&user, "kt", "t1", 1, Some(tpm.clone())))
            .await
            .unwrap();
        billing.settle(settle(&user, "kt", "t1", 10)).await.unwrap();
        let (code, _) = refusal(
            &billing
                .authorize(authorize(&user, "kt", "t2", 1, Some(tpm)))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, "rate_limit_exceeded", "{name}");
    }
}

#[tokio::test]
async fn two_replicas_sharing_redis_allow_the_limit_in_total() {
    oneflow_test_support::away_from_minute_boundary(std::time::Duration::from_secs(15)).await;
    let (Some(pg), Some(redis)) = (
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::redis().await,
    ) else {
        return;
    };
    let mut cfg = config();
    cfg.database.url = Secret::new(pg);
    cfg.redis.url = Secret::new(redis);
    cfg.redis.key_prefix = oneflow_test_support::unique_prefix();
    let a = oneflow_billing::grpc(&cfg).await.unwrap();
    let b = oneflow_billing::grpc(&cfg).await.unwrap();
    let user = funded(&a).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let replica = if i % 2 == 0 { a.clone() } else { b.clone() };
            let user = user.clone();
            tokio::spawn(async move {
                replica
                    .authorize(authorize(&user, "shared", &format!("r{i}"), 1, None))
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 60, "two replicas must share one limit of 60 per minute");
}

#[tokio::test]
async fn unreachable_redis_degrades_to_per_process_counters() {
    oneflow_test_support::away_from_minute_boundary(std::time::Duration::from_secs(15)).await;
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = config();
    cfg.database.url = Secret::new(format!("sqlite://{}", dir.path().join("f.db").display()));
    cfg.redis.url = Secret::new(format!("redis://{closed}"));
    cfg.redis.operation_timeout = std::time::Duration::from_millis(300);
    let billing = oneflow_billing::grpc(&cfg).await.unwrap();
    let user = funded(&billing).await;
    // Requests keep being served (no wave of errors), and limits still hold per process.
    for i in 0..60 {
        billing
            .authorize(authorize(&user, "k", &format!("f{i}"), 1, None))
            .await
            .unwrap();
    }
    let (code, _) = refusal(
        &billing
            .authorize(authorize(&user, "k", "f60", 1, None))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "rate_limit_exceeded");
    let settled = billing.settle(settle(&user, "k", "f0", 1)).await.unwrap().into_inner();
    assert_eq!(settled.charged_credits, "1.00");
}

/// Characters and audio are charged in credits, so they count toward the
/// credit quotas (reserved, then corrected to the charge) and never toward
/// the token limits.
#[tokio::test]
async fn audio_counts_toward_credit_quotas_and_not_token_limits() {
    oneflow_test_support::away_from_minute_boundary(std::time::Duration::from_secs(15)).await;
    for (name, cfg) in configs().await {
        let billing = oneflow_billing::grpc(&cfg).await.unwrap();
        let user = funded(&billing).await;
        let monthly = KeyLimits {
            credits_per_month: Some("5".into()),
            ..KeyLimits::default()
        };
        // 2 characters (2.00) and 2 s of audio (2.00) fit in 5.00 ...
        billing
            .authorize(authorize_audio(&user, "ka", "s1", audio_usage(2, 0), &monthly))
            .await
            .unwrap();
        billing
            .authorize(authorize_audio(&user, "ka", "s2", audio_usage(0, 2_000), &monthly))
            .await
            .unwrap();
        // ... 1.5 s more (1.50) does not.
        let (code, _) = refusal(
            &billing
                .authorize(authorize_audio(&user, "ka", "s3", audio_usage(0, 1_500), &monthly))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, "quota_exceeded", "{name}: 2.00 + 2.00 + 1.50 > 5.00");
        // The speech used 1 character: the month now holds 1.00 + 2.00, and 1.5 s fits.
        billing
            .settle(settle_audio(&user, "ka", "s1", audio_usage(1, 0)))
            .await
            .unwrap();
        billing
            .authorize(authorize_audio(&user, "ka", "s4", audio_usage(0, 1_500), &monthly))
            .await
            .unwrap();

        // A key limited to 10 tokens a minute is not limited by characters or audio.
        let tpm = KeyLimits {
            tokens_per_minute: Some(10),
            ..KeyLimits::default()
        };
        for i in 0..3 {
            let id = format!("t{i}");
            billing
                .authorize(authorize_audio(&user, "kt", &id, audio_usage(100, 60_000), &tpm))
                .await
                .unwrap_or_else(|e| panic!("{name}: {id}: {e:?}"));
            billing
                .settle(settle_audio(&user, "kt", &id, audio_usage(100, 60_000)))
                .await
                .unwrap();
        }
    }
}
