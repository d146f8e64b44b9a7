//! OpenAI chat request → Anthropic `POST /v1/messages` request.
//!
//! Anthropic wants the system prompt apart, tool results as `tool_result`
//! blocks of a user message, assistant tool calls as `tool_use` blocks, and a
//! `max_tokens` on every request; it has no JSON mode, so `response_format`
//! becomes a forced tool (see the crate docs).

use bytes::Bytes;
use http::HeaderName;
use serde_json::{Map, Value, json};

use super::{API_VERSION, JSON_TOOL};
use crate::endpoint::{add_plain, add_secret, join, json_headers};
use crate::openai_request::{ChatRequest, Media, Part, PartKind, ResponseFormat, Tool, ToolChoice, Turn};
use crate::{AdapterError, Prepared, Target};

const PROVIDER: &str = "Anthropic";

/// Image types the Messages API accepts.
const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

fn invalid(msg: String) -> AdapterError {
    AdapterError::Invalid(msg)
}

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
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid(
            "n: Anthropic returns one choice per request; n must be 1".to_owned(),
        ));
    }
    let max_tokens = match req.max_tokens {
        Some(0) => return Err(invalid("max_tokens: must be at least 1".to_owned())),
        Some(n) => n,
        None if target.default_max_tokens > 0 => target.default_max_tokens,
        None => {
            return Err(invalid(
                "max_tokens: required by Anthropic and no default is configured".to_owned(),
            ));
        }
    };

    let mut out = Map::new();
    out.insert("model".into(), json!(target.upstream_model));
    out.insert("max_tokens".into(), json!(max_tokens));
    let system: Vec<Value> = req.system.iter().filter_map(text_block).collect();
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(messages(&req.turns)?));
    if stream {
        out.insert("stream".into(), json!(true));
    }
    if let Some(t) = req.temperature {
        // Anthropic's range is 0..=1, OpenAI's 0..=2.
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    // Recent Claude models refuse temperature and top_p together; temperature
    // is the knob clients mean, top_p alone is still passed.
    if let Some(p) = req.top_p
        && req.temperature.is_none()
    {
        out.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    if let Some(user) = &req.user {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    let (tools, tool_choice) = tools_and_choice(&req)?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tool_choice {
            out.insert("tool_choice".into(), choice);
        }
    }

    let mut headers = json_headers();
    add_secret(&mut headers, HeaderName::from_static("x-api-key"), "", target.api_key)?;
    add_plain(
        &mut headers,
        "anthropic-version",
        target.api_version.unwrap_or(API_VERSION),
    )?;
    Ok(Prepared {
        url: join(target.base_url, "v1/messages"),
        headers,
        body: Bytes::from(Value::Object(out).to_string()),
    })
}

fn with_cache_control(mut block: Value, part: &Part) -> Value {
    if let Some(cc) = &part.cache_control {
        block["cache_control"] = cc.clone();
    }
    block
}

/// A text block, or nothing for empty text (Anthropic refuses empty blocks).
fn text_block(part: &Part) -> Option<Value> {
    match &part.kind {
        PartKind::Text(t) if !t.is_empty() => Some(with_cache_control(json!({"type": "text", "text": t}), part)),
        _ => None,
    }
}

fn content_block(path: &str, part: &Part) -> Result<Option<Value>, AdapterError> {
    let block = match &part.kind {
        PartKind::Text(_) => return Ok(text_block(part)),
        PartKind::Image(Media::Inline { mime, data }) => {
            if !IMAGE_TYPES.contains(&mime.as_str()) {
                return Err(invalid(format!(
                    "{path}: Anthropic accepts JPEG, PNG, GIF and WebP images, not `{mime}`"
                )));
            }
            json!({"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}})
        }
        PartKind::Image(Media::Url(url)) => json!({"type": "image", "source": {"type": "url", "url": url}}),
        PartKind::File(Media::Inline { mime, data }) if mime == "application/pdf" => {
            json!({"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}})
        }
        PartKind::File(Media::Url(url)) => json!({"type": "document", "source": {"type": "url", "url": url}}),
        PartKind::File(Media::Inline { mime, .. }) => {
            return Err(invalid(format!(
                "{path}: Anthropic accepts PDF files only, not `{mime}`"
            )));
        }
        PartKind::Audio(_) => return Err(invalid(format!("{path}: Anthropic does not accept audio input"))),
    };
    Ok(Some(with_cache_control(block, part)))
}

/// The `messages` array: turns in order, consecutive turns of one role merged.
fn messages(turns: &[Turn]) -> Result<Vec<Value>, AdapterError> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, blocks: Vec<Value>| match out.last_mut() {
        Some((last, existing)) if *last == role => existing.extend(blocks),
        _ => out.push((role, blocks)),
    };
    for turn in turns {
        match turn {
            Turn::User { parts, at } => {
                let mut blocks = Vec::with_capacity(parts.len());
                for (j, part) in parts.iter().enumerate() {
                    blocks.extend(content_block(&format!("messages[{at}].content[{j}]"), part)?);
                }
                push("user", blocks);
            }
            Turn::Assistant { parts, tool_calls, .. } => {
                let mut blocks: Vec<Value> = parts.iter().filter_map(text_block).collect();
                blocks.extend(
                    tool_calls
                        .iter()
                        .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})),
                );
                if !blocks.is_empty() {
                    push("assistant", blocks);
                }
            }
            Turn::Tool { call_id, content, .. } => {
                push(
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": content})],
                );
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect())
}

fn tool_def(t: &Tool) -> Value {
    let mut v = json!({
        "name": t.name,
        "input_schema": t.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    if let Some(d) = &t.description {
        v["description"] = json!(d);
    }
    if let Some(cc) = &t.cache_control {
        v["cache_control"] = cc.clone();
    }
    v
}

/// `tools` and `tool_choice`, the JSON tool included when `response_format` asks for JSON.
fn tools_and_choice(req: &ChatRequest) -> Result<(Vec<Value>, Option<Value>), AdapterError> {
    if let Some(i) = req.tools.iter().position(|t| t.name == JSON_TOOL) {
        return Err(invalid(format!(
            "tools[{i}].function.name: `{JSON_TOOL}` is reserved by the gateway"
        )));
    }
    let mut client_tools: Vec<&Tool> = req.tools.iter().collect();
    if let Some(ToolChoice::Allowed { names, .. }) = &req.tool_choice {
        client_tools.retain(|t| names.contains(&t.name));
    }
    let mut tools: Vec<Value> = client_tools.iter().map(|t| tool_def(t)).collect();

    let json_tool = match &req.response_format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(json!({
            "name": JSON_TOOL,
            "description": "Answer the user with a JSON object.",
            "input_schema": {"type": "object", "additionalProperties": true},
        })),
        ResponseFormat::JsonSchema {
            name,
            description,
            schema,
        } => {
            if schema.get("type").is_some_and(|t| t != "object") {
                return Err(invalid(
                    "response_format.json_schema.schema: Anthropic needs an object at the schema's root".to_owned(),
                ));
            }
            let description = match description {
                Some(d) => format!("Answer the user with JSON matching the `{name}` schema: {d}"),
                None => format!("Answer the user with JSON matching the `{name}` schema."),
            };
            Some(json!({"name": JSON_TOOL, "description": description, "input_schema": schema}))
        }
    };

    let mut choice = match (&json_tool, &req.tool_choice) {
        (None, None) => None,
        (None, Some(ToolChoice::None)) => Some(json!({"type": "none"})),
        (None, Some(ToolChoice::Auto)) => Some(json!({"type": "auto"})),
        (None, Some(ToolChoice::Required)) => Some(json!({"type": "any"})),
        (None, Some(ToolChoice::Allowed { required, .. })) => {
            Some(json!({"type": if *required { "any" } else { "auto" }}))
        }
        (_, Some(ToolChoice::Named(name))) => Some(json!({"type": "tool", "name": name})),
        // JSON is required: with no (usable) client tool, force the JSON tool;
        // otherwise the model must call some tool, the JSON one or a real one.
        (Some(_), Some(ToolChoice::None)) => Some(json!({"type": "tool", "name": JSON_TOOL})),
        (Some(_), _) if tools.is_empty() => Some(json!({"type": "tool", "name": JSON_TOOL})),
        (Some(_), _) => Some(json!({"type": "any"})),
    };
    if let Some(tool) = json_tool {
        if matches!(req.tool_choice, Some(ToolChoice::None)) {
            tools.clear();
        }
        tools.push(tool);
    }
    if req.parallel_tool_calls == Some(false) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    Ok((tools, choice))
}
