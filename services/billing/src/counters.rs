//! The hot-path side of credits: each account's *available* credits (balance
//! minus open reservations) held where one atomic step can check and reserve.
//! Redis (one Lua script per call, keys hash-tagged per user so they work on
//! Redis Cluster) when configured, process memory otherwise. The database
//! remains the source of truth; this is loaded from it on first use.
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use deadpool_redis::redis::Script;
use oneflow_runtime::RedisPool;

use crate::limits::{Counter, LimitKind, LimitPlan, SettlePlan};

/// The state of the first request window after an authorisation, for the
/// `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStatus {
    /// The window's limit.
    pub limit: i64,
    /// Requests left in it.
    pub remaining: i64,
    /// Milliseconds until it resets.
    pub reset_millis: i64,
}

/// A reservation whose settlement never came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Account.
    pub user: String,
    /// The request it was for.
    pub request_id: String,
    /// Hundredths of a credit it held.
    pub amount: i64,
}

/// What a reservation attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Reserved; credits left available.
    Reserved {
        /// Credits (hundredths) still available.
        available_after: i64,
        /// The first request window, if any.
        window: Option<WindowStatus>,
    },
    /// A limit is reached.
    Limited {
        /// Rate (minute/hour) or quota (day/month).
        kind: LimitKind,
        /// `requests`, `tokens` or `credits`.
        unit: &'static str,
        /// The window's name (minute, hour, day, month).
        window: &'static str,
        /// The limit.
        limit: i64,
        /// Milliseconds until the window resets.
        retry_after_millis: i64,
    },
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

// KEYS: avail, reservation, then the plan's request, token and credit counters.
// ARGV: amount, reservation ttl, balance ('' = not loaded), #requests, #tokens,
// #credits, then (limit, ttl) per counter in the same order.
// Returns {code, a, b, c}: 0 reserved (a = available after, b/c = first window
// remaining/limit), 1 insufficient (a = available), 2 duplicate, 3 not loaded,
// 4 limited (a = counter index, 1-based over all counters).
const RESERVE_LUA: &str = r"
local amount = tonumber(ARGV[1])
local nreq, ntok, ncred = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local total = nreq + ntok + ncred
for i = 1, total do
  local key = KEYS[2 + i]
  local limit = tonumber(ARGV[5 + 2 * i])
  local cur = tonumber(redis.call('GET', key) or '0')
  local over
  if i <= nreq + ntok then over = cur >= limit else over = cur + amount > limit end
  if over then return {4, i, 0, 0} end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, 0, 0, 0} end
local avail = redis.call('GET', KEYS[1])
if not avail then
  if ARGV[3] == '' then return {3, 0, 0, 0} end
  redis.call('SET', KEYS[1], ARGV[3])
  avail = ARGV[3]
end
avail = tonumber(avail)
if avail < amount then return {1, avail, 0, 0} end
redis.call('DECRBY', KEYS[1], amount)
redis.call('SET', KEYS[2], amount, 'PX', tonumber(ARGV[2]) + 86400000)
redis.call('ZADD', KEYS[#KEYS], ARGV[#ARGV - 1], ARGV[#ARGV])
local first = -1
for i = 1, total do
  if i <= nreq or i > nreq + ntok then
    local key = KEYS[2 + i]
    local by = 1
    if i > nreq then by = amount end
    local v = redis.call('INCRBY', key, by)
    if v == by then redis.call('PEXPIRE', key, ARGV[6 + 2 * i]) end
    if i == 1 then first = v end
  end
end
return {0, avail - amount, first, 0}
";

// KEYS: avail, reservation, then token counters, then credit counters.
// ARGV: charge, tokens, #token counters, then ttl per token counter.
const RELEASE_LUA: &str = r"
redis.call('ZREM', KEYS[#KEYS], ARGV[#ARGV])
local reserved = redis.call('GET', KEYS[2])
if not reserved then return 0 end
redis.call('DEL', KEYS[2])
local charge = tonumber(ARGV[1])
local delta = tonumber(reserved) - charge
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], delta) end
local ntok = tonumber(ARGV[3])
local tokens = tonumber(ARGV[2])
for i = 1, ntok do
  local key = KEYS[2 + i]
  local v = redis.call('INCRBY', key, tokens)
  if v == tokens then redis.call('PEXPIRE', key, ARGV[3 + i]) end
end
for i = 3 + ntok, #KEYS - 1 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('DECRBY', KEYS[i], delta) end
end
return 1
";

// Claims one expired reservation for the sweeper. KEYS: pending set,
// reservation; ARGV: request id. Returns the amount, or -1 when another
// replica (or a settlement) got there first, -2 when the amount is gone.
const EXPIRE_LUA: &str = r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end
local amount = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[2])
if not amount then return -2 end
return tonumber(amount)
";

// All-or-nothing window counters. KEYS: counters; ARGV: (limit, amount, ttl)
// per key. Returns 0 when every counter took its amount, else the 1-based
// index of the first that would overflow.
const ACQUIRE_LUA: &str = r"
for i = 1, #KEYS do
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  if cur + tonumber(ARGV[3 * i - 1]) > tonumber(ARGV[3 * i - 2]) then return i end
end
for i = 1, #KEYS do
  local by = tonumber(ARGV[3 * i - 1])
  local v = redis.call('INCRBY', KEYS[i], by)
  if v == by then redis.call('PEXPIRE', KEYS[i], ARGV[3 * i]) end
end
return 0
";

/// Scripts are hashed once; Redis runs them by SHA after the first load.
static RESERVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RESERVE_LUA));
static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LUA));
static EXPIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(EXPIRE_LUA));
static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_LUA));

const CREDIT_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
return 1
";

/// In-process counter state.
#[derive(Debug, Default)]
pub struct Memory {
    available: HashMap<String, i64>,
    reservations: HashMap<String, (String, i64, tokio::time::Instant)>,
    counters: HashMap<String, (i64, tokio::time::Instant)>,
}

/// Redis failed: this call runs on per-process counters instead (limits then
/// hold per billing replica, not across them), loudly.
fn degraded(e: &CounterError) {
    tracing::warn!(error = %e, "Redis unavailable; using per-process counters");
    metrics::counter!("oneflow_billing_redis_fallback_total").increment(1);
    oneflow_runtime::count_redis_error("billing", &e.0);
}

/// Every counter of a plan in script order: requests, tokens, credits.
fn all(plan: &LimitPlan) -> impl Iterator<Item = &Counter> {
    plan.requests.iter().chain(&plan.tokens).chain(&plan.credits)
}

/// The `index`-th (1-based) counter of `plan` as a refusal.
fn limited(plan: &LimitPlan, index: usize) -> Reserve {
    let nreq = plan.requests.len();
    let ntok = plan.tokens.len();
    let unit = if index <= nreq {
        "requests"
    } else if index <= nreq + ntok {
        "tokens"
    } else {
        "credits"
    };
    match all(plan).nth(index.saturating_sub(1)) {
        Some(c) => Reserve::Limited {
            kind: c.kind,
            unit,
            window: c.name,
            limit: c.limit,
            retry_after_millis: c.ttl_millis,
        },
        None => Reserve::Limited {
            kind: LimitKind::Rate,
            unit,
            window: "minute",
            limit: 0,
            retry_after_millis: 1000,
        },
    }
}

/// The first request window after counting this request (`count` = its new value).
fn first_window(plan: &LimitPlan, count: i64) -> Option<WindowStatus> {
    let c = plan.requests.first()?;
    Some(WindowStatus {
        limit: c.limit,
        remaining: (c.limit - count).max(0),
        reset_millis: c.ttl_millis,
    })
}

/// Available-credit counters.
#[derive(Clone)]
pub enum Counters {
    /// Redis, shared by every billing replica.
    Redis {
        /// Pool.
        pool: RedisPool,
        /// Key prefix.
        prefix: Arc<str>,
        /// Per-process counters used while Redis is unreachable.
        fallback: Arc<Mutex<Memory>>,
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
    /// Redis counters under `prefix`, falling back to process memory while
    /// Redis is unreachable.
    pub fn redis(pool: RedisPool, prefix: &str) -> Self {
        Counters::Redis {
            pool,
            prefix: Arc::from(prefix),
            fallback: Arc::default(),
        }
    }

    /// In-process counters.
    pub fn memory() -> Self {
        Counters::Memory(Arc::new(Mutex::new(Memory::default())))
    }

    /// The user's open reservations by expiry, which the sweeper scans.
    fn pending_key(prefix: &str, user: &str) -> String {
        format!("{prefix}:{{u:{user}}}:pending")
    }

    /// Takes up to `limit` reservations that have expired (the sweeper turns
    /// them into charges). A reservation is taken by exactly one caller, even
    /// across billing replicas.
    pub async fn take_expired(&self, limit: usize) -> Result<Vec<Expired>, CounterError> {
        match self {
            Counters::Redis { pool, prefix, fallback } => {
                let mut out = Self::take_expired_memory(fallback, limit)?;
                out.extend(Self::take_expired_redis(pool, prefix, limit).await?);
                Ok(out)
            }
            Counters::Memory(mem) => Self::take_expired_memory(mem, limit),
        }
    }

    async fn take_expired_redis(pool: &RedisPool, prefix: &str, limit: usize) -> Result<Vec<Expired>, CounterError> {
        let err = |e: deadpool_redis::redis::RedisError| CounterError(e.to_string());
        let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
        let now = crate::store::now_millis();
        let pattern = format!("{prefix}:{{u:*}}:pending");
        let mut out = Vec::new();
        // A Cluster spreads the users' keys over its primaries: scan each.
        let primaries = conn.primaries().await.map_err(|e| CounterError(e.to_string()))?;
        let nodes: Vec<Option<(String, u16)>> = if primaries.is_empty() {
            vec![None]
        } else {
            primaries.into_iter().map(Some).collect()
        };
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = deadpool_redis::redis::cmd("SCAN");
                scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500);
                let (next, keys): (u64, Vec<String>) = match &node {
                    Some((host, port)) => {
                        let v = conn
                            .query_on(host, *port, &scan)
                            .await
                            .map_err(|e| CounterError(e.to_string()))?;
                        deadpool_redis::redis::from_redis_value(v).map_err(|e| CounterError(e.to_string()))?
                    }
                    None => scan.query_async(&mut conn).await.map_err(err)?,
                };
                for key in keys {
                    let Some(user) = key.split("{u:").nth(1).and_then(|rest| rest.split('}').next()) else {
                        continue;
                    };
                    let ids: Vec<String> = deadpool_redis::redis::cmd("ZRANGEBYSCORE")
                        .arg(&key)
                        .arg("-inf")
                        .arg(now)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async(&mut conn)
                        .await
                        .map_err(err)?;
                    for id in ids {
                        let (_, res) = Self::keys(prefix, user, &id);
                        let amount: i64 = EXPIRE_SCRIPT
                            .key(&key)
                            .key(res)
                            .arg(&id)
                            .invoke_async(&mut conn)
                            .await
                            .map_err(err)?;
                        if amount >= 0 {
                            out.push(Expired {
                                user: user.to_owned(),
                                request_id: id,
                                amount,
                            });
                        }
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn take_expired_memory(mem: &Mutex<Memory>, limit: usize) -> Result<Vec<Expired>, CounterError> {
        let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
        let now = tokio::time::Instant::now();
        let ids: Vec<String> = m
            .reservations
            .iter()
            .filter(|(_, (_, _, until))| *until <= now)
            .map(|(id, _)| id.clone())
            .take(limit)
            .collect();
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                m.reservations.remove(&id).map(|(user, amount, _)| Expired {
                    user,
                    request_id: id,
                    amount,
                })
            })
            .collect())
    }

    fn keys(prefix: &str, user: &str, request_id: &str) -> (String, String) {
        (
            format!("{prefix}:{{u:{user}}}:avail"),
            format!("{prefix}:{{u:{user}}}:res:{request_id}"),
        )
    }

    /// Atomically checks every limit of `plan` and that `amount` is available,
    /// then counts the request and reserves `amount` under `request_id`.
    /// `balance` seeds the account when it is not loaded yet; without it an
    /// unloaded account answers [`Reserve::NotLoaded`].
    pub async fn reserve(
        &self,
        user: &str,
        request_id: &str,
        amount: i64,
        ttl: Duration,
        balance: Option<i64>,
        plan: &LimitPlan,
    ) -> Result<Reserve, CounterError> {
        match self {
            Counters::Redis { pool, prefix, fallback } => {
                match Self::reserve_redis(pool, prefix, user, request_id, amount, ttl, balance, plan).await {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        degraded(&e);
                        Self::reserve_memory(fallback, user, request_id, amount, ttl, balance, plan)
                    }
                }
            }
            Counters::Memory(mem) => Self::reserve_memory(mem, user, request_id, amount, ttl, balance, plan),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments of `reserve` plus the connection"
    )]
    async fn reserve_redis(
        pool: &RedisPool,
        prefix: &str,
        user: &str,
        request_id: &str,
        amount: i64,
        ttl: Duration,
        balance: Option<i64>,
        plan: &LimitPlan,
    ) -> Result<Reserve, CounterError> {
        let (avail, res) = Self::keys(prefix, user, request_id);
        let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
        let mut script = RESERVE_SCRIPT.prepare_invoke();
        script.key(avail).key(res);
        for c in all(plan) {
            script.key(format!("{prefix}:{}", c.key));
        }
        script
            .arg(amount)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg(balance.map_or_else(String::new, |b| b.to_string()))
            .arg(plan.requests.len())
            .arg(plan.tokens.len())
            .arg(plan.credits.len());
        for c in all(plan) {
            script.arg(c.limit).arg(c.ttl_millis.max(1));
        }
        let expires_at = crate::store::now_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        script
            .key(Self::pending_key(prefix, user))
            .arg(expires_at)
            .arg(request_id);
        let (code, a, b, _): (i64, i64, i64, i64) = script
            .invoke_async(&mut conn)
            .await
            .map_err(|e| CounterError(e.to_string()))?;
        Ok(match code {
            0 => Reserve::Reserved {
                available_after: a,
                window: first_window(plan, b),
            },
            1 => Reserve::Insufficient { available: a },
            2 => Reserve::Duplicate,
            3 => Reserve::NotLoaded,
            _ => limited(plan, usize::try_from(a).unwrap_or(0)),
        })
    }

    fn reserve_memory(
        mem: &Mutex<Memory>,
        user: &str,
        request_id: &str,
        amount: i64,
        ttl: Duration,
        balance: Option<i64>,
        plan: &LimitPlan,
    ) -> Result<Reserve, CounterError> {
        let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
        let now = tokio::time::Instant::now();

        m.counters.retain(|_, (_, until)| *until > now);
        let nreq = plan.requests.len();
        let ntok = plan.tokens.len();
        for (i, c) in all(plan).enumerate() {
            let cur = m.counters.get(&c.key).map_or(0, |(v, _)| *v);
            let over = if i < nreq + ntok {
                cur >= c.limit
            } else {
                cur.saturating_add(amount) > c.limit
            };
            if over {
                return Ok(limited(plan, i + 1));
            }
        }
        if m.reservations.contains_key(request_id) {
            return Ok(Reserve::Duplicate);
        }
        let avail = match (m.available.get(user), balance) {
            (Some(a), _) => *a,
            (None, Some(b)) => b,
            (None, None) => return Ok(Reserve::NotLoaded),
        };
        if avail < amount {
            m.available.insert(user.to_owned(), avail);
            return Ok(Reserve::Insufficient { available: avail });
        }
        m.available.insert(user.to_owned(), avail - amount);
        m.reservations
            .insert(request_id.to_owned(), (user.to_owned(), amount, now + ttl));
        let mut first = -1;
        for (i, c) in all(plan).enumerate() {
            if i >= nreq && i < nreq + ntok {
                continue;
            }
            let by = if i < nreq { 1 } else { amount };
            let until = now + Duration::from_millis(u64::try_from(c.ttl_millis.max(1)).unwrap_or(1));
            let entry = m.counters.entry(c.key.clone()).or_insert((0, until));
            entry.0 = entry.0.saturating_add(by);
            if i == 0 {
                first = entry.0;
            }
        }
        Ok(Reserve::Reserved {
            available_after: avail - amount,
            window: first_window(plan, first),
        })
    }

    /// Ends `request_id`'s reservation after `charge` was written to the
    /// ledger: the unused part becomes available again, `tokens` are counted
    /// in every token window and the month credit counters are corrected to
    /// the real charge. Idempotent: returns false, changing nothing, when no
    /// reservation is open (already released, or expired).
    pub async fn release(
        &self,
        user: &str,
        request_id: &str,
        charge: i64,
        tokens: i64,
        plan: &SettlePlan,
    ) -> Result<bool, CounterError> {
        match self {
            Counters::Redis { pool, prefix, fallback } => {
                match Self::release_redis(pool, prefix, user, request_id, charge, tokens, plan).await {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        degraded(&e);
                        Self::release_memory(fallback, user, request_id, charge, tokens, plan)
                    }
                }
            }
            Counters::Memory(mem) => Self::release_memory(mem, user, request_id, charge, tokens, plan),
        }
    }

    async fn release_redis(
        pool: &RedisPool,
        prefix: &str,
        user: &str,
        request_id: &str,
        charge: i64,
        tokens: i64,
        plan: &SettlePlan,
    ) -> Result<bool, CounterError> {
        let (avail, res) = Self::keys(prefix, user, request_id);
        let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
        let mut script = RELEASE_SCRIPT.prepare_invoke();
        script.key(avail).key(res);
        for (k, _) in &plan.tokens {
            script.key(format!("{prefix}:{k}"));
        }
        for k in &plan.credits {
            script.key(format!("{prefix}:{k}"));
        }
        script.arg(charge).arg(tokens).arg(plan.tokens.len());
        for (_, ttl) in &plan.tokens {
            script.arg((*ttl).max(1));
        }
        script.key(Self::pending_key(prefix, user)).arg(request_id);
        let found: i64 = script
            .invoke_async(&mut conn)
            .await
            .map_err(|e| CounterError(e.to_string()))?;
        Ok(found == 1)
    }

    fn release_memory(
        mem: &Mutex<Memory>,
        user: &str,
        request_id: &str,
        charge: i64,
        tokens: i64,
        plan: &SettlePlan,
    ) -> Result<bool, CounterError> {
        let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
        let Some((_, reserved, _)) = m.reservations.remove(request_id) else {
            return Ok(false);
        };
        let delta = reserved - charge;
        if let Some(avail) = m.available.get_mut(user) {
            *avail += delta;
        }
        let now = tokio::time::Instant::now();
        for (k, ttl) in &plan.tokens {
            let until = now + Duration::from_millis(u64::try_from((*ttl).max(1)).unwrap_or(1));
            let entry = m.counters.entry(k.clone()).or_insert((0, until));
            entry.0 = entry.0.saturating_add(tokens);
        }
        for k in &plan.credits {
            if let Some(entry) = m.counters.get_mut(k) {
                entry.0 -= delta;
            }
        }
        Ok(true)
    }

    /// Adds `delta` to the available credits of a loaded account (grants).
    pub async fn credit(&self, user: &str, delta: i64) -> Result<(), CounterError> {
        match self {
            Counters::Redis { pool, prefix, fallback } => match Self::credit_redis(pool, prefix, user, delta).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    degraded(&e);
                    Self::credit_memory(fallback, user, delta)
                }
            },
            Counters::Memory(mem) => Self::credit_memory(mem, user, delta),
        }
    }

    async fn credit_redis(pool: &RedisPool, prefix: &str, user: &str, delta: i64) -> Result<(), CounterError> {
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

    fn credit_memory(mem: &Mutex<Memory>, user: &str, delta: i64) -> Result<(), CounterError> {
        let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
        if let Some(avail) = m.available.get_mut(user) {
            *avail += delta;
        }
        Ok(())
    }

    /// Atomically adds `amount` to every window counter if all stay within
    /// their limits (all or nothing). Each entry: (key, limit, amount, ttl ms).
    /// Returns `None` when granted, or the milliseconds until the first full
    /// window resets.
    pub async fn acquire_windows(&self, windows: &[(String, i64, i64, i64)]) -> Result<Option<i64>, CounterError> {
        match self {
            Counters::Redis { pool, prefix, fallback } => match Self::acquire_redis(pool, prefix, windows).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    degraded(&e);
                    Self::acquire_memory(fallback, windows)
                }
            },
            Counters::Memory(mem) => Self::acquire_memory(mem, windows),
        }
    }

    async fn acquire_redis(
        pool: &RedisPool,
        prefix: &str,
        windows: &[(String, i64, i64, i64)],
    ) -> Result<Option<i64>, CounterError> {
        let mut conn = pool.get().await.map_err(|e| CounterError(e.to_string()))?;
        let mut script = ACQUIRE_SCRIPT.prepare_invoke();
        for (key, limit, amount, ttl) in windows {
            script
                .key(format!("{prefix}:{key}"))
                .arg(*limit)
                .arg(*amount)
                .arg((*ttl).max(1));
        }
        let full: i64 = script
            .invoke_async(&mut conn)
            .await
            .map_err(|e| CounterError(e.to_string()))?;
        Ok(usize::try_from(full)
            .ok()
            .filter(|i| *i > 0)
            .and_then(|i| windows.get(i - 1))
            .map(|w| w.3))
    }

    fn acquire_memory(mem: &Mutex<Memory>, windows: &[(String, i64, i64, i64)]) -> Result<Option<i64>, CounterError> {
        let mut m = mem.lock().map_err(|_| CounterError("poisoned".into()))?;
        let now = tokio::time::Instant::now();
        for (key, limit, amount, ttl) in windows {
            let cur = m
                .counters
                .get(key)
                .filter(|(_, until)| *until > now)
                .map_or(0, |(v, _)| *v);
            if cur.saturating_add(*amount) > *limit {
                return Ok(Some(*ttl));
            }
        }
        for (key, _, amount, ttl) in windows {
            let until = now + Duration::from_millis(u64::try_from((*ttl).max(1)).unwrap_or(1));
            let entry = m.counters.entry(key.clone()).or_insert((0, until));
            if entry.1 <= now {
                *entry = (0, until);
            }
            entry.0 = entry.0.saturating_add(*amount);
        }
        Ok(None)
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
