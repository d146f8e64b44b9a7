//! Prices and the one charge rule. Provider prices are exact decimals (USD per
//! million tokens or characters, per minute of audio); a charge in credits is
//! computed exactly and rounded once, up to the next hundredth of a credit, so
//! it is never zero for real usage and a worst-case reservation always covers
//! the real charge.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use oneflow_proto::common::v1::Usage;

/// Prices of one model, in provider currency (USD). One value is one price
/// version: a unit without a price cannot be charged for this model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Per 1M characters synthesised (text-to-speech); without it, speech
    /// usage of this model is not priced.
    #[serde(default)]
    pub per_million_characters: Option<Decimal>,
    /// Per minute of audio transcribed (speech-to-text), charged by the
    /// millisecond; without it, audio usage of this model is not priced.
    #[serde(default)]
    pub per_minute_audio: Option<Decimal>,
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
    /// The model is priced, but not for a unit its usage has (characters or
    /// audio): charging that usage nothing would give it away.
    #[error("model `{model}` has no price {unit}")]
    UnitNotPriced {
        /// Public model name.
        model: String,
        /// The missing price, for people (`per character (per_million_characters)`).
        unit: &'static str,
    },
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

/// The one charge rule (see the module docs and `docs/billing.md`):
///
/// `usd = (uncached × input + cached × cached_input + output × output_price
///         + characters × per_million_characters) / 1,000,000
///        + audio_millis × per_minute_audio / 60,000`
///
/// then `credits = usd × credits_per_usd`, rounded once, up to the next 0.01.
/// Nothing is rounded before that step: the division by 60,000 does not end
/// in decimals, so the sum is kept as an exact fraction and rounded by integer
/// division. A unit the usage has (characters, audio) but the price lacks is
/// [`PriceError::UnitNotPriced`]; a unit the usage lacks needs no price.
pub fn charge_cents(price: &ModelPrice, usage: &Usage, credits_per_usd: Decimal) -> Result<i64, PriceError> {
    let cached = usage.cached_input_tokens.min(usage.input_tokens);
    let uncached = usage.input_tokens - cached;
    let cached_price = price.cached_input_per_million.unwrap_or(price.input_per_million);
    let unit_price = |count: u64, price_of_unit: Option<Decimal>, unit: &'static str| match (count, price_of_unit) {
        (0, _) => Ok(Decimal::ZERO),
        (_, Some(p)) => Ok(p),
        (_, None) => Err(PriceError::UnitNotPriced {
            model: price.model.clone(),
            unit,
        }),
    };
    let characters_price = unit_price(
        usage.characters,
        price.per_million_characters,
        "per character (per_million_characters)",
    )?;
    let audio_price = unit_price(
        usage.audio_millis,
        price.per_minute_audio,
        "per minute of audio (per_minute_audio)",
    )?;
    let part = |count: u64, unit_price: Decimal| -> Result<Decimal, PriceError> {
        Decimal::from(count).checked_mul(unit_price).ok_or(PriceError::Overflow)
    };
    let add = |a: Decimal, b: Decimal| a.checked_add(b).ok_or(PriceError::Overflow);
    // USD × 1,000,000: the units priced per million.
    let per_million = [
        part(uncached, price.input_per_million)?,
        part(cached, cached_price)?,
        part(usage.output_tokens, price.output_per_million)?,
        part(usage.characters, characters_price)?,
    ]
    .into_iter()
    .try_fold(Decimal::ZERO, add)?;
    // USD × 60,000: audio priced per minute, counted in milliseconds.
    let per_minute = part(usage.audio_millis, audio_price)?;
    // usd = per_million / 10⁶ + per_minute / 60,000 = (3 × per_million + 50 × per_minute) / (3 × 10⁶),
    // so hundredths of a credit = usd × credits_per_usd × 100
    //                           = (3 × per_million + 50 × per_minute) × credits_per_usd / 30,000.
    let numerator = per_million
        .checked_mul(Decimal::from(3))
        .and_then(|a| a.checked_add(per_minute.checked_mul(Decimal::from(50))?))
        .and_then(|n| n.checked_mul(credits_per_usd))
        .ok_or(PriceError::Overflow)?;
    div_away_from_zero(numerator, 30_000).ok_or(PriceError::Overflow)
}

/// `n / d` rounded away from zero (up, for charges), exactly: `n` is an integer
/// mantissa over a power of ten, so this is one integer division.
fn div_away_from_zero(n: Decimal, d: i128) -> Option<i64> {
    let denominator = 10i128.checked_pow(n.scale())?.checked_mul(d)?;
    let mantissa = n.mantissa();
    let quotient = mantissa / denominator;
    let rounded = if mantissa % denominator == 0 {
        quotient
    } else {
        quotient + mantissa.signum()
    };
    i64::try_from(rounded).ok()
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
            ..ModelPrice::default()
        }
    }

    /// A speech model at $15 per 1M characters and a transcription model at
    /// $0.006 per minute (OpenAI's list prices of `tts-1` and `whisper-1`).
    fn audio_price() -> ModelPrice {
        ModelPrice {
            model: "audio".into(),
            per_million_characters: Some(Decimal::from(15)),
            per_minute_audio: Some(Decimal::new(6, 3)),
            ..ModelPrice::default()
        }
    }

    fn speech(characters: u64, audio_millis: u64) -> Usage {
        Usage {
            characters,
            audio_millis,
            ..Usage::default()
        }
    }

    /// The rule computed independently, in integers: prices in millionths of
    /// a dollar, 100 credits per dollar, the result rounded up once.
    fn exact_cents(tokens_in: u64, tokens_out: u64, characters: u64, millis: u64, micro: [u64; 4]) -> i128 {
        let [input, output, per_character, per_minute] = micro.map(i128::from);
        let per_million =
            i128::from(tokens_in) * input + i128::from(tokens_out) * output + i128::from(characters) * per_character;
        let per_minute = i128::from(millis) * per_minute;
        // cents = 10⁴ × (per_million / 10¹² + per_minute / (6 × 10¹⁰)) = (6 × per_million + 100 × per_minute) / (6 × 10⁸)
        let numerator = 6 * per_million + 100 * per_minute;
        let denominator = 600_000_000;
        (numerator + denominator - 1) / denominator
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
    fn speech_is_charged_per_character() {
        // 1,234 characters at $15 per 1M = $0.01851 = 1.851 credits, rounded up once to 1.86.
        let rate = Decimal::from(100);
        assert_eq!(charge_cents(&audio_price(), &speech(1_234, 0), rate), Ok(186));
        // 1M characters = $15 = 1,500 credits exactly: no extra hundredth.
        assert_eq!(charge_cents(&audio_price(), &speech(1_000_000, 0), rate), Ok(150_000));
    }

    #[test]
    fn transcription_is_charged_by_the_millisecond_at_a_price_per_minute() {
        let rate = Decimal::from(100);
        // 61.5 s at $0.006 per minute = $0.00615 = 0.615 credits, rounded up to 0.62
        // (not two started minutes, $0.012).
        assert_eq!(charge_cents(&audio_price(), &speech(0, 61_500), rate), Ok(62));
        // One minute is exactly 0.60 credits.
        assert_eq!(charge_cents(&audio_price(), &speech(0, 60_000), rate), Ok(60));
        // $1 per minute: 600 ms is exactly $0.01 = 1 credit; one more millisecond
        // adds a fraction that does not end in decimals (1/60,000 of a dollar)
        // and still rounds up to the next hundredth.
        let dollar = ModelPrice {
            per_minute_audio: Some(Decimal::ONE),
            ..audio_price()
        };
        assert_eq!(charge_cents(&dollar, &speech(0, 600), rate), Ok(100));
        assert_eq!(charge_cents(&dollar, &speech(0, 601), rate), Ok(101));
        // The smallest usage at the smallest price still costs 0.01.
        let cent = ModelPrice {
            per_minute_audio: Some(Decimal::new(1, 2)),
            ..audio_price()
        };
        assert_eq!(charge_cents(&cent, &speech(0, 1), rate), Ok(1));
    }

    #[test]
    fn one_charge_is_rounded_once_whatever_its_units() {
        // 1.851 + 0.615 = 2.466 credits, charged 2.47; rounding each part first would give 1.86 + 0.62 = 2.48.
        let rate = Decimal::from(100);
        assert_eq!(charge_cents(&audio_price(), &speech(1_234, 61_500), rate), Ok(247));
        // Tokens join the same sum: + 10 input tokens at $0.15 per 1M (0.00015 credits).
        let mixed = ModelPrice {
            input_per_million: Decimal::new(15, 2),
            ..audio_price()
        };
        let usage = Usage {
            input_tokens: 10,
            ..speech(1_234, 61_500)
        };
        assert_eq!(charge_cents(&mixed, &usage, rate), Ok(247));
    }

    #[test]
    fn audio_usage_without_its_price_is_not_priced() {
        let rate = Decimal::from(100);
        let chat_only = price();
        assert_eq!(
            charge_cents(&chat_only, &speech(1, 0), rate),
            Err(PriceError::UnitNotPriced {
                model: "m".into(),
                unit: "per character (per_million_characters)",
            })
        );
        assert!(matches!(
            charge_cents(&chat_only, &speech(0, 1), rate),
            Err(PriceError::UnitNotPriced { .. })
        ));
        // A unit the usage does not have needs no price.
        assert_eq!(charge_cents(&chat_only, &usage(10, 20, 0), rate), Ok(1));
        let tts_only = ModelPrice {
            per_minute_audio: None,
            ..audio_price()
        };
        assert_eq!(charge_cents(&tts_only, &speech(1_234, 0), rate), Ok(186));
        // A configured price of zero is a price: free, not refused.
        let free = ModelPrice {
            per_minute_audio: Some(Decimal::ZERO),
            ..audio_price()
        };
        assert_eq!(charge_cents(&free, &speech(0, 61_500), rate), Ok(0));
    }

    #[test]
    fn the_price_book_prices_audio_worst_cases() {
        let book = PriceBook::new(&PricingConfig {
            credits_per_usd: Decimal::from(100),
            models: vec![audio_price(), price()],
        });
        assert_eq!(book.charge_cents("audio", &speech(1_234, 0)), Ok(186));
        assert_eq!(book.charge_cents("audio", &speech(0, 61_500)), Ok(62));
        assert!(matches!(
            book.charge_cents("m", &speech(0, 61_500)),
            Err(PriceError::UnitNotPriced { .. })
        ));
        assert_eq!(
            book.charge_cents("nope", &speech(1, 0)),
            Err(PriceError::NotPriced("nope".into()))
        );
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
        fn charge_is_monotonic_in_characters_and_audio(
            ch in 0u64..100_000_000, ms in 0u64..100_000_000, d in 1u64..1_000_000
        ) {
            let p = audio_price();
            let rate = Decimal::from(100);
            let base = charge_cents(&p, &speech(ch, ms), rate).unwrap();
            prop_assert!(charge_cents(&p, &speech(ch + d, ms), rate).unwrap() >= base);
            prop_assert!(charge_cents(&p, &speech(ch, ms + d), rate).unwrap() >= base);
            prop_assert!(base >= 0);
        }

        #[test]
        fn charge_is_the_exact_sum_rounded_up_once(
            i in 0u64..1_000_000_000, o in 0u64..1_000_000_000, ch in 0u64..1_000_000_000,
            ms in 0u64..1_000_000_000, micro in proptest::array::uniform4(0u64..100_000_000)
        ) {
            let p = ModelPrice {
                model: "m".into(),
                input_per_million: Decimal::new(i64::try_from(micro[0]).unwrap(), 6),
                output_per_million: Decimal::new(i64::try_from(micro[1]).unwrap(), 6),
                cached_input_per_million: None,
                per_million_characters: Some(Decimal::new(i64::try_from(micro[2]).unwrap(), 6)),
                per_minute_audio: Some(Decimal::new(i64::try_from(micro[3]).unwrap(), 6)),
            };
            let u = Usage { input_tokens: i, output_tokens: o, characters: ch, audio_millis: ms, ..Usage::default() };
            let cents = charge_cents(&p, &u, Decimal::from(100)).unwrap();
            prop_assert_eq!(i128::from(cents), exact_cents(i, o, ch, ms, micro));
        }

        #[test]
        fn rounding_is_idempotent(per_minute_cents in 0i64..100_000, minutes in 0u64..10_000, per_million_cents in 0i64..100_000, millions in 0u64..1_000) {
            // Whole minutes and whole millions at whole-cent prices cost whole
            // hundredths of a credit already: rounding adds nothing.
            let p = ModelPrice {
                per_million_characters: Some(Decimal::new(per_million_cents, 2)),
                per_minute_audio: Some(Decimal::new(per_minute_cents, 2)),
                ..audio_price()
            };
            let u = speech(millions * 1_000_000, minutes * 60_000);
            let expected = 100 * (per_minute_cents * i64::try_from(minutes).unwrap()
                + per_million_cents * i64::try_from(millions).unwrap());
            prop_assert_eq!(charge_cents(&p, &u, Decimal::from(100)).unwrap(), expected);
        }

        #[test]
        fn audio_reservation_covers_any_smaller_usage(wc in 0u64..10_000_000, wm in 0u64..10_000_000, fc in 0.0f64..=1.0, fm in 0.0f64..=1.0) {
            let rate = Decimal::from(100);
            let worst = charge_cents(&audio_price(), &speech(wc, wm), rate).unwrap();
            let real = speech((wc as f64 * fc) as u64, (wm as f64 * fm) as u64);
            prop_assert!(charge_cents(&audio_price(), &real, rate).unwrap() <= worst);
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
