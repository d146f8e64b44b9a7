//! W3C trace context across process boundaries: injected into outgoing gRPC
//! metadata and HTTP headers, extracted from incoming ones, so one request is
//! one trace from the gateway through auth, billing and router to the provider.
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's context (`traceparent`, `tracestate`) into HTTP headers.
pub fn inject_http(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

/// Writes the current span's context into gRPC metadata.
pub fn inject_grpc(metadata: &mut tonic::metadata::MetadataMap) {
    let mut headers = http::HeaderMap::new();
    inject_http(&mut headers);
    for (name, value) in &headers {
        if let (Ok(key), Ok(val)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_bytes()),
        ) {
            metadata.insert(key, val);
        }
    }
}

/// The remote parent context carried by incoming HTTP headers.
pub fn extract_http_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Makes `span` a child of the trace carried by incoming HTTP headers, if any.
pub fn set_parent_from_http(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") {
        let _ = span.set_parent(extract_http_context(headers));
    }
}

/// Makes `span` a child of the trace carried by incoming gRPC metadata, if any.
pub fn set_parent_from_grpc(span: &tracing::Span, metadata: &tonic::metadata::MetadataMap) {
    set_parent_from_http(span, &metadata.clone().into_headers());
}

/// A tonic client interceptor that injects the current trace context.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceInterceptor;

impl tonic::service::Interceptor for GrpcTraceInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_grpc(request.metadata_mut());
        Ok(request)
    }
}
