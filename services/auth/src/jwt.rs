//! Access tokens: HS256 JWTs with a `kid` header so signing keys can rotate.
//! Verification pins the algorithm (no `none`, no algorithm confusion), picks
//! the key by `kid`, checks `iss` and `aud`, and checks `exp` and `nbf`
//! against the service's [`Clock`].
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::config::JwtConfig;
use crate::domain::Role;

/// Allowed clock skew for `nbf`, in seconds.
const NBF_LEEWAY_SECS: i64 = 30;

/// The claims OneFlow writes and reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// `user` or `admin`.
    pub role: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Token id.
    pub jti: String,
}

/// Why a token is refused (deliberately coarse: the client learns nothing more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed, correctly signed OneFlow token.
    #[error("invalid token")]
    Invalid,
    /// Past `exp` or before `nbf`.
    #[error("token expired or not yet valid")]
    Expired,
}

/// Issues and verifies access tokens.
pub struct Tokens {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Tokens {
    /// Keys from config; an empty current secret gets a random one (development
    /// only: `AuthConfig::check` refuses that in production), so tokens then do
    /// not survive a restart.
    pub fn new(config: &JwtConfig) -> Self {
        let current = if config.secret.is_empty() {
            tracing::warn!("jwt.secret is not set; using a random secret (tokens will not survive a restart)");
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            bytes.to_vec()
        } else {
            config.secret.expose().as_bytes().to_vec()
        };
        let mut decoding = HashMap::new();
        decoding.insert(config.kid.clone(), DecodingKey::from_secret(&current));
        for key in &config.previous {
            decoding.insert(
                key.kid.clone(),
                DecodingKey::from_secret(key.secret.expose().as_bytes()),
            );
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Time is checked against the service clock below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            kid: config.kid.clone(),
            encoding: EncodingKey::from_secret(&current),
            decoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_secs: i64::try_from(config.access_ttl.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// Access token lifetime in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// A signed access token for `user_id`.
    pub fn issue(&self, user_id: &str, role: Role, now_millis: i64) -> Result<String, TokenError> {
        let now = now_millis / 1000;
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = Claims {
            sub: user_id.to_owned(),
            role: role.as_str().to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now.saturating_add(self.ttl_secs),
            nbf: now,
            iat: now,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|_| TokenError::Invalid)
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str, now_millis: i64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(TokenError::Invalid)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|_| TokenError::Invalid)?;
        let now = now_millis / 1000;
        if data.claims.exp <= now || data.claims.nbf > now + NBF_LEEWAY_SECS {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

/// True when `raw` could be a JWT (three base64url parts), so it is not a key.
pub(crate) fn looks_like_jwt(raw: &str) -> bool {
    let mut parts = raw.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    };
    ok(parts.next()) && ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VerificationKey;
    use oneflow_runtime::Secret;
    use proptest::prelude::*;

    fn config(secret: &str) -> JwtConfig {
        JwtConfig {
            secret: Secret::new(secret),
            ..JwtConfig::default()
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let t = Tokens::new(&config(&"s".repeat(32)));
        let token = t.issue("u1", Role::Admin, NOW).unwrap();
        assert!(looks_like_jwt(&token));
        let claims = t.verify(&token, NOW + 1000).unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.role, "admin");
        assert_eq!(claims.exp - claims.iat, 30 * 60);
        assert_eq!(t.verify(&token, NOW + 30 * 60 * 1000), Err(TokenError::Expired));
    }

    #[test]
    fn alg_none_other_keys_and_algorithm_confusion_are_refused() {
        let t = Tokens::new(&config(&"s".repeat(32)));
        let token = t.issue("u1", Role::User, NOW).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        assert_eq!(
            t.verify(&format!("{none_header}.{payload}."), NOW),
            Err(TokenError::Invalid)
        );
        let rs_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
        let sig = token.split('.').nth(2).unwrap();
        assert_eq!(
            t.verify(&format!("{rs_header}.{payload}.{sig}"), NOW),
            Err(TokenError::Invalid)
        );
        let other = Tokens::new(&config(&"o".repeat(32)));
        assert_eq!(other.verify(&token, NOW), Err(TokenError::Invalid));
        let mut wrong_aud = config(&"s".repeat(32));
        wrong_aud.audience = "someone-else".into();
        assert_eq!(Tokens::new(&wrong_aud).verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn a_rotated_key_still_verifies_its_tokens() {
        let old = Tokens::new(&config(&"o".repeat(32)));
        let token = old.issue("u1", Role::User, NOW).unwrap();
        let mut rotated = config(&"n".repeat(32));
        rotated.kid = "k2".into();
        rotated.previous = vec![VerificationKey {
            kid: "k1".into(),
            secret: Secret::new("o".repeat(32)),
        }];
        let t = Tokens::new(&rotated);
        assert_eq!(t.verify(&token, NOW).unwrap().sub, "u1");
        let fresh = t.issue("u2", Role::User, NOW).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&fresh).unwrap().kid.as_deref(), Some("k2"));
    }

    proptest! {
        #[test]
        fn verification_never_panics(raw in ".{0,300}", parts in "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,40}") {
            let t = Tokens::new(&config(&"s".repeat(32)));
            prop_assert!(t.verify(&raw, NOW).is_err());
            prop_assert!(t.verify(&parts, NOW).is_err());
            let _ = looks_like_jwt(&raw);
        }
    }
}
