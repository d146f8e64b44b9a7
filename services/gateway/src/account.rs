//! The account and management API: registration, login, token refresh and
//! logout, the caller's own user, API keys, and the admin endpoints for users
//! and the audit log. Each handler checks what the gateway can (credential
//! kind, scope, role) and auth re-checks the acting user's stored role.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oneflow_proto::auth::v1 as pb;
use oneflow_proto::common::v1::KeyLimits;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// Parses a JSON request body, refusing unknown fields with a 400 naming them.
pub(crate) fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                r.status(),
                "invalid_request_error",
                "Request body is larger than the allowed limit.",
            )
            .code("request_too_large")
        } else {
            ApiError::invalid("Could not read the request body.")
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("Invalid JSON body: {e}")))
}

/// The client's address: the socket peer, or with `trusted_proxy_hops` set,
/// the address that many hops back in `X-Forwarded-For`.
fn client_address(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let hops = state.trusted_proxy_hops;
    if hops > 0 {
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(addr) = forwarded.len().checked_sub(hops).and_then(|i| forwarded.get(i)) {
            return (*addr).to_owned();
        }
    }
    peer.map(|p| p.ip().to_string()).unwrap_or_default()
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn actor(state: &AppState, principal: Option<&Principal>, headers: &HeaderMap, peer: Option<SocketAddr>) -> pb::Actor {
    pb::Actor {
        user_id: principal.map(|p| p.user_id.clone()).unwrap_or_default(),
        request_id: request_id(headers),
        client_address: client_address(state, headers, peer),
    }
}

fn auth_error(status: &tonic::Status) -> ApiError {
    // Auth's messages are written for clients; keep them for 401s too.
    let mut e = ApiError::from_status(status);
    if status.code() == tonic::Code::Unauthenticated {
        e.message = status.message().to_owned();
        e.code = Some("invalid_credentials".into());
    }
    e
}

fn require_manage(p: &Principal) -> Result<(), ApiError> {
    if p.manage {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "Managing keys needs a login token or a key with the `admin` scope.",
        )
        .code("insufficient_scope"))
    }
}

pub(crate) fn require_admin(p: &Principal) -> Result<(), ApiError> {
    if p.admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "This endpoint is for administrators.",
        )
        .code("insufficient_permissions"))
    }
}

/// The socket peer, when the server recorded it.
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn peer(p: Peer) -> Option<SocketAddr> {
    p.map(|Extension(ConnectInfo(a))| a)
}

/// A user as the API shows it (`object: "user"`).
#[derive(Debug, Serialize)]
pub struct UserView {
    id: String,
    object: &'static str,
    email: String,
    role: &'static str,
    disabled: bool,
    created_at: i64,
}

fn role_name(raw: i32) -> &'static str {
    if raw == i32::from(pb::Role::Admin) {
        "admin"
    } else {
        "user"
    }
}

fn user_view(u: pb::User) -> UserView {
    UserView {
        id: u.id,
        object: "user",
        email: u.email,
        role: role_name(u.role),
        disabled: u.disabled,
        created_at: u.created_at_millis / 1000,
    }
}

fn secs(ms: i64) -> Option<i64> {
    (ms > 0).then_some(ms / 1000)
}

fn key_view(k: pb::ApiKey, secret: Option<String>) -> Value {
    let mut v = json!({
        "id": k.id,
        "object": "api_key",
        "user_id": k.owner_user_id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": k.scopes,
        "created_at": k.created_at_millis / 1000,
        "expires_at": secs(k.expires_at_millis),
        "revoked_at": secs(k.revoked_at_millis),
        "grace_until": secs(k.grace_until_millis),
        "limits": k.limits.map(|l| json!({
            "requests_per_minute": l.requests_per_minute,
            "tokens_per_minute": l.tokens_per_minute,
            "requests_per_day": l.requests_per_day,
            "tokens_per_day": l.tokens_per_day,
            "tokens_per_month": l.tokens_per_month,
            "credits_per_month": l.credits_per_month,
        })),
    });
    if let Some(secret) = secret {
        v["key"] = Value::String(secret);
    }
    v
}

fn tokens_view(t: pb::TokenPair) -> Value {
    json!({
        "access_token": t.access_token,
        "refresh_token": t.refresh_token,
        "token_type": t.token_type,
        "expires_in": t.expires_in_seconds,
    })
}

fn created(v: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// `POST /v1/auth/register`
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c: Credentials = json_body(body)?;
    let mut auth = state.clients.auth.clone();
    let user = auth
        .register(state.clients.auth_request(pb::RegisterRequest {
            email: c.email,
            password: c.password,
            actor: Some(actor(&state, None, &headers, peer(p))),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    Ok(created(user_view(user)))
}

/// `POST /v1/auth/login`
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let c: Credentials = json_body(body)?;
    let mut auth = state.clients.auth.clone();
    let pair = auth
        .login(state.clients.auth_request(pb::LoginRequest {
            email: c.email,
            password: c.password,
            actor: Some(actor(&state, None, &headers, peer(p))),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    Ok(Json(tokens_view(pair)))
}

/// `POST /v1/auth/refresh`
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let b: RefreshBody = json_body(body)?;
    let mut auth = state.clients.auth.clone();
    let pair = auth
        .refresh(state.clients.auth_request(pb::RefreshRequest {
            refresh_token: b.refresh_token,
            actor: Some(actor(&state, None, &headers, peer(p))),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    Ok(Json(tokens_view(pair)))
}

/// `POST /v1/auth/logout`
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let b: RefreshBody = json_body(body)?;
    let mut auth = state.clients.auth.clone();
    auth.logout(state.clients.auth_request(pb::LogoutRequest {
        refresh_token: b.refresh_token,
        actor: Some(actor(&state, None, &headers, peer(p))),
    }))
    .await
    .map_err(|s| auth_error(&s))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/auth/me`
pub async fn me(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Result<Json<Value>, ApiError> {
    let mut auth = state.clients.auth.clone();
    let user = auth
        .get_user(state.clients.auth_request(pb::GetUserRequest {
            user_id: principal.user_id.clone(),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    let mut v = serde_json::to_value(user_view(user)).map_err(|_| ApiError::internal())?;
    v["key_id"] = if principal.key_id.is_empty() {
        Value::Null
    } else {
        Value::String(principal.key_id.clone())
    };
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Unix seconds.
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    limits: Option<LimitsBody>,
    /// Owner (admins only).
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsBody {
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
    requests_per_day: Option<u64>,
    tokens_per_day: Option<u64>,
    tokens_per_month: Option<u64>,
    credits_per_month: Option<String>,
}

/// `POST /v1/keys`
pub async fn create_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_manage(&principal)?;
    let b: NewKeyBody = json_body(body)?;
    let expires_at_millis = match b.expires_at {
        None => 0,
        Some(s) => s
            .checked_mul(1000)
            .filter(|ms| *ms > 0)
            .ok_or_else(|| ApiError::invalid("`expires_at` must be a Unix time in seconds").param("expires_at"))?,
    };
    let mut auth = state.clients.auth.clone();
    let created_key = auth
        .create_api_key(state.clients.auth_request(pb::CreateApiKeyRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            owner_user_id: b.user_id.unwrap_or_default(),
            name: b.name,
            scopes: b.scopes,
            expires_at_millis,
            limits: b.limits.map(|l| KeyLimits {
                requests_per_minute: l.requests_per_minute,
                tokens_per_minute: l.tokens_per_minute,
                requests_per_day: l.requests_per_day,
                tokens_per_day: l.tokens_per_day,
                tokens_per_month: l.tokens_per_month,
                credits_per_month: l.credits_per_month,
            }),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    let key = created_key.key.ok_or_else(ApiError::internal)?;
    Ok(created(key_view(key, Some(created_key.secret))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnerQuery {
    #[serde(default)]
    user_id: Option<String>,
}

/// `GET /v1/keys`
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    q: Result<Query<OwnerQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) =
        q.map_err(|e| crate::error::ApiError::invalid(format!("Invalid query string: {}", e.body_text())))?;
    require_manage(&principal)?;
    let mut auth = state.clients.auth.clone();
    let keys = auth
        .list_api_keys(state.clients.auth_request(pb::ListApiKeysRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            owner_user_id: q.user_id.unwrap_or_default(),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner()
        .keys;
    Ok(Json(
        json!({ "object": "list", "data": keys.into_iter().map(|k| key_view(k, None)).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    grace_seconds: Option<u64>,
}

/// `POST /v1/keys/{id}/rotate`
pub async fn rotate_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_manage(&principal)?;
    let b: RotateBody = match &body {
        Ok(bytes) if bytes.is_empty() => RotateBody::default(),
        _ => json_body(body)?,
    };
    let mut auth = state.clients.auth.clone();
    let rotated = auth
        .rotate_api_key(state.clients.auth_request(pb::RotateApiKeyRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            key_id: id,
            grace_seconds: b.grace_seconds,
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    let key = rotated.key.ok_or_else(ApiError::internal)?;
    Ok(created(key_view(key, Some(rotated.secret))))
}

/// `DELETE /v1/keys/{id}`
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_manage(&principal)?;
    let mut auth = state.clients.auth.clone();
    let key = auth
        .revoke_api_key(state.clients.auth_request(pb::RevokeApiKeyRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            key_id: id,
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    Ok(Json(key_view(key, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    after: Option<String>,
    /// Unix seconds (audit listing).
    #[serde(default)]
    before: Option<i64>,
}

/// `GET /v1/admin/users`
pub async fn list_users(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) =
        q.map_err(|e| crate::error::ApiError::invalid(format!("Invalid query string: {}", e.body_text())))?;
    require_admin(&principal)?;
    let mut auth = state.clients.auth.clone();
    let users = auth
        .list_users(state.clients.auth_request(pb::ListUsersRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            limit: q.limit.unwrap_or(100),
            after_id: q.after.unwrap_or_default(),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner()
        .users;
    Ok(Json(
        json!({ "object": "list", "data": users.into_iter().map(user_view).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
}

fn parse_role(raw: &str) -> Result<pb::Role, ApiError> {
    match raw {
        "user" => Ok(pb::Role::User),
        "admin" => Ok(pb::Role::Admin),
        _ => Err(ApiError::invalid("`role` must be `user` or `admin`").param("role")),
    }
}

/// `POST /v1/admin/users`
pub async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&principal)?;
    let b: NewUserBody = json_body(body)?;
    let role = parse_role(b.role.as_deref().unwrap_or("user"))?;
    let mut auth = state.clients.auth.clone();
    let user = auth
        .create_user(state.clients.auth_request(pb::CreateUserRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            email: b.email,
            password: b.password,
            role: role.into(),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    Ok(created(user_view(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /v1/admin/users/{id}`
pub async fn update_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UserView>, ApiError> {
    require_admin(&principal)?;
    let b: UpdateUserBody = json_body(body)?;
    let role = b.role.as_deref().map(parse_role).transpose()?;
    let mut auth = state.clients.auth.clone();
    let user = auth
        .update_user(state.clients.auth_request(pb::UpdateUserRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            user_id: id,
            role: role.map(Into::into),
            disabled: b.disabled,
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner();
    Ok(Json(user_view(user)))
}

/// `GET /v1/admin/audit`
pub async fn list_audit(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    p: Peer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) =
        q.map_err(|e| crate::error::ApiError::invalid(format!("Invalid query string: {}", e.body_text())))?;
    require_admin(&principal)?;
    let mut auth = state.clients.auth.clone();
    let events = auth
        .list_audit_events(state.clients.auth_request(pb::ListAuditEventsRequest {
            actor: Some(actor(&state, Some(&principal), &headers, peer(p))),
            limit: q.limit.unwrap_or(100),
            before_millis: q.before.map_or(0, |s| s.saturating_mul(1000)),
        }))
        .await
        .map_err(|s| auth_error(&s))?
        .into_inner()
        .events;
    let data: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id, "object": "audit_event", "action": e.action,
                "actor_user_id": (!e.actor_user_id.is_empty()).then_some(e.actor_user_id),
                "target": e.target, "at": e.at_millis / 1000,
                "client_address": e.client_address, "request_id": e.request_id,
            })
        })
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}
