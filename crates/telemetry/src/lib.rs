//! Telemetry for every OneFlow service: structured logs, Prometheus metrics and
//! OpenTelemetry traces, with W3C trace context carried across gRPC and HTTP.
//!
//! It exists so that each service initialises observability the same way, from
//! one config section, and so that the one-process mode (four services in one
//! process) installs the global subscriber and recorder exactly once.

mod config;
mod metrics_exporter;
mod propagation;
mod tracing_init;

pub use config::{LogFormat, TelemetryConfig};
pub use metrics_exporter::prometheus;
pub use propagation::{
    GrpcTraceInterceptor, extract_http_context, inject_grpc, inject_http, set_parent_from_grpc, set_parent_from_http,
};
pub use tracing_init::{TelemetryError, TelemetryGuard, init};
