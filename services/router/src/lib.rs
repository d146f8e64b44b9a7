//! OneFlow's router service: it owns the provider adapters, the routing table
//! (public models → fallback chains of deployments), circuit breakers and
//! passive health, and talks to upstream providers so no other service does.

mod audio;
mod cache;
mod catalog;
mod config;
mod dialect;
mod probe;
mod reload;
mod service;
mod strategy;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use oneflow_proto::router::v1::router_service_server::RouterServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use cache::ResponseCache;
pub use catalog::{Catalog, CatalogError};
pub use config::{
    CacheConfig, CacheScope, DeploymentConfig, HealthConfig, HitBilling, ModelConfig, ModelOperation, ProviderConfig,
    ProviderKind, ReloadConfig, RouterConfig, Strategy, TimeoutConfig, VariantConfig,
};
pub use probe::probe_all;
pub use reload::{Loader, ReloadSource, reload_once};
pub use service::RouterGrpc;
pub use upstream::{Upstream, UpstreamError};

/// Largest gRPC message the router accepts: a 25 MB audio upload and its fields.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// A built router service, bound and ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    grace: std::time::Duration,
    table: Arc<ArcSwap<Catalog>>,
    reload: Option<ReloadSource>,
    probes: Option<(Upstream, std::time::Duration, std::time::Duration)>,
}

impl App {
    /// Checks the routing table, builds the upstream client, binds.
    pub async fn build(config: RouterConfig) -> anyhow::Result<Self> {
        Self::build_with_reload(config, None).await
    }

    /// Like [`build`](Self::build), and reloads the routing table from `reload`
    /// on SIGHUP or when its file changes.
    pub async fn build_with_reload(config: RouterConfig, reload: Option<ReloadSource>) -> anyhow::Result<Self> {
        let table = Arc::new(ArcSwap::from_pointee(Catalog::build(&config)?));
        let upstream = Upstream::new(config.timeouts.connect, config.timeouts.read)?;
        let mut grpc = RouterGrpc::with_table(table.clone(), upstream.clone(), config.timeouts.clone())
            .with_retry(config.retry.clone());
        if let Some(cache) = ResponseCache::new(&config.cache)? {
            grpc = grpc.with_cache(Arc::new(cache), config.cache.hit_billing);
        }
        let probes = (!config.health.probe_interval.is_zero()).then(|| {
            (
                upstream.clone(),
                config.health.probe_interval,
                config.health.probe_timeout,
            )
        });
        if let Some(billing) = &config.billing {
            let channel = oneflow_runtime::lazy_channel(billing)?;
            grpc = grpc.with_capacity(
                oneflow_proto::billing::v1::billing_service_client::BillingServiceClient::new(channel),
                billing.timeout,
            );
        } else if config
            .deployments
            .iter()
            .any(|d| d.requests_per_minute.is_some() || d.tokens_per_minute.is_some())
        {
            tracing::warn!("deployments set requests/tokens per minute but [billing] is not configured: not enforced");
        }
        let ready: oneflow_runtime::Readiness = Arc::new(|| Box::pin(async { Ok(()) }));
        // Transcription uploads (up to 25 MB at the gateway) exceed tonic's 4 MiB default.
        let routes =
            tonic::service::Routes::new(RouterServiceServer::new(grpc).max_decoding_message_size(MAX_MESSAGE_BYTES));
        let router = oneflow_runtime::internal_router(routes, &["oneflow.router.v1.RouterService"], ready).await?;
        let listener = oneflow_runtime::bind(config.server.listen).await?;
        Ok(Self {
            listener,
            router,
            grace: config.server.shutdown_grace,
            table,
            reload,
            probes,
        })
    }

    /// The live routing table (swapped on reload).
    pub fn table(&self) -> Arc<ArcSwap<Catalog>> {
        self.table.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then drains within the configured bound.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let background = shutdown.child_token();
        if let Some(source) = self.reload {
            tokio::spawn(reload::watch(self.table.clone(), source, background.clone()));
        }
        if let Some((upstream, interval, timeout)) = self.probes {
            tokio::spawn(probe::run(
                self.table.clone(),
                upstream,
                interval,
                timeout,
                background.clone(),
            ));
        }
        let served = oneflow_runtime::serve(self.listener, self.router, shutdown, self.grace).await;
        background.cancel();
        served
    }
}
