//! The process-wide Prometheus recorder. Installed once, rendered by each
//! service's `/metrics` route (in one-process mode they share it).
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0,
];

/// Credits per request: from a fraction of a cent to large batch jobs.
const COST_BUCKETS: &[f64] = &[0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0];

/// Settlements per group commit.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// The Prometheus handle, installing the global recorder on first use.
///
/// If another recorder was installed first (a test harness), the handle still
/// renders, but only what this recorder saw.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets(LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("oneflow_cost_per_request_credits".into()),
                    COST_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("oneflow_billing_settle_batch_size".into()),
                    BATCH_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only this one");
        }
        // Histogram samples wait in buffers until they are folded into their
        // buckets; a scrape does that, but without one (no Prometheus yet, or a
        // long scrape interval) they pile up, about 100 bytes per request. A
        // background thread folds them every few seconds, so memory stays flat.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms drain only on scrape");
        }
        handle
    })
}
