//! Load shedding: refuse work at once when too much is already in flight.
//!
//! Queueing past capacity only turns overload into timeouts for everyone; a fast
//! "overloaded, retry after N" lets clients and balancers go elsewhere.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Settings of an [`AdmissionControl`]; durations are human-readable (`"1s"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Requests allowed in flight at once; further ones are shed.
    pub max_in_flight: usize,
    /// The `Retry-After` hint given to shed requests.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Returned by [`AdmissionControl::try_admit`] when the server is at capacity.
#[derive(Debug, thiserror::Error)]
#[error("server overloaded")]
pub struct Overloaded {
    /// How long the client should wait before trying again.
    pub retry_after: Duration,
}

/// A non-blocking in-flight limit. Clones share the same limit.
#[derive(Debug, Clone)]
pub struct AdmissionControl {
    slots: Arc<Semaphore>,
    max_in_flight: usize,
    retry_after: Duration,
}

impl AdmissionControl {
    /// A limit of `config.max_in_flight` concurrent requests (capped at
    /// [`Semaphore::MAX_PERMITS`]; zero sheds everything).
    #[must_use]
    pub fn new(config: AdmissionConfig) -> Self {
        let max_in_flight = config.max_in_flight.min(Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            retry_after: config.retry_after,
        }
    }

    /// Takes a slot if one is free, without waiting. Hold the permit for as long as
    /// the request (or its response stream) is in flight.
    ///
    /// # Errors
    ///
    /// [`Overloaded`] when every slot is taken.
    pub fn try_admit(&self) -> Result<AdmissionPermit, Overloaded> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Ok(AdmissionPermit { _slot: permit }),
            Err(_) => Err(Overloaded {
                retry_after: self.retry_after,
            }),
        }
    }

    /// Requests currently holding a permit.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.max_in_flight.saturating_sub(self.slots.available_permits())
    }

    /// The configured limit.
    #[must_use]
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

/// One admitted request; dropping it frees the slot. `'static`, so it can move into
/// a spawned task or a response stream.
#[derive(Debug)]
pub struct AdmissionPermit {
    _slot: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, MapDeserializer};

    use super::*;

    fn control(max_in_flight: usize) -> AdmissionControl {
        AdmissionControl::new(AdmissionConfig {
            max_in_flight,
            retry_after: Duration::from_secs(2),
        })
    }

    #[tokio::test]
    async fn sheds_when_full_and_admits_after_a_permit_drops() {
        let control = control(2);
        let first = control.try_admit().unwrap();
        let _second = control.try_admit().unwrap();
        assert_eq!(control.in_flight(), 2);
        let shed = control.try_admit().unwrap_err();
        assert_eq!(shed.retry_after, Duration::from_secs(2));
        drop(first);
        assert_eq!(control.in_flight(), 1);
        let _third = control.try_admit().unwrap();
        assert_eq!(control.in_flight(), 2);
    }

    #[tokio::test]
    async fn clones_share_the_limit() {
        let control = control(1);
        let other = control.clone();
        let _held = control.try_admit().unwrap();
        assert!(other.try_admit().is_err());
        assert_eq!(other.in_flight(), 1);
    }

    #[test]
    fn zero_capacity_sheds_everything() {
        let control = control(0);
        assert!(control.try_admit().is_err());
        assert_eq!(control.in_flight(), 0);
    }

    #[test]
    fn huge_capacity_is_capped_instead_of_panicking() {
        let control = control(usize::MAX);
        assert_eq!(control.max_in_flight(), Semaphore::MAX_PERMITS);
    }

    #[test]
    fn config_defaults_and_human_durations() {
        let parse = |pairs: Vec<(&'static str, &'static str)>| {
            AdmissionConfig::deserialize(MapDeserializer::<_, DeError>::new(
                pairs.into_iter().map(|(k, v)| (k, v.into_deserializer())),
            ))
        };
        assert_eq!(parse(vec![]).unwrap(), AdmissionConfig::default());
        assert_eq!(
            parse(vec![("retry_after", "250ms")]).unwrap().retry_after,
            Duration::from_millis(250)
        );
        assert!(parse(vec![("limit", "3")]).is_err());
    }
}
