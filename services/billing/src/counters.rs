//! The hot-path side of credits: each account's *available* credits (balance
//! minus open reservations) held where one atomic step can check and reserve.
//! Redis (one Lua script per call, keys hash-tagged per user so they work on
//! Redis Cluster) when configured, process memory otherwise. The database
//! remains the source of truth; this is loaded from it on first use.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_redis::Pool;
use deadpool_redis::redis::Script;

/// What a reservation attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Reserved; credits left available.
    Reserved { available_after: i64 },
    /// Not enough available credits.
    Insufficient { available: i64 },
    /// This request id already holds a reservation.
    Duplicate,
    /// The account is not loaded yet: call again with its balance.
    NotLoaded,
}

/// Counter backend failure (Redis unreachable or misbehaving).
#[derive(Debug, thiserror::Error)]
#[error("counter store unavailable: {0}")]
pub struct CounterError(String);

const RESERVE_LUA: &str = r"
local avail = redis.call('GET', KEYS[1])
if not avail then
  if ARGV[3] == '' then return {3, 0} end
  redis.call('SET', KEYS[1], ARGV[3])
  avail = ARGV[3]
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, 0} end
avail = tonumber(avail)
local amount = tonumber(ARGV[1])
if avail < amount then return {1, avail} end
redis.call('DECRBY', KEYS[1], amount)
redis.call('SET', KEYS[2], amount, 'PX', ARGV[2])
return {0, avail - amount}
";

const RELEASE_LUA: &str = r"
local reserved = redis.call('GET', KEYS[2])
if not reserved then return 0 end
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCRBY', KEYS[1], tonumber(reserved) - tonumber(ARGV[1]))
end
return 1
";

const CREDIT_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
return 1
";

/// In-process counter state.
#[derive(Debug, Default)]
pub struct Memory {
    available: HashMap<String, i64>,
    reservations: HashMap<String, (String, i64, tokio::time::Instant)>,
}

/// Available-credit counters.
#[derive(Clone)]
pub enum Counters {
    /// Redis, shared by every billing replica.
    Redis {
        /// Pool.
        pool: Pool,
        /// Key prefix.
        prefix: Arc<str>,
    },
    /// This process only (one-process mode, tests).
    Memory(Arc<Mutex<Memory>>),
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Counters::Redis { .. } => "Counters::Redis",
            Counters::Memory(_) => "Counters::Memory",
        })
    }
}

impl Counters {
    /// In-process counters.
    pub fn memory() -> Self {
        Counters::Memory(Arc::new(Mutex::new(Memory::default())))
    }

    fn keys(prefix: &str, user: &str, request_id: &str) -> (String, String) {
        (
            format!("{prefix}:{{u:{user}}}:avail"),
            format!("{prefix}:{{u:{user}}}:res:{request_id}"),
        )
    }

    /// Atomically checks that `amount` is available and reserves it under
    /// `request_id`. `balance` seeds the counter when it is not loaded yet;
    /// without it an unloaded account answers [`Reserve::NotLoaded`].
    pub async fn reserve(
        &self,
        user: &str,
        request_id: &str,
        amount: i64,
        ttl: Duration,
        balance: Option<i64>,
    ) -> Result<Reserve, CounterError> {
        match self {
            Counters::Redis { pool, prefix } => {
                let (avail, res) = Self::keys(prefix, user, request_id);
                let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
                let (code, value): (i64, i64) = Script::new(RESERVE_LUA)
                    .key(avail)
                    .key(res)
                    .arg(amount)
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
                    .arg(balance.map_or_else(String::new, |b| b.to_string()))
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| CounterError(e.to_string()))?;
                Ok(match code {
                    0 => Reserve::Reserved { available_after: value },
                    1 => Reserve::Insufficient { available: value },
                    2 => Reserve::Duplicate,
                    _ => Reserve::NotLoaded,
                })
            }
            Counters::Memory(mem) => {
                let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
                let now = tokio::time::Instant::now();
                m.reservations.retain(|_, (_, _, until)| *until > now);
                if m.reservations.contains_key(request_id) {
                    return Ok(Reserve::Duplicate);
                }
                let avail = match (m.available.get(user), balance) {
                    (Some(a), _) => *a,
                    (None, Some(b)) => b,
                    (None, None) => return Ok(Reserve::NotLoaded),
                };
                if avail < amount {
                    return Ok(Reserve::Insufficient { available: avail });
                }
                m.available.insert(user.to_owned(), avail - amount);
                m.reservations
                    .insert(request_id.to_owned(), (user.to_owned(), amount, now + ttl));
                Ok(Reserve::Reserved {
                    available_after: avail - amount,
                })
            }
        }
    }

    /// Ends `request_id`'s reservation after `charge` was written to the
    /// ledger: the unused part becomes available again. Idempotent: returns
    /// false, changing nothing, when no reservation is open (already released,
    /// or expired, in which case its whole amount stays held).
    pub async fn release(&self, user: &str, request_id: &str, charge: i64) -> Result<bool, CounterError> {
        match self {
            Counters::Redis { pool, prefix } => {
                let (avail, res) = Self::keys(prefix, user, request_id);
                let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
                let found: i64 = Script::new(RELEASE_LUA)
                    .key(avail)
                    .key(res)
                    .arg(charge)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| CounterError(e.to_string()))?;
                Ok(found == 1)
            }
            Counters::Memory(mem) => {
                let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
                let Some((_, reserved, _)) = m.reservations.remove(request_id) else {
                    return Ok(false);
                };
                if let Some(avail) = m.available.get_mut(user) {
                    *avail += reserved - charge;
                }
                Ok(true)
            }
        }
    }

    /// Adds `delta` to the available credits of a loaded account (grants).
    pub async fn credit(&self, user: &str, delta: i64) -> Result<(), CounterError> {
        match self {
            Counters::Redis { pool, prefix } => {
                let (avail, _) = Self::keys(prefix, user, "");
                let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
                let _: i64 = Script::new(CREDIT_LUA)
                    .key(avail)
                    .arg(delta)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| CounterError(e.to_string()))?;
                Ok(())
            }
            Counters::Memory(mem) => {
                let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
                if let Some(avail) = m.available.get_mut(user) {
                    *avail += delta;
                }
                Ok(())
            }
        }
    }

    /// Readiness of the backend.
    pub async fn ping(&self) -> Result<(), CounterError> {
        match self {
            Counters::Redis { pool, .. } => {
                let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
                let _: String = deadpool_redis::redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| CounterError(e.to_string()))?;
                Ok(())
            }
            Counters::Memory(_) => Ok(()),
        }
    }
}
