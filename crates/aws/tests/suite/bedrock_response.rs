//! Converse response → OpenAI `chat.completion`, and error mapping.

use oneflow_aws::bedrock::{Target, Usage, chat_response, error_from};
use serde_json::{Value, json};

use crate::fixture;

const TARGET: Target<'static> = Target {
    region: "us-east-1",
    endpoint: None,
    model_id: "amazon.nova-lite-v1:0",
    default_max_tokens: 0,
};

fn translate(name: &str) -> (Value, Usage) {
    let body = fixture::bytes(&format!("responses/{name}.json"));
    let (bytes, usage) = chat_response(&TARGET, &body, "chatcmpl-123", 1_700_000_000).unwrap();
    (serde_json::from_slice(&bytes).unwrap(), usage)
}

/// The fields every `chat.completion` carries, per OpenAI's schema.
fn assert_openai_shape(c: &Value) {
    assert_eq!(c["id"], "chatcmpl-123");
    assert_eq!(c["object"], "chat.completion");
    assert_eq!(c["created"], 1_700_000_000);
    assert_eq!(c["model"], "amazon.nova-lite-v1:0");
    let choices = c["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["message"]["role"], "assistant");
    assert!(choices[0].as_object().unwrap().contains_key("logprobs"));
    assert!(choices[0]["logprobs"].is_null());
    assert!(choices[0]["finish_reason"].is_string());
    let usage = &c["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(usage["prompt_tokens_details"]["cached_tokens"].is_u64());
}

#[test]
fn text_response() {
    let (c, usage) = translate("text");
    assert_openai_shape(&c);
    assert_eq!(c["choices"][0]["message"]["content"], "Rome is the capital.");
    assert!(c["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(c["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        c["usage"],
        json!({"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27, "prompt_tokens_details": {"cached_tokens": 0}})
    );
    assert_eq!(
        usage,
        Usage {
            input_tokens: 21,
            output_tokens: 6,
            cached_input_tokens: 0
        }
    );
}

#[test]
fn tool_use_response() {
    let (c, usage) = translate("tool_use");
    assert_openai_shape(&c);
    let message = &c["choices"][0]["message"];
    assert!(message["content"].is_null());
    assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Oslo", "units": "metric"}));
    assert_eq!(calls[1]["id"], "tooluse_Rome0000000000000000");
    assert_eq!(usage.output_tokens, 57);
}

#[test]
fn max_tokens_with_cache_counts_cached_tokens_as_prompt() {
    let (c, usage) = translate("cached_max_tokens");
    assert_openai_shape(&c);
    assert_eq!(c["choices"][0]["finish_reason"], "length");
    assert_eq!(c["choices"][0]["message"]["content"], "The document says");
    assert_eq!(c["usage"]["prompt_tokens"], 12 + 1800 + 248);
    assert_eq!(c["usage"]["prompt_tokens_details"]["cached_tokens"], 1800);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 2060,
            output_tokens: 64,
            cached_input_tokens: 1800
        }
    );
}

#[test]
fn guardrail_is_a_content_filter() {
    let (c, _) = translate("guardrail");
    assert_openai_shape(&c);
    assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn json_mode_answer_is_content() {
    let (c, _) = translate("json_mode");
    assert_openai_shape(&c);
    assert_eq!(c["choices"][0]["finish_reason"], "stop");
    assert!(c["choices"][0]["message"].get("tool_calls").is_none());
    let answer: Value = serde_json::from_str(c["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(answer, json!({"name": "Ada Lovelace", "born": 1815}));
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ] {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
            "stopReason": stop,
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
        });
        let (bytes, _) = chat_response(&TARGET, &serde_json::to_vec(&body).unwrap(), "id", 0).unwrap();
        let c: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(c["choices"][0]["finish_reason"], finish, "{stop}");
    }
}

#[test]
fn unreadable_upstream_bodies_are_protocol_errors() {
    assert!(matches!(
        chat_response(&TARGET, b"<html>", "id", 0),
        Err(oneflow_aws::AwsError::Protocol(_))
    ));
}

#[test]
fn errors_map_by_error_type_header() {
    let cases = [
        ("ThrottlingException", 429),
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("ResourceNotFoundException", 404),
        ("ModelTimeoutException", 503),
        ("ServiceUnavailableException", 503),
        ("InternalServerException", 500),
        ("ModelNotReadyException", 503),
    ];
    for (error_type, expected) in cases {
        // The upstream status is deliberately wrong: the error type decides.
        let (status, code, message) = error_from(418, Some(error_type), br#"{"message":"Please wait."}"#);
        assert_eq!(status, expected, "{error_type}");
        assert_eq!(code, error_type);
        assert_eq!(message, "Please wait.");
    }
}
