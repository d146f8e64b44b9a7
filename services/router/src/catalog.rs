//! The resolved routing table: configuration checked once at start-up (every
//! reference exists, credentials are readable) and turned into shared
//! deployments carrying their breaker and live statistics. A reload builds a
//! new catalog that keeps the breaker and statistics of every deployment whose
//! name survives, so a reload neither forgets an outage nor resets latencies.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use oneflow_resilience::CircuitBreaker;
use oneflow_runtime::Secret;

use crate::config::{ModelOperation, ProviderKind, RouterConfig, Strategy};

/// A provider with its credential resolved.
#[derive(Debug)]
pub struct Provider {
    /// Name.
    pub name: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// API key, when the provider needs one.
    pub api_key: Option<Secret>,
    /// Azure/Anthropic/Gemini API version.
    pub api_version: Option<String>,
    /// Bedrock, Polly, Transcribe: the region and the credentials to sign with.
    pub aws: Option<Aws>,
    /// Google: the service-account key and its cached OAuth token (`None`
    /// with an API key instead).
    pub google: Option<GoogleAuth>,
    /// Voices for providers that do not speak OpenAI's voice names.
    pub voices: Arc<oneflow_audio::VoiceMap>,
    /// Language assumed by speech-to-text when the client names none.
    pub default_language: String,
    /// Google Speech-to-Text's recognition model.
    pub recognition_model: Option<String>,
}

/// A Google service account and the token it last obtained. The lock is
/// held while a token is fetched, so one refresh runs at a time.
#[derive(Debug)]
pub struct GoogleAuth {
    /// The parsed key (its private part never printed).
    pub key: oneflow_audio::google::auth::ServiceAccountKey,
    /// The current token.
    pub tokens: tokio::sync::Mutex<oneflow_audio::google::auth::TokenCache>,
}

/// What an AWS provider signs its requests with.
#[derive(Debug)]
pub struct Aws {
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Credentials read from the AWS environment variables at start-up (or reload).
    pub credentials: oneflow_aws::Credentials,
}

/// Live statistics of a deployment (passive health).
#[derive(Debug, Default)]
pub struct DeploymentStats {
    /// Requests in flight now.
    pub in_flight: AtomicU64,
    ewma: Mutex<(f64, f64)>,
}

const EWMA_ALPHA: f64 = 0.2;

impl DeploymentStats {
    /// Folds one outcome into the latency and error-rate averages.
    pub fn record(&self, latency_ms: f64, failed: bool) {
        if let Ok(mut g) = self.ewma.lock() {
            let (lat, err) = *g;
            let e = if failed { 1.0 } else { 0.0 };
            *g = if lat == 0.0 && err == 0.0 {
                (latency_ms, e)
            } else {
                (lat + EWMA_ALPHA * (latency_ms - lat), err + EWMA_ALPHA * (e - err))
            };
        }
    }
    /// (EWMA latency in ms, EWMA error rate).
    pub fn snapshot(&self) -> (f64, f64) {
        self.ewma.lock().map_or((0.0, 0.0), |g| *g)
    }
}

/// A deployment: where a request for a model can go.
#[derive(Debug)]
pub struct Deployment {
    /// Name.
    pub name: String,
    /// Its provider.
    pub provider: Arc<Provider>,
    /// Model name sent upstream.
    pub upstream_model: String,
    /// Its circuit breaker (carried over across reloads).
    pub breaker: Arc<CircuitBreaker>,
    /// Its live statistics (carried over across reloads).
    pub stats: Arc<DeploymentStats>,
    /// Upstream requests per minute (0 = unlimited).
    pub requests_per_minute: u64,
    /// Upstream tokens per minute (0 = unlimited).
    pub tokens_per_minute: u64,
    /// Share under the `weighted` strategy.
    pub weight: u32,
    /// Ranking cost (USD per 1M tokens).
    pub cost: Option<f64>,
    /// Quality score.
    pub quality: Option<f64>,
}

/// A public model.
#[derive(Debug)]
pub struct Model {
    /// Public name.
    pub name: String,
    /// Chat or embeddings.
    pub operation: ModelOperation,
    /// Fallback chain.
    pub deployments: Vec<Arc<Deployment>>,
    /// Context window.
    pub context_window: u64,
    /// Output cap.
    pub max_output_tokens: u64,
    /// How the first deployment is chosen.
    pub strategy: Strategy,
    /// Price cap for the `quality` strategy.
    pub max_cost: Option<f64>,
    /// A/B experiment arms (empty = no experiment).
    pub variants: Vec<Variant>,
}

/// One arm of an A/B experiment.
#[derive(Debug)]
pub struct Variant {
    /// Name reported to clients and metrics.
    pub name: String,
    /// Relative share of users.
    pub weight: u32,
    /// The arm's own deployments.
    pub deployments: Vec<Arc<Deployment>>,
}

/// The configuration does not hold together.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A name is used twice.
    #[error("duplicate {kind} name `{name}`")]
    Duplicate {
        /// provider, deployment or model
        kind: &'static str,
        /// the name
        name: String,
    },
    /// A reference points nowhere.
    #[error("{from} refers to unknown {kind} `{name}`")]
    Unknown {
        /// the referring item
        from: String,
        /// provider or deployment
        kind: &'static str,
        /// the missing name
        name: String,
    },
    /// A credential could not be read.
    #[error("provider `{0}`: cannot read its credential (API key file, key file or variable)")]
    Credential(String),
    /// A provider's settings do not fit its kind.
    #[error("provider `{0}`: {1}")]
    Provider(String, String),
    /// A model has no deployment.
    #[error("model `{0}` has no deployments")]
    Empty(String),
    /// An experiment cannot assign anyone.
    #[error("model `{0}`: every variant needs deployments and the weights must not all be 0")]
    BadExperiment(String),
}

/// Every public model by name.
#[derive(Debug)]
pub struct Catalog {
    models: HashMap<String, Arc<Model>>,
    deployments: Vec<Arc<Deployment>>,
}

impl Catalog {
    /// Resolves and checks the configuration.
    pub fn build(config: &RouterConfig) -> Result<Self, CatalogError> {
        Self::rebuild(config, None)
    }

    /// Like [`build`](Self::build), keeping the breakers and statistics of the
    /// `previous` catalog's deployments that keep their name.
    pub fn rebuild(config: &RouterConfig, previous: Option<&Catalog>) -> Result<Self, CatalogError> {
        let carried: HashMap<&str, &Arc<Deployment>> = previous
            .map(|p| p.deployments.iter().map(|d| (d.name.as_str(), d)).collect())
            .unwrap_or_default();
        let voices = Arc::new(oneflow_audio::VoiceMap::with_overrides(config.voices.clone()));
        let mut providers = HashMap::new();
        for p in &config.providers {
            let api_key = match (&p.api_key_file, &p.api_key_env) {
                (Some(file), _) => Some(Secret::new(
                    std::fs::read_to_string(file)
                        .map_err(|_| CatalogError::Credential(p.name.clone()))?
                        .trim(),
                )),
                (None, Some(var)) => std::env::var(var).ok().filter(|v| !v.is_empty()).map(Secret::new),
                (None, None) => None,
            };
            let bad = |why: &str| CatalogError::Provider(p.name.clone(), why.to_owned());
            let aws = if matches!(
                p.kind,
                ProviderKind::Bedrock | ProviderKind::Polly | ProviderKind::Transcribe
            ) {
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                let region = oneflow_aws::resolve_region(p.region.as_deref(), env).map_err(|e| bad(&e.to_string()))?;
                let credentials = oneflow_aws::Credentials::from_env(env).map_err(|e| bad(&e.to_string()))?;
                Some(Aws { region, credentials })
            } else {
                None
            };
            let credentials = match (&p.credentials_file, &p.credentials_env) {
                (Some(file), _) => Some(std::fs::read(file).map_err(|_| CatalogError::Credential(p.name.clone()))?),
                (None, Some(var)) => Some(
                    std::env::var(var)
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                        .ok_or_else(|| CatalogError::Credential(p.name.clone()))?
                        .into_bytes(),
                ),
                (None, None) => None,
            };
            let google = match (credentials, p.kind) {
                (Some(json), ProviderKind::Google) => {
                    let key = oneflow_audio::google::auth::ServiceAccountKey::from_json(&json)
                        .map_err(|e| bad(&format!("service-account key: {e}")))?;
                    Some(GoogleAuth {
                        key,
                        tokens: tokio::sync::Mutex::new(oneflow_audio::google::auth::TokenCache::default()),
                    })
                }
                (Some(_), _) => return Err(bad("credentials_file and credentials_env are for Google providers")),
                (None, ProviderKind::Google) if api_key.is_none() => {
                    return Err(bad(
                        "Google needs a service-account key (credentials_file or credentials_env) or an API key",
                    ));
                }
                (None, _) => None,
            };
            let default_endpoint = matches!(
                p.kind,
                ProviderKind::Bedrock | ProviderKind::Google | ProviderKind::Polly | ProviderKind::Transcribe
            );
            if p.base_url.is_empty() && !default_endpoint {
                return Err(bad("base_url is required"));
            }
            if p.kind == ProviderKind::Azure && p.api_version.is_none() {
                return Err(bad("Azure needs api_version (e.g. \"2024-10-21\")"));
            }
            let provider = Provider {
                name: p.name.clone(),
                kind: p.kind,
                base_url: p.base_url.trim_end_matches('/').to_owned(),
                api_key,
                api_version: p.api_version.clone(),
                aws,
                google,
                voices: voices.clone(),
                default_language: p.default_language.clone().unwrap_or_else(|| "en-US".to_owned()),
                recognition_model: p.recognition_model.clone(),
            };
            if providers.insert(p.name.clone(), Arc::new(provider)).is_some() {
                return Err(CatalogError::Duplicate {
                    kind: "provider",
                    name: p.name.clone(),
                });
            }
        }
        let mut deployments = HashMap::new();
        let mut all = Vec::new();
        for d in &config.deployments {
            let provider = providers
                .get(&d.provider)
                .cloned()
                .ok_or_else(|| CatalogError::Unknown {
                    from: format!("deployment `{}`", d.name),
                    kind: "provider",
                    name: d.provider.clone(),
                })?;
            let (breaker, stats) = match carried.get(d.name.as_str()) {
                Some(old) => (old.breaker.clone(), old.stats.clone()),
                None => (
                    Arc::new(CircuitBreaker::new(config.breaker.clone())),
                    Arc::new(DeploymentStats::default()),
                ),
            };
            let dep = Arc::new(Deployment {
                name: d.name.clone(),
                provider,
                upstream_model: d.upstream_model.clone(),
                breaker,
                stats,
                requests_per_minute: d.requests_per_minute.unwrap_or(0),
                tokens_per_minute: d.tokens_per_minute.unwrap_or(0),
                weight: d.weight,
                cost: d.cost,
                quality: d.quality,
            });
            all.push(dep.clone());
            if deployments.insert(d.name.clone(), dep).is_some() {
                return Err(CatalogError::Duplicate {
                    kind: "deployment",
                    name: d.name.clone(),
                });
            }
        }
        let mut models = HashMap::new();
        for m in &config.models {
            if m.deployments.is_empty() && m.variants.is_empty() {
                return Err(CatalogError::Empty(m.name.clone()));
            }
            let resolve = |names: &[String]| {
                names
                    .iter()
                    .map(|name| {
                        deployments.get(name).cloned().ok_or_else(|| CatalogError::Unknown {
                            from: format!("model `{}`", m.name),
                            kind: "deployment",
                            name: name.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let chain = resolve(&m.deployments)?;
            let mut variants = Vec::with_capacity(m.variants.len());
            for v in &m.variants {
                if v.deployments.is_empty() {
                    return Err(CatalogError::BadExperiment(m.name.clone()));
                }
                variants.push(Variant {
                    name: v.name.clone(),
                    weight: v.weight,
                    deployments: resolve(&v.deployments)?,
                });
            }
            if !variants.is_empty() && variants.iter().all(|v| v.weight == 0) {
                return Err(CatalogError::BadExperiment(m.name.clone()));
            }
            let model = Model {
                name: m.name.clone(),
                operation: m.operation,
                deployments: chain,
                context_window: m.context_window,
                max_output_tokens: m.max_output_tokens,
                strategy: m.strategy,
                max_cost: m.max_cost,
                variants,
            };
            if models.insert(m.name.clone(), Arc::new(model)).is_some() {
                return Err(CatalogError::Duplicate {
                    kind: "model",
                    name: m.name.clone(),
                });
            }
        }
        for d in &all {
            publish_breaker(d);
            for (kind, limit) in [
                ("requests_per_minute", d.requests_per_minute),
                ("tokens_per_minute", d.tokens_per_minute),
            ] {
                #[expect(clippy::cast_precision_loss, reason = "a metric")]
                metrics::gauge!("oneflow_deployment_capacity_limit", "deployment" => d.name.clone(), "kind" => kind)
                    .set(limit as f64);
            }
        }
        Ok(Self {
            models,
            deployments: all,
        })
    }

    /// The model named `name`.
    pub fn model(&self, name: &str) -> Option<Arc<Model>> {
        self.models.get(name).cloned()
    }

    /// Every model, sorted by name.
    pub fn models(&self) -> Vec<Arc<Model>> {
        let mut v: Vec<_> = self.models.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Every deployment.
    pub fn deployments(&self) -> &[Arc<Deployment>] {
        &self.deployments
    }
}

/// Publishes `dep`'s breaker state as `oneflow_router_breaker_state`
/// (0 closed, 1 open, 2 half-open), which the breaker alert watches.
pub(crate) fn publish_breaker(dep: &Deployment) {
    let v = match dep.breaker.state() {
        oneflow_resilience::BreakerState::Closed => 0.0,
        oneflow_resilience::BreakerState::Open => 1.0,
        oneflow_resilience::BreakerState::HalfOpen => 2.0,
    };
    metrics::gauge!("oneflow_router_breaker_state", "deployment" => dep.name.clone()).set(v);
}

/// Counts a request in flight.
pub(crate) fn inc(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

/// Counts a request done.
pub(crate) fn dec(counter: &AtomicU64) {
    counter.fetch_sub(1, Ordering::Relaxed);
}
