//! The client's OpenAI chat request, read into what the translating families need.
//!
//! Anthropic and Gemini adapters both start from the same OpenAI body, and both
//! must refuse the same malformed input with the same message. Reading it once
//! into plain types here keeps that validation in one place; every error names
//! the JSON path of the offending field (`messages[2].content[0].image_url.url`).
//! System and developer messages are collected apart, because neither family
//! accepts them among the turns.

use serde_json::{Map, Value};

use crate::AdapterError;

/// A chat request in the shape the translators consume.
#[derive(Debug, Default)]
pub(crate) struct ChatRequest {
    /// Text of every system and developer message, in order.
    pub(crate) system: Vec<Part>,
    /// User, assistant and tool messages, in order.
    pub(crate) turns: Vec<Turn>,
    pub(crate) tools: Vec<Tool>,
    pub(crate) tool_choice: Option<ToolChoice>,
    pub(crate) parallel_tool_calls: Option<bool>,
    pub(crate) response_format: ResponseFormat,
    /// `max_completion_tokens`, else `max_tokens`.
    pub(crate) max_tokens: Option<u64>,
    pub(crate) temperature: Option<f64>,
    pub(crate) top_p: Option<f64>,
    pub(crate) stop: Vec<String>,
    pub(crate) n: Option<u64>,
    pub(crate) seed: Option<i64>,
    pub(crate) presence_penalty: Option<f64>,
    pub(crate) frequency_penalty: Option<f64>,
    /// `user`, else `safety_identifier`.
    pub(crate) user: Option<String>,
    /// Top-level keys with a value that asks for something (not null/false).
    asked: Vec<String>,
    modalities_audio: bool,
}

/// One conversation turn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Turn {
    /// `at` is the index in `messages`, for error messages.
    User { parts: Vec<Part>, at: usize },
    Assistant {
        parts: Vec<Part>,
        tool_calls: Vec<ToolCall>,
        at: usize,
    },
    Tool {
        call_id: String,
        content: String,
        at: usize,
    },
}

/// A content part with its optional Anthropic-style `cache_control` marker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub(crate) kind: PartKind,
    pub(crate) cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PartKind {
    Text(String),
    Image(Media),
    Audio(Media),
    File(Media),
}

/// Where the bytes of an image, audio clip or file are.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Media {
    /// Base64 data from a `data:` URL or an inline field.
    Inline { mime: String, data: String },
    /// An `http(s)` URL the provider fetches itself.
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The parsed `arguments`, always a JSON object.
    pub(crate) arguments: Value,
    /// Gemini's thought signature, carried as `extra_content.google.thought_signature`.
    pub(crate) thought_signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tool {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) parameters: Option<Value>,
    pub(crate) cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToolChoice {
    None,
    Auto,
    Required,
    Named(String),
    /// `allowed_tools`: only these may be called; `required` forces a call.
    Allowed {
        required: bool,
        names: Vec<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum ResponseFormat {
    #[default]
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        description: Option<String>,
        schema: Value,
    },
}

fn invalid(path: &str, what: impl std::fmt::Display) -> AdapterError {
    AdapterError::Invalid(format!("{path}: {what}"))
}

impl ChatRequest {
    /// Reads an OpenAI `CreateChatCompletionRequest` body.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, AdapterError> {
        let root: Value =
            serde_json::from_slice(body).map_err(|e| AdapterError::Invalid(format!("body: not valid JSON ({e})")))?;
        let Value::Object(root) = root else {
            return Err(invalid("body", "expected a JSON object"));
        };
        let mut req = ChatRequest {
            asked: root
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Null | Value::Bool(false)))
                .map(|(k, _)| k.clone())
                .collect(),
            modalities_audio: root
                .get("modalities")
                .and_then(Value::as_array)
                .is_some_and(|m| m.iter().any(|x| x.as_str() == Some("audio"))),
            ..ChatRequest::default()
        };
        let messages = root
            .get("messages")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("messages", "required, an array of messages"))?;
        if messages.is_empty() {
            return Err(invalid("messages", "must contain at least one message"));
        }
        for (i, m) in messages.iter().enumerate() {
            req.read_message(i, m)?;
        }
        if let Some(tools) = non_null(&root, "tools") {
            let tools = tools.as_array().ok_or_else(|| invalid("tools", "expected an array"))?;
            for (i, t) in tools.iter().enumerate() {
                req.tools.push(read_tool(&format!("tools[{i}]"), t)?);
            }
        }
        if let Some(choice) = non_null(&root, "tool_choice") {
            req.tool_choice = Some(read_tool_choice(choice)?);
        }
        req.parallel_tool_calls = opt_bool(&root, "parallel_tool_calls")?;
        if let Some(format) = non_null(&root, "response_format") {
            req.response_format = read_response_format(format)?;
        }
        req.max_tokens = match opt_u64(&root, "max_completion_tokens")? {
            Some(n) => Some(n),
            None => opt_u64(&root, "max_tokens")?,
        };
        req.temperature = opt_f64(&root, "temperature")?;
        req.top_p = opt_f64(&root, "top_p")?;
        req.presence_penalty = opt_f64(&root, "presence_penalty")?;
        req.frequency_penalty = opt_f64(&root, "frequency_penalty")?;
        req.n = opt_u64(&root, "n")?;
        req.seed = match non_null(&root, "seed") {
            Some(v) => Some(v.as_i64().ok_or_else(|| invalid("seed", "expected an integer"))?),
            None => None,
        };
        req.stop = match non_null(&root, "stop") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(&format!("stop[{i}]"), "expected a string"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("stop", "expected a string or an array of strings")),
        };
        req.user = match opt_str(&root, "user")? {
            Some(u) => Some(u),
            None => opt_str(&root, "safety_identifier")?,
        };
        Ok(req)
    }

    /// Refuses parameters this provider cannot honour and that change what
    /// the client gets back (as opposed to sampling hints, which are dropped).
    pub(crate) fn refuse(&self, provider: &str, params: &[&str]) -> Result<(), AdapterError> {
        for p in params {
            if self.asked.iter().any(|k| k == p) {
                return Err(invalid(p, format_args!("not supported by {provider}")));
            }
        }
        if self.modalities_audio {
            return Err(invalid(
                "modalities",
                format_args!("audio output is not supported by {provider}"),
            ));
        }
        Ok(())
    }

    fn read_message(&mut self, i: usize, m: &Value) -> Result<(), AdapterError> {
        let path = format!("messages[{i}]");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("{path}.role"), "required"))?;
        let content = m.get("content").filter(|c| !c.is_null());
        let content_path = format!("{path}.content");
        match role {
            "system" | "developer" => {
                let content = content.ok_or_else(|| invalid(&content_path, "required"))?;
                self.system.extend(read_text_parts(&content_path, content)?);
            }
            "user" => {
                let content = content.ok_or_else(|| invalid(&content_path, "required"))?;
                self.turns.push(Turn::User {
                    parts: read_user_parts(&content_path, content)?,
                    at: i,
                });
            }
            "assistant" => {
                let parts = match content {
                    Some(c) => read_text_parts(&content_path, c)?,
                    None => Vec::new(),
                };
                let mut tool_calls = Vec::new();
                if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
                    let calls = calls
                        .as_array()
                        .ok_or_else(|| invalid(&format!("{path}.tool_calls"), "expected an array"))?;
                    for (j, c) in calls.iter().enumerate() {
                        tool_calls.push(read_tool_call(&format!("{path}.tool_calls[{j}]"), c)?);
                    }
                }
                if m.get("function_call").is_some_and(|f| !f.is_null()) {
                    return Err(invalid(
                        &format!("{path}.function_call"),
                        "deprecated; send tool_calls instead",
                    ));
                }
                self.turns.push(Turn::Assistant {
                    parts,
                    tool_calls,
                    at: i,
                });
            }
            "tool" => {
                let call_id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(&format!("{path}.tool_call_id"), "required"))?
                    .to_owned();
                let text = match content {
                    Some(c) => read_text_parts(&content_path, c)?
                        .into_iter()
                        .filter_map(|p| match p.kind {
                            PartKind::Text(t) => Some(t),
                            PartKind::Image(_) | PartKind::Audio(_) | PartKind::File(_) => None,
                        })
                        .collect::<Vec<_>>()
                        .join(""),
                    None => String::new(),
                };
                self.turns.push(Turn::Tool {
                    call_id,
                    content: text,
                    at: i,
                });
            }
            "function" => {
                return Err(invalid(
                    &format!("{path}.role"),
                    "`function` messages are deprecated; use tool messages",
                ));
            }
            other => return Err(invalid(&format!("{path}.role"), format_args!("unknown role `{other}`"))),
        }
        Ok(())
    }
}

fn non_null<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn opt_u64(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, AdapterError> {
    non_null(map, key)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| invalid(key, "expected a non-negative integer"))
        })
        .transpose()
}

fn opt_f64(map: &Map<String, Value>, key: &str) -> Result<Option<f64>, AdapterError> {
    non_null(map, key)
        .map(|v| v.as_f64().ok_or_else(|| invalid(key, "expected a number")))
        .transpose()
}

fn opt_bool(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, AdapterError> {
    non_null(map, key)
        .map(|v| v.as_bool().ok_or_else(|| invalid(key, "expected a boolean")))
        .transpose()
}

fn opt_str(map: &Map<String, Value>, key: &str) -> Result<Option<String>, AdapterError> {
    non_null(map, key)
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid(key, "expected a string"))
        })
        .transpose()
}

fn cache_control(part: &Value) -> Option<Value> {
    part.get("cache_control").filter(|c| c.is_object()).cloned()
}

/// Content of system, developer, assistant and tool messages: a string or
/// an array of `text` (and, for assistants, `refusal`) parts.
fn read_text_parts(path: &str, content: &Value) -> Result<Vec<Part>, AdapterError> {
    match content {
        Value::String(s) => Ok(vec![Part {
            kind: PartKind::Text(s.clone()),
            cache_control: None,
        }]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let p_path = format!("{path}[{j}]");
                let text = match p.get("type").and_then(Value::as_str) {
                    Some("text") => p.get("text"),
                    Some("refusal") => p.get("refusal"),
                    Some(other) => {
                        return Err(invalid(
                            &format!("{p_path}.type"),
                            format_args!("`{other}` parts are not allowed here"),
                        ));
                    }
                    None => return Err(invalid(&format!("{p_path}.type"), "required")),
                };
                let text = text
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(&p_path, "text part without text"))?;
                Ok(Part {
                    kind: PartKind::Text(text.to_owned()),
                    cache_control: cache_control(p),
                })
            })
            .collect(),
        _ => Err(invalid(path, "expected a string or an array of content parts")),
    }
}

fn read_user_parts(path: &str, content: &Value) -> Result<Vec<Part>, AdapterError> {
    let parts = match content {
        Value::String(s) => {
            return Ok(vec![Part {
                kind: PartKind::Text(s.clone()),
                cache_control: None,
            }]);
        }
        Value::Array(parts) => parts,
        _ => return Err(invalid(path, "expected a string or an array of content parts")),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let p_path = format!("{path}[{j}]");
        let field = |name: &str| {
            p.get(name)
                .ok_or_else(|| invalid(&format!("{p_path}.{name}"), "required"))
        };
        let kind = match p.get("type").and_then(Value::as_str) {
            Some("text") => PartKind::Text(
                field("text")?
                    .as_str()
                    .ok_or_else(|| invalid(&format!("{p_path}.text"), "expected a string"))?
                    .to_owned(),
            ),
            Some("image_url") => {
                let url_path = format!("{p_path}.image_url.url");
                let image = field("image_url")?;
                let url = match image {
                    Value::String(s) => s.as_str(),
                    other => other
                        .get("url")
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid(&url_path, "required"))?,
                };
                PartKind::Image(read_media_url(&url_path, url)?)
            }
            Some("input_audio") => {
                let audio = field("input_audio")?;
                let data = audio
                    .get("data")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(&format!("{p_path}.input_audio.data"), "required"))?;
                let mime = match audio.get("format").and_then(Value::as_str) {
                    Some("wav") => "audio/wav",
                    Some("mp3") => "audio/mp3",
                    _ => {
                        return Err(invalid(
                            &format!("{p_path}.input_audio.format"),
                            "expected `wav` or `mp3`",
                        ));
                    }
                };
                PartKind::Audio(Media::Inline {
                    mime: mime.to_owned(),
                    data: data.to_owned(),
                })
            }
            Some("file") => {
                let file = field("file")?;
                if let Some(data) = file.get("file_data").and_then(Value::as_str) {
                    let data_path = format!("{p_path}.file.file_data");
                    let media = if data.starts_with("data:") {
                        read_media_url(&data_path, data)?
                    } else {
                        let name = file.get("filename").and_then(Value::as_str).unwrap_or_default();
                        let mime = mime_from_name(name)
                            .ok_or_else(|| invalid(&data_path, "send a data: URL so the media type is known"))?;
                        Media::Inline {
                            mime: mime.to_owned(),
                            data: data.to_owned(),
                        }
                    };
                    PartKind::File(media)
                } else if file.get("file_id").is_some() {
                    return Err(invalid(
                        &format!("{p_path}.file.file_id"),
                        "file ids refer to OpenAI's file store; send file_data",
                    ));
                } else {
                    return Err(invalid(&format!("{p_path}.file"), "file_data is required"));
                }
            }
            Some(other) => {
                return Err(invalid(
                    &format!("{p_path}.type"),
                    format_args!("unknown content part type `{other}`"),
                ));
            }
            None => return Err(invalid(&format!("{p_path}.type"), "required")),
        };
        out.push(Part {
            kind,
            cache_control: cache_control(p),
        });
    }
    Ok(out)
}

/// A `data:<mime>;base64,<data>` URL or an `http(s)` URL.
fn read_media_url(path: &str, url: &str) -> Result<Media, AdapterError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid(path, "malformed data: URL"))?;
        let mime = meta
            .strip_suffix(";base64")
            .ok_or_else(|| invalid(path, "data: URLs must be base64-encoded"))?;
        let mime = mime.split(';').next().unwrap_or_default();
        if mime.is_empty() {
            return Err(invalid(path, "data: URL without a media type"));
        }
        return Ok(Media::Inline {
            mime: mime.to_ascii_lowercase(),
            data: data.to_owned(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Media::Url(url.to_owned()));
    }
    Err(invalid(path, "expected an http(s) URL or a data: URL"))
}

/// Best-effort media type of a file name or URL path, by extension.
pub(crate) fn mime_from_name(name: &str) -> Option<&'static str> {
    let name = name.split(['?', '#']).next().unwrap_or_default();
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "txt" => "text/plain",
        _ => return None,
    })
}

fn read_tool_call(path: &str, c: &Value) -> Result<ToolCall, AdapterError> {
    if let Some(ty) = c.get("type").and_then(Value::as_str)
        && ty != "function"
    {
        return Err(invalid(
            &format!("{path}.type"),
            format_args!("only function tool calls can be translated, not `{ty}`"),
        ));
    }
    let id = c
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{path}.id"), "required"))?;
    let function = c
        .get("function")
        .ok_or_else(|| invalid(&format!("{path}.function"), "required"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{path}.function.name"), "required"))?;
    let args_path = format!("{path}.function.arguments");
    let arguments = match function.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|_| invalid(&args_path, "not valid JSON"))?,
        Some(other) => other.clone(),
    };
    if !arguments.is_object() {
        return Err(invalid(&args_path, "must be a JSON object"));
    }
    let thought_signature = c
        .pointer("/extra_content/google/thought_signature")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments,
        thought_signature,
    })
}

fn read_tool(path: &str, t: &Value) -> Result<Tool, AdapterError> {
    match t.get("type").and_then(Value::as_str) {
        Some("function") => {}
        Some(other) => {
            return Err(invalid(
                &format!("{path}.type"),
                format_args!("only function tools can be translated, not `{other}`"),
            ));
        }
        None => return Err(invalid(&format!("{path}.type"), "required")),
    }
    let f = t
        .get("function")
        .ok_or_else(|| invalid(&format!("{path}.function"), "required"))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{path}.function.name"), "required"))?;
    let parameters = f.get("parameters").filter(|p| !p.is_null()).cloned();
    if parameters.as_ref().is_some_and(|p| !p.is_object()) {
        return Err(invalid(
            &format!("{path}.function.parameters"),
            "expected a JSON Schema object",
        ));
    }
    Ok(Tool {
        name: name.to_owned(),
        description: f.get("description").and_then(Value::as_str).map(str::to_owned),
        parameters,
        cache_control: cache_control(t),
    })
}

fn read_tool_choice(v: &Value) -> Result<ToolChoice, AdapterError> {
    let named = |v: &Value, path: &str| {
        v.pointer("/function/name")
            .or_else(|| v.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid(path, "required"))
    };
    match v {
        Value::String(s) => match s.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid("tool_choice", format_args!("unknown value `{other}`"))),
        },
        Value::Object(_) => match v.get("type").and_then(Value::as_str) {
            Some("function") => Ok(ToolChoice::Named(named(v, "tool_choice.function.name")?)),
            Some("allowed_tools") => {
                let allowed = v
                    .get("allowed_tools")
                    .ok_or_else(|| invalid("tool_choice.allowed_tools", "required"))?;
                let required = match allowed.get("mode").and_then(Value::as_str) {
                    Some("required") => true,
                    Some("auto") | None => false,
                    Some(other) => {
                        return Err(invalid(
                            "tool_choice.allowed_tools.mode",
                            format_args!("unknown mode `{other}`"),
                        ));
                    }
                };
                let names = allowed
                    .get("tools")
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid("tool_choice.allowed_tools.tools", "required"))?
                    .iter()
                    .enumerate()
                    .map(|(i, t)| named(t, &format!("tool_choice.allowed_tools.tools[{i}].function.name")))
                    .collect::<Result<_, _>>()?;
                Ok(ToolChoice::Allowed { required, names })
            }
            Some(other) => Err(invalid(
                "tool_choice.type",
                format_args!("`{other}` cannot be translated"),
            )),
            None => Err(invalid("tool_choice.type", "required")),
        },
        _ => Err(invalid("tool_choice", "expected a string or an object")),
    }
}

fn read_response_format(v: &Value) -> Result<ResponseFormat, AdapterError> {
    match v.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let js = v
                .get("json_schema")
                .ok_or_else(|| invalid("response_format.json_schema", "required"))?;
            let name = js
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("response_format.json_schema.name", "required"))?;
            let schema = js
                .get("schema")
                .filter(|s| s.is_object())
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object"}));
            Ok(ResponseFormat::JsonSchema {
                name: name.to_owned(),
                description: js.get("description").and_then(Value::as_str).map(str::to_owned),
                schema,
            })
        }
        Some(other) => Err(invalid("response_format.type", format_args!("unknown type `{other}`"))),
        None => Err(invalid("response_format.type", "required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ChatRequest, AdapterError> {
        ChatRequest::parse(&serde_json::to_vec(&v).unwrap())
    }

    fn err(v: Value) -> String {
        match parse(v) {
            Err(AdapterError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(json!({})).starts_with("messages:"));
        assert!(err(json!({"messages": [{"role": "user"}]})).starts_with("messages[0].content:"));
        let m = err(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}
        ]}]}));
        assert!(m.starts_with("messages[0].content[1].image_url.url:"), "{m}");
        let m = err(json!({"messages": [{"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
        ]}]}));
        assert!(m.starts_with("messages[0].tool_calls[0].function.arguments:"), "{m}");
        assert!(err(json!({"messages": [{"role": "user", "content": "x"}], "stop": 3})).starts_with("stop:"));
        assert!(
            err(json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1})).starts_with("max_tokens:")
        );
    }

    #[test]
    fn data_urls_are_split_into_media_type_and_data() {
        let req = parse(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/PNG;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
        ]}]}))
        .unwrap();
        let Turn::User { parts, .. } = &req.turns[0] else {
            panic!()
        };
        assert_eq!(
            parts[0].kind,
            PartKind::Image(Media::Inline {
                mime: "image/png".into(),
                data: "iVBORw0KGgo=".into()
            })
        );
        assert_eq!(
            parts[1].kind,
            PartKind::Image(Media::Url("https://example.com/cat.jpg".into()))
        );
        assert!(
            err(json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}
            ]}]}))
            .contains("base64")
        );
    }

    #[test]
    fn max_completion_tokens_wins_and_user_falls_back_to_safety_identifier() {
        let req = parse(json!({"messages": [{"role": "user", "content": "x"}],
            "max_tokens": 10, "max_completion_tokens": 20, "safety_identifier": "u-1"}))
        .unwrap();
        assert_eq!(req.max_tokens, Some(20));
        assert_eq!(req.user.as_deref(), Some("u-1"));
    }

    #[test]
    fn refuse_only_fires_on_values_that_ask_for_something() {
        let req =
            parse(json!({"messages": [{"role": "user", "content": "x"}], "logprobs": false, "audio": null})).unwrap();
        assert!(req.refuse("P", &["logprobs", "audio"]).is_ok());
        let req = parse(json!({"messages": [{"role": "user", "content": "x"}], "logprobs": true})).unwrap();
        assert_eq!(
            req.refuse("P", &["logprobs"]).unwrap_err(),
            AdapterError::Invalid("logprobs: not supported by P".into())
        );
    }
}
