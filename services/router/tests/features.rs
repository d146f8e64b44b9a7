//! The router's optional features against real mock providers on loopback:
//! the response cache, A/B experiments, reloading the routing table while
//! serving, and active health probes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: failing loudly is the point"
)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use common::{chat, closed_port, config, mock, provider};
use oneflow_mock_provider::MockConfig;
use oneflow_proto::router::v1 as pb;
use oneflow_proto::router::v1::router_service_server::RouterService;
use oneflow_resilience::RetryPolicy;
use oneflow_router::{
    Catalog, HitBilling, Loader, ResponseCache, RouterConfig, RouterGrpc, TimeoutConfig, Upstream, VariantConfig,
};
use serde_json::json;
use tonic::Request;

fn meta(user: &str, cache: bool) -> pb::RequestMeta {
    pb::RequestMeta {
        request_id: String::new(),
        user_id: user.into(),
        key_id: "key".into(),
        cache,
    }
}

fn with_meta(mut r: Request<pb::ChatRequest>, m: pb::RequestMeta) -> Request<pb::ChatRequest> {
    r.get_mut().meta = Some(m);
    r
}

fn table(config: &RouterConfig) -> Arc<ArcSwap<Catalog>> {
    Arc::new(ArcSwap::from_pointee(Catalog::build(config).unwrap()))
}

fn grpc_over(table: Arc<ArcSwap<Catalog>>) -> RouterGrpc {
    let timeouts = TimeoutConfig::default();
    RouterGrpc::with_table(table, Upstream::new(timeouts.connect, timeouts.read).unwrap(), timeouts)
        .with_retry(RetryPolicy::no_retries())
}

fn cached_router(config: &RouterConfig, billing: HitBilling) -> RouterGrpc {
    let cache = ResponseCache::new(&config.cache).unwrap().unwrap();
    grpc_over(table(config)).with_cache(Arc::new(cache), billing)
}

#[tokio::test]
async fn an_opted_in_repeat_is_served_from_the_cache_without_calling_the_upstream() {
    let (addr, state) = mock(MockConfig::default()).await;
    let r = cached_router(&config(vec![provider("m", addr)], 5), HitBilling::Free);

    let first = r
        .chat_completion(with_meta(chat(json!({})), meta("u1", true)))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.route.as_ref().unwrap().cache_hit);
    assert!(first.usage.unwrap().output_tokens > 0);
    let second = r
        .chat_completion(with_meta(chat(json!({})), meta("u1", true)))
        .await
        .unwrap()
        .into_inner();
    let route = second.route.unwrap();
    assert!(route.cache_hit);
    assert_eq!(route.deployment, "m");
    assert_eq!(second.body, first.body);
    // Free hits: nothing to charge.
    assert_eq!(second.usage.unwrap(), oneflow_proto::common::v1::Usage::default());
    assert_eq!(state.stats().chat_requests, 1);

    // Another user, a different request, or no opt-in: the upstream answers.
    r.chat_completion(with_meta(chat(json!({})), meta("u2", true)))
        .await
        .unwrap();
    r.chat_completion(with_meta(chat(json!({"temperature": 0.5})), meta("u1", true)))
        .await
        .unwrap();
    r.chat_completion(with_meta(chat(json!({})), meta("u1", false)))
        .await
        .unwrap();
    assert_eq!(state.stats().chat_requests, 4);
}

#[tokio::test]
async fn full_hit_billing_repeats_the_original_usage() {
    let (addr, _) = mock(MockConfig::default()).await;
    let r = cached_router(&config(vec![provider("m", addr)], 5), HitBilling::Full);
    let first = r
        .chat_completion(with_meta(chat(json!({})), meta("u", true)))
        .await
        .unwrap()
        .into_inner();
    let second = r
        .chat_completion(with_meta(chat(json!({})), meta("u", true)))
        .await
        .unwrap()
        .into_inner();
    assert!(second.route.unwrap().cache_hit);
    assert_eq!(second.usage, first.usage);
}

#[tokio::test]
async fn an_experiment_is_sticky_per_user_and_reports_its_variant() {
    let (a, a_state) = mock(MockConfig::default()).await;
    let (b, b_state) = mock(MockConfig::default()).await;
    let mut cfg = config(vec![provider("a", a), provider("b", b)], 5);
    cfg.models[0].deployments.clear();
    cfg.models[0].variants = vec![
        VariantConfig {
            name: "control".into(),
            weight: 1,
            deployments: vec!["a".into()],
        },
        VariantConfig {
            name: "treatment".into(),
            weight: 1,
            deployments: vec!["b".into()],
        },
    ];
    let r = grpc_over(table(&cfg));
    let mut seen = std::collections::HashMap::new();
    for user in 0..40 {
        for _ in 0..3 {
            let resp = r
                .chat_completion(with_meta(chat(json!({})), meta(&format!("user-{user}"), false)))
                .await
                .unwrap()
                .into_inner();
            let route = resp.route.unwrap();
            let expected = if route.variant == "control" { "a" } else { "b" };
            assert_eq!(route.deployment, expected);
            let first = seen.entry(user).or_insert_with(|| route.variant.clone());
            assert_eq!(*first, route.variant, "user-{user} changed arms");
        }
    }
    // Both arms got users, and every request went to its arm's deployment.
    assert!(a_state.stats().chat_requests > 0 && b_state.stats().chat_requests > 0);
    assert_eq!(a_state.stats().chat_requests + b_state.stats().chat_requests, 120);
}

#[tokio::test]
async fn a_reload_swaps_the_table_keeps_breakers_and_survives_a_broken_file() {
    let (good, _) = mock(MockConfig::default()).await;
    let dead = closed_port();
    let cfg = config(vec![provider("dead", dead), provider("good", good)], 1);
    let live = table(&cfg);
    let r = grpc_over(live.clone());
    // The dead deployment's breaker opens (threshold 1).
    let resp = r.chat_completion(chat(json!({}))).await.unwrap().into_inner();
    assert_eq!(resp.route.unwrap().deployment, "good");

    // New table: a second public model; the dead deployment keeps its open breaker.
    let mut next = cfg.clone();
    let mut alias = next.models[0].clone();
    alias.name = "alias".into();
    next.models.push(alias);
    let loader: Loader = Arc::new(move || Ok(next.clone()));
    assert!(oneflow_router::reload_once(&live, &loader));
    let body = json!({ "model": "alias", "messages": [{ "role": "user", "content": "hi" }] });
    let resp = r
        .chat_completion(Request::new(pb::ChatRequest {
            meta: None,
            body: serde_json::to_vec(&body).unwrap(),
        }))
        .await
        .unwrap()
        .into_inner();
    let route = resp.route.unwrap();
    assert_eq!(route.deployment, "good");
    assert_eq!(
        route.attempts, 1,
        "the dead deployment's open breaker survived the reload"
    );

    // A configuration that does not hold together leaves the table as it was.
    let broken: Loader = Arc::new(|| {
        let mut c = RouterConfig {
            models: config(vec![], 1).models,
            ..RouterConfig::default()
        };
        c.models[0].deployments = vec!["missing".into()];
        Ok(c)
    });
    assert!(!oneflow_router::reload_once(&live, &broken));
    assert!(live.load().model("alias").is_some());
    let failing: Loader = Arc::new(|| anyhow::bail!("unreadable file"));
    assert!(!oneflow_router::reload_once(&live, &failing));
    assert!(live.load().model("alias").is_some());
}

#[tokio::test]
async fn probes_open_the_breaker_of_a_dead_provider_and_leave_a_live_one_closed() {
    let (good, _) = mock(MockConfig::default()).await;
    let cfg = config(vec![provider("dead", closed_port()), provider("good", good)], 2);
    let live = table(&cfg);
    let upstream = Upstream::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    assert_eq!(
        oneflow_router::probe_all(&live, &upstream, Duration::from_secs(2)).await,
        1
    );
    assert_eq!(
        oneflow_router::probe_all(&live, &upstream, Duration::from_secs(2)).await,
        1
    );
    let r = grpc_over(live);
    let health = r
        .provider_health(Request::new(pb::ProviderHealthRequest {}))
        .await
        .unwrap()
        .into_inner();
    let state = |name: &str| {
        health
            .deployments
            .iter()
            .find(|d| d.deployment == name)
            .unwrap()
            .breaker_state
            .clone()
    };
    assert_eq!(state("dead"), "open");
    assert_eq!(state("good"), "closed");
    // Clients are routed past the dead deployment without trying it.
    let resp = r.chat_completion(chat(json!({}))).await.unwrap().into_inner();
    assert_eq!(resp.route.unwrap().attempts, 1);
}

mod never_an_open_breaker {
    use super::*;
    use oneflow_router::Strategy;
    use proptest::prelude::*;

    async fn case(open: Vec<bool>, strategy: usize, user: u32) -> Result<(), TestCaseError> {
        let mut providers = Vec::new();
        for i in 0..open.len() {
            let (addr, _) = mock(MockConfig::default()).await;
            providers.push(provider(&format!("d{i}"), addr));
        }
        let mut cfg = config(providers, 1);
        let strategies = [
            Strategy::Ordered,
            Strategy::Weighted,
            Strategy::LeastInFlight,
            Strategy::Latency,
            Strategy::Cost,
            Strategy::Quality,
        ];
        cfg.models[0].strategy = strategies[strategy];
        let live = table(&cfg);
        for (dep, is_open) in live.load().deployments().iter().zip(&open) {
            if *is_open {
                dep.breaker.try_acquire().unwrap().failure();
            }
        }
        let r = grpc_over(live);
        let resp = r
            .chat_completion(with_meta(chat(json!({})), meta(&format!("u{user}"), false)))
            .await;
        if open.iter().all(|o| *o) {
            prop_assert!(resp.is_err(), "every breaker open must not be served");
            return Ok(());
        }
        let route = resp.unwrap().into_inner().route.unwrap();
        let index: usize = route.deployment[1..].parse().unwrap();
        prop_assert!(!open[index], "routed to {} whose breaker is open", route.deployment);
        prop_assert_eq!(route.attempts, 1, "an open deployment was tried first");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        #[test]
        fn routing_never_picks_an_open_breaker_while_a_healthy_deployment_exists(
            open in proptest::collection::vec(any::<bool>(), 1..5),
            strategy in 0usize..6,
            user in any::<u32>(),
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(case(open, strategy, user))?;
        }
    }
}
