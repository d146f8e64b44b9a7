//! Loading fixtures and running whole streams through a decoder.

use std::path::PathBuf;

use oneflow_providers::{AdapterError, Family, StreamDecoder, StreamItem, Target, Usage};
use serde_json::Value;

pub fn bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn json(name: &str) -> Value {
    serde_json::from_slice(&bytes(name)).unwrap()
}

pub fn target<'a>(base_url: &'a str, model: &'a str) -> Target<'a> {
    Target {
        base_url,
        upstream_model: model,
        api_key: Some("test-key-123"),
        api_version: None,
        default_max_tokens: 1024,
    }
}

pub const MODEL: &str = "upstream-model";
pub const ID: &str = "chatcmpl-local";
pub const CREATED: i64 = 1_700_000_000;

/// Feeds `transcript` cut at `cuts` (offsets, any order), then finishes.
pub fn decode(family: Family, transcript: &[u8], cuts: &[usize]) -> Result<Vec<StreamItem>, AdapterError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(transcript.len())).collect();
    cuts.sort_unstable();
    let mut decoder = StreamDecoder::new(family, MODEL, ID, CREATED);
    let mut items = Vec::new();
    let mut pos = 0;
    for c in cuts {
        items.extend(decoder.feed(&transcript[pos..c])?);
        pos = c;
    }
    items.extend(decoder.feed(&transcript[pos..])?);
    items.extend(decoder.finish()?);
    Ok(items)
}

/// What a client would rebuild from a stream of chunks.
#[derive(Debug, Default)]
pub struct Assembled {
    pub chunks: Vec<Value>,
    /// Content per choice index.
    pub text: std::collections::BTreeMap<u64, String>,
    /// (id, name, arguments) per tool-call index of choice 0.
    pub tool_calls: Vec<(String, String, String)>,
    pub thought_signatures: Vec<Option<String>>,
    pub finish: Vec<(u64, String)>,
    pub roles: Vec<u64>,
    pub usage: Vec<Usage>,
    pub errors: Vec<oneflow_providers::UpstreamError>,
}

pub fn assemble(items: &[StreamItem]) -> Assembled {
    let mut a = Assembled::default();
    for item in items {
        match item {
            StreamItem::Chunk(b) => {
                let v: Value = serde_json::from_slice(b).unwrap();
                for c in v["choices"].as_array().unwrap() {
                    let index = c["index"].as_u64().unwrap();
                    let delta = &c["delta"];
                    if delta.get("role").is_some() {
                        a.roles.push(index);
                    }
                    if let Some(t) = delta.get("content").and_then(Value::as_str) {
                        a.text.entry(index).or_default().push_str(t);
                    }
                    for tc in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                        let i = tc["index"].as_u64().unwrap() as usize;
                        if a.tool_calls.len() <= i {
                            a.tool_calls.resize(i + 1, Default::default());
                            a.thought_signatures.resize(i + 1, None);
                        }
                        if let Some(id) = tc.get("id").and_then(Value::as_str) {
                            a.tool_calls[i].0 = id.to_owned();
                        }
                        if let Some(name) = tc.pointer("/function/name").and_then(Value::as_str) {
                            a.tool_calls[i].1 = name.to_owned();
                        }
                        if let Some(args) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                            a.tool_calls[i].2.push_str(args);
                        }
                        if let Some(sig) = tc
                            .pointer("/extra_content/google/thought_signature")
                            .and_then(Value::as_str)
                        {
                            a.thought_signatures[i] = Some(sig.to_owned());
                        }
                    }
                    if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                        a.finish.push((index, f.to_owned()));
                    }
                }
                a.chunks.push(v);
            }
            StreamItem::Usage(u) => a.usage.push(*u),
            StreamItem::Error(e) => a.errors.push(e.clone()),
        }
    }
    a
}
