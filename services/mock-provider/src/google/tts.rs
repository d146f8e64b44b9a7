//! `POST /v1/text:synthesize`: Google Cloud Text-to-Speech v1.
//!
//! The request is `input` (exactly one of `text` or `ssml`, at most 5000
//! bytes), `voice` (`languageCode` required, `name` optional and then of
//! that language) and `audioConfig` (`audioEncoding` required: `LINEAR16`,
//! `MP3`, `OGG_OPUS`, `MULAW` or `ALAW`; `speakingRate` 0.25–4.0, 0 meaning
//! 1; `pitch` −20–20; `sampleRateHertz` optional, 24 kHz by default). The
//! answer is `{"audioContent": <base64>}` holding real audio of that
//! encoding: `LINEAR16`, `MULAW` and `ALAW` inside a WAV header as Google
//! sends them, MP3, or Opus in Ogg. It lasts as long as the spoken text at
//! the speaking rate (SSML tags do not count). MP3 and Opus come at the
//! supported rate closest to the one asked for (the generator writes MP3 at
//! 16–48 kHz and Opus at 8, 12, 16, 24 or 48 kHz); the WAV encodings take
//! any rate from 8 to 48 kHz. Only `x-mock-*` headers script it.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use oneflow_audio::AudioFormat;
use oneflow_audio::generate::{MAX_SYNTHESIS, speech_duration, synthesize};
use serde_json::{Value, json};

use super::{DIALECT, check_auth, invalid, opt_f64, opt_str, opt_u32, parse_body};
use crate::MockState;
use crate::audio_out::{Law, closest_rate, g711_wav};
use crate::dialect_error::DialectError;
use crate::script::{Directives, injected_failure};
use crate::stats::Counters;

/// Google's limit on the input: 5000 bytes of text or SSML.
const MAX_INPUT_BYTES: usize = 5000;
/// Sample rate when the request names none: most Google voices' own.
const DEFAULT_RATE: u32 = 24_000;

/// `POST /v1/text:synthesize`.
pub(crate) async fn synthesize_speech(
    State(state): State<MockState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let counters = state.counters();
    Counters::bump(&counters.google_tts_requests);
    counters.record_headers(&headers);
    match handle(&state, query.as_deref(), &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// The audio encodings of `audioConfig.audioEncoding` the mock writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Linear16,
    Mp3,
    OggOpus,
    Mulaw,
    Alaw,
}

impl Encoding {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "LINEAR16" => Some(Self::Linear16),
            "MP3" => Some(Self::Mp3),
            "OGG_OPUS" => Some(Self::OggOpus),
            "MULAW" => Some(Self::Mulaw),
            "ALAW" => Some(Self::Alaw),
            _ => None,
        }
    }
}

async fn handle(
    state: &MockState,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, DialectError> {
    check_auth(state, headers, query)?;
    let request = parse_body(body)?;
    let directives = Directives::read(headers, None).map_err(|err| DialectError::script(DIALECT, &err))?;
    let voice = request.get("voice").filter(|voice| voice.is_object());
    let language = match voice {
        Some(voice) => opt_str(voice, "languageCode", "voice")?,
        None => None,
    };
    let name = match voice {
        Some(voice) => opt_str(voice, "name", "voice")?,
        None => None,
    };
    if let Some(model) = name.or(language).filter(|model| !model.is_empty()) {
        state.counters().count_model("google-tts", model);
    }
    if let Some(injection) = injected_failure(state, &directives).await {
        return Err(DialectError::injected(DIALECT, &injection));
    }

    let spoken = spoken_input(&request)?;
    let Some(language) = language.filter(|code| !code.is_empty()) else {
        return Err(invalid("Invalid argument: voice.languageCode is required."));
    };
    if let Some(name) = name.filter(|name| !name.is_empty()) {
        let prefix = name.split('-').take(2).collect::<Vec<_>>().join("-");
        if !prefix.eq_ignore_ascii_case(language) {
            return Err(invalid(format!(
                "Voice '{name}' does not exist for language code '{language}'."
            )));
        }
    }
    let config = request
        .get("audioConfig")
        .filter(|config| config.is_object())
        .ok_or_else(|| invalid("Invalid argument: audioConfig is required."))?;
    let encoding = match opt_str(config, "audioEncoding", "audioConfig")? {
        Some(name) => Encoding::parse(name).ok_or_else(|| {
            invalid(format!(
                "Invalid value at 'audio_config.audio_encoding': '{name}' is not a supported encoding (LINEAR16, MP3, OGG_OPUS, MULAW, ALAW)."
            ))
        })?,
        None => return Err(invalid("Invalid argument: audioConfig.audioEncoding is required.")),
    };
    let rate = match opt_f64(config, "speakingRate", "audioConfig")? {
        None => 1.0,
        Some(0.0) => 1.0,
        Some(rate) if (0.25..=4.0).contains(&rate) => rate,
        Some(rate) => {
            return Err(invalid(format!(
                "audioConfig.speakingRate {rate} is out of range: it must be between 0.25 and 4.0."
            )));
        }
    };
    if let Some(pitch) = opt_f64(config, "pitch", "audioConfig")?
        && !(-20.0..=20.0).contains(&pitch)
    {
        return Err(invalid(format!(
            "audioConfig.pitch {pitch} is out of range: it must be between -20.0 and 20.0."
        )));
    }
    let asked_rate = opt_u32(config, "sampleRateHertz", "audioConfig")?.filter(|rate| *rate != 0);
    if let Some(asked) = asked_rate
        && !(8_000..=48_000).contains(&asked)
    {
        return Err(invalid(format!(
            "audioConfig.sampleRateHertz {asked} is not supported: use 8000 to 48000 Hz."
        )));
    }
    let sample_rate = asked_rate.unwrap_or(DEFAULT_RATE);

    let duration = speech_duration(spoken, rate as f32).min(MAX_SYNTHESIS);
    let audio = tokio::task::spawn_blocking(move || match encoding {
        Encoding::Linear16 => synthesize(AudioFormat::Wav, duration, sample_rate),
        Encoding::Mp3 => synthesize(AudioFormat::Mp3, duration, closest_rate(AudioFormat::Mp3, sample_rate)),
        Encoding::OggOpus => synthesize(
            AudioFormat::Opus,
            duration,
            closest_rate(AudioFormat::Opus, sample_rate),
        ),
        Encoding::Mulaw => g711_wav(duration, sample_rate, Law::Mu),
        Encoding::Alaw => g711_wav(duration, sample_rate, Law::A),
    })
    .await
    .map_err(|err| internal(&err.to_string()))?
    .map_err(|err| internal(&err.to_string()))?;
    state.counters().add_audio_bytes(audio.len());
    Ok(Json(json!({"audioContent": STANDARD.encode(&audio)})).into_response())
}

fn internal(detail: &str) -> DialectError {
    DialectError::new(
        DIALECT,
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("mock provider internal error: {detail}"),
    )
}

/// The number of spoken characters of `input`: its text, or its SSML
/// without the tags. Checks exactly one of the two is given and the limit.
fn spoken_input(request: &Value) -> Result<usize, DialectError> {
    let Some(input) = request.get("input").filter(|input| input.is_object()) else {
        return Err(invalid("Invalid argument: input is required."));
    };
    let text = opt_str(input, "text", "input")?;
    let ssml = opt_str(input, "ssml", "input")?;
    let (source, is_ssml) = match (text, ssml) {
        (Some(text), None) => (text, false),
        (None, Some(ssml)) => (ssml, true),
        (Some(_), Some(_)) => {
            return Err(invalid("Invalid argument: input must set only one of text or ssml."));
        }
        (None, None) => return Err(invalid("Invalid argument: input.text or input.ssml is required.")),
    };
    if source.len() > MAX_INPUT_BYTES {
        return Err(invalid(format!(
            "Either input.text or input.ssml is longer than the limit of {MAX_INPUT_BYTES} bytes."
        )));
    }
    let spoken = if is_ssml {
        let trimmed = source.trim();
        if !(trimmed.starts_with("<speak") && trimmed.ends_with("</speak>")) {
            return Err(invalid("Invalid SSML: the input must be one <speak> element."));
        }
        strip_tags(trimmed)
    } else {
        source.to_owned()
    };
    let chars = spoken.trim().chars().count();
    if chars == 0 {
        return Err(invalid("Invalid argument: the input has no text to speak."));
    }
    Ok(chars)
}

/// The text of markup with its tags removed.
pub(crate) fn strip_tags(markup: &str) -> String {
    let mut out = String::with_capacity(markup.len());
    let mut in_tag = false;
    for c in markup.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use oneflow_audio::{Codec, inspect, sniff};

    use super::*;
    use crate::google::test_util::fetch_token;
    use crate::test_util::{body_json, default_state, post_json, send};

    const TEXT: &str = "The quick brown fox jumped over the lazy dog.";
    const KEY: (&str, &str) = ("x-goog-api-key", "k");

    fn request(encoding: &str) -> Value {
        json!({
            "input": {"text": TEXT},
            "voice": {"languageCode": "en-US", "name": "en-US-Neural2-A"},
            "audioConfig": {"audioEncoding": encoding},
        })
    }

    async fn audio_of(state: &MockState, body: &Value, headers: &[(&str, &str)]) -> Vec<u8> {
        let response = send(state, post_json("/v1/text:synthesize", body, headers)).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let answer = body_json(response).await;
        STANDARD.decode(answer["audioContent"].as_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn every_encoding_is_real_audio_of_the_spoken_length() {
        let state = default_state();
        let token = fetch_token(&state).await;
        let bearer = format!("Bearer {token}");
        let auth = [("authorization", bearer.as_str())];
        let spoken = speech_duration(TEXT.chars().count(), 1.0);
        for (encoding, format, codec, rate) in [
            ("LINEAR16", AudioFormat::Wav, Codec::Linear16, Some(24_000)),
            ("MP3", AudioFormat::Mp3, Codec::Mp3, Some(24_000)),
            ("OGG_OPUS", AudioFormat::Opus, Codec::Opus, Some(24_000)),
            ("MULAW", AudioFormat::Wav, Codec::Mulaw, Some(24_000)),
            ("ALAW", AudioFormat::Wav, Codec::Alaw, Some(24_000)),
        ] {
            let audio = audio_of(&state, &request(encoding), &auth).await;
            assert_eq!(sniff(&audio), Some(format), "{encoding}");
            let info = inspect(audio, None).unwrap();
            assert_eq!(info.codec, codec, "{encoding}");
            assert_eq!(info.sample_rate, rate, "{encoding}");
            assert!(
                info.duration.abs_diff(spoken) <= Duration::from_millis(30),
                "{encoding}: {:?} vs {spoken:?}",
                info.duration
            );
        }
        // The token was fetched once and served every call.
        let stats = state.stats();
        assert_eq!(stats.google_token_requests, 1);
        assert_eq!(stats.google_tts_requests, 5);
        assert_eq!(stats.calls_by_model["google-tts/en-US-Neural2-A"], 5);
    }

    #[tokio::test]
    async fn rate_and_ssml_shape_the_length() {
        let state = default_state();
        let mut body = request("LINEAR16");
        body["audioConfig"]["speakingRate"] = json!(2.0);
        body["audioConfig"]["sampleRateHertz"] = json!(16_000);
        let info = inspect(audio_of(&state, &body, &[KEY]).await, None).unwrap();
        assert_eq!(info.duration, speech_duration(TEXT.chars().count(), 2.0));
        assert_eq!(info.sample_rate, Some(16_000));

        let body = json!({
            "input": {"ssml": format!("<speak>{TEXT}<break time=\"1s\"/></speak>")},
            "voice": {"languageCode": "en-US"},
            "audioConfig": {"audioEncoding": "MP3", "sampleRateHertz": 8000},
        });
        let response = send(&state, post_json("/v1/text:synthesize?key=abc", &body, &[])).await;
        let audio = STANDARD
            .decode(body_json(response).await["audioContent"].as_str().unwrap())
            .unwrap();
        let info = inspect(audio, None).unwrap();
        assert_eq!(info.format, AudioFormat::Mp3);
        assert_eq!(info.sample_rate, Some(16_000), "8 kHz MP3 falls back to 16 kHz");
        assert!(state.stats().calls_by_model.contains_key("google-tts/en-US"));
    }

    #[tokio::test]
    async fn credentials_are_required() {
        let state = default_state();
        let cases: [&[(&str, &str)]; 4] = [
            &[],
            &[("authorization", "Bearer sk-123")],
            &[("x-goog-api-key", "")],
            &[("authorization", "Basic x")],
        ];
        for headers in cases {
            let response = send(&state, post_json("/v1/text:synthesize", &request("MP3"), headers)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
            let body = body_json(response).await;
            assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
            assert_eq!(body["error"]["code"], 401);
        }
        // A token without the cloud-platform scope is a 403.
        let key = state.google_token_key();
        let narrow = crate::google::token::mint(key, crate::google::token::now_unix() + 60, false);
        let bearer = format!("Bearer {narrow}");
        let response = send(
            &state,
            post_json("/v1/text:synthesize", &request("MP3"), &[("authorization", &bearer)]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(body_json(response).await["error"]["status"], "PERMISSION_DENIED");
        // An expired token is a 401.
        let expired = crate::google::token::mint(key, crate::google::token::now_unix() - 1, true);
        let bearer = format!("Bearer {expired}");
        let response = send(
            &state,
            post_json("/v1/text:synthesize", &request("MP3"), &[("authorization", &bearer)]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(state.stats().google_tts_requests, 6);
    }

    #[tokio::test]
    async fn invalid_requests_are_invalid_argument() {
        let state = default_state();
        let with = |path: &[&str], value: Value| {
            let mut body = request("MP3");
            let mut at = &mut body;
            for key in &path[..path.len() - 1] {
                at = &mut at[*key];
            }
            at[path[path.len() - 1]] = value;
            body
        };
        let cases = [
            with(&["input"], json!({})),
            with(&["input"], json!({"text": "a", "ssml": "<speak>a</speak>"})),
            with(&["input", "text"], json!("x".repeat(5001))),
            with(&["input", "text"], json!("  ")),
            with(&["input"], json!({"ssml": "no markup"})),
            with(&["voice"], json!({"name": "en-US-Neural2-A"})),
            with(&["voice", "name"], json!("de-DE-Wavenet-A")),
            with(&["audioConfig"], json!({})),
            with(&["audioConfig", "audioEncoding"], json!("AAC")),
            with(&["audioConfig", "audioEncoding"], json!("AUDIO_ENCODING_UNSPECIFIED")),
            with(&["audioConfig", "speakingRate"], json!(5.0)),
            with(&["audioConfig", "speakingRate"], json!("fast")),
            with(&["audioConfig", "pitch"], json!(30)),
            with(&["audioConfig", "sampleRateHertz"], json!(4000)),
            json!([1]),
        ];
        for body in cases {
            let response = send(&state, post_json("/v1/text:synthesize", &body, &[KEY])).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let answer = body_json(response).await;
            assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{body}");
            assert!(answer["error"]["message"].is_string());
        }
    }

    #[tokio::test]
    async fn failure_knobs_answer_in_googles_shape() {
        let state = MockState::new(crate::MockConfig {
            error_rate: 1.0,
            error_status: 503,
            ..crate::MockConfig::default()
        });
        let response = send(&state, post_json("/v1/text:synthesize", &request("MP3"), &[KEY])).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-mock-injected"], "true");
        assert_eq!(body_json(response).await["error"]["status"], "UNAVAILABLE");
        let state = default_state();
        let response = send(
            &state,
            post_json("/v1/text:synthesize", &request("MP3"), &[KEY, ("x-mock-status", "429")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body_json(response).await["error"]["status"], "RESOURCE_EXHAUSTED");
        let stats = state.stats();
        assert_eq!(stats.errors_injected, 1);
        assert_eq!(stats.calls_by_model["google-tts/en-US-Neural2-A"], 1);
        assert_eq!(stats.audio_bytes_served, 0);
    }
}
