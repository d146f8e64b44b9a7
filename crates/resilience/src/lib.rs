//! Every retry, circuit-breaker, deadline and load-shedding decision of OneFlow.
//!
//! Keeping these policies in one crate means they are configured, logged and tested
//! the same way everywhere, and that no other crate calls a retry library directly.
//!
//! - [`retry`]: exponential backoff with full jitter, a cap on attempts and on total
//!   time, `Retry-After` support, and cancellation by drop. Only errors that say so
//!   through [`Retryable`] are retried; the default is not to.
//! - [`CircuitBreaker`]: consecutive-failure breaker with closed, open and half-open
//!   states.
//! - [`with_deadlines`]: time-to-first-item and total deadlines for streams.
//! - [`AdmissionControl`]: non-blocking in-flight limit that sheds excess load.
//!
//! Backoff schedules come from [`backon`](https://docs.rs/backon). We do not use the
//! `backoff` crate: it is unmaintained (RUSTSEC-2025-0012).
//!
//! All timing uses `tokio::time`, so tests run on paused time.

mod breaker;
mod deadline;
mod error;
mod retry;
mod shed;

pub use breaker::{BreakerConfig, BreakerOpen, BreakerPermit, BreakerState, CircuitBreaker};
pub use deadline::{DeadlineExceeded, with_deadlines};
pub use error::Retryable;
pub use retry::{DEFAULT_REPLAY_CAP, RetryPolicy, replayable, retry};
pub use shed::{AdmissionConfig, AdmissionControl, AdmissionPermit, Overloaded};
