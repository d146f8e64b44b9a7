//! The dialect-neutral answer that the Anthropic, Gemini and Bedrock routes render.
//!
//! Tests of the router's adapters predict exact content and usage, so the
//! rules must not drift between dialects: each dialect only turns its request
//! into a [`Prompt`] plus [`ToolDecl`]s and renders the [`Answer`] planned
//! here. The rules are those of the OpenAI path, so a conversation the
//! gateway translates costs the same tokens whichever dialect it reaches:
//!
//! - prompt tokens: for every message, the whitespace-separated words of its
//!   text parts plus 3; a system prompt counts as one message; non-text parts
//!   (images, tool calls and results) count no words;
//! - the reply: the scripted `reply`, else `"Mock reply to: "` followed by the
//!   first 40 characters of the last user message's texts joined by a space;
//! - completion tokens: the reply's words; a token limit keeps the first
//!   `limit` words and stops with `max_tokens`;
//! - a scripted tool call (`x-mock-tool-call`) answers the declared tool with
//!   placeholder input built from its JSON schema and costs 1 token plus one
//!   per leaf value of the input (plus the words of a scripted reply, sent as
//!   a text block before the call); token limits do not apply to it;
//! - cached tokens: the scripted `cached_tokens`, capped at the prompt.

use serde_json::{Map, Value};

use crate::chat::{TOKENS_PER_MESSAGE, echo_reply, segments};
use crate::script::Directives;

/// Deepest schema nesting turned into placeholder input; deeper is `null`.
const MAX_SCHEMA_DEPTH: usize = 8;
/// Target size of one streamed fragment of a tool call's JSON input.
const FRAGMENT_BYTES: usize = 16;
/// `x-mock-tool-call` value meaning "the first declared tool".
const FIRST_TOOL: &str = "*";
/// Placeholder for strings and schemas without a usable type.
const PLACEHOLDER_STRING: &str = "mock";

/// What the prompt of a request amounts to: its token count and the texts of
/// its last user message (which the default reply echoes).
#[derive(Debug, Default)]
pub(crate) struct Prompt<'a> {
    tokens: u64,
    last_user: Vec<&'a str>,
}

impl<'a> Prompt<'a> {
    /// Counts one message given the texts of its text parts; `from_user`
    /// marks user turns, the last of which the default reply echoes.
    pub(crate) fn add_message(&mut self, from_user: bool, texts: Vec<&'a str>) {
        let words: usize = texts.iter().map(|text| text.split_whitespace().count()).sum();
        self.tokens = self
            .tokens
            .saturating_add(words as u64)
            .saturating_add(TOKENS_PER_MESSAGE);
        if from_user {
            self.last_user = texts;
        }
    }
}

/// A tool the request declares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToolDecl<'a> {
    pub(crate) name: &'a str,
    /// The JSON schema of its input, when declared.
    pub(crate) schema: Option<&'a Value>,
}

/// The tool call an answer makes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Always a JSON object.
    pub(crate) input: Value,
}

impl ToolCall {
    /// The input as compact JSON, the text streamed in fragments.
    pub(crate) fn input_json(&self) -> String {
        self.input.to_string()
    }
}

/// Why the answer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    EndTurn,
    MaxTokens,
    ToolUse,
}

/// Token usage of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Every prompt token, cached ones included.
    pub(crate) prompt: u64,
    /// Prompt tokens served from the prompt cache (`<= prompt`).
    pub(crate) cached: u64,
    pub(crate) completion: u64,
}

impl Usage {
    /// Prompt tokens not served from the cache.
    pub(crate) fn uncached_prompt(&self) -> u64 {
        self.prompt - self.cached
    }
}

/// Why a request's scripted answer cannot be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanError {
    /// `x-mock-tool-call` names a tool the request does not declare.
    UnknownTool(String),
}

impl PlanError {
    /// The client-facing explanation.
    pub(crate) fn message(&self) -> String {
        match self {
            PlanError::UnknownTool(name) => format!(
                "Invalid mock scripting directive `x-mock-tool-call`: the request declares no tool named {name:?}"
            ),
        }
    }
}

/// The planned answer to one valid request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// The text block; `None` only for a tool call without a scripted reply.
    pub(crate) text: Option<String>,
    pub(crate) tool_call: Option<ToolCall>,
    pub(crate) stop: Stop,
    pub(crate) usage: Usage,
}

impl Answer {
    /// Plans the answer: a scripted tool call, else the (possibly truncated)
    /// reply text. Tool call ids are `tool_id_prefix` plus 24 random hex
    /// digits.
    pub(crate) fn plan(
        prompt: Prompt<'_>,
        directives: &Directives,
        max_tokens: Option<u64>,
        tools: &[ToolDecl<'_>],
        tool_id_prefix: &str,
    ) -> Result<Self, PlanError> {
        let cached = directives.cached_tokens.unwrap_or(0).min(prompt.tokens);
        let usage = |completion: u64| Usage {
            prompt: prompt.tokens,
            cached,
            completion,
        };
        if let Some(wanted) = &directives.tool_call {
            let tool = if wanted == FIRST_TOOL {
                tools.first()
            } else {
                tools.iter().find(|tool| tool.name == wanted)
            };
            let Some(tool) = tool else {
                return Err(PlanError::UnknownTool(wanted.clone()));
            };
            let input = match tool.schema.map(|schema| placeholder(schema, 0)) {
                Some(object @ Value::Object(_)) => object,
                _ => Value::Object(Map::new()),
            };
            let text = directives.reply.clone();
            let text_words = text.as_deref().map_or(0, |text| segments(text).len() as u64);
            let completion = text_words.saturating_add(1).saturating_add(leaves(&input));
            let mut id = uuid::Uuid::new_v4().simple().to_string();
            id.truncate(24);
            return Ok(Self {
                text,
                tool_call: Some(ToolCall {
                    id: format!("{tool_id_prefix}{id}"),
                    name: tool.name.to_owned(),
                    input,
                }),
                stop: Stop::ToolUse,
                usage: usage(completion),
            });
        }

        let reply = match &directives.reply {
            Some(reply) => reply.clone(),
            None => echo_reply(prompt.last_user.iter().copied()),
        };
        let words = segments(&reply);
        let (text, completion, stop) = match max_tokens {
            Some(limit) if limit < words.len() as u64 => {
                // `limit < len` so it fits in usize.
                let kept = usize::try_from(limit).unwrap_or(words.len());
                let text = words[..kept].concat().trim_end().to_owned();
                (text, kept, Stop::MaxTokens)
            }
            _ => {
                let count = words.len();
                (reply, count, Stop::EndTurn)
            }
        };
        Ok(Self {
            text: Some(text),
            tool_call: None,
            stop,
            usage: usage(completion as u64),
        })
    }

    /// The streamed pieces of the text block: one per word, each keeping its
    /// trailing whitespace, so they concatenate back to the text.
    pub(crate) fn text_chunks(&self) -> Vec<&str> {
        self.text.as_deref().map(segments).unwrap_or_default()
    }
}

/// Splits a tool call's JSON input into the fragments a stream sends: at
/// least two when it has two or more characters, at most about 16 bytes each,
/// always on character boundaries.
pub(crate) fn fragments(json: &str) -> Vec<&str> {
    let size = if json.len() <= FRAGMENT_BYTES {
        json.len().div_ceil(2).max(1)
    } else {
        FRAGMENT_BYTES
    };
    let mut pieces = Vec::with_capacity(json.len() / size + 1);
    let mut rest = json;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// A value of the shape `schema` describes: `const`, else the first `enum`
/// value, else the first `anyOf`/`oneOf` branch, else by `type` (matched
/// case-insensitively, as Gemini spells types in capitals): objects get every
/// declared property, arrays one item, strings `"mock"`, integers 1, numbers
/// 1.5, booleans `true`.
fn placeholder(schema: &Value, depth: usize) -> Value {
    if depth > MAX_SCHEMA_DEPTH {
        return Value::Null;
    }
    let Some(schema) = schema.as_object() else {
        return Value::String(PLACEHOLDER_STRING.to_owned());
    };
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|branches| branches.first())
        {
            return placeholder(first, depth + 1);
        }
    }
    let declared = match schema.get("type") {
        Some(Value::String(kind)) => Some(kind.as_str()),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| !kind.eq_ignore_ascii_case("null")),
        _ => None,
    };
    let kind = declared
        .map(str::to_ascii_lowercase)
        .or_else(|| schema.contains_key("properties").then(|| "object".to_owned()));
    match kind.as_deref() {
        Some("object") => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let object = properties
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), placeholder(property, depth + 1)))
                .collect();
            Value::Object(object)
        }
        Some("array") => {
            let item = schema.get("items").map_or_else(
                || Value::String(PLACEHOLDER_STRING.to_owned()),
                |items| placeholder(items, depth + 1),
            );
            Value::Array(vec![item])
        }
        Some("integer") => Value::from(1),
        Some("number") => Value::from(1.5),
        Some("boolean") => Value::Bool(true),
        Some("null") => Value::Null,
        _ => Value::String(PLACEHOLDER_STRING.to_owned()),
    }
}

/// Leaf (non-container) values in `value`.
fn leaves(value: &Value) -> u64 {
    match value {
        Value::Object(map) => map.values().map(leaves).sum(),
        Value::Array(items) => items.iter().map(leaves).sum(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn prompt<'a>(system: Option<&'a str>, user: &'a str) -> Prompt<'a> {
        let mut prompt = Prompt::default();
        if let Some(system) = system {
            prompt.add_message(false, vec![system]);
        }
        prompt.add_message(true, vec![user]);
        prompt
    }

    #[test]
    fn text_answers_follow_the_openai_rules() {
        let answer = Answer::plan(
            prompt(Some("You are helpful."), "Hello there mock world"),
            &Directives::default(),
            None,
            &[],
            "t_",
        )
        .unwrap();
        assert_eq!(answer.text.as_deref(), Some("Mock reply to: Hello there mock world"));
        assert_eq!(answer.stop, Stop::EndTurn);
        // Same numbers as the OpenAI path's `non_streaming_shape_and_usage`.
        assert_eq!(
            answer.usage,
            Usage {
                prompt: 13,
                cached: 0,
                completion: 7
            }
        );
        assert_eq!(answer.text_chunks().concat(), "Mock reply to: Hello there mock world");

        let answer = Answer::plan(prompt(None, "a b c d e"), &Directives::default(), Some(4), &[], "t_").unwrap();
        assert_eq!(answer.text.as_deref(), Some("Mock reply to: a"));
        assert_eq!(answer.stop, Stop::MaxTokens);
        assert_eq!(answer.usage.completion, 4);

        let directives = Directives {
            reply: Some("exact  text".to_owned()),
            cached_tokens: Some(100),
            ..Directives::default()
        };
        let answer = Answer::plan(prompt(None, "x"), &directives, Some(2), &[], "t_").unwrap();
        assert_eq!(answer.text.as_deref(), Some("exact  text"));
        assert_eq!(answer.stop, Stop::EndTurn);
        assert_eq!(answer.usage.cached, 4, "capped at the prompt");
        assert_eq!(answer.usage.uncached_prompt(), 0);
    }

    #[test]
    fn tool_calls_use_schema_placeholders() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "tags": {"type": "array", "items": {"type": "STRING"}},
                "exact": {"type": ["null", "boolean"]},
                "where": {"properties": {"lat": {"type": "number"}}},
            },
        });
        let tools = [
            ToolDecl {
                name: "other",
                schema: None,
            },
            ToolDecl {
                name: "get_weather",
                schema: Some(&schema),
            },
        ];
        let directives = Directives {
            tool_call: Some("get_weather".to_owned()),
            ..Directives::default()
        };
        let answer = Answer::plan(prompt(None, "hi"), &directives, Some(1), &tools, "toolu_").unwrap();
        let call = answer.tool_call.unwrap();
        assert!(call.id.starts_with("toolu_") && call.id.len() == 30, "{}", call.id);
        assert_eq!(call.name, "get_weather");
        assert_eq!(
            call.input,
            json!({"city": "mock", "days": 1, "unit": "celsius", "tags": ["mock"], "exact": true, "where": {"lat": 1.5}})
        );
        assert_eq!(answer.text, None);
        assert_eq!(answer.stop, Stop::ToolUse);
        assert_eq!(answer.usage.completion, 1 + 6);

        let directives = Directives {
            tool_call: Some("*".to_owned()),
            reply: Some("Let me check.".to_owned()),
            ..Directives::default()
        };
        let answer = Answer::plan(prompt(None, "hi"), &directives, None, &tools, "x").unwrap();
        assert_eq!(answer.tool_call.unwrap().input, json!({}));
        assert_eq!(answer.text.as_deref(), Some("Let me check."));
        assert_eq!(answer.usage.completion, 3 + 1);

        let directives = Directives {
            tool_call: Some("nope".to_owned()),
            ..Directives::default()
        };
        let err = Answer::plan(prompt(None, "hi"), &directives, None, &tools, "x").unwrap_err();
        assert!(err.message().contains("\"nope\""), "{}", err.message());
    }

    #[test]
    fn placeholder_depth_is_bounded() {
        let mut schema = json!({"type": "string"});
        for _ in 0..20 {
            schema = json!({"type": "object", "properties": {"next": schema}});
        }
        let value = placeholder(&schema, 0);
        assert!(value.to_string().contains("null"));
    }

    #[test]
    fn fragments_round_trip_and_split_at_least_in_two() {
        assert_eq!(fragments("{}"), ["{", "}"]);
        let json = r#"{"city":"mock","note":"héllo wörld, long enough to need several fragments"}"#;
        let pieces = fragments(json);
        assert!(pieces.len() > 2);
        assert_eq!(pieces.concat(), json);
        assert!(pieces.iter().all(|piece| piece.len() <= FRAGMENT_BYTES + 3));
        assert!(fragments("").is_empty());
    }
}
