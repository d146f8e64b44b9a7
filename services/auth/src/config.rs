//! The auth service's configuration.
use std::time::Duration;

use oneflow_runtime::{DatabaseConfig, Secret, ServerConfig};
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Development accepts a generated signing secret; production refuses to start
/// without a strong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Laptop and tests.
    #[default]
    Development,
    /// Real deployments.
    Production,
}

/// A signing key that is still accepted for verification after a rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationKey {
    /// Key id, as found in tokens' `kid` header.
    pub kid: String,
    /// HMAC secret.
    pub secret: Secret,
}

/// Access and refresh tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Current HMAC-SHA256 signing secret (at least 32 bytes in production).
    pub secret: Secret,
    /// Key id written into new tokens.
    pub kid: String,
    /// Earlier keys still accepted while their tokens live out (rotation).
    pub previous: Vec<VerificationKey>,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Access token lifetime.
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// Refresh token lifetime.
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            secret: Secret::default(),
            kid: "k1".to_owned(),
            previous: Vec::new(),
            issuer: "oneflow".to_owned(),
            audience: "oneflow-api".to_owned(),
            access_ttl: Duration::from_secs(30 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Failed-login limits, counted over a sliding window from the audit log (so
/// they hold across replicas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginLimits {
    /// Failures allowed per account in the window.
    pub per_account: u32,
    /// Failures allowed per client address in the window.
    pub per_address: u32,
    /// The window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_account: 10,
            per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Configuration of `oneflow-auth` (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Listen address and drain bound.
    pub server: ServerConfig,
    /// `development` or `production`.
    pub mode: Mode,
    /// The auth database (PostgreSQL or SQLite).
    pub database: DatabaseConfig,
    /// Apply migrations at start-up (turn off when a migration job runs them).
    pub auto_migrate: bool,
    /// How long the gateway may cache a validated credential.
    #[serde(with = "humantime_serde")]
    pub principal_cache_ttl: Duration,
    /// Access and refresh tokens.
    pub jwt: JwtConfig,
    /// bcrypt cost for passwords (at least 12).
    pub bcrypt_cost: u32,
    /// Shortest password accepted.
    pub min_password_length: usize,
    /// Whether anyone may register (`POST /v1/auth/register`); admins can always create users.
    pub allow_registration: bool,
    /// How long a rotated key keeps working when the call does not say.
    #[serde(with = "humantime_serde")]
    pub default_key_grace: Duration,
    /// Failed-login limits.
    pub login_limits: LoginLimits,
    /// Logs, metrics, traces.
    pub telemetry: TelemetryConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::new(([0, 0, 0, 0], 50051).into()),
            mode: Mode::Development,
            database: DatabaseConfig {
                url: Secret::new("sqlite://auth.db"),
                ..DatabaseConfig::default()
            },
            auto_migrate: true,
            principal_cache_ttl: Duration::from_secs(60),
            jwt: JwtConfig::default(),
            bcrypt_cost: 12,
            min_password_length: 12,
            allow_registration: true,
            default_key_grace: Duration::from_secs(7 * 24 * 3600),
            login_limits: LoginLimits::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

/// Secrets that must never be accepted as a production signing key.
const KNOWN_DEFAULTS: &[&str] = &[
    "secret",
    "changeme",
    "change-me",
    "jwt-secret",
    "oneflow",
    "development",
];

/// The configuration is unsafe to run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigCheckError {
    /// Production without a strong signing secret.
    #[error("production mode needs jwt.secret of at least 32 bytes that is not a known default")]
    WeakSecret,
    /// bcrypt cost below 12.
    #[error("bcrypt_cost must be at least 12")]
    WeakBcrypt,
    /// Passwords shorter than 12 characters allowed.
    #[error("min_password_length must be at least 12")]
    ShortPasswords,
}

impl AuthConfig {
    /// Refuses configurations that would weaken authentication.
    pub fn check(&self) -> Result<(), ConfigCheckError> {
        if self.bcrypt_cost < 12 {
            return Err(ConfigCheckError::WeakBcrypt);
        }
        if self.min_password_length < 12 {
            return Err(ConfigCheckError::ShortPasswords);
        }
        if self.mode == Mode::Production {
            let s = self.jwt.secret.expose();
            let weak = s.len() < 32 || KNOWN_DEFAULTS.iter().any(|d| s.eq_ignore_ascii_case(d));
            let weak_previous = self.jwt.previous.iter().any(|k| k.secret.expose().len() < 32);
            if weak || weak_previous {
                return Err(ConfigCheckError::WeakSecret);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_missing_default_and_short_secrets() {
        let mut c = AuthConfig {
            mode: Mode::Production,
            ..AuthConfig::default()
        };
        assert_eq!(c.check(), Err(ConfigCheckError::WeakSecret));
        c.jwt.secret = Secret::new("changeme");
        assert_eq!(c.check(), Err(ConfigCheckError::WeakSecret));
        c.jwt.secret = Secret::new("x".repeat(31));
        assert_eq!(c.check(), Err(ConfigCheckError::WeakSecret));
        c.jwt.secret = Secret::new("x".repeat(32));
        assert_eq!(c.check(), Ok(()));
        c.bcrypt_cost = 10;
        assert_eq!(c.check(), Err(ConfigCheckError::WeakBcrypt));
        let dev = AuthConfig::default();
        assert_eq!(dev.check(), Ok(()));
    }
}
