//! OpenAI transcription → signed Transcribe streaming body (frames, chained signatures checked
//! against AWS's documented string to sign), refusals, and the transcript stream decoder.

use std::time::{Duration, SystemTime};

use oneflow_audio::generate::synthesize;
use oneflow_audio::{AudioFormat, AudioInfo, Task, TranscriptFormat, TranscriptionRequest, inspect};
use oneflow_aws::eventstream::{Decoder, HeaderValue, Message, decode_one};
use oneflow_aws::transcribe::{Options, Target, TranscribeCall, TranscriptDecoder, error_from, transcription_request};
use oneflow_aws::{AwsError, Credentials};
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::fixture;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-west-2";
const STREAM: &str = "transcribe/stream.json";

fn target() -> Target<'static> {
    Target {
        region: REGION,
        endpoint: None,
    }
}

fn creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", SECRET, None)
}

/// 2023-11-14T22:13:20Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn transcription(fields: &[(&str, &str)]) -> TranscriptionRequest {
    let mut all = vec![("model", "whisper-1")];
    all.extend_from_slice(fields);
    TranscriptionRequest::from_fields(Task::Transcribe, all).unwrap()
}

fn upload(format: AudioFormat, millis: u64, rate: u32) -> (Vec<u8>, AudioInfo) {
    let bytes = synthesize(format, Duration::from_millis(millis), rate).unwrap();
    let info = inspect(bytes.clone(), None).unwrap();
    (bytes, info)
}

fn call_for(bytes: &[u8], info: &AudioInfo, request: &TranscriptionRequest) -> Result<TranscribeCall, AwsError> {
    transcription_request(&target(), request, bytes, info, &Options::default(), &creds(), now())
}

/// The message of an `Invalid` refusal.
fn refusal(result: Result<TranscribeCall, AwsError>) -> String {
    match result {
        Err(AwsError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// The envelope frames of a request body.
fn envelopes(call: &TranscribeCall) -> Vec<Message> {
    let mut decoder = Decoder::new();
    let frames = decoder.feed(&call.prepared.body).unwrap();
    assert!(decoder.is_idle(), "the body ends on a frame boundary");
    frames
}

/// The audio events inside the envelopes (all but the last, empty one).
fn audio_events(call: &TranscribeCall) -> Vec<Message> {
    let frames = envelopes(call);
    let (last, events) = frames.split_last().unwrap();
    assert!(last.payload.is_empty(), "the stream ends with an empty signed frame");
    events.iter().map(|e| decode_one(&e.payload).unwrap()).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC (RFC 2104) over SHA-256, written out so the check does not share code with the signer.
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(data).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn signing_key(date: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{SECRET}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, REGION.as_bytes());
    let k_service = hmac(&k_region, b"transcribe");
    hmac(&k_service, b"aws4_request")
}

/// A frame signature computed from AWS's documented string to sign:
/// `AWS4-HMAC-SHA256-PAYLOAD \n date \n scope \n prior \n sha256(:date header) \n sha256(payload)`.
fn expected_signature(prior: &str, date_millis: i64, payload: &[u8]) -> String {
    let mut date_header = vec![5u8];
    date_header.extend_from_slice(b":date");
    date_header.push(8); // timestamp
    date_header.extend_from_slice(&date_millis.to_be_bytes());
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n20231114T221320Z\n20231114/{REGION}/transcribe/aws4_request\n{prior}\n{}\n{}",
        hex::encode(Sha256::digest(&date_header)),
        hex::encode(Sha256::digest(payload))
    );
    hex::encode(hmac(&signing_key("20231114"), string_to_sign.as_bytes()))
}

#[test]
fn request_headers_are_signed_for_transcribe_streaming() {
    let (bytes, info) = upload(AudioFormat::Flac, 1200, 16_000);
    let call = call_for(&bytes, &info, &transcription(&[("language", "fr")])).unwrap();
    assert_eq!(
        call.prepared.url,
        "https://transcribestreaming.us-west-2.amazonaws.com/stream-transcription"
    );
    let h = &call.prepared.headers;
    assert_eq!(h["content-type"], "application/vnd.amazon.eventstream");
    assert_eq!(
        h["x-amz-target"],
        "com.amazonaws.transcribe.Transcribe.StartStreamTranscription"
    );
    assert_eq!(h["x-amz-content-sha256"], "STREAMING-AWS4-HMAC-SHA256-EVENTS");
    assert_eq!(h["x-amzn-transcribe-language-code"], "fr-FR");
    assert_eq!(h["x-amzn-transcribe-media-encoding"], "flac");
    assert_eq!(h["x-amzn-transcribe-sample-rate"], "16000");
    assert_eq!(h["x-amz-date"], "20231114T221320Z");
    let auth = h["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/transcribe/aws4_request, \
             SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target;\
             x-amzn-transcribe-language-code;x-amzn-transcribe-media-encoding;x-amzn-transcribe-sample-rate, Signature="
        ),
        "{auth}"
    );
    assert_eq!((call.media_encoding, call.sample_rate), ("flac", 16_000));
    assert_eq!(call.language_code, "fr-FR");

    let mock = Target {
        region: REGION,
        endpoint: Some("http://127.0.0.1:9001/"),
    };
    let req = transcription(&[]);
    let call = transcription_request(&mock, &req, &bytes, &info, &Options::default(), &creds(), now()).unwrap();
    assert_eq!(call.prepared.url, "http://127.0.0.1:9001/stream-transcription");
    assert_eq!(call.prepared.headers["x-amzn-transcribe-language-code"], "en-US");
}

#[test]
fn flac_frames_carry_the_file_and_every_signature_chains() {
    let (bytes, info) = upload(AudioFormat::Flac, 1500, 16_000);
    let call = call_for(&bytes, &info, &transcription(&[])).unwrap();
    let frames = envelopes(&call);
    assert_eq!(frames.len(), call.audio_events + 1);
    assert!(call.audio_events > 1, "a 1.5 s file goes in several events");

    let auth = call.prepared.headers["authorization"].to_str().unwrap();
    let mut prior = auth.rsplit("Signature=").next().unwrap().to_owned();
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame.headers.len(), 2, "frame {i}: only :date and :chunk-signature");
        let Some(HeaderValue::Timestamp(millis)) = frame.header(":date") else {
            panic!("frame {i} has no :date timestamp");
        };
        assert_eq!(*millis, 1_700_000_000_000);
        let Some(HeaderValue::ByteArray(signature)) = frame.header(":chunk-signature") else {
            panic!("frame {i} has no :chunk-signature");
        };
        assert_eq!(signature.len(), 32);
        let expected = expected_signature(&prior, *millis, &frame.payload);
        assert_eq!(hex::encode(signature), expected, "frame {i}");
        prior = expected;
    }

    let events = audio_events(&call);
    for event in &events {
        assert_eq!(event.message_type(), Some("event"));
        assert_eq!(event.event_type(), Some("AudioEvent"));
        assert_eq!(event.content_type(), Some("application/octet-stream"));
    }
    let audio: Vec<u8> = events.iter().flat_map(|e| e.payload.to_vec()).collect();
    assert_eq!(audio, bytes);
}

#[test]
fn wav_goes_as_pcm_without_its_header_in_100_ms_events() {
    let (wav, _) = upload(AudioFormat::Wav, 1050, 16_000);
    // A LIST chunk before `data`, as some encoders write: a fixed 44-byte cut would send it.
    let mut with_list = wav[..36].to_vec();
    with_list.extend_from_slice(b"LIST\x04\0\0\0INFO");
    with_list.extend_from_slice(&wav[36..]);
    let info = inspect(with_list.clone(), None).unwrap();
    let call = call_for(&with_list, &info, &transcription(&[("language", "de")])).unwrap();
    assert_eq!((call.media_encoding, call.sample_rate), ("pcm", 16_000));
    assert_eq!(call.prepared.headers["x-amzn-transcribe-media-encoding"], "pcm");
    assert_eq!(call.prepared.headers["x-amzn-transcribe-language-code"], "de-DE");
    let events = audio_events(&call);
    let sizes: Vec<usize> = events.iter().map(|e| e.payload.len()).collect();
    assert_eq!(
        sizes,
        [vec![3200; 10], vec![1600]].concat(),
        "16 kHz × 2 bytes × 100 ms"
    );
    let audio: Vec<u8> = events.iter().flat_map(|e| e.payload.to_vec()).collect();
    assert_eq!(audio, wav[44..]);
}

#[test]
fn ogg_opus_goes_whole_with_its_input_rate() {
    let (opus, info) = upload(AudioFormat::Opus, 800, 24_000);
    let call = call_for(&opus, &info, &transcription(&[])).unwrap();
    assert_eq!((call.media_encoding, call.sample_rate), ("ogg-opus", 24_000));
    let audio: Vec<u8> = audio_events(&call).iter().flat_map(|e| e.payload.to_vec()).collect();
    assert_eq!(audio, opus);
}

#[test]
fn the_default_language_is_configurable() {
    let (bytes, info) = upload(AudioFormat::Flac, 300, 16_000);
    let options = Options {
        default_language: "de-DE".into(),
    };
    let call = transcription_request(&target(), &transcription(&[]), &bytes, &info, &options, &creds(), now()).unwrap();
    assert_eq!(call.language_code, "de-DE");
    let options: Options = serde_json::from_value(json!({})).unwrap();
    assert_eq!(options.default_language, "en-US");
    assert!(serde_json::from_value::<Options>(json!({"default_langauge": "x"})).is_err());
}

#[test]
fn formats_transcribe_cannot_stream_are_refused_naming_file() {
    for (format, rate) in [(AudioFormat::Mp3, 24_000), (AudioFormat::Aac, 24_000)] {
        let (bytes, info) = upload(format, 500, rate);
        let message = refusal(call_for(&bytes, &info, &transcription(&[])));
        assert!(
            message.contains("`file`") && message.contains("FLAC, Ogg Opus or 16-bit PCM WAV"),
            "{format}: {message}"
        );
    }
    // Float samples in a WAV.
    let (mut wav, _) = upload(AudioFormat::Wav, 500, 16_000);
    wav[20..22].copy_from_slice(&3u16.to_le_bytes());
    let info = inspect(wav.clone(), None).unwrap();
    let message = refusal(call_for(&wav, &info, &transcription(&[])));
    assert!(
        message.contains("`file`") && message.contains("16-bit PCM"),
        "{message}"
    );
    // Stereo.
    let (mut wav, _) = upload(AudioFormat::Wav, 500, 16_000);
    wav[22..24].copy_from_slice(&2u16.to_le_bytes());
    wav[32..34].copy_from_slice(&4u16.to_le_bytes());
    let info = inspect(wav.clone(), None).unwrap();
    let message = refusal(call_for(&wav, &info, &transcription(&[])));
    assert!(
        message.contains("`file`") && message.contains("2 channels"),
        "{message}"
    );
    // A rate outside 8–48 kHz.
    let (wav, info) = upload(AudioFormat::Wav, 200, 96_000);
    let message = refusal(call_for(&wav, &info, &transcription(&[])));
    assert!(message.contains("`file`") && message.contains("96000 Hz"), "{message}");
}

#[test]
fn translations_are_refused() {
    let (bytes, info) = upload(AudioFormat::Flac, 300, 16_000);
    let translate = TranscriptionRequest::from_fields(Task::Translate, [("model", "whisper-1")]).unwrap();
    let message = refusal(call_for(&bytes, &info, &translate));
    assert!(
        message.contains("`model`") && message.contains("translate"),
        "{message}"
    );
}

// --- the response stream ---

fn transcript_wire() -> Vec<u8> {
    fixture::stream_frames(STREAM).concat()
}

fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    Message::new(
        vec![
            (":message-type".into(), HeaderValue::from("exception")),
            (":exception-type".into(), HeaderValue::from(exception_type)),
            (":content-type".into(), HeaderValue::from("application/json")),
        ],
        serde_json::to_vec(&json!({ "Message": message })).unwrap(),
    )
    .encode()
    .unwrap()
}

/// Feeds `wire` in pieces of the given sizes (cycled), then finishes.
fn decode(wire: &[u8], sizes: &[usize]) -> Result<oneflow_audio::Transcript, AwsError> {
    let mut decoder = TranscriptDecoder::new("en-US", Duration::from_millis(2600));
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        decoder.feed(&rest[..n])?;
        rest = &rest[n..];
        i += 1;
    }
    decoder.finish()
}

fn assert_fixture_transcript(t: &oneflow_audio::Transcript) {
    assert_eq!(t.task, Task::Transcribe);
    assert_eq!(t.language, "en-US");
    assert_eq!(t.duration, Duration::from_millis(2600));
    assert_eq!(t.text, "Hello, world. How are you?");
    let segments: Vec<_> = t
        .segments
        .iter()
        .map(|s| (s.start.as_millis(), s.end.as_millis(), s.text.as_str()))
        .collect();
    assert_eq!(
        segments,
        vec![(120, 1050, "Hello, world."), (1300, 2200, "How are you?")]
    );
    assert!((t.segments[0].confidence.unwrap() - 0.98).abs() < 1e-6);
    assert!((t.segments[1].confidence.unwrap() - 0.8).abs() < 1e-6);
    let words: Vec<_> = t
        .words
        .iter()
        .map(|w| (w.word.as_str(), w.start.as_millis(), w.end.as_millis()))
        .collect();
    assert_eq!(
        words,
        vec![
            ("Hello", 120, 610),
            ("world", 620, 1000),
            ("How", 1300, 1500),
            ("are", 1500, 1800),
            ("you", 1800, 2100)
        ]
    );
}

#[test]
fn final_results_become_segments_words_and_text() {
    let t = decode(&transcript_wire(), &[usize::MAX]).unwrap();
    assert_fixture_transcript(&t);
    let srt = t.render(TranscriptFormat::Srt, Default::default(), 0.0).body;
    assert!(
        srt.starts_with(
            "1\n00:00:00,120 --> 00:00:01,050\nHello, world.\n\n2\n00:00:01,300 --> 00:00:02,200\nHow are you?"
        ),
        "{srt}"
    );
}

#[test]
fn transcript_in_odd_pieces() {
    for sizes in [&[1][..], &[3, 7, 2], &[13, 1, 64], &[11, 200, 5, 1]] {
        assert_fixture_transcript(&decode(&transcript_wire(), sizes).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn transcript_under_any_split(sizes in proptest::collection::vec(1usize..150, 1..12)) {
        let t = decode(&transcript_wire(), &sizes).unwrap();
        assert_fixture_transcript(&t);
    }
}

#[test]
fn an_empty_stream_is_an_empty_transcript() {
    let t = decode(&[], &[1]).unwrap();
    assert_eq!((t.text.as_str(), t.segments.len(), t.words.len()), ("", 0, 0));
}

#[test]
fn exceptions_in_the_stream_carry_the_status_to_report() {
    for (exception_type, status) in [
        ("BadRequestException", 400),
        ("LimitExceededException", 429),
        ("InternalFailureException", 502),
        ("ConflictException", 503),
        ("ServiceUnavailableException", 503),
    ] {
        let frames = fixture::stream_frames(STREAM);
        let mut wire = frames[..3].concat();
        wire.extend(exception(exception_type, "Your request timed out."));
        wire.extend(frames[3..].concat());
        let err = decode(&wire, &[17]).unwrap_err();
        let AwsError::Upstream {
            status: got,
            code,
            message,
        } = &err
        else {
            panic!("{exception_type}: expected Upstream, got {err:?}");
        };
        assert_eq!((*got, code.as_str()), (status, exception_type));
        assert_eq!(message, "Your request timed out.");
        assert_eq!(err.http_status(), status);
    }

    // The error sticks: later input and the end of the body report it again.
    let mut decoder = TranscriptDecoder::new("en-US", Duration::from_secs(1));
    let first = decoder
        .feed(&exception("LimitExceededException", "too long"))
        .unwrap_err();
    assert_eq!(first.http_status(), 429);
    assert_eq!(decoder.feed(&transcript_wire()).unwrap_err().http_status(), 429);
    assert_eq!(decoder.finish().unwrap_err().http_status(), 429);
}

#[test]
fn a_body_cut_inside_a_frame_is_a_protocol_error() {
    let wire = transcript_wire();
    let err = decode(&wire[..wire.len() - 5], &[9]).unwrap_err();
    assert!(matches!(err, AwsError::Protocol(_)), "{err:?}");
    assert_eq!(err.http_status(), 502);
    assert!(err.to_string().contains("inside an event frame"), "{err}");
}

#[test]
fn corrupt_frames_and_unreadable_events_are_protocol_errors() {
    let mut wire = transcript_wire();
    let at = wire.len() / 2;
    wire[at] ^= 0x40;
    assert!(matches!(decode(&wire, &[64]), Err(AwsError::Protocol(_))));

    let mut wire = transcript_wire();
    wire.extend(
        Message::new(
            vec![
                (":message-type".into(), "event".into()),
                (":event-type".into(), "TranscriptEvent".into()),
            ],
            &b"{\"Transcript\": 7}"[..],
        )
        .encode()
        .unwrap(),
    );
    assert!(matches!(decode(&wire, &[usize::MAX]), Err(AwsError::Protocol(_))));
}

#[test]
fn http_failures_map_like_the_stream_exceptions() {
    for (error_type, upstream, expected) in [
        ("BadRequestException", 400, 400),
        ("LimitExceededException", 429, 429),
        ("ConflictException", 409, 503),
        ("InternalFailureException", 500, 502),
        ("ServiceUnavailableException", 503, 503),
        ("SomethingNewException", 418, 418),
    ] {
        let (status, code, message) = error_from(upstream, Some(error_type), br#"{"Message":"boom"}"#);
        assert_eq!(
            (status, code.as_str(), message.as_str()),
            (expected, error_type, "boom")
        );
    }
    let (status, code, message) = error_from(403, Some("UnrecognizedClientException"), br#"{"message":"x"}"#);
    assert_eq!((status, code.as_str()), (502, "UnrecognizedClientException"));
    assert!(message.contains("credentials"), "{message}");
    let (status, code, _) = error_from(200, None, b"");
    assert_eq!((status, code.as_str()), (502, "HttpError"));
}
