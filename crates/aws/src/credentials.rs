//! AWS credentials and region, read once from the environment and handed to the signer.
//!
//! The lookup is a closure so that tests and the embedded binary never depend on the
//! process environment, and so that secrets never pass through a `Debug` or error message.

use std::fmt;

use crate::AwsError;

/// Long-term or temporary AWS credentials used to sign requests.
///
/// `Debug` shows the access key id (it identifies the key but grants nothing) and redacts
/// the secret access key and the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// Credentials from their parts; `session_token` is set for temporary (STS) credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional `AWS_SESSION_TOKEN`
    /// through `lookup` (pass `|k| std::env::var(k).ok()` in production).
    ///
    /// Empty or blank values count as unset. The error names the missing variable, never a value.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AwsError> {
        let read = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let access_key_id =
            read("AWS_ACCESS_KEY_ID").ok_or_else(|| AwsError::Credentials("AWS_ACCESS_KEY_ID is not set".into()))?;
        let secret_access_key = read("AWS_SECRET_ACCESS_KEY")
            .ok_or_else(|| AwsError::Credentials("AWS_SECRET_ACCESS_KEY is not set".into()))?;
        Ok(Self::new(access_key_id, secret_access_key, read("AWS_SESSION_TOKEN")))
    }

    /// The access key id (`AKIA...` or `ASIA...`); not a secret.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Whether these are temporary credentials carrying a session token.
    pub fn has_session_token(&self) -> bool {
        self.session_token.is_some()
    }

    /// The form `aws-sigv4` signs with. Kept inside the crate so the secret has one way out.
    pub(crate) fn to_sdk(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            self.session_token.clone(),
            None,
            "oneflow",
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish()
    }
}

/// The region to call: `explicit` when given, else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
///
/// The region becomes part of a host name, so it must look like one (`us-east-1`,
/// `eu-central-2`): lowercase letters, digits and single hyphens. Anything else is rejected
/// rather than allowed to redirect signed requests to another host.
pub fn resolve_region(explicit: Option<&str>, lookup: impl Fn(&str) -> Option<String>) -> Result<String, AwsError> {
    let found = explicit
        .map(str::to_owned)
        .or_else(|| lookup("AWS_REGION"))
        .filter(|r| !r.trim().is_empty())
        .or_else(|| lookup("AWS_DEFAULT_REGION"))
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| AwsError::Credentials("no region: set AWS_REGION or configure one".into()))?;
    validate_region(&found)?;
    Ok(found)
}

/// Rejects anything that is not a plausible region name (see [`resolve_region`]).
pub(crate) fn validate_region(region: &str) -> Result<(), AwsError> {
    let well_formed = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
        && !region.contains("--");
    if well_formed {
        Ok(())
    } else {
        Err(AwsError::Invalid(format!("`{region}` is not a valid AWS region name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_keys_and_optional_token() {
        let creds = Credentials::from_env(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ]))
        .unwrap();
        assert_eq!(creds.access_key_id(), "AKID");
        assert!(!creds.has_session_token());

        let creds = Credentials::from_env(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_SESSION_TOKEN", "tok3n"),
        ]))
        .unwrap();
        assert!(creds.has_session_token());
    }

    #[test]
    fn missing_or_blank_secret_is_an_error_naming_the_variable() {
        let err =
            Credentials::from_env(env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "  ")])).unwrap_err();
        assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        let err = Credentials::from_env(env(&[])).unwrap_err();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    }

    #[test]
    fn debug_redacts_secret_and_token() {
        let creds = Credentials::new("AKIDEXAMPLE", "super-secret-key", Some("session-token-value".into()));
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("super-secret-key"), "{shown}");
        assert!(!shown.contains("session-token-value"), "{shown}");
    }

    #[test]
    fn region_precedence_and_validation() {
        let lookup = env(&[("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "us-west-2")]);
        assert_eq!(resolve_region(Some("ap-south-1"), &lookup).unwrap(), "ap-south-1");
        assert_eq!(resolve_region(None, &lookup).unwrap(), "eu-west-1");
        assert_eq!(
            resolve_region(None, env(&[("AWS_DEFAULT_REGION", "us-west-2")])).unwrap(),
            "us-west-2"
        );
        assert!(resolve_region(None, env(&[])).is_err());
        assert!(resolve_region(Some("evil.example.com/#"), env(&[])).is_err());
        assert!(resolve_region(Some("US-EAST-1"), env(&[])).is_err());
    }
}
