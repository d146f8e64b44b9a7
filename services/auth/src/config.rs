//! The auth service's configuration.
use std::time::Duration;

use oneflow_runtime::{DatabaseConfig, Secret, ServerConfig};
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Configuration of `oneflow-auth` (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Listen address and drain bound.
    pub server: ServerConfig,
    /// The auth database (PostgreSQL or SQLite).
    pub database: DatabaseConfig,
    /// Apply migrations at start-up (turn off when a migration job runs them).
    pub auto_migrate: bool,
    /// How long the gateway may cache a validated credential.
    #[serde(with = "humantime_serde")]
    pub principal_cache_ttl: Duration,
    /// Signing secret for access tokens (used by JWT login).
    pub jwt_secret: Secret,
    /// Logs, metrics, traces.
    pub telemetry: TelemetryConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::new(([0, 0, 0, 0], 50051).into()),
            database: DatabaseConfig {
                url: Secret::new("sqlite://auth.db"),
                ..DatabaseConfig::default()
            },
            auto_migrate: true,
            principal_cache_ttl: Duration::from_secs(10),
            jwt_secret: Secret::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}
