//! `Idempotency-Key` on model calls: a repeat with the same body gets the
//! stored response (or waits for the one in flight), a different body with the
//! same key gets 422, and the upstream is called — and charged — once.
//!
//! Keys are scoped to the calling user and kept for a TTL in Redis (shared by
//! every gateway replica) or in process memory. Server errors (5xx) release
//! the key so the client can retry; client errors are stored like successes.
//! A streamed answer is not stored: repeating a finished streamed request with
//! the same key answers 409 rather than calling (and charging) again.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::principal::Principal;

const MAX_KEY_LEN: usize = 255;
/// Largest response stored for replay.
const MAX_STORED_BODY: usize = 10 * 1024 * 1024;
const POLL: Duration = Duration::from_millis(50);
/// Response headers kept with a stored response.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "x-oneflow-provider",
    "x-oneflow-deployment",
    "x-oneflow-variant",
    "x-oneflow-cache",
    "x-oneflow-billing-id",
];

/// What is stored under a key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum Entry {
    InFlight {
        fingerprint: String,
    },
    Done {
        fingerprint: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Streamed {
        fingerprint: String,
    },
    TooLarge {
        fingerprint: String,
    },
}

impl Entry {
    fn fingerprint(&self) -> &str {
        match self {
            Entry::InFlight { fingerprint }
            | Entry::Done { fingerprint, .. }
            | Entry::Streamed { fingerprint }
            | Entry::TooLarge { fingerprint } => fingerprint,
        }
    }
}

/// Where entries live.
#[derive(Clone)]
pub enum IdempotencyStore {
    /// Shared by every replica.
    Redis {
        /// Pool.
        pool: oneflow_runtime::RedisPool,
        /// Key prefix.
        prefix: Arc<str>,
        /// Entry lifetime.
        ttl: Duration,
    },
    /// This process only.
    Memory {
        /// Entries with their expiry.
        entries: Arc<Mutex<HashMap<String, (Entry, tokio::time::Instant)>>>,
        /// Entry lifetime.
        ttl: Duration,
    },
}

impl std::fmt::Debug for IdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdempotencyStore::Redis { .. } => "IdempotencyStore::Redis",
            IdempotencyStore::Memory { .. } => "IdempotencyStore::Memory",
        })
    }
}

/// The store failed; the request is refused rather than risk running twice.
#[derive(Debug)]
struct StoreDown;

impl IdempotencyStore {
    /// An in-memory store.
    pub fn memory(ttl: Duration) -> Self {
        IdempotencyStore::Memory {
            entries: Arc::default(),
            ttl,
        }
    }

    /// Claims `key` for `fingerprint`: `None` when claimed, or the entry already there.
    async fn claim(&self, key: &str, fingerprint: &str) -> Result<Option<Entry>, StoreDown> {
        let fresh = Entry::InFlight {
            fingerprint: fingerprint.to_owned(),
        };
        match self {
            IdempotencyStore::Redis { pool, prefix, ttl } => {
                let mut conn = pool.get().await.map_err(|_| StoreDown)?;
                let value = serde_json::to_string(&fresh).map_err(|_| StoreDown)?;
                let full = format!("{prefix}:idem:{key}");
                let set: Option<String> = deadpool_redis::redis::cmd("SET")
                    .arg(&full)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
                    .query_async(&mut conn)
                    .await
                    .map_err(|_| StoreDown)?;
                if set.is_some() {
                    return Ok(None);
                }
                let existing: Option<String> = deadpool_redis::redis::cmd("GET")
                    .arg(&full)
                    .query_async(&mut conn)
                    .await
                    .map_err(|_| StoreDown)?;
                match existing {
                    Some(raw) => serde_json::from_str(&raw).map(Some).map_err(|_| StoreDown),
                    // Expired between the two calls: try once more.
                    None => Box::pin(self.claim(key, fingerprint)).await,
                }
            }
            IdempotencyStore::Memory { entries, ttl } => {
                let mut map = entries.lock().map_err(|_| StoreDown)?;
                let now = tokio::time::Instant::now();
                map.retain(|_, (_, until)| *until > now);
                if let Some((entry, _)) = map.get(key) {
                    return Ok(Some(entry.clone()));
                }
                map.insert(key.to_owned(), (fresh, now + *ttl));
                Ok(None)
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreDown> {
        match self {
            IdempotencyStore::Redis { pool, prefix, .. } => {
                let mut conn = pool.get().await.map_err(|_| StoreDown)?;
                let raw: Option<String> = deadpool_redis::redis::cmd("GET")
                    .arg(format!("{prefix}:idem:{key}"))
                    .query_async(&mut conn)
                    .await
                    .map_err(|_| StoreDown)?;
                raw.map(|r| serde_json::from_str(&r).map_err(|_| StoreDown)).transpose()
            }
            IdempotencyStore::Memory { entries, .. } => {
                let map = entries.lock().map_err(|_| StoreDown)?;
                Ok(map
                    .get(key)
                    .filter(|(_, until)| *until > tokio::time::Instant::now())
                    .map(|(e, _)| e.clone()))
            }
        }
    }

    async fn put(&self, key: &str, entry: &Entry) -> Result<(), StoreDown> {
        match self {
            IdempotencyStore::Redis { pool, prefix, ttl } => {
                let mut conn = pool.get().await.map_err(|_| StoreDown)?;
                let _: () = deadpool_redis::redis::cmd("SET")
                    .arg(format!("{prefix}:idem:{key}"))
                    .arg(serde_json::to_string(entry).map_err(|_| StoreDown)?)
                    .arg("PX")
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
                    .query_async(&mut conn)
                    .await
                    .map_err(|_| StoreDown)?;
                Ok(())
            }
            IdempotencyStore::Memory { entries, ttl } => {
                let mut map = entries.lock().map_err(|_| StoreDown)?;
                map.insert(key.to_owned(), (entry.clone(), tokio::time::Instant::now() + *ttl));
                Ok(())
            }
        }
    }

    async fn release(&self, key: &str) {
        match self {
            IdempotencyStore::Redis { pool, prefix, .. } => {
                if let Ok(mut conn) = pool.get().await {
                    let _: Result<i64, _> = deadpool_redis::redis::cmd("DEL")
                        .arg(format!("{prefix}:idem:{key}"))
                        .query_async(&mut conn)
                        .await;
                }
            }
            IdempotencyStore::Memory { entries, .. } => {
                if let Ok(mut map) = entries.lock() {
                    map.remove(key);
                }
            }
        }
    }
}

fn conflict(status: StatusCode, code: &str, message: &str) -> Response {
    ApiError::new(status, "invalid_request_error", message)
        .code(code)
        .param("Idempotency-Key")
        .into_response()
}

fn replay(entry: Entry) -> Response {
    match entry {
        Entry::Done {
            status, headers, body, ..
        } => {
            let body = STANDARD.decode(body).unwrap_or_default();
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            resp
        }
        Entry::Streamed { .. } => conflict(
            StatusCode::CONFLICT,
            "idempotency_stream_replay",
            "A streamed request with this Idempotency-Key already completed; streams are not replayed.",
        ),
        Entry::TooLarge { .. } => conflict(
            StatusCode::CONFLICT,
            "idempotency_response_too_large",
            "A request with this Idempotency-Key already completed; its response was too large to keep for replay.",
        ),
        Entry::InFlight { .. } => conflict(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still in progress.",
        ),
    }
}

/// State of the middleware.
#[derive(Clone, Debug)]
pub struct Idempotency {
    /// Where entries live.
    pub store: IdempotencyStore,
    /// Body limit (the body is read here to fingerprint it).
    pub body_limit: usize,
    /// How long a repeat waits for the original in flight.
    pub wait: Duration,
}

/// Middleware for POST model routes (after authentication).
pub async fn idempotent(State(idem): State<Idempotency>, request: Request, next: Next) -> Response {
    let Some(raw_key) = request.headers().get("idempotency-key").cloned() else {
        return next.run(request).await;
    };
    let Ok(raw_key) = raw_key.to_str().map(str::to_owned) else {
        return ApiError::invalid("Idempotency-Key must be printable ASCII")
            .param("Idempotency-Key")
            .into_response();
    };
    if raw_key.is_empty() || raw_key.len() > MAX_KEY_LEN {
        return ApiError::invalid(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"))
            .param("Idempotency-Key")
            .into_response();
    }
    let user = request
        .extensions()
        .get::<Arc<Principal>>()
        .map(|p| p.user_id.clone())
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, idem.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "Request body is larger than the allowed limit.",
            )
            .code("request_too_large")
            .into_response();
        }
    };
    let key = hex(&Sha256::digest(format!("{user}\u{1f}{raw_key}").as_bytes()));
    let fingerprint = hex(&Sha256::digest([parts.uri.path().as_bytes(), b"\x1f", &bytes].concat()));

    let mut existing = match idem.store.claim(&key, &fingerprint).await {
        Ok(e) => e,
        Err(StoreDown) => return unavailable(),
    };
    let deadline = tokio::time::Instant::now() + idem.wait;
    while let Some(entry) = existing {
        if entry.fingerprint() != fingerprint {
            return conflict(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            );
        }
        if !matches!(entry, Entry::InFlight { .. }) || tokio::time::Instant::now() >= deadline {
            return replay(entry);
        }
        tokio::time::sleep(POLL).await;
        existing = match idem.store.get(&key).await {
            Ok(Some(e)) => Some(e),
            // The original failed and released the key: take it over.
            Ok(None) => match idem.store.claim(&key, &fingerprint).await {
                Ok(e) => e,
                Err(StoreDown) => return unavailable(),
            },
            Err(StoreDown) => return unavailable(),
        };
    }

    // Released if this future is dropped before an outcome is stored (the
    // client hung up, the request timed out), so a retry can run.
    let mut guard = Claim {
        store: idem.store.clone(),
        key: key.clone(),
        armed: true,
    };
    let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if !replayable(resp.status()) {
        // Transient outcomes (429, 402, 401/403, 5xx...) are not kept: a retry runs again.
        guard.armed = false;
        idem.store.release(&key).await;
        return resp;
    }
    let streamed = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streamed {
        guard.armed = false;
        if idem.store.put(&key, &Entry::Streamed { fingerprint }).await.is_err() {
            oneflow_runtime::count_redis_error("idempotency", "command");
            tracing::warn!("idempotency store unavailable; a repeat of this stream would run again");
        }
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            guard.armed = false;
            idem.store.release(&key).await;
            return ApiError::internal().into_response();
        }
    };
    let entry = if body.len() <= MAX_STORED_BODY {
        Entry::Done {
            fingerprint,
            status: parts.status.as_u16(),
            headers: kept_headers(&parts.headers),
            body: STANDARD.encode(&body),
        }
    } else {
        Entry::TooLarge { fingerprint }
    };
    guard.armed = false;
    if idem.store.put(&key, &entry).await.is_err() {
        oneflow_runtime::count_redis_error("idempotency", "command");
        tracing::warn!("idempotency store unavailable; a repeat of this request would run again");
    }
    Response::from_parts(parts, Body::from(body))
}

/// Outcomes worth replaying: successes and client errors a retry would repeat.
fn replayable(status: StatusCode) -> bool {
    status.is_success()
        || matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::NOT_FOUND
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNPROCESSABLE_ENTITY
        )
}

/// An in-flight claim, released on drop unless disarmed.
struct Claim {
    store: IdempotencyStore,
    key: String,
    armed: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.armed {
            let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
            tokio::spawn(async move { store.release(&key).await });
        }
    }
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*name).to_owned(), v.to_owned()))
        })
        .collect()
}

fn unavailable() -> Response {
    oneflow_runtime::count_redis_error("idempotency", "command");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "Idempotency storage is unavailable; retry shortly.",
    )
    .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
