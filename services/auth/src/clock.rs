//! The auth service's notion of "now", in Unix milliseconds. Expiry, grace
//! periods and login windows all read it, so tests can move time forward
//! instead of sleeping.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Wall-clock time plus an offset that only tests change.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_millis: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, in Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        crate::store::now_millis() + self.offset_millis.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_millis.fetch_add(ms, Ordering::Relaxed);
    }
}
