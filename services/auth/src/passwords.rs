//! Passwords: bcrypt at the configured cost (≥ 12), hashed and verified on the
//! blocking pool. Unknown accounts are checked against a dummy hash of the same
//! cost so they take as long as a wrong password.
use std::sync::{Arc, OnceLock};

/// Password hashing with one cost.
#[derive(Debug, Clone)]
pub struct Passwords {
    cost: u32,
    dummy: Arc<OnceLock<String>>,
}

impl Passwords {
    /// Hashing at `cost`.
    pub fn new(cost: u32) -> Self {
        Self {
            cost,
            dummy: Arc::new(OnceLock::new()),
        }
    }

    /// A bcrypt hash of `password`.
    pub async fn hash(&self, password: &str) -> Option<String> {
        let password = password.to_owned();
        let cost = self.cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost).ok())
            .await
            .ok()
            .flatten()
    }

    /// True when `password` matches `hash`; with no hash (unknown account) it
    /// spends the same time and answers false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await, false),
        };
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        ok && real
    }

    async fn dummy_hash(&self) -> String {
        if let Some(h) = self.dummy.get() {
            return h.clone();
        }
        let h = self.hash("oneflow-dummy-password-for-timing").await.unwrap_or_default();
        let _ = self.dummy.set(h.clone());
        h
    }
}
