//! Per-request scripting directives.
//!
//! Resilience tests need an upstream that fails, stalls or cuts a stream on
//! cue, for one request only, without reconfiguring the provider. A request
//! scripts its own answer through `x-mock-<name>` headers, or through
//! `mock_<name>` keys of a string→string map in the body that the gateway
//! forwards untouched, so a client behind the gateway can script the upstream
//! too. That map is `metadata` for OpenAI, Azure and Anthropic, `labels` (or
//! `metadata`) for Gemini and `requestMetadata` (or `metadata`) for Bedrock.
//! When both a header and a map key are given the header wins. Every dialect
//! honours every directive unless the table says otherwise.
//!
//! | header | metadata key | effect |
//! | --- | --- | --- |
//! | `x-mock-latency-ms` | `mock_latency_ms` | delay before the first byte (overrides the config) |
//! | `x-mock-chunk-interval-ms` | `mock_chunk_interval_ms` | delay between stream events |
//! | `x-mock-status` | `mock_status` | answer with this 4xx/5xx status and an OpenAI error body (2xx: no effect) |
//! | `x-mock-retry-after` | `mock_retry_after` | seconds for the `Retry-After` header of an injected error |
//! | `x-mock-error-rate` | `mock_error_rate` | probability (0..=1) of answering with the configured `error_status` |
//! | `x-mock-cut-after` | `mock_cut_after` | streams only: abort the body after this many content chunks |
//! | `x-mock-reply` | `mock_reply` | exact reply text instead of the default |
//! | `x-mock-tool-call` | `mock_tool_call` | Anthropic, Gemini, Bedrock: call this declared tool (`*`: the first one) instead of answering text |
//! | `x-mock-stream-error-after` | `mock_stream_error_after` | Anthropic, Gemini, Bedrock streams: after this many content chunks send the dialect's in-stream error and end |
//! | `x-mock-stream-error-status` | `mock_stream_error_status` | which in-stream error, as the HTTP status it stands for (default: 529 Anthropic, 503 Gemini, 429 Bedrock) |
//! | `x-mock-cached-tokens` | `mock_cached_tokens` | prompt tokens reported as read from the provider's prompt cache |
//! | `x-mock-transcript` | — | audio transcriptions and translations, Google `speech:recognize`, Transcribe streaming: the text "heard" in the audio |
//!
//! The audio routes have no metadata map (speech bodies are strict JSON,
//! uploads are multipart or event streams), so they read headers only;
//! `x-mock-cut-after` counts body chunks of the speech audio for OpenAI
//! speech and Polly, and transcript events for Transcribe, which also honours
//! `x-mock-stream-error-after` / `-status` (default 429,
//! `LimitExceededException`). `x-mock-reply`, `x-mock-tool-call` and
//! `x-mock-cached-tokens` mean nothing to the audio routes.
//!
//! An unparsable directive value is answered with a 400 naming the directive,
//! in the error shape of the dialect that was called.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::MockState;
use crate::error::ApiError;
use crate::stats::Counters;

/// Prefix shared by every scripting header.
const HEADER_PREFIX: &str = "x-mock-";
/// Prefix shared by every scripting metadata key.
const METADATA_PREFIX: &str = "mock_";

/// One directive's header name and metadata key.
struct Name {
    header: &'static str,
    metadata: &'static str,
}

const LATENCY: Name = Name {
    header: "x-mock-latency-ms",
    metadata: "mock_latency_ms",
};
const CHUNK_INTERVAL: Name = Name {
    header: "x-mock-chunk-interval-ms",
    metadata: "mock_chunk_interval_ms",
};
const STATUS: Name = Name {
    header: "x-mock-status",
    metadata: "mock_status",
};
const RETRY_AFTER: Name = Name {
    header: "x-mock-retry-after",
    metadata: "mock_retry_after",
};
const ERROR_RATE: Name = Name {
    header: "x-mock-error-rate",
    metadata: "mock_error_rate",
};
const CUT_AFTER: Name = Name {
    header: "x-mock-cut-after",
    metadata: "mock_cut_after",
};
const REPLY: Name = Name {
    header: "x-mock-reply",
    metadata: "mock_reply",
};
const TOOL_CALL: Name = Name {
    header: "x-mock-tool-call",
    metadata: "mock_tool_call",
};
const STREAM_ERROR_AFTER: Name = Name {
    header: "x-mock-stream-error-after",
    metadata: "mock_stream_error_after",
};
const STREAM_ERROR_STATUS: Name = Name {
    header: "x-mock-stream-error-status",
    metadata: "mock_stream_error_status",
};
const CACHED_TOKENS: Name = Name {
    header: "x-mock-cached-tokens",
    metadata: "mock_cached_tokens",
};
const TRANSCRIPT: Name = Name {
    header: "x-mock-transcript",
    metadata: "mock_transcript",
};

/// The scripting directives of one request; `None` means "not scripted".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Directives {
    /// Delay before the first byte.
    pub(crate) latency: Option<Duration>,
    /// Delay between stream events.
    pub(crate) chunk_interval: Option<Duration>,
    /// Error status to answer with (always 400..=599 when set).
    pub(crate) status: Option<u16>,
    /// Seconds for `Retry-After` on an injected error.
    pub(crate) retry_after: Option<u64>,
    /// Probability of injecting the configured error status.
    pub(crate) error_rate: Option<f64>,
    /// Number of content chunks after which a stream is aborted.
    pub(crate) cut_after: Option<usize>,
    /// Exact reply text.
    pub(crate) reply: Option<String>,
    /// Name of the declared tool to call (`*`: the first declared one).
    pub(crate) tool_call: Option<String>,
    /// Number of content chunks after which a stream ends with an in-stream error.
    pub(crate) stream_error_after: Option<usize>,
    /// HTTP status the in-stream error stands for (always 400..=599 when set).
    pub(crate) stream_error_status: Option<u16>,
    /// Prompt tokens reported as served from the prompt cache.
    pub(crate) cached_tokens: Option<u64>,
    /// Text a transcription or translation "hears" in the upload.
    pub(crate) transcript: Option<String>,
}

/// A directive whose value could not be used; every dialect renders it as
/// its own 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptError {
    /// The header or metadata key the bad value came from.
    source: &'static str,
    detail: String,
}

impl ScriptError {
    /// The client-facing explanation.
    pub(crate) fn message(&self) -> String {
        format!("Invalid mock scripting directive `{}`: {}", self.source, self.detail)
    }

    /// The OpenAI-style `param`: the header, or `metadata.<key>`.
    fn param(&self) -> Cow<'static, str> {
        if self.source.starts_with(HEADER_PREFIX) {
            Cow::Borrowed(self.source)
        } else {
            Cow::Owned(format!("metadata.{}", self.source))
        }
    }
}

impl From<ScriptError> for ApiError {
    fn from(err: ScriptError) -> Self {
        ApiError::invalid_request(err.message(), Some(err.param()))
    }
}

/// An error the gate decided to inject instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Injection {
    /// The HTTP status to answer with (400..=599).
    pub(crate) status: u16,
    /// Scripted `Retry-After` seconds, if any.
    pub(crate) retry_after: Option<u64>,
}

impl Injection {
    /// The `Retry-After` to send: the scripted one, else 1 s on a 429 (like
    /// the OpenAI path), else none.
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        match (self.status, self.retry_after) {
            (_, Some(secs)) => Some(secs),
            (429, None) => Some(crate::error::DEFAULT_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// Where a directive's raw value came from, for error messages.
struct Raw<'a> {
    value: Cow<'a, str>,
    source: &'static str,
}

impl Directives {
    /// Reads the directives of a request from its headers and, when `body`
    /// has a `metadata` object, from its `mock_*` keys (headers win).
    pub(crate) fn from_request(headers: &HeaderMap, body: &Value) -> Result<Self, ApiError> {
        Self::read(headers, body.get("metadata").and_then(Value::as_object)).map_err(ApiError::from)
    }

    /// Reads the directives from the headers and, when given, the `mock_*`
    /// keys of `metadata` (headers win).
    pub(crate) fn read(headers: &HeaderMap, metadata: Option<&Map<String, Value>>) -> Result<Self, ScriptError> {
        let metadata = metadata.filter(|map| map.keys().any(|key| key.starts_with(METADATA_PREFIX)));
        let has_headers = headers.keys().any(|name| name.as_str().starts_with(HEADER_PREFIX));
        if metadata.is_none() && !has_headers {
            return Ok(Self::default());
        }

        let lookup = Lookup { headers, metadata };
        let error_rate = match lookup.parse::<f64>(&ERROR_RATE)? {
            Some(rate) if (0.0..=1.0).contains(&rate) => Some(rate),
            Some(rate) => {
                return Err(invalid(
                    lookup.source_of(&ERROR_RATE),
                    &format!("{rate} is not between 0 and 1"),
                ));
            }
            None => None,
        };
        let tool_call = match lookup.raw(&TOOL_CALL)? {
            Some(raw) if raw.value.trim().is_empty() => {
                return Err(invalid(raw.source, "the tool name is empty"));
            }
            Some(raw) => Some(raw.value.trim().to_owned()),
            None => None,
        };
        Ok(Self {
            latency: lookup.parse::<u64>(&LATENCY)?.map(Duration::from_millis),
            chunk_interval: lookup.parse::<u64>(&CHUNK_INTERVAL)?.map(Duration::from_millis),
            status: lookup.error_status(&STATUS)?,
            retry_after: lookup.parse::<u64>(&RETRY_AFTER)?,
            error_rate,
            cut_after: lookup.parse::<usize>(&CUT_AFTER)?,
            reply: lookup.raw(&REPLY)?.map(|raw| raw.value.into_owned()),
            tool_call,
            stream_error_after: lookup.parse::<usize>(&STREAM_ERROR_AFTER)?,
            stream_error_status: lookup.error_status(&STREAM_ERROR_STATUS)?,
            cached_tokens: lookup.parse::<u64>(&CACHED_TOKENS)?,
            transcript: lookup.raw(&TRANSCRIPT)?.map(|raw| raw.value.into_owned()),
        })
    }
}

struct Lookup<'a> {
    headers: &'a HeaderMap,
    metadata: Option<&'a Map<String, Value>>,
}

impl<'a> Lookup<'a> {
    /// The raw text of a directive, header first, then metadata.
    fn raw(&self, name: &Name) -> Result<Option<Raw<'a>>, ScriptError> {
        if let Some(value) = self.headers.get(name.header) {
            return match std::str::from_utf8(value.as_bytes()) {
                Ok(text) => Ok(Some(Raw {
                    value: Cow::Borrowed(text),
                    source: name.header,
                })),
                Err(_) => Err(invalid(name.header, "the value is not valid UTF-8")),
            };
        }
        let Some(value) = self.metadata.and_then(|map| map.get(name.metadata)) else {
            return Ok(None);
        };
        let value = match value {
            Value::String(text) => Cow::Borrowed(text.as_str()),
            Value::Number(number) => Cow::Owned(number.to_string()),
            Value::Null => return Ok(None),
            _ => {
                return Err(invalid(name.metadata, "metadata values must be strings (or numbers)"));
            }
        };
        Ok(Some(Raw {
            value,
            source: name.metadata,
        }))
    }

    /// A directive parsed with [`FromStr`].
    fn parse<T: FromStr>(&self, name: &Name) -> Result<Option<T>, ScriptError> {
        let Some(raw) = self.raw(name)? else {
            return Ok(None);
        };
        raw.value
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| invalid(raw.source, &format!("cannot parse {:?}", raw.value)))
    }

    /// An error status directive: 4xx/5xx, or `None` for absent or 2xx.
    fn error_status(&self, name: &Name) -> Result<Option<u16>, ScriptError> {
        match self.parse::<u16>(name)? {
            Some(code @ 400..=599) => Ok(Some(code)),
            Some(200..=299) | None => Ok(None),
            Some(code) => Err(invalid(
                self.source_of(name),
                &format!("{code} is not a 2xx, 4xx or 5xx status"),
            )),
        }
    }

    /// Which name a present directive was read from.
    fn source_of(&self, name: &Name) -> &'static str {
        if self.headers.contains_key(name.header) {
            name.header
        } else {
            name.metadata
        }
    }
}

fn invalid(source: &'static str, detail: &str) -> ScriptError {
    ScriptError {
        source,
        detail: detail.to_owned(),
    }
}

/// Applies the directives every response shares: waits the first-byte
/// latency, then injects the scripted status or a random error (counting it
/// in `errors_injected`). `Ok` means "go on and answer normally".
pub(crate) async fn gate(state: &MockState, directives: &Directives) -> Result<(), ApiError> {
    match injected_failure(state, directives).await {
        Some(failure) => Err(ApiError::injected(failure.status, failure.retry_after)),
        None => Ok(()),
    }
}

/// The dialect-neutral half of [`gate`]: waits the first-byte latency, then
/// says which error to inject, if any (counting it in `errors_injected`).
/// Each dialect renders the [`Injection`] in its own error shape.
pub(crate) async fn injected_failure(state: &MockState, directives: &Directives) -> Option<Injection> {
    let config = state.config();
    let latency = directives.latency.unwrap_or(config.first_byte_latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(status) = directives.status {
        Counters::bump(&state.counters().errors_injected);
        tracing::debug!(status, "mock provider: injecting scripted error status");
        return Some(Injection {
            status,
            retry_after: directives.retry_after,
        });
    }
    let rate = directives.error_rate.unwrap_or(config.error_rate);
    if rate > 0.0 && (rate >= 1.0 || rand::random::<f64>() < rate) {
        Counters::bump(&state.counters().errors_injected);
        tracing::debug!(
            status = config.error_status,
            rate,
            "mock provider: injecting random error"
        );
        return Some(Injection {
            status: config.error_status,
            retry_after: directives.retry_after,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn no_directives_is_default() {
        let body = json!({"metadata": {"user": "x"}});
        assert_eq!(
            Directives::from_request(&HeaderMap::new(), &body).unwrap(),
            Directives::default()
        );
    }

    #[test]
    fn reads_every_directive_from_headers() {
        let map = headers(&[
            ("x-mock-latency-ms", "250"),
            ("x-mock-chunk-interval-ms", "10"),
            ("x-mock-status", "503"),
            ("x-mock-retry-after", "4"),
            ("x-mock-error-rate", "0.5"),
            ("x-mock-cut-after", "2"),
            ("x-mock-reply", "hello there"),
            ("x-mock-transcript", "Heard it. Twice."),
        ]);
        let directives = Directives::from_request(&map, &json!({})).unwrap();
        assert_eq!(
            directives,
            Directives {
                latency: Some(Duration::from_millis(250)),
                chunk_interval: Some(Duration::from_millis(10)),
                status: Some(503),
                retry_after: Some(4),
                error_rate: Some(0.5),
                cut_after: Some(2),
                reply: Some("hello there".to_owned()),
                tool_call: None,
                stream_error_after: None,
                stream_error_status: None,
                cached_tokens: None,
                transcript: Some("Heard it. Twice.".to_owned()),
            }
        );
    }

    #[test]
    fn reads_metadata_and_headers_win() {
        let body = json!({"metadata": {
            "mock_status": "429",
            "mock_latency_ms": 30,
            "mock_reply": "from metadata",
            "mock_cut_after": "1",
        }});
        let map = headers(&[("x-mock-status", "500")]);
        let directives = Directives::from_request(&map, &body).unwrap();
        assert_eq!(directives.status, Some(500));
        assert_eq!(directives.latency, Some(Duration::from_millis(30)));
        assert_eq!(directives.reply.as_deref(), Some("from metadata"));
        assert_eq!(directives.cut_after, Some(1));
    }

    #[test]
    fn two_hundred_status_is_a_no_op() {
        let map = headers(&[("x-mock-status", "200")]);
        let directives = Directives::from_request(&map, &json!({})).unwrap();
        assert_eq!(directives.status, None);
    }

    #[test]
    fn invalid_values_are_rejected() {
        for (name, value) in [
            ("x-mock-status", "abc"),
            ("x-mock-status", "302"),
            ("x-mock-error-rate", "1.5"),
            ("x-mock-latency-ms", "-1"),
            ("x-mock-cut-after", "two"),
            ("x-mock-stream-error-status", "200x"),
            ("x-mock-stream-error-status", "302"),
            ("x-mock-tool-call", " "),
            ("x-mock-cached-tokens", "-3"),
        ] {
            let map = headers(&[(name, value)]);
            let err = Directives::from_request(&map, &json!({})).unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST, "{name}: {value}");
        }
        let body = json!({"metadata": {"mock_status": ["429"]}});
        assert!(Directives::from_request(&HeaderMap::new(), &body).is_err());
    }

    #[test]
    fn reads_the_dialect_directives_from_any_map() {
        let map = headers(&[
            ("x-mock-tool-call", " get_weather "),
            ("x-mock-stream-error-after", "3"),
        ]);
        let labels =
            json!({"mock_stream_error_status": "503", "mock_cached_tokens": 7, "mock_stream_error_after": "9"});
        let directives = Directives::read(&map, labels.as_object()).unwrap();
        assert_eq!(directives.tool_call.as_deref(), Some("get_weather"));
        assert_eq!(directives.stream_error_after, Some(3));
        assert_eq!(directives.stream_error_status, Some(503));
        assert_eq!(directives.cached_tokens, Some(7));

        let bad = json!({"mock_stream_error_status": "700"});
        let err = Directives::read(&HeaderMap::new(), bad.as_object()).unwrap_err();
        assert!(err.message().contains("mock_stream_error_status"), "{}", err.message());
        let api: ApiError = err.into();
        assert_eq!(api.status(), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn injection_retry_after_defaults_on_429_only() {
        let injection = |status, retry_after| Injection { status, retry_after };
        assert_eq!(injection(429, None).retry_after_secs(), Some(1));
        assert_eq!(injection(529, None).retry_after_secs(), None);
        assert_eq!(injection(503, Some(4)).retry_after_secs(), Some(4));
    }
}
