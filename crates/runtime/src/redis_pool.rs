//! Redis connection pools (deadpool-redis) with bounded operation timeouts, so a
//! slow or dead Redis degrades a service instead of hanging it. One Redis, a
//! Sentinel-managed primary or a Cluster are all reached through [`RedisPool`],
//! whose connections run the same commands and scripts: OneFlow's keys carry
//! hash tags, so every script's keys live in one slot of a Cluster.
use std::time::Duration;

use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{Cmd, Pipeline, RedisFuture, Value};
use deadpool_redis::{Config, Runtime, Timeouts};
use serde::{Deserialize, Serialize};

use crate::Secret;

/// How the Redis deployment is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    /// One server (or a proxy): `url` is its URL.
    #[default]
    Single,
    /// A primary found through Sentinel: `url` lists the sentinels, comma-separated.
    Sentinel,
    /// Redis Cluster: `url` lists seed nodes, comma-separated.
    Cluster,
}

/// A Redis section: billing's `[redis]`, the router's `[cache.redis]`, the
/// gateway's `[idempotency.redis]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db` (no TLS: this build has no `rediss://`); for Sentinel
    /// and Cluster a comma-separated list. Empty = in-process memory instead.
    pub url: Secret,
    /// Single server, Sentinel or Cluster.
    pub mode: RedisMode,
    /// Sentinel: the monitored primary's name.
    pub master_name: String,
    /// Sentinel: the password of the primary and replicas (the sentinels'
    /// own passwords go in their URLs).
    pub node_password: Secret,
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
            mode: RedisMode::Single,
            master_name: "mymaster".to_owned(),
            node_password: Secret::default(),
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

/// A pool of connections to one Redis, a Sentinel-managed primary or a Cluster.
#[derive(Clone)]
pub enum RedisPool {
    /// One server.
    Single(deadpool_redis::Pool),
    /// The primary Sentinel names.
    Sentinel(deadpool_redis::sentinel::Pool),
    /// A Cluster.
    Cluster(deadpool_redis::cluster::Pool),
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisPool::Single(_) => "RedisPool::Single",
            RedisPool::Sentinel(_) => "RedisPool::Sentinel",
            RedisPool::Cluster(_) => "RedisPool::Cluster",
        })
    }
}

/// A pooled connection of any [`RedisMode`]; runs commands, pipelines and scripts.
pub enum RedisConn {
    /// One server.
    Single(deadpool_redis::Connection),
    /// Through Sentinel.
    Sentinel(deadpool_redis::sentinel::Connection),
    /// A Cluster (commands routed by their keys' slot).
    Cluster(deadpool_redis::cluster::Connection),
}

impl RedisPool {
    /// A connection, within the pool's wait bound.
    pub async fn get(&self) -> Result<RedisConn, RedisError> {
        let err = |e: &dyn std::fmt::Display| RedisError(e.to_string());
        Ok(match self {
            RedisPool::Single(p) => RedisConn::Single(p.get().await.map_err(|e| err(&e))?),
            RedisPool::Sentinel(p) => RedisConn::Sentinel(p.get().await.map_err(|e| err(&e))?),
            RedisPool::Cluster(p) => RedisConn::Cluster(p.get().await.map_err(|e| err(&e))?),
        })
    }

    /// Whether keys are spread over a Cluster's primaries (a `SCAN` must then
    /// visit each; see [`RedisConn::primaries`]).
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisPool::Cluster(_))
    }
}

impl RedisConn {
    /// A Cluster's primaries as `(host, port)`; empty for the other modes.
    pub async fn primaries(&mut self) -> Result<Vec<(String, u16)>, RedisError> {
        let RedisConn::Cluster(_) = self else {
            return Ok(Vec::new());
        };
        let nodes: String = deadpool_redis::redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(self)
            .await
            .map_err(|e| RedisError(e.to_string()))?;
        Ok(parse_primaries(&nodes))
    }

    /// Runs `cmd` on the Cluster primary at `host:port` (a `SCAN` of its keys);
    /// on the other modes, on the one server.
    pub async fn query_on(&mut self, host: &str, port: u16, cmd: &Cmd) -> Result<Value, RedisError> {
        use deadpool_redis::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        match self {
            RedisConn::Cluster(c) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.to_owned(),
                    port,
                });
                c.route_command(cmd.clone(), routing)
                    .await
                    .map_err(|e| RedisError(e.to_string()))
            }
            other => cmd.query_async(other).await.map_err(|e| RedisError(e.to_string())),
        }
    }
}

/// `(host, port)` of every healthy primary in `CLUSTER NODES` output.
fn parse_primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _id = fields.next()?;
            let addr = fields.next()?;
            let flags = fields.next()?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            // host:port@cport[,hostname]
            let host_port = addr.split('@').next()?;
            let (host, port) = host_port.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Sentinel(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Sentinel(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

/// Builds a lazily-connecting pool; `None` when no URL is configured.
pub fn redis_pool(config: &RedisConfig) -> Result<Option<RedisPool>, RedisError> {
    if config.url.is_empty() {
        return Ok(None);
    }
    let mut pool_cfg = deadpool_redis::PoolConfig::new(config.pool_size.max(1));
    pool_cfg.timeouts = Timeouts {
        wait: Some(config.operation_timeout),
        create: Some(config.operation_timeout),
        recycle: Some(config.operation_timeout),
    };
    let redact = |e: &dyn std::fmt::Display| {
        let mut text = e.to_string();
        for secret in [config.url.expose(), config.node_password.expose()] {
            if !secret.is_empty() {
                text = text.replace(secret, "[redacted]");
            }
        }
        RedisError(text)
    };
    let urls: Vec<String> = config
        .url
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    match config.mode {
        RedisMode::Single => {
            let mut cfg = Config::from_url(config.url.expose());
            cfg.pool = Some(pool_cfg);
            cfg.create_pool(Some(Runtime::Tokio1))
                .map(|p| Some(RedisPool::Single(p)))
                .map_err(|e| redact(&e))
        }
        RedisMode::Sentinel => {
            let mut cfg = deadpool_redis::sentinel::Config::from_urls(
                urls,
                config.master_name.clone(),
                deadpool_redis::sentinel::SentinelServerType::Master,
            );
            if !config.node_password.is_empty() {
                let info =
                    deadpool_redis::redis::RedisConnectionInfo::default().set_password(config.node_password.expose());
                cfg = cfg.with_node_connection_info(Some(deadpool_redis::sentinel::SentinelNodeConnectionInfo {
                    tls_mode: None,
                    redis_connection_info: Some(info.into()),
                }));
            }
            cfg.pool = Some(pool_cfg);
            cfg.create_pool(Some(Runtime::Tokio1))
                .map(|p| Some(RedisPool::Sentinel(p)))
                .map_err(|e| redact(&e))
        }
        RedisMode::Cluster => {
            let mut cfg = deadpool_redis::cluster::Config::from_urls(urls);
            cfg.pool = Some(pool_cfg);
            cfg.create_pool(Some(Runtime::Tokio1))
                .map(|p| Some(RedisPool::Cluster(p)))
                .map_err(|e| redact(&e))
        }
    }
}

/// Counts a Redis failure of `client` (billing, idempotency, cache) in
/// `oneflow_redis_errors_total{client,kind}`, kind read from the error text:
/// connect, timeout or command. The Redis alerts watch it.
pub fn count_redis_error(client: &'static str, error: &str) {
    let lower = error.to_ascii_lowercase();
    let kind = if lower.contains("timed out") || lower.contains("timeout") {
        "timeout"
    } else if lower.contains("connect") || lower.contains("refused") || lower.contains("broken pipe") {
        "connect"
    } else {
        "command"
    };
    metrics::counter!("oneflow_redis_errors_total", "client" => client, "kind" => kind).increment(1);
}

#[cfg(test)]
mod tests {
    use super::parse_primaries;

    #[test]
    fn primaries_come_from_cluster_nodes_without_replicas_or_failed_nodes() {
        let nodes = "07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected\n\
                     67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922\n\
                     292f 10.0.0.3:30003@31003,node-3 master - 0 1426238318243 3 connected 10923-16383\n\
                     e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460\n\
                     dead 127.0.0.1:30009@31009 master,fail - 0 0 9 disconnected\n";
        assert_eq!(
            parse_primaries(nodes),
            vec![
                ("127.0.0.1".to_owned(), 30002),
                ("10.0.0.3".to_owned(), 30003),
                ("127.0.0.1".to_owned(), 30001)
            ]
        );
    }
}
