//! Who is calling: the `Authorization: Bearer` credential validated by the auth
//! service and cached here (keyed by its SHA-256, never the credential itself)
//! for the TTL auth allows, so the hot path makes no auth hop per request.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oneflow_proto::auth::v1 as pb;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller of a request, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// Key id (empty for tokens).
    pub key_id: String,
    /// Safe-to-log key prefix.
    pub key_prefix: String,
    /// May call models.
    pub inference: bool,
    /// Per-key limits, forwarded to billing.
    pub limits: Option<oneflow_proto::common::v1::KeyLimits>,
}

impl From<pb::Principal> for Principal {
    fn from(p: pb::Principal) -> Self {
        let jwt = p.kind == i32::from(pb::CredentialKind::Jwt);
        Self {
            inference: jwt || p.scopes.iter().any(|s| s == "inference"),
            user_id: p.user_id,
            key_id: p.key_id,
            key_prefix: p.key_prefix,
            limits: p.limits,
        }
    }
}

/// SHA-256 of a bearer credential: the cache key (the credential itself is never kept).
type CredentialHash = [u8; 32];

/// A principal and the instant it must be validated again.
type Cached = (Arc<Principal>, Instant);

/// Validated credentials by hash, each until its expiry.
#[derive(Debug, Clone)]
pub struct PrincipalCache {
    entries: Arc<RwLock<HashMap<CredentialHash, Cached>>>,
    capacity: usize,
}

impl PrincipalCache {
    /// An empty cache holding at most `capacity` credentials.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Arc::new(RwLock::new(HashMap::new())),
            capacity: capacity.max(1),
        }
    }

    fn get(&self, key: &[u8; 32]) -> Option<Arc<Principal>> {
        let guard = self.entries.read().ok()?;
        let (p, until) = guard.get(key)?;
        (*until > Instant::now()).then(|| p.clone())
    }

    fn put(&self, key: [u8; 32], principal: Arc<Principal>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut guard) = self.entries.write() {
            if guard.len() >= self.capacity {
                let now = Instant::now();
                guard.retain(|_, (_, until)| *until > now);
                if guard.len() >= self.capacity {
                    guard.clear();
                }
            }
            guard.insert(key, (principal, Instant::now() + ttl));
        }
    }
}

fn bearer(request: &Request) -> Result<&str, ApiError> {
    let value = request.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated("You didn't provide an API key. Send it as `Authorization: Bearer <key>`.")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("Incorrect API key provided."))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthenticated("Expected `Authorization: Bearer <key>`."))?;
    Ok(token)
}

/// Middleware: resolves the principal or answers 401; scope checks are per route.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let token = match bearer(&request) {
        Ok(t) => t.to_owned(),
        Err(e) => return e.into_response(),
    };
    let principal = match resolve(&state, &token).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    request.extensions_mut().insert(principal);
    next.run(request).await
}

async fn resolve(state: &AppState, token: &str) -> Result<Arc<Principal>, ApiError> {
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(p) = state.principals.get(&key) {
        metrics::counter!("oneflow_gateway_auth_cache_total", "result" => "hit").increment(1);
        return Ok(p);
    }
    metrics::counter!("oneflow_gateway_auth_cache_total", "result" => "miss").increment(1);
    let mut auth = state.clients.auth.clone();
    let answer = auth
        .validate_credential(state.clients.auth_request(pb::ValidateCredentialRequest {
            credential: token.to_owned(),
            request_id: String::new(),
        }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    let ttl = Duration::from_millis(answer.cache_ttl_millis);
    let principal = Arc::new(Principal::from(answer));
    state.principals.put(key, principal.clone(), ttl);
    Ok(principal)
}
