//! The `telemetry` configuration section shared by all services.
use serde::{Deserialize, Serialize};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// JSON unless stderr is a terminal, then pretty.
    #[default]
    Auto,
    /// One JSON object per line (production).
    Json,
    /// Human-readable, coloured (development).
    Pretty,
}

/// The `[telemetry]` section of every service's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `EnvFilter` directives, e.g. `info` or `info,oneflow_router=debug`.
    /// `RUST_LOG` overrides it when set.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// OTLP/gRPC collector endpoint (e.g. `http://otel-collector:4317`).
    /// Traces are exported only when it is set.
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces sampled (parent-based: a sampled caller is always followed).
    pub sample_ratio: f64,
    /// Sentry DSN: error events (and panics) are reported to Sentry when set,
    /// with the log lines before them as breadcrumbs. Off when unset; the
    /// `SENTRY_DSN` environment variable is used when this is empty. Printed
    /// redacted by `check-config`.
    #[serde(serialize_with = "redacted")]
    pub sentry_dsn: Option<String>,
    /// Sentry's `environment` tag (`production`, `staging`, …).
    pub sentry_environment: Option<String>,
    /// Fraction of error events sent to Sentry.
    pub sentry_sample_rate: f32,
}

fn redacted<S: serde::Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("[redacted]"),
        None => s.serialize_none(),
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_level: "info".to_owned(),
            log_format: LogFormat::Auto,
            otlp_endpoint: None,
            sample_ratio: 1.0,
            sentry_dsn: None,
            sentry_environment: None,
            sentry_sample_rate: 1.0,
        }
    }
}
