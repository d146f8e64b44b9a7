//! OneFlow's gateway: the public, OpenAI-compatible REST API. It owns the HTTP
//! edge (errors, limits, request ids, headers) and talks gRPC to auth (who is
//! calling, cached), billing (reserve before, settle after) and router (the
//! model call).

mod account;
mod app;
mod audio;
mod audio_cache;
mod billing_api;
mod clients;
mod config;
mod edge;
mod error;
mod idempotency;
mod inference;
mod models;
mod openapi;
mod principal;
mod settle;
mod state;
mod tls;
mod warm;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use audio_cache::{AudioCacheConfig, HitBilling as AudioHitBilling};
pub use config::{ConfigCheckError, EdgeConfig, GatewayConfig, Mode};
pub use error::ApiError;
pub use tls::TlsConfig;
pub use warm::{WarmArgs, WarmSummary, run as warm_cache};

/// The gateway's own subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum GatewayCommand {
    /// Pre-synthesise the phrases of a file into the speech cache, through a
    /// running gateway (see `docs/audio.md`).
    WarmCache(WarmArgs),
}

use crate::clients::Clients;
use crate::idempotency::{Idempotency, IdempotencyStore};
use crate::models::ModelDirectory;
use crate::principal::PrincipalCache;
use crate::settle::Settler;
use crate::state::AppState;

/// A built gateway, bound and ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    grace: std::time::Duration,
    settler: Settler,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl App {
    /// Creates the clients (connected lazily) and binds the listener.
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        config.check()?;
        let clients = Clients::connect(&config)?;
        let settler = Settler::new(clients.billing.clone());
        let state = AppState {
            principals: PrincipalCache::new(config.principal_cache_entries),
            models: ModelDirectory::new(config.models_cache_ttl),
            settler: settler.clone(),
            trusted_proxy_hops: config.trusted_proxy_hops,
            audio_cache: audio_cache::AudioCache::open(&config.audio_cache)?,
            clients,
        };
        tokio::spawn(principal::watch_revocations(state.clone()));
        let store = match oneflow_runtime::redis_pool(&config.idempotency.redis)? {
            Some(pool) => IdempotencyStore::Redis {
                pool,
                prefix: config.idempotency.redis.key_prefix.as_str().into(),
                ttl: config.idempotency.ttl,
            },
            None => IdempotencyStore::memory(config.idempotency.ttl),
        };
        // A repeat waits a little less than the request timeout, so it gets the
        // explicit 409 rather than the timeout's 504.
        let wait = config.request_timeout.saturating_sub(std::time::Duration::from_secs(1));
        let idempotency = Idempotency {
            store,
            body_limit: config.body_limit_bytes,
            wait,
        };
        let router = app::router(state, &config, idempotency);
        let listener = oneflow_runtime::bind(config.server.listen).await?;
        let tls = match &config.tls {
            Some(t) => Some(tls::load(t).await?),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            grace: config.server.shutdown_grace,
            settler,
            tls,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`; then drains requests and streams, then the
    /// pending settlements, all within the configured bound.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let started = tokio::time::Instant::now();
        match self.tls {
            Some(tls) => tls::serve(self.listener, self.router, tls, shutdown, self.grace).await?,
            None => oneflow_runtime::serve(self.listener, self.router, shutdown, self.grace).await?,
        }
        let left = self
            .grace
            .saturating_sub(started.elapsed())
            .max(std::time::Duration::from_secs(5));
        self.settler.drain(left).await;
        Ok(())
    }
}
