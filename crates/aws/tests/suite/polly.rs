//! OpenAI speech request → signed Polly `SynthesizeSpeech`, refusals, the WAV prefix and the
//! error table.

use std::time::{Duration, SystemTime};

use oneflow_audio::generate::synthesize;
use oneflow_audio::{AudioFormat, Codec, SpeechRequest, VoiceMap, inspect};
use oneflow_aws::polly::{SpeechCall, Target, WAV_HEADER_LEN, error_from, speech_request, wav_header};
use oneflow_aws::{AwsError, Credentials};
use serde_json::{Value, json};

use crate::fixture;

fn target() -> Target<'static> {
    Target {
        region: "us-east-1",
        endpoint: None,
    }
}

fn creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn request(json: Value) -> SpeechRequest {
    serde_json::from_value(json).unwrap()
}

fn call(json: Value) -> Result<SpeechCall, AwsError> {
    speech_request(&target(), &request(json), &VoiceMap::default(), &creds(), now())
}

fn body(call: &SpeechCall) -> Value {
    serde_json::from_slice(&call.prepared.body).unwrap()
}

/// The message of an `Invalid` refusal.
fn refusal(json: Value) -> String {
    match call(json) {
        Err(AwsError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn fixtures_translate_exactly() {
    let cases = fixture::json("polly/requests.json");
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let got = call(case["openai"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            body(&got),
            case["polly"],
            "{name}:\n{}",
            serde_json::to_string_pretty(&body(&got)).unwrap()
        );
    }
}

#[test]
fn request_is_signed_for_polly() {
    let got = call(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy"})).unwrap();
    assert_eq!(got.prepared.url, "https://polly.us-east-1.amazonaws.com/v1/speech");
    assert_eq!(got.prepared.headers["content-type"], "application/json");
    assert_eq!(got.prepared.headers["x-amz-date"], "20231114T221320Z");
    let auth = got.prepared.headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/polly/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature="
        ),
        "{auth}"
    );
    assert!(got.prepared.headers["authorization"].is_sensitive());
    assert_eq!(got.format, AudioFormat::Mp3);
    assert_eq!(got.prefix, None);

    let mock = Target {
        region: "eu-west-1",
        endpoint: Some("http://127.0.0.1:9000/"),
    };
    let voices = VoiceMap::default();
    let req = request(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy"}));
    let got = speech_request(&mock, &req, &voices, &creds(), now()).unwrap();
    assert_eq!(got.prepared.url, "http://127.0.0.1:9000/v1/speech");
    assert!(
        got.prepared.headers["authorization"]
            .to_str()
            .unwrap()
            .contains("/eu-west-1/polly/aws4_request")
    );
    let china = Target {
        region: "cn-north-1",
        endpoint: None,
    };
    let got = speech_request(&china, &req, &voices, &creds(), now()).unwrap();
    assert_eq!(got.prepared.url, "https://polly.cn-north-1.amazonaws.com.cn/v1/speech");
    let evil = Target {
        region: "evil.example.com/",
        endpoint: None,
    };
    assert!(speech_request(&evil, &req, &voices, &creds(), now()).is_err());
}

#[test]
fn wav_prefix_plus_polly_pcm_is_a_playable_wav() {
    let got = call(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": "wav"})).unwrap();
    assert_eq!(got.format, AudioFormat::Wav);
    assert_eq!(got.format.content_type(), "audio/wav");
    let prefix = got.prefix.clone().unwrap();
    assert_eq!(prefix.len(), WAV_HEADER_LEN);
    assert_eq!(&prefix[..], &wav_header(16_000)[..]);
    assert_eq!(
        &prefix[4..8],
        &[0xFF; 4],
        "RIFF size left open, as streaming writers do"
    );
    assert_eq!(&prefix[40..44], &[0xFF; 4], "data size left open");

    // What Polly sends for `pcm`: headerless 16-bit mono samples at 16 kHz.
    let polly_pcm = &synthesize(AudioFormat::Wav, Duration::from_millis(750), 16_000).unwrap()[44..];
    let mut played = prefix.to_vec();
    played.extend_from_slice(polly_pcm);
    let info = inspect(played, None).unwrap();
    assert_eq!(info.format, AudioFormat::Wav);
    assert_eq!(info.codec, Codec::Linear16);
    assert_eq!((info.sample_rate, info.channels), (Some(16_000), Some(1)));
    assert_eq!(info.duration, Duration::from_millis(750));
}

#[test]
fn unsupported_formats_are_refused_naming_response_format_and_polly() {
    for format in ["aac", "flac", "pcm"] {
        let message = refusal(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": format}));
        assert!(
            message.contains("`response_format`") && message.contains("Polly") && message.contains(format),
            "{format}: {message}"
        );
    }
    let pcm = refusal(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": "pcm"}));
    assert!(pcm.contains("24 kHz") && pcm.contains("wav"), "{pcm}");
    let err = call(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": "ogg"})).unwrap_err();
    assert_eq!(err.http_status(), 400);
}

#[test]
fn voices_that_polly_cannot_speak_are_refused_naming_voice() {
    let custom = refusal(json!({"model": "tts-1", "input": "Hi.", "voice": {"id": "voice_123"}}));
    assert!(custom.contains("`voice`") && custom.contains("voice_123"), "{custom}");
    for name in ["robot", "en-US-Neural2-F", "MATTHEW", "M"] {
        let message = refusal(json!({"model": "tts-1", "input": "Hi.", "voice": name}));
        assert!(message.contains("`voice`"), "{name}: {message}");
    }
    // A configured voice wins over the pass-through, with its engine and language.
    let overrides: VoiceMap = serde_json::from_value(json!({
        "narrator": {"polly": {"voice_id": "Aditi", "engine": "standard", "language_code": "hi-IN"}}
    }))
    .unwrap();
    let voices = VoiceMap::with_overrides(overrides);
    let req = request(json!({"model": "tts-1", "input": "Namaste.", "voice": "Narrator"}));
    let got = speech_request(&target(), &req, &voices, &creds(), now()).unwrap();
    let b = body(&got);
    assert_eq!(
        (&b["VoiceId"], &b["Engine"], &b["LanguageCode"]),
        (&json!("Aditi"), &json!("standard"), &json!("hi-IN"))
    );
}

#[test]
fn speeds_polly_cannot_reach_are_refused_naming_speed() {
    for speed in [2.5, 4.0] {
        let message = refusal(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy", "speed": speed}));
        assert!(
            message.contains("`speed`") && message.contains("2.0"),
            "{speed}: {message}"
        );
    }
    let message = refusal(json!({"model": "tts-1", "input": "Hi.", "voice": "alloy", "speed": 0.1}));
    assert!(message.contains("`speed`"), "{message}");
}

#[test]
fn input_over_pollys_limits_is_refused_naming_input() {
    // 3,000 characters of plain text are fine; 3,001 are not.
    call(json!({"model": "tts-1", "input": "a".repeat(3000), "voice": "alloy"})).unwrap();
    let message = refusal(json!({"model": "tts-1", "input": "a".repeat(3001), "voice": "alloy"}));
    assert!(message.contains("`input`") && message.contains("3000"), "{message}");
    // Escaping for SSML adds no billed characters but counts towards the 6,000 in all.
    let fits = call(json!({"model": "tts-1", "input": "&".repeat(1100), "voice": "alloy", "speed": 1.25})).unwrap();
    assert_eq!(body(&fits)["TextType"], "ssml");
    let message = refusal(json!({"model": "tts-1", "input": "&".repeat(1200), "voice": "alloy", "speed": 1.25}));
    assert!(message.contains("`input`") && message.contains("6000"), "{message}");
    // OpenAI's own limit is checked first.
    let message = refusal(json!({"model": "tts-1", "input": "a".repeat(4097), "voice": "alloy"}));
    assert!(message.contains("`input`") && message.contains("4096"), "{message}");
}

#[test]
fn polly_errors_map_to_client_statuses() {
    let cases = [
        ("InvalidSsmlException", 400, 400),
        ("TextLengthExceededException", 400, 400),
        ("LanguageNotSupportedException", 400, 400),
        ("EngineNotSupportedException", 400, 400),
        ("InvalidSampleRateException", 400, 400),
        ("ThrottlingException", 400, 429),
        ("ServiceFailureException", 500, 502),
        ("ServiceUnavailableException", 503, 503),
    ];
    for (error_type, upstream, expected) in cases {
        let header = format!("{error_type}:http://internal.amazon.com/coral/com.amazonaws.polly/");
        let (status, code, message) = error_from(upstream, Some(&header), br#"{"message":"nope"}"#);
        assert_eq!((status, code.as_str()), (expected, error_type), "{error_type}");
        assert_eq!(message, "nope");
    }
    let (status, code, _) = error_from(400, None, br#"{"__type":"com.amazonaws.polly#InvalidSsmlException"}"#);
    assert_eq!((status, code.as_str()), (400, "InvalidSsmlException"));
    let (status, code, message) = error_from(504, None, b"<html>timeout</html>");
    assert_eq!((status, code.as_str()), (504, "HttpError"));
    assert!(message.contains("504"), "{message}");
    let secret = br#"{"message":"Signature mismatch; canonical request had x-amz-security-token:SECRET"}"#;
    let (status, _, message) = error_from(403, Some("InvalidSignatureException"), secret);
    assert_eq!(status, 502);
    assert!(!message.contains("SECRET"), "{message}");
}
