//! The internal services' single port: gRPC (with the standard health checking
//! protocol and reflection) and plain HTTP (`/healthz`, `/readyz`, `/metrics`)
//! served by one axum router, with a trace span per request whose parent comes
//! from the caller's W3C trace context. Also the client side: lazily
//! connecting channels that inject the current trace context.
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use oneflow_telemetry::GrpcTraceInterceptor;
use serde::{Deserialize, Serialize};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;

/// A readiness probe: `Ok` when the service's dependencies answer.
pub type Readiness = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Builds the internal service router around `routes` (the service's own gRPC
/// services), adding gRPC health and reflection and the HTTP probes.
pub async fn internal_router(
    routes: tonic::service::Routes,
    service_names: &[&str],
    ready: Readiness,
) -> anyhow::Result<axum::Router> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    for name in service_names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(oneflow_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let http = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ready);
    Ok(routes
        .add_service(health)
        .add_service(reflection)
        .into_axum_router()
        .merge(http)
        .layer(axum::middleware::from_fn(trace_http)))
}

async fn readyz(State(ready): State<Readiness>) -> Response {
    match ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        oneflow_telemetry::prometheus().render(),
    )
        .into_response()
}

/// Middleware: one span per request, parented on the incoming trace context,
/// and request count/latency metrics labelled by route and status.
pub async fn trace_http(request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        // Unmatched paths share one label value: raw paths would be unbounded series.
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("request", method = %request.method(), path = %path, request_id = %request_id);
    oneflow_telemetry::set_parent_from_http(&span, request.headers());
    let start = Instant::now();
    let response = next.run(request).instrument(span).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("oneflow_http_requests_total", "path" => path.clone(), "status" => status).increment(1);
    metrics::histogram!("oneflow_http_request_duration_seconds", "path" => path).record(start.elapsed().as_secs_f64());
    response
}

/// How a service reaches another over gRPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcClientConfig {
    /// `http://host:port` of the other service (required).
    pub url: String,
    /// TCP connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Per-call deadline for unary calls.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for GrpcClientConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A channel that injects the caller's trace context into every call.
pub type TracedChannel = InterceptedService<Channel, GrpcTraceInterceptor>;

/// A lazily-connecting, reconnecting HTTP/2 channel to `config.url`.
pub fn lazy_channel(config: &GrpcClientConfig) -> anyhow::Result<TracedChannel> {
    anyhow::ensure!(!config.url.is_empty(), "a gRPC client section is missing its `url`");
    let channel = Endpoint::from_shared(config.url.clone())?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy();
    Ok(InterceptedService::new(channel, GrpcTraceInterceptor))
}
