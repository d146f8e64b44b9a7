//! Sentry reporting, end to end through Sentry's own client: with a DSN set,
//! an ERROR log line reaches the DSN's host as an envelope carrying the
//! message, the service's release and the INFO line before it as a
//! breadcrumb. The "Sentry server" is a plain socket that records what it
//! receives. (Its own test binary: telemetry installs a global subscriber.)
#![allow(clippy::unwrap_used, reason = "test code: failing loudly is the point")]
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// Accepts HTTP requests, answers 200, sends (path, body) to the channel.
fn fake_sentry() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}")
                .unwrap();
            let _ = tx.send((path, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    (format!("http://public-key@127.0.0.1:{port}/42"), rx)
}

#[test]
fn error_logs_reach_sentry_when_a_dsn_is_set() {
    let (dsn, received) = fake_sentry();
    let config = oneflow_telemetry::TelemetryConfig {
        sentry_dsn: Some(dsn),
        sentry_environment: Some("test".to_owned()),
        log_format: oneflow_telemetry::LogFormat::Json,
        ..oneflow_telemetry::TelemetryConfig::default()
    };
    let guard = oneflow_telemetry::init(&config, "oneflow-test").unwrap();
    tracing::info!("settling the ledger");
    tracing::error!(deployment = "openai/gpt-4o", "the upstream failed twice");
    tracing::debug!("not sent");
    guard.shutdown();

    let (path, body) = received
        .recv_timeout(Duration::from_secs(10))
        .expect("nothing reached Sentry");
    assert_eq!(path, "/api/42/envelope/");
    assert!(body.contains("the upstream failed twice"), "{body}");
    assert!(body.contains("oneflow-test@"), "release: {body}");
    assert!(body.contains("\"environment\":\"test\""), "{body}");
    assert!(body.contains("settling the ledger"), "breadcrumb: {body}");
    assert!(!body.contains("not sent"), "{body}");
    // Only the one error became an event.
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn the_dsn_is_redacted_in_printed_configuration() {
    let config = oneflow_telemetry::TelemetryConfig {
        sentry_dsn: Some("https://secret-key@o1.ingest.sentry.io/7".to_owned()),
        ..oneflow_telemetry::TelemetryConfig::default()
    };
    let printed = serde_json::to_string(&config).unwrap();
    assert!(!printed.contains("secret-key"), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");
}
