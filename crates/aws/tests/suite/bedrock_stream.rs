//! ConverseStream transcript → `chat.completion.chunk`s, usage and clean/unclean ends.

use oneflow_aws::bedrock::{StreamDecoder, StreamItem, Usage};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fixture;

const TRANSCRIPT: &str = "streams/tool_use_cached.json";

fn transcript() -> Vec<u8> {
    fixture::stream_frames(TRANSCRIPT).concat()
}

/// Feeds `wire` in pieces of the given sizes (cycled), then finishes.
fn run(wire: &[u8], sizes: &[usize]) -> (Vec<StreamItem>, Result<Vec<StreamItem>, oneflow_aws::AwsError>) {
    let mut decoder = StreamDecoder::new("anthropic.claude-3-5-haiku", "chatcmpl-s1", 1_700_000_000);
    let mut items = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        items.extend(decoder.feed(&rest[..n]).unwrap());
        rest = &rest[n..];
        i += 1;
    }
    let finished = decoder.finish();
    (items, finished)
}

fn chunks(items: &[StreamItem]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|item| match item {
            StreamItem::Chunk(bytes) => Some(serde_json::from_slice(bytes).unwrap()),
            _ => None,
        })
        .collect()
}

struct Summary {
    text: String,
    /// `(id, name, arguments)` per tool-call index.
    tools: Vec<(String, String, String)>,
    finish: Vec<String>,
    usage: Vec<Usage>,
}

fn summarise(items: &[StreamItem]) -> Summary {
    let mut summary = Summary {
        text: String::new(),
        tools: Vec::new(),
        finish: Vec::new(),
        usage: Vec::new(),
    };
    for chunk in chunks(items) {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "chatcmpl-s1");
        assert_eq!(chunk["created"], 1_700_000_000);
        assert_eq!(chunk["model"], "anthropic.claude-3-5-haiku");
        let choice = &chunk["choices"][0];
        assert_eq!(choice["index"], 0);
        if let Some(text) = choice["delta"]["content"].as_str() {
            summary.text.push_str(text);
        }
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if index == summary.tools.len() {
                summary.tools.push((
                    call["id"].as_str().unwrap().to_owned(),
                    call["function"]["name"].as_str().unwrap().to_owned(),
                    String::new(),
                ));
            }
            summary.tools[index]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap());
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            summary.finish.push(finish.to_owned());
        }
    }
    summary.usage = items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Usage(u) => Some(*u),
            _ => None,
        })
        .collect();
    summary
}

fn assert_complete_transcript(items: &[StreamItem]) {
    let s = summarise(items);
    assert_eq!(s.text, "Let me check the weather — ☔ in Oslo.");
    assert_eq!(s.tools.len(), 2);
    assert_eq!(
        (s.tools[0].0.as_str(), s.tools[0].1.as_str()),
        ("tooluse_oslo", "get_weather")
    );
    let args: Value = serde_json::from_str(&s.tools[0].2).unwrap();
    assert_eq!(args, json!({"city": "Oslo", "units": "metric"}));
    assert_eq!(
        (s.tools[1].0.as_str(), s.tools[1].1.as_str()),
        ("tooluse_rome", "get_time")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&s.tools[1].2).unwrap(),
        json!({"tz": "Europe/Rome"})
    );
    assert_eq!(s.finish, vec!["tool_calls"]);
    assert_eq!(
        s.usage,
        vec![Usage {
            input_tokens: 25 + 1200,
            output_tokens: 71,
            cached_input_tokens: 1200
        }]
    );
    // Usage comes last, after the chunk carrying finish_reason.
    assert!(matches!(items.last(), Some(StreamItem::Usage(_))));
    let first = &chunks(items)[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
}

#[test]
fn whole_transcript_at_once() {
    let (items, finished) = run(&transcript(), &[usize::MAX]);
    assert_complete_transcript(&items);
    assert_eq!(finished.unwrap(), vec![]);
}

#[test]
fn transcript_in_odd_pieces() {
    for sizes in [&[1][..], &[3, 7, 2], &[13, 1, 64], &[11, 200, 5, 1]] {
        let (items, finished) = run(&transcript(), sizes);
        assert_complete_transcript(&items);
        assert!(finished.is_ok(), "{sizes:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn transcript_under_any_split(sizes in proptest::collection::vec(1usize..120, 1..12)) {
        let (items, finished) = run(&transcript(), &sizes);
        assert_complete_transcript(&items);
        prop_assert!(finished.is_ok());
    }
}

#[test]
fn cut_before_message_stop_is_an_error() {
    let frames = fixture::stream_frames(TRANSCRIPT);
    let stop = frames.len() - 2; // messageStop, then metadata
    let (items, finished) = run(&frames[..stop].concat(), &[17]);
    assert!(summarise(&items).finish.is_empty());
    let err = finished.unwrap_err();
    assert!(err.to_string().contains("messageStop"), "{err}");
    assert_eq!(err.http_status(), 502);
}

#[test]
fn cut_before_metadata_is_an_error() {
    let frames = fixture::stream_frames(TRANSCRIPT);
    let (items, finished) = run(&frames[..frames.len() - 1].concat(), &[5]);
    assert_eq!(summarise(&items).finish, vec!["tool_calls"]);
    assert!(finished.unwrap_err().to_string().contains("usage"));
}

#[test]
fn cut_inside_a_frame_is_an_error() {
    let wire = transcript();
    let (_, finished) = run(&wire[..wire.len() - 4], &[9]);
    assert!(finished.unwrap_err().to_string().contains("inside an event frame"));
}

#[test]
fn exceptions_become_error_items() {
    for (exception, status) in [
        ("throttlingException", 429),
        ("validationException", 400),
        ("internalServerException", 500),
        ("serviceUnavailableException", 503),
        ("modelStreamErrorException", 502),
    ] {
        let frames = fixture::stream_frames(TRANSCRIPT);
        let mut wire = frames[..3].concat();
        wire.extend(fixture::exception(exception, "Too many tokens, please wait."));
        // Anything after the exception is ignored, not translated.
        wire.extend(frames[3..].concat());
        let (items, finished) = run(&wire, &[10]);
        let errors: Vec<_> = items.iter().filter(|i| matches!(i, StreamItem::Error { .. })).collect();
        assert_eq!(errors.len(), 1, "{exception}");
        let StreamItem::Error {
            status: got,
            code,
            message,
        } = errors[0]
        else {
            unreachable!()
        };
        assert_eq!(*got, status, "{exception}");
        let mut expected_code = exception.to_owned();
        expected_code[..1].make_ascii_uppercase();
        assert_eq!(code, &expected_code);
        assert_eq!(message, "Too many tokens, please wait.");
        assert!(
            matches!(items.last(), Some(StreamItem::Error { .. })),
            "{exception}: nothing after the error"
        );
        assert!(summarise(&items).usage.is_empty());
        // Reported once, as the item; finish does not report it again.
        assert_eq!(finished.unwrap(), vec![]);
    }
}

#[test]
fn corrupt_frame_is_an_error() {
    let mut wire = transcript();
    let at = wire.len() / 2;
    wire[at] ^= 0x10;
    let mut decoder = StreamDecoder::new("m", "id", 0);
    assert!(decoder.feed(&wire).is_err());
    // Broken for good: neither more input nor the end of the body can make it look clean.
    assert!(
        decoder
            .feed(&fixture::event("messageStop", &json!({"stopReason": "end_turn"})))
            .is_err()
    );
    assert!(decoder.finish().is_err());
}

#[test]
fn unreadable_event_json_breaks_the_stream() {
    let mut wire = fixture::stream_frames(TRANSCRIPT).concat();
    wire.extend(
        oneflow_aws::eventstream::Message::new(
            vec![
                (":event-type".into(), "contentBlockDelta".into()),
                (":message-type".into(), "event".into()),
            ],
            &b"{not json"[..],
        )
        .encode()
        .unwrap(),
    );
    let mut decoder = StreamDecoder::new("m", "id", 0);
    assert!(decoder.feed(&wire).is_err());
    assert!(decoder.finish().is_err());
}

#[test]
fn usage_chunk_has_no_choices() {
    let decoder = StreamDecoder::new("m", "chatcmpl-u", 5);
    let chunk: Value = serde_json::from_slice(&decoder.usage_chunk(&Usage {
        input_tokens: 10,
        output_tokens: 2,
        cached_input_tokens: 4,
    }))
    .unwrap();
    assert_eq!(chunk["choices"], json!([]));
    assert_eq!(
        chunk["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "prompt_tokens_details": {"cached_tokens": 4}})
    );
}
