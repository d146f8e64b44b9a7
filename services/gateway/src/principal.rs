//! Who is calling: the `Authorization: Bearer` credential validated by the auth
//! service and cached here (keyed by its SHA-256, never the credential itself)
//! for the TTL auth allows, so the hot path makes no auth hop per request.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// May manage keys (a login token, or a key with the `admin` scope).
    pub manage: bool,
    /// May call `/v1/admin/*` (an admin, through a token or an admin-scoped key).
    pub admin: bool,
    /// Per-key limits, forwarded to billing.
    pub limits: Option<oneflow_proto::common::v1::KeyLimits>,
}

impl From<pb::Principal> for Principal {
    fn from(p: pb::Principal) -> Self {
        let jwt = p.kind == i32::from(pb::CredentialKind::Jwt);
        let admin_scope = p.scopes.iter().any(|s| s == "admin");
        let manage = jwt || admin_scope;
        Self {
            inference: jwt || p.scopes.iter().any(|s| s == "inference"),
            manage,
            admin: manage && p.role == i32::from(pb::Role::Admin),
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
///
/// The cache is only trusted while the revocation stream from auth is
/// connected: without it a revoked key could live until its entry expires, so
/// every request is validated with auth instead.
#[derive(Debug, Clone)]
pub struct PrincipalCache {
    entries: Arc<RwLock<HashMap<CredentialHash, Cached>>>,
    capacity: usize,
    live: Arc<AtomicBool>,
    /// Bumped by every eviction: a validation that started before one must
    /// not cache its (possibly revoked) answer.
    epoch: Arc<AtomicU64>,
}

impl PrincipalCache {
    /// An empty cache holding at most `capacity` credentials.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Arc::new(RwLock::new(HashMap::new())),
            capacity: capacity.max(1),
            live: Arc::default(),
            epoch: Arc::default(),
        }
    }

    /// Marks the revocation stream connected (trust the cache) or not (drop
    /// everything and bypass the cache until it is back).
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
        if !live {
            self.clear();
        }
    }

    /// Drops every cached principal.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut guard) = self.entries.write() {
            guard.clear();
        }
    }

    /// Drops the cached principals of a revoked key or user.
    pub fn evict(&self, key_id: Option<&str>, user_id: Option<&str>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut guard) = self.entries.write() {
            guard.retain(|_, (p, _)| key_id != Some(p.key_id.as_str()) && user_id != Some(p.user_id.as_str()));
        }
    }

    fn get(&self, key: &[u8; 32]) -> Option<Arc<Principal>> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let guard = self.entries.read().ok()?;
        let (p, until) = guard.get(key)?;
        (*until > Instant::now()).then(|| p.clone())
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn put(&self, key: [u8; 32], principal: Arc<Principal>, ttl: Duration, epoch: u64) {
        if ttl.is_zero() || !self.live.load(Ordering::Acquire) || self.epoch() != epoch {
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
            // Re-checked under the lock, which evictions also take.
            if self.epoch() == epoch {
                guard.insert(key, (principal, Instant::now() + ttl));
            }
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
    let epoch = state.principals.epoch();
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
    state.principals.put(key, principal.clone(), ttl, epoch);
    Ok(principal)
}

/// Keeps the revocation stream from auth open for the life of the process,
/// evicting what it names; reconnects after errors, bypassing the cache while
/// disconnected.
pub async fn watch_revocations(state: AppState) {
    loop {
        let mut auth = state.clients.auth.clone();
        match auth.watch_revocations(pb::WatchRevocationsRequest {}).await {
            Ok(stream) => {
                state.principals.set_live(true);
                tracing::info!("revocation stream connected");
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => match event.target {
                            Some(pb::revocation_event::Target::KeyId(id)) => state.principals.evict(Some(&id), None),
                            Some(pb::revocation_event::Target::UserId(id)) => state.principals.evict(None, Some(&id)),
                            None => {}
                        },
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(code = ?status.code(), "revocation stream broke");
                            break;
                        }
                    }
                }
                state.principals.set_live(false);
            }
            Err(status) => {
                state.principals.set_live(false);
                tracing::debug!(code = ?status.code(), "revocation stream unavailable");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
