//! OneFlow's router service: it owns the provider adapters, the routing table
//! (public models → fallback chains of deployments), circuit breakers and
//! passive health, and talks to upstream providers so no other service does.

mod catalog;
mod config;
mod service;
mod strategy;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use oneflow_proto::router::v1::router_service_server::RouterServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use catalog::{Catalog, CatalogError};
pub use config::{
    DeploymentConfig, ModelConfig, ModelOperation, ProviderConfig, ProviderKind, RouterConfig, Strategy, TimeoutConfig,
};
pub use service::RouterGrpc;
pub use upstream::{Upstream, UpstreamError};

/// A built router service, bound and ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    grace: std::time::Duration,
}

impl App {
    /// Checks the routing table, builds the upstream client, binds.
    pub async fn build(config: RouterConfig) -> anyhow::Result<Self> {
        let catalog = Arc::new(Catalog::build(&config)?);
        let upstream = Upstream::new(config.timeouts.connect, config.timeouts.read)?;
        let mut grpc = RouterGrpc::new(catalog, upstream, config.timeouts.clone()).with_retry(config.retry.clone());
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
        let routes = tonic::service::Routes::new(RouterServiceServer::new(grpc));
        let router = oneflow_runtime::internal_router(routes, &["oneflow.router.v1.RouterService"], ready).await?;
        let listener = oneflow_runtime::bind(config.server.listen).await?;
        Ok(Self {
            listener,
            router,
            grace: config.server.shutdown_grace,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then drains within the configured bound.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        oneflow_runtime::serve(self.listener, self.router, shutdown, self.grace).await
    }
}
