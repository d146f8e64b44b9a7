//! The speech cache: synthesised audio kept in an object store and served
//! again for an identical request, without calling a provider.
//!
//! Text-to-speech is deterministic enough to reuse (the same text, voice,
//! format, speed and instructions give audio a listener cannot tell apart)
//! and far slower and dearer than a read, and many products say the same
//! phrases over and over (prompts, menus, notifications). The cache lives in
//! the gateway because the gateway already holds every byte it relays, and
//! because it serves the stored files (`GET /v1/audio/files/{sha256}`) so a
//! CDN can front them.
//!
//! An entry's address is the SHA-256 of the request's canonical form
//! ([`AudioCache::key`]): the public model, voice, format, speed, instructions
//! and text, so the address changes whenever the audio could. An entry is
//! written once, only after the whole audio arrived cleanly, and never
//! replaced (`PutMode::Create`), so its address is also a strong `ETag`. The
//! store is any `object_store` backend: a local directory (the one-process
//! mode's default), S3 (`s3://bucket/prefix`, credentials from the usual
//! `AWS_*` variables) or Google Cloud Storage (`gs://bucket/prefix`,
//! `GOOGLE_SERVICE_ACCOUNT` or the metadata server); `memory://` for tests.
//! A store that fails is logged and counted and the request goes on
//! uncached: the cache can make a request cheaper, never fail it.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// How a cache hit is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HitBilling {
    /// Hits cost nothing (the provider was not called); they are still
    /// recorded, with zero characters.
    #[default]
    Free,
    /// Hits are charged like a synthesis (the cache saves latency, not money).
    Full,
}

/// `[audio_cache]`: where synthesised speech is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioCacheConfig {
    /// Empty turns the cache off. A directory path (or `file:///abs/path`),
    /// `s3://bucket/prefix`, `gs://bucket/prefix` or `memory://`.
    pub store: String,
    /// Extra `object_store` options for S3 or GCS (`region`, `endpoint`,
    /// `allow_http`, …). Credentials belong in the environment (`AWS_*`,
    /// `GOOGLE_SERVICE_ACCOUNT*`); values of keys that look like
    /// credentials are printed redacted by `check-config` all the same.
    #[serde(serialize_with = "redact_options")]
    pub options: BTreeMap<String, String>,
    /// Part of every entry's address: change it to start from an empty cache,
    /// e.g. after remapping voices or moving a model to another provider
    /// (entries are addressed by the request, not by who synthesised it).
    pub namespace: String,
    /// `Cache-Control` on cached audio and `GET /v1/audio/files/…`. Entries
    /// never change, so the default lets a client keep them for a year; it is
    /// `private` because the files need a key. A CDN that should cache them
    /// needs `public` (see `docs/audio.md`).
    pub cache_control: String,
    /// `free` (default) or `full`.
    pub hit_billing: HitBilling,
    /// Audio longer than this is relayed but not stored.
    pub max_object_bytes: usize,
}

impl Default for AudioCacheConfig {
    fn default() -> Self {
        Self {
            store: String::new(),
            options: BTreeMap::new(),
            cache_control: "private, max-age=31536000, immutable".to_owned(),
            hit_billing: HitBilling::Free,
            max_object_bytes: 32 * 1024 * 1024,
            namespace: String::new(),
        }
    }
}

fn redact_options<S: serde::Serializer>(options: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(options.len()))?;
    for (k, v) in options {
        let lower = k.to_ascii_lowercase();
        let secret = ["secret", "key", "token", "password", "credential"]
            .iter()
            .any(|w| lower.contains(w));
        map.serialize_entry(k, if secret { "[redacted]" } else { v.as_str() })?;
    }
    map.end()
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AudioCacheError {
    /// `store` is neither a path nor a URL `object_store` knows.
    #[error("audio_cache.store: {0}")]
    Store(String),
    /// `cache_control` is not a valid header value.
    #[error("audio_cache.cache_control is not a valid header value")]
    CacheControl,
}

/// The canonical form hashed into an entry's address. Field order is fixed
/// by the struct, so equal requests give equal bytes.
#[derive(Serialize)]
struct Canonical<'a> {
    v: u8,
    namespace: &'a str,
    model: &'a str,
    voice: &'a str,
    format: &'a str,
    speed: f32,
    instructions: &'a str,
    input: &'a str,
}

/// An opened speech cache.
#[derive(Debug, Clone)]
pub struct AudioCache {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    namespace: String,
    cache_control: http::HeaderValue,
    hit_billing: HitBilling,
    max_object_bytes: usize,
}

/// Whether `key` looks like an address (64 lowercase hex digits); anything
/// else is never looked up, so a path cannot escape the cache's prefix.
pub fn is_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl AudioCache {
    /// Opens the configured store; `None` when the cache is off.
    pub fn open(config: &AudioCacheConfig) -> Result<Option<Self>, AudioCacheError> {
        let raw = config.store.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let cache_control =
            http::HeaderValue::from_str(&config.cache_control).map_err(|_| AudioCacheError::CacheControl)?;
        let store_error = |e: object_store::Error| AudioCacheError::Store(e.to_string());
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match url::Url::parse(raw) {
            Ok(url) if url.scheme() == "s3" || url.scheme() == "s3a" => {
                // Credentials and region from the usual AWS variables.
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(raw);
                for (k, v) in &config.options {
                    let key = k.parse().map_err(store_error)?;
                    builder = builder.with_config(key, v);
                }
                let prefix = Path::from_url_path(url.path()).map_err(|e| AudioCacheError::Store(e.to_string()))?;
                (Arc::new(builder.build().map_err(store_error)?), prefix)
            }
            Ok(url) if url.scheme() == "gs" => {
                // GOOGLE_SERVICE_ACCOUNT(_KEY), or the metadata server.
                let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(raw);
                for (k, v) in &config.options {
                    let key = k.parse().map_err(store_error)?;
                    builder = builder.with_config(key, v);
                }
                let prefix = Path::from_url_path(url.path()).map_err(|e| AudioCacheError::Store(e.to_string()))?;
                (Arc::new(builder.build().map_err(store_error)?), prefix)
            }
            Ok(url) if url.scheme() == "memory" => (Arc::new(object_store::memory::InMemory::new()), Path::default()),
            Ok(url) if url.scheme() != "file" && url.scheme().len() > 1 => {
                return Err(AudioCacheError::Store(format!(
                    "`{}` stores are not supported; use a directory, s3://, gs:// or memory://",
                    url.scheme()
                )));
            }
            parsed => {
                let dir = match parsed {
                    Ok(url) => url
                        .to_file_path()
                        .map_err(|()| AudioCacheError::Store(format!("`{raw}` is not a local path")))?,
                    Err(_) => PathBuf::from(raw),
                };
                std::fs::create_dir_all(&dir)
                    .map_err(|e| AudioCacheError::Store(format!("cannot create {}: {e}", dir.display())))?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| AudioCacheError::Store(e.to_string()))?;
                (Arc::new(local), Path::default())
            }
        };
        Ok(Some(Self {
            store,
            prefix,
            namespace: config.namespace.clone(),
            cache_control,
            hit_billing: config.hit_billing,
            max_object_bytes: config.max_object_bytes,
        }))
    }

    /// The address of `request`'s audio: hex SHA-256 of its canonical form.
    /// `stream_format` is left out (it is always `audio` here); voice names
    /// are compared without case, as the voice table does.
    pub fn key(&self, request: &oneflow_audio::SpeechRequest) -> String {
        let voice = match &request.voice {
            oneflow_audio::Voice::Named(name) => name.to_ascii_lowercase(),
            oneflow_audio::Voice::Custom { id } => format!("id:{id}"),
        };
        let canonical = Canonical {
            v: 1,
            namespace: &self.namespace,
            model: &request.model,
            voice: &voice,
            format: request.response_format.as_deref().unwrap_or("mp3"),
            speed: request.speed.unwrap_or(1.0),
            instructions: request.instructions.as_deref().unwrap_or(""),
            input: &request.input,
        };
        // Serializing these field types cannot fail; an empty vector would
        // still hash to a stable key.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    fn path(&self, key: &str) -> Path {
        self.prefix.clone().join(key)
    }

    /// `Cache-Control` for stored audio.
    pub fn cache_control(&self) -> &http::HeaderValue {
        &self.cache_control
    }

    /// Whether an entry exists at `key` (a failed store reads as absent).
    pub async fn exists(&self, key: &str) -> bool {
        is_key(key) && self.store.head(&self.path(key)).await.is_ok()
    }

    /// How hits are billed.
    pub fn hit_billing(&self) -> HitBilling {
        self.hit_billing
    }

    /// Audio longer than this is not stored.
    pub fn max_object_bytes(&self) -> usize {
        self.max_object_bytes
    }

    /// The stored audio at `key`; `None` when absent or when the store failed
    /// (logged and counted).
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        if !is_key(key) {
            return None;
        }
        let result = async { self.store.get(&self.path(key)).await?.bytes().await }.await;
        match result {
            Ok(bytes) => Some(bytes),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => {
                metrics::counter!("oneflow_audio_cache_errors_total", "op" => "get").increment(1);
                tracing::warn!(error = %e, "audio cache read failed; serving uncached");
                None
            }
        }
    }

    /// Stores `audio` at `key` unless an entry exists (entries never change).
    pub async fn put(&self, key: &str, audio: Bytes) {
        if !is_key(key) || audio.is_empty() || audio.len() > self.max_object_bytes {
            return;
        }
        let path = self.path(key);
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let result = match self
            .store
            .put_opts(&path, PutPayload::from(audio.clone()), create)
            .await
        {
            // A backend without conditional writes: a plain write stores the
            // same request's audio, which is as good.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store.put(&path, PutPayload::from(audio)).await.map(|_| ())
            }
            other => other.map(|_| ()),
        };
        match result {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => {
                metrics::counter!("oneflow_audio_cache_writes_total").increment(1);
            }
            Err(e) => {
                metrics::counter!("oneflow_audio_cache_errors_total", "op" => "put").increment(1);
                tracing::warn!(error = %e, "audio cache write failed");
            }
        }
    }
}

/// The `Content-Type` of stored audio, read from its bytes (entries are
/// addressed by request, and the format is part of the request, so the bytes
/// are the only place left that says it). Raw PCM has no signature.
pub fn content_type(audio: &[u8]) -> &'static str {
    oneflow_audio::sniff(audio).map_or(oneflow_audio::AudioFormat::Pcm.content_type(), |f| f.content_type())
}

/// Whether `If-None-Match` (a list of entity tags, or `*`) matches `etag`.
pub fn none_match(header: Option<&http::HeaderValue>, etag: &str) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> oneflow_audio::SpeechRequest {
        serde_json::from_value(json).expect("request")
    }

    fn memory(namespace: &str) -> AudioCache {
        let config = AudioCacheConfig {
            store: "memory://".to_owned(),
            namespace: namespace.to_owned(),
            ..AudioCacheConfig::default()
        };
        AudioCache::open(&config).expect("open").expect("enabled")
    }

    #[test]
    fn key_changes_with_every_input_that_changes_the_audio() {
        let cache = memory("");
        let base = serde_json::json!({"model": "tts-1", "input": "Hello", "voice": "alloy"});
        let k = cache.key(&request(base.clone()));
        assert!(is_key(&k));
        // Defaults spelled out, and the voice in another case, give the same key.
        let explicit = serde_json::json!({"model": "tts-1", "input": "Hello", "voice": "Alloy",
            "response_format": "mp3", "speed": 1.0});
        assert_eq!(cache.key(&request(explicit)), k);
        // Another namespace is another cache.
        assert_ne!(memory("after-voice-remap").key(&request(base.clone())), k);
        // A custom voice never collides with a named one.
        let custom = serde_json::json!({"model": "tts-1", "input": "Hello", "voice": {"id": "alloy"}});
        assert_ne!(cache.key(&request(custom)), k);
        for (field, value) in [
            ("model", serde_json::json!("tts-1-hd")),
            ("input", serde_json::json!("Hello!")),
            ("voice", serde_json::json!("echo")),
            ("response_format", serde_json::json!("wav")),
            ("speed", serde_json::json!(1.25)),
            ("instructions", serde_json::json!("Cheerful.")),
        ] {
            let mut changed = base.clone();
            changed[field] = value;
            assert_ne!(cache.key(&request(changed)), k, "{field} must change the key");
        }
    }

    #[test]
    fn only_hex_addresses_are_keys() {
        assert!(!is_key("../../etc/passwd"));
        assert!(!is_key(&"A".repeat(64)));
        assert!(!is_key(&"a".repeat(63)));
        assert!(is_key(&"0f".repeat(32)));
    }

    #[test]
    fn if_none_match_lists_and_wildcards() {
        let etag = "\"abc\"";
        let h = |s: &str| http::HeaderValue::from_str(s).expect("header");
        assert!(none_match(Some(&h("\"abc\"")), etag));
        assert!(none_match(Some(&h("\"x\", W/\"abc\"")), etag));
        assert!(none_match(Some(&h("*")), etag));
        assert!(!none_match(Some(&h("\"abd\"")), etag));
        assert!(!none_match(None, etag));
    }

    #[tokio::test]
    async fn entries_are_written_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let config = AudioCacheConfig {
            store: dir.path().join("audio").display().to_string(),
            ..AudioCacheConfig::default()
        };
        let cache = AudioCache::open(&config).expect("open").expect("enabled");
        let key = "ab".repeat(32);
        assert_eq!(cache.get(&key).await, None);
        assert!(!cache.exists(&key).await);
        cache.put(&key, Bytes::from_static(b"first")).await;
        assert!(cache.exists(&key).await);
        cache.put(&key, Bytes::from_static(b"second")).await;
        assert_eq!(cache.get(&key).await.as_deref(), Some(&b"first"[..]));
        // A second handle on the same directory sees it (another replica, a restart).
        let again = AudioCache::open(&config).expect("open").expect("enabled");
        assert_eq!(again.get(&key).await.as_deref(), Some(&b"first"[..]));
    }

    #[tokio::test]
    async fn oversized_and_empty_audio_is_not_stored() {
        let config = AudioCacheConfig {
            store: "memory://".to_owned(),
            max_object_bytes: 4,
            ..AudioCacheConfig::default()
        };
        let cache = AudioCache::open(&config).expect("open").expect("enabled");
        let key = "cd".repeat(32);
        cache.put(&key, Bytes::from_static(b"12345")).await;
        cache.put(&key, Bytes::new()).await;
        assert_eq!(cache.get(&key).await, None);
        cache.put(&key, Bytes::from_static(b"1234")).await;
        assert_eq!(cache.get(&key).await.as_deref(), Some(&b"1234"[..]));
    }

    #[test]
    fn s3_and_gcs_stores_open_with_their_prefix() {
        let s3 = AudioCacheConfig {
            store: "s3://speech-bucket/oneflow/audio".to_owned(),
            options: BTreeMap::from([
                ("region".to_owned(), "eu-west-1".to_owned()),
                ("access_key_id".to_owned(), "AKIDEXAMPLE".to_owned()),
                ("secret_access_key".to_owned(), "example".to_owned()),
            ]),
            ..AudioCacheConfig::default()
        };
        let cache = AudioCache::open(&s3).expect("s3").expect("enabled");
        assert_eq!(
            cache.path(&"ab".repeat(32)).as_ref(),
            format!("oneflow/audio/{}", "ab".repeat(32))
        );
        let bad_option = AudioCacheConfig {
            options: BTreeMap::from([("no_such_option".to_owned(), "x".to_owned())]),
            ..s3
        };
        assert!(AudioCache::open(&bad_option).is_err());
    }

    #[test]
    fn credentials_in_options_are_printed_redacted() {
        let config = AudioCacheConfig {
            store: "s3://b/p".to_owned(),
            options: BTreeMap::from([
                ("region".to_owned(), "eu-west-1".to_owned()),
                ("secret_access_key".to_owned(), "do-not-print".to_owned()),
                ("aws_session_token".to_owned(), "nor-this".to_owned()),
            ]),
            ..AudioCacheConfig::default()
        };
        let printed = serde_json::to_string(&config).expect("json");
        assert!(printed.contains("eu-west-1"), "{printed}");
        assert!(
            !printed.contains("do-not-print") && !printed.contains("nor-this"),
            "{printed}"
        );
    }

    #[test]
    fn off_when_empty_and_refuses_bad_urls() {
        assert!(AudioCache::open(&AudioCacheConfig::default()).expect("off").is_none());
        let bad = AudioCacheConfig {
            store: "ftp://example.com/x".to_owned(),
            ..AudioCacheConfig::default()
        };
        assert!(AudioCache::open(&bad).is_err());
    }

    #[test]
    fn content_type_from_bytes() {
        let wav = oneflow_audio::generate::synthesize(
            oneflow_audio::AudioFormat::Wav,
            std::time::Duration::from_millis(200),
            24_000,
        )
        .expect("wav");
        assert_eq!(content_type(&wav), "audio/wav");
        assert_eq!(content_type(&[0u8; 32]), "audio/pcm");
    }
}
