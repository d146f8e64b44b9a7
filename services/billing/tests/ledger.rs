//! Billing against its real backends: SQLite + memory counters always, and
//! PostgreSQL + Redis (required under CI=true).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]
use oneflow_billing::{BillingConfig, BillingGrpc, EntryKind, ModelPrice, PricingConfig};
use oneflow_proto::billing::v1 as pb;
use oneflow_proto::billing::v1::billing_service_server::BillingService;
use oneflow_proto::common::v1::{Operation, Usage};
use oneflow_runtime::Secret;
use rust_decimal::Decimal;
use tonic::Request;

/// One token costs exactly one credit: $10,000 per 1M tokens at 100 credits/USD.
fn pricing() -> PricingConfig {
    PricingConfig {
        credits_per_usd: Decimal::from(100),
        models: vec![ModelPrice {
            model: "m".into(),
            input_per_million: Decimal::from(10_000),
            output_per_million: Decimal::from(10_000),
            cached_input_per_million: None,
            ..ModelPrice::default()
        }],
    }
}

/// SQLite with memory counters, and PostgreSQL with Redis (required under
/// CI=true), each with `pricing`.
async fn configs(pricing: &PricingConfig) -> Vec<(&'static str, BillingConfig)> {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let mut out = Vec::new();
    let mut sqlite = BillingConfig {
        pricing: pricing.clone(),
        ..BillingConfig::default()
    };
    sqlite.database.url = Secret::new(format!("sqlite://{}", dir.path().join("b.db").display()));
    out.push(("sqlite+memory", sqlite));
    if let (Some(pg), Some(redis)) = (
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::redis().await,
    ) {
        let mut cfg = BillingConfig {
            pricing: pricing.clone(),
            ..BillingConfig::default()
        };
        cfg.database.url = Secret::new(pg);
        cfg.redis.url = Secret::new(redis);
        cfg.redis.key_prefix = oneflow_test_support::unique_prefix();
        out.push(("postgres+redis", cfg));
    }
    out
}

async fn backends() -> Vec<(&'static str, BillingGrpc)> {
    let mut out = Vec::new();
    for (name, cfg) in configs(&pricing()).await {
        out.push((name, oneflow_billing::grpc(&cfg).await.unwrap()));
    }
    out
}

fn authorize(user: &str, id: &str, tokens: u64) -> Request<pb::AuthorizeRequest> {
    Request::new(pb::AuthorizeRequest {
        request_id: id.into(),
        user_id: user.into(),
        model: "m".into(),
        operation: Operation::Chat.into(),
        worst_case: Some(Usage {
            input_tokens: tokens,
            ..Usage::default()
        }),
        ..pb::AuthorizeRequest::default()
    })
}

fn settle(user: &str, id: &str, tokens: u64) -> Request<pb::SettleRequest> {
    Request::new(pb::SettleRequest {
        request_id: id.into(),
        reservation_id: id.into(),
        user_id: user.into(),
        model: "m".into(),
        operation: Operation::Chat.into(),
        usage: Some(Usage {
            input_tokens: tokens,
            ..Usage::default()
        }),
        status: 200,
        ..pb::SettleRequest::default()
    })
}

#[tokio::test]
async fn concurrent_requests_never_overdraw_the_balance() {
    for (name, billing) in backends().await {
        let user = uuid::Uuid::new_v4().to_string();
        billing
            .grant(&user, 1000, EntryKind::Grant, &format!("g:{user}"), None, None)
            .await
            .unwrap();
        // Balance 10.00 credits; each request may cost 1.00: exactly 10 fit.
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let billing = billing.clone();
                let user = user.clone();
                tokio::spawn(async move { billing.authorize(authorize(&user, &format!("{user}-{i}"), 1)).await })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => granted += 1,
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{name}: {status:?}");
                    assert_eq!(oneflow_proto::error_info(&status).unwrap().code, "insufficient_credits");
                }
            }
        }
        assert_eq!(granted, 10, "{name}");
    }
}

#[tokio::test]
async fn settling_twice_charges_once_and_releases_the_rest() {
    for (name, billing) in backends().await {
        let user = uuid::Uuid::new_v4().to_string();
        billing
            .grant(&user, 1000, EntryKind::Grant, &format!("g:{user}"), None, None)
            .await
            .unwrap();
        // The same grant again is a no-op.
        billing
            .grant(&user, 1000, EntryKind::Grant, &format!("g:{user}"), None, None)
            .await
            .unwrap();

        billing.authorize(authorize(&user, "r1", 5)).await.unwrap();
        let first = billing.settle(settle(&user, "r1", 2)).await.unwrap().into_inner();
        assert_eq!(first.charged_credits, "2.00", "{name}");
        assert_eq!(first.balance, "8.00", "{name}");
        assert!(!first.duplicate);
        let again = billing.settle(settle(&user, "r1", 2)).await.unwrap().into_inner();
        assert!(again.duplicate, "{name}");
        assert_eq!(again.balance, "8.00", "{name}");

        // The unused 3.00 of the reservation is available again: 8.00 fits, 9.00 does not.
        assert!(billing.authorize(authorize(&user, "r2", 9)).await.is_err(), "{name}");
        billing.authorize(authorize(&user, "r3", 8)).await.unwrap();

        let balance = billing
            .get_balance(Request::new(pb::GetBalanceRequest { user_id: user.clone() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(balance.balance, "8.00", "{name}");
    }
}

#[tokio::test]
async fn bad_input_gets_precise_statuses() {
    for (name, billing) in backends().await {
        let mut req = authorize("u", "", 1);
        req.get_mut().request_id.clear();
        assert_eq!(
            billing.authorize(req).await.unwrap_err().code(),
            tonic::Code::InvalidArgument,
            "{name}"
        );
        let mut req = authorize("u", "x", 1);
        req.get_mut().model = "unpriced".into();
        let status = billing.authorize(req).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{name}");
        assert_eq!(oneflow_proto::error_info(&status).unwrap().code, "model_not_priced");
        let grant = pb::GrantCreditsRequest {
            user_id: "u".into(),
            amount: "1.234".into(),
            idempotency_key: "k".into(),
            ..pb::GrantCreditsRequest::default()
        };
        assert_eq!(
            billing.grant_credits(Request::new(grant)).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}

#[tokio::test]
async fn an_unsettled_reservation_expires_into_a_charge_corrected_by_a_late_settlement() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = Vec::new();
    let mut sqlite = BillingConfig {
        pricing: pricing(),
        ..BillingConfig::default()
    };
    sqlite.database.url = Secret::new(format!("sqlite://{}", dir.path().join("e.db").display()));
    configs.push(("sqlite+memory", sqlite));
    if let (Some(pg), Some(redis)) = (
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::redis().await,
    ) {
        let mut cfg = BillingConfig {
            pricing: pricing(),
            ..BillingConfig::default()
        };
        cfg.database.url = Secret::new(pg);
        cfg.redis.url = Secret::new(redis);
        cfg.redis.key_prefix = oneflow_test_support::unique_prefix();
        configs.push(("postgres+redis", cfg));
    }
    for (name, mut cfg) in configs {
        cfg.reservation_ttl = std::time::Duration::from_millis(50);
        let billing = oneflow_billing::grpc(&cfg).await.unwrap();
        let user = uuid::Uuid::new_v4().to_string();
        billing
            .grant(&user, 1000, EntryKind::Grant, &format!("g:{user}"), None, None)
            .await
            .unwrap();
        billing.authorize(authorize(&user, "lost", 5)).await.unwrap();
        billing.authorize(authorize(&user, "live", 1)).await.unwrap();
        // The gateway "crashed": neither request settles before its reservation expires.
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        assert_eq!(billing.sweep_expired().await, 2, "{name}");
        let balance = |b: &BillingGrpc, u: &str| {
            let (b, u) = (b.clone(), u.to_owned());
            async move {
                b.get_balance(Request::new(pb::GetBalanceRequest { user_id: u }))
                    .await
                    .unwrap()
                    .into_inner()
                    .balance
            }
        };
        // Both reservations were charged in full: 10.00 - 5.00 - 1.00.
        assert_eq!(balance(&billing, &user).await, "4.00", "{name}");
        assert_eq!(billing.sweep_expired().await, 0, "{name}: swept twice");

        // The real usage arrives late: the charge is corrected to it, once.
        let late = billing.settle(settle(&user, "lost", 2)).await.unwrap().into_inner();
        assert_eq!(late.balance, "7.00", "{name}");
        let again = billing.settle(settle(&user, "lost", 2)).await.unwrap().into_inner();
        assert!(again.duplicate, "{name}");
        assert_eq!(balance(&billing, &user).await, "7.00", "{name}");
        // The available counter agrees with the ledger: 7.00 fits, 8.00 does not.
        assert!(billing.authorize(authorize(&user, "x1", 8)).await.is_err(), "{name}");
        billing.authorize(authorize(&user, "x2", 7)).await.unwrap();
    }
}

#[tokio::test]
async fn usage_records_past_retention_are_deleted_and_the_ledger_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = BillingConfig {
        pricing: pricing(),
        ..BillingConfig::default()
    };
    cfg.database.url = Secret::new(format!("sqlite://{}", dir.path().join("r.db").display()));
    // Reports read a "replica": here the same file through its own pool.
    cfg.reports.replica_url = cfg.database.url.clone();
    let billing = oneflow_billing::grpc(&cfg).await.unwrap();
    let store = oneflow_billing::BillingStore::connect(&cfg.database).await.unwrap();
    let user = uuid::Uuid::new_v4().to_string();
    billing
        .grant(&user, 1000, EntryKind::Grant, &format!("g:{user}"), None, None)
        .await
        .unwrap();
    billing.authorize(authorize(&user, "old", 1)).await.unwrap();
    billing.settle(settle(&user, "old", 1)).await.unwrap();
    assert_eq!(store.usage_count(&user).await.unwrap(), 1);
    // Nothing is old enough under a long retention; everything is under a 1 ms one.
    assert_eq!(billing.prune_usage(std::time::Duration::from_secs(3600)).await, 0);
    let day = 86_400_000i64;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let report = |from: i64, to: i64| {
        let billing = billing.clone();
        let user = user.clone();
        async move {
            billing
                .get_usage(Request::new(pb::GetUsageRequest {
                    user_id: user,
                    from_millis: from,
                    to_millis: to,
                    group_by: "model".into(),
                }))
                .await
                .unwrap()
                .into_inner()
                .rows
                .iter()
                .map(|r| (r.requests, r.credits.clone()))
                .collect::<Vec<_>>()
        }
    };
    // Whole UTC days read the daily rollup, other ranges the raw records; before
    // pruning both see the request.
    let whole = (now - now.rem_euclid(day) - day, now - now.rem_euclid(day) + 2 * day);
    assert_eq!(report(whole.0, whole.1).await, vec![(1, "1.00".to_owned())]);
    assert_eq!(report(whole.0 + 1, whole.1).await, vec![(1, "1.00".to_owned())]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(billing.prune_usage(std::time::Duration::from_millis(1)).await, 1);
    assert_eq!(store.usage_count(&user).await.unwrap(), 0);
    // The rollup outlives the raw records.
    assert_eq!(report(whole.0, whole.1).await, vec![(1, "1.00".to_owned())]);
    assert!(report(whole.0 + 1, whole.1).await.is_empty());
    assert_eq!(
        store.ledger_sum(&user).await.unwrap(),
        store.balance(&user).await.unwrap()
    );
    assert_eq!(store.balance(&user).await.unwrap(), 900);
}

#[tokio::test]
async fn concurrent_settlements_share_commits_and_each_is_charged_once() {
    for (name, billing) in backends().await {
        let user = uuid::Uuid::new_v4().to_string();
        billing
            .grant(&user, 100_000, EntryKind::Grant, &format!("g:{user}"), None, None)
            .await
            .unwrap();
        for i in 0..100 {
            billing
                .authorize(authorize(&user, &format!("{user}-{i}"), 3))
                .await
                .unwrap();
        }
        // Every request settled twice at once: the writer batches what queues
        // up, and a request twice in one batch is still charged once.
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let billing = billing.clone();
                let user = user.clone();
                tokio::spawn(async move {
                    let id = format!("{user}-{}", n % 100);
                    billing.settle(settle(&user, &id, 2)).await.unwrap().into_inner()
                })
            })
            .collect();
        let mut duplicates = 0;
        for t in tasks {
            if t.await.unwrap().duplicate {
                duplicates += 1;
            }
        }
        assert_eq!(duplicates, 100, "{name}");
        let balance = billing
            .get_balance(Request::new(pb::GetBalanceRequest { user_id: user.clone() }))
            .await
            .unwrap()
            .into_inner();
        // 1000.00 granted, 100 requests at 2.00.
        assert_eq!(balance.balance, "800.00", "{name}");
    }
}

/// Audio prices (per 1M characters, per minute of audio) are stored with their
/// version, read back exactly by every replica, listed, and charged.
#[tokio::test]
async fn audio_prices_round_trip_through_the_store_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut databases = vec![(
        "sqlite",
        Secret::new(format!("sqlite://{}", dir.path().join("p.db").display())),
    )];
    // Under CI=true a missing PostgreSQL fails here instead of skipping.
    if let Some(pg) = oneflow_test_support::fresh_postgres().await {
        databases.push(("postgres", Secret::new(pg)));
    }
    let dec = |s: &str| s.parse::<Decimal>().unwrap();
    for (name, url) in databases {
        let cfg = BillingConfig {
            pricing: pricing(),
            database: oneflow_runtime::DatabaseConfig {
                url,
                ..BillingConfig::default().database
            },
            ..BillingConfig::default()
        };
        let billing = oneflow_billing::grpc(&cfg).await.unwrap();
        let store = oneflow_billing::BillingStore::connect(&cfg.database).await.unwrap();

        // The store keeps both new columns, NULL included, per version.
        let tts = ModelPrice {
            model: "tts".into(),
            per_million_characters: Some(dec("15.000")),
            ..ModelPrice::default()
        };
        let stt = ModelPrice {
            model: "stt".into(),
            input_per_million: dec("0.10"),
            per_minute_audio: Some(dec("0.006")),
            ..ModelPrice::default()
        };
        let later = 4_102_444_800_000; // 2100-01-01
        store.upsert_price(later, &tts, Some("admin")).await.unwrap();
        store.upsert_price(later, &stt, None).await.unwrap();
        let stored = |versions: Vec<oneflow_billing::PriceVersion>, model: &str| {
            versions
                .into_iter()
                .filter(|(_, p)| p.model == model)
                .collect::<Vec<_>>()
        };
        let tts_back = stored(store.load_prices().await.unwrap(), "tts");
        assert_eq!(tts_back, vec![(later, tts.clone())], "{name}");
        // Exactly as written, trailing zeros included.
        assert_eq!(
            tts_back[0].1.per_million_characters.map(|d| d.to_string()),
            Some("15.000".to_owned()),
            "{name}"
        );
        assert_eq!(
            stored(store.load_prices().await.unwrap(), "stt"),
            vec![(later, stt.clone())],
            "{name}"
        );
        // A version replaced at the same date keeps only the prices it gives.
        let tokens_only = ModelPrice {
            model: "tts".into(),
            input_per_million: dec("1"),
            ..ModelPrice::default()
        };
        store.upsert_price(later, &tokens_only, None).await.unwrap();
        assert_eq!(
            stored(store.load_prices().await.unwrap(), "tts"),
            vec![(later, tokens_only)],
            "{name}"
        );

        // Through the RPCs: stored now, listed, reloaded by another replica, charged.
        let upsert = |price: pb::Price| {
            let billing = billing.clone();
            async move {
                billing
                    .upsert_price(Request::new(pb::UpsertPriceRequest {
                        price: Some(price),
                        actor_user_id: "admin".into(),
                    }))
                    .await
            }
        };
        let speech = pb::Price {
            model: "speech".into(),
            input_per_million: "0".into(),
            output_per_million: "0".into(),
            per_million_characters: "15".into(),
            per_minute_audio: "0.006".into(),
            ..pb::Price::default()
        };
        let answered = upsert(speech.clone()).await.unwrap().into_inner();
        assert_eq!(answered.per_million_characters, "15", "{name}");
        assert_eq!(answered.per_minute_audio, "0.006", "{name}");
        for field in ["per_million_characters", "per_minute_audio"] {
            let mut negative = speech.clone();
            match field {
                "per_million_characters" => negative.per_million_characters = "-1".into(),
                _ => negative.per_minute_audio = "x".into(),
            }
            let status = upsert(negative).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{name}: {field}");
            assert!(status.message().contains(field), "{name}: {status:?}");
        }
        let replica = oneflow_billing::grpc(&cfg).await.unwrap();
        for b in [&billing, &replica] {
            let listed = b
                .list_prices(Request::new(pb::ListPricesRequest {}))
                .await
                .unwrap()
                .into_inner()
                .prices;
            let speech = listed.iter().find(|p| p.model == "speech").unwrap();
            assert_eq!(
                (speech.per_million_characters.as_str(), speech.per_minute_audio.as_str()),
                ("15", "0.006"),
                "{name}"
            );
            // A model without audio prices lists them empty.
            let chat = listed.iter().find(|p| p.model == "m").unwrap();
            assert_eq!(
                (chat.per_million_characters.as_str(), chat.per_minute_audio.as_str()),
                ("", ""),
                "{name}"
            );
        }
        let user = uuid::Uuid::new_v4().to_string();
        replica
            .grant(&user, 1000, EntryKind::Grant, &format!("g:{user}"), None, None)
            .await
            .unwrap();
        let audio = |id: &str, characters: u64, audio_millis: u64| pb::AuthorizeRequest {
            request_id: id.into(),
            user_id: user.clone(),
            model: "speech".into(),
            operation: Operation::Speech.into(),
            worst_case: Some(Usage {
                characters,
                audio_millis,
                ..Usage::default()
            }),
            ..pb::AuthorizeRequest::default()
        };
        // The worst cases are priced by the same rule: 1,234 characters cost
        // 1.86 credits, 61.5 s of audio 0.62.
        let tts_hold = replica.authorize(Request::new(audio("a1", 1_234, 0))).await.unwrap();
        assert_eq!(tts_hold.into_inner().reserved_credits, "1.86", "{name}");
        let stt_hold = replica.authorize(Request::new(audio("a2", 0, 61_500))).await.unwrap();
        assert_eq!(stt_hold.into_inner().reserved_credits, "0.62", "{name}");
        let settled = replica
            .settle(Request::new(pb::SettleRequest {
                request_id: "a2".into(),
                reservation_id: "a2".into(),
                user_id: user.clone(),
                model: "speech".into(),
                operation: Operation::Transcription.into(),
                usage: Some(Usage {
                    audio_millis: 61_500,
                    ..Usage::default()
                }),
                status: 200,
                ..pb::SettleRequest::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(settled.charged_credits, "0.62", "{name}");
        assert_eq!(settled.balance, "9.38", "{name}");
        // Audio usage of a model priced for tokens only is not priced.
        let mut unpriced = audio("a3", 0, 1_000);
        unpriced.model = "m".into();
        let status = replica.authorize(Request::new(unpriced)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{name}");
        assert_eq!(oneflow_proto::error_info(&status).unwrap().code, "model_not_priced");
        assert!(status.message().contains("per_minute_audio"), "{status:?}");
    }
}

/// Speech and transcription usage: each usage record keeps the characters
/// and audio milliseconds it was charged for, reports from the raw records
/// and from the daily rollups sum them per group, and a settlement repeated
/// (at once, so possibly in one batch, and later) counts once.
#[tokio::test]
async fn audio_usage_is_recorded_reported_and_rolled_up_once() {
    let mut prices = pricing();
    // One character costs 0.01 credit ($100 per 1M), one second of audio
    // 1.00 credit ($0.60 per minute).
    prices.models.push(ModelPrice {
        model: "voice".into(),
        per_million_characters: Some(Decimal::from(100)),
        per_minute_audio: Some("0.6".parse().unwrap()),
        ..ModelPrice::default()
    });
    for (name, cfg) in configs(&prices).await {
        let billing = oneflow_billing::grpc(&cfg).await.unwrap();
        let store = oneflow_billing::BillingStore::connect(&cfg.database).await.unwrap();
        let user = uuid::Uuid::new_v4().to_string();
        billing
            .grant(&user, 100_000, EntryKind::Grant, &format!("g:{user}"), None, None)
            .await
            .unwrap();
        let (tts, stt, chat) = (format!("{user}-tts"), format!("{user}-stt"), format!("{user}-chat"));
        let audio = |id: &str, operation: Operation, characters: u64, audio_millis: u64| {
            let usage = Usage {
                characters,
                audio_millis,
                ..Usage::default()
            };
            let hold = pb::AuthorizeRequest {
                request_id: id.into(),
                user_id: user.clone(),
                model: "voice".into(),
                operation: operation.into(),
                worst_case: Some(usage),
                ..pb::AuthorizeRequest::default()
            };
            let charge = pb::SettleRequest {
                request_id: id.into(),
                reservation_id: id.into(),
                user_id: user.clone(),
                model: "voice".into(),
                operation: operation.into(),
                usage: Some(usage),
                status: 200,
                ..pb::SettleRequest::default()
            };
            (hold, charge)
        };
        let (tts_hold, tts_settle) = audio(&tts, Operation::Speech, 1_234, 0);
        let (stt_hold, stt_settle) = audio(&stt, Operation::Transcription, 0, 61_500);
        billing.authorize(Request::new(tts_hold)).await.unwrap();
        billing.authorize(Request::new(stt_hold)).await.unwrap();
        billing.authorize(authorize(&user, &chat, 3)).await.unwrap();

        // Each settlement twice at once: the writer may batch them together.
        let tasks: Vec<_> = [
            tts_settle.clone(),
            stt_settle.clone(),
            tts_settle.clone(),
            stt_settle.clone(),
        ]
        .into_iter()
        .map(|r| {
            let billing = billing.clone();
            tokio::spawn(async move { billing.settle(Request::new(r)).await.unwrap().into_inner() })
        })
        .collect();
        let mut charged = Vec::new();
        for t in tasks {
            let answer = t.await.unwrap();
            if !answer.duplicate {
                charged.push(answer.charged_credits);
            }
        }
        charged.sort();
        assert_eq!(charged, vec!["12.34".to_owned(), "61.50".to_owned()], "{name}");
        billing.settle(settle(&user, &chat, 3)).await.unwrap();
        // And once more later: still charged once.
        for r in [tts_settle, stt_settle] {
            assert!(
                billing.settle(Request::new(r)).await.unwrap().into_inner().duplicate,
                "{name}"
            );
        }

        // The records keep the units they were charged for.
        let tts_record = store.usage_record(&tts).await.unwrap().unwrap();
        assert_eq!(
            (
                tts_record.operation.as_str(),
                tts_record.characters,
                tts_record.audio_millis,
                tts_record.credits
            ),
            ("speech", 1_234, 0, 1_234),
            "{name}"
        );
        let stt_record = store.usage_record(&stt).await.unwrap().unwrap();
        assert_eq!(
            (
                stt_record.operation.as_str(),
                stt_record.characters,
                stt_record.audio_millis,
                stt_record.credits
            ),
            ("transcription", 0, 61_500, 6_150),
            "{name}"
        );
        let chat_record = store.usage_record(&chat).await.unwrap().unwrap();
        assert_eq!(
            (
                chat_record.input_tokens,
                chat_record.characters,
                chat_record.audio_millis
            ),
            (3, 0, 0),
            "{name}"
        );
        assert_eq!(store.usage_count(&user).await.unwrap(), 3, "{name}");

        let report = |from: i64, to: i64, group_by: &str| {
            let billing = billing.clone();
            let request = pb::GetUsageRequest {
                user_id: user.clone(),
                from_millis: from,
                to_millis: to,
                group_by: group_by.into(),
            };
            async move {
                billing
                    .get_usage(Request::new(request))
                    .await
                    .unwrap()
                    .into_inner()
                    .rows
                    .into_iter()
                    .map(|r| {
                        let u = r.usage.unwrap();
                        (
                            r.group,
                            r.requests,
                            u.input_tokens,
                            u.characters,
                            u.audio_millis,
                            r.credits,
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let day = 86_400_000i64;
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let whole = (now - now.rem_euclid(day) - day, now - now.rem_euclid(day) + 2 * day);
        // Whole days read the daily rollups, other ranges the raw records: both agree.
        for (from, source) in [(whole.0, "rollups"), (whole.0 + 1, "records")] {
            assert_eq!(
                report(from, whole.1, "model").await,
                vec![
                    ("m".to_owned(), 1, 3, 0, 0, "3.00".to_owned()),
                    ("voice".to_owned(), 2, 0, 1_234, 61_500, "73.84".to_owned()),
                ],
                "{name}: {source}"
            );
            let by_day = report(from, whole.1, "day").await;
            assert_eq!(by_day.len(), 1, "{name}: {source}");
            assert_eq!(
                (by_day[0].1, by_day[0].2, by_day[0].3, by_day[0].4, by_day[0].5.as_str()),
                (3, 3, 1_234, 61_500, "76.84"),
                "{name}: {source}"
            );
        }
        assert_eq!(
            store.balance(&user).await.unwrap(),
            100_000 - 1_234 - 6_150 - 300,
            "{name}"
        );
        assert_eq!(
            store.ledger_sum(&user).await.unwrap(),
            store.balance(&user).await.unwrap(),
            "{name}"
        );
    }
}

/// The counters' scripts and the expiry sweep through Redis Sentinel and on a
/// three-primary Redis Cluster (both started by the test from the local
/// `redis-server`): keys carry hash tags, so each script's keys share a slot,
/// and the sweep scans every primary.
#[tokio::test]
async fn counters_work_through_sentinel_and_on_a_cluster() {
    let sentinel = oneflow_test_support::sentinel("oneflow-primary").await;
    let cluster = oneflow_test_support::redis_cluster().await;
    let mut setups = Vec::new();
    if let Some(s) = &sentinel {
        setups.push(("sentinel", s.url.clone(), oneflow_runtime::RedisMode::Sentinel));
    }
    if let Some(c) = &cluster {
        setups.push(("cluster", c.url.clone(), oneflow_runtime::RedisMode::Cluster));
    }
    for (name, url, mode) in setups {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = BillingConfig {
            pricing: pricing(),
            reservation_ttl: std::time::Duration::from_millis(200),
            ..BillingConfig::default()
        };
        cfg.database.url = Secret::new(format!("sqlite://{}", dir.path().join("c.db").display()));
        cfg.redis.url = Secret::new(url);
        cfg.redis.mode = mode;
        cfg.redis.master_name = "oneflow-primary".into();
        cfg.redis.key_prefix = oneflow_test_support::unique_prefix();
        let billing = oneflow_billing::grpc(&cfg).await.unwrap();
        // Several users, so a Cluster spreads their keys over its primaries.
        for u in 0..6 {
            let user = format!("{name}-user-{u}-{}", uuid::Uuid::new_v4().simple());
            billing
                .grant(&user, 1000, EntryKind::Grant, &format!("g:{user}"), None, None)
                .await
                .unwrap();
            let tasks: Vec<_> = (0..30)
                .map(|i| {
                    let billing = billing.clone();
                    let user = user.clone();
                    let id = format!("{user}-{i}");
                    tokio::spawn(async move { (billing.authorize(authorize(&user, &id, 1)).await.is_ok(), id) })
                })
                .collect();
            let mut granted = Vec::new();
            for t in tasks {
                let (ok, id) = t.await.unwrap();
                if ok {
                    granted.push(id);
                }
            }
            assert_eq!(granted.len(), 10, "{name}: the balance covers 10");
            let first = billing
                .settle(settle(&user, &granted[0], 1))
                .await
                .unwrap()
                .into_inner();
            assert!(!first.duplicate, "{name}");
            let again = billing
                .settle(settle(&user, &granted[0], 1))
                .await
                .unwrap()
                .into_inner();
            assert!(again.duplicate, "{name}");
        }
        // The 9 unsettled reservations of each user expire into charges.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            billing.sweep_expired().await,
            6 * 9,
            "{name}: the sweep found every expired reservation"
        );
    }
}
