//! The router against real mock-provider servers on loopback: fall-over,
//! client errors that must not fall over, breakers, and stream cuts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]
mod common;

use std::sync::Arc;

use common::{chat, closed_port, mock, provider, router};
use futures::StreamExt as _;
use oneflow_mock_provider::MockConfig;
use oneflow_proto::router::v1 as pb;
use oneflow_proto::router::v1::chat_stream_event::Event;
use oneflow_proto::router::v1::router_service_server::RouterService;
use oneflow_resilience::RetryPolicy;
use oneflow_router::{
    Catalog, DeploymentConfig, ModelConfig, ModelOperation, RouterConfig, RouterGrpc, Strategy, TimeoutConfig, Upstream,
};
use serde_json::json;
use tonic::Request;

#[tokio::test]
async fn falls_over_on_5xx_and_connection_errors_to_the_next_deployment() {
    let (bad, bad_state) = mock(MockConfig {
        error_rate: 1.0,
        error_status: 503,
        ..MockConfig::default()
    })
    .await;
    let (good, good_state) = mock(MockConfig::default()).await;
    let r = router(
        vec![
            provider("dead", closed_port()),
            provider("bad", bad),
            provider("good", good),
        ],
        5,
    );
    let resp = r.chat_completion(chat(json!({}))).await.unwrap().into_inner();
    let route = resp.route.unwrap();
    assert_eq!(route.deployment, "good");
    assert_eq!(route.attempts, 3);
    assert_eq!(bad_state.stats().errors_injected, 1);
    assert_eq!(good_state.stats().chat_requests, 1);
    assert!(resp.usage.unwrap().output_tokens > 0);
}

#[tokio::test]
async fn a_client_error_is_returned_without_falling_over() {
    let (first, _) = mock(MockConfig::default()).await;
    let (second, second_state) = mock(MockConfig::default()).await;
    let r = router(vec![provider("first", first), provider("second", second)], 5);
    let status = r
        .chat_completion(chat(json!({ "metadata": { "mock_status": "400" } })))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(second_state.stats().chat_requests, 0);

    let status = r.chat_completion(chat(json!({ "model": "nope" }))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let bad = Request::new(pb::ChatRequest {
        meta: None,
        body: b"[1,2".to_vec(),
    });
    assert_eq!(
        r.chat_completion(bad).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
}

#[tokio::test]
async fn an_open_breaker_is_skipped() {
    let (bad, bad_state) = mock(MockConfig {
        error_rate: 1.0,
        error_status: 500,
        ..MockConfig::default()
    })
    .await;
    let (good, _) = mock(MockConfig::default()).await;
    let r = router(vec![provider("bad", bad), provider("good", good)], 2);
    for _ in 0..5 {
        assert_eq!(
            r.chat_completion(chat(json!({})))
                .await
                .unwrap()
                .into_inner()
                .route
                .unwrap()
                .deployment,
            "good"
        );
    }
    // Two failures opened the breaker; the later requests never reached "bad".
    assert_eq!(bad_state.stats().errors_injected, 2);
    let health = r
        .provider_health(Request::new(pb::ProviderHealthRequest {}))
        .await
        .unwrap()
        .into_inner();
    let bad_health = health.deployments.iter().find(|d| d.deployment == "bad").unwrap();
    assert_eq!(bad_health.breaker_state, "open");
}

#[tokio::test]
async fn all_deployments_failing_is_unavailable_with_the_upstream_status() {
    let (bad, _) = mock(MockConfig {
        error_rate: 1.0,
        error_status: 502,
        ..MockConfig::default()
    })
    .await;
    let r = router(vec![provider("bad", bad)], 5);
    let status = r.chat_completion(chat(json!({}))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(oneflow_proto::error_info(&status).unwrap().upstream_status, 502);

    let (limited, _) = mock(MockConfig::default()).await;
    let r = router(vec![provider("limited", limited)], 5);
    let status = r
        .chat_completion(chat(
            json!({ "metadata": { "mock_status": "429", "mock_retry_after": "3" } }),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(oneflow_proto::error_info(&status).unwrap().retry_after_millis, 3000);
}

async fn events(r: &RouterGrpc, extra: serde_json::Value) -> Vec<Event> {
    let stream = r.stream_chat_completion(chat(extra)).await.unwrap().into_inner();
    stream.map(|e| e.unwrap().event.unwrap()).collect().await
}

#[tokio::test]
async fn streams_always_end_with_usage_and_a_cut_ends_with_an_error() {
    let (addr, _) = mock(MockConfig::default()).await;
    let r = router(vec![provider("m", addr)], 5);

    let ok = events(&r, json!({ "stream": true })).await;
    assert!(matches!(ok.first(), Some(Event::Route(_))));
    let Some(Event::Usage(usage)) = ok.last() else {
        panic!("no usage: {ok:?}")
    };
    assert!(usage.output_tokens > 0 && usage.input_tokens > 0);
    // The client did not ask for usage, so the usage-only chunk is not relayed.
    assert!(
        ok.iter()
            .all(|e| !matches!(e, Event::Data(d) if String::from_utf8_lossy(d).contains("\"choices\":[]")))
    );

    let with_usage = events(
        &r,
        json!({ "stream": true, "stream_options": { "include_usage": true } }),
    )
    .await;
    assert!(
        with_usage
            .iter()
            .any(|e| matches!(e, Event::Data(d) if String::from_utf8_lossy(d).contains("\"choices\":[]")))
    );

    let cut = events(&r, json!({ "stream": true, "metadata": { "mock_cut_after": "2" } })).await;
    let n = cut.len();
    assert!(
        matches!(&cut[n - 2], Event::Usage(u) if u.output_tokens >= 2),
        "{cut:?}"
    );
    assert!(matches!(&cut[n - 1], Event::Error(e) if e.info.as_ref().unwrap().code == "upstream_stream_error"));
}

#[tokio::test]
async fn a_deployment_at_its_upstream_rpm_is_skipped_and_all_full_is_429() {
    oneflow_test_support::away_from_minute_boundary(std::time::Duration::from_secs(15)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut billing_cfg = oneflow_billing::BillingConfig::default();
    billing_cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    billing_cfg.database.url = oneflow_runtime::Secret::new(format!("sqlite://{}", dir.path().join("b.db").display()));
    let billing = oneflow_billing::App::build(billing_cfg).await.unwrap();
    let billing_url = format!("http://{}", billing.local_addr().unwrap());
    tokio::spawn(billing.run(tokio_util::sync::CancellationToken::new()));
    let client = |url: &str| {
        let channel = oneflow_runtime::lazy_channel(&oneflow_runtime::GrpcClientConfig {
            url: url.to_owned(),
            ..Default::default()
        })
        .unwrap();
        oneflow_proto::billing::v1::billing_service_client::BillingServiceClient::new(channel)
    };

    let (small, small_state) = mock(MockConfig::default()).await;
    let (big, big_state) = mock(MockConfig::default()).await;
    let providers = vec![provider("small", small), provider("big", big)];
    let limits = [(Some(2), None), (None, None)];
    let build = |limits: [(Option<u64>, Option<u64>); 2]| {
        let deployments = providers
            .iter()
            .zip(limits)
            .map(|(p, (rpm, tpm))| DeploymentConfig {
                name: format!("{}-{}", p.name, rpm.unwrap_or(0)),
                provider: p.name.clone(),
                upstream_model: "mock-gpt".into(),
                requests_per_minute: rpm,
                tokens_per_minute: tpm,
                weight: 1,
                cost: None,
                quality: None,
            })
            .collect::<Vec<_>>();
        let models = vec![ModelConfig {
            name: "public".into(),
            operation: ModelOperation::Chat,
            deployments: deployments.iter().map(|d| d.name.clone()).collect(),
            context_window: 1000,
            max_output_tokens: 100,
            strategy: Strategy::Ordered,
            max_cost: None,
            variants: Vec::new(),
        }];
        let config = RouterConfig {
            providers: providers.clone(),
            deployments,
            models,
            ..RouterConfig::default()
        };
        let t = TimeoutConfig::default();
        RouterGrpc::new(
            Arc::new(Catalog::build(&config).unwrap()),
            Upstream::new(t.connect, t.read).unwrap(),
            t,
        )
        .with_capacity(client(&billing_url), std::time::Duration::from_secs(1))
    };

    let r = build(limits);
    let mut served = Vec::new();
    for _ in 0..3 {
        served.push(
            r.chat_completion(chat(json!({})))
                .await
                .unwrap()
                .into_inner()
                .route
                .unwrap()
                .deployment,
        );
    }
    assert_eq!(served, ["small-2", "small-2", "big-0"]);
    assert_eq!(
        (small_state.stats().chat_requests, big_state.stats().chat_requests),
        (2, 1)
    );

    // Both at their limit: the client sees 429 with a wait until the minute ends.
    let r = build([(Some(1), None), (Some(1), None)]);
    r.chat_completion(chat(json!({}))).await.unwrap();
    r.chat_completion(chat(json!({}))).await.unwrap();
    let status = r.chat_completion(chat(json!({}))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let info = oneflow_proto::error_info(&status).unwrap();
    assert_eq!(info.code, "rate_limit_exceeded");
    assert!(info.retry_after_millis > 0 && info.retry_after_millis <= 60_000);

    // Tokens per minute count the estimate: a 50-token allowance fits one call of this size.
    let r = build([(None, Some(150)), (None, None)]);
    let first = r
        .chat_completion(chat(json!({})))
        .await
        .unwrap()
        .into_inner()
        .route
        .unwrap()
        .deployment;
    let second = r
        .chat_completion(chat(json!({})))
        .await
        .unwrap()
        .into_inner()
        .route
        .unwrap()
        .deployment;
    assert_eq!((first.as_str(), second.as_str()), ("small-0", "big-0"));
}

#[tokio::test]
async fn transient_failures_are_retried_on_the_same_deployment_and_client_errors_are_not() {
    let (flaky, flaky_state) = mock(MockConfig {
        error_rate: 1.0,
        error_status: 503,
        ..MockConfig::default()
    })
    .await;
    let policy = RetryPolicy {
        max_retries: 2,
        min_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let r = router(vec![provider("flaky", flaky)], 10).with_retry(policy.clone());
    let status = r.chat_completion(chat(json!({}))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(flaky_state.stats().errors_injected, 3, "one attempt and two retries");

    let (strict, strict_state) = mock(MockConfig::default()).await;
    let r = router(vec![provider("strict", strict)], 10).with_retry(policy);
    let status = r
        .chat_completion(chat(json!({ "metadata": { "mock_status": "400" } })))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(strict_state.stats().chat_requests, 1, "a client error is not retried");
}

#[tokio::test]
async fn a_deployment_whose_model_is_unknown_upstream_falls_over_and_alone_is_a_502() {
    let (missing, _) = mock(MockConfig {
        error_rate: 1.0,
        error_status: 404,
        ..MockConfig::default()
    })
    .await;
    let (good, good_state) = mock(MockConfig::default()).await;
    let r = router(vec![provider("missing", missing), provider("good", good)], 5);
    let resp = r.chat_completion(chat(json!({}))).await.unwrap().into_inner();
    assert_eq!(resp.route.unwrap().deployment, "good");
    assert_eq!(good_state.stats().chat_requests, 1);

    let alone = router(vec![provider("missing", missing)], 5);
    let status = alone.chat_completion(chat(json!({}))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(oneflow_proto::error_info(&status).unwrap().upstream_status, 502);
}
