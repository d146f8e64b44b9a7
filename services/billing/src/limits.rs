//! Rate limits and quotas as counters in fixed windows (minute, hour, UTC day,
//! UTC calendar month), planned here and checked by the counter backends in
//! the same atomic step as the credit reservation. Fixed windows make
//! `Retry-After` honest: the window's end is exactly when a retry succeeds.
//!
//! - Requests (rate limits and request quotas) count at authorisation, exactly.
//! - Credits per month count the reservation at authorisation and are
//!   corrected to the real charge at settlement, so concurrency cannot overshoot.
//! - Tokens count the real usage at settlement; authorisation refuses once a
//!   window's count has reached its limit (a request in flight may finish past it).
use serde::{Deserialize, Serialize};

use oneflow_proto::common::v1::KeyLimits;

/// Default limits (per key and per user); a key's own limits replace the key
/// defaults. A limit of 0 switches that limit off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per minute per key.
    pub key_requests_per_minute: Option<u64>,
    /// Requests per hour per key.
    pub key_requests_per_hour: Option<u64>,
    /// Requests per minute per user (all keys).
    pub user_requests_per_minute: Option<u64>,
    /// Requests per hour per user.
    pub user_requests_per_hour: Option<u64>,
    /// Requests per UTC day per user.
    pub user_requests_per_day: Option<u64>,
    /// Tokens per UTC day per user.
    pub user_tokens_per_day: Option<u64>,
    /// Tokens per UTC month per user.
    pub user_tokens_per_month: Option<u64>,
    /// Credits per UTC month per user (a decimal with at most 2 places).
    pub user_credits_per_month: Option<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            key_requests_per_minute: Some(60),
            key_requests_per_hour: Some(1000),
            user_requests_per_minute: None,
            user_requests_per_hour: None,
            user_requests_per_day: None,
            user_tokens_per_day: None,
            user_tokens_per_month: None,
            user_credits_per_month: None,
        }
    }
}

/// Which error a limit raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Per minute / hour: `rate_limit_exceeded`.
    Rate,
    /// Per day / month: `quota_exceeded`.
    Quota,
}

/// A counter the plan touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Storage key (without the service prefix), tagged with the user.
    pub key: String,
    /// The limit in the counter's unit.
    pub limit: i64,
    /// Milliseconds until the window ends (the counter's time to live).
    pub ttl_millis: i64,
    /// Error it raises.
    pub kind: LimitKind,
    /// Human name for messages and headers.
    pub name: &'static str,
}

/// Everything one authorisation must check and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitPlan {
    /// Request counters: checked and incremented by one.
    pub requests: Vec<Counter>,
    /// Token counters: checked (count < limit) now, incremented at settlement.
    pub tokens: Vec<Counter>,
    /// Credit counters: checked with the reservation and incremented by it.
    pub credits: Vec<Counter>,
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// Days since 1970-01-01 to (year, month) and the first day of the next month.
fn month_of(days: i64) -> (i64, i64, i64) {
    // Howard Hinnant's civil_from_days / days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let y = if nm <= 2 { ny - 1 } else { ny };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = nm;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (year, month, era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` of a day number since 1970-01-01.
pub fn date_of_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A window: its id (for the key) and the milliseconds left in it.
fn window(now: i64, size: i64) -> (i64, i64) {
    let id = now.div_euclid(size);
    (id, (id + 1) * size - now)
}

fn month_window(now: i64) -> (String, i64) {
    let (year, month, next_month_day) = month_of(now.div_euclid(DAY));
    (format!("{year:04}{month:02}"), next_month_day * DAY - now)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Builds the plan for one request of `user` through `key` at `now`.
pub fn plan(
    config: &LimitsConfig,
    user: &str,
    key: &str,
    key_limits: Option<&KeyLimits>,
    now: i64,
    credit_cap: Option<i64>,
    key_credit_cap: Option<i64>,
) -> LimitPlan {
    let tag = format!("{{u:{user}}}");
    let (minute, minute_ttl) = window(now, MINUTE);
    let (hour, hour_ttl) = window(now, HOUR);
    let (day, day_ttl) = window(now, DAY);
    let (month, month_ttl) = month_window(now);
    let mut p = LimitPlan::default();
    let mut req =
        |scope: &str, name: &'static str, window_id: String, ttl: i64, limit: Option<u64>, kind: LimitKind| {
            if let Some(limit) = limit.filter(|l| *l > 0) {
                p.requests.push(Counter {
                    key: format!("{tag}:{scope}:req:{name}:{window_id}"),
                    limit: as_i64(limit),
                    ttl_millis: ttl,
                    kind,
                    name,
                });
            }
        };
    let kl = key_limits.cloned().unwrap_or_default();
    if !key.is_empty() {
        let scope = format!("k:{key}");
        req(
            &scope,
            "minute",
            minute.to_string(),
            minute_ttl,
            kl.requests_per_minute.or(config.key_requests_per_minute),
            LimitKind::Rate,
        );
        req(
            &scope,
            "hour",
            hour.to_string(),
            hour_ttl,
            config.key_requests_per_hour,
            LimitKind::Rate,
        );
        req(
            &scope,
            "day",
            day.to_string(),
            day_ttl,
            kl.requests_per_day,
            LimitKind::Quota,
        );
    }
    req(
        "user",
        "minute",
        minute.to_string(),
        minute_ttl,
        config.user_requests_per_minute,
        LimitKind::Rate,
    );
    req(
        "user",
        "hour",
        hour.to_string(),
        hour_ttl,
        config.user_requests_per_hour,
        LimitKind::Rate,
    );
    req(
        "user",
        "day",
        day.to_string(),
        day_ttl,
        config.user_requests_per_day,
        LimitKind::Quota,
    );

    let mut tok =
        |scope: &str, name: &'static str, window_id: String, ttl: i64, limit: Option<u64>, kind: LimitKind| {
            if let Some(limit) = limit.filter(|l| *l > 0) {
                p.tokens.push(Counter {
                    key: format!("{tag}:{scope}:tok:{name}:{window_id}"),
                    limit: as_i64(limit),
                    ttl_millis: ttl,
                    kind,
                    name,
                });
            }
        };
    if !key.is_empty() {
        let scope = format!("k:{key}");
        tok(
            &scope,
            "minute",
            minute.to_string(),
            minute_ttl,
            kl.tokens_per_minute,
            LimitKind::Rate,
        );
        tok(
            &scope,
            "day",
            day.to_string(),
            day_ttl,
            kl.tokens_per_day,
            LimitKind::Quota,
        );
        tok(
            &scope,
            "month",
            month.clone(),
            month_ttl,
            kl.tokens_per_month,
            LimitKind::Quota,
        );
    }
    tok(
        "user",
        "day",
        day.to_string(),
        day_ttl,
        config.user_tokens_per_day,
        LimitKind::Quota,
    );
    tok(
        "user",
        "month",
        month.clone(),
        month_ttl,
        config.user_tokens_per_month,
        LimitKind::Quota,
    );

    // Credit counters are always kept (their settlement correction needs them
    // to exist); without a cap they never refuse.
    if !key.is_empty() {
        p.credits.push(Counter {
            key: credit_key(&tag, Some(key), &month),
            limit: key_credit_cap.unwrap_or(i64::MAX),
            ttl_millis: month_ttl,
            kind: LimitKind::Quota,
            name: "month",
        });
    }
    p.credits.push(Counter {
        key: credit_key(&tag, None, &month),
        limit: credit_cap.unwrap_or(i64::MAX),
        ttl_millis: month_ttl,
        kind: LimitKind::Quota,
        name: "month",
    });
    p
}

fn credit_key(tag: &str, key: Option<&str>, month: &str) -> String {
    match key {
        Some(k) => format!("{tag}:k:{k}:cred:month:{month}"),
        None => format!("{tag}:user:cred:month:{month}"),
    }
}

/// What a settlement updates: every token window (key and user) by the real
/// tokens, and the month credit counters by the difference between the real
/// charge and the reservation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettlePlan {
    /// Token counters and their time to live.
    pub tokens: Vec<(String, i64)>,
    /// Credit counters.
    pub credits: Vec<String>,
}

/// The settlement plan for `user`'s request through `key` at `now`.
pub fn settle_plan(user: &str, key: &str, now: i64) -> SettlePlan {
    let tag = format!("{{u:{user}}}");
    let (minute, minute_ttl) = window(now, MINUTE);
    let (day, day_ttl) = window(now, DAY);
    let (month, month_ttl) = month_window(now);
    let mut p = SettlePlan::default();
    if !key.is_empty() {
        p.tokens
            .push((format!("{tag}:k:{key}:tok:minute:{minute}"), minute_ttl));
        p.tokens.push((format!("{tag}:k:{key}:tok:day:{day}"), day_ttl));
        p.tokens.push((format!("{tag}:k:{key}:tok:month:{month}"), month_ttl));
        p.credits.push(credit_key(&tag, Some(key), &month));
    }
    p.tokens.push((format!("{tag}:user:tok:day:{day}"), day_ttl));
    p.tokens.push((format!("{tag}:user:tok:month:{month}"), month_ttl));
    p.credits.push(credit_key(&tag, None, &month));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn day_numbers_format_as_dates() {
        assert_eq!(date_of_day(0), "1970-01-01");
        assert_eq!(date_of_day(19_782), "2024-02-29");
        assert_eq!(date_of_day(1_795_305_599_000 / DAY), "2026-11-21");
    }

    #[test]
    fn months_end_on_the_first_of_the_next_month() {
        // 2026-11-21T23:59:59Z -> November 2026, ends 2026-12-01T00:00:00Z.
        let now = 1_795_305_599_000;
        let (id, ttl) = month_window(now);
        assert_eq!(id, "202611");
        assert_eq!(now + ttl, 1_796_083_200_000);
        // 2024-02-29 (leap day) -> ends 2024-03-01.
        let (id, ttl) = month_window(1_709_164_800_000);
        assert_eq!(id, "202402");
        assert_eq!(1_709_164_800_000 + ttl, 1_709_251_200_000);
        // December rolls the year.
        let (id, ttl) = month_window(1_798_675_200_000); // 2026-12-31T00:00Z
        assert_eq!(id, "202612");
        assert_eq!(1_798_675_200_000 + ttl, 1_798_761_600_000);
    }

    #[test]
    fn defaults_limit_each_key_per_minute_and_hour_and_key_limits_override() {
        let p = plan(&LimitsConfig::default(), "u1", "k1", None, 120_000, None, None);
        assert_eq!(p.requests.len(), 2);
        assert_eq!(p.requests[0].limit, 60);
        assert_eq!(p.requests[0].ttl_millis, 60_000);
        assert_eq!(p.requests[1].limit, 1000);
        assert!(
            p.requests.iter().all(|c| c.key.starts_with("{u:u1}:")),
            "one hash slot per user"
        );
        let kl = KeyLimits {
            requests_per_minute: Some(5),
            tokens_per_day: Some(1000),
            ..KeyLimits::default()
        };
        let p = plan(
            &LimitsConfig::default(),
            "u1",
            "k1",
            Some(&kl),
            130_000,
            Some(500),
            None,
        );
        assert_eq!(p.requests[0].limit, 5);
        assert_eq!(p.requests[0].ttl_millis, 50_000);
        assert_eq!(p.tokens.len(), 1);
        assert_eq!(p.credits.len(), 2);
        assert_eq!(p.credits[1].limit, 500);
        // Settlement touches the very counters authorisation checks.
        let s = settle_plan("u1", "k1", 130_000);
        assert!(s.tokens.iter().any(|(k, _)| *k == p.tokens[0].key));
        assert_eq!(s.credits, p.credits.iter().map(|c| c.key.clone()).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn windows_always_end_in_the_future_and_within_their_size(now in 0i64..4_000_000_000_000) {
            for size in [MINUTE, HOUR, DAY] {
                let (_, ttl) = window(now, size);
                prop_assert!(ttl > 0 && ttl <= size);
            }
            let (_, ttl) = month_window(now);
            prop_assert!(ttl > 0 && ttl <= 31 * DAY);
        }
    }
}
