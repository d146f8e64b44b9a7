//! The router's configuration: providers (credentials by reference, never
//! inline), deployments (a provider + upstream model) and public models that
//! map to an ordered list of deployments (the fallback chain).
use std::time::Duration;

use oneflow_resilience::BreakerConfig;
use oneflow_runtime::ServerConfig;
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI itself or any server speaking its API (Ollama, vLLM, Groq,
    /// Mistral, DeepSeek, Together, the mock…). `openai` is an alias.
    #[serde(alias = "openai")]
    #[default]
    OpenaiCompatible,
    /// Azure OpenAI: `base_url` is the resource (`https://NAME.openai.azure.com`),
    /// `upstream_model` the Azure deployment name, `api_version` required.
    Azure,
    /// Anthropic's Messages API: `base_url` `https://api.anthropic.com`.
    Anthropic,
    /// Google Gemini (generateContent): `base_url` `https://generativelanguage.googleapis.com`.
    Gemini,
    /// AWS Bedrock Converse: `region` (or `AWS_REGION`), credentials from the
    /// AWS environment variables; `base_url` only to override the endpoint.
    Bedrock,
    /// Google Cloud Text-to-Speech and Speech-to-Text (speech and
    /// transcription models): a service-account key (`credentials_file`) or
    /// an API key; `base_url` only to override both endpoints.
    Google,
    /// Amazon Polly (speech models): like `bedrock` for region and credentials.
    Polly,
    /// Amazon Transcribe streaming (transcription models): like `bedrock` for
    /// region and credentials.
    Transcribe,
}

/// An upstream account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name, referenced by deployments.
    pub name: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL: OpenAI-compatible with the version path (`https://api.openai.com/v1`),
    /// the others the bare origin; Bedrock: empty for the regional endpoint.
    #[serde(default)]
    pub base_url: String,
    /// Azure's `api-version` (e.g. `2024-10-21`); Anthropic's `anthropic-version`
    /// (default `2023-06-01`); Gemini's API version path (default `v1beta`).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Bedrock's AWS region; default `AWS_REGION` / `AWS_DEFAULT_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    /// Environment variable holding the API key (read at start-up).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// File holding the API key (a mounted secret).
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// Google: the service-account JSON key file (a mounted secret); its
    /// OAuth token is fetched and refreshed by the router.
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// Google: environment variable holding the service-account JSON itself
    /// (a Secret's key, as Kubernetes passes them), instead of a file.
    #[serde(default)]
    pub credentials_env: Option<String>,
    /// Google Speech-to-Text and Transcribe: the language (BCP-47, `en-US`)
    /// assumed when the client names none.
    #[serde(default)]
    pub default_language: Option<String>,
    /// Google Speech-to-Text: its recognition `model` (`latest_long`, …).
    #[serde(default)]
    pub recognition_model: Option<String>,
}

/// A provider + upstream model pair that can serve requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Unique name.
    pub name: String,
    /// Provider name.
    pub provider: String,
    /// Model name the upstream expects.
    pub upstream_model: String,
    /// Requests per minute the upstream account allows (checked through billing).
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute the upstream account allows (checked through billing).
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Share of traffic under the `weighted` strategy (relative; 0 = only as a fallback).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Blended USD per 1M tokens, for the `cost` and `quality` strategies (ranking only;
    /// billing uses its own prices).
    #[serde(default)]
    pub cost: Option<f64>,
    /// Quality score for the `quality` strategy (higher is better).
    #[serde(default)]
    pub quality: Option<f64>,
}

fn default_weight() -> u32 {
    1
}

/// How a model picks its first deployment; the others follow as fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// In the configured order.
    #[default]
    Ordered,
    /// At random, in proportion to the deployments' `weight`.
    Weighted,
    /// The fewest requests in flight.
    LeastInFlight,
    /// Lowest EWMA latency, by the power of two random choices.
    Latency,
    /// Cheapest `cost` first.
    Cost,
    /// Best `quality` among those within the model's `max_cost`.
    Quality,
}

/// What a public model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelOperation {
    /// Chat completions.
    Chat,
    /// Embeddings.
    Embeddings,
    /// Text to speech (`/v1/audio/speech`).
    Speech,
    /// Speech to text (`/v1/audio/transcriptions` and `/translations`).
    Transcription,
}

/// A public model name and the deployments behind it, in fallback order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients send.
    pub name: String,
    /// Chat, embeddings, speech or transcription.
    pub operation: ModelOperation,
    /// Deployment names, tried in order.
    pub deployments: Vec<String>,
    /// Context window in tokens (reported by `/v1/models`).
    #[serde(default)]
    pub context_window: u64,
    /// Output cap used for worst-case reservations when a request sets none.
    #[serde(default = "default_max_output")]
    pub max_output_tokens: u64,
    /// How the first deployment is chosen.
    #[serde(default)]
    pub strategy: Strategy,
    /// Price cap (the deployments' `cost`) for the `quality` strategy.
    #[serde(default)]
    pub max_cost: Option<f64>,
    /// An A/B experiment: each user is assigned one variant for good (by a hash
    /// of the user and the model), served by the variant's deployments first and
    /// then by the model's `deployments` as shared fallbacks.
    #[serde(default)]
    pub variants: Vec<VariantConfig>,
}

/// One arm of an A/B experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Reported in `x-oneflow-variant` and the metrics.
    pub name: String,
    /// Share of users (relative to the other variants).
    pub weight: u32,
    /// Deployment names, ordered by the model's strategy.
    pub deployments: Vec<String>,
}

/// How cache hits are billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HitBilling {
    /// The usage of the original answer is charged again (the client saved latency, not money).
    Full,
    /// Hits cost nothing.
    #[default]
    Free,
}

/// Who shares cached answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Only the user who asked (the default: answers never cross accounts).
    #[default]
    User,
    /// Every caller of the gateway.
    Global,
}

/// Exact-match response cache for non-streaming chat requests that opt in
/// (header `x-oneflow-cache: use` on the gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Off = opt-in requests are served as if no cache existed.
    pub enabled: bool,
    /// How long an answer stays.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Entries kept by the in-process cache (used when `redis.url` is empty).
    pub max_entries: u64,
    /// Answers larger than this are not stored.
    pub max_body_bytes: usize,
    /// Who shares answers.
    pub scope: CacheScope,
    /// How hits are billed.
    pub hit_billing: HitBilling,
    /// Shared cache for every router replica; empty URL = in-process memory.
    pub redis: oneflow_runtime::RedisConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(3600),
            max_entries: 10_000,
            max_body_bytes: 1 << 20,
            scope: CacheScope::User,
            hit_billing: HitBilling::Free,
            redis: oneflow_runtime::RedisConfig::default(),
        }
    }
}

/// Reloading the routing table while serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// How often the configuration file's modification time is checked
    /// (SIGHUP reloads at once either way); 0 = only on SIGHUP.
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch_interval: Duration::from_secs(5),
        }
    }
}

/// Active health probes, on top of the passive health every request feeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Interval between probes of each deployment; 0 = no active probes.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Bound on one probe.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            probe_interval: Duration::ZERO,
            probe_timeout: Duration::from_secs(5),
        }
    }
}

fn default_max_output() -> u64 {
    4096
}

/// Upstream timeouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    /// TCP+TLS connect.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// A whole non-streaming call.
    #[serde(with = "humantime_serde")]
    pub read: Duration,
    /// Streams: until the first event.
    #[serde(with = "humantime_serde")]
    pub first_token: Duration,
    /// Streams: the whole stream.
    #[serde(with = "humantime_serde")]
    pub stream_total: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            first_token: Duration::from_secs(30),
            stream_total: Duration::from_secs(600),
        }
    }
}

/// Configuration of `oneflow-router` (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// Listen address and drain bound.
    pub server: ServerConfig,
    /// Upstream accounts.
    pub providers: Vec<ProviderConfig>,
    /// Provider + model pairs.
    pub deployments: Vec<DeploymentConfig>,
    /// Public models.
    pub models: Vec<ModelConfig>,
    /// Upstream timeouts.
    pub timeouts: TimeoutConfig,
    /// Per-deployment circuit breaker.
    pub breaker: BreakerConfig,
    /// Retries on the same deployment before falling over to the next.
    pub retry: oneflow_resilience::RetryPolicy,
    /// Billing, which keeps the per-deployment RPM/TPM counters shared by every
    /// router replica; unset = deployment limits are not enforced.
    pub billing: Option<oneflow_runtime::GrpcClientConfig>,
    /// Exact-match response cache.
    pub cache: CacheConfig,
    /// Reloading providers, deployments and models while serving.
    pub reload: ReloadConfig,
    /// Active health probes.
    pub health: HealthConfig,
    /// OpenAI voice names → Google and Polly voices, laid over the built-in
    /// table (`[voices.alloy] polly = { voice_id = "Joanna", engine = "neural" }`).
    pub voices: oneflow_audio::VoiceMap,
    /// Logs, metrics, traces.
    pub telemetry: TelemetryConfig,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::new(([0, 0, 0, 0], 50053).into()),
            providers: Vec::new(),
            deployments: Vec::new(),
            models: Vec::new(),
            timeouts: TimeoutConfig::default(),
            breaker: BreakerConfig::default(),
            retry: oneflow_resilience::RetryPolicy::default(),
            billing: None,
            cache: CacheConfig::default(),
            reload: ReloadConfig::default(),
            health: HealthConfig::default(),
            voices: oneflow_audio::VoiceMap::empty(),
            telemetry: TelemetryConfig::default(),
        }
    }
}
