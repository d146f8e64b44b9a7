//! Relational storage chosen by URL: `postgres://…` in production, `sqlite://…`
//! for the one-process mode and tests. Services use `sqlx::AnyPool` with
//! portable SQL, and each carries its own migrations for both engines.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::Secret;

/// The `[database]` section of auth and billing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:pass@host/db` or `sqlite://path/file.db` (created if missing).
    pub url: Secret,
    /// Pool size.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Server-side statement timeout (PostgreSQL).
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://oneflow.db"),
            max_connections: 16,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// The database could not be reached or prepared.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL scheme is neither PostgreSQL nor SQLite.
    #[error("unsupported database URL scheme (use postgres:// or sqlite://)")]
    UnsupportedScheme,
    /// Connecting failed. The message never contains the URL.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
}

/// True for a PostgreSQL URL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens a pool for `config.url`, creating a SQLite file if missing.
pub async fn connect_database(config: &DatabaseConfig) -> Result<AnyPool, DbError> {
    sqlx::any::install_default_drivers();
    let url = config.url.expose();
    let postgres = is_postgres(url);
    let sqlite = url.starts_with("sqlite:");
    if !postgres && !sqlite {
        return Err(DbError::UnsupportedScheme);
    }
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let url = if sqlite && !memory && !url.contains("mode=") {
        format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
    } else {
        url.to_owned()
    };
    let options: AnyConnectOptions = url.parse().map_err(|e: sqlx::Error| DbError::Connect(scrub(&e)))?;
    let statement_ms = config.statement_timeout.as_millis();
    let max = if memory { 1 } else { config.max_connections.max(1) };
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(config.min_connections.min(max))
        .acquire_timeout(config.acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if postgres {
                    conn.execute(sqlx::AssertSqlSafe(format!("SET statement_timeout = {statement_ms}")))
                        .await?;
                } else {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| DbError::Connect(scrub(&e)))
}

/// sqlx errors can echo the connection string; keep only the error kind.
fn scrub(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid database URL".to_owned(),
        sqlx::Error::Io(io) => format!("I/O error: {}", io.kind()),
        sqlx::Error::Tls(_) => "TLS error".to_owned(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        sqlx::Error::Database(db) => format!("database error: {}", db.message()),
        other => other.to_string(),
    }
}

/// Counts a database failure in `oneflow_db_errors_total{kind}` (connect,
/// pool_timeout or query), which the database alerts watch; `None` for a
/// failure to connect at all.
pub fn count_db_error(error: Option<&sqlx::Error>) {
    let kind = match error {
        None | Some(sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed) => "connect",
        Some(sqlx::Error::PoolTimedOut) => "pool_timeout",
        Some(_) => "query",
    };
    metrics::counter!("oneflow_db_errors_total", "kind" => kind).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_is_created_and_usable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let config = DatabaseConfig {
            url: Secret::new(format!("sqlite://{}", path.display())),
            ..DatabaseConfig::default()
        };
        let pool = connect_database(&config).await.unwrap();
        let one: (i64,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
        assert_eq!(one.0, 1);
        assert!(path.exists());
    }

    #[tokio::test]
    async fn unknown_scheme_is_refused_without_echoing_the_url() {
        let config = DatabaseConfig {
            url: Secret::new("mysql://root:hunter2@db/x"),
            ..DatabaseConfig::default()
        };
        let err = connect_database(&config).await.err().unwrap().to_string();
        assert!(!err.contains("hunter2"));
    }
}
