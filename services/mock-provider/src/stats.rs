//! Request counters of the mock provider.
//!
//! Tests and benchmarks assert on what reached the upstream (how many calls
//! a retry policy made, whether the gateway forwarded `traceparent` and
//! stripped or set `Authorization`), so the provider counts every chat and
//! embeddings request. Counters are atomics so the hot path never blocks; only
//! the last `traceparent` sits behind a short, uncontended mutex.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::MockState;

/// Snapshot of the mock provider's counters, as served by `GET /mock/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MockStats {
    /// Chat completion requests received (streaming ones included).
    pub chat_requests: u64,
    /// Chat completion requests that asked for `"stream": true`.
    pub stream_requests: u64,
    /// Embedding requests received.
    pub embedding_requests: u64,
    /// Requests answered with an injected error (scripted status or error rate).
    pub errors_injected: u64,
    /// `traceparent` header of the last chat/embeddings request (`None` if it had none).
    pub last_traceparent: Option<String>,
    /// Whether the last chat/embeddings request carried an `Authorization` header.
    pub last_authorization_present: bool,
}

/// The live, shared counters behind [`MockStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) chat_requests: AtomicU64,
    pub(crate) stream_requests: AtomicU64,
    pub(crate) embedding_requests: AtomicU64,
    pub(crate) errors_injected: AtomicU64,
    last_traceparent: Mutex<Option<String>>,
    last_authorization_present: AtomicBool,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers the tracing and auth headers of a chat/embeddings request.
    pub(crate) fn record_headers(&self, headers: &HeaderMap) {
        self.last_authorization_present
            .store(headers.contains_key(AUTHORIZATION), Ordering::Relaxed);
        let traceparent = headers.get("traceparent").and_then(|value| value.to_str().ok());
        let mut last = self
            .last_traceparent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (traceparent, last.as_mut()) {
            // Reuse the allocation: traceparents all have the same length.
            (Some(new), Some(old)) => {
                old.clear();
                old.push_str(new);
            }
            (Some(new), None) => *last = Some(new.to_owned()),
            (None, _) => *last = None,
        }
    }

    /// Copies the counters into a [`MockStats`].
    pub(crate) fn snapshot(&self) -> MockStats {
        let last_traceparent = self
            .last_traceparent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        MockStats {
            chat_requests: self.chat_requests.load(Ordering::Relaxed),
            stream_requests: self.stream_requests.load(Ordering::Relaxed),
            embedding_requests: self.embedding_requests.load(Ordering::Relaxed),
            errors_injected: self.errors_injected.load(Ordering::Relaxed),
            last_traceparent,
            last_authorization_present: self.last_authorization_present.load(Ordering::Relaxed),
        }
    }

    /// Zeroes every counter and forgets the recorded headers.
    pub(crate) fn reset(&self) {
        self.chat_requests.store(0, Ordering::Relaxed);
        self.stream_requests.store(0, Ordering::Relaxed);
        self.embedding_requests.store(0, Ordering::Relaxed);
        self.errors_injected.store(0, Ordering::Relaxed);
        self.last_authorization_present.store(false, Ordering::Relaxed);
        *self
            .last_traceparent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// `GET /mock/stats`.
pub(crate) async fn stats_handler(State(state): State<MockState>) -> Json<MockStats> {
    Json(state.stats())
}

/// `POST /mock/reset`: zeroes the counters and answers the zeroed snapshot.
pub(crate) async fn reset_handler(State(state): State<MockState>) -> Json<MockStats> {
    state.reset();
    Json(state.stats())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn records_and_resets() {
        let counters = Counters::default();
        Counters::bump(&counters.chat_requests);
        Counters::bump(&counters.chat_requests);
        Counters::bump(&counters.errors_injected);

        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-aa-bb-01"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        counters.record_headers(&headers);
        headers.insert("traceparent", HeaderValue::from_static("00-cc-dd-01"));
        counters.record_headers(&headers);

        let stats = counters.snapshot();
        assert_eq!(stats.chat_requests, 2);
        assert_eq!(stats.errors_injected, 1);
        assert_eq!(stats.last_traceparent.as_deref(), Some("00-cc-dd-01"));
        assert!(stats.last_authorization_present);

        counters.record_headers(&HeaderMap::new());
        let stats = counters.snapshot();
        assert_eq!(stats.last_traceparent, None);
        assert!(!stats.last_authorization_present);

        counters.record_headers(&headers);
        counters.reset();
        assert_eq!(counters.snapshot(), MockStats::default());
    }
}
