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
    /// The client's X-Request-Id.
    pub client_request_id: String,
    /// Safe-to-log key prefix.
    pub key_prefix: String,
}

impl Settlement {
    /// Records the client's X-Request-Id.
    #[must_use]
    pub fn with_client_request_id(mut self, id: String) -> Self {
        self.client_request_id = id;
        self
    }

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
            client_request_id: String::new(),
            key_prefix: principal.key_prefix.clone(),
        }
    }
}

/// A reserved request that has not been settled yet. Settles when finished
/// or, whatever ends the request early (client hang-up, timeout, a broken
/// stream), when dropped: then it charges the streamed output and an input
/// estimate, so usage is never given away and never charged twice.
#[derive(Debug)]
pub struct Pending {
    settler: Settler,
    settlement: Option<Settlement>,
    input_estimate: u64,
    /// Output chunks relayed to the client so far.
    pub chunks: u64,
    /// The usage is known exactly even if it is zero (a free cache hit).
    exact: bool,
}

impl Pending {
    /// Tracks `settlement`; `input_estimate` is charged if no usage arrives.
    pub fn new(settler: &Settler, settlement: Settlement, input_estimate: u64) -> Self {
        Self {
            settler: settler.clone(),
            settlement: Some(settlement),
            input_estimate,
            chunks: 0,
            exact: false,
        }
    }

    /// Records usage that is exact even when zero: a cache hit billed by the
    /// router's hit policy, which must not be replaced by an estimate.
    pub fn exact_usage(&mut self, usage: Usage) {
        self.usage(usage);
        self.exact = true;
    }

    /// Records the route that served the request.
    pub fn route(&mut self, provider: &str, deployment: &str) {
        if let Some(s) = self.settlement.as_mut() {
            s.provider = provider.to_owned();
            s.deployment = deployment.to_owned();
        }
    }

    /// Records the usage the provider reported.
    pub fn usage(&mut self, usage: Usage) {
        if let Some(s) = self.settlement.as_mut() {
            s.usage = usage;
        }
    }

    /// Records the status the client gets.
    pub fn status(&mut self, status: u16) {
        if let Some(s) = self.settlement.as_mut() {
            s.status = status;
        }
    }

    /// Settles now.
    pub fn finish(mut self) {
        self.settle();
    }

    fn settle(&mut self) {
        if let Some(mut s) = self.settlement.take() {
            if !self.exact && s.usage == Usage::default() && (self.chunks > 0 || s.status == 200) {
                // Ended without the provider's count: charge what was seen.
                s.usage = Usage {
                    input_tokens: self.input_estimate,
                    output_tokens: self.chunks,
                    ..Usage::default()
                };
                if s.status == 200 {
                    s.status = 499;
                }
            }
            self.settler.settle(s);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.settle();
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
        // One line per billed request: who, what, where, how much (no secrets).
        tracing::info!(
            request_id = %s.client_request_id,
            billing_id = %s.request_id,
            user_id = %s.user_id,
            key = %s.key_prefix,
            model = %s.model,
            provider = %s.provider,
            deployment = %s.deployment,
            input_tokens = s.usage.input_tokens,
            output_tokens = s.usage.output_tokens,
            status = s.status,
            latency_ms = u64::try_from(s.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "model call"
        );
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
                client_request_id: s.client_request_id.clone(),
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
