//! Persistence of users, keys and audit events over `sqlx::AnyPool`, so the same
//! code runs on PostgreSQL and SQLite. Timestamps are Unix milliseconds.
use oneflow_runtime::{DatabaseConfig, is_postgres};
use sqlx::AnyPool;
use sqlx::migrate::Migrator;

use crate::domain::{Principal, Role, Scope};
use crate::keys;

/// Storage failures, with messages safe for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] oneflow_runtime::DbError),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error")]
    Query(#[from] sqlx::Error),
    /// A stored row does not parse (corruption or a newer schema).
    #[error("stored data is invalid: {0}")]
    Corrupt(&'static str),
}

/// The first admin, created once; `secret` is shown to the operator once.
#[derive(Debug)]
pub struct BootstrappedAdmin {
    /// The admin's user id.
    pub user_id: String,
    /// The admin key's id.
    pub key_id: String,
    /// The admin key's secret.
    pub secret: String,
}

/// Handle to the auth database.
#[derive(Clone, Debug)]
pub struct AuthStore {
    pool: AnyPool,
    postgres: bool,
}

type KeyRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    Option<i64>,
);

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl AuthStore {
    /// Opens the database named by `config.url`.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let pool = oneflow_runtime::connect_database(config).await?;
        Ok(Self {
            pool,
            postgres: is_postgres(config.url.expose()),
        })
    }

    /// Applies this service's migrations for the connected engine.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator: Migrator = if self.postgres {
            sqlx::migrate!("../../migrations/auth/postgres")
        } else {
            sqlx::migrate!("../../migrations/auth/sqlite")
        };
        // Versions are numbered per service (auth 1xxxx, billing 2xxxx), so
        // services sharing one database must not treat each other's
        // migrations as missing.
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Finds the principal of an API key secret, if the key is usable now.
    pub async fn principal_for_key(&self, secret: &str, now: i64) -> Result<Option<Principal>, StoreError> {
        let hash = keys::hash_secret(secret);
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT k.id, k.user_id, k.prefix, k.scopes, k.limits, k.expires_at, k.revoked_at, k.grace_until, u.role, u.disabled_at \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((key_id, user_id, prefix, scopes, limits, expires_at, revoked_at, grace_until, role, disabled_at)) =
            row
        else {
            return Ok(None);
        };
        if revoked_at.is_some() || disabled_at.is_some() {
            return Ok(None);
        }
        let end = match (expires_at, grace_until) {
            (Some(e), Some(g)) => Some(e.min(g)),
            (e, g) => e.or(g),
        };
        if end.is_some_and(|end| end <= now) {
            return Ok(None);
        }
        let role = Role::parse(&role).ok_or(StoreError::Corrupt("role"))?;
        let scopes = scopes.split(',').filter_map(Scope::parse).collect();
        let limits = match limits {
            Some(json) => Some(limits_from_json(&json)?),
            None => None,
        };
        Ok(Some(Principal {
            user_id,
            key_id,
            key_prefix: prefix,
            role,
            scopes,
            expires_at_millis: end.unwrap_or(0),
            limits,
        }))
    }

    /// Creates the first admin user and an admin key, unless an admin exists.
    pub async fn bootstrap_admin(&self, email: &str) -> Result<Option<BootstrappedAdmin>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE role = 'admin' LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            return Ok(None);
        }
        let now = now_millis();
        let user_id = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO users (id, email, password_hash, role, disabled_at, created_at) VALUES ($1, $2, NULL, 'admin', NULL, $3)")
            .bind(&user_id)
            .bind(email.trim().to_ascii_lowercase())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let key_id = uuid::Uuid::now_v7().to_string();
        let secret = keys::generate();
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, scopes, limits, created_at, expires_at, revoked_at, grace_until) \
             VALUES ($1, $2, 'bootstrap admin', $3, $4, 'inference,admin', NULL, $5, NULL, NULL, NULL)",
        )
        .bind(&key_id)
        .bind(&user_id)
        .bind(&secret.display_prefix)
        .bind(&secret.hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO audit_events (id, action, actor_user_id, target, client_address, request_id, at) VALUES ($1, 'admin.bootstrap', NULL, $2, NULL, NULL, $3)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(BootstrappedAdmin {
            user_id,
            key_id,
            secret: secret.secret,
        }))
    }
}

fn limits_from_json(json: &str) -> Result<oneflow_proto::common::v1::KeyLimits, StoreError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        requests_per_minute: Option<u64>,
        tokens_per_minute: Option<u64>,
        requests_per_day: Option<u64>,
        tokens_per_day: Option<u64>,
        tokens_per_month: Option<u64>,
        credits_per_month: Option<String>,
    }
    let s: Stored = serde_json::from_str(json).map_err(|_| StoreError::Corrupt("limits"))?;
    Ok(oneflow_proto::common::v1::KeyLimits {
        requests_per_minute: s.requests_per_minute,
        tokens_per_minute: s.tokens_per_minute,
        requests_per_day: s.requests_per_day,
        tokens_per_day: s.tokens_per_day,
        tokens_per_month: s.tokens_per_month,
        credits_per_month: s.credits_per_month,
    })
}
