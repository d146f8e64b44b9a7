//! OneFlow's auth service. It owns users, API keys and the audit log, and
//! answers the gateway's hot-path question "who is this bearer?" in one
//! indexed lookup (keys are stored as SHA-256 hashes, found by hash).

mod clock;
mod config;
mod domain;
mod jwt;
mod keys;
mod passwords;
mod revocations;
mod service;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use oneflow_proto::auth::v1::auth_service_server::AuthServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use clock::Clock;
pub use config::{AuthConfig, ConfigCheckError, JwtConfig, LoginLimits, Mode, VerificationKey};
pub use domain::{Principal, Role, Scope};
pub use jwt::{Claims, TokenError, Tokens};
pub use keys::{KEY_PREFIX, hash_secret};
pub use revocations::{Revocations, Revoked};
pub use service::AuthGrpc;
pub use store::{AuthStore, BootstrappedAdmin, KeyRecord, StoreError, UserRecord};

/// A built auth service, bound and ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    config: AuthConfig,
    store: AuthStore,
    grpc: AuthGrpc,
}

impl App {
    /// Connects storage, migrates when configured, and binds the listener.
    pub async fn build(config: AuthConfig) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// Like [`App::build`], with a clock tests can move.
    pub async fn build_with_clock(config: AuthConfig, clock: Clock) -> anyhow::Result<Self> {
        config.check()?;
        let store = AuthStore::connect(&config.database).await?;
        if config.auto_migrate {
            store.migrate().await?;
        }
        let revocations = if store.is_postgres() {
            let hub = Revocations::new(Some(store.pool().clone()));
            tokio::spawn(hub.clone().listen_postgres(config.database.url.expose().to_owned()));
            hub
        } else {
            Revocations::new(None)
        };
        let grpc = AuthGrpc::new(store.clone(), &config, clock, revocations);
        let drain_handle = grpc.clone();
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
            grpc: drain_handle,
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
        let grpc = self.grpc.clone();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            signal.cancelled().await;
            grpc.drain();
        });
        oneflow_runtime::serve(self.listener, self.router, shutdown, self.config.server.shutdown_grace).await
    }
}
