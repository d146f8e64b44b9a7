//! The gateway's configuration.
use std::time::Duration;

use oneflow_runtime::{GrpcClientConfig, ServerConfig};
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Development is lenient; production refuses unsafe settings at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Laptop and tests.
    #[default]
    Development,
    /// Real deployments.
    Production,
}

/// Browser access (CORS) and response security headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Origins allowed to call the API from a browser (`https://app.example.com`);
    /// empty = none; `*` = any (refused in production).
    pub cors_allowed_origins: Vec<String>,
    /// Send `Strict-Transport-Security` (set when clients reach the gateway over TLS,
    /// e.g. through a TLS-terminating ingress).
    pub hsts: bool,
}

/// `Idempotency-Key` storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// Redis shared by the gateway replicas; an empty URL keeps keys in memory.
    pub redis: oneflow_runtime::RedisConfig,
    /// How long a key and its response are kept.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            redis: oneflow_runtime::RedisConfig::default(),
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Configuration of `oneflow-gateway` (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// `development` or `production`.
    pub mode: Mode,
    /// CORS and security headers.
    pub edge: EdgeConfig,
    /// `Idempotency-Key` storage.
    pub idempotency: IdempotencyConfig,
    /// Terminate TLS here (certificate and key files); unset = plain HTTP
    /// (behind a TLS-terminating ingress).
    pub tls: Option<crate::tls::TlsConfig>,
    /// Listen address and drain bound.
    pub server: ServerConfig,
    /// The auth service.
    pub auth: GrpcClientConfig,
    /// The billing service.
    pub billing: GrpcClientConfig,
    /// The router service.
    pub router: GrpcClientConfig,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Bound on producing a response's head (streams then run on their own deadlines).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most credentials kept in the validation cache.
    pub principal_cache_entries: usize,
    /// Number of proxies in front of the gateway (ingress, load balancer) whose
    /// `X-Forwarded-For` entries are trusted for the client address; 0 uses the
    /// socket peer.
    pub trusted_proxy_hops: usize,
    /// How long `/v1/models` answers are reused.
    #[serde(with = "humantime_serde")]
    pub models_cache_ttl: Duration,
    /// The speech cache (off unless `store` is set).
    pub audio_cache: crate::audio_cache::AudioCacheConfig,
    /// Logs, metrics, traces.
    pub telemetry: TelemetryConfig,
}

fn client(port: u16) -> GrpcClientConfig {
    GrpcClientConfig {
        url: format!("http://127.0.0.1:{port}"),
        ..GrpcClientConfig::default()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::new(([0, 0, 0, 0], 8080).into()),
            auth: client(50051),
            billing: client(50052),
            router: client(50053),
            body_limit_bytes: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            principal_cache_entries: 100_000,
            trusted_proxy_hops: 0,
            models_cache_ttl: Duration::from_secs(10),
            telemetry: TelemetryConfig::default(),
            mode: Mode::Development,
            edge: EdgeConfig::default(),
            idempotency: IdempotencyConfig::default(),
            tls: None,
            audio_cache: crate::audio_cache::AudioCacheConfig::default(),
        }
    }
}

/// The gateway configuration is unsafe to run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigCheckError {
    /// `*` in CORS origins in production.
    #[error("production mode refuses `*` in edge.cors_allowed_origins; list the origins")]
    WildcardCors,
    /// An origin that does not parse.
    #[error("edge.cors_allowed_origins has an invalid origin: {0}")]
    BadOrigin(String),
}

impl GatewayConfig {
    /// Refuses unsafe settings.
    pub fn check(&self) -> Result<(), ConfigCheckError> {
        for origin in &self.edge.cors_allowed_origins {
            if origin == "*" {
                if self.mode == Mode::Production {
                    return Err(ConfigCheckError::WildcardCors);
                }
            } else if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || http::HeaderValue::from_str(origin).is_err()
            {
                return Err(ConfigCheckError::BadOrigin(origin.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_wildcard_cors() {
        let mut c = GatewayConfig::default();
        c.edge.cors_allowed_origins = vec!["*".into()];
        assert_eq!(c.check(), Ok(()));
        c.mode = Mode::Production;
        assert_eq!(c.check(), Err(ConfigCheckError::WildcardCors));
        c.edge.cors_allowed_origins = vec!["https://app.example.com".into()];
        assert_eq!(c.check(), Ok(()));
        c.edge.cors_allowed_origins = vec!["app.example.com".into()];
        assert!(c.check().is_err());
    }
}
