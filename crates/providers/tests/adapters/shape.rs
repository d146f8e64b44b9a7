//! Checks that outputs have the shape OpenAI's spec requires
//! (`CreateChatCompletionResponse`, `CreateChatCompletionStreamResponse`).

use serde_json::Value;

const FINISH: [&str; 5] = ["stop", "length", "tool_calls", "content_filter", "function_call"];

fn usage(u: &Value, details_required: bool) {
    let p = u["prompt_tokens"].as_u64().expect("usage.prompt_tokens");
    let c = u["completion_tokens"].as_u64().expect("usage.completion_tokens");
    assert_eq!(u["total_tokens"].as_u64(), Some(p + c), "total = prompt + completion");
    if details_required || u.get("prompt_tokens_details").is_some() {
        assert!(
            u["prompt_tokens_details"]["cached_tokens"].is_u64(),
            "prompt_tokens_details.cached_tokens"
        );
    }
}

/// Asserts `v` is a valid `chat.completion` object.
pub fn completion(v: &Value) {
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()), "id");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].is_i64(), "created");
    assert!(v["model"].is_string(), "model");
    let choices = v["choices"].as_array().expect("choices");
    assert!(!choices.is_empty());
    for c in choices {
        assert!(c["index"].is_u64(), "choice.index");
        assert!(
            c.as_object().unwrap().contains_key("logprobs") && c["logprobs"].is_null(),
            "logprobs: null"
        );
        assert!(FINISH.contains(&c["finish_reason"].as_str().expect("finish_reason")));
        let m = &c["message"];
        assert_eq!(m["role"], "assistant");
        let obj = m.as_object().unwrap();
        assert!(obj.contains_key("content") && (m["content"].is_string() || m["content"].is_null()));
        assert!(obj.contains_key("refusal"));
        if let Some(calls) = m.get("tool_calls") {
            for t in calls.as_array().expect("tool_calls array") {
                assert!(t["id"].as_str().is_some_and(|s| !s.is_empty()), "tool_call.id");
                assert_eq!(t["type"], "function");
                assert!(t["function"]["name"].is_string());
                let args = t["function"]["arguments"].as_str().expect("arguments is a string");
                let parsed: Value = serde_json::from_str(args).expect("arguments is JSON");
                assert!(parsed.is_object());
            }
        }
    }
    usage(&v["usage"], true);
}

/// Asserts `v` is a valid `chat.completion.chunk` object.
pub fn chunk(v: &Value) {
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()), "id");
    assert_eq!(v["object"], "chat.completion.chunk");
    assert!(v["created"].is_i64());
    assert!(v["model"].is_string());
    for c in v["choices"].as_array().expect("choices") {
        assert!(c["index"].is_u64());
        assert!(c["delta"].is_object());
        let f = &c["finish_reason"];
        assert!(
            f.is_null() || FINISH.contains(&f.as_str().unwrap()),
            "finish_reason {f}"
        );
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        // Upstream chunks pass through as sent: details are optional there.
        usage(u, false);
    }
}
