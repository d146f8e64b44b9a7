//! Installs the global tracing subscriber (logs + OpenTelemetry) and returns a
//! guard that flushes pending spans at shutdown.
use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::{LogFormat, TelemetryConfig};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter directives do not parse.
    #[error("invalid log_level directives: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
    /// The Sentry DSN does not parse (the DSN itself is not repeated).
    #[error("telemetry.sentry_dsn is not a valid Sentry DSN")]
    SentryDsn,
}

/// Keeps the tracer provider alive; call [`TelemetryGuard::shutdown`] last.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    sentry: Option<sentry::ClientInitGuard>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("provider", &self.provider)
            .field("sentry", &self.sentry.is_some())
            .finish()
    }
}

impl TelemetryGuard {
    /// Flushes and stops the trace exporter and Sentry's queue. Blocking:
    /// call it after the servers have drained (from `spawn_blocking` inside
    /// a runtime).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "trace provider shutdown");
        }
        if let Some(sentry) = self.sentry {
            sentry.flush(Some(std::time::Duration::from_secs(2)));
        }
    }
}

/// Starts the Sentry client when a DSN is configured (or in `SENTRY_DSN`).
fn sentry(config: &TelemetryConfig, service: &'static str) -> Result<Option<sentry::ClientInitGuard>, TelemetryError> {
    let dsn = config
        .sentry_dsn
        .clone()
        .filter(|d| !d.trim().is_empty())
        .or_else(|| std::env::var("SENTRY_DSN").ok().filter(|d| !d.trim().is_empty()));
    let Some(dsn) = dsn else {
        return Ok(None);
    };
    let dsn: sentry::types::Dsn = dsn.trim().parse().map_err(|_| TelemetryError::SentryDsn)?;
    let mut options = sentry::ClientOptions::default().sample_rate(config.sentry_sample_rate.clamp(0.0, 1.0));
    options.dsn = Some(dsn);
    options.release = Some(format!("{service}@{}", env!("CARGO_PKG_VERSION")).into());
    options.environment = config.sentry_environment.clone().map(Into::into);
    // No IP addresses, user names or request bodies.
    options.send_default_pii = false;
    options.attach_stacktrace = true;
    Ok(Some(sentry::init(options)))
}

/// Installs logging and tracing for `service` according to `config`.
pub fn init(config: &TelemetryConfig, service: &'static str) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // Install the metrics recorder now, so nothing recorded before the first
    // scrape is lost.
    let _ = crate::prometheus();

    let ratio = config.sample_ratio.clamp(0.0, 1.0);
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
        .with_resource(Resource::builder().with_service_name(service).build());
    if let Some(endpoint) = &config.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());

    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(&config.log_level),
    }
    .map_err(|e| TelemetryError::Filter(e.to_string()))?;

    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed()
    };
    let sentry = sentry(config, service)?;
    // ERROR events become Sentry events, WARN and INFO their breadcrumbs.
    let sentry_layer = sentry.as_ref().map(|_| {
        use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
        use tracing_subscriber::filter::LevelFilter;
        ErrorLayer::new()
            .with_filter(LevelFilter::ERROR)
            .and_then(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(sentry_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider, sentry })
}
