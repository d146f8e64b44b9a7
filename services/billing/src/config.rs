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

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn audio_prices_are_read_from_pricing_models() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("billing.toml");
        let file = r#"
[[pricing.models]]
model = "tts-1"
per_million_characters = "15"

[[pricing.models]]
model = "whisper-1"
per_minute_audio = "0.006"

[[pricing.models]]
model = "chat"
input_per_million = "0.15"
"#;
        std::fs::write(&path, file).unwrap();
        let config: BillingConfig = oneflow_runtime::load_config(Some(&path), &[]).unwrap();
        let models = &config.pricing.models;
        assert_eq!(models[0].per_million_characters, Some(Decimal::from(15)));
        assert_eq!(models[0].per_minute_audio, None);
        assert_eq!(models[1].per_minute_audio, Some(Decimal::new(6, 3)));
        assert_eq!(models[1].input_per_million, Decimal::ZERO);
        assert_eq!(
            (models[2].per_million_characters, models[2].per_minute_audio),
            (None, None)
        );

        // A misspelt unit is refused, not silently unpriced.
        std::fs::write(
            &path,
            "[[pricing.models]]\nmodel = \"x\"\nper_audio_second = \"0.0001\"\n",
        )
        .unwrap();
        assert!(oneflow_runtime::load_config::<BillingConfig>(Some(&path), &[]).is_err());
    }
}
