//! Audio through the whole chain in the one-process mode: speech in every
//! format (the bytes are a valid file of that format), transcriptions and
//! translations of real audio in every response format, bad uploads refused
//! by their bytes, and both billed (characters, seconds of audio).
use serde_json::{Value, json};

use crate::client::Api;

fn form(audio: Vec<u8>, name: &str, model: &str, response_format: Option<&str>) -> reqwest::multipart::Form {
    let mut f = reqwest::multipart::Form::new().text("model", model.to_owned()).part(
        "file",
        reqwest::multipart::Part::bytes(audio).file_name(name.to_owned()),
    );
    if let Some(rf) = response_format {
        f = f.text("response_format", rf.to_owned());
    }
    f
}

#[tokio::test]
async fn speech_and_transcription_through_every_service_and_billed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = format!("data_dir={}", data.display());
    let svc = oneflow_test_support::spawn("oneflow", &["--listen", "127.0.0.1:0", "--set", &data_arg], &[]).await;
    let key = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let api = Api::new(svc.url(), key.clone());

    for (format, expected) in [
        ("mp3", oneflow_audio::AudioFormat::Mp3),
        ("opus", oneflow_audio::AudioFormat::Opus),
        ("aac", oneflow_audio::AudioFormat::Aac),
        ("flac", oneflow_audio::AudioFormat::Flac),
        ("wav", oneflow_audio::AudioFormat::Wav),
    ] {
        let resp = api
            .post(
                "/v1/audio/speech",
                &json!({ "model": "mock-tts", "input": "Hello from the audio test.", "voice": "alloy", "response_format": format }),
            )
            .await;
        assert_eq!(resp.status(), 200, "{format}");
        assert_eq!(resp.headers()["content-type"], expected.content_type(), "{format}");
        assert_eq!(resp.headers()["x-oneflow-provider"], "mock");
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(oneflow_audio::sniff(&bytes), Some(expected), "{format}");
        assert!(
            oneflow_audio::duration(bytes.clone(), Some(expected))
                .unwrap()
                .as_millis()
                > 100,
            "{format}"
        );
    }
    // Bad speech requests: OpenAI-shaped 400s and 404s.
    let resp = api
        .post(
            "/v1/audio/speech",
            &json!({ "model": "mock-tts", "input": "x", "voice": "alloy", "response_format": "ogg-vorbis" }),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let resp = api
        .post(
            "/v1/audio/speech",
            &json!({ "model": "no-such-tts", "input": "x", "voice": "alloy" }),
        )
        .await;
    assert_eq!(resp.status(), 404);

    // Transcription of real audio, in every response format.
    let wav = oneflow_audio::generate::synthesize(
        oneflow_audio::AudioFormat::Wav,
        std::time::Duration::from_millis(2500),
        24_000,
    )
    .unwrap();
    let post_form = |path: &'static str, f: reqwest::multipart::Form| {
        api.http
            .post(format!("{}{path}", api.base))
            .bearer_auth(&key)
            .multipart(f)
            .send()
    };
    let resp = post_form(
        "/v1/audio/transcriptions",
        form(wav.clone(), "speech.wav", "mock-whisper", None),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(!body["text"].as_str().unwrap().is_empty(), "{body}");
    for (rf, needle) in [
        ("text", ""),
        ("srt", "-->"),
        ("vtt", "WEBVTT"),
        ("verbose_json", "\"segments\""),
    ] {
        let resp = post_form(
            "/v1/audio/transcriptions",
            form(wav.clone(), "speech.wav", "mock-whisper", Some(rf)),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200, "{rf}");
        let text = resp.text().await.unwrap();
        assert!(!text.is_empty() && text.contains(needle), "{rf}: {text}");
    }
    let resp = post_form(
        "/v1/audio/translations",
        form(wav.clone(), "speech.wav", "mock-whisper", None),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    // Both timestamp granularities, as repeated form fields.
    let f = form(wav.clone(), "speech.wav", "mock-whisper", Some("verbose_json"))
        .text("timestamp_granularities[]", "word")
        .text("timestamp_granularities[]", "segment");
    let resp = post_form("/v1/audio/transcriptions", f).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["words"].is_array() && body["segments"].is_array(), "{body}");
    // A file well over gRPC's default 4 MiB message (two minutes of WAV, 5.8 MB).
    let long = oneflow_audio::generate::synthesize(
        oneflow_audio::AudioFormat::Wav,
        std::time::Duration::from_secs(120),
        24_000,
    )
    .unwrap();
    assert!(long.len() > 5 * 1024 * 1024);
    let resp = post_form("/v1/audio/transcriptions", form(long, "long.wav", "mock-whisper", None))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());

    // The format is read from the bytes: a text file named .wav is refused.
    let resp = post_form(
        "/v1/audio/transcriptions",
        form(b"this is not audio".to_vec(), "fake.wav", "mock-whisper", None),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["param"], "file");
    // No file at all.
    let resp = post_form(
        "/v1/audio/transcriptions",
        reqwest::multipart::Form::new().text("model", "mock-whisper"),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    // Over 25 MB: 413 in the OpenAI shape.
    let resp = post_form(
        "/v1/audio/transcriptions",
        form(vec![0u8; 26 * 1024 * 1024], "big.wav", "mock-whisper", None),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 413);

    // Speech billed by characters, transcription by seconds of audio.
    let url = format!("sqlite://{}", data.join("billing.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new().connect(&url).await.unwrap();
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT operation, COUNT(*), CAST(SUM(credits) AS BIGINT) FROM usage_records \
             WHERE status = 200 GROUP BY operation ORDER BY operation",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.iter().map(|r| r.1).sum::<i64>() >= 13 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let by_op: std::collections::HashMap<_, _> = rows.iter().map(|(op, n, c)| (op.as_str(), (*n, *c))).collect();
    let speech = by_op.get("speech").copied().unwrap_or_default();
    let transcription = by_op.get("transcription").copied().unwrap_or_default();
    assert_eq!(speech.0, 5, "{rows:?}");
    assert!(speech.1 > 0, "{rows:?}");
    assert_eq!(transcription.0, 7, "{rows:?}");
    assert!(transcription.1 > 0, "{rows:?}");
    assert_eq!(by_op.get("translation").copied().unwrap_or_default().0, 1, "{rows:?}");
}

#[tokio::test]
async fn warm_cache_fills_the_one_process_speech_cache() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = format!("data_dir={}", data.display());
    let svc = oneflow_test_support::spawn("oneflow", &["--listen", "127.0.0.1:0", "--set", &data_arg], &[]).await;
    let key = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let api = Api::new(svc.url(), key);
    let phrases = dir.path().join("phrases.txt");
    std::fs::write(
        &phrases,
        "# menu prompts\nPress one for sales.\n\n{\"input\": \"Press two for support.\", \"voice\": \"nova\"}\n",
    )
    .unwrap();
    let url = svc.url();
    let args = [
        "--set",
        &data_arg,
        "warm-cache",
        "--file",
        phrases.to_str().unwrap(),
        "--model",
        "mock-tts",
        "--format",
        "wav",
        "--url",
        &url,
    ];
    let out: Value = serde_json::from_str(&oneflow_test_support::run("oneflow", &args, &[]).await).unwrap();
    assert_eq!(out["phrases"], 2, "{out}");
    assert_eq!(out["synthesised"], 2, "{out}");
    assert_eq!(out["failed"], 0, "{out}");
    // The phrases are now served from the cache, as a client asks for them.
    let mut served = 0;
    for body in [
        json!({ "model": "mock-tts", "input": "Press one for sales.", "voice": "alloy", "response_format": "wav" }),
        json!({ "model": "mock-tts", "input": "Press two for support.", "voice": "nova", "response_format": "wav" }),
    ] {
        for _ in 0..50 {
            let resp = api.post("/v1/audio/speech", &body).await;
            assert_eq!(resp.status(), 200);
            if resp.headers()["x-oneflow-cache"] == "hit" {
                assert_eq!(resp.headers()["x-oneflow-provider"], "oneflow-cache");
                let bytes = resp.bytes().await.unwrap();
                assert_eq!(oneflow_audio::sniff(&bytes), Some(oneflow_audio::AudioFormat::Wav));
                served += 1;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(served, 2);
    // A second run finds both stored.
    let out: Value = serde_json::from_str(&oneflow_test_support::run("oneflow", &args, &[]).await).unwrap();
    assert_eq!(out["already_cached"], 2, "{out}");
}
