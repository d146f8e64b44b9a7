//! The billing service's configuration.
use std::time::Duration;

use oneflow_runtime::{DatabaseConfig, RedisConfig, Secret, ServerConfig};
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

use crate::limits::LimitsConfig;
use crate::pricing::PricingConfig;

/// Configuration of `oneflow-billing` (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Listen address and drain bound.
    pub server: ServerConfig,
    /// The ledger database (PostgreSQL or SQLite).
    pub database: DatabaseConfig,
    /// Counters; an empty URL keeps them in process memory.
    pub redis: RedisConfig,
    /// Apply migrations at start-up.
    pub auto_migrate: bool,
    /// How long a reservation waits for its settlement.
    #[serde(with = "humantime_serde")]
    pub reservation_ttl: Duration,
    /// Usage records older than this are deleted (the ledger is kept); 0 keeps them all.
    #[serde(with = "humantime_serde")]
    pub usage_retention: Duration,
    /// How often reservations that expired unsettled are turned into charges.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Prices and the credit normalisation rate.
    pub pricing: PricingConfig,
    /// Default rate limits and quotas.
    pub limits: LimitsConfig,
    /// Where usage reports are read.
    pub reports: ReportsConfig,
    /// Logs, metrics, traces.
    pub telemetry: TelemetryConfig,
}

/// Usage reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// A read replica of the ledger database for `GET /v1/billing/usage`
    /// (same pool settings as `[database]`); empty = the primary. Replicas lag,
    /// so a report may miss the last moments' usage; balances never read it.
    pub replica_url: Secret,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::new(([0, 0, 0, 0], 50052).into()),
            database: DatabaseConfig {
                url: Secret::new("sqlite://billing.db"),
                ..DatabaseConfig::default()
            },
            redis: RedisConfig::default(),
            auto_migrate: true,
            reservation_ttl: Duration::from_secs(15 * 60),
            pricing: PricingConfig::default(),
            limits: LimitsConfig::default(),
            reports: ReportsConfig::default(),
            sweep_interval: Duration::from_secs(30),
            usage_retention: Duration::from_secs(90 * 24 * 3600),
            telemetry: TelemetryConfig::default(),
        }
    }
}
