//! Retrying an operation with capped exponential backoff and full jitter.
//!
//! This is the only place in OneFlow that talks to a retry crate. The schedule comes
//! from `backon`'s [`ExponentialBuilder`]; on top of it we apply full jitter, honour
//! upstream `Retry-After` hints, and cap the total time spent, counted from the start
//! of the first attempt (attempt time included, not only the waits).

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable as _};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::Retryable;

/// Largest request body, in bytes, that [`replayable`] accepts by default (10 MiB).
pub const DEFAULT_REPLAY_CAP: usize = 10 * 1024 * 1024;

/// Whether a request body of `body_len` bytes may be buffered and replayed on retry.
///
/// Retrying means sending the same body again, so it must be kept in memory for the
/// whole retry loop. Only bodies up to `cap` bytes (usually [`DEFAULT_REPLAY_CAP`])
/// qualify; larger requests are sent once and their failures returned as they are.
#[must_use]
pub fn replayable(body_len: usize, cap: usize) -> bool {
    body_len <= cap
}

/// How often and how patiently [`retry`] repeats a failing operation.
///
/// Durations are human-readable in configuration (`"100ms"`, `"5s"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Retries after the first attempt; `3` means at most four attempts in all.
    pub max_retries: u32,
    /// Backoff before the first retry; it doubles on each further retry.
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Upper bound of any single backoff (a longer `Retry-After` is still honoured).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Cap on the total time from the first attempt, waits included: no retry starts
    /// if its wait would end past this.
    #[serde(with = "humantime_serde")]
    pub max_elapsed: Duration,
    /// Full jitter: each wait is drawn uniformly from zero up to the backoff, so
    /// clients that failed together do not retry together.
    pub jitter: bool,
    /// Longest `Retry-After` we are willing to wait for; beyond it the error is
    /// returned at once.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
            jitter: true,
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes exactly one attempt.
    #[must_use]
    pub fn no_retries() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or `policy` runs out.
///
/// `op` receives the attempt number, starting at 1. Only errors whose
/// [`Retryable::is_retryable`] is true are retried. The wait before a retry is the
/// jittered backoff, or the error's [`Retryable::retry_after`] if that is longer; a
/// `Retry-After` above [`RetryPolicy::max_retry_after`] ends the loop. No retry starts
/// if its wait would end past [`RetryPolicy::max_elapsed`] from the first attempt.
/// When the loop ends on an error, that last error is returned.
///
/// Each retry logs a warning (attempt number and delay only, never the error, which
/// may carry secrets) and increments the `oneflow_retries_total` counter.
///
/// Dropping the returned future cancels the attempt in flight and any pending wait.
///
/// # Errors
///
/// The last error returned by `op`.
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Retryable,
{
    let start = Instant::now();
    // Atomic rather than Cell so the future stays `Send`.
    let attempt = AtomicU32::new(0);
    let max_elapsed = policy.max_elapsed;
    let max_retry_after = policy.max_retry_after;

    let run = || op(attempt.fetch_add(1, Ordering::Relaxed).saturating_add(1));
    run.retry(backoff_delays(policy))
        .sleep(tokio::time::sleep)
        .when(|err: &E| err.is_retryable())
        .adjust(|err: &E, backoff: Option<Duration>| {
            let backoff = backoff?;
            let wait = match err.retry_after() {
                Some(asked) if asked > max_retry_after => {
                    tracing::debug!(
                        retry_after = ?asked,
                        "not retrying: Retry-After exceeds the configured maximum"
                    );
                    return None;
                }
                Some(asked) => backoff.max(asked),
                None => backoff,
            };
            if start.elapsed().saturating_add(wait) > max_elapsed {
                tracing::debug!(delay = ?wait, "not retrying: the retry budget would be exceeded");
                return None;
            }
            Some(wait)
        })
        .notify(|_: &E, delay: Duration| {
            tracing::warn!(
                attempt = attempt.load(Ordering::Relaxed),
                delay = ?delay,
                "attempt failed with a retryable error; retrying"
            );
            metrics::counter!("oneflow_retries_total").increment(1);
        })
        .await
}

/// The backoff schedule of `policy`: one delay per allowed retry, each at most
/// `max_delay`.
///
/// `backon`'s own jitter adds up to one extra backoff on top (so a wait could reach
/// twice `max_delay`); we want full jitter, drawn from zero to the backoff, instead.
pub(crate) fn backoff_delays(policy: &RetryPolicy) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
    let max_delay = policy.max_delay;
    let jitter = policy.jitter;
    ExponentialBuilder::new()
        .with_min_delay(policy.min_delay)
        .with_max_delay(max_delay)
        .with_max_times(usize::try_from(policy.max_retries).unwrap_or(usize::MAX))
        .build()
        // backon starts at `min_delay` even when it exceeds `max_delay`.
        .map(move |backoff| {
            let backoff = backoff.min(max_delay);
            if jitter {
                backoff.mul_f64(unit_random())
            } else {
                backoff
            }
        })
}

/// A number in `[0, 1)`, random enough to spread retries apart (not for secrets).
fn unit_random() -> f64 {
    // Every `RandomState` is freshly keyed, so hashing a constant yields new bits.
    let bits = RandomState::new().hash_one(0_u8) >> 11;
    #[expect(clippy::cast_precision_loss, reason = "53 bits fit an f64 mantissa exactly")]
    let ratio = bits as f64 / (1_u64 << 53) as f64;
    ratio
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, MapDeserializer};

    use super::*;

    #[derive(Debug, PartialEq)]
    struct TestError {
        retryable: bool,
        retry_after: Option<Duration>,
    }

    impl Retryable for TestError {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
        fn retry_after(&self) -> Option<Duration> {
            self.retry_after
        }
    }

    const TRANSIENT: TestError = TestError {
        retryable: true,
        retry_after: None,
    };
    const FATAL: TestError = TestError {
        retryable: false,
        retry_after: None,
    };

    fn asked_to_wait(wait: Duration) -> TestError {
        TestError {
            retryable: true,
            retry_after: Some(wait),
        }
    }

    /// Default policy without jitter, so waits are exact.
    fn steady() -> RetryPolicy {
        RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn succeeds_after_transient_errors_and_counts_attempts() {
        let seen = Mutex::new(Vec::new());
        let result = retry(&steady(), |attempt| {
            seen.lock().unwrap().push(attempt);
            async move { if attempt < 3 { Err(TRANSIENT) } else { Ok(attempt) } }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_error_returns_after_one_attempt() {
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&steady(), |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(FATAL) }
        })
        .await;
        assert_eq!(result, Err(FATAL));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries() {
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&steady(), |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(TRANSIENT) }
        })
        .await;
        assert_eq!(result, Err(TRANSIENT));
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        // 100ms + 200ms + 400ms of exponential backoff (the timer rounds up to whole ms).
        let elapsed = start.elapsed();
        assert!(
            (Duration::from_millis(700)..Duration::from_millis(710)).contains(&elapsed),
            "elapsed {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_retries_means_one_attempt() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&RetryPolicy::no_retries(), |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(TRANSIENT) }
        })
        .await;
        assert_eq!(result, Err(TRANSIENT));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after() {
        let start = Instant::now();
        let wait = Duration::from_secs(2);
        let result = retry(&RetryPolicy::default(), |attempt| async move {
            if attempt == 1 { Err(asked_to_wait(wait)) } else { Ok(()) }
        })
        .await;
        assert_eq!(result, Ok(()));
        assert!(start.elapsed() >= wait, "waited only {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_retry_after_above_the_cap() {
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let too_long = asked_to_wait(Duration::from_secs(11));
        let result: Result<(), _> = retry(&RetryPolicy::default(), |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(asked_to_wait(Duration::from_secs(11))) }
        })
        .await;
        assert_eq!(result, Err(too_long));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn max_elapsed_stops_retries() {
        let policy = RetryPolicy {
            max_retries: 100,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_millis(3_500),
            ..steady()
        };
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&policy, |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(TRANSIENT) }
        })
        .await;
        assert_eq!(result, Err(TRANSIENT));
        // Attempts at 0s, 1s, 2s, 3s; a fourth wait would end at 4s > 3.5s.
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert!(start.elapsed() < Duration::from_millis(3_500));
    }

    #[tokio::test(start_paused = true)]
    async fn max_elapsed_counts_time_spent_in_attempts() {
        let policy = RetryPolicy {
            max_retries: 100,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(5),
            ..steady()
        };
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&policy, |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Err(TRANSIENT)
            }
        })
        .await;
        assert_eq!(result, Err(TRANSIENT));
        // Attempts end at 2s, 4.1s and 6.2s; after the third, a wait would end past 5s.
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn jittered_waits_stay_within_the_backoff() {
        let start = Instant::now();
        let result: Result<(), _> = retry(&RetryPolicy::default(), |_| async { Err(TRANSIENT) }).await;
        assert_eq!(result, Err(TRANSIENT));
        assert!(start.elapsed() <= Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_future_cancels_retries() {
        let calls = AtomicU32::new(0);
        let policy = steady();
        let looping = retry(&policy, |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err::<(), _>(TRANSIENT) }
        });
        // Attempts at 0ms and 100ms; the third would start at 300ms.
        let outcome = tokio::time::timeout(Duration::from_millis(250), looping).await;
        assert!(outcome.is_err());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn retry_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let policy = RetryPolicy::default();
        let fut = retry(&policy, |_| async { Err::<(), _>(TRANSIENT) });
        assert_send(&fut);
    }

    #[test]
    fn replay_cap_is_inclusive() {
        assert!(replayable(0, DEFAULT_REPLAY_CAP));
        assert!(replayable(DEFAULT_REPLAY_CAP, DEFAULT_REPLAY_CAP));
        assert!(!replayable(DEFAULT_REPLAY_CAP + 1, DEFAULT_REPLAY_CAP));
    }

    fn from_pairs(pairs: Vec<(&'static str, &'static str)>) -> Result<RetryPolicy, DeError> {
        RetryPolicy::deserialize(MapDeserializer::new(
            pairs.into_iter().map(|(k, v)| (k, v.into_deserializer())),
        ))
    }

    #[test]
    fn config_fills_defaults_reads_human_durations_and_rejects_unknown_fields() {
        assert_eq!(from_pairs(vec![]).unwrap(), RetryPolicy::default());
        let policy = from_pairs(vec![("max_delay", "2s"), ("min_delay", "250ms")]).unwrap();
        assert_eq!(policy.max_delay, Duration::from_secs(2));
        assert_eq!(policy.min_delay, Duration::from_millis(250));
        assert!(from_pairs(vec![("max_attempts", "3")]).is_err());
    }

    proptest! {
        #[test]
        fn backoff_never_exceeds_max_delay(
            min_ms in 0_u64..20_000,
            max_ms in 0_u64..20_000,
            max_retries in 0_u32..40,
            jitter: bool,
        ) {
            let policy = RetryPolicy {
                max_retries,
                min_delay: Duration::from_millis(min_ms),
                max_delay: Duration::from_millis(max_ms),
                jitter,
                ..RetryPolicy::default()
            };
            let delays: Vec<_> = backoff_delays(&policy).collect();
            prop_assert_eq!(delays.len(), max_retries as usize);
            for delay in delays {
                prop_assert!(delay <= policy.max_delay, "{:?} > {:?}", delay, policy.max_delay);
            }
        }
    }
}
