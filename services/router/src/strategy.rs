//! Routing strategies: each orders a model's deployments for one request. The
//! first is the choice, the others its fallbacks; the dispatcher then skips open
//! breakers and full deployments, so a strategy never has to.
use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;

use rand::Rng;

use sha2::{Digest as _, Sha256};

use crate::catalog::{Deployment, Model, Variant};
use crate::config::Strategy;

fn in_flight(d: &Deployment) -> u64 {
    d.stats.in_flight.load(AtomicOrdering::Relaxed)
}

fn latency(d: &Deployment) -> f64 {
    d.stats.snapshot().0
}

fn by_f64(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The variant of `model`'s experiment that `subject` (a user, or a key when
/// there is no user) belongs to: a hash of the model and the subject picks a
/// point in the total weight, so the same subject always lands in the same arm
/// on every replica, and arms receive users in proportion to their weights.
pub fn variant<'m>(model: &'m Model, subject: &str) -> Option<&'m Variant> {
    let total: u64 = model.variants.iter().map(|v| u64::from(v.weight)).sum();
    if total == 0 {
        return None;
    }
    let digest = Sha256::new()
        .chain_update(model.name.as_bytes())
        .chain_update([0u8])
        .chain_update(subject.as_bytes())
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let mut point = u64::from_be_bytes(head) % total;
    model.variants.iter().find(|v| {
        let w = u64::from(v.weight);
        if point < w {
            true
        } else {
            point -= w;
            false
        }
    })
}

/// The deployments to try for one request, in order, and the experiment arm
/// they come from: the arm's deployments first (when the model runs an
/// experiment), then the model's own deployments as fallbacks, each group
/// ordered by the model's strategy.
pub fn plan<'m>(model: &'m Model, subject: &str, rng: &mut impl Rng) -> (Option<&'m Variant>, Vec<Arc<Deployment>>) {
    let arm = variant(model, subject);
    let mut chain = match arm {
        Some(v) => order(model.strategy, v.deployments.clone(), model.max_cost, rng),
        None => Vec::new(),
    };
    for d in order(model.strategy, model.deployments.clone(), model.max_cost, rng) {
        if !chain.iter().any(|c| Arc::ptr_eq(c, &d)) {
            chain.push(d);
        }
    }
    (arm, chain)
}

/// `deployments` in the order `strategy` wants them tried.
pub fn order(
    strategy: Strategy,
    mut chain: Vec<Arc<Deployment>>,
    max_cost: Option<f64>,
    rng: &mut impl Rng,
) -> Vec<Arc<Deployment>> {
    match strategy {
        Strategy::Ordered => {}
        Strategy::Weighted => {
            let total: u64 = chain.iter().map(|d| u64::from(d.weight)).sum();
            if total > 0 {
                let mut pick = rng.random_range(0..total);
                if let Some(i) = chain.iter().position(|d| {
                    let w = u64::from(d.weight);
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                }) {
                    let chosen = chain.remove(i);
                    chain.insert(0, chosen);
                }
            }
        }
        // Stable sorts: ties keep the configured order.
        Strategy::LeastInFlight => chain.sort_by_key(|d| in_flight(d)),
        Strategy::Latency => {
            chain.sort_by(|a, b| latency(a).total_cmp(&latency(b)));
            if chain.len() > 2 {
                // Power of two choices: the better of two random deployments
                // leads, so one fast deployment is not flooded.
                let i = rng.random_range(0..chain.len());
                let mut j = rng.random_range(0..chain.len() - 1);
                if j >= i {
                    j += 1;
                }
                let best = if latency(&chain[i]) <= latency(&chain[j]) { i } else { j };
                let chosen = chain.remove(best);
                chain.insert(0, chosen);
            }
        }
        Strategy::Cost => chain.sort_by(|a, b| by_f64(a.cost, b.cost)),
        Strategy::Quality => {
            let within = |d: &Deployment| match (max_cost, d.cost) {
                (Some(cap), Some(cost)) => cost <= cap,
                (Some(_), None) => false,
                (None, _) => true,
            };
            let quality = |d: &Deployment| d.quality.unwrap_or(f64::NEG_INFINITY);
            chain.sort_by(|a, b| {
                within(b)
                    .cmp(&within(a))
                    .then_with(|| quality(b).total_cmp(&quality(a)))
            });
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::{Arc, AtomicOrdering, Deployment, Model};
    use crate::catalog::{DeploymentStats, Provider, Variant};
    use crate::config::Strategy as Pick;
    use crate::config::{ModelOperation, ProviderKind};
    use oneflow_resilience::{BreakerConfig, CircuitBreaker};
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn dep(name: &str, weight: u32, cost: Option<f64>, quality: Option<f64>) -> Arc<Deployment> {
        Arc::new(Deployment {
            name: name.into(),
            provider: Arc::new(Provider {
                name: "p".into(),
                kind: ProviderKind::OpenaiCompatible,
                base_url: String::new(),
                api_key: None,
                api_version: None,
                aws: None,
                google: None,
                voices: Arc::default(),
                default_language: "en-US".into(),
                recognition_model: None,
            }),
            upstream_model: "m".into(),
            breaker: Arc::new(CircuitBreaker::new(BreakerConfig::default())),
            stats: Arc::new(DeploymentStats::default()),
            requests_per_minute: 0,
            tokens_per_minute: 0,
            weight,
            cost,
            quality,
        })
    }

    fn model(strategy: Pick, deployments: Vec<Arc<Deployment>>, max_cost: Option<f64>) -> Model {
        Model {
            name: "m".into(),
            operation: ModelOperation::Chat,
            deployments,
            context_window: 0,
            max_output_tokens: 0,
            strategy,
            max_cost,
            variants: Vec::new(),
        }
    }

    fn order(m: &Model, rng: &mut impl rand::Rng) -> Vec<Arc<Deployment>> {
        super::order(m.strategy, m.deployments.clone(), m.max_cost, rng)
    }

    fn experiment(weights: &[u32]) -> Model {
        let shared = dep("shared", 1, None, None);
        let mut m = model(Pick::Ordered, vec![shared], None);
        m.variants = weights
            .iter()
            .enumerate()
            .map(|(i, w)| Variant {
                name: format!("v{i}"),
                weight: *w,
                deployments: vec![dep(&format!("d{i}"), 1, None, None)],
            })
            .collect();
        m
    }

    #[test]
    fn an_experiment_serves_the_arm_first_and_the_shared_deployments_after() {
        let m = experiment(&[1, 1]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (arm, chain) = super::plan(&m, "user-1", &mut rng);
        let arm = arm.unwrap();
        let expected_first = format!("d{}", &arm.name[1..]);
        assert_eq!(names(&chain), [expected_first.as_str(), "shared"]);
        // A model without an experiment has no arm.
        let plain = model(Pick::Ordered, vec![dep("a", 1, None, None)], None);
        let (arm, chain) = super::plan(&plain, "user-1", &mut rng);
        assert!(arm.is_none());
        assert_eq!(names(&chain), ["a"]);
    }

    #[test]
    fn a_zero_weight_arm_gets_nobody() {
        let m = experiment(&[0, 5]);
        for i in 0..200 {
            assert_eq!(super::variant(&m, &format!("u{i}")).unwrap().name, "v1");
        }
    }

    fn names(chain: &[Arc<Deployment>]) -> Vec<&str> {
        chain.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn cost_quality_and_least_in_flight_order_as_documented() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (a, b, c) = (
            dep("a", 1, Some(3.0), Some(0.9)),
            dep("b", 1, Some(1.0), Some(0.5)),
            dep("c", 1, None, Some(0.99)),
        );
        let m = model(Pick::Cost, vec![a.clone(), b.clone(), c.clone()], None);
        assert_eq!(names(&order(&m, &mut rng)), ["b", "a", "c"]);
        let m = model(Pick::Quality, vec![a.clone(), b.clone(), c.clone()], Some(2.0));
        // Within the 2.0 cap only b; then the rest by quality.
        assert_eq!(names(&order(&m, &mut rng)), ["b", "c", "a"]);
        a.stats.in_flight.store(5, AtomicOrdering::Relaxed);
        b.stats.in_flight.store(1, AtomicOrdering::Relaxed);
        let m = model(Pick::LeastInFlight, vec![a, b, c], None);
        assert_eq!(names(&order(&m, &mut rng)), ["c", "b", "a"]);
    }

    #[test]
    fn latency_prefers_the_faster_deployment() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (slow, fast) = (dep("slow", 1, None, None), dep("fast", 1, None, None));
        slow.stats.record(200.0, false);
        fast.stats.record(10.0, false);
        let m = model(Pick::Latency, vec![slow, fast], None);
        for _ in 0..20 {
            assert_eq!(names(&order(&m, &mut rng))[0], "fast");
        }
    }

    proptest! {
        #[test]
        fn assignment_is_sticky(subject in ".{0,40}", w1 in 1u32..10, w2 in 1u32..10) {
            let m = experiment(&[w1, w2]);
            let first = super::variant(&m, &subject).unwrap().name.clone();
            for _ in 0..5 {
                prop_assert_eq!(&super::variant(&m, &subject).unwrap().name, &first);
            }
        }

        #[test]
        fn arms_receive_users_in_proportion(w1 in 1u32..10, w2 in 1u32..10, salt in any::<u64>()) {
            let m = experiment(&[w1, w2]);
            let n = 4000;
            let in_first = (0..n).filter(|i| super::variant(&m, &format!("{salt}-{i}")).unwrap().name == "v0").count();
            let expected = f64::from(w1) / f64::from(w1 + w2);
            #[expect(clippy::cast_precision_loss, reason = "a share")]
            let share = in_first as f64 / f64::from(n);
            prop_assert!((share - expected).abs() < 0.05, "share {share} vs {expected}");
        }

        #[test]
        fn weights_converge_to_their_shares(w1 in 1u32..10, w2 in 1u32..10, seed in any::<u64>()) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let m = model(Pick::Weighted, vec![dep("x", w1, None, None), dep("y", w2, None, None)], None);
            let n = 4000;
            let firsts = (0..n).filter(|_| order(&m, &mut rng)[0].name == "x").count();
            let expected = f64::from(w1) / f64::from(w1 + w2);
            #[expect(clippy::cast_precision_loss, reason = "a share")]
            let share = firsts as f64 / f64::from(n);
            prop_assert!((share - expected).abs() < 0.05, "share {share} vs {expected}");
        }

        #[test]
        fn every_strategy_keeps_every_deployment_in_the_chain(kind in 0usize..6, seed in any::<u64>()) {
            let strategies = [Pick::Ordered, Pick::Weighted, Pick::LeastInFlight, Pick::Latency, Pick::Cost, Pick::Quality];
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let deps = vec![dep("a", 0, Some(1.0), None), dep("b", 2, None, Some(1.0)), dep("c", 1, Some(0.5), Some(0.2))];
            let m = model(strategies[kind], deps, Some(0.8));
            let mut got = names(&order(&m, &mut rng)).into_iter().map(str::to_owned).collect::<Vec<_>>();
            got.sort();
            prop_assert_eq!(got, vec!["a", "b", "c"]);
        }
    }
}
