//! API key secrets: generation, hashing and shape checks. A secret is
//! `ofk_` + 43 base64url characters (32 random bytes). Only its SHA-256 is
//! stored; a fast hash is right here because the secret has 256 bits of
//! entropy (a slow hash would only slow the hot path down).
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// Every OneFlow API key starts with this (recognisable by secret scanners).
pub const KEY_PREFIX: &str = "ofk_";

/// Characters of the secret kept as its displayable prefix.
const DISPLAY_PREFIX_LEN: usize = 12;

/// A freshly generated key: the secret (shown once) and what is stored.
pub(crate) struct NewSecret {
    pub secret: String,
    pub hash: String,
    pub display_prefix: String,
}

pub(crate) fn generate() -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_secret(&secret);
    let display_prefix = secret.chars().take(DISPLAY_PREFIX_LEN).collect();
    NewSecret {
        secret,
        hash,
        display_prefix,
    }
}

/// Hex SHA-256 of a secret, the form keys are stored and looked up by.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// True when `raw` has the shape of an API key (so it is not a JWT).
pub(crate) fn looks_like_key(raw: &str) -> bool {
    raw.starts_with(KEY_PREFIX)
        && raw.len() == KEY_PREFIX.len() + 43
        && raw[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_differ() {
        let a = generate();
        let b = generate();
        assert!(looks_like_key(&a.secret));
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, hash_secret(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(a.secret.starts_with(&a.display_prefix));
        assert!(!a.hash.contains(&a.secret));
    }

    proptest! {
        #[test]
        fn shape_check_never_panics(raw in ".{0,200}") {
            let _ = looks_like_key(&raw);
        }
    }
}
