//! OpenAI embeddings ↔ Gemini `batchEmbedContents`.
//!
//! One OpenAI call may embed many strings; Gemini's batch call takes one
//! `EmbedContentRequest` per string and answers the vectors in the same
//! order. Gemini embeds text only, so OpenAI's token-array inputs are refused.

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{headers, model_resource, url};
use crate::{AdapterError, EmbeddingFormat, Prepared, Target, Usage};

fn invalid(msg: &str) -> AdapterError {
    AdapterError::Invalid(msg.to_owned())
}

pub(crate) fn embeddings_request(target: &Target<'_>, body: &[u8]) -> Result<Prepared, AdapterError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AdapterError::Invalid(format!("body: not valid JSON ({e})")))?;
    let inputs: Vec<&str> = match v.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if items.is_empty() => return Err(invalid("input: must not be empty")),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.as_str()),
                Value::Number(_) | Value::Array(_) => {
                    Err(invalid("input: token arrays are not supported by Gemini; send text"))
                }
                _ => Err(invalid("input: expected a string or an array of strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("input: expected a string or an array of strings")),
        None => return Err(invalid("input: required")),
    };
    let dimensions = match v.get("dimensions").filter(|d| !d.is_null()) {
        Some(d) => Some(
            d.as_u64()
                .filter(|&d| d > 0)
                .ok_or_else(|| invalid("dimensions: expected a positive integer"))?,
        ),
        None => None,
    };
    let model = model_resource(target.upstream_model);
    let requests: Vec<Value> = inputs
        .iter()
        .map(|text| {
            let mut r = json!({"model": model, "content": {"parts": [{"text": text}]}});
            if let Some(d) = dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(Prepared {
        url: url(target, "batchEmbedContents"),
        headers: headers(target)?,
        body: Bytes::from(json!({"requests": requests}).to_string()),
    })
}

fn base64_f32(values: &[Value]) -> String {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        // Embeddings are f32 on the wire in OpenAI's base64 encoding.
        #[expect(clippy::cast_possible_truncation, reason = "narrowing to f32 is the encoding")]
        let x = v.as_f64().unwrap_or(0.0) as f32;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn embeddings_response(
    target: &Target<'_>,
    body: &[u8],
    format: EmbeddingFormat,
) -> Result<(Bytes, Usage), AdapterError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AdapterError::Protocol(format!("Gemini's answer is not JSON ({e})")))?;
    let embeddings = v
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| AdapterError::Protocol("Gemini's answer has no `embeddings` array".to_owned()))?;
    let mut data = Vec::with_capacity(embeddings.len());
    for (i, e) in embeddings.iter().enumerate() {
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| AdapterError::Protocol(format!("Gemini embedding {i} has no `values`")))?;
        let embedding = match format {
            EmbeddingFormat::Float => Value::Array(values.clone()),
            EmbeddingFormat::Base64 => Value::String(base64_f32(values)),
        };
        data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
    }
    let prompt = v
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let usage = Usage {
        input_tokens: prompt,
        output_tokens: 0,
        cached_input_tokens: 0,
    };
    let out = json!({
        "object": "list",
        "data": data,
        "model": target.upstream_model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    });
    Ok((Bytes::from(out.to_string()), usage))
}
