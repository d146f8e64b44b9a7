//! Helpers shared by the router's integration tests: mock providers on
//! loopback and routing tables over them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    reason = "test code; each test binary uses a subset"
)]
use std::net::SocketAddr;
use std::sync::Arc;

use oneflow_mock_provider::{MockConfig, MockState};
use oneflow_proto::router::v1 as pb;
use oneflow_resilience::{BreakerConfig, RetryPolicy};
use oneflow_router::{
    Catalog, DeploymentConfig, ModelConfig, ModelOperation, ProviderConfig, ProviderKind, RouterConfig, RouterGrpc,
    Strategy, TimeoutConfig, Upstream,
};
use serde_json::json;
use tonic::Request;

pub async fn mock(config: MockConfig) -> (SocketAddr, MockState) {
    let state = MockState::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = oneflow_mock_provider::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

pub fn provider(name: &str, addr: SocketAddr) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind: ProviderKind::OpenaiCompatible,
        base_url: format!("http://{addr}/v1"),
        api_key_env: None,
        api_key_file: None,
        api_version: None,
        region: None,
        ..ProviderConfig::default()
    }
}

/// One deployment per provider (named after it, upstream model `mock-gpt`)
/// behind the public chat model `public`, in order.
pub fn config(providers: Vec<ProviderConfig>, threshold: u32) -> RouterConfig {
    let deployments = providers
        .iter()
        .map(|p| DeploymentConfig {
            name: p.name.clone(),
            provider: p.name.clone(),
            upstream_model: "mock-gpt".into(),
            requests_per_minute: None,
            tokens_per_minute: None,
            weight: 1,
            cost: None,
            quality: None,
        })
        .collect();
    let models = vec![ModelConfig {
        name: "public".into(),
        operation: ModelOperation::Chat,
        deployments: providers.iter().map(|p| p.name.clone()).collect(),
        context_window: 1000,
        max_output_tokens: 100,
        strategy: Strategy::Ordered,
        max_cost: None,
        variants: Vec::new(),
    }];
    RouterConfig {
        providers,
        deployments,
        models,
        breaker: BreakerConfig {
            failure_threshold: threshold,
            ..BreakerConfig::default()
        },
        ..RouterConfig::default()
    }
}

/// A router over [`config`] without retries.
pub fn router(providers: Vec<ProviderConfig>, threshold: u32) -> RouterGrpc {
    grpc(&config(providers, threshold))
}

/// A router over `config` without retries.
pub fn grpc(config: &RouterConfig) -> RouterGrpc {
    let timeouts = TimeoutConfig::default();
    RouterGrpc::new(
        Arc::new(Catalog::build(config).unwrap()),
        Upstream::new(timeouts.connect, timeouts.read).unwrap(),
        timeouts,
    )
    .with_retry(RetryPolicy::no_retries())
}

pub fn chat(extra: serde_json::Value) -> Request<pb::ChatRequest> {
    let mut body = json!({ "model": "public", "messages": [{ "role": "user", "content": "one two three four" }] });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    Request::new(pb::ChatRequest {
        meta: None,
        body: serde_json::to_vec(&body).unwrap(),
    })
}

pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
