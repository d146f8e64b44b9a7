//! Every provider family through the whole chain: the one-process `oneflow`
//! with Anthropic, Gemini, Bedrock and Azure switched on by environment and
//! pointed at a separate mock provider, which speaks each family's own wire
//! format (written independently of the adapters under test). Each answer
//! must reach the client in OpenAI's shape, plain and streamed, and be billed.
use serde_json::{Value, json};

use crate::client::{Api, chat};

const MOCK_TOML: &str = r#"
[mock]
chat_models = ["mock-gpt", "azure-gpt"]
embedding_models = ["mock-embed"]
"#;

#[tokio::test]
async fn every_provider_family_answers_in_openai_shape_and_is_billed() {
    let dir = tempfile::tempdir().unwrap();
    let mock_config = dir.path().join("mock.toml");
    std::fs::write(&mock_config, MOCK_TOML).unwrap();
    let mock_config = mock_config.display().to_string();
    let mock = oneflow_test_support::spawn(
        "oneflow-mock-provider",
        &["--config", &mock_config, "--listen", "127.0.0.1:0"],
        &[],
    )
    .await;
    let upstream = mock.url();
    // Google Cloud speech with a service account whose token comes from the mock.
    let sa_file = dir.path().join("service-account.json");
    let sa = json!({
        "type": "service_account",
        "private_key_id": "e2e-key-1",
        "private_key": include_str!("../../../../crates/audio/tests/fixtures/test-only-rsa-private.pem"),
        "client_email": "speech@oneflow-e2e.iam.gserviceaccount.com",
        "token_uri": format!("{upstream}/token"),
    });
    std::fs::write(&sa_file, sa.to_string()).unwrap();
    let sa_path = sa_file.display().to_string();
    let data = dir.path().join("data");
    let data_arg = format!("data_dir={}", data.display());
    let envs = [
        ("ANTHROPIC_API_KEY", "test-anthropic-key"),
        ("ANTHROPIC_BASE_URL", upstream.as_str()),
        ("GEMINI_API_KEY", "test-gemini-key"),
        ("GEMINI_BASE_URL", upstream.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ("AWS_REGION", "us-east-1"),
        ("BEDROCK_BASE_URL", upstream.as_str()),
        ("AZURE_OPENAI_API_KEY", "test-azure-key"),
        ("AZURE_OPENAI_ENDPOINT", upstream.as_str()),
        ("AZURE_OPENAI_DEPLOYMENT", "azure-gpt"),
        ("POLLY_BASE_URL", upstream.as_str()),
        ("TRANSCRIBE_BASE_URL", upstream.as_str()),
        ("GOOGLE_APPLICATION_CREDENTIALS", sa_path.as_str()),
        ("GOOGLE_SPEECH_BASE_URL", upstream.as_str()),
    ];
    let svc = oneflow_test_support::spawn("oneflow", &["--listen", "127.0.0.1:0", "--set", &data_arg], &envs).await;
    let key = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let api = Api::new(svc.url(), key);

    for (model, provider) in [
        ("claude-haiku-4-5", "anthropic"),
        ("gemini-2.5-flash", "gemini"),
        ("nova-lite", "bedrock"),
        ("azure-gpt", "azure"),
    ] {
        // Plain.
        let resp = api
            .post("/v1/chat/completions", &chat(model, "hello from every family"))
            .await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-oneflow-provider"], provider);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion", "{model}: {body}");
        assert_eq!(body["choices"][0]["message"]["role"], "assistant", "{model}");
        let text = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(text.contains("hello from every family"), "{model}: {text}");
        assert_eq!(body["choices"][0]["finish_reason"], "stop", "{model}");
        let usage = &body["usage"];
        assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{model}: {usage}");
        assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{model}: {usage}");
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap(),
            "{model}"
        );

        // Streamed, usage requested: deltas rebuild the text, then usage, then [DONE].
        let mut req = chat(model, "stream from every family");
        req["stream"] = json!(true);
        req["stream_options"] = json!({ "include_usage": true });
        let events = api.stream(&req).await;
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{model}: {events:?}");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"), "{model}");
        let streamed: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert!(streamed.contains("stream from every family"), "{model}: {streamed}");
        assert!(
            chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"),
            "{model}: no finish_reason"
        );
        let usage_chunk = chunks.last().unwrap();
        assert_eq!(usage_chunk["choices"], json!([]), "{model}");
        assert!(
            usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{model}"
        );
    }

    // Gemini embeddings, in OpenAI's shape.
    let resp = api
        .post(
            "/v1/embeddings",
            &json!({ "model": "gemini-embedding-001", "input": ["a", "b c"] }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(!body["data"][1]["embedding"].as_array().unwrap().is_empty());

    // Anthropic has no embeddings: its models are chat models, so asking one
    // for embeddings is the OpenAI-shaped 404 of an unknown model, not a 500.
    let resp = api
        .post("/v1/embeddings", &json!({ "model": "claude-haiku-4-5", "input": "x" }))
        .await;
    assert_eq!(resp.status(), 404, "an Anthropic model is not an embeddings model");

    // Audio through Google Cloud, Polly and Transcribe.
    for (model, provider) in [("google-tts", "google"), ("polly-tts", "polly")] {
        let resp = api
            .post(
                "/v1/audio/speech",
                &json!({ "model": model, "input": "Every provider speaks.", "voice": "echo" }),
            )
            .await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-oneflow-provider"], provider);
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(
            oneflow_audio::sniff(&bytes),
            Some(oneflow_audio::AudioFormat::Mp3),
            "{model}"
        );
    }
    let flac = oneflow_audio::generate::synthesize(
        oneflow_audio::AudioFormat::Flac,
        std::time::Duration::from_millis(1500),
        16_000,
    )
    .unwrap();
    for (model, provider) in [("google-stt", "google"), ("aws-transcribe", "transcribe")] {
        let form = reqwest::multipart::Form::new().text("model", model).part(
            "file",
            reqwest::multipart::Part::bytes(flac.clone()).file_name("a.flac"),
        );
        let resp = api
            .http
            .post(format!("{}/v1/audio/transcriptions", api.base))
            .bearer_auth(&api.key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-oneflow-provider"], provider);
        let body: Value = resp.json().await.unwrap();
        assert!(body["text"].as_str().unwrap().contains("1.5"), "{model}: {body}");
    }

    // Every call was billed under its provider.
    let url = format!("sqlite://{}", data.join("billing.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new().connect(&url).await.unwrap();
    let mut providers = Vec::new();
    for _ in 0..100 {
        providers = sqlx::query_as::<_, (String, i64)>(
            "SELECT provider, COUNT(*) FROM usage_records WHERE credits > 0 AND operation NOT IN ('speech', 'transcription') \
             GROUP BY provider ORDER BY provider",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if providers.iter().map(|p| p.1).sum::<i64>() >= 9 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        providers,
        vec![
            ("anthropic".to_owned(), 2),
            ("azure".to_owned(), 2),
            ("bedrock".to_owned(), 2),
            ("gemini".to_owned(), 3)
        ]
    );
    let mut audio = Vec::new();
    for _ in 0..100 {
        audio = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT provider, operation, COUNT(*) FROM usage_records WHERE credits > 0 \
             AND operation IN ('speech', 'transcription') GROUP BY provider, operation ORDER BY provider, operation",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if audio.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let audio: Vec<(&str, &str, i64)> = audio.iter().map(|(p, o, n)| (p.as_str(), o.as_str(), *n)).collect();
    assert_eq!(
        audio,
        vec![
            ("google", "speech", 1),
            ("google", "transcription", 1),
            ("polly", "speech", 1),
            ("transcribe", "transcription", 1)
        ]
    );
    // The upstream saw each family's own API.
    let stats: Value = reqwest::get(format!("{upstream}/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in [
        "anthropic_requests",
        "gemini_requests",
        "bedrock_requests",
        "azure_requests",
    ] {
        assert!(stats[field].as_u64().unwrap() >= 2, "{field}: {stats}");
    }
}
