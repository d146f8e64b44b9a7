//! Gemini generateContent and batchEmbedContents: request and response translation.

use base64::Engine;
use oneflow_providers::{
    AdapterError, EmbeddingFormat, Family, Usage, chat_request, chat_response, embeddings_request, embeddings_response,
    embeddings_response_as,
};
use serde_json::{Value, json};

use crate::fixture::{bytes, json as fixture_json, target};
use crate::shape;

const BASE: &str = "https://generativelanguage.googleapis.com";
const MODEL: &str = "gemini-2.5-flash";

fn request(body: &Value) -> Result<Value, AdapterError> {
    let p = chat_request(
        Family::Gemini,
        &target(BASE, MODEL),
        &serde_json::to_vec(body).unwrap(),
        false,
    )?;
    Ok(serde_json::from_slice(&p.body).unwrap())
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[test]
fn conversation_with_system_images_tools_and_results() {
    let body = bytes("openai/request_conversation.json");
    let p = chat_request(Family::Gemini, &target(BASE, MODEL), &body, false).unwrap();
    assert_eq!(
        p.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(p.headers["x-goog-api-key"], "test-key-123");
    assert!(p.headers["x-goog-api-key"].is_sensitive());
    let v: Value = serde_json::from_slice(&p.body).unwrap();

    assert_eq!(
        v["systemInstruction"],
        json!({"parts": [{"text": "You are a weather assistant."}, {"text": "Answer briefly."}]})
    );
    let contents = v["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[0]["role"], "user");
    assert_eq!(contents[0]["parts"][1]["inlineData"]["mimeType"], "image/png");
    assert!(
        contents[0]["parts"][1]["inlineData"]["data"]
            .as_str()
            .unwrap()
            .starts_with("iVBORw0KGgo")
    );
    assert_eq!(
        contents[0]["parts"][2],
        json!({"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/photos/harbour.webp"}})
    );
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"],
        json!([
            {"text": "Let me check both."},
            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"location": "Tokyo"}}, "thoughtSignature": "c2lnLXRva3lv"}
        ])
    );
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18, "sky": "cloudy"}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "sunny, 25C"}}},
            {"text": "Thanks! Summarise."}
        ])
    );
    let decl = &v["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "get_weather");
    assert_eq!(decl["parametersJsonSchema"]["additionalProperties"], false);
    assert_eq!(v["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
    let g = &v["generationConfig"];
    assert_eq!(g["temperature"], 1.4);
    assert_eq!(g["topP"], 0.9);
    assert_eq!(g["maxOutputTokens"], 512);
    assert_eq!(g["stopSequences"], json!(["\n\nEND"]));
    assert_eq!(g["seed"], 7);
    assert_eq!(g["frequencyPenalty"], 0.5);
    for dropped in ["model", "messages", "logit_bias", "user", "stream"] {
        assert!(v.get(dropped).is_none(), "{dropped} must not reach Gemini");
    }
}

#[test]
fn streams_use_the_sse_endpoint() {
    let p = chat_request(
        Family::Gemini,
        &target(BASE, "models/gemini-2.0-flash"),
        br#"{"messages":[{"role":"user","content":"hi"}]}"#,
        true,
    )
    .unwrap();
    assert_eq!(
        p.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
}

#[test]
fn json_modes_and_candidate_count() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false});
    let v = request(&json!({"messages": user("x"), "n": 2,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}))
    .unwrap();
    assert_eq!(v["generationConfig"]["responseMimeType"], "application/json");
    assert_eq!(v["generationConfig"]["responseJsonSchema"], schema);
    assert_eq!(v["generationConfig"]["candidateCount"], 2);
    let v = request(&json!({"messages": user("x"), "response_format": {"type": "json_object"}})).unwrap();
    assert_eq!(v["generationConfig"], json!({"responseMimeType": "application/json"}));
    let v = request(&json!({"messages": user("x")})).unwrap();
    assert!(v.get("generationConfig").is_none());
}

#[test]
fn tool_choice_mapping() {
    let tools =
        json!([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "g"}}]);
    let config = |c: Value| request(&json!({"messages": user("x"), "tools": tools, "tool_choice": c})).unwrap();
    assert_eq!(
        config(json!("none"))["toolConfig"]["functionCallingConfig"],
        json!({"mode": "NONE"})
    );
    assert_eq!(
        config(json!("required"))["toolConfig"]["functionCallingConfig"],
        json!({"mode": "ANY"})
    );
    assert_eq!(
        config(json!({"type": "function", "function": {"name": "g"}}))["toolConfig"]["functionCallingConfig"],
        json!({"mode": "ANY", "allowedFunctionNames": ["g"]})
    );
    let allowed = config(
        json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "f"}}]}}),
    );
    assert_eq!(allowed["tools"][0]["functionDeclarations"], json!([{"name": "f"}]));
    assert_eq!(allowed["toolConfig"]["functionCallingConfig"], json!({"mode": "AUTO"}));
}

#[test]
fn tool_results_must_answer_an_earlier_call() {
    let err = request(&json!({"messages": [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "call_missing", "content": "42"}
    ]}))
    .unwrap_err();
    assert!(matches!(err, AdapterError::Invalid(m) if m.starts_with("messages[1].tool_call_id:")));
}

fn response(fixture: &str) -> (Value, Usage) {
    let (body, usage) = chat_response(Family::Gemini, &target(BASE, MODEL), &bytes(fixture), "chatcmpl-hint").unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    shape::completion(&v);
    (v, usage)
}

#[test]
fn text_answer_without_thoughts_and_with_thinking_billed_as_output() {
    let (v, usage) = response("gemini/response_text.json");
    assert_eq!(v["id"], "chatcmpl-mAitaNvqHoSxz7IPrYSQwAE");
    assert_eq!(v["model"], MODEL);
    assert_eq!(v["choices"][0]["message"]["content"], "AI learns patterns from data.");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        usage,
        Usage {
            input_tokens: 120,
            output_tokens: 7 + 33,
            cached_input_tokens: 100
        }
    );
    assert_eq!(v["usage"]["completion_tokens_details"]["reasoning_tokens"], 33);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
}

#[test]
fn function_calls_get_ids_and_carry_thought_signatures() {
    let (v, usage) = response("gemini/response_function_call.json");
    assert_eq!(v["id"], "chatcmpl-hint", "no responseId: the hint");
    let m = &v["choices"][0]["message"];
    assert!(m["content"].is_null());
    let calls = m["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["id"], "call_hint_0");
    assert_eq!(calls[1]["id"], "call_hint_1");
    assert_eq!(calls[0]["function"]["arguments"], r#"{"location":"Boston, MA"}"#);
    assert_eq!(
        calls[0]["extra_content"]["google"]["thought_signature"],
        "CiQBVKhc7vB0dC2Tp1lKc8b6ZbYQ=="
    );
    assert!(calls[1].get("extra_content").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(usage.input_tokens, 60);

    // The client sends the calls back: signatures and names round-trip.
    let next = json!({"messages": [
        {"role": "user", "content": "weather?"},
        m,
        {"role": "tool", "tool_call_id": "call_hint_0", "content": "{\"t\": 3}"},
        {"role": "tool", "tool_call_id": "call_hint_1", "content": "noon"}
    ]});
    let req = request(&next).unwrap();
    assert_eq!(
        req["contents"][1]["parts"][0]["thoughtSignature"],
        "CiQBVKhc7vB0dC2Tp1lKc8b6ZbYQ=="
    );
    assert_eq!(req["contents"][2]["parts"][1]["functionResponse"]["name"], "get_time");
}

#[test]
fn several_candidates_and_blocked_prompts() {
    let (v, _) = response("gemini/response_two_candidates.json");
    assert_eq!(v["choices"][1]["index"], 1);
    assert_eq!(v["choices"][1]["message"]["content"], "Blue, because");
    assert_eq!(v["choices"][1]["finish_reason"], "length");
    let (v, usage) = response("gemini/response_blocked.json");
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert!(v["choices"][0]["message"]["content"].is_null());
    assert_eq!(usage.input_tokens, 9);
    assert!(matches!(
        chat_response(Family::Gemini, &target(BASE, MODEL), b"{}", "h"),
        Err(AdapterError::Protocol(_))
    ));
}

#[test]
fn embeddings_request_per_input() {
    let t = target(BASE, "gemini-embedding-001");
    let p = embeddings_request(
        Family::Gemini,
        &t,
        br#"{"model":"emb","input":["first","second"],"dimensions":768}"#,
    )
    .unwrap();
    assert_eq!(
        p.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    let v: Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(
        v,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first"}]}, "outputDimensionality": 768},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]}, "outputDimensionality": 768}
        ]})
    );
    let p = embeddings_request(Family::Gemini, &t, br#"{"model":"emb","input":"one"}"#).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&p.body).unwrap()["requests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in [
        &br#"{"input":[1212,318]}"#[..],
        br#"{"input":[[1,2]]}"#,
        br#"{"input":[]}"#,
        br#"{"model":"m"}"#,
    ] {
        let err = embeddings_request(Family::Gemini, &t, bad).unwrap_err();
        assert!(matches!(err, AdapterError::Invalid(m) if m.starts_with("input:")));
    }
}

#[test]
fn embeddings_response_as_floats_and_base64() {
    let t = target(BASE, "gemini-embedding-001");
    let (body, usage) = embeddings_response(Family::Gemini, &t, &bytes("gemini/embeddings_response.json")).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "gemini-embedding-001");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][1]["object"], "embedding");
    assert_eq!(
        v["data"][1]["embedding"],
        fixture_json("gemini/embeddings_response.json")["embeddings"][1]["values"]
    );
    assert_eq!(v["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
    assert_eq!(usage, Usage::default());

    let (body, _) = embeddings_response_as(
        Family::Gemini,
        &t,
        &bytes("gemini/embeddings_response.json"),
        EmbeddingFormat::Base64,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v["data"][1]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = raw
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(floats, [-0.25, 0.125, 0.0, 1.0]);
}
