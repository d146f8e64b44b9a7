//! The one-process mode, as the README runs it.
use serde_json::{Value, json};

use crate::client::{Api, chat, error_of};

async fn ledger(data: &std::path::Path) -> (i64, i64, i64) {
    let url = format!("sqlite://{}", data.join("billing.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new().connect(&url).await.unwrap();
    // One statement: one consistent snapshot while settlements land.
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_entries), \
         (SELECT balance FROM accounts), (SELECT COUNT(*) FROM usage_records)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    row
}

#[tokio::test]
async fn one_process_serves_the_whole_path_and_bills_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = format!("data_dir={}", data.display());
    let svc = oneflow_test_support::spawn("oneflow", &["--listen", "127.0.0.1:0", "--set", &data_arg], &[]).await;

    // The admin key is printed once and kept in a 0600 file.
    let key = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.starts_with("ofk_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("admin.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for _ in 0..50 {
        if svc.stdout.lock().unwrap().contains(&key) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(svc.stdout.lock().unwrap().contains(&key), "key not printed");
    assert!(!svc.logs().contains(&key), "the key reached the logs");

    let api = Api::new(svc.url(), key.clone());

    // Plain chat.
    let resp = api
        .post("/v1/chat/completions", &chat("mock-gpt", "hello from the test"))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-oneflow-provider"], "mock");
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.headers()["x-ratelimit-limit"], "60");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "59");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("hello from the test")
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // Streamed, with usage requested: usage chunk then [DONE].
    let mut req = chat("mock-gpt", "stream me please");
    req["stream"] = json!(true);
    req["stream_options"] = json!({ "include_usage": true });
    let events = api.stream(&req).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Streamed without usage: the gateway still asked upstream for it (to
    // bill), but the client does not see the usage chunk.
    let mut req = chat("mock-gpt", "no usage for me");
    req["stream"] = json!(true);
    let events = api.stream(&req).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(events.iter().all(|e| !e.contains("\"choices\":[]")), "{events:?}");

    // A stream cut mid-answer ends with an error event, never [DONE].
    let mut req = chat("mock-gpt", "one two three four five six");
    req["stream"] = json!(true);
    req["metadata"] = json!({ "mock_cut_after": "2" });
    let events = api.stream(&req).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_error");
    assert!(!events.iter().any(|e| e == "[DONE]"));

    // The client's request id reaches the logs and the usage record.
    let resp = api
        .http
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(&key)
        .header("x-request-id", "e2e-req-42")
        .json(&chat("mock-gpt", "trace me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "e2e-req-42");
    let traced_billing_id = resp.headers()["x-oneflow-billing-id"].to_str().unwrap().to_owned();
    let url = format!("sqlite://{}", data.join("billing.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new().connect(&url).await.unwrap();
    let mut found = None;
    for _ in 0..100 {
        found =
            sqlx::query_as::<_, (Option<String>,)>("SELECT client_request_id FROM usage_records WHERE request_id = $1")
                .bind(&traced_billing_id)
                .fetch_optional(&pool)
                .await
                .unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(found.and_then(|r| r.0).as_deref(), Some("e2e-req-42"));
    let logged = svc
        .logs()
        .lines()
        .any(|l| l.contains("\"model call\"") && l.contains("e2e-req-42") && l.contains("mock-gpt"));
    assert!(logged, "no 'model call' log line with the request id");

    // A client that hangs up mid-stream is still billed for what it received.
    let mut req = chat("mock-gpt", "a b c d e f g h i j k l m n o p");
    req["stream"] = json!(true);
    req["metadata"] = json!({ "mock_chunk_interval_ms": "100" });
    let mut resp = api.post("/v1/chat/completions", &req).await;
    let billing_id = resp.headers()["x-oneflow-billing-id"].to_str().unwrap().to_owned();
    resp.chunk().await.unwrap();
    resp.chunk().await.unwrap();
    drop(resp);
    let mut hung_up = None;
    for _ in 0..100 {
        hung_up = sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT status, output_tokens, credits FROM usage_records WHERE request_id = $1",
        )
        .bind(&billing_id)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if hung_up.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, output, credits) = hung_up.expect("the hung-up stream was never settled");
    assert_eq!(status, 499);
    assert!((1..17).contains(&output), "output tokens {output}");
    assert!(credits > 0);

    // Embeddings and models.
    let resp = api
        .post("/v1/embeddings", &json!({ "model": "mock-embed", "input": ["a", "b"] }))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let models: Value = api.get("/v1/models").await.json().await.unwrap();
    let ids: Vec<_> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.contains(&"mock-gpt".to_owned()) && ids.contains(&"mock-embed".to_owned()),
        "{ids:?}"
    );
    assert_eq!(api.get("/v1/models/mock-gpt").await.status(), 200);

    // Client errors, in OpenAI's shape.
    let anon = reqwest::Client::new();
    let resp = anon
        .post(format!("{}/v1/chat/completions", api.base))
        .json(&chat("mock-gpt", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp, 401).await["code"], "invalid_api_key");
    let bad = Api::new(api.base.clone(), "ofk_not-a-real-key".to_owned());
    error_of(bad.post("/v1/chat/completions", &chat("mock-gpt", "x")).await, 401).await;
    let e = error_of(api.post("/v1/chat/completions", &chat("no-such-model", "x")).await, 404).await;
    assert_eq!(e["code"], "model_not_found");
    let resp = api
        .http
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    error_of(resp, 400).await;
    let e = error_of(
        api.post("/v1/chat/completions", &json!({ "model": "mock-gpt" })).await,
        400,
    )
    .await;
    assert_eq!(e["param"], "messages");
    error_of(api.get("/v1/nope").await, 404).await;

    // Every successful or cut request was settled exactly once, and the
    // balance is the ledger's sum.
    let mut settled = (0, 0, 0);
    for _ in 0..100 {
        settled = ledger(&data).await;
        if settled.2 >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (sum, balance, records) = settled;
    assert_eq!(sum, balance);
    assert!(balance < 100_000, "nothing was charged: {balance}");
    assert!(records >= 5, "usage records: {records}");

    // Idempotency-Key: a repeat replays, a concurrent repeat waits, a different
    // body conflicts, and only one request is charged.
    let before = ledger(&data).await.2;
    let idem = |idem_key: &'static str, body: Value| {
        api.http
            .post(format!("{}/v1/chat/completions", api.base))
            .bearer_auth(&api.key)
            .header("idempotency-key", idem_key)
            .json(&body)
            .send()
    };
    let mut slow = chat("mock-gpt", "exactly once");
    slow["metadata"] = json!({ "mock_latency_ms": "300" });
    let (a, b) = tokio::join!(idem("idem-1", slow.clone()), idem("idem-1", slow.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.status(), b.status()),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["id"], b["id"], "both callers must get the one response");
    let again = idem("idem-1", slow.clone()).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], a["id"]);
    let e = error_of(idem("idem-1", chat("mock-gpt", "something else")).await.unwrap(), 422).await;
    assert_eq!(e["code"], "idempotency_key_reused");
    let mut streamed = chat("mock-gpt", "stream once");
    streamed["stream"] = json!(true);
    assert_eq!(idem("idem-2", streamed.clone()).await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    error_of(idem("idem-2", streamed).await.unwrap(), 409).await;
    // Transient outcomes are not kept: a 402 is not replayed, the retry runs again.
    let mut costly = chat("mock-gpt", "too costly");
    costly["max_tokens"] = json!(1_000_000_000_000u64);
    for _ in 0..2 {
        let resp = idem("idem-3", costly.clone()).await.unwrap();
        assert!(!resp.headers().contains_key("idempotent-replayed"));
        error_of(resp, 402).await;
    }
    // A caller that hangs up frees its key: the retry runs at once instead of waiting.
    let mut slow2 = chat("mock-gpt", "abandoned");
    slow2["metadata"] = json!({ "mock_latency_ms": "400" });
    let abandoned = tokio::time::timeout(std::time::Duration::from_millis(100), idem("idem-4", slow2.clone())).await;
    assert!(abandoned.is_err(), "the first call should have been abandoned");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let retried = idem("idem-4", slow2).await.unwrap();
    assert_eq!(retried.status(), 200);
    assert!(!retried.headers().contains_key("idempotent-replayed"));
    let mut after = before;
    for _ in 0..100 {
        after = ledger(&data).await.2;
        if after >= before + 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // One charge for the repeated chat, one for the stream, one each for the
    // abandoned call and its retry; none for the 402s.
    assert_eq!(after, before + 4);

    // Bodies over the limit get 413, with Content-Length and chunked.
    // Just over the 10 MiB limit, so the whole body is on the wire before the
    // server answers (no race with a connection reset).
    let big = vec![b'x'; 10 * 1024 * 1024 + 4096];
    let resp = api
        .http
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    error_of(resp, 413).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = api
        .http
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    error_of(resp, 413).await;

    // A compressed body is limited after decompression: 10 KiB of gzip that
    // inflates past 10 MiB is refused; a small gzip body is accepted.
    let gzip = |bytes: &[u8]| {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    };
    let bomb = gzip(&vec![b' '; 11 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let resp = api
        .http
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    error_of(resp, 413).await;
    let small = gzip(serde_json::to_string(&chat("mock-gpt", "zipped")).unwrap().as_bytes());
    let resp = api
        .http
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(small)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.headers().contains_key("content-security-policy"));

    // The billing API agrees with the ledger (once the last settlement, which
    // runs in the background, has landed).
    let mut agreed = (Value::Null, String::new());
    for _ in 0..50 {
        let (_, balance, _) = ledger(&data).await;
        let b: Value = api.get("/v1/billing/balance").await.json().await.unwrap();
        agreed = (b["balance"].clone(), format!("{}.{:02}", balance / 100, balance % 100));
        if agreed.0 == agreed.1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(agreed.0, agreed.1);
    let usage: Value = api.get("/v1/billing/usage?group_by=model").await.json().await.unwrap();
    let rows = usage["data"].as_array().unwrap();
    let gpt = rows
        .iter()
        .find(|r| r["model"] == "mock-gpt")
        .unwrap_or_else(|| panic!("{usage}"));
    assert!(gpt["requests"].as_u64().unwrap() >= 4, "{usage}");
    let by_day: Value = api.get("/v1/billing/usage").await.json().await.unwrap();
    assert_eq!(by_day["data"].as_array().unwrap().len(), 1, "{by_day}");
    let pricing: Value = api.get("/v1/billing/pricing").await.json().await.unwrap();
    assert!(
        pricing["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["model"] == "mock-gpt" && p["input_per_million"] == "0.15")
    );
    error_of(api.get("/v1/billing/usage?group_by=week").await, 400).await;

    // Admins edit prices: a new version applies now, a scheduled one later, and
    // past charges keep their amounts.
    let put = |body: Value| {
        api.http
            .put(format!("{}/v1/admin/pricing/mock-gpt-mini", api.base))
            .bearer_auth(&api.key)
            .json(&body)
            .send()
    };
    let resp = put(json!({ "input_per_million": "10000", "output_per_million": "10000" }))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let later = 4_102_444_800i64; // 2100-01-01
    assert_eq!(
        put(json!({ "input_per_million": "1", "output_per_million": "1", "effective_from": later }))
            .await
            .unwrap()
            .status(),
        200
    );
    error_of(
        put(json!({ "input_per_million": "-1", "output_per_million": "1" }))
            .await
            .unwrap(),
        400,
    )
    .await;
    error_of(
        put(json!({ "input_per_million": "1", "output_per_million": "1", "effective_from": 1 }))
            .await
            .unwrap(),
        400,
    )
    .await;
    let listed: Value = api.get("/v1/billing/pricing").await.json().await.unwrap();
    let mini: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["model"] == "mock-gpt-mini")
        .collect();
    assert_eq!(mini.len(), 2, "current and scheduled: {listed}");
    assert_eq!(mini[0]["input_per_million"], "10000");
    assert_eq!(mini[1]["effective_from"], later);

    // Audio prices go through the same route as decimal strings, and come back
    // as given; a model without them lists `null`.
    let put_audio = |body: Value| {
        api.http
            .put(format!("{}/v1/admin/pricing/priced-speech", api.base))
            .bearer_auth(&api.key)
            .json(&body)
            .send()
    };
    let audio_price = json!({ "input_per_million": "0", "output_per_million": "0",
        "per_million_characters": "15", "per_minute_audio": "0.006" });
    let stored: Value = put_audio(audio_price).await.unwrap().json().await.unwrap();
    assert_eq!(
        (&stored["per_million_characters"], &stored["per_minute_audio"]),
        (&json!("15"), &json!("0.006")),
        "{stored}"
    );
    let refused = error_of(
        put_audio(json!({ "input_per_million": "0", "output_per_million": "0", "per_minute_audio": "-0.006" }))
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(
        refused["message"].as_str().unwrap().contains("per_minute_audio"),
        "{refused}"
    );
    let listed: Value = api.get("/v1/billing/pricing").await.json().await.unwrap();
    let price_of = |model: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["model"] == model)
            .cloned()
            .unwrap_or_else(|| panic!("{model} not in {listed}"))
    };
    let speech = price_of("priced-speech");
    assert_eq!(speech["per_million_characters"], "15", "{speech}");
    assert_eq!(speech["per_minute_audio"], "0.006", "{speech}");
    let chat_price = price_of("mock-gpt");
    assert!(
        chat_price["per_million_characters"].is_null() && chat_price["per_minute_audio"].is_null(),
        "{chat_price}"
    );
    let before_price = ledger(&data).await.1;
    let mut priced = chat("mock-gpt-mini", "priced anew");
    priced["max_tokens"] = json!(5);
    let resp = api.post("/v1/chat/completions", &priced).await;
    assert_eq!(resp.status(), 200);
    let mut charged = 0;
    for _ in 0..100 {
        charged = before_price - ledger(&data).await.1;
        if charged > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // 1 credit per token now: the few tokens of this call cost whole credits.
    assert!(charged >= 500, "charged {charged} hundredths at the new price");

    // Admin grants are idempotent per key.
    let b: Value = api.get("/v1/billing/balance").await.json().await.unwrap();
    let me: Value = api.get("/v1/auth/me").await.json().await.unwrap();
    let admin_id = me["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let resp = api
            .http
            .post(format!("{}/v1/admin/users/{admin_id}/credits", api.base))
            .bearer_auth(&key)
            .header("idempotency-key", "top-up-1")
            .json(&json!({ "amount": "5.00", "kind": "top_up" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    let after: Value = api.get("/v1/billing/balance").await.json().await.unwrap();
    let cents = |v: &Value| -> i64 {
        let s = v["balance"].as_str().unwrap();
        let (w, f) = s.split_once('.').unwrap_or((s, "0"));
        w.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
    };
    assert_eq!(cents(&after) - cents(&b), 500, "granted twice? {after}");

    // Admins see each deployment's health as the router tracks it.
    let providers: Value = api.get("/v1/admin/providers").await.json().await.unwrap();
    let gpt = providers["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deployment"] == "mock/mock-gpt")
        .unwrap();
    assert_eq!(gpt["breaker_state"], "closed");
    assert!(gpt["ewma_latency_ms"].as_f64().unwrap() > 0.0, "{gpt}");

    // Business metrics: the funnel, billed requests by provider and status, cost per request.
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "oneflow_funnel_total{step=\"first_successful_request\"} 1",
        "oneflow_funnel_total{step=\"first_top_up\"} 1",
        "oneflow_billed_requests_total{provider=\"mock\",status=\"2xx\"}",
        "oneflow_cost_per_request_credits_count{model=\"mock-gpt\"}",
        "oneflow_credits_consumed_total{model=\"mock-gpt\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
    assert!(!metrics.contains(&admin_id), "a user id reached a metric label");

    // A restart keeps the admin and does not mint a new key.
    svc.terminate();
    let mut svc = svc;
    let status = svc.child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
    let again = oneflow_test_support::spawn("oneflow", &["--listen", "127.0.0.1:0", "--set", &data_arg], &[]).await;
    let still = std::fs::read_to_string(data.join("admin.key")).unwrap();
    assert_eq!(still.trim(), key);
    let api = Api::new(again.url(), key);
    assert_eq!(
        api.post("/v1/chat/completions", &chat("mock-gpt", "again"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_opted_in_repeat_is_answered_from_the_cache_and_not_charged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = format!("data_dir={}", data.display());
    let svc = oneflow_test_support::spawn("oneflow", &["--listen", "127.0.0.1:0", "--set", &data_arg], &[]).await;
    let key = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let api = Api::new(svc.url(), key.clone());
    let send = |cache: bool| {
        let mut req = api
            .http
            .post(format!("{}/v1/chat/completions", api.base))
            .bearer_auth(&key)
            .json(&chat("mock-gpt", "the same question twice"));
        if cache {
            req = req.header("x-oneflow-cache", "use");
        }
        req.send()
    };
    let first = send(true).await.unwrap();
    assert_eq!(first.headers()["x-oneflow-cache"], "miss");
    let first_id = first.headers()["x-oneflow-billing-id"].to_str().unwrap().to_owned();
    let first_body: Value = first.json().await.unwrap();
    let second = send(true).await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["x-oneflow-cache"], "hit");
    assert_eq!(second.headers()["x-oneflow-provider"], "mock");
    let second_id = second.headers()["x-oneflow-billing-id"].to_str().unwrap().to_owned();
    let second_body: Value = second.json().await.unwrap();
    // The same answer (the mock gives every answer its own id).
    assert_eq!(second_body["id"], first_body["id"]);
    // Without the header the upstream answers again, and no cache header is set.
    let third = send(false).await.unwrap();
    assert!(third.headers().get("x-oneflow-cache").is_none());
    let third_body: Value = third.json().await.unwrap();
    assert_ne!(third_body["id"], first_body["id"]);

    // The miss is charged, the hit is free (the default hit billing).
    let url = format!("sqlite://{}", data.join("billing.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new().connect(&url).await.unwrap();
    let mut credits = Vec::new();
    for id in [&first_id, &second_id] {
        let mut row = None;
        for _ in 0..100 {
            row = sqlx::query_as::<_, (i64,)>("SELECT credits FROM usage_records WHERE request_id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap();
            if row.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        credits.push(row.expect("request never settled").0);
    }
    assert!(credits[0] > 0, "{credits:?}");
    assert_eq!(credits[1], 0, "{credits:?}");
}
