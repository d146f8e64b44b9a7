//! Configuration layering (defaults < file < `ONEFLOW__…` environment < flags).
//! Its own test binary: figment's `Jail` sets environment variables, which must
//! not race with other tests of the crate reading the environment from C code
//! (SQLite, the resolver) in the same process: glibc's `setenv` and `getenv`
//! are not safe together, and the race crashed a CI run.

use std::path::Path;
use std::time::Duration;

use oneflow_runtime::{ConfigError, Secret, load_config};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct Sample {
    name: String,
    port: u16,
    token: Secret,
    nested: Nested,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
struct Nested {
    #[serde(with = "humantime_serde")]
    timeout: Duration,
}

impl Default for Sample {
    fn default() -> Self {
        Self {
            name: "default".into(),
            port: 1,
            token: Secret::default(),
            nested: Nested::default(),
        }
    }
}

#[test]
#[expect(clippy::result_large_err, reason = "figment's Jail API fixes the error type")]
fn layers_apply_in_order_and_unknown_keys_fail() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", "name = \"file\"\nport = 2\n[nested]\ntimeout = \"30s\"\n")?;
        jail.set_env("ONEFLOW__PORT", "3");
        jail.set_env("ONEFLOW__TOKEN", "s3cr3t-value");
        let cfg: Sample =
            load_config(Some(Path::new("c.toml")), &[("name".into(), "flag".into())]).map_err(|e| e.to_string())?;
        assert_eq!(cfg.name, "flag");
        assert_eq!(cfg.port, 3);
        assert_eq!(cfg.nested.timeout, Duration::from_secs(30));
        assert_eq!(cfg.token.expose(), "s3cr3t-value");
        let shown = serde_json::to_string(&cfg).map_err(|e| e.to_string())?;
        assert!(!shown.contains("s3cr3t"), "secret printed: {shown}");
        assert!(!format!("{cfg:?}").contains("s3cr3t"));

        jail.set_env("ONEFLOW__NOPE", "1");
        let err = load_config::<Sample>(None, &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("nope"), "{err}");
        Ok(())
    });
}

#[test]
fn missing_file_is_an_error() {
    let err = load_config::<Sample>(Some(Path::new("/nonexistent/x.toml")), &[]);
    assert!(matches!(err, Err(ConfigError::MissingFile(_))));
}
