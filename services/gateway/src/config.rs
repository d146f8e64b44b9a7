//! The gateway's configuration.
use std::time::Duration;

use oneflow_runtime::{GrpcClientConfig, ServerConfig};
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Configuration of `oneflow-gateway` (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
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
        }
    }
}
