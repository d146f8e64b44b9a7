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
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored row does not parse (corruption or a newer schema).
    #[error("stored data is invalid: {0}")]
    Corrupt(&'static str),
    /// A unique value (email) is taken.
    #[error("already exists")]
    Conflict,
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

    /// The pool (for the revocation channel).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// True on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres
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

pub(crate) fn limits_from_json(json: &str) -> Result<oneflow_proto::common::v1::KeyLimits, StoreError> {
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

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Id.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// bcrypt hash; none for the bootstrap admin until a password is set.
    pub password_hash: Option<String>,
    /// Role.
    pub role: Role,
    /// When disabled, if it is.
    pub disabled_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
}

type UserRow = (String, String, Option<String>, String, Option<i64>, i64);

fn user_from(row: UserRow) -> Result<UserRecord, StoreError> {
    let (id, email, password_hash, role, disabled_at, created_at) = row;
    Ok(UserRecord {
        id,
        email,
        password_hash,
        role: Role::parse(&role).ok_or(StoreError::Corrupt("role"))?,
        disabled_at,
        created_at,
    })
}

/// An API key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Human name.
    pub name: String,
    /// Displayable prefix.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Limits as stored JSON.
    pub limits: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: Option<i64>,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// End of the grace period after a rotation.
    pub grace_until: Option<i64>,
}

type KeyRecordRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

const KEY_COLUMNS: &str = "id, user_id, name, prefix, scopes, limits, created_at, expires_at, revoked_at, grace_until";

fn key_from(row: KeyRecordRow) -> KeyRecord {
    let (id, user_id, name, prefix, scopes, limits, created_at, expires_at, revoked_at, grace_until) = row;
    KeyRecord {
        id,
        user_id,
        name,
        prefix,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        limits,
        created_at,
        expires_at,
        revoked_at,
        grace_until,
    }
}

/// What a new key is created with.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    /// Owner.
    pub user_id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Scopes.
    pub scopes: &'a [Scope],
    /// Limits JSON.
    pub limits: Option<&'a str>,
    /// Expiry.
    pub expires_at: Option<i64>,
}

/// id, family, owner, expiry, use and revocation times of a refresh token.
type RefreshRow = (String, String, String, i64, Option<i64>, Option<i64>);

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid and now used: issue the next pair in `family`.
    Rotated {
        /// Owner.
        user_id: String,
        /// Family.
        family_id: String,
    },
    /// Already used before: the family is now revoked.
    Reused {
        /// Owner.
        user_id: String,
        /// Family.
        family_id: String,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// One audit entry to write.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry<'a> {
    /// What happened, e.g. `login.failure`.
    pub action: &'a str,
    /// Who did it.
    pub actor_user_id: Option<&'a str>,
    /// What it was done to (user id, key id, or email for logins).
    pub target: Option<&'a str>,
    /// Client address.
    pub client_address: Option<&'a str>,
    /// Request id.
    pub request_id: Option<&'a str>,
}

/// An audit entry as stored.
pub type AuditRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl AuthStore {
    /// Creates a user; [`StoreError::Conflict`] when the email is taken.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO users (id, email, password_hash, role, disabled_at, created_at) VALUES ($1, $2, $3, $4, NULL, $5)")
            .bind(&id)
            .bind(email)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { StoreError::Query(e) })?;
        Ok(UserRecord {
            id,
            email: email.to_owned(),
            password_hash: Some(password_hash.to_owned()),
            role,
            disabled_at: None,
            created_at: now,
        })
    }

    /// The user with this (normalised) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, role, disabled_at, created_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(user_from).transpose()
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, email, password_hash, role, disabled_at, created_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(user_from).transpose()
    }

    /// Users ordered by id, after `after_id`.
    pub async fn list_users(&self, limit: u32, after_id: &str) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, role, disabled_at, created_at FROM users WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(user_from).collect()
    }

    /// Changes a user's role and/or disabled state.
    pub async fn update_user(
        &self,
        id: &str,
        role: Option<Role>,
        disabled: Option<bool>,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError> {
        if let Some(role) = role {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        match disabled {
            Some(true) => {
                sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
            Some(false) => {
                sqlx::query("UPDATE users SET disabled_at = NULL WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
            None => {}
        }
        self.user_by_id(id).await
    }

    /// Stores a new refresh token (by hash) in `family_id`.
    pub async fn insert_refresh(
        &self,
        family_id: &str,
        user_id: &str,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at, used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(family_id)
        .bind(user_id)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Uses a refresh token once; a second use revokes its whole family.
    pub async fn use_refresh(&self, token_hash: &str, now: i64) -> Result<RefreshUse, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT id, family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, family_id, user_id, expires_at, used_at, revoked_at)) = row else {
            return Ok(RefreshUse::Invalid);
        };
        if revoked_at.is_some() || expires_at <= now {
            return Ok(RefreshUse::Invalid);
        }
        let fresh = used_at.is_none()
            && sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !fresh {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(&family_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RefreshUse::Reused { user_id, family_id });
        }
        tx.commit().await?;
        Ok(RefreshUse::Rotated { user_id, family_id })
    }

    /// Revokes the family of a refresh token (logout); its owner, if found.
    pub async fn revoke_refresh_family(&self, token_hash: &str, now: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some((family_id, user_id)) = row else {
            return Ok(None);
        };
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&family_id)
            .execute(&self.pool)
            .await?;
        Ok(Some(user_id))
    }

    /// Creates a key; returns it and its secret (shown once).
    pub async fn create_key(&self, key: &NewKey<'_>, now: i64) -> Result<(KeyRecord, String), StoreError> {
        let mut tx = self.pool.begin().await?;
        let created = insert_key(&mut tx, key, now).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The key with this id.
    pub async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row: Option<KeyRecordRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(key_from))
    }

    /// A user's keys, newest first.
    pub async fn list_keys(&self, user_id: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let rows: Vec<KeyRecordRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(key_from).collect())
    }

    /// Issues a successor of `old` and lets `old` work until `grace_until`.
    pub async fn rotate_key(
        &self,
        old: &KeyRecord,
        grace_until: i64,
        now: i64,
    ) -> Result<(KeyRecord, String), StoreError> {
        let mut tx = self.pool.begin().await?;
        let created = insert_key(
            &mut tx,
            &NewKey {
                user_id: &old.user_id,
                name: &old.name,
                scopes: &old.scopes,
                limits: old.limits.as_deref(),
                expires_at: old.expires_at,
            },
            now,
        )
        .await?;
        sqlx::query("UPDATE api_keys SET grace_until = $1 WHERE id = $2 AND (grace_until IS NULL OR grace_until > $1)")
            .bind(grace_until)
            .bind(&old.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Revokes a key now.
    pub async fn revoke_key(&self, id: &str, now: i64) -> Result<Option<KeyRecord>, StoreError> {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.key_by_id(id).await
    }

    /// Appends an audit entry.
    pub async fn audit(&self, entry: &AuditEntry<'_>, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (id, action, actor_user_id, target, client_address, request_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(entry.action)
        .bind(entry.actor_user_id)
        .bind(entry.target)
        .bind(entry.client_address)
        .bind(entry.request_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Failed logins since `since` for an account (email) and for an address.
    pub async fn login_failures(&self, email: &str, address: &str, since: i64) -> Result<(i64, i64), StoreError> {
        let (by_account,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'login.failure' AND target = $1 AND at > $2",
        )
        .bind(email)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let by_address = if address.is_empty() {
            0
        } else {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM audit_events WHERE action = 'login.failure' AND client_address = $1 AND at > $2",
            )
            .bind(address)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
            n
        };
        Ok((by_account, by_address))
    }

    /// Audit entries before `before` (0 = now), newest first.
    pub async fn list_audit(&self, limit: u32, before: i64) -> Result<Vec<AuditRow>, StoreError> {
        let before = if before <= 0 { i64::MAX } else { before };
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, action, actor_user_id, target, client_address, request_id, at FROM audit_events \
             WHERE at < $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &NewKey<'_>,
    now: i64,
) -> Result<(KeyRecord, String), StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let secret = keys::generate();
    let scopes = key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, scopes, limits, created_at, expires_at, revoked_at, grace_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL)",
    )
    .bind(&id)
    .bind(key.user_id)
    .bind(key.name)
    .bind(&secret.display_prefix)
    .bind(&secret.hash)
    .bind(&scopes)
    .bind(key.limits)
    .bind(now)
    .bind(key.expires_at)
    .execute(&mut **tx)
    .await?;
    let record = KeyRecord {
        id,
        user_id: key.user_id.to_owned(),
        name: key.name.to_owned(),
        prefix: secret.display_prefix,
        scopes: key.scopes.to_vec(),
        limits: key.limits.map(str::to_owned),
        created_at: now,
        expires_at: key.expires_at,
        revoked_at: None,
        grace_until: None,
    };
    Ok((record, secret.secret))
}
