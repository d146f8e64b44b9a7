//! Direct TLS termination (rustls, TLS 1.2 and 1.3 only) for deployments
//! without an ingress in front. The drain on shutdown is the same as in plain
//! HTTP: stop accepting, let requests and streams finish within the bound.
use std::net::SocketAddr;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Certificate and key files (PEM), e.g. mounted from a Kubernetes secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert_file: String,
    /// Private key, PEM.
    pub key_file: String,
}

/// Loads the certificate and key; errors name the file, never its content.
pub async fn load(config: &TlsConfig) -> anyhow::Result<RustlsConfig> {
    RustlsConfig::from_pem_file(&config.cert_file, &config.key_file)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot load TLS certificate {} / key {}: {}",
                config.cert_file,
                config.key_file,
                e.kind()
            )
        })
}

/// Serves `app` over TLS until `shutdown`, then drains for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: RustlsConfig,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let signal = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        signal.graceful_shutdown(Some(grace));
    });
    let listener = listener.into_std()?;
    axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
}
