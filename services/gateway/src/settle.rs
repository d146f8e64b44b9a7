//! Settlement after the upstream call, off the response's critical path but
//! never lost: every settlement runs on a tracked task that shutdown waits
//! for, retried on transient failures; billing makes repeats harmless
//! (idempotent per request id). A reservation whose settlement still fails
//! expires into a charge on the billing side.
use std::time::{Duration, Instant};

use oneflow_proto::billing::v1 as pb;
use oneflow_proto::billing::v1::billing_service_client::BillingServiceClient;
use oneflow_proto::common::v1::{Operation, Usage};
use oneflow_resilience::{RetryPolicy, Retryable};
use oneflow_runtime::TracedChannel;
use tokio_util::task::TaskTracker;

use crate::principal::Principal;

struct Transient(tonic::Status);

impl Retryable for Transient {
    fn is_retryable(&self) -> bool {
        matches!(
            self.0.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
        )
    }
}

/// What a finished request used; handed to [`Settler::settle`].
#[derive(Debug, Clone)]
pub struct Settlement {
    /// Request id (the idempotency key).
    pub request_id: String,
    /// User id.
    pub user_id: String,
    /// Key id.
    pub key_id: String,
    /// Public model.
    pub model: String,
    /// Provider that served it.
    pub provider: String,
    /// Deployment that served it.
    pub deployment: String,
    /// Operation.
    pub operation: Operation,
    /// Usage.
    pub usage: Usage,
    /// When the request started.
    pub started: Instant,
    /// Status the client got.
    pub status: u16,
}

impl Settlement {
    /// A settlement for `principal`'s request with no usage yet.
    pub fn new(request_id: &str, principal: &Principal, model: &str, operation: Operation) -> Self {
        Self {
            request_id: request_id.to_owned(),
            user_id: principal.user_id.clone(),
            key_id: principal.key_id.clone(),
            model: model.to_owned(),
            provider: String::new(),
            deployment: String::new(),
            operation,
            usage: Usage::default(),
            started: Instant::now(),
            status: 200,
        }
    }
}

/// Runs settlements on tracked background tasks.
#[derive(Debug, Clone)]
pub struct Settler {
    billing: BillingServiceClient<TracedChannel>,
    tracker: TaskTracker,
    policy: RetryPolicy,
}

impl Settler {
    /// A settler over the billing client.
    pub fn new(billing: BillingServiceClient<TracedChannel>) -> Self {
        let policy = RetryPolicy {
            max_retries: 5,
            max_elapsed: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        Self {
            billing,
            tracker: TaskTracker::new(),
            policy,
        }
    }

    /// Settles in the background.
    pub fn settle(&self, s: Settlement) {
        let billing = self.billing.clone();
        let policy = self.policy.clone();
        self.tracker.spawn(async move {
            let request = pb::SettleRequest {
                request_id: s.request_id.clone(),
                reservation_id: s.request_id.clone(),
                user_id: s.user_id,
                key_id: s.key_id,
                model: s.model,
                provider: s.provider,
                deployment: s.deployment,
                operation: s.operation.into(),
                usage: Some(s.usage),
                latency_millis: u64::try_from(s.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                status: u32::from(s.status),
            };
            let result = oneflow_resilience::retry(&policy, |_| {
                let mut billing = billing.clone();
                let mut req = tonic::Request::new(request.clone());
                req.set_timeout(Duration::from_secs(10));
                async move { billing.settle(req).await.map_err(Transient) }
            })
            .await;
            if let Err(Transient(status)) = result {
                metrics::counter!("oneflow_gateway_settle_failures_total").increment(1);
                tracing::error!(request_id = %s.request_id, code = ?status.code(), "settlement failed; the reservation will expire into a charge");
            }
        });
    }

    /// Waits (at most `bound`) for every pending settlement.
    pub async fn drain(&self, bound: Duration) {
        self.tracker.close();
        if tokio::time::timeout(bound, self.tracker.wait()).await.is_err() {
            tracing::warn!(pending = self.tracker.len(), "settlements still pending at shutdown");
        }
    }
}
