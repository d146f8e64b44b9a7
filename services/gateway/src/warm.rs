//! `warm-cache`: pre-synthesises a list of phrases through a running
//! gateway, so the first listener of each one is served from the speech
//! cache instead of waiting for a provider.
//!
//! It goes through the public API like any client (the key's scope, rate
//! limits and quotas apply, and each synthesis is billed as usual) rather
//! than writing to the store behind the gateway's back: what it stores is
//! exactly what a later identical request looks up, and a phrase already
//! stored costs nothing under the default `hit_billing = "free"`.
//!
//! The file holds one phrase per line. Blank lines and lines starting with
//! `#` are skipped. A line that starts with `{` is a JSON object that may set
//! any speech field for that phrase (`input`, `voice`, `model`,
//! `response_format`, `speed`, `instructions`) over the command's defaults.
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::{Map, Value};

/// `warm-cache` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct WarmArgs {
    /// The phrases, one per line (or a JSON object per line).
    #[arg(long)]
    pub file: PathBuf,
    /// Speech model for phrases that name none.
    #[arg(long)]
    pub model: String,
    /// Voice for phrases that name none.
    #[arg(long, default_value = "alloy")]
    pub voice: String,
    /// `response_format` for phrases that name none.
    #[arg(long, default_value = "mp3")]
    pub format: String,
    /// The gateway's base URL (default `http://127.0.0.1:8080`; `oneflow
    /// warm-cache`: the one-process address).
    #[arg(long)]
    pub url: Option<String>,
    /// API key (with the `inference` scope); or `--key-file`.
    #[arg(long, env = "ONEFLOW_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// File holding the API key.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// What `warm-cache` did, printed as JSON.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct WarmSummary {
    /// Phrases read from the file.
    pub phrases: usize,
    /// Synthesised now and stored.
    pub synthesised: usize,
    /// Already stored.
    pub already_cached: usize,
    /// Answered without the cache (`x-oneflow-cache` absent: the gateway has
    /// no `[audio_cache]`).
    pub uncached: usize,
    /// Failed; the first errors are in `errors`.
    pub failed: usize,
    /// Up to ten failures: line number and reason.
    pub errors: Vec<String>,
}

/// A phrase's line number and its speech request.
type Phrase = (usize, Map<String, Value>);

fn phrases(text: &str, args: &WarmArgs) -> Result<Vec<Phrase>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut body = Map::new();
        body.insert("model".into(), Value::String(args.model.clone()));
        body.insert("voice".into(), Value::String(args.voice.clone()));
        body.insert("response_format".into(), Value::String(args.format.clone()));
        if line.starts_with('{') {
            let fields: Map<String, Value> =
                serde_json::from_str(line).map_err(|e| format!("line {}: not a JSON object: {e}", i + 1))?;
            body.extend(fields);
            if !body.contains_key("input") {
                return Err(format!("line {}: the object has no `input`", i + 1));
            }
        } else {
            body.insert("input".into(), Value::String(line.to_owned()));
        }
        out.push((i + 1, body));
    }
    Ok(out)
}

/// Runs the command; `Err` when the file or key cannot be read.
pub async fn run(args: WarmArgs) -> anyhow::Result<WarmSummary> {
    let key = match (&args.key, &args.key_file) {
        (Some(k), _) => k.trim().to_owned(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("cannot read --key-file {}: {e}", file.display()))?
            .trim()
            .to_owned(),
        (None, None) => anyhow::bail!("give --key, --key-file or ONEFLOW_API_KEY"),
    };
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read --file {}: {e}", args.file.display()))?;
    let list = phrases(&text, &args).map_err(anyhow::Error::msg)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
    let base = args.url.as_deref().unwrap_or("http://127.0.0.1:8080");
    let endpoint = format!("{}/v1/audio/speech", base.trim_end_matches('/'));
    let mut summary = WarmSummary {
        phrases: list.len(),
        ..WarmSummary::default()
    };
    let mut results = futures::stream::iter(list)
        .map(|(line, body)| {
            let (client, endpoint, key) = (&client, &endpoint, &key);
            async move {
                let outcome = async {
                    let resp = client
                        .post(endpoint)
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = resp.status();
                    let cache = resp
                        .headers()
                        .get("x-oneflow-cache")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    // The whole audio must arrive: the gateway stores it only then.
                    let body = resp.bytes().await.map_err(|e| e.to_string())?;
                    if !status.is_success() {
                        let message = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        return Err(format!("HTTP {status}: {message}"));
                    }
                    Ok(cache)
                }
                .await;
                (line, outcome)
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    while let Some((line, outcome)) = results.next().await {
        match outcome {
            Ok(Some(c)) if c == "hit" => summary.already_cached += 1,
            Ok(Some(_)) => summary.synthesised += 1,
            Ok(None) => summary.uncached += 1,
            Err(e) => {
                summary.failed += 1;
                if summary.errors.len() < 10 {
                    summary.errors.push(format!("line {line}: {e}"));
                }
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> WarmArgs {
        WarmArgs {
            file: PathBuf::new(),
            model: "tts-1".into(),
            voice: "alloy".into(),
            format: "mp3".into(),
            url: None,
            key: None,
            key_file: None,
            concurrency: 1,
        }
    }

    #[test]
    fn lines_become_requests_with_defaults_and_overrides() {
        let text = "# greetings\n\nHello there.\n{\"input\": \"Bonjour.\", \"voice\": \"nova\", \"speed\": 1.5}\n";
        let list = phrases(text, &args()).expect("valid");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].0, 3);
        assert_eq!(list[0].1["input"], "Hello there.");
        assert_eq!(list[0].1["voice"], "alloy");
        assert_eq!(list[1].1["voice"], "nova");
        assert_eq!(list[1].1["speed"], 1.5);
        assert_eq!(list[1].1["model"], "tts-1");
    }

    #[test]
    fn bad_lines_are_named() {
        let e = phrases("ok\n{not json}\n", &args()).expect_err("invalid");
        assert!(e.starts_with("line 2:"), "{e}");
        let e = phrases("{\"voice\": \"echo\"}\n", &args()).expect_err("no input");
        assert!(e.contains("input"), "{e}");
    }
}
