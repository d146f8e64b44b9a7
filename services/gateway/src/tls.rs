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

/// The leaf certificate's notAfter (Unix seconds) of a PEM chain.
fn not_after(pem_chain: &[u8]) -> Option<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_chain).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Loads the certificate and key; errors name the file, never its content.
/// Publishes the certificate's expiry as
/// `oneflow_tls_certificate_expiry_timestamp_seconds` for the expiry alert.
pub async fn load(config: &TlsConfig) -> anyhow::Result<RustlsConfig> {
    if let Some(expiry) = tokio::fs::read(&config.cert_file)
        .await
        .ok()
        .and_then(|pem| not_after(&pem))
    {
        #[expect(clippy::cast_precision_loss, reason = "a metric")]
        metrics::gauge!("oneflow_tls_certificate_expiry_timestamp_seconds").set(expiry as f64);
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    #[test]
    fn the_expiry_is_read_from_the_leaf_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        // 2031-05-17T00:00:00Z
        assert_eq!(super::not_after(pem.as_bytes()), Some(1_936_742_400));
        assert_eq!(super::not_after(b"not a certificate"), None);
    }
}
