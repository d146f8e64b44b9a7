//! OneFlow's auth service. It owns users, API keys and the audit log, and
//! answers the gateway's hot-path question "who is this bearer?" in one
//! indexed lookup (keys are stored as SHA-256 hashes, found by hash).

mod config;
mod domain;
mod keys;
mod service;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use oneflow_proto::auth::v1::auth_service_server::AuthServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::AuthConfig;
pub use domain::{Principal, Role, Scope};
pub use keys::{KEY_PREFIX, hash_secret};
pub use service::AuthGrpc;
pub use store::{AuthStore, BootstrappedAdmin, StoreError};

/// A built auth service, bound and ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    config: AuthConfig,
    store: AuthStore,
}

impl App {
    /// Connects storage, migrates when configured, and binds the listener.
    pub async fn build(config: AuthConfig) -> anyhow::Result<Self> {
        let store = AuthStore::connect(&config.database).await?;
        if config.auto_migrate {
            store.migrate().await?;
        }
        let grpc = AuthGrpc::new(store.clone(), config.principal_cache_ttl);
        let ready_store = store.clone();
        let ready: oneflow_runtime::Readiness = Arc::new(move || {
            let store = ready_store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        });
        let routes = tonic::service::Routes::new(AuthServiceServer::new(grpc));
        let router = oneflow_runtime::internal_router(routes, &["oneflow.auth.v1.AuthService"], ready).await?;
        let listener = oneflow_runtime::bind(config.server.listen).await?;
        Ok(Self {
            listener,
            router,
            config,
            store,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The service's store, for bootstrap in the one-process mode.
    pub fn store(&self) -> &AuthStore {
        &self.store
    }

    /// Serves until `shutdown`, then drains within the configured bound.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        oneflow_runtime::serve(self.listener, self.router, shutdown, self.config.server.shutdown_grace).await
    }
}
