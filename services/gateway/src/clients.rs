//! Typed gRPC clients of the three internal services, sharing lazily
//! connecting HTTP/2 channels that carry the caller's trace context.
use std::time::Duration;

use oneflow_proto::auth::v1::auth_service_client::AuthServiceClient;
use oneflow_proto::billing::v1::billing_service_client::BillingServiceClient;
use oneflow_proto::router::v1::router_service_client::RouterServiceClient;
use oneflow_runtime::TracedChannel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::GatewayConfig;

/// The gateway's connections to auth, billing and router.
#[derive(Clone, Debug)]
pub struct Clients {
    /// Auth.
    pub auth: AuthServiceClient<TracedChannel>,
    /// Billing.
    pub billing: BillingServiceClient<TracedChannel>,
    /// Router.
    pub router: RouterServiceClient<TracedChannel>,
    auth_timeout: Duration,
    billing_timeout: Duration,
    router_timeout: Duration,
    health: [(&'static str, HealthClient<TracedChannel>); 3],
}

impl Clients {
    /// Channels to the configured addresses (connected on first use).
    pub fn connect(config: &GatewayConfig) -> anyhow::Result<Self> {
        let auth = oneflow_runtime::lazy_channel(&config.auth)?;
        let billing = oneflow_runtime::lazy_channel(&config.billing)?;
        let router = oneflow_runtime::lazy_channel(&config.router)?;
        Ok(Self {
            health: [
                ("auth", HealthClient::new(auth.clone())),
                ("billing", HealthClient::new(billing.clone())),
                ("router", HealthClient::new(router.clone())),
            ],
            auth: AuthServiceClient::new(auth),
            billing: BillingServiceClient::new(billing),
            // Large answers (verbose transcripts, big embedding batches) exceed
            // tonic's 4 MiB default.
            router: RouterServiceClient::new(router).max_decoding_message_size(32 * 1024 * 1024),
            auth_timeout: config.auth.timeout,
            billing_timeout: config.billing.timeout,
            router_timeout: config.router.timeout,
        })
    }

    /// Readiness: each internal service answers the gRPC health check.
    pub async fn ready(&self) -> Result<(), String> {
        for (name, client) in &self.health {
            let mut client = client.clone();
            let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
            req.set_timeout(Duration::from_secs(2));
            client.check(req).await.map_err(|e| format!("{name}: {}", e.code()))?;
        }
        Ok(())
    }

    fn with_deadline<T>(message: T, deadline: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        req.set_timeout(deadline);
        req
    }

    /// A request to auth with its configured deadline.
    pub fn auth_request<T>(&self, message: T) -> tonic::Request<T> {
        Self::with_deadline(message, self.auth_timeout)
    }

    /// A request to billing with its configured deadline.
    pub fn billing_request<T>(&self, message: T) -> tonic::Request<T> {
        Self::with_deadline(message, self.billing_timeout)
    }

    /// A unary request to the router with its configured deadline (streams
    /// run on the router's own first-token and total deadlines instead).
    pub fn router_request<T>(&self, message: T) -> tonic::Request<T> {
        Self::with_deadline(message, self.router_timeout)
    }
}
