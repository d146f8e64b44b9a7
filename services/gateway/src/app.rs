//! The gateway's HTTP application: routes and the middleware stack, built in
//! one place, outermost first.
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::{CompressionLayer, Predicate as _};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::GatewayConfig;
use utoipa::OpenApi as _;

use crate::error::ApiError;
use crate::idempotency::Idempotency;
use crate::state::AppState;
use crate::{account, audio, billing_api, edge, idempotency, inference, models, principal};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Responses smaller than this are sent uncompressed.
const COMPRESS_ABOVE: u16 = 1024;

/// Builds the router. Layers, outermost first:
/// 1. catch panics (an OpenAI-shaped 500, never a dropped connection);
/// 2. mark `Authorization` sensitive so no layer logs it;
/// 3. accept or generate `X-Request-Id`, and return it;
/// 4. trace span (parented on incoming W3C context) and request metrics;
/// 5. security headers on every response, errors included; CORS from the
///    allowlist; response compression (not SSE); request decompression;
/// 6. timeout for producing the response head (504);
/// 7. body limit (413 before the body is read whole, chunked too);
/// 8. authentication on `/v1/*` (probes, metrics and the login routes stay open);
/// 9. the handler.
pub fn router(state: AppState, config: &GatewayConfig, idempotency: Idempotency) -> axum::Router {
    let body_limit = config.body_limit_bytes;
    let request_timeout = config.request_timeout;
    let model_calls = axum::Router::new()
        .route("/v1/chat/completions", post(inference::chat_completions))
        .route("/v1/embeddings", post(inference::embeddings))
        .route_layer(middleware::from_fn_with_state(idempotency, idempotency::idempotent));
    // Audio uploads may be larger than other bodies.
    let audio = axum::Router::new()
        .route("/v1/audio/speech", post(audio::speech))
        .route("/v1/audio/transcriptions", post(audio::transcriptions))
        .route("/v1/audio/translations", post(audio::translations))
        .layer(DefaultBodyLimit::max(audio::UPLOAD_LIMIT.max(body_limit)));
    let api = axum::Router::new()
        .merge(model_calls)
        .merge(audio)
        .route("/v1/audio/files/{sha256}", get(audio::file))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
        .route("/v1/auth/me", get(account::me))
        .route("/v1/keys", post(account::create_key).get(account::list_keys))
        .route("/v1/keys/{id}", delete(account::revoke_key))
        .route("/v1/keys/{id}/rotate", post(account::rotate_key))
        .route("/v1/admin/users", get(account::list_users).post(account::create_user))
        .route("/v1/admin/users/{id}", patch(account::update_user))
        .route("/v1/admin/audit", get(account::list_audit))
        .route("/v1/admin/users/{id}/credits", post(billing_api::grant))
        .route("/v1/billing/balance", get(billing_api::balance))
        .route("/v1/billing/usage", get(billing_api::usage))
        .route("/v1/billing/pricing", get(billing_api::pricing))
        .route("/v1/admin/pricing/{model}", put(billing_api::update_price))
        .route("/v1/admin/providers", get(billing_api::providers))
        .route_layer(middleware::from_fn_with_state(state.clone(), principal::authenticate));
    // Routes that take no bearer credential.
    let public = axum::Router::new()
        .route("/v1/auth/register", post(account::register))
        .route("/v1/auth/login", post(account::login))
        .route("/v1/auth/refresh", post(account::refresh))
        .route("/v1/auth/logout", post(account::logout));
    let open = axum::Router::new()
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", crate::openapi::ApiDoc::openapi()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    api.merge(public)
        .merge(open)
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(request_timeout, timeout))
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
                .layer(SetSensitiveRequestHeadersLayer::new(std::iter::once(
                    header::AUTHORIZATION,
                )))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(middleware::from_fn(oneflow_runtime::trace_http))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(
                    config.edge.hsts || config.tls.is_some(),
                    edge::security_headers,
                ))
                .option_layer(edge::cors(&config.edge))
                // gzip/br for JSON bodies worth it (the default predicate skips
                // SSE, gRPC and images; small answers cost more CPU to
                // compress than they save), at the fastest level.
                .layer(
                    CompressionLayer::new()
                        .quality(tower_http::CompressionLevel::Fastest)
                        .compress_when(
                            tower_http::compression::DefaultPredicate::new()
                                .and(tower_http::compression::predicate::SizeAbove::new(COMPRESS_ABOVE))
                                // Audio is compressed already.
                                .and(tower_http::compression::predicate::NotForContentType::const_new(
                                    "audio/",
                                )),
                        ),
                )
                .layer(middleware::from_fn(edge::shape_layer_errors))
                // Compressed request bodies are limited after decompression
                // (the body limit sits inside this layer).
                .layer(RequestDecompressionLayer::new()),
        )
        .with_state(state)
}

async fn timeout(State(bound): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(bound, next.run(request)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "server_error", "The request timed out.").into_response(),
    }
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("Unknown request URL: {method} {}.", uri.path()),
    )
    .code("unknown_url")
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!("Method {method} is not allowed on {}.", uri.path()),
    )
    .code("method_not_allowed")
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.clients.ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        oneflow_telemetry::prometheus().render(),
    )
        .into_response()
}
