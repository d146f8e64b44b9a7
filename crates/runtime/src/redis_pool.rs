//! Redis connection pools (deadpool-redis) with bounded operation timeouts, so a
//! slow or dead Redis degrades a service instead of hanging it.
use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime, Timeouts};
use serde::{Deserialize, Serialize};

use crate::Secret;

/// The `[redis]` section of billing and router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db`; empty = in-process memory instead.
    pub url: Secret,
    /// Pool size.
    pub pool_size: usize,
    /// Bound on waiting for, creating or checking a connection.
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// Prefix for every key this deployment writes (several deployments can share a Redis).
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            pool_size: 32,
            operation_timeout: Duration::from_secs(5),
            key_prefix: "oneflow".to_owned(),
        }
    }
}

/// The pool could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the Redis pool: {0}")]
pub struct RedisError(String);

/// Builds a lazily-connecting pool; `None` when no URL is configured.
pub fn redis_pool(config: &RedisConfig) -> Result<Option<Pool>, RedisError> {
    if config.url.is_empty() {
        return Ok(None);
    }
    let mut cfg = Config::from_url(config.url.expose());
    let mut pool_cfg = deadpool_redis::PoolConfig::new(config.pool_size.max(1));
    pool_cfg.timeouts = Timeouts {
        wait: Some(config.operation_timeout),
        create: Some(config.operation_timeout),
        recycle: Some(config.operation_timeout),
    };
    cfg.pool = Some(pool_cfg);
    cfg.create_pool(Some(Runtime::Tokio1))
        .map(Some)
        .map_err(|e| RedisError(e.to_string().replace(config.url.expose(), "[redacted]")))
}
