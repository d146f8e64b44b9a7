//! Property tests of the money invariants on a real store (SQLite + memory
//! counters): whatever mix of grants, reservations, settlements (none, once
//! or twice) and usage below the worst case happens, the ledger charges
//! exactly the priced usage of each settled request once, and no balance
//! ever goes below its floor of zero.
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
use proptest::prelude::*;
use rust_decimal::Decimal;
use tonic::Request;

/// Input tokens cost 0.3725 credits each and output tokens 1.135: charges
/// fall between hundredths, so the rule "round each charge up, once" is exercised.
fn pricing() -> PricingConfig {
    PricingConfig {
        credits_per_usd: Decimal::from(100),
        models: vec![ModelPrice {
            model: "m".into(),
            input_per_million: Decimal::from(3_725),
            output_per_million: Decimal::from(11_350),
            cached_input_per_million: None,
            ..ModelPrice::default()
        }],
    }
}

/// The documented charge rule, computed independently: the exact price in
/// hundredths of a credit, rounded up once.
fn expected_charge(input: u64, output: u64) -> i64 {
    // ten-thousandths of a credit, to stay integral: 37.25 and 113.5 hundredths a token
    let exact = input * 3725 + output * 11350;
    i64::try_from(exact.div_ceil(100)).unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Grant(u16),
    Request {
        worst_in: u8,
        worst_out: u8,
        used_percent: u8,
        settles: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u16..3000).prop_map(Op::Grant),
        4 => (1u8..40, 0u8..40, 0u8..=100, 0u8..3).prop_map(|(worst_in, worst_out, used_percent, settles)| Op::Request {
            worst_in,
            worst_out,
            used_percent,
            settles,
        }),
    ]
}

fn hundredths(s: &str) -> i64 {
    let d: Decimal = s.parse().unwrap();
    (d * Decimal::from(100)).try_into().unwrap()
}

async fn balance(billing: &BillingGrpc, user: &str) -> i64 {
    let b = billing
        .get_balance(Request::new(pb::GetBalanceRequest { user_id: user.into() }))
        .await
        .unwrap()
        .into_inner();
    hundredths(&b.balance)
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = BillingConfig {
        pricing: pricing(),
        ..BillingConfig::default()
    };
    cfg.database.url = Secret::new(format!("sqlite://{}", dir.path().join("p.db").display()));
    let billing = oneflow_billing::grpc(&cfg).await.unwrap();
    let user = "u";
    let (mut granted, mut charged) = (0i64, 0i64);
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Grant(amount) => {
                billing
                    .grant(user, i64::from(amount), EntryKind::Grant, &format!("g{i}"), None, None)
                    .await
                    .unwrap();
                granted += i64::from(amount);
            }
            Op::Request {
                worst_in,
                worst_out,
                used_percent,
                settles,
            } => {
                let id = format!("r{i}");
                let usage = |input: u64, output: u64| Usage {
                    input_tokens: input,
                    output_tokens: output,
                    ..Usage::default()
                };
                let authorized = billing
                    .authorize(Request::new(pb::AuthorizeRequest {
                        request_id: id.clone(),
                        user_id: user.into(),
                        model: "m".into(),
                        operation: Operation::Chat.into(),
                        worst_case: Some(usage(u64::from(worst_in), u64::from(worst_out))),
                        ..pb::AuthorizeRequest::default()
                    }))
                    .await;
                if let Err(status) = authorized {
                    prop_assert_eq!(status.code(), tonic::Code::FailedPrecondition);
                    continue;
                }
                let used_in = u64::from(worst_in) * u64::from(used_percent) / 100;
                let used_out = u64::from(worst_out) * u64::from(used_percent) / 100;
                for n in 0..settles {
                    let answer = billing
                        .settle(Request::new(pb::SettleRequest {
                            request_id: id.clone(),
                            reservation_id: id.clone(),
                            user_id: user.into(),
                            model: "m".into(),
                            operation: Operation::Chat.into(),
                            usage: Some(usage(used_in, used_out)),
                            status: 200,
                            ..pb::SettleRequest::default()
                        }))
                        .await
                        .unwrap()
                        .into_inner();
                    prop_assert_eq!(answer.duplicate, n > 0);
                }
                if settles > 0 {
                    charged += expected_charge(used_in, used_out);
                }
            }
        }
        let balance = balance(&billing, user).await;
        prop_assert!(balance >= 0, "balance {balance} below its floor");
    }
    let balance = balance(&billing, user).await;
    prop_assert_eq!(
        balance,
        granted - charged,
        "the ledger charged something else than the priced usage"
    );
    let usage = billing
        .get_usage(Request::new(pb::GetUsageRequest {
            user_id: user.into(),
            from_millis: 0,
            to_millis: i64::MAX / 2,
            group_by: "model".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let reported: i64 = usage.rows.iter().map(|r| hundredths(&r.credits)).sum();
    prop_assert_eq!(reported, charged);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_ledger_charges_exactly_the_priced_usage_and_never_overdraws(ops in proptest::collection::vec(op(), 1..25)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
