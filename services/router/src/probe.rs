//! Active health probes: on top of the passive health that every request
//! feeds, each deployment's provider is asked a cheap question (its model list)
//! on an interval. A failed probe counts as a failure towards the breaker, so a
//! provider that went down is skipped before clients find out; a successful
//! probe of a half-open breaker closes it, so a recovered provider gets traffic
//! back without waiting for a client to risk a request. A successful probe of a
//! closed breaker changes nothing (it must not hide real requests' failures).
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use oneflow_resilience::BreakerState;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, Deployment};
use crate::upstream::Upstream;

/// Probes `dep` once; true when its provider answered (or has no probe).
pub async fn probe(upstream: &Upstream, dep: &Deployment, timeout: Duration) -> bool {
    let Some(up) = tokio::time::timeout(timeout, upstream.probe(dep))
        .await
        .unwrap_or(Some(false))
    else {
        return true;
    };
    metrics::gauge!("oneflow_router_probe_up", "deployment" => dep.name.clone()).set(if up { 1.0 } else { 0.0 });
    let closed = matches!(dep.breaker.state(), BreakerState::Closed);
    if let Ok(permit) = dep.breaker.try_acquire() {
        if !up {
            permit.failure();
        } else if !closed {
            permit.success();
        }
    }
    crate::catalog::publish_breaker(dep);
    if !up {
        tracing::warn!(deployment = %dep.name, "health probe failed");
    }
    up
}

/// Probes every deployment of the current table each `interval` until `shutdown`.
pub async fn run(
    table: Arc<ArcSwap<Catalog>>,
    upstream: Upstream,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        probe_all(&table, &upstream, timeout).await;
    }
}

/// Probes every deployment of the current table once, concurrently; returns
/// how many answered.
pub async fn probe_all(table: &ArcSwap<Catalog>, upstream: &Upstream, timeout: Duration) -> usize {
    let deployments = table.load().deployments().to_vec();
    let results = futures::future::join_all(deployments.iter().map(|d| probe(upstream, d, timeout))).await;
    results.into_iter().filter(|up| *up).count()
}
