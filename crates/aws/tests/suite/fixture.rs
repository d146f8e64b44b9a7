//! Loading fixture files and building event-stream transcripts from them.

use std::path::PathBuf;

use oneflow_aws::eventstream::{HeaderValue, Message};
use serde_json::Value;

pub fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

pub fn bytes(relative: &str) -> Vec<u8> {
    std::fs::read(path(relative)).unwrap_or_else(|e| panic!("fixture {relative}: {e}"))
}

pub fn json(relative: &str) -> Value {
    serde_json::from_slice(&bytes(relative)).unwrap_or_else(|e| panic!("fixture {relative}: {e}"))
}

/// An event message as ConverseStream sends it.
pub fn event(event_type: &str, payload: &Value) -> Vec<u8> {
    Message::new(
        vec![
            (":event-type".into(), HeaderValue::from(event_type)),
            (":content-type".into(), HeaderValue::from("application/json")),
            (":message-type".into(), HeaderValue::from("event")),
        ],
        serde_json::to_vec(payload).unwrap(),
    )
    .encode()
    .unwrap()
}

/// An exception message as ConverseStream sends it.
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    Message::new(
        vec![
            (":exception-type".into(), HeaderValue::from(exception_type)),
            (":content-type".into(), HeaderValue::from("application/json")),
            (":message-type".into(), HeaderValue::from("exception")),
        ],
        serde_json::to_vec(&serde_json::json!({ "message": message })).unwrap(),
    )
    .encode()
    .unwrap()
}

/// The frames of a stream fixture (`[{event, payload}]`), one `Vec` per event.
pub fn stream_frames(relative: &str) -> Vec<Vec<u8>> {
    json(relative)
        .as_array()
        .expect("stream fixture is an array")
        .iter()
        .map(|e| event(e["event"].as_str().unwrap(), &e["payload"]))
        .collect()
}
