//! The one question every resilience decision asks of an error: may this be tried again?
//!
//! Retryability is opt-in. An error type that says nothing is final, so a new
//! failure mode never starts a retry storm by accident.

use std::time::Duration;

/// An error that knows whether repeating the operation could succeed.
///
/// Both methods have conservative defaults: an error is *not* retryable and carries
/// no server-provided wait unless the implementor says otherwise.
pub trait Retryable {
    /// Whether repeating the same operation might succeed (a timeout, a 429, a 503...).
    ///
    /// Defaults to `false`.
    fn is_retryable(&self) -> bool {
        false
    }

    /// How long the upstream asked us to wait before trying again (`Retry-After`).
    ///
    /// Defaults to `None`. [`retry`](crate::retry) waits at least this long, and gives
    /// up at once if it exceeds [`RetryPolicy::max_retry_after`](crate::RetryPolicy::max_retry_after).
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;
    impl Retryable for Silent {}

    #[test]
    fn defaults_are_final_and_without_wait() {
        assert!(!Silent.is_retryable());
        assert_eq!(Silent.retry_after(), None);
    }
}
