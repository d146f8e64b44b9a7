//! Every internal service speaks the standard gRPC health checking protocol and
//! answers reflection with its own service, on the same port as its gRPC API.
use tokio_stream::StreamExt as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn internal_services_answer_health_checks_and_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let (auth_db, billing_db) = (sqlite("auth.db"), sqlite("billing.db"));
    let listen = ["--listen", "127.0.0.1:0"];
    let auth =
        oneflow_test_support::spawn("oneflow-auth", &listen, &[("ONEFLOW__DATABASE__URL", auth_db.as_str())]).await;
    let billing = oneflow_test_support::spawn(
        "oneflow-billing",
        &listen,
        &[("ONEFLOW__DATABASE__URL", billing_db.as_str())],
    )
    .await;
    let router = oneflow_test_support::spawn("oneflow-router", &listen, &[]).await;
    for (svc, name) in [
        (&auth, "oneflow.auth.v1.AuthService"),
        (&billing, "oneflow.billing.v1.BillingService"),
        (&router, "oneflow.router.v1.RouterService"),
    ] {
        let channel = tonic::transport::Endpoint::from_shared(svc.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel.clone());
        for service in ["", name] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(status, ServingStatus::Serving as i32, "{name} health for {service:?}");
        }
        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("no service list from {name}");
        };
        assert!(
            list.service.iter().any(|s| s.name == name),
            "{name} not listed: {:?}",
            list.service
        );
        // The same port serves plain HTTP probes.
        assert_eq!(
            reqwest::get(format!("{}/readyz", svc.url())).await.unwrap().status(),
            200
        );
    }
}
