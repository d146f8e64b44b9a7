//! Calls to OpenAI-compatible upstreams and the classification of what went
//! wrong, which decides fall-over (5xx, 429, timeouts, connection errors) versus
//! returning at once (a 4xx the client caused).
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use oneflow_audio::google::auth::{AccessToken, TokenState};
use oneflow_resilience::Retryable;
use serde::Deserialize;

use crate::audio::{self, Payload, Reply};
use crate::catalog::{Deployment, GoogleAuth};
use crate::dialect::{self, Op};

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered with an error status.
    #[error("upstream returned {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The upstream's error message (safe to show: it describes the request).
        message: String,
        /// OpenAI error code, when given.
        code: Option<String>,
        /// Retry-After, when given.
        retry_after: Option<Duration>,
    },
    /// Could not connect.
    #[error("cannot connect to the upstream")]
    Connect,
    /// No answer in time.
    #[error("the upstream timed out")]
    Timeout,
    /// The answer could not be read or parsed.
    #[error("invalid upstream response")]
    Protocol,
    /// The request cannot be expressed in this deployment's dialect (another
    /// deployment may take it; if none can, the client gets 400 with this).
    #[error("{0}")]
    Unsupported(String),
    /// The deployment's own settings are unusable (a bad key, no credentials).
    #[error("deployment misconfigured: {0}")]
    Config(String),
}

impl Retryable for UpstreamError {
    fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Status { status, .. } => {
                // 401/403/404: this deployment's key or model is wrong, the
                // next deployment may be fine; 408: the upstream gave up.
                matches!(*status, 401 | 403 | 404 | 408 | 429) || *status >= 500
            }
            UpstreamError::Connect | UpstreamError::Timeout | UpstreamError::Protocol => true,
            // Fall over to a deployment that can take the request.
            UpstreamError::Unsupported(_) | UpstreamError::Config(_) => true,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl UpstreamError {
    fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            UpstreamError::Timeout
        } else if e.is_connect() || e.is_request() {
            UpstreamError::Connect
        } else {
            UpstreamError::Protocol
        }
    }
}

/// An HTTP client shared by every deployment (connection reuse).
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    read_timeout: Duration,
}

impl Upstream {
    /// A client with the configured connect timeout.
    pub fn new(connect: Duration, read: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            client,
            read_timeout: read,
        })
    }

    /// Sends `body` (the client's OpenAI body, upstream model set) to the
    /// deployment in its provider's dialect. Streams get no overall timeout
    /// here (their deadlines apply per event).
    pub async fn send(
        &self,
        deployment: &Deployment,
        op: Op,
        body: &Bytes,
        stream: bool,
        default_max_tokens: u64,
        content_type: &str,
    ) -> Result<reqwest::Response, UpstreamError> {
        let prepared = dialect::prepare(deployment, op, body, stream, default_max_tokens, content_type)?;
        let mut headers = prepared.headers;
        oneflow_telemetry::inject_http(&mut headers);
        let mut req = self.client.post(prepared.url).headers(headers).body(prepared.body);
        if !stream {
            req = req.timeout(self.read_timeout);
        }
        let resp = req.send().await.map_err(|e| UpstreamError::from_reqwest(&e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(dialect::error(deployment, resp).await)
        }
    }

    /// Sends an audio request to `deployment` in its provider's dialect;
    /// returns the answer with how to read it. `stream` answers (speech) get
    /// no overall timeout here, like chat streams.
    pub async fn send_audio(
        &self,
        deployment: &Deployment,
        op: Op,
        payload: &Payload<'_>,
        stream: bool,
    ) -> Result<(reqwest::Response, Reply), UpstreamError> {
        let token = match &deployment.provider.google {
            Some(google) => Some(self.google_token(google).await?),
            None => None,
        };
        let (prepared, reply) = audio::prepare(deployment, op, payload, token.as_ref(), SystemTime::now())?;
        let mut headers = prepared.headers;
        oneflow_telemetry::inject_http(&mut headers);
        let mut req = self.client.post(prepared.url).headers(headers).body(prepared.body);
        if !stream || matches!(reply, Reply::GoogleSpeech(_)) {
            req = req.timeout(self.read_timeout);
        }
        let resp = req.send().await.map_err(|e| UpstreamError::from_reqwest(&e))?;
        if resp.status().is_success() {
            return Ok((resp, reply));
        }
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && let Some(google) = &deployment.provider.google
        {
            // The token was revoked or the clock is off: fetch a new one next time.
            google.tokens.lock().await.clear();
        }
        Err(dialect::error(deployment, resp).await)
    }

    /// A Google access token: the cached one while it is fresh, else a new
    /// one (one fetch at a time; inside the refresh margin a failed fetch
    /// falls back to the still-valid token).
    async fn google_token(&self, google: &GoogleAuth) -> Result<AccessToken, UpstreamError> {
        let mut tokens = google.tokens.lock().await;
        let stale = match tokens.state(SystemTime::now()) {
            TokenState::Fresh(token) => return Ok(token.clone()),
            TokenState::Refresh(token) => Some(token.clone()),
            TokenState::Missing | TokenState::Expired => None,
        };
        match self.fetch_google_token(google).await {
            Ok(token) => {
                tokens.store(token.clone());
                Ok(token)
            }
            Err(e) => match stale {
                Some(token) => {
                    tracing::warn!(error = %e, "Google token refresh failed; using the current token until it expires");
                    Ok(token)
                }
                None => Err(e),
            },
        }
    }

    async fn fetch_google_token(&self, google: &GoogleAuth) -> Result<AccessToken, UpstreamError> {
        metrics::counter!("oneflow_router_google_token_fetches_total").increment(1);
        let request = google
            .key
            .token_request(SystemTime::now())
            .and_then(oneflow_audio::google::auth::TokenRequest::into_http)
            .map_err(|e| UpstreamError::Config(e.to_string()))?;
        let (parts, body) = request.into_parts();
        let resp = self
            .client
            .post(parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .timeout(self.read_timeout)
            .send()
            .await
            .map_err(|e| UpstreamError::from_reqwest(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| UpstreamError::from_reqwest(&e))?;
        oneflow_audio::google::auth::parse_token_response(&body, SystemTime::now()).map_err(|e| {
            if status == 429 || status >= 500 {
                // The token endpoint is down, not the key wrong: the provider failed.
                UpstreamError::Status {
                    status: 503,
                    message: "Google's token endpoint is unavailable".to_owned(),
                    code: Some("upstream_auth_unavailable".to_owned()),
                    retry_after: None,
                }
            } else {
                UpstreamError::Config(format!("Google refused the service account: {e}"))
            }
        })
    }

    /// Whether the deployment's provider answers a cheap authenticated
    /// request; `None` when its family has no such probe.
    pub async fn probe(&self, deployment: &Deployment) -> Option<bool> {
        let req = dialect::probe(&self.client, deployment)?;
        Some(req.send().await.is_ok_and(|r| r.status().is_success()))
    }

    /// Reads a whole successful body.
    pub async fn body(resp: reqwest::Response) -> Result<Bytes, UpstreamError> {
        resp.bytes().await.map_err(|e| UpstreamError::from_reqwest(&e))
    }
}

/// Usage as OpenAI reports it.
#[derive(Debug, Default, Deserialize)]
pub struct OpenAiUsage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Cached input details.
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Default, Deserialize)]
pub struct PromptDetails {
    /// Cached input tokens.
    #[serde(default)]
    pub cached_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

impl From<OpenAiUsage> for oneflow_proto::common::v1::Usage {
    fn from(u: OpenAiUsage) -> Self {
        Self {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            cached_input_tokens: u.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
            ..Self::default()
        }
    }
}

/// The `usage` object of a response or chunk, if present and not null.
pub fn usage_of(json: &[u8]) -> Option<OpenAiUsage> {
    serde_json::from_slice::<WithUsage>(json).ok().and_then(|w| w.usage)
}
