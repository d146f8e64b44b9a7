//! Distributed tracing end to end: the four services run as separate
//! processes exporting OTLP to a collector this test runs, and the spans of
//! one request (sent with a W3C `traceparent`) must arrive from the gateway,
//! auth, billing and router, all in the caller's trace.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::Value;

use crate::client::{Api, chat};
use crate::distributed::{BILLING_TOML, ROUTER_TOML};

/// Service name -> trace ids seen.
type Seen = Arc<Mutex<HashMap<String, BTreeSet<String>>>>;

struct Collector(Seen);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(AnyValue::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| s.spans.iter()) {
                let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                seen.entry(service.clone()).or_default().insert(id);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test]
async fn one_request_is_one_trace_across_the_four_services() {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(Collector(seen.clone())))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let dir = tempfile::tempdir().unwrap();
    let listen = ["--listen", "127.0.0.1:0"];
    let telemetry = [
        ("ONEFLOW__TELEMETRY__OTLP_ENDPOINT", otlp.as_str()),
        ("ONEFLOW__TELEMETRY__SAMPLE_RATIO", "1.0"),
    ];
    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        telemetry
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .chain(extra.iter().cloned())
            .collect()
    };
    fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        v.iter().map(|(k, s)| (*k, s.as_str())).collect()
    }

    let mock = oneflow_test_support::spawn("oneflow-mock-provider", &listen, &[]).await;
    let auth_env = with(&[
        (
            "ONEFLOW__DATABASE__URL",
            format!("sqlite://{}", dir.path().join("auth.db").display()),
        ),
        (
            "ONEFLOW__JWT__SECRET",
            "trace-test-signing-secret-of-32-bytes+".to_owned(),
        ),
    ]);
    let admin: Value = serde_json::from_str(
        &oneflow_test_support::run("oneflow-auth", &["bootstrap-admin"], &as_refs(&auth_env)).await,
    )
    .unwrap();
    let key = admin["api_key"].as_str().unwrap().to_owned();
    let user = admin["user_id"].as_str().unwrap().to_owned();
    let billing_file = dir.path().join("billing.toml");
    std::fs::write(&billing_file, BILLING_TOML).unwrap();
    let billing_cfg = billing_file.to_str().unwrap();
    let billing_env = with(&[(
        "ONEFLOW__DATABASE__URL",
        format!("sqlite://{}", dir.path().join("billing.db").display()),
    )]);
    oneflow_test_support::run(
        "oneflow-billing",
        &["--config", billing_cfg, "grant", "--user", &user, "--amount", "10"],
        &as_refs(&billing_env),
    )
    .await;
    let router_file = dir.path().join("router.toml");
    std::fs::write(&router_file, ROUTER_TOML.replace("MOCK_URL", &mock.url())).unwrap();

    let auth = oneflow_test_support::spawn("oneflow-auth", &listen, &as_refs(&auth_env)).await;
    let billing = oneflow_test_support::spawn(
        "oneflow-billing",
        &["--config", billing_cfg, "--listen", "127.0.0.1:0"],
        &as_refs(&billing_env),
    )
    .await;
    let router_env = with(&[]);
    let router = oneflow_test_support::spawn(
        "oneflow-router",
        &["--config", router_file.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &as_refs(&router_env),
    )
    .await;
    let gateway_env = with(&[
        ("ONEFLOW__AUTH__URL", auth.url()),
        ("ONEFLOW__BILLING__URL", billing.url()),
        ("ONEFLOW__ROUTER__URL", router.url()),
    ]);
    let gateway = oneflow_test_support::spawn("oneflow-gateway", &listen, &as_refs(&gateway_env)).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let api = Api::new(gateway.url(), key.clone());
    let resp = api
        .http
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&chat("mock-gpt", "trace this request"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let services = ["oneflow-gateway", "oneflow-auth", "oneflow-billing", "oneflow-router"];
    let mut missing = Vec::new();
    // Batches are exported every few seconds.
    for _ in 0..150 {
        missing = {
            let s = seen.lock().unwrap();
            services
                .iter()
                .filter(|svc| !s.get(**svc).is_some_and(|ids| ids.contains(trace_id)))
                .map(|svc| (*svc).to_owned())
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        missing.is_empty(),
        "no span in the caller's trace from {missing:?}; seen: {:?}",
        seen.lock().unwrap()
    );
}
