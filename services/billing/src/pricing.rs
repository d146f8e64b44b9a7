//! Prices and the one charge rule. Provider prices are exact decimals (USD per
//! million units); a charge in credits is computed exactly and rounded once,
//! up to the next hundredth of a credit, so it is never zero for real usage and
//! a worst-case reservation always covers the real charge.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use oneflow_proto::common::v1::Usage;

/// Prices of one model, in provider currency (USD) per million units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Public model name.
    pub model: String,
    /// Per 1M input tokens.
    #[serde(default)]
    pub input_per_million: Decimal,
    /// Per 1M output tokens.
    #[serde(default)]
    pub output_per_million: Decimal,
    /// Per 1M cached input tokens (defaults to the input price).
    #[serde(default)]
    pub cached_input_per_million: Option<Decimal>,
}

/// The `[pricing]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// Credits per unit of provider currency (the normalisation rate).
    pub credits_per_usd: Decimal,
    /// Model prices.
    pub models: Vec<ModelPrice>,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            credits_per_usd: Decimal::from(100),
            models: Vec::new(),
        }
    }
}

/// Charges cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// No price is configured for the model.
    #[error("model `{0}` has no price configured")]
    NotPriced(String),
    /// The usage is too large to price.
    #[error("usage too large to price")]
    Overflow,
}

/// A price and the instant (Unix ms) it takes effect.
pub type PriceVersion = (i64, ModelPrice);

/// Prices by model, each a list of versions by effective date, ready for
/// lookups on the hot path. Shared by clones; admins' edits land in all of them.
#[derive(Debug, Clone)]
pub struct PriceBook {
    credits_per_usd: Decimal,
    by_model: Arc<RwLock<HashMap<String, Vec<PriceVersion>>>>,
}

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

impl PriceBook {
    /// The configured prices, effective since forever.
    pub fn new(config: &PricingConfig) -> Self {
        let by_model = config
            .models
            .iter()
            .map(|p| (p.model.clone(), vec![(0, p.clone())]))
            .collect();
        Self {
            credits_per_usd: config.credits_per_usd,
            by_model: Arc::new(RwLock::new(by_model)),
        }
    }

    /// Adds versions (from the database); later effective dates win at their time.
    pub fn merge(&self, versions: impl IntoIterator<Item = PriceVersion>) {
        if let Ok(mut map) = self.by_model.write() {
            for (from, price) in versions {
                let list = map.entry(price.model.clone()).or_default();
                list.retain(|(f, _)| *f != from);
                list.push((from, price));
                list.sort_by_key(|(f, _)| *f);
            }
        }
    }

    /// The price of `model` in effect at `at` (Unix ms).
    pub fn price_at(&self, model: &str, at: i64) -> Option<PriceVersion> {
        let map = self.by_model.read().ok()?;
        map.get(model)?.iter().rev().find(|(from, _)| *from <= at).cloned()
    }

    /// Every model's price in effect at `at`, and any version scheduled after it.
    pub fn prices(&self, at: i64) -> Vec<PriceVersion> {
        let Ok(map) = self.by_model.read() else {
            return Vec::new();
        };
        let mut out: Vec<PriceVersion> = map
            .values()
            .flat_map(|versions| {
                let current = versions.iter().rev().find(|(from, _)| *from <= at).cloned();
                current
                    .into_iter()
                    .chain(versions.iter().filter(|(from, _)| *from > at).cloned())
            })
            .collect();
        out.sort_by(|a, b| a.1.model.cmp(&b.1.model).then(a.0.cmp(&b.0)));
        out
    }

    /// The charge for `usage` of `model` at the price in effect now, in
    /// hundredths of a credit. A charge is stored as an amount, so later
    /// price changes never alter it.
    pub fn charge_cents(&self, model: &str, usage: &Usage) -> Result<i64, PriceError> {
        let (_, price) = self
            .price_at(model, crate::store::now_millis())
            .ok_or_else(|| PriceError::NotPriced(model.to_owned()))?;
        charge_cents(&price, usage, self.credits_per_usd)
    }
}

/// The one charge rule (see the module docs and `docs/billing.md`).
pub fn charge_cents(price: &ModelPrice, usage: &Usage, credits_per_usd: Decimal) -> Result<i64, PriceError> {
    let cached = usage.cached_input_tokens.min(usage.input_tokens);
    let uncached = usage.input_tokens - cached;
    let cached_price = price.cached_input_per_million.unwrap_or(price.input_per_million);
    let part = |tokens: u64, per_million: Decimal| -> Result<Decimal, PriceError> {
        Decimal::from(tokens)
            .checked_mul(per_million)
            .ok_or(PriceError::Overflow)
    };
    let usd_millions = part(uncached, price.input_per_million)?
        .checked_add(part(cached, cached_price)?)
        .and_then(|s| s.checked_add(part(usage.output_tokens, price.output_per_million).ok()?))
        .ok_or(PriceError::Overflow)?;
    let credits = usd_millions
        .checked_mul(credits_per_usd)
        .and_then(|c| c.checked_div(MILLION))
        .ok_or(PriceError::Overflow)?;
    let rounded = credits.round_dp_with_strategy(2, RoundingStrategy::AwayFromZero);
    let cents = rounded.checked_mul(Decimal::ONE_HUNDRED).ok_or(PriceError::Overflow)?;
    i64::try_from(cents).map_err(|_| PriceError::Overflow)
}

/// Formats hundredths of a credit as a decimal string (`1234` → `"12.34"`).
pub fn format_cents(cents: i64) -> String {
    Decimal::new(cents, 2).to_string()
}

/// Parses a decimal credit amount into hundredths, refusing more than 2 places.
pub fn parse_credits(raw: &str) -> Option<i64> {
    let d: Decimal = raw.trim().parse().ok()?;
    if d.scale() > 2 && d.normalize().scale() > 2 {
        return None;
    }
    i64::try_from(d.checked_mul(Decimal::ONE_HUNDRED)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn price() -> ModelPrice {
        ModelPrice {
            model: "m".into(),
            input_per_million: Decimal::new(15, 2),
            output_per_million: Decimal::new(60, 2),
            cached_input_per_million: Some(Decimal::new(75, 3)),
        }
    }

    fn usage(i: u64, o: u64, c: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cached_input_tokens: c,
            ..Usage::default()
        }
    }

    #[test]
    fn worked_example_from_the_docs() {
        // 1,000,000 input at $0.15 + 500,000 output at $0.60 = $0.45 = 45 credits.
        let cents = charge_cents(&price(), &usage(1_000_000, 500_000, 0), Decimal::from(100)).unwrap();
        assert_eq!(cents, 4500);
        // 10 input + 20 output = $0.0000135 = 0.00135 credits, rounded up once to 0.01.
        assert_eq!(
            charge_cents(&price(), &usage(10, 20, 0), Decimal::from(100)).unwrap(),
            1
        );
        assert_eq!(charge_cents(&price(), &usage(0, 0, 0), Decimal::from(100)).unwrap(), 0);
    }

    #[test]
    fn a_scheduled_price_applies_from_its_date_only() {
        let book = PriceBook::new(&PricingConfig {
            credits_per_usd: Decimal::from(100),
            models: vec![price()],
        });
        let mut dearer = price();
        dearer.input_per_million = Decimal::from(1);
        book.merge([(1_000, dearer)]);
        assert_eq!(
            book.price_at("m", 999).unwrap().1.input_per_million,
            Decimal::new(15, 2)
        );
        assert_eq!(book.price_at("m", 1_000).unwrap().1.input_per_million, Decimal::from(1));
        assert_eq!(book.prices(500).len(), 2, "current and scheduled");
        assert!(book.price_at("other", 0).is_none());
    }

    #[test]
    fn credits_round_trip_through_text() {
        assert_eq!(format_cents(1234), "12.34");
        assert_eq!(parse_credits("12.34"), Some(1234));
        assert_eq!(parse_credits("12.345"), None);
        assert_eq!(parse_credits("5"), Some(500));
        assert_eq!(parse_credits("x"), None);
    }

    proptest! {
        #[test]
        fn charge_is_monotonic_in_every_token_count(
            i in 0u64..10_000_000, o in 0u64..10_000_000, c in 0u64..10_000_000, d in 1u64..100_000
        ) {
            let p = price();
            let rate = Decimal::from(100);
            let base = charge_cents(&p, &usage(i, o, c.min(i)), rate).unwrap();
            prop_assert!(charge_cents(&p, &usage(i + d, o, c.min(i)), rate).unwrap() >= base);
            prop_assert!(charge_cents(&p, &usage(i, o + d, c.min(i)), rate).unwrap() >= base);
            prop_assert!(base >= 0);
        }

        #[test]
        fn input_and_output_are_priced_separately(i in 0u64..5_000_000, o in 0u64..5_000_000) {
            let mut p = price();
            p.output_per_million = Decimal::ZERO;
            let rate = Decimal::from(100);
            let only_input = charge_cents(&p, &usage(i, o, 0), rate).unwrap();
            prop_assert_eq!(only_input, charge_cents(&p, &usage(i, 0, 0), rate).unwrap());
        }

        #[test]
        fn reservation_covers_any_smaller_usage(wi in 0u64..1_000_000, wo in 0u64..1_000_000, fi in 0.0f64..=1.0, fo in 0.0f64..=1.0) {
            let rate = Decimal::from(100);
            let worst = charge_cents(&price(), &usage(wi, wo, 0), rate).unwrap();
            let real = usage((wi as f64 * fi) as u64, (wo as f64 * fo) as u64, 0);
            prop_assert!(charge_cents(&price(), &real, rate).unwrap() <= worst);
        }
    }
}
