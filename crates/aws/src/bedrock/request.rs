//! OpenAI Chat Completions request → Bedrock Converse request body.
//!
//! The input is read as loose JSON rather than typed structs so that every rejection can
//! name the exact field (`messages[2].content[0].image_url.url`), which is what a client
//! needs to fix its request.

use serde_json::{Map, Value, json};

use super::JSON_TOOL_NAME;
use crate::AwsError;

/// Builds the Converse body (without `modelId`, which travels in the URL).
pub(crate) fn converse_body(openai_body: &[u8], default_max_tokens: u64) -> Result<Value, AwsError> {
    let request: Value = serde_json::from_slice(openai_body)
        .map_err(|e| AwsError::Invalid(format!("request body is not valid JSON: {e}")))?;
    let request = request
        .as_object()
        .ok_or_else(|| invalid("the request body must be a JSON object"))?;
    reject_unsupported(request)?;

    let (system, turns) = conversation(request)?;
    let mut body = Map::new();
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let tool_config = tool_config(request, &turns)?;
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|turn| json!({"role": turn.role, "content": turn.content}))
                .collect(),
        ),
    );
    let inference = inference_config(request, default_max_tokens)?;
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tool_config) = tool_config {
        body.insert("toolConfig".into(), tool_config);
    }
    Ok(Value::Object(body))
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::Invalid(message.into())
}

/// Present and not `null`.
fn given<'a>(request: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    request.get(key).filter(|v| !v.is_null())
}

fn reject_unsupported(request: &Map<String, Value>) -> Result<(), AwsError> {
    if let Some(n) = given(request, "n")
        && n.as_u64() != Some(1)
    {
        return Err(invalid("`n` must be 1: Bedrock returns a single choice"));
    }
    if given(request, "logprobs").and_then(Value::as_bool) == Some(true) || given(request, "top_logprobs").is_some() {
        return Err(invalid("`logprobs` and `top_logprobs` are not supported by Bedrock"));
    }
    let wants_audio = given(request, "audio").is_some()
        || given(request, "modalities")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("audio")));
    if wants_audio {
        return Err(invalid(
            "audio output (`audio`, `modalities: [\"audio\"]`) is not supported by Bedrock",
        ));
    }
    if given(request, "functions").is_some() || given(request, "function_call").is_some() {
        return Err(invalid(
            "`functions` and `function_call` are deprecated and not supported here; use `tools`",
        ));
    }
    if given(request, "web_search_options").is_some() {
        return Err(invalid("`web_search_options` is not supported by Bedrock"));
    }
    Ok(())
}

fn inference_config(request: &Map<String, Value>, default_max_tokens: u64) -> Result<Map<String, Value>, AwsError> {
    let mut config = Map::new();
    let max_tokens = match given(request, "max_completion_tokens").map(|v| ("max_completion_tokens", v)) {
        Some(found) => Some(found),
        None => given(request, "max_tokens").map(|v| ("max_tokens", v)),
    };
    match max_tokens {
        Some((field, value)) => {
            let n = value
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(format!("`{field}` must be a positive integer")))?;
            config.insert("maxTokens".into(), json!(n));
        }
        None if default_max_tokens > 0 => {
            config.insert("maxTokens".into(), json!(default_max_tokens));
        }
        None => {}
    }
    for (field, key) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(value) = given(request, field) {
            let number = value
                .as_f64()
                .ok_or_else(|| invalid(format!("`{field}` must be a number")))?;
            config.insert(key.into(), json!(number));
        }
    }
    let stops = match given(request, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) => {
            if items.iter().any(|s| !s.is_string()) {
                return Err(invalid("`stop` must be a string or an array of strings"));
            }
            items.clone()
        }
        Some(_) => return Err(invalid("`stop` must be a string or an array of strings")),
    };
    if !stops.is_empty() {
        config.insert("stopSequences".into(), Value::Array(stops));
    }
    Ok(config)
}

/// One Converse turn; same-role turns are merged as they are added.
pub(crate) struct Turn {
    role: &'static str,
    content: Vec<Value>,
}

fn push_turn(turns: &mut Vec<Turn>, role: &'static str, content: Vec<Value>) {
    if content.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(content),
        _ => turns.push(Turn { role, content }),
    }
}

fn conversation(request: &Map<String, Value>) -> Result<(Vec<Value>, Vec<Turn>), AwsError> {
    let messages = given(request, "messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("`messages` must be a non-empty array"))?;
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("`{at}.role` must be a string")))?;
        match role {
            "system" | "developer" => system.extend(content_blocks(message.get("content"), &at, false)?),
            "user" => push_turn(&mut turns, "user", content_blocks(message.get("content"), &at, true)?),
            "assistant" => push_turn(&mut turns, "assistant", assistant_blocks(message, &at)?),
            "tool" => push_turn(&mut turns, "user", vec![tool_result(message, &at)?]),
            "function" => {
                return Err(invalid(format!(
                    "`{at}`: the legacy `function` role is not supported; use `tool`"
                )));
            }
            other => return Err(invalid(format!("`{at}.role` `{other}` is not a chat role"))),
        }
    }
    match turns.first() {
        None => Err(invalid("`messages` must contain at least one user message")),
        Some(first) if first.role != "user" => Err(invalid(
            "Bedrock requires the conversation to start with a user message",
        )),
        Some(_) => Ok((system, turns)),
    }
}

/// Text (and, where `images` is set, image) blocks of a message's `content`, which is a
/// string, an array of parts, or null. Parts marked as a cache breakpoint (OpenAI's
/// `prompt_cache_breakpoint`, or the Anthropic-style `cache_control` some clients send) are
/// followed by a Bedrock `cachePoint`.
fn content_blocks(content: Option<&Value>, at: &str, images: bool) -> Result<Vec<Value>, AwsError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => return Ok(text_block(text).into_iter().collect()),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(invalid(format!("`{at}.content` must be a string or an array of parts"))),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let kind = part
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("`{at}.type` must be a string")))?;
        let block = match kind {
            "text" | "refusal" => {
                let text = part
                    .get(kind)
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("`{at}.{kind}` must be a string")))?;
                text_block(text)
            }
            "image_url" if images => Some(image_block(part, &at)?),
            other => {
                return Err(invalid(format!(
                    "`{at}`: content parts of type `{other}` are not supported by Bedrock here"
                )));
            }
        };
        if let Some(block) = block {
            blocks.push(block);
            let breakpoint = ["prompt_cache_breakpoint", "cache_control"]
                .iter()
                .any(|key| part.get(*key).is_some_and(|c| !c.is_null()));
            if breakpoint {
                blocks.push(json!({"cachePoint": {"type": "default"}}));
            }
        }
    }
    Ok(blocks)
}

/// Bedrock rejects blank text blocks, so whitespace-only text is dropped.
fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"text": text}))
}

fn image_block(part: &Value, at: &str) -> Result<Value, AwsError> {
    let url = match part.get("image_url") {
        Some(Value::Object(image)) => image.get("url").and_then(Value::as_str),
        Some(Value::String(url)) => Some(url.as_str()),
        _ => None,
    }
    .ok_or_else(|| invalid(format!("`{at}.image_url.url` must be a string")))?;
    let field = format!("{at}.image_url.url");
    let Some(data) = url.strip_prefix("data:") else {
        return Err(invalid(format!(
            "`{field}`: Bedrock accepts images only as base64 `data:` URLs, not links to fetch"
        )));
    };
    let (meta, payload) = data
        .split_once(',')
        .ok_or_else(|| invalid(format!("`{field}` is not a valid data URL")))?;
    let mut meta = meta.split(';');
    let mime = meta.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !meta.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err(invalid(format!(
            "`{field}` must be base64-encoded (`data:image/png;base64,...`)"
        )));
    }
    let format = match mime.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(invalid(format!(
                "`{field}`: image type `{other}` is not supported by Bedrock (png, jpeg, gif, webp)"
            )));
        }
    };
    let payload = payload.trim();
    if payload.is_empty() {
        return Err(invalid(format!("`{field}` holds no image data")));
    }
    Ok(json!({"image": {"format": format, "source": {"bytes": payload}}}))
}

fn assistant_blocks(message: &Value, at: &str) -> Result<Vec<Value>, AwsError> {
    let mut blocks = content_blocks(message.get("content"), at, false)?;
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => return Ok(blocks),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(invalid(format!("`{at}.tool_calls` must be an array"))),
    };
    for (j, call) in calls.iter().enumerate() {
        let at = format!("{at}.tool_calls[{j}]");
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("`{at}.id` must be a non-empty string")))?;
        if call
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "function")
        {
            return Err(invalid(format!(
                "`{at}.type`: only `function` tool calls are supported by Bedrock"
            )));
        }
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("`{at}.function.name` must be a string")))?;
        let arguments = function.and_then(|f| f.get("arguments")).unwrap_or(&Value::Null);
        let input = match arguments {
            Value::Null => json!({}),
            Value::String(s) if s.trim().is_empty() => json!({}),
            Value::String(s) => {
                serde_json::from_str(s).map_err(|_| invalid(format!("`{at}.function.arguments` is not valid JSON")))?
            }
            // Some clients send the arguments already parsed.
            other => other.clone(),
        };
        blocks.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
    }
    Ok(blocks)
}

fn tool_result(message: &Value, at: &str) -> Result<Value, AwsError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("`{at}.tool_call_id` must be a non-empty string")))?;
    let text = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                let piece = part
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|_| part.get("type").and_then(Value::as_str) == Some("text"))
                    .ok_or_else(|| invalid(format!("`{at}.content[{j}]`: tool results may hold only text parts")))?;
                text.push_str(piece);
            }
            text
        }
        Some(_) => {
            return Err(invalid(format!(
                "`{at}.content` must be a string or an array of text parts"
            )));
        }
    };
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => vec![json!({"json": object})],
        _ if text.trim().is_empty() => Vec::new(),
        _ => vec![json!({"text": text})],
    };
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}

/// OpenAI's `tool_choice`, before translation.
#[derive(Debug, PartialEq)]
enum Choice {
    Auto,
    None,
    Required,
    Named(String),
}

fn tool_config(request: &Map<String, Value>, turns: &[Turn]) -> Result<Option<Value>, AwsError> {
    let client_tools = client_tools(request)?;
    let choice = tool_choice(request)?;
    let json_schema = response_schema(request)?;

    match &choice {
        Choice::Required if client_tools.is_empty() => {
            return Err(invalid("`tool_choice` is `required` but no `tools` were given"));
        }
        Choice::Named(name) if !client_tools.iter().any(|(n, _)| n == name) => {
            return Err(invalid(format!(
                "`tool_choice` names `{name}`, which is not in `tools`"
            )));
        }
        _ => {}
    }
    if json_schema.is_some() && !client_tools.is_empty() && choice != Choice::None {
        return Err(invalid(
            "`response_format` cannot be combined with `tools` on Bedrock (JSON output is itself carried by a tool)",
        ));
    }

    let history_names = history_tool_names(turns);
    let history_has_tools = turns
        .iter()
        .flat_map(|t| &t.content)
        .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());
    let history_specs = || -> Vec<Value> {
        if client_tools.is_empty() {
            history_names
                .iter()
                .map(|name| tool_spec(name, None, json!({"type": "object", "properties": {}})))
                .collect()
        } else {
            client_tools.iter().map(|(_, spec)| spec.clone()).collect()
        }
    };

    let (tools, forced) = if let Some(schema) = json_schema {
        let mut tools = if history_has_tools { history_specs() } else { Vec::new() };
        tools.push(tool_spec(
            JSON_TOOL_NAME,
            Some("Give the final answer as JSON matching this schema."),
            schema,
        ));
        (tools, Some(json!({"tool": {"name": JSON_TOOL_NAME}})))
    } else if !client_tools.is_empty() && choice != Choice::None {
        let forced = match choice {
            // `auto` is Bedrock's default, and some models reject an explicit toolChoice.
            Choice::Auto | Choice::None => None,
            Choice::Required => Some(json!({"any": {}})),
            Choice::Named(name) => Some(json!({"tool": {"name": name}})),
        };
        (client_tools.into_iter().map(|(_, spec)| spec).collect(), forced)
    } else if history_has_tools {
        (history_specs(), None)
    } else {
        (Vec::new(), None)
    };

    if tools.is_empty() {
        return Ok(None);
    }
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    if let Some(forced) = forced {
        config.insert("toolChoice".into(), forced);
    }
    Ok(Some(Value::Object(config)))
}

fn tool_spec(name: &str, description: Option<&str>, schema: Value) -> Value {
    let mut spec = Map::new();
    spec.insert("name".into(), json!(name));
    if let Some(description) = description.filter(|d| !d.is_empty()) {
        spec.insert("description".into(), json!(description));
    }
    spec.insert("inputSchema".into(), json!({"json": schema}));
    json!({"toolSpec": spec})
}

/// `(name, toolSpec)` for each client tool.
fn client_tools(request: &Map<String, Value>) -> Result<Vec<(String, Value)>, AwsError> {
    let tools = match given(request, "tools") {
        None => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(invalid(format!(
                "`{at}.type`: only `function` tools are supported by Bedrock"
            )));
        }
        let function = tool
            .get("function")
            .ok_or_else(|| invalid(format!("`{at}.function` is required")))?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(format!("`{at}.function.name` must be a non-empty string")))?;
        if name == JSON_TOOL_NAME {
            return Err(invalid(format!(
                "`{at}.function.name`: `{JSON_TOOL_NAME}` is reserved by the gateway"
            )));
        }
        let description = function.get("description").and_then(Value::as_str);
        let schema = match function.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(schema @ Value::Object(_)) => schema.clone(),
            Some(_) => {
                return Err(invalid(format!(
                    "`{at}.function.parameters` must be a JSON Schema object"
                )));
            }
        };
        out.push((name.to_owned(), tool_spec(name, description, schema)));
    }
    Ok(out)
}

fn tool_choice(request: &Map<String, Value>) -> Result<Choice, AwsError> {
    match given(request, "tool_choice") {
        None => Ok(Choice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(Choice::Auto),
            "none" => Ok(Choice::None),
            "required" => Ok(Choice::Required),
            other => Err(invalid(format!(
                "`tool_choice` `{other}` is not one of none, auto, required"
            ))),
        },
        Some(Value::Object(choice)) => {
            match choice.get("type").and_then(Value::as_str) {
                Some("function") => {}
                _ => return Err(invalid("`tool_choice.type`: only `function` is supported by Bedrock")),
            }
            choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|name| Choice::Named(name.to_owned()))
                .ok_or_else(|| invalid("`tool_choice.function.name` must be a string"))
        }
        Some(_) => Err(invalid("`tool_choice` must be a string or an object")),
    }
}

/// The JSON Schema the answer must follow, when `response_format` asks for JSON.
fn response_schema(request: &Map<String, Value>) -> Result<Option<Value>, AwsError> {
    let Some(format) = given(request, "response_format") else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "object"}))),
        Some("json_schema") => match format.get("json_schema").and_then(|s| s.get("schema")) {
            None | Some(Value::Null) => Ok(Some(json!({"type": "object"}))),
            Some(schema @ Value::Object(_)) => Ok(Some(schema.clone())),
            Some(_) => Err(invalid(
                "`response_format.json_schema.schema` must be a JSON Schema object",
            )),
        },
        _ => Err(invalid(
            "`response_format.type` must be one of text, json_object, json_schema",
        )),
    }
}

fn history_tool_names(turns: &[Turn]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for block in turns.iter().flat_map(|t| &t.content) {
        if let Some(name) = block.pointer("/toolUse/name").and_then(Value::as_str)
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: Value) -> Result<Value, AwsError> {
        converse_body(&serde_json::to_vec(&request).unwrap(), 0)
    }

    #[test]
    fn tool_choice_none_without_history_omits_tools() {
        let out = body(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "none"
        }))
        .unwrap();
        assert!(out.get("toolConfig").is_none(), "{out}");
    }

    #[test]
    fn tool_history_without_tools_gets_synthesised_specs() {
        let out = body(json!({"messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "rainy"}
        ]}))
        .unwrap();
        assert_eq!(
            out.pointer("/toolConfig/tools/0/toolSpec/name"),
            Some(&json!("get_weather"))
        );
        assert!(out.pointer("/toolConfig/toolChoice").is_none());
    }

    #[test]
    fn malformed_arguments_name_the_field() {
        let err = body(json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "{not json"}}]}
        ]}))
        .unwrap_err();
        assert!(
            err.to_string().contains("messages[1].tool_calls[0].function.arguments"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_parameters_are_rejected() {
        let base = |extra: Value| {
            let mut r = json!({"messages": [{"role": "user", "content": "x"}]});
            r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body(r)
        };
        assert!(base(json!({"n": 2})).is_err());
        assert!(base(json!({"n": 1})).is_ok());
        assert!(base(json!({"logprobs": true})).is_err());
        assert!(base(json!({"logprobs": false, "seed": 3, "user": "u"})).is_ok());
        assert!(base(json!({"functions": [{"name": "f"}]})).is_err());
        assert!(base(json!({"max_tokens": 0})).is_err());
        assert!(base(json!({"tool_choice": "required"})).is_err());
        assert!(base(json!({"tools": [{"type": "function", "function": {"name": JSON_TOOL_NAME}}]})).is_err());
    }

    #[test]
    fn conversation_must_start_with_user() {
        let err = body(json!({"messages": [
            {"role": "system", "content": "s"},
            {"role": "assistant", "content": "hello"}
        ]}))
        .unwrap_err();
        assert!(err.to_string().contains("start with a user message"), "{err}");
    }

    #[test]
    fn cache_control_becomes_a_cache_point() {
        let out = body(json!({"messages": [
            {"role": "system", "content": [{"type": "text", "text": "long prefix", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "q"}
        ]}))
        .unwrap();
        assert_eq!(
            out["system"],
            json!([{"text": "long prefix"}, {"cachePoint": {"type": "default"}}])
        );
    }
}
