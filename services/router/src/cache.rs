//! Exact-match response cache for non-streaming chat completions that opt in.
//!
//! The key is a SHA-256 of the scope (the user, unless the cache is global),
//! the public model and the request body in canonical form (object keys
//! sorted), so two requests share an answer only when they are the same
//! request. Values are the router's own `ChatResponse` message, so a hit
//! carries the route and usage of the answer it repeats. Redis serves every
//! router replica; without it an in-process cache bounded by entry count is
//! used. A cache that fails (Redis down) is a miss, never an error.
use std::time::Duration;

use bytes::Bytes;
use oneflow_proto::router::v1 as pb;
use prost::Message as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::config::{CacheConfig, CacheScope};

/// Where answers are kept.
enum Store {
    Memory(moka::sync::Cache<[u8; 32], Bytes>),
    Redis {
        pool: oneflow_runtime::RedisPool,
        prefix: String,
        timeout: Duration,
    },
}

/// The response cache.
pub struct ResponseCache {
    store: Store,
    ttl: Duration,
    max_body_bytes: usize,
    scope: CacheScope,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.store {
            Store::Memory(_) => "memory",
            Store::Redis { .. } => "redis",
        };
        f.debug_struct("ResponseCache")
            .field("store", &kind)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ResponseCache {
    /// The cache `config` describes; `None` when it is disabled.
    pub fn new(config: &CacheConfig) -> Result<Option<Self>, oneflow_runtime::RedisError> {
        if !config.enabled {
            return Ok(None);
        }
        let store = match oneflow_runtime::redis_pool(&config.redis)? {
            Some(pool) => Store::Redis {
                pool,
                prefix: format!("{}:cache:", config.redis.key_prefix),
                timeout: config.redis.operation_timeout,
            },
            None => Store::Memory(
                moka::sync::Cache::builder()
                    .max_capacity(config.max_entries)
                    .time_to_live(config.ttl)
                    .build(),
            ),
        };
        Ok(Some(Self {
            store,
            ttl: config.ttl,
            max_body_bytes: config.max_body_bytes,
            scope: config.scope,
        }))
    }

    /// The key of a request: scope, model and canonical body.
    pub fn key(&self, user: &str, model: &str, body: &Map<String, Value>) -> [u8; 32] {
        let scope = match self.scope {
            CacheScope::User => user,
            CacheScope::Global => "",
        };
        // serde_json's Map is ordered by key, so this encoding is canonical.
        let canonical = serde_json::to_vec(body).unwrap_or_default();
        Sha256::new()
            .chain_update(scope.as_bytes())
            .chain_update([0u8])
            .chain_update(model.as_bytes())
            .chain_update([0u8])
            .chain_update(&canonical)
            .finalize()
            .into()
    }

    /// The stored answer for `key`, if any.
    pub async fn get(&self, key: &[u8; 32]) -> Option<pb::ChatResponse> {
        let raw = match &self.store {
            Store::Memory(cache) => cache.get(key),
            Store::Redis { pool, prefix, timeout } => {
                let redis_key = format!("{prefix}{}", hex::encode(key));
                let fetch = async {
                    let mut conn = pool.get().await.ok()?;
                    deadpool_redis::redis::cmd("GET")
                        .arg(&redis_key)
                        .query_async::<Option<Vec<u8>>>(&mut conn)
                        .await
                        .ok()
                        .flatten()
                };
                let got = tokio::time::timeout(*timeout, fetch).await;
                if got.is_err() {
                    oneflow_runtime::count_redis_error("cache", "timeout");
                }
                got.ok().flatten().map(Bytes::from)
            }
        }?;
        pb::ChatResponse::decode(raw).ok()
    }

    /// Stores `answer` under `key` (answers over the size bound are skipped).
    pub async fn put(&self, key: &[u8; 32], answer: &pb::ChatResponse) {
        if answer.body.len() > self.max_body_bytes {
            return;
        }
        let raw = Bytes::from(answer.encode_to_vec());
        match &self.store {
            Store::Memory(cache) => cache.insert(*key, raw),
            Store::Redis { pool, prefix, timeout } => {
                let redis_key = format!("{prefix}{}", hex::encode(key));
                let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let store = async {
                    let mut conn = pool.get().await.ok()?;
                    deadpool_redis::redis::cmd("SET")
                        .arg(&redis_key)
                        .arg(raw.as_ref())
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async::<()>(&mut conn)
                        .await
                        .ok()
                };
                if tokio::time::timeout(*timeout, store).await.ok().flatten().is_none() {
                    oneflow_runtime::count_redis_error("cache", "command");
                    tracing::warn!("response cache: could not store an answer in Redis");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::ResponseCache;
    use crate::config::{CacheConfig, CacheScope};
    use oneflow_proto::router::v1 as pb;
    use serde_json::{Map, Value, json};

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[tokio::test]
    async fn keys_ignore_key_order_but_not_content_or_scope() {
        let cache = ResponseCache::new(&CacheConfig::default()).unwrap().unwrap();
        let a = body(json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0}));
        let b = body(json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}]}));
        let c = body(json!({"temperature": 1, "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(cache.key("u", "m", &a), cache.key("u", "m", &b));
        assert_ne!(cache.key("u", "m", &a), cache.key("u", "m", &c));
        assert_ne!(cache.key("u", "m", &a), cache.key("v", "m", &a));
        assert_ne!(cache.key("u", "m", &a), cache.key("u", "n", &a));
        let global = ResponseCache::new(&CacheConfig {
            scope: CacheScope::Global,
            ..CacheConfig::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(global.key("u", "m", &a), global.key("v", "m", &a));
    }

    #[tokio::test]
    async fn memory_store_round_trips_and_skips_oversized_answers() {
        let cache = ResponseCache::new(&CacheConfig {
            max_body_bytes: 10,
            ..CacheConfig::default()
        })
        .unwrap()
        .unwrap();
        let small = pb::ChatResponse {
            body: b"{}".to_vec(),
            ..Default::default()
        };
        let big = pb::ChatResponse {
            body: vec![b' '; 11],
            ..Default::default()
        };
        cache.put(&[1; 32], &small).await;
        cache.put(&[2; 32], &big).await;
        assert_eq!(cache.get(&[1; 32]).await.unwrap().body, b"{}");
        assert!(cache.get(&[2; 32]).await.is_none());
        assert!(cache.get(&[3; 32]).await.is_none());
    }

    #[test]
    fn a_disabled_cache_is_none() {
        assert!(
            ResponseCache::new(&CacheConfig {
                enabled: false,
                ..CacheConfig::default()
            })
            .unwrap()
            .is_none()
        );
    }
}
