//! Anthropic Messages API: request and response translation.

use oneflow_providers::{AdapterError, Family, Target, Usage, chat_request, chat_response, embeddings_request};
use serde_json::{Value, json};

use crate::fixture::{bytes, target};
use crate::shape;

const BASE: &str = "https://api.anthropic.com";
const MODEL: &str = "claude-sonnet-4-5-20250929";

fn request(body: &Value) -> Result<Value, AdapterError> {
    let p = chat_request(
        Family::Anthropic,
        &target(BASE, MODEL),
        &serde_json::to_vec(body).unwrap(),
        false,
    )?;
    Ok(serde_json::from_slice(&p.body).unwrap())
}

fn invalid(body: Value) -> String {
    match request(&body) {
        Err(AdapterError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[test]
fn conversation_with_system_images_tools_and_results() {
    let p = chat_request(
        Family::Anthropic,
        &target(BASE, MODEL),
        &bytes("openai/request_conversation.json"),
        true,
    )
    .unwrap();
    assert_eq!(p.url, "https://api.anthropic.com/v1/messages");
    assert_eq!(p.headers["x-api-key"], "test-key-123");
    assert!(p.headers["x-api-key"].is_sensitive());
    assert_eq!(p.headers["anthropic-version"], "2023-06-01");
    let v: Value = serde_json::from_slice(&p.body).unwrap();

    assert_eq!(v["model"], MODEL);
    assert_eq!(v["max_tokens"], 512);
    assert_eq!(v["stream"], true);
    assert_eq!(
        v["system"],
        json!([
            {"type": "text", "text": "You are a weather assistant."},
            {"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}
        ])
    );
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        3,
        "user, assistant, then tool results merged with the next user turn"
    );
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(
        messages[0]["content"][0],
        json!({"type": "text", "text": "What is the weather where this photo was taken, and in Tokyo?"})
    );
    assert_eq!(messages[0]["content"][1]["source"]["type"], "base64");
    assert_eq!(messages[0]["content"][1]["source"]["media_type"], "image/png");
    assert!(
        messages[0]["content"][1]["source"]["data"]
            .as_str()
            .unwrap()
            .starts_with("iVBORw0KGgo")
    );
    assert_eq!(
        messages[0]["content"][2],
        json!({"type": "image", "source": {"type": "url", "url": "https://example.com/photos/harbour.webp"}})
    );

    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["content"],
        json!([
            {"type": "text", "text": "Let me check both."},
            {"type": "tool_use", "id": "call_paris", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "call_tokyo", "name": "get_weather", "input": {"location": "Tokyo"}}
        ])
    );
    assert_eq!(messages[2]["role"], "user");
    assert_eq!(
        messages[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "call_paris", "content": "{\"temp_c\": 18, \"sky\": \"cloudy\"}"},
            {"type": "tool_result", "tool_use_id": "call_tokyo", "content": "sunny, 25C"},
            {"type": "text", "text": "Thanks! Summarise."}
        ])
    );

    assert_eq!(v["tools"][0]["name"], "get_weather");
    assert_eq!(v["tools"][0]["description"], "Current weather for a city.");
    assert_eq!(v["tools"][0]["input_schema"]["required"], json!(["location"]));
    assert_eq!(
        v["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        v["temperature"], 1.0,
        "OpenAI's 0..2 range is clamped to Anthropic's 0..1"
    );
    assert!(v.get("top_p").is_none(), "recent models refuse temperature with top_p");
    assert_eq!(v["stop_sequences"], json!(["\n\nEND"]));
    assert_eq!(v["metadata"], json!({"user_id": "user-42"}));
    for dropped in [
        "seed",
        "frequency_penalty",
        "logit_bias",
        "parallel_tool_calls",
        "user",
        "stop",
        "tool_calls",
    ] {
        assert!(v.get(dropped).is_none(), "{dropped} must not reach Anthropic");
    }
}

#[test]
fn api_version_overrides_the_anthropic_version_header() {
    let t = Target {
        api_version: Some("2023-01-01"),
        api_key: None,
        ..target("https://proxy.example/anthropic/", MODEL)
    };
    let p = chat_request(
        Family::Anthropic,
        &t,
        br#"{"messages":[{"role":"user","content":"hi"}]}"#,
        false,
    )
    .unwrap();
    assert_eq!(p.headers["anthropic-version"], "2023-01-01");
    assert!(p.headers.get("x-api-key").is_none());
    assert_eq!(p.url, "https://proxy.example/anthropic/v1/messages");
}

#[test]
fn top_p_alone_is_kept() {
    let v = request(&json!({"messages": user("hi"), "top_p": 0.5})).unwrap();
    assert_eq!(v["top_p"], 0.5);
    assert!(v.get("temperature").is_none());
}

#[test]
fn max_tokens_comes_from_the_client_or_the_deployment_default() {
    assert_eq!(
        request(&json!({"messages": user("hi"), "max_tokens": 77})).unwrap()["max_tokens"],
        77
    );
    assert_eq!(request(&json!({"messages": user("hi")})).unwrap()["max_tokens"], 1024);
    let t = Target {
        default_max_tokens: 0,
        ..target(BASE, MODEL)
    };
    let err = chat_request(
        Family::Anthropic,
        &t,
        &serde_json::to_vec(&json!({"messages": user("hi")})).unwrap(),
        false,
    );
    assert!(matches!(err, Err(AdapterError::Invalid(m)) if m.starts_with("max_tokens:")));
    assert!(invalid(json!({"messages": user("hi"), "max_tokens": 0})).starts_with("max_tokens:"));
}

#[test]
fn what_anthropic_cannot_do_is_refused_naming_the_field() {
    assert!(invalid(json!({"messages": user("hi"), "n": 2})).starts_with("n:"));
    assert!(invalid(json!({"messages": user("hi"), "logprobs": true})).starts_with("logprobs:"));
    assert!(invalid(json!({"messages": user("hi"), "modalities": ["text", "audio"]})).starts_with("modalities:"));
    let m = invalid(json!({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]}));
    assert!(m.starts_with("messages[0].content[0]:"), "{m}");
    let m = invalid(
        json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,SUkqAA=="}}]}]}),
    );
    assert!(
        m.starts_with("messages[1].content[1]:") && m.contains("image/tiff"),
        "{m}"
    );
    assert!(
        invalid(json!({"messages": user("hi"), "tools": [{"type": "custom", "custom": {"name": "x"}}]}))
            .starts_with("tools[0].type:")
    );
    // Sampling hints are dropped, not refused.
    assert!(
        request(&json!({"messages": user("hi"), "seed": 1, "presence_penalty": 1.0, "n": 1, "logprobs": false}))
            .is_ok()
    );
}

#[test]
fn tool_choice_mapping() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                      {"type": "function", "function": {"name": "g"}}]);
    let choice = |c: Value| request(&json!({"messages": user("hi"), "tools": tools, "tool_choice": c})).unwrap();
    assert_eq!(choice(json!("none"))["tool_choice"], json!({"type": "none"}));
    assert_eq!(choice(json!("required"))["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        choice(json!({"type": "function", "function": {"name": "g"}}))["tool_choice"],
        json!({"type": "tool", "name": "g"})
    );
    let allowed = choice(
        json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "g"}}]}}),
    );
    assert_eq!(allowed["tool_choice"], json!({"type": "any"}));
    assert_eq!(allowed["tools"].as_array().unwrap().len(), 1);
    assert_eq!(
        allowed["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {}}),
        "a tool without parameters gets an empty object schema"
    );
    // No tools: no tool_choice either.
    assert!(
        request(&json!({"messages": user("hi"), "tool_choice": "auto"}))
            .unwrap()
            .get("tool_choice")
            .is_none()
    );
}

#[test]
fn json_schema_becomes_a_forced_tool() {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]});
    let rf = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}});
    let v = request(&json!({"messages": user("Ada, 36"), "response_format": rf})).unwrap();
    assert_eq!(v["tools"].as_array().unwrap().len(), 1);
    assert_eq!(v["tools"][0]["name"], "oneflow_json_response");
    assert_eq!(v["tools"][0]["input_schema"], schema);
    assert_eq!(
        v["tool_choice"],
        json!({"type": "tool", "name": "oneflow_json_response"})
    );

    let v = request(&json!({"messages": user("x"), "response_format": {"type": "json_object"}})).unwrap();
    assert_eq!(v["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(v["tool_choice"]["name"], "oneflow_json_response");

    // With client tools the model must call one of them or answer in JSON.
    let v = request(&json!({"messages": user("x"), "response_format": rf,
        "tools": [{"type": "function", "function": {"name": "lookup"}}]}))
    .unwrap();
    assert_eq!(v["tools"].as_array().unwrap().len(), 2);
    assert_eq!(v["tool_choice"], json!({"type": "any"}));

    let m = invalid(
        json!({"messages": user("x"), "tools": [{"type": "function", "function": {"name": "oneflow_json_response"}}]}),
    );
    assert!(m.starts_with("tools[0].function.name:"), "{m}");
    let m = invalid(
        json!({"messages": user("x"), "response_format": {"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "array"}}}}),
    );
    assert!(m.starts_with("response_format.json_schema.schema:"), "{m}");
}

fn response(fixture: &str) -> (Value, Usage) {
    let (body, usage) = chat_response(
        Family::Anthropic,
        &target(BASE, "claude-sonnet-4-5"),
        &bytes(fixture),
        "chatcmpl-hint",
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    shape::completion(&v);
    (v, usage)
}

#[test]
fn text_answer() {
    let (v, usage) = response("anthropic/message_text.json");
    assert_eq!(v["id"], "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(v["model"], "claude-sonnet-4-5", "the deployment's upstream model");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello! How can I help you today?"
    );
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        usage,
        Usage {
            input_tokens: 12,
            output_tokens: 9,
            cached_input_tokens: 0
        }
    );
    assert_eq!(v["usage"]["total_tokens"], 21);
}

#[test]
fn tool_use_answer() {
    let (v, usage) = response("anthropic/message_tool_use.json");
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "I'll look up the weather in Paris.");
    let calls = m["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris, France", "unit": "celsius"}));
    assert_eq!(calls[1]["function"]["arguments"], "{}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(usage.output_tokens, 97);
}

#[test]
fn cache_reads_and_writes_are_inside_prompt_tokens() {
    let (v, usage) = response("anthropic/message_cached.json");
    assert_eq!(
        usage,
        Usage {
            input_tokens: 21 + 188 + 1800,
            output_tokens: 50,
            cached_input_tokens: 1800
        }
    );
    assert_eq!(v["usage"]["prompt_tokens"], 2009);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 1800);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cache_write_tokens"], 188);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
}

#[test]
fn json_tool_answer_becomes_content() {
    let (v, _) = response("anthropic/message_json_tool.json");
    let m = &v["choices"][0]["message"];
    let content: Value = serde_json::from_str(m["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"name": "Ada", "age": 36}));
    assert!(m.get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[test]
fn unreadable_answers_and_embeddings() {
    let t = target(BASE, MODEL);
    assert!(matches!(
        chat_response(Family::Anthropic, &t, b"{\"type\":\"message\"}", "h"),
        Err(AdapterError::Protocol(_))
    ));
    assert!(matches!(
        chat_response(Family::Anthropic, &t, b"", "h"),
        Err(AdapterError::Protocol(_))
    ));
    let err = embeddings_request(Family::Anthropic, &t, br#"{"input":"x","model":"m"}"#).unwrap_err();
    assert!(matches!(err, AdapterError::Invalid(m) if m.contains("no embeddings")));
}
