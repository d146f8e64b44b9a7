//! Layered configuration: serde defaults < TOML file < `ONEFLOW__SECTION__KEY`
//! environment < command-line flags. Unknown keys are rejected by the
//! `deny_unknown_fields` of every config struct; secrets are [`Secret`], which
//! never prints.
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A configuration value that must never reach logs or `check-config` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when no value was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Where a service listens and how long it drains at shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Upper bound on draining in-flight requests and streams after SIGTERM.
    #[serde(with = "humantime_serde", default = "default_grace")]
    pub shutdown_grace: Duration,
}

fn default_grace() -> Duration {
    Duration::from_secs(30)
}

impl ServerConfig {
    /// A server config listening on `listen` with the default drain bound.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            shutdown_grace: default_grace(),
        }
    }
}

/// The configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer failed to parse or a key is unknown or mistyped.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The named file does not exist.
    #[error("config file not found: {0}")]
    MissingFile(String),
}

/// Assembles a `T` from its serde defaults, an optional TOML file, the
/// `ONEFLOW__…` environment and `--set key=value` overrides (dotted keys).
pub fn load_config<T: DeserializeOwned + Serialize + Default>(
    file: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::MissingFile(path.display().to_string()));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed("ONEFLOW__").split("__"));
    for (key, value) in overrides {
        let parsed: toml_value::Value = toml_value::parse(value);
        figment = figment.merge(Serialized::global(key.as_str(), parsed));
    }
    figment
        .extract()
        .map_err(|e| ConfigError::Invalid(redact(&e.to_string())))
}

/// figment quotes offending values in its messages; keep secrets out of them.
fn redact(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if ["secret", "password", "token", "api_key", "url"]
        .iter()
        .any(|w| lower.contains(w))
    {
        message
            .split('`')
            .enumerate()
            .map(|(i, part)| {
                if i % 2 == 1 && part.len() > 24 {
                    "[redacted]"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("`")
    } else {
        message.to_owned()
    }
}

/// `--set` values are typed like TOML scalars: numbers and booleans stay typed.
mod toml_value {
    pub(super) type Value = figment::value::Value;

    pub(super) fn parse(raw: &str) -> Value {
        if let Ok(b) = raw.parse::<bool>() {
            return Value::from(b);
        }
        if let Ok(i) = raw.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(f) = raw.parse::<f64>() {
            return Value::from(f);
        }
        Value::from(raw.to_owned())
    }
}
