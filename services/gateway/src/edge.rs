//! The browser-facing edge: CORS from an allowlist, and security headers on
//! every response (errors included): a strict Content-Security-Policy for the
//! API and the narrower one the `/docs` page needs, `nosniff`, `DENY` framing,
//! no referrer, and HSTS when clients arrive over TLS.
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::EdgeConfig;

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The CORS layer for the configured origins (`None` when no origin is allowed).
pub fn cors(config: &EdgeConfig) -> Option<CorsLayer> {
    if config.cors_allowed_origins.is_empty() {
        return None;
    }
    let origins = if config.cors_allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                "idempotency-key".parse().unwrap_or(header::ACCEPT),
                "x-request-id".parse().unwrap_or(header::ACCEPT),
                "x-oneflow-cache".parse().unwrap_or(header::ACCEPT),
                header::IF_NONE_MATCH,
            ])
            .expose_headers([
                "x-request-id".parse().unwrap_or(header::ETAG),
                "x-ratelimit-limit".parse().unwrap_or(header::ETAG),
                "x-ratelimit-remaining".parse().unwrap_or(header::ETAG),
                "x-ratelimit-reset".parse().unwrap_or(header::ETAG),
                header::RETRY_AFTER,
                "x-oneflow-provider".parse().unwrap_or(header::ETAG),
                "x-oneflow-deployment".parse().unwrap_or(header::ETAG),
                "x-oneflow-variant".parse().unwrap_or(header::ETAG),
                "x-oneflow-cache".parse().unwrap_or(header::ETAG),
                "x-oneflow-billing-id".parse().unwrap_or(header::ETAG),
                header::ETAG,
                header::CONTENT_LOCATION,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Middleware: security headers on every response.
pub async fn security_headers(State(hsts): State<bool>, request: Request, next: Next) -> Response {
    let docs = request.uri().path().starts_with("/docs");
    let mut resp = next.run(request).await;
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if docs { DOCS_CSP } else { API_CSP }),
    );
    if hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    h.remove(header::SERVER);
    resp
}

/// Middleware: errors produced by tower layers themselves (an unsupported
/// `Content-Encoding` answers a bare 415) get the OpenAI error body too.
pub async fn shape_layer_errors(request: Request, next: Next) -> Response {
    let resp = next.run(request).await;
    if resp.status() == axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return axum::response::IntoResponse::into_response(
            crate::error::ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                "Unsupported Content-Encoding; send gzip, br or an uncompressed body.",
            )
            .code("unsupported_content_encoding"),
        );
    }
    resp
}
