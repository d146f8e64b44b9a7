//! A consecutive-failures circuit breaker, so a dead upstream is skipped quickly
//! instead of costing every request a timeout.
//!
//! Closed: requests flow; `failure_threshold` failures in a row open the breaker.
//! Open: requests are refused for `open_for`, after which the breaker is half-open.
//! Half-open: up to `half_open_probes` requests probe the upstream; the first success
//! closes the breaker, a failure opens it for another `open_for`.
//!
//! Verdicts are tied to the state epoch they were admitted in, so a slow response from
//! before a transition cannot flip the breaker afterwards.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Settings of a [`CircuitBreaker`]; durations are human-readable (`"60s"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker (0 behaves as 1).
    pub failure_threshold: u32,
    /// How long an open breaker refuses requests before letting probes through.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// Concurrent probe requests admitted while half-open (0 behaves as 1).
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(60),
            half_open_probes: 1,
        }
    }
}

/// The externally visible state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow normally.
    Closed,
    /// Requests are refused until `open_for` has elapsed.
    Open,
    /// A limited number of probe requests may test the upstream.
    HalfOpen,
}

/// Returned by [`CircuitBreaker::try_acquire`] when a request may not proceed.
#[derive(Debug, thiserror::Error)]
#[error("circuit breaker is open")]
pub struct BreakerOpen {
    /// A hint of when to try again: the rest of the open period, or `open_for` when
    /// the breaker is half-open and all probe slots are taken.
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probes: u32 },
}

impl Phase {
    fn public(self) -> BreakerState {
        match self {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Bumped on every transition; permits from an older epoch carry no verdict.
    epoch: u64,
}

impl Inner {
    fn transition(&mut self, to: Phase) {
        let from = self.phase.public();
        self.phase = to;
        self.epoch = self.epoch.wrapping_add(1);
        tracing::info!(from = ?from, to = ?to.public(), "circuit breaker state changed");
    }

    /// Lets an expired open period become half-open.
    fn refresh(&mut self, now: Instant) {
        if let Phase::Open { until } = self.phase
            && now >= until
        {
            self.transition(Phase::HalfOpen { probes: 0 });
        }
    }
}

/// A circuit breaker guarding one upstream. `Send + Sync`; share it behind an `Arc`.
///
/// The lock is a plain mutex held for a few instructions, never across an `.await`.
#[derive(Debug)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    open_for: Duration,
    half_open_probes: u32,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker with the given settings.
    #[must_use]
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            failure_threshold: config.failure_threshold.max(1),
            open_for: config.open_for,
            half_open_probes: config.half_open_probes.max(1),
            inner: Mutex::new(Inner {
                phase: Phase::Closed { failures: 0 },
                epoch: 0,
            }),
        }
    }

    /// The current state; an open breaker whose `open_for` has elapsed reports (and
    /// becomes) half-open.
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        inner.refresh(Instant::now());
        inner.phase.public()
    }

    /// Asks to send one request. Keep the permit until the outcome is known, then
    /// report it with [`BreakerPermit::success`] or [`BreakerPermit::failure`].
    ///
    /// # Errors
    ///
    /// [`BreakerOpen`] while the breaker is open, or half-open with every probe slot
    /// taken.
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, BreakerOpen> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.refresh(now);
        let probe = match &mut inner.phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } => {
                return Err(BreakerOpen {
                    retry_after: until.saturating_duration_since(now),
                });
            }
            Phase::HalfOpen { probes } if *probes < self.half_open_probes => {
                *probes += 1;
                true
            }
            Phase::HalfOpen { .. } => {
                return Err(BreakerOpen {
                    retry_after: self.open_for,
                });
            }
        };
        Ok(BreakerPermit {
            breaker: self,
            epoch: inner.epoch,
            probe,
            verdict: None,
        })
    }

    /// Whether [`try_acquire`](Self::try_acquire) would succeed now, without taking a
    /// permit or changing state; for choosing among upstreams.
    pub fn would_admit(&self) -> bool {
        match self.lock().phase {
            Phase::Closed { .. } => true,
            // Once expired it would turn half-open with every probe slot free.
            Phase::Open { until } => Instant::now() >= until,
            Phase::HalfOpen { probes } => probes < self.half_open_probes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock, and the state stays coherent anyway.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settle(&self, epoch: u64, probe: bool, verdict: Option<Verdict>) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        match (inner.phase, verdict) {
            (Phase::HalfOpen { probes }, verdict) if probe => {
                inner.phase = Phase::HalfOpen {
                    probes: probes.saturating_sub(1),
                };
                match verdict {
                    Some(Verdict::Success) => inner.transition(Phase::Closed { failures: 0 }),
                    Some(Verdict::Failure) => inner.transition(Phase::Open {
                        until: Instant::now() + self.open_for,
                    }),
                    None => {}
                }
            }
            (Phase::Closed { .. }, Some(Verdict::Success)) => {
                inner.phase = Phase::Closed { failures: 0 };
            }
            (Phase::Closed { failures }, Some(Verdict::Failure)) => {
                let failures = failures.saturating_add(1);
                if failures >= self.failure_threshold {
                    inner.transition(Phase::Open {
                        until: Instant::now() + self.open_for,
                    });
                } else {
                    inner.phase = Phase::Closed { failures };
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Success,
    Failure,
}

/// Permission to send one request through a [`CircuitBreaker`].
///
/// Report the outcome with [`success`](Self::success) or [`failure`](Self::failure).
/// Dropping the permit without a verdict (say, the caller gave up) counts as neither,
/// but frees its half-open probe slot.
#[derive(Debug)]
#[must_use = "report the outcome with success() or failure()"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    epoch: u64,
    probe: bool,
    verdict: Option<Verdict>,
}

impl BreakerPermit<'_> {
    /// The request succeeded: resets the failure count, or closes a half-open breaker.
    pub fn success(mut self) {
        self.verdict = Some(Verdict::Success);
    }

    /// The request failed: counts towards opening, or re-opens a half-open breaker.
    pub fn failure(mut self) {
        self.verdict = Some(Verdict::Failure);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        self.breaker.settle(self.epoch, self.probe, self.verdict);
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, MapDeserializer};

    use super::*;

    const OPEN_FOR: Duration = Duration::from_secs(60);

    fn breaker(threshold: u32, probes: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: threshold,
            open_for: OPEN_FOR,
            half_open_probes: probes,
        })
    }

    fn fail(breaker: &CircuitBreaker, times: u32) {
        for _ in 0..times {
            breaker.try_acquire().unwrap().failure();
        }
    }

    fn open_then_expire(breaker: &CircuitBreaker) -> impl Future<Output = ()> {
        fail(breaker, 3);
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(OPEN_FOR)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures() {
        let breaker = breaker(3, 1);
        fail(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.would_admit());
        let refused = breaker.try_acquire().unwrap_err();
        assert_eq!(refused.retry_after, OPEN_FOR);
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_the_failure_count() {
        let breaker = breaker(3, 1);
        fail(&breaker, 2);
        breaker.try_acquire().unwrap().success();
        fail(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn turns_half_open_after_open_for() {
        let breaker = breaker(3, 1);
        fail(&breaker, 3);
        tokio::time::advance(OPEN_FOR / 2).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.try_acquire().unwrap_err().retry_after, OPEN_FOR / 2);
        tokio::time::advance(OPEN_FOR / 2).await;
        assert!(breaker.would_admit());
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_only_the_configured_probes() {
        let breaker = breaker(3, 2);
        open_then_expire(&breaker).await;
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        assert!(!breaker.would_admit());
        assert!(breaker.try_acquire().is_err());
        // A probe dropped without a verdict frees its slot and changes nothing else.
        drop(first);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.would_admit());
        let third = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());
        drop((second, third));
    }

    #[tokio::test(start_paused = true)]
    async fn probe_success_closes() {
        let breaker = breaker(3, 1);
        open_then_expire(&breaker).await;
        breaker.try_acquire().unwrap().success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        // The failure count starts afresh.
        fail(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn probe_failure_reopens_for_another_period() {
        let breaker = breaker(3, 1);
        open_then_expire(&breaker).await;
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(OPEN_FOR - Duration::from_millis(1)).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_verdicts_are_ignored() {
        let breaker = breaker(1, 1);
        let slow = breaker.try_acquire().unwrap();
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        // Admitted while closed; must not close the open breaker.
        slow.success();
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn breaker_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CircuitBreaker>();
    }

    #[test]
    fn config_defaults_and_human_durations() {
        let parse = |pairs: Vec<(&'static str, &'static str)>| {
            BreakerConfig::deserialize(MapDeserializer::<_, DeError>::new(
                pairs.into_iter().map(|(k, v)| (k, v.into_deserializer())),
            ))
        };
        assert_eq!(parse(vec![]).unwrap(), BreakerConfig::default());
        assert_eq!(
            parse(vec![("open_for", "30s")]).unwrap().open_for,
            Duration::from_secs(30)
        );
        assert!(parse(vec![("threshold", "3")]).is_err());
    }
}
