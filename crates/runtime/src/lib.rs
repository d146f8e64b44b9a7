//! Scaffolding every OneFlow service binary shares, so that each `main.rs` only
//! wires: layered configuration with redacted secrets, the common CLI
//! (`serve`, `migrate`, `check-config`, `health-check`), signal-driven shutdown
//! with a bounded drain, the internal gRPC+HTTP server (health, reflection,
//! metrics, trace context), gRPC client channels, and storage pools chosen by URL.

mod cli;
mod config;
mod db;
mod grpc;
mod health_check;
mod redis_pool;
mod serve;
mod shutdown;

pub use cli::{Cli, Command, NoExtra, emit};
pub use config::{ConfigError, Secret, ServerConfig, load_config};
pub use db::{DatabaseConfig, DbError, connect_database, count_db_error, is_postgres};
pub use grpc::{GrpcClientConfig, Readiness, TracedChannel, internal_router, lazy_channel, trace_http};
pub use health_check::health_check;
pub use redis_pool::{RedisConfig, RedisConn, RedisError, RedisMode, RedisPool, count_redis_error, redis_pool};
pub use serve::{bind, serve};
pub use shutdown::{install_crypto_provider, shutdown_on_signal};
