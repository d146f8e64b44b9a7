//! OpenAI chat request → Gemini `generateContent` request.
//!
//! Gemini has two roles (`user`, `model`), takes system text apart
//! (`systemInstruction`), carries tool calls and results as `functionCall` /
//! `functionResponse` parts matched by function name, and puts sampling and
//! JSON-mode settings in `generationConfig`.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{headers, url};
use crate::openai_request::{
    ChatRequest, Media, Part, PartKind, ResponseFormat, Tool, ToolChoice, Turn, mime_from_name,
};
use crate::{AdapterError, Prepared, Target};

const PROVIDER: &str = "Gemini";

pub(crate) fn chat_request(target: &Target<'_>, body: &[u8], stream: bool) -> Result<Prepared, AdapterError> {
    let req = ChatRequest::parse(body)?;
    req.refuse(
        PROVIDER,
        &[
            "logprobs",
            "top_logprobs",
            "audio",
            "prediction",
            "web_search_options",
            "functions",
            "function_call",
        ],
    )?;

    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents(&req.turns)?));
    let system: Vec<Value> = req.system.iter().filter_map(text_part).collect();
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let (tools, tool_config) = tools_and_config(&req);
    if !tools.is_empty() {
        out.insert("tools".into(), json!([{"functionDeclarations": tools}]));
        if let Some(config) = tool_config {
            out.insert("toolConfig".into(), json!({"functionCallingConfig": config}));
        }
    }
    let config = generation_config(&req);
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }

    let url = if stream {
        format!("{}?alt=sse", url(target, "streamGenerateContent"))
    } else {
        url(target, "generateContent")
    };
    Ok(Prepared {
        url,
        headers: headers(target)?,
        body: Bytes::from(Value::Object(out).to_string()),
    })
}

/// A text part, or nothing for empty text (Gemini refuses empty text parts).
fn text_part(part: &Part) -> Option<Value> {
    match &part.kind {
        PartKind::Text(t) if !t.is_empty() => Some(json!({"text": t})),
        _ => None,
    }
}

fn media_part(media: &Media, fallback_mime: &str) -> Value {
    match media {
        Media::Inline { mime, data } => json!({"inlineData": {"mimeType": mime, "data": data}}),
        Media::Url(url) => {
            json!({"fileData": {"mimeType": mime_from_name(url).unwrap_or(fallback_mime), "fileUri": url}})
        }
    }
}

fn user_part(part: &Part) -> Option<Value> {
    match &part.kind {
        PartKind::Text(_) => text_part(part),
        PartKind::Image(m) => Some(media_part(m, "image/jpeg")),
        PartKind::Audio(m) => Some(media_part(m, "audio/mp3")),
        PartKind::File(m) => Some(media_part(m, "application/pdf")),
    }
}

/// Tool results must be objects; anything else is wrapped as `{"result": …}`.
fn function_response(content: &str) -> Value {
    match serde_json::from_str::<Value>(content) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({"result": other}),
        Err(_) => json!({"result": content}),
    }
}

/// The name of the function an earlier assistant message called with `id`.
fn called_function<'a>(turns: &'a [Turn], id: &str) -> Option<&'a str> {
    turns.iter().rev().find_map(|t| match t {
        Turn::Assistant { tool_calls, .. } => tool_calls.iter().find(|c| c.id == id).map(|c| c.name.as_str()),
        Turn::User { .. } | Turn::Tool { .. } => None,
    })
}

fn contents(turns: &[Turn]) -> Result<Vec<Value>, AdapterError> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, parts: Vec<Value>| match out.last_mut() {
        Some((last, existing)) if *last == role => existing.extend(parts),
        _ => out.push((role, parts)),
    };
    for (i, turn) in turns.iter().enumerate() {
        match turn {
            Turn::User { parts, .. } => push("user", parts.iter().filter_map(user_part).collect()),
            Turn::Assistant { parts, tool_calls, .. } => {
                let mut out_parts: Vec<Value> = parts.iter().filter_map(text_part).collect();
                for call in tool_calls {
                    let mut part = json!({"functionCall": {"name": call.name, "args": call.arguments}});
                    if let Some(sig) = &call.thought_signature {
                        part["thoughtSignature"] = json!(sig);
                    }
                    out_parts.push(part);
                }
                if !out_parts.is_empty() {
                    push("model", out_parts);
                }
            }
            Turn::Tool { call_id, content, at } => {
                let name = called_function(&turns[..i], call_id).ok_or_else(|| {
                    AdapterError::Invalid(format!(
                        "messages[{at}].tool_call_id: no earlier assistant message has a tool call with id `{call_id}`"
                    ))
                })?;
                push(
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": function_response(content)}})],
                );
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect())
}

fn declaration(t: &Tool) -> Value {
    let mut v = json!({"name": t.name});
    if let Some(d) = &t.description {
        v["description"] = json!(d);
    }
    if let Some(p) = &t.parameters {
        v["parametersJsonSchema"] = p.clone();
    }
    v
}

fn tools_and_config(req: &ChatRequest) -> (Vec<Value>, Option<Value>) {
    let mut tools: Vec<&Tool> = req.tools.iter().collect();
    let config = match &req.tool_choice {
        None => None,
        Some(ToolChoice::None) => Some(json!({"mode": "NONE"})),
        Some(ToolChoice::Auto) => Some(json!({"mode": "AUTO"})),
        Some(ToolChoice::Required) => Some(json!({"mode": "ANY"})),
        Some(ToolChoice::Named(name)) => Some(json!({"mode": "ANY", "allowedFunctionNames": [name]})),
        Some(ToolChoice::Allowed { required: true, names }) => {
            Some(json!({"mode": "ANY", "allowedFunctionNames": names}))
        }
        Some(ToolChoice::Allowed { required: false, names }) => {
            // allowedFunctionNames only applies in ANY mode: offer only those tools instead.
            tools.retain(|t| names.contains(&t.name));
            Some(json!({"mode": "AUTO"}))
        }
    };
    (tools.into_iter().map(declaration).collect(), config)
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut c = Map::new();
    let mut put = |k: &str, v: Value| {
        c.insert(k.to_owned(), v);
    };
    if let Some(t) = req.temperature {
        put("temperature", json!(t));
    }
    if let Some(p) = req.top_p {
        put("topP", json!(p));
    }
    if let Some(n) = req.max_tokens {
        put("maxOutputTokens", json!(n));
    }
    if !req.stop.is_empty() {
        put("stopSequences", json!(req.stop));
    }
    if let Some(n) = req.n {
        put("candidateCount", json!(n));
    }
    if let Some(s) = req.seed {
        put("seed", json!(s));
    }
    if let Some(p) = req.presence_penalty {
        put("presencePenalty", json!(p));
    }
    if let Some(p) = req.frequency_penalty {
        put("frequencyPenalty", json!(p));
    }
    match &req.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => put("responseMimeType", json!("application/json")),
        ResponseFormat::JsonSchema { schema, .. } => {
            put("responseMimeType", json!("application/json"));
            put("responseJsonSchema", schema.clone());
        }
    }
    c
}
