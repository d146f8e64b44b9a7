//! Audio through Google Cloud, Amazon Polly and Amazon Transcribe, in the
//! deployed shape (four processes on PostgreSQL and Redis), against the mock
//! provider speaking each provider's own dialect: a service-account key whose
//! token comes from the mock's OAuth endpoint, SigV4-signed Polly calls and a
//! signed Transcribe event stream. A second mock fails every call, so each
//! model's first deployment falls over to the next. The gateway keeps
//! synthesised speech in a directory store: a repeat is served from it
//! without calling the provider, and `GET /v1/audio/files/{sha256}` serves it
//! with its `ETag`. Every call is billed, the cache hit at nothing.
use serde_json::{Value, json};

use crate::client::Api;

const ROUTER_TOML: &str = r#"
[retry]
max_retries = 0

[[providers]]
name = "broken"
kind = "openai_compatible"
base_url = "BROKEN_URL/v1"

[[providers]]
name = "google"
kind = "google"
base_url = "MOCK_URL"
credentials_file = "SA_FILE"

[[providers]]
name = "polly"
kind = "polly"
base_url = "MOCK_URL"
region = "eu-west-1"

[[providers]]
name = "transcribe"
kind = "transcribe"
base_url = "MOCK_URL"
region = "eu-west-1"

[[deployments]]
name = "broken-tts"
provider = "broken"
upstream_model = "tts-1"

[[deployments]]
name = "google-tts"
provider = "google"
upstream_model = "google-tts"

[[deployments]]
name = "polly-tts"
provider = "polly"
upstream_model = "polly-neural"

[[deployments]]
name = "broken-stt"
provider = "broken"
upstream_model = "whisper-1"

[[deployments]]
name = "google-stt"
provider = "google"
upstream_model = "latest_long"

[[deployments]]
name = "aws-stt"
provider = "transcribe"
upstream_model = "transcribe"

[[models]]
name = "tts"
operation = "speech"
deployments = ["broken-tts", "google-tts"]

[[models]]
name = "google-tts"
operation = "speech"
deployments = ["google-tts"]

[[models]]
name = "polly-tts"
operation = "speech"
deployments = ["polly-tts"]

[[models]]
name = "stt"
operation = "transcription"
deployments = ["broken-stt", "google-stt"]

[[models]]
name = "aws-stt"
operation = "transcription"
deployments = ["aws-stt"]

[voices.alloy]
polly = { voice_id = "Amy", engine = "neural" }
"#;

const BILLING_TOML: &str = r#"
[pricing]
credits_per_usd = "100"

[[pricing.models]]
model = "tts"
input_per_million = "0"
output_per_million = "0"
per_million_characters = "16"

[[pricing.models]]
model = "google-tts"
input_per_million = "0"
output_per_million = "0"
per_million_characters = "16"

[[pricing.models]]
model = "polly-tts"
input_per_million = "0"
output_per_million = "0"
per_million_characters = "16"

[[pricing.models]]
model = "stt"
input_per_million = "0"
output_per_million = "0"
per_minute_audio = "0.024"

[[pricing.models]]
model = "aws-stt"
input_per_million = "0"
output_per_million = "0"
per_minute_audio = "0.024"
"#;

fn form(audio: Vec<u8>, name: &str, model: &str, response_format: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("model", model.to_owned())
        .text("response_format", response_format.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(audio).file_name(name.to_owned()),
        )
}

async fn stats(mock: &str) -> Value {
    reqwest::get(format!("{mock}/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn generated(format: oneflow_audio::AudioFormat, millis: u64, rate: u32) -> Vec<u8> {
    oneflow_audio::generate::synthesize(format, std::time::Duration::from_millis(millis), rate).unwrap()
}

#[tokio::test]
async fn google_polly_and_transcribe_with_fallback_cache_and_billing() {
    let (Some(auth_db), Some(billing_db), Some(redis)) = (
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::fresh_postgres().await,
        oneflow_test_support::redis().await,
    ) else {
        return;
    };
    let prefix = oneflow_test_support::unique_prefix();
    let dir = tempfile::tempdir().unwrap();
    let listen = ["--listen", "127.0.0.1:0"];

    let mock = oneflow_test_support::spawn("oneflow-mock-provider", &listen, &[]).await;
    let broken_file = dir.path().join("broken.toml");
    std::fs::write(&broken_file, "[mock]\nerror_rate = 1.0\nerror_status = 503\n").unwrap();
    let broken = oneflow_test_support::spawn(
        "oneflow-mock-provider",
        &["--config", broken_file.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[],
    )
    .await;
    let (mock_url, broken_url) = (mock.url(), broken.url());

    // A service-account key whose token endpoint is the mock's.
    let sa_file = dir.path().join("service-account.json");
    let sa = json!({
        "type": "service_account",
        "project_id": "oneflow-e2e",
        "private_key_id": "e2e-key-1",
        "private_key": include_str!("../../../../crates/audio/tests/fixtures/test-only-rsa-private.pem"),
        "client_email": "speech@oneflow-e2e.iam.gserviceaccount.com",
        "token_uri": format!("{mock_url}/token"),
    });
    std::fs::write(&sa_file, sa.to_string()).unwrap();

    let auth_env = [
        ("ONEFLOW__DATABASE__URL", auth_db.as_str()),
        ("ONEFLOW__JWT__SECRET", "e2e-signing-secret-of-at-least-32-bytes"),
    ];
    let admin: Value =
        serde_json::from_str(&oneflow_test_support::run("oneflow-auth", &["bootstrap-admin"], &auth_env).await)
            .unwrap();
    let key = admin["api_key"].as_str().unwrap().to_owned();
    let user = admin["user_id"].as_str().unwrap().to_owned();

    let billing_file = dir.path().join("billing.toml");
    std::fs::write(&billing_file, BILLING_TOML).unwrap();
    let billing_cfg = billing_file.to_str().unwrap();
    let billing_env = [
        ("ONEFLOW__DATABASE__URL", billing_db.as_str()),
        ("ONEFLOW__REDIS__URL", redis.as_str()),
        ("ONEFLOW__REDIS__KEY_PREFIX", prefix.as_str()),
    ];
    oneflow_test_support::run(
        "oneflow-billing",
        &["--config", billing_cfg, "grant", "--user", &user, "--amount", "10"],
        &billing_env,
    )
    .await;

    let router_file = dir.path().join("router.toml");
    std::fs::write(
        &router_file,
        ROUTER_TOML
            .replace("BROKEN_URL", &broken_url)
            .replace("MOCK_URL", &mock_url)
            .replace("SA_FILE", sa_file.to_str().unwrap()),
    )
    .unwrap();
    let auth = oneflow_test_support::spawn("oneflow-auth", &listen, &auth_env).await;
    let billing = oneflow_test_support::spawn(
        "oneflow-billing",
        &["--config", billing_cfg, "--listen", "127.0.0.1:0"],
        &billing_env,
    )
    .await;
    let router = oneflow_test_support::spawn(
        "oneflow-router",
        &["--config", router_file.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ],
    )
    .await;
    let store = dir.path().join("audio-cache");
    let (a, b, r, s) = (auth.url(), billing.url(), router.url(), store.display().to_string());
    let gateway = oneflow_test_support::spawn(
        "oneflow-gateway",
        &listen,
        &[
            ("ONEFLOW__AUTH__URL", a.as_str()),
            ("ONEFLOW__BILLING__URL", b.as_str()),
            ("ONEFLOW__ROUTER__URL", r.as_str()),
            ("ONEFLOW__AUDIO_CACHE__STORE", s.as_str()),
        ],
    )
    .await;
    let api = Api::new(gateway.url(), key.clone());

    // Google Text-to-Speech, after the broken deployment failed.
    let speech = json!({ "model": "tts", "input": "Welcome to OneFlow.", "voice": "alloy", "response_format": "wav" });
    let resp = api.post("/v1/audio/speech", &speech).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    assert_eq!(resp.headers()["x-oneflow-provider"], "google");
    assert_eq!(resp.headers()["x-oneflow-cache"], "miss");
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    let first = resp.bytes().await.unwrap();
    let info = oneflow_audio::inspect(first.clone(), None).unwrap();
    assert_eq!(info.format, oneflow_audio::AudioFormat::Wav);
    assert_eq!(info.sample_rate, Some(24_000));
    assert!(info.duration.as_millis() > 200, "{info:?}");
    let up = stats(&mock_url).await;
    assert_eq!(up["google_token_requests"], 1, "{up}");
    assert_eq!(up["google_tts_requests"], 1, "{up}");
    assert_eq!(up["calls_by_model"]["google-tts/en-US-Neural2-F"], 1, "{up}");
    let failed_before = stats(&broken_url).await["errors_injected"].as_u64().unwrap();
    assert!(failed_before >= 1);

    // The same request again: from the cache, the providers not called. The
    // cache is written after the response ends, so allow it a moment.
    let mut hit = None;
    for _ in 0..50 {
        let resp = api.post("/v1/audio/speech", &speech).await;
        assert_eq!(resp.status(), 200);
        if resp.headers()["x-oneflow-cache"] == "hit" {
            hit = Some(resp);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hit = hit.expect("the second identical request was not served from the cache");
    assert_eq!(hit.headers()["x-oneflow-provider"], "oneflow-cache");
    assert_eq!(hit.headers()["content-type"], "audio/wav");
    let etag = hit.headers()["etag"].to_str().unwrap().to_owned();
    let location = hit.headers()["content-location"].to_str().unwrap().to_owned();
    assert!(hit.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    assert_eq!(hit.bytes().await.unwrap(), first);
    // Once stored, a hit reaches no provider: neither the failing one nor Google.
    let cache_misses_seen = stats(&mock_url).await["google_tts_requests"].as_u64().unwrap();
    let failed = stats(&broken_url).await["errors_injected"].as_u64().unwrap();
    let resp = api.post("/v1/audio/speech", &speech).await;
    assert_eq!(resp.headers()["x-oneflow-cache"], "hit");
    assert_eq!(stats(&mock_url).await["google_tts_requests"], cache_misses_seen);
    assert_eq!(stats(&broken_url).await["errors_injected"], failed);

    // The stored file, for a CDN: 200 with the same bytes, then 304.
    assert_eq!(location, format!("/v1/audio/files/{}", etag.trim_matches('"')));
    let resp = api.get(&location).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    assert_eq!(resp.bytes().await.unwrap(), first);
    let resp = api
        .http
        .get(format!("{}{location}", api.base))
        .bearer_auth(&key)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = reqwest::get(format!("{}{location}", api.base)).await.unwrap();
    assert_eq!(resp.status(), 401, "files need a key");
    let resp = api.get(&format!("/v1/audio/files/{}", "0".repeat(64))).await;
    assert_eq!(resp.status(), 404);
    // No 304 for what is not stored, whatever the client holds.
    let resp = api
        .http
        .get(format!("{}/v1/audio/files/{}", api.base, "0".repeat(64)))
        .bearer_auth(&key)
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audio_file_not_found");
    // Skipping the cache calls the provider again; the token is reused.
    let resp = api
        .http
        .post(format!("{}/v1/audio/speech", api.base))
        .bearer_auth(&key)
        .header("x-oneflow-cache", "skip")
        .json(&speech)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-oneflow-cache").is_none());
    let up = stats(&mock_url).await;
    assert_eq!(up["google_tts_requests"], cache_misses_seen + 1, "{up}");
    assert_eq!(up["google_token_requests"], 1, "the token is cached: {up}");

    // Google cannot make AAC: a 400 naming the field, in OpenAI's shape.
    let resp = api
        .post(
            "/v1/audio/speech",
            &json!({ "model": "google-tts", "input": "x", "voice": "alloy", "response_format": "aac" }),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("aac"), "{body}");

    // Polly: mp3 as it streams, wav with the header OneFlow adds, the voice
    // mapped by the router's [voices] table.
    for (format, expected) in [
        ("mp3", oneflow_audio::AudioFormat::Mp3),
        ("wav", oneflow_audio::AudioFormat::Wav),
        ("opus", oneflow_audio::AudioFormat::Opus),
    ] {
        let resp = api
            .post(
                "/v1/audio/speech",
                &json!({ "model": "polly-tts", "input": "Polly speaks for OneFlow.", "voice": "alloy",
                         "response_format": format, "speed": 1.25 }),
            )
            .await;
        assert_eq!(resp.status(), 200, "{format}");
        assert_eq!(resp.headers()["x-oneflow-provider"], "polly", "{format}");
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(oneflow_audio::sniff(&bytes), Some(expected), "{format}");
        if expected != oneflow_audio::AudioFormat::Opus {
            let info = oneflow_audio::inspect(bytes, Some(expected)).unwrap();
            assert!(info.duration.as_millis() > 200, "{format}: {info:?}");
        }
    }
    let up = stats(&mock_url).await;
    assert_eq!(up["calls_by_model"]["polly/Amy"], 3, "{up}");

    // Google Speech-to-Text after the broken deployment, in two formats.
    let wav = generated(oneflow_audio::AudioFormat::Wav, 2500, 16_000);
    let post_form = |f: reqwest::multipart::Form| {
        api.http
            .post(format!("{}/v1/audio/transcriptions", api.base))
            .bearer_auth(&key)
            .multipart(f)
            .send()
    };
    let resp = post_form(form(wav.clone(), "clip.wav", "stt", "json")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-oneflow-provider"], "google");
    let body: Value = resp.json().await.unwrap();
    assert!(body["text"].as_str().unwrap().contains("2.5"), "{body}");
    let resp = post_form(form(wav.clone(), "clip.wav", "stt", "srt")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let srt = resp.text().await.unwrap();
    assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");

    // Transcribe: FLAC and WAV as a signed event stream; verbose_json timings
    // end at the measured length.
    let flac = generated(oneflow_audio::AudioFormat::Flac, 3000, 16_000);
    let resp = post_form(form(flac, "clip.flac", "aws-stt", "verbose_json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    assert_eq!(resp.headers()["x-oneflow-provider"], "transcribe");
    let body: Value = resp.json().await.unwrap();
    assert!(body["text"].as_str().unwrap().contains('3'), "{body}");
    let segments = body["segments"].as_array().unwrap();
    assert!(!segments.is_empty(), "{body}");
    let end = segments.last().unwrap()["end"].as_f64().unwrap();
    assert!((end - 3.0).abs() < 0.05, "{body}");
    let resp = post_form(form(wav, "clip.wav", "aws-stt", "text")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.text().await.unwrap().trim().is_empty());
    // Transcribe takes no MP3 and there is nothing after it: a 400 naming the file.
    let mp3 = generated(oneflow_audio::AudioFormat::Mp3, 1000, 24_000);
    let resp = post_form(form(mp3, "clip.mp3", "aws-stt", "json")).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("FLAC"), "{body}");
    let up = stats(&mock_url).await;
    assert_eq!(up["google_stt_requests"], 2, "{up}");
    assert_eq!(up["transcribe_requests"], 2, "{up}");

    // Billing: every served call recorded with its provider; the cache hit at
    // no charge, the provider calls charged.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&billing_db)
        .await
        .unwrap();
    let mut rows: Vec<(String, String, i64, i64)> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as(
            "SELECT operation, provider, COUNT(*), CAST(SUM(credits) AS BIGINT) FROM usage_records \
             WHERE user_id = $1 AND status = 200 GROUP BY operation, provider ORDER BY operation, provider",
        )
        .bind(&user)
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.iter().map(|r| r.2).sum::<i64>() >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let find = |op: &str, provider: &str| {
        rows.iter()
            .find(|r| r.0 == op && r.1 == provider)
            .map(|r| (r.2, r.3))
            .unwrap_or_default()
    };
    let google_speech = find("speech", "google");
    assert_eq!(
        google_speech.0,
        i64::try_from(cache_misses_seen + 1).unwrap(),
        "{rows:?}"
    );
    assert!(google_speech.1 > 0, "{rows:?}");
    let cached = find("speech", "oneflow-cache");
    assert!(cached.0 >= 2, "{rows:?}");
    assert_eq!(cached.1, 0, "cache hits are free by default: {rows:?}");
    assert_eq!(find("speech", "polly").0, 3, "{rows:?}");
    assert!(find("speech", "polly").1 > 0, "{rows:?}");
    assert_eq!(find("transcription", "google").0, 2, "{rows:?}");
    assert!(find("transcription", "google").1 > 0, "{rows:?}");
    assert_eq!(find("transcription", "transcribe").0, 2, "{rows:?}");
    pool.close().await;
}
