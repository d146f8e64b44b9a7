//! Streams: documented transcripts fed in arbitrary pieces.

use oneflow_providers::{AdapterError, ErrorKind, Family, StreamDecoder, StreamItem, Usage};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fixture::{Assembled, CREATED, ID, MODEL, assemble, bytes, decode};
use crate::shape;

/// Every transcript, its family and the byte offset just past its end marker.
fn transcripts() -> Vec<(&'static str, Family, Vec<u8>, usize)> {
    let end = |data: &[u8], marker: &str| {
        let at = data
            .windows(marker.len())
            .rposition(|w| w == marker.as_bytes())
            .expect("marker");
        at + marker.len()
    };
    let mut out = Vec::new();
    for (name, family, marker) in [
        (
            "anthropic/stream_text.sse",
            Family::Anthropic,
            r#"{"type": "message_stop"}"#,
        ),
        (
            "anthropic/stream_tool_use.sse",
            Family::Anthropic,
            r#"{"type":"message_stop"}"#,
        ),
        (
            "anthropic/stream_json_tool.sse",
            Family::Anthropic,
            r#"{"type":"message_stop"}"#,
        ),
        ("gemini/stream_text.sse", Family::Gemini, r#""responseId": "Xb2taJm4"}"#),
        (
            "gemini/stream_function_call.sse",
            Family::Gemini,
            r#""responseId": "fc1"}"#,
        ),
        ("openai/stream_usage.sse", Family::OpenAi, "[DONE]"),
        ("azure/stream_filter.sse", Family::Azure, "[DONE]"),
    ] {
        let data = bytes(name);
        let end = end(&data, marker);
        out.push((name, family, data, end));
    }
    out
}

fn whole(family: Family, data: &[u8]) -> Assembled {
    let items = decode(family, data, &[]).unwrap();
    let a = assemble(&items);
    for c in &a.chunks {
        shape::chunk(c);
    }
    a
}

#[test]
fn anthropic_text_stream() {
    let a = whole(Family::Anthropic, &bytes("anthropic/stream_text.sse"));
    assert_eq!(a.roles, [0], "role once, in the first chunk");
    assert_eq!(a.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(a.text[&0], "Hello! Ünïcödé ✓ 日本語 too.");
    assert_eq!(a.finish, [(0, "stop".to_owned())]);
    assert_eq!(
        a.usage,
        [Usage {
            input_tokens: 125,
            output_tokens: 15,
            cached_input_tokens: 100
        }]
    );
    for c in &a.chunks {
        assert_eq!(c["id"], "chatcmpl-msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
        assert_eq!(c["model"], MODEL);
        assert_eq!(c["created"], CREATED);
    }
    let last = a.chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 125);
    assert_eq!(last["usage"]["completion_tokens"], 15);
}

#[test]
fn anthropic_tool_stream_hides_thinking_and_streams_arguments() {
    let a = whole(Family::Anthropic, &bytes("anthropic/stream_tool_use.sse"));
    assert_eq!(a.text[&0], "Okay, let's check the weather for San Francisco, CA:");
    assert_eq!(a.tool_calls.len(), 2);
    assert_eq!(a.tool_calls[0].0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(a.tool_calls[0].1, "get_weather");
    let args: Value = serde_json::from_str(&a.tool_calls[0].2).unwrap();
    assert_eq!(args, json!({"location": "San Francisco, CA", "unit": "fahrenheit"}));
    assert_eq!(
        a.tool_calls[1],
        ("toolu_02NoArgs".to_owned(), "get_time".to_owned(), "{}".to_owned())
    );
    assert_eq!(a.finish, [(0, "tool_calls".to_owned())]);
    assert_eq!(
        a.usage,
        [Usage {
            input_tokens: 472,
            output_tokens: 89,
            cached_input_tokens: 0
        }]
    );
}

#[test]
fn anthropic_json_tool_stream_is_content() {
    let a = whole(Family::Anthropic, &bytes("anthropic/stream_json_tool.sse"));
    assert!(a.tool_calls.is_empty());
    let content: Value = serde_json::from_str(&a.text[&0]).unwrap();
    assert_eq!(content["elements"][0]["temperature"], 58);
    assert_eq!(a.finish, [(0, "stop".to_owned())]);
    assert_eq!(a.usage[0].output_tokens, 47);
}

#[test]
fn usage_comes_last_exactly_once() {
    for (name, family, data, _) in transcripts() {
        let items = decode(family, &data, &[]).unwrap();
        let usages: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i, StreamItem::Usage(_)))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(usages, [items.len() - 1], "{name}");
        let StreamItem::Chunk(last_chunk) = &items[items.len() - 2] else {
            panic!("{name}")
        };
        let v: Value = serde_json::from_slice(last_chunk).unwrap();
        assert!(
            v["usage"].is_object(),
            "{name}: the usage chunk precedes the Usage item"
        );
    }
}

#[test]
fn anthropic_error_event_is_reported_and_ends_the_stream() {
    let items = decode(Family::Anthropic, &bytes("anthropic/stream_overloaded.sse"), &[]).unwrap();
    let a = assemble(&items);
    assert_eq!(a.text[&0], "Partial");
    assert_eq!(a.errors.len(), 1);
    assert_eq!(a.errors[0].kind, ErrorKind::Overloaded);
    assert_eq!(a.errors[0].code.as_deref(), Some("overloaded_error"));
    assert!(a.usage.is_empty());
    assert!(matches!(items.last(), Some(StreamItem::Error(_))));
}

#[test]
fn gemini_text_stream_bills_the_last_usage_at_the_end() {
    let a = whole(Family::Gemini, &bytes("gemini/stream_text.sse"));
    assert_eq!(a.roles, [0]);
    assert_eq!(a.text[&0], "The quick brown fox — ünïcode ✓ jumps.");
    assert_eq!(a.finish, [(0, "stop".to_owned())]);
    assert_eq!(
        a.usage,
        [Usage {
            input_tokens: 10,
            output_tokens: 11 + 6,
            cached_input_tokens: 4
        }]
    );
    assert!(a.chunks.iter().all(|c| c["id"] == "chatcmpl-Xb2taJm4"));
    assert_eq!(
        a.chunks.last().unwrap()["usage"]["completion_tokens_details"]["reasoning_tokens"],
        6
    );
}

#[test]
fn gemini_function_calls_arrive_whole() {
    let a = whole(Family::Gemini, &bytes("gemini/stream_function_call.sse"));
    assert_eq!(a.text[&0], "Checking both cities.");
    assert_eq!(a.tool_calls.len(), 2);
    assert_eq!(a.tool_calls[0].0, "call_fc1_0");
    assert_eq!(a.tool_calls[1].0, "call_fc1_1");
    assert_eq!(
        serde_json::from_str::<Value>(&a.tool_calls[1].2).unwrap(),
        json!({"location": "Tokyo"})
    );
    assert_eq!(a.thought_signatures, [Some("c2lnbmF0dXJlLTE=".to_owned()), None]);
    assert_eq!(a.finish, [(0, "tool_calls".to_owned())]);
    assert_eq!(a.usage[0].output_tokens, 30);
}

#[test]
fn gemini_error_event() {
    let data = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}],\"role\":\"model\"},\"index\":0}]}\r\n\r\ndata: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";
    let a = assemble(&decode(Family::Gemini, data, &[]).unwrap());
    assert_eq!(a.errors[0].kind, ErrorKind::Overloaded);
    assert_eq!(a.errors[0].message, "The model is overloaded.");
}

#[test]
fn openai_chunks_pass_byte_for_byte() {
    let data = bytes("openai/stream_usage.sse");
    let items = decode(Family::OpenAi, &data, &[]).unwrap();
    let text = String::from_utf8(data).unwrap();
    let expected: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .collect();
    let chunks: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Chunk(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, expected);
    assert_eq!(
        assemble(&items).usage,
        [Usage {
            input_tokens: 9,
            output_tokens: 3,
            cached_input_tokens: 4
        }]
    );
}

#[test]
fn azure_prompt_filter_chunks_are_dropped() {
    let a = whole(Family::Azure, &bytes("azure/stream_filter.sse"));
    assert_eq!(a.chunks.len(), 4);
    assert!(a.chunks.iter().all(|c| c["id"] == "chatcmpl-9Z"));
    assert_eq!(a.text[&0], "Hi there");
    assert_eq!(
        a.usage,
        [Usage {
            input_tokens: 8,
            output_tokens: 2,
            cached_input_tokens: 0
        }]
    );
}

#[test]
fn openai_error_chunk() {
    let data = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\ndata: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"code\":null}}\n\n";
    let a = assemble(&decode(Family::OpenAi, data, &[]).unwrap());
    assert_eq!(a.errors.len(), 1);
    assert_eq!(a.errors[0].kind, ErrorKind::Server);
}

#[test]
fn cut_streams_fail_and_still_tell_the_usage_seen() {
    let data = bytes("anthropic/stream_text.sse");
    let text = String::from_utf8(data.clone()).unwrap();
    let cut = text.find("event: message_stop").unwrap();
    let mut d = StreamDecoder::new(Family::Anthropic, MODEL, ID, CREATED);
    d.feed(&data[..cut]).unwrap();
    assert!(matches!(d.finish(), Err(AdapterError::Protocol(_))));
    assert_eq!(
        d.usage(),
        Some(Usage {
            input_tokens: 125,
            output_tokens: 15,
            cached_input_tokens: 100
        })
    );

    assert!(matches!(
        decode(Family::OpenAi, b"", &[]),
        Err(AdapterError::Protocol(_))
    ));
    assert!(matches!(
        decode(Family::Gemini, b"", &[]),
        Err(AdapterError::Protocol(_))
    ));
}

#[test]
fn garbage_events_are_protocol_errors() {
    for family in [Family::OpenAi, Family::Anthropic, Family::Gemini] {
        let mut d = StreamDecoder::new(family, MODEL, ID, CREATED);
        assert!(
            matches!(d.feed(b"data: {not json\n\n"), Err(AdapterError::Protocol(_))),
            "{family:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any split of the body gives exactly the items of the whole body.
    #[test]
    fn any_split_gives_the_same_items(cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40)) {
        for (name, family, data, _) in transcripts() {
            let offsets: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            let split = decode(family, &data, &offsets).unwrap();
            let whole = decode(family, &data, &[]).unwrap();
            prop_assert_eq!(split, whole, "{}", name);
        }
    }

    /// A body cut anywhere before its end marker is never a clean end.
    #[test]
    fn any_cut_before_the_end_marker_fails(at in any::<prop::sample::Index>(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        for (name, family, data, end) in transcripts() {
            let cut = at.index(end);
            let offsets: Vec<usize> = cuts.iter().map(|i| i.index(cut + 1)).collect();
            let result = decode(family, &data[..cut], &offsets);
            prop_assert!(matches!(result, Err(AdapterError::Protocol(_))), "{} cut at {} gave {:?}", name, cut, result);
        }
    }
}
