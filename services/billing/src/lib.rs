//! OneFlow's billing service. It owns prices, the credits ledger and the
//! reserve-then-settle protocol: the gateway reserves the worst case before an
//! upstream call (one atomic counter step, no database on the hot path) and
//! settles the real usage after it, idempotently per request id.

mod batch;
mod config;
mod counters;
mod limits;
mod pricing;
mod service;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use oneflow_proto::billing::v1::billing_service_server::BillingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::BillingConfig;
pub use counters::{CounterError, Counters, Reserve, WindowStatus};
pub use limits::{LimitKind, LimitPlan, LimitsConfig, SettlePlan, plan, settle_plan};
pub use pricing::{
    ModelPrice, PriceBook, PriceError, PriceVersion, PricingConfig, charge_cents, format_cents, parse_credits,
};
pub use service::BillingGrpc;
pub use store::{BillingStore, EntryKind, NewEntry, OwnedUsageRecord, StoreError, StoredUsage, UsageRecord, Written};

/// A built billing service, bound and ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    grace: std::time::Duration,
    grpc: BillingGrpc,
}

/// Opens the counters the config names: Redis when a URL is set, memory otherwise.
pub fn counters(config: &BillingConfig) -> anyhow::Result<Counters> {
    Ok(match oneflow_runtime::redis_pool(&config.redis)? {
        Some(pool) => Counters::redis(pool, &config.redis.key_prefix),
        None => Counters::memory(),
    })
}

/// Builds the gRPC implementation (store, counters, prices) without serving it.
pub async fn grpc(config: &BillingConfig) -> anyhow::Result<BillingGrpc> {
    if let Some(raw) = &config.limits.user_credits_per_month {
        anyhow::ensure!(
            parse_credits(raw).is_some_and(|c| c >= 0),
            "limits.user_credits_per_month must be a non-negative decimal with at most 2 places"
        );
    }
    let mut store = BillingStore::connect(&config.database).await?;
    if config.auto_migrate {
        store.migrate().await?;
    }
    if !config.reports.replica_url.is_empty() {
        store = store
            .with_report_replica(&config.database, &config.reports.replica_url)
            .await?;
    }
    let grpc = BillingGrpc::new(
        store,
        counters(config)?,
        PriceBook::new(&config.pricing),
        config.reservation_ttl,
        config.limits.clone(),
    );
    grpc.reload_prices().await;
    Ok(grpc)
}

impl App {
    /// Connects storage and counters, migrates when configured, binds.
    pub async fn build(config: BillingConfig) -> anyhow::Result<Self> {
        let grpc = grpc(&config).await?;
        let sweeper = grpc.clone();
        let every = config.sweep_interval;
        let retention = config.usage_retention;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                sweeper.sweep_expired().await;
                sweeper.reload_prices().await;
                sweeper.prune_usage(retention).await;
            }
        });
        let store = BillingStore::connect(&config.database).await?;
        let counters = counters(&config)?;
        let ready: oneflow_runtime::Readiness = Arc::new(move || {
            let store = store.clone();
            let counters = counters.clone();
            Box::pin(async move {
                store.ping().await.map_err(|e| e.to_string())?;
                counters.ping().await.map_err(|e| e.to_string())
            })
        });
        let routes = tonic::service::Routes::new(BillingServiceServer::new(grpc.clone()));
        let router = oneflow_runtime::internal_router(routes, &["oneflow.billing.v1.BillingService"], ready).await?;
        let listener = oneflow_runtime::bind(config.server.listen).await?;
        Ok(Self {
            listener,
            router,
            grace: config.server.shutdown_grace,
            grpc,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The service implementation, for in-process bootstrap.
    pub fn grpc(&self) -> &BillingGrpc {
        &self.grpc
    }

    /// Serves until `shutdown`, then drains within the configured bound.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        oneflow_runtime::serve(self.listener, self.router, shutdown, self.grace).await
    }
}
