//! The `RouterService` gRPC server: picks a deployment along the model's
//! fallback chain (skipping open breakers), calls it, and relays the answer.
//! Streams are relayed event by event with their usage always counted: the
//! upstream is always asked for usage, and a stream that breaks off ends with
//! the usage seen so far followed by an error event, never a clean end.
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use oneflow_proto::common::v1::{ErrorInfo, Operation, Usage};
use oneflow_proto::router::v1 as pb;
use oneflow_proto::router::v1::router_service_server::RouterService;
use oneflow_resilience::{RetryPolicy, Retryable as _, with_deadlines};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

use arc_swap::ArcSwap;

use crate::audio::{self, Payload, Reply};
use crate::cache::ResponseCache;
use crate::catalog::{Catalog, Deployment, Model, dec, inc};
use crate::config::{HitBilling, ModelOperation, TimeoutConfig};
use crate::dialect::{self, Decoder, Item, Op};
use crate::upstream::{Upstream, UpstreamError};
use oneflow_proto::billing::v1::AcquireDeploymentCapacityRequest;
use oneflow_proto::billing::v1::billing_service_client::BillingServiceClient;
use oneflow_runtime::TracedChannel;

/// gRPC implementation of the router.
#[derive(Debug, Clone)]
pub struct RouterGrpc {
    catalog: Arc<ArcSwap<Catalog>>,
    upstream: Upstream,
    timeouts: TimeoutConfig,
    retry: RetryPolicy,
    capacity: Option<(BillingServiceClient<TracedChannel>, std::time::Duration)>,
    cache: Option<(Arc<ResponseCache>, HitBilling)>,
}

/// A validated model request: the JSON body and the model it names.
struct ModelCall {
    body: Map<String, Value>,
    model: Arc<Model>,
    /// A speech-to-text upload (then `body` is empty).
    upload: Option<audio::Upload>,
}

fn invalid(param: &str, message: impl Into<String>) -> Status {
    oneflow_proto::status_with_info(
        Code::InvalidArgument,
        message,
        ErrorInfo {
            code: "invalid_request_error".into(),
            param: param.into(),
            ..ErrorInfo::default()
        },
    )
}

fn parse_call(catalog: &Catalog, body: &[u8], operation: ModelOperation, required: &str) -> Result<ModelCall, Status> {
    let body: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| invalid("", format!("request body is not a JSON object: {e}")))?;
    let name = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(invalid("model", "`model` is required and must be a string")),
    };
    if !body.contains_key(required) {
        return Err(invalid(required, format!("`{required}` is required")));
    }
    let model = catalog
        .model(&name)
        .filter(|m| m.operation == operation)
        .ok_or_else(|| {
            oneflow_proto::status_with_info(
                Code::NotFound,
                format!("The model `{name}` does not exist or you do not have access to it."),
                ErrorInfo {
                    code: "model_not_found".into(),
                    param: "model".into(),
                    ..ErrorInfo::default()
                },
            )
        })?;
    Ok(ModelCall {
        body,
        model,
        upload: None,
    })
}

/// The one mapping from upstream failures to statuses.
fn upstream_status(e: UpstreamError) -> Status {
    let millis = |d: Option<std::time::Duration>| d.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    match e {
        UpstreamError::Status {
            status,
            message,
            code,
            retry_after,
        } => match status {
            429 => oneflow_proto::status_with_info(
                Code::ResourceExhausted,
                message,
                ErrorInfo {
                    code: "rate_limit_exceeded".into(),
                    retry_after_millis: millis(retry_after),
                    upstream_status: 429,
                    ..ErrorInfo::default()
                },
            ),
            401 | 403 => oneflow_proto::status_with_info(
                Code::Unavailable,
                "the upstream provider rejected the gateway's credentials",
                ErrorInfo {
                    code: "upstream_auth_error".into(),
                    upstream_status: 502,
                    ..ErrorInfo::default()
                },
            ),
            // The deployment names a model or endpoint the upstream does not
            // have: the gateway's configuration, not the client's request.
            404 => oneflow_proto::status_with_info(
                Code::Unavailable,
                "the upstream provider does not know this deployment's model",
                ErrorInfo {
                    code: "upstream_error".into(),
                    upstream_status: 502,
                    ..ErrorInfo::default()
                },
            ),
            408 => Status::deadline_exceeded("the upstream provider timed out"),
            s if s >= 500 => oneflow_proto::status_with_info(
                Code::Unavailable,
                format!("upstream provider error (HTTP {s})"),
                ErrorInfo {
                    code: "upstream_error".into(),
                    retry_after_millis: millis(retry_after),
                    upstream_status: 502,
                    ..ErrorInfo::default()
                },
            ),
            s => oneflow_proto::status_with_info(
                Code::InvalidArgument,
                message,
                ErrorInfo {
                    code: code.unwrap_or_else(|| "invalid_request_error".into()),
                    upstream_status: u32::from(s),
                    ..ErrorInfo::default()
                },
            ),
        },
        UpstreamError::Connect | UpstreamError::Protocol => oneflow_proto::status_with_info(
            Code::Unavailable,
            "the upstream provider is unreachable",
            ErrorInfo {
                code: "upstream_error".into(),
                upstream_status: 502,
                ..ErrorInfo::default()
            },
        ),
        UpstreamError::Timeout => Status::deadline_exceeded("the upstream provider timed out"),
        UpstreamError::Unsupported(message) => invalid("", message),
        UpstreamError::Config(message) => {
            tracing::error!(error = %message, "a deployment is misconfigured");
            oneflow_proto::status_with_info(
                Code::Unavailable,
                "the upstream provider is misconfigured",
                ErrorInfo {
                    code: "upstream_error".into(),
                    upstream_status: 502,
                    ..ErrorInfo::default()
                },
            )
        }
    }
}

fn to_bytes(body: &Map<String, Value>) -> Result<Bytes, Status> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|_| Status::internal("cannot encode the upstream request"))
}

fn route(dep: &Deployment, attempts: u32, variant: Option<&str>) -> pb::Route {
    pb::Route {
        provider: dep.provider.name.clone(),
        deployment: dep.name.clone(),
        upstream_model: dep.upstream_model.clone(),
        variant: variant.unwrap_or_default().to_owned(),
        cache_hit: false,
        attempts,
    }
}

/// Who an experiment assigns: the user, else the key, else the request.
fn subject(meta: Option<&pb::RequestMeta>) -> &str {
    meta.map_or("", |m| {
        [&m.user_id, &m.key_id, &m.request_id]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or("", String::as_str)
    })
}

/// What [`RouterGrpc::dispatch`] found: the deployment that answered, its
/// response, the attempts it took and the experiment arm, if any.
struct Dispatched {
    dep: Arc<Deployment>,
    resp: reqwest::Response,
    /// How to read `resp` (audio dialects translate it).
    reply: Reply,
    attempts: u32,
    variant: Option<String>,
}

impl Dispatched {
    fn route(&self) -> pb::Route {
        route(&self.dep, self.attempts, self.variant.as_deref())
    }
}

/// An upstream failure seen for a retry on the same deployment: only what may
/// pass by itself (429, 5xx, connection errors, timeouts) is retried there;
/// rejected credentials fall over to the next deployment instead.
struct SameDeployment(UpstreamError);

impl oneflow_resilience::Retryable for SameDeployment {
    fn is_retryable(&self) -> bool {
        match &self.0 {
            UpstreamError::Status { status, .. } => *status == 429 || *status >= 500,
            UpstreamError::Connect | UpstreamError::Timeout => true,
            UpstreamError::Protocol | UpstreamError::Unsupported(_) | UpstreamError::Config(_) => false,
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.0.retry_after()
    }
}

/// Tokens a request may use, for the deployment's TPM: the body at 4 bytes a
/// token plus the output allowance.
fn estimate_tokens(body: &Map<String, Value>, encoded_len: usize, model_cap: u64) -> u64 {
    let output = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .unwrap_or(model_cap);
    let input = encoded_len.div_ceil(4);
    u64::try_from(input).unwrap_or(u64::MAX).saturating_add(output)
}

/// Rough input-token estimate (4 bytes a token) for streams cut before the
/// upstream reported usage.
fn estimate_input_tokens(body: &Map<String, Value>) -> u64 {
    let bytes = body.get("messages").map_or(0, |m| m.to_string().len());
    u64::try_from(bytes.div_ceil(4)).unwrap_or(u64::MAX)
}

type ChatStream = Pin<Box<dyn Stream<Item = Result<pb::ChatStreamEvent, Status>> + Send>>;
type SpeechStream = Pin<Box<dyn Stream<Item = Result<pb::SpeechEvent, Status>> + Send>>;

fn event(e: pb::chat_stream_event::Event) -> Result<pb::ChatStreamEvent, Status> {
    Ok(pb::ChatStreamEvent { event: Some(e) })
}

impl RouterGrpc {
    /// A router over `catalog`.
    pub fn new(catalog: Arc<Catalog>, upstream: Upstream, timeouts: TimeoutConfig) -> Self {
        Self::with_table(Arc::new(ArcSwap::new(catalog)), upstream, timeouts)
    }

    /// A router over a routing table that may be swapped while it serves
    /// (requests in flight keep the table they started with).
    pub fn with_table(catalog: Arc<ArcSwap<Catalog>>, upstream: Upstream, timeouts: TimeoutConfig) -> Self {
        Self {
            catalog,
            upstream,
            timeouts,
            retry: RetryPolicy::default(),
            capacity: None,
            cache: None,
        }
    }

    /// Serves opted-in non-streaming chat requests from `cache`; hits are
    /// billed as `billing` says.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<ResponseCache>, billing: HitBilling) -> Self {
        self.cache = Some((cache, billing));
        self
    }

    /// Retries on the same deployment before falling over (default: 3 retries,
    /// exponential backoff with full jitter, Retry-After honoured).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Enforces deployments' RPM/TPM through billing's shared counters.
    #[must_use]
    pub fn with_capacity(mut self, billing: BillingServiceClient<TracedChannel>, timeout: std::time::Duration) -> Self {
        self.capacity = Some((billing, timeout));
        self
    }

    /// Asks billing for room on `dep` this minute: `Ok` to go, `Err` with the
    /// wait when the deployment is full. Fails open (with a warning) when
    /// billing cannot answer within its deadline, so its outage does not stop traffic.
    async fn acquire(&self, dep: &Deployment, tokens: u64) -> Result<(), u64> {
        let Some((client, timeout)) = &self.capacity else {
            return Ok(());
        };
        if dep.requests_per_minute == 0 && dep.tokens_per_minute == 0 {
            return Ok(());
        }
        let mut request = tonic::Request::new(AcquireDeploymentCapacityRequest {
            deployment: dep.name.clone(),
            tokens,
            requests_per_minute: dep.requests_per_minute,
            tokens_per_minute: dep.tokens_per_minute,
        });
        request.set_timeout(*timeout);
        match client.clone().acquire_deployment_capacity(request).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                if answer.granted {
                    Ok(())
                } else {
                    Err(answer.retry_after_millis.max(1))
                }
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), deployment = %dep.name, "capacity check failed; sending anyway");
                Ok(())
            }
        }
    }

    /// Tries the model's deployments in order until one answers.
    async fn dispatch(
        &self,
        call: &ModelCall,
        meta: Option<&pb::RequestMeta>,
        op: Op,
        stream: bool,
    ) -> Result<Dispatched, Status> {
        let mut last: Option<Status> = None;
        // A deployment that cannot express the request (400 if none can);
        // any provider failure seen meanwhile is the better answer.
        let mut refused: Option<Status> = None;
        let mut attempts = 0u32;
        let mut full_wait: Option<u64> = None;
        let mut tokens: Option<u64> = None;
        // The strategy orders the chain; the RNG is dropped before any await.
        let (variant, chain) = {
            let mut rng = rand::rng();
            let (arm, chain) = crate::strategy::plan(&call.model, subject(meta), &mut rng);
            (arm.map(|a| a.name.clone()), chain)
        };
        if let Some(v) = &variant {
            metrics::counter!("oneflow_router_experiment_requests_total", "model" => call.model.name.clone(), "variant" => v.clone())
                .increment(1);
        }
        // Encoded once for every deployment and retry.
        let encoded = if call.upload.is_none() {
            to_bytes(&call.body)?
        } else {
            Bytes::new()
        };
        for dep in &chain {
            if !dep.breaker.would_admit() {
                metrics::counter!("oneflow_router_breaker_skips_total", "deployment" => dep.name.clone()).increment(1);
                continue;
            }
            let limited = dep.requests_per_minute > 0 || dep.tokens_per_minute > 0;
            let estimate = if limited {
                *tokens.get_or_insert_with(|| {
                    // Embeddings produce no output tokens.
                    let cap = if call.model.operation == ModelOperation::Chat {
                        call.model.max_output_tokens
                    } else {
                        0
                    };
                    estimate_tokens(&call.body, encoded.len(), cap)
                })
            } else {
                0
            };
            if let Err(wait) = self.acquire(dep, estimate).await {
                metrics::counter!("oneflow_router_capacity_skips_total", "deployment" => dep.name.clone()).increment(1);
                full_wait = Some(full_wait.map_or(wait, |w| w.min(wait)));
                continue;
            }
            let Ok(permit) = dep.breaker.try_acquire() else {
                metrics::counter!("oneflow_router_breaker_skips_total", "deployment" => dep.name.clone()).increment(1);
                continue;
            };
            attempts += 1;
            // Audio is shaped per deployment (`audio::prepare`); chat and
            // embeddings: each dialect sets the upstream model and, for
            // streams, asks for usage (`oneflow-providers`).
            let payload = match (&call.upload, op) {
                (Some(u), _) => Some(Payload::Upload(u)),
                (None, Op::Speech) => Some(Payload::Speech(&call.body)),
                (None, _) => None,
            };
            let start = Instant::now();
            inc(&dep.stats.in_flight);
            // Transient failures are retried on this deployment with backoff
            // (honouring Retry-After) before the chain falls over to the next.
            // Nothing has reached the client yet, so a retry is safe.
            let first_token = self.timeouts.first_token;
            let max_out = call.model.max_output_tokens;
            let result = oneflow_resilience::retry(&self.retry, |attempt| {
                let (encoded, payload) = (&encoded, payload.as_ref());
                async move {
                    if attempt > 1 {
                        metrics::counter!("oneflow_router_retries_total", "deployment" => dep.name.clone())
                            .increment(1);
                    }
                    let sent = async {
                        match payload {
                            Some(payload) => self.upstream.send_audio(dep, op, payload, stream).await,
                            None => self
                                .upstream
                                .send(dep, op, encoded, stream, max_out, "application/json")
                                .await
                                .map(|resp| (resp, Reply::Raw)),
                        }
                    };
                    let outcome = if stream {
                        tokio::time::timeout(first_token, sent)
                            .await
                            .unwrap_or(Err(UpstreamError::Timeout))
                    } else {
                        sent.await
                    };
                    outcome.map_err(SameDeployment)
                }
            })
            .await
            .map_err(|SameDeployment(e)| e);
            dec(&dep.stats.in_flight);
            let elapsed = start.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok((resp, reply)) => {
                    permit.success();
                    crate::catalog::publish_breaker(dep);
                    dep.stats.record(elapsed, false);
                    return Ok(Dispatched {
                        dep: dep.clone(),
                        resp,
                        reply,
                        attempts,
                        variant,
                    });
                }
                Err(e @ (UpstreamError::Unsupported(_) | UpstreamError::Config(_))) => {
                    // Not the provider's failure: leave its breaker alone and
                    // let a deployment that can take the request try.
                    drop(permit);
                    tracing::info!(deployment = %dep.name, error = %e, "deployment cannot take this request; next");
                    refused.get_or_insert_with(|| upstream_status(e));
                }
                Err(e) if e.is_retryable() => {
                    permit.failure();
                    crate::catalog::publish_breaker(dep);
                    dep.stats.record(elapsed, true);
                    metrics::counter!("oneflow_router_upstream_failures_total", "deployment" => dep.name.clone())
                        .increment(1);
                    tracing::warn!(deployment = %dep.name, error = %e, "upstream failed; falling over");
                    last = Some(upstream_status(e));
                }
                Err(e) => {
                    drop(permit);
                    dep.stats.record(elapsed, false);
                    return Err(upstream_status(e));
                }
            }
        }
        if let (None, None, Some(wait)) = (&last, &refused, full_wait) {
            // Every deployment that could serve is at its upstream's RPM/TPM.
            return Err(oneflow_proto::status_with_info(
                Code::ResourceExhausted,
                format!(
                    "every deployment of `{}` is at its provider's rate limit; retry shortly",
                    call.model.name
                ),
                ErrorInfo {
                    code: "rate_limit_exceeded".into(),
                    retry_after_millis: wait,
                    ..ErrorInfo::default()
                },
            ));
        }
        Err(last.or(refused).unwrap_or_else(|| {
            oneflow_proto::status_with_info(
                Code::Unavailable,
                format!("no healthy deployment for model `{}`", call.model.name),
                ErrorInfo {
                    code: "no_healthy_deployment".into(),
                    retry_after_millis: 1000,
                    ..ErrorInfo::default()
                },
            )
        }))
    }

    async fn unary(
        &self,
        call: &ModelCall,
        meta: Option<&pb::RequestMeta>,
        op: Op,
    ) -> Result<(pb::Route, Bytes, Usage), Status> {
        let base64 = call.body.get("encoding_format").and_then(Value::as_str) == Some("base64");
        let d = self.dispatch(call, meta, op, false).await?;
        let route = d.route();
        let body = Upstream::body(d.resp).await.map_err(upstream_status)?;
        let (body, mut usage) =
            dialect::answer(&d.dep, op, base64, body, call.model.max_output_tokens).map_err(upstream_status)?;
        if op == Op::Embeddings && usage.input_tokens == 0 {
            // Some providers (Gemini) do not count embedding tokens: bill the
            // input at 4 bytes a token rather than give it away.
            let bytes = call.body.get("input").map_or(0, |i| i.to_string().len());
            usage.input_tokens = u64::try_from(bytes.div_ceil(4)).unwrap_or(u64::MAX);
        }
        Ok((route, body, usage))
    }

    /// A non-streaming chat answer, from the cache when the caller opted in and
    /// an identical request was answered within the TTL.
    async fn cached_chat(&self, call: &ModelCall, meta: Option<&pb::RequestMeta>) -> Result<pb::ChatResponse, Status> {
        let cache = match (&self.cache, meta) {
            (Some((cache, billing)), Some(m)) if m.cache => Some((cache, *billing, m)),
            _ => None,
        };
        let key = cache.map(|(c, _, m)| c.key(&m.user_id, &call.model.name, &call.body));
        if let (Some((cache, billing, _)), Some(key)) = (cache, &key)
            && let Some(mut hit) = cache.get(key).await
        {
            metrics::counter!("oneflow_router_cache_requests_total", "result" => "hit").increment(1);
            if let Some(r) = hit.route.as_mut() {
                r.cache_hit = true;
                r.attempts = 0;
            }
            if billing == HitBilling::Free {
                hit.usage = Some(Usage::default());
            }
            return Ok(hit);
        }
        let (route, body, usage) = self.unary(call, meta, Op::Chat).await?;
        let answer = pb::ChatResponse {
            route: Some(route),
            body: body.to_vec(),
            usage: Some(usage),
        };
        if let (Some((cache, _, _)), Some(key)) = (cache, &key) {
            metrics::counter!("oneflow_router_cache_requests_total", "result" => "miss").increment(1);
            cache.put(key, &answer).await;
        }
        Ok(answer)
    }
}

#[tonic::async_trait]
impl RouterService for RouterGrpc {
    #[tracing::instrument(skip_all)]
    async fn chat_completion(&self, request: Request<pb::ChatRequest>) -> Result<Response<pb::ChatResponse>, Status> {
        let r = request.into_inner();
        let mut call = parse_call(&self.catalog.load(), &r.body, ModelOperation::Chat, "messages")?;
        call.body.remove("stream");
        call.body.remove("stream_options");
        Ok(Response::new(self.cached_chat(&call, r.meta.as_ref()).await?))
    }

    type StreamChatCompletionStream = ChatStream;

    #[tracing::instrument(skip_all)]
    async fn stream_chat_completion(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::StreamChatCompletionStream>, Status> {
        use pb::chat_stream_event::Event;
        let r = request.into_inner();
        let mut call = parse_call(&self.catalog.load(), &r.body, ModelOperation::Chat, "messages")?;
        let include_usage = call
            .body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        call.body.insert("stream".into(), Value::Bool(true));
        let input_estimate = estimate_input_tokens(&call.body);
        let dispatched = self.dispatch(&call, r.meta.as_ref(), Op::Chat, true).await?;
        let route = dispatched.route();
        let Dispatched { dep, resp, .. } = dispatched;
        let (tx, rx) = mpsc::channel(64);
        let first_token = self.timeouts.first_token;
        let total = self.timeouts.stream_total;
        tokio::spawn(async move {
            if tx.send(event(Event::Route(route))).await.is_err() {
                return;
            }
            let body = with_deadlines(resp.bytes_stream(), first_token, total);
            let mut body = std::pin::pin!(body);
            let mut decoder = Decoder::new(&dep);
            let mut usage: Option<Usage> = None;
            let mut chunks = 0u64;
            let mut failure: Option<String> = None;
            'read: loop {
                let (decoded, ended) = match body.next().await {
                    Some(Ok(Ok(bytes))) => (decoder.feed(&bytes), false),
                    Some(Ok(Err(_))) => {
                        failure = Some("the upstream stream broke off".to_owned());
                        break;
                    }
                    Some(Err(deadline)) => {
                        failure = Some(deadline.to_string());
                        break;
                    }
                    None => match decoder.finish() {
                        Ok(items) => (Ok(items), true),
                        Err(_) => {
                            failure = Some("the upstream closed the stream before it finished".to_owned());
                            break;
                        }
                    },
                };
                let items = match decoded {
                    Ok(items) => items,
                    Err(e) => {
                        failure = Some(format!("unreadable upstream stream: {e}"));
                        break;
                    }
                };
                for item in items {
                    match item {
                        Item::Chunk(data) => {
                            // The usage-only chunk asked for on the client's behalf.
                            if !include_usage && memchr_usage(&data) && has_empty_choices(&data) {
                                continue;
                            }
                            chunks += 1;
                            if tx.send(event(Event::Data(data.to_vec()))).await.is_err() {
                                // The caller went away: dropping the response cancels the upstream call.
                                return;
                            }
                        }
                        Item::Usage(u) => usage = Some(u),
                        Item::Error(message) => {
                            failure = Some(message);
                            break 'read;
                        }
                    }
                }
                if ended {
                    break;
                }
            }
            let usage = usage.unwrap_or(Usage {
                input_tokens: input_estimate,
                output_tokens: chunks,
                ..Usage::default()
            });
            let _ = tx.send(event(Event::Usage(usage))).await;
            if let Some(message) = failure {
                metrics::counter!("oneflow_router_stream_cuts_total", "deployment" => dep.name.clone()).increment(1);
                if let Ok(p) = dep.breaker.try_acquire() {
                    p.failure();
                }
                crate::catalog::publish_breaker(&dep);
                let error = pb::StreamError {
                    message,
                    info: Some(ErrorInfo {
                        code: "upstream_stream_error".into(),
                        upstream_status: 502,
                        ..ErrorInfo::default()
                    }),
                };
                let _ = tx.send(event(Event::Error(error))).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all)]
    async fn embeddings(
        &self,
        request: Request<pb::EmbeddingsRequest>,
    ) -> Result<Response<pb::EmbeddingsResponse>, Status> {
        let r = request.into_inner();
        let call = parse_call(&self.catalog.load(), &r.body, ModelOperation::Embeddings, "input")?;
        let (route, body, usage) = self.unary(&call, r.meta.as_ref(), Op::Embeddings).await?;
        Ok(Response::new(pb::EmbeddingsResponse {
            route: Some(route),
            body: body.to_vec(),
            usage: Some(usage),
        }))
    }

    type SpeechStream = SpeechStream;

    #[tracing::instrument(skip_all)]
    async fn speech(&self, request: Request<pb::SpeechRequest>) -> Result<Response<Self::SpeechStream>, Status> {
        use pb::speech_event::Event;
        let r = request.into_inner();
        let speech: oneflow_audio::SpeechRequest =
            serde_json::from_slice(&r.body).map_err(|e| invalid("", format!("invalid speech request: {e}")))?;
        speech.validate().map_err(|e| invalid("", e.to_string()))?;
        let content_type = speech
            .format()
            .map_err(|e| invalid("response_format", e.to_string()))?
            .content_type();
        let characters = u64::try_from(speech.input.chars().count()).unwrap_or(u64::MAX);
        let call = parse_call(&self.catalog.load(), &r.body, ModelOperation::Speech, "input")?;
        let dispatched = self.dispatch(&call, r.meta.as_ref(), Op::Speech, true).await?;
        let route = dispatched.route();
        let Dispatched { dep, resp, reply, .. } = dispatched;
        // Google answers JSON around the whole audio: read and decoded here,
        // so an unreadable answer is still an error status, not a cut stream.
        let (whole, prefix) = match reply {
            Reply::GoogleSpeech(format) => {
                let body = Upstream::body(resp).await.map_err(upstream_status)?;
                (
                    Some(audio::google_speech(&body, format).map_err(upstream_status)?),
                    None,
                )
            }
            Reply::Prefixed(prefix) => (None, Some((Some(prefix), resp))),
            _ => (None, Some((None, resp))),
        };
        let (first_byte, total) = (self.timeouts.first_token, self.timeouts.stream_total);
        let (tx, rx) = mpsc::channel(32);
        tokio::spawn(async move {
            let send = |e: Event| {
                let tx = tx.clone();
                async move { tx.send(Ok(pb::SpeechEvent { event: Some(e) })).await.is_ok() }
            };
            if !send(Event::Route(route)).await || !send(Event::ContentType(content_type.to_owned())).await {
                return;
            }
            let mut failure = None;
            if let Some(audio) = whole
                && !send(Event::Audio(audio.to_vec())).await
            {
                return;
            }
            if let Some((prefix, resp)) = prefix {
                if let Some(prefix) = prefix
                    && !send(Event::Audio(prefix.to_vec())).await
                {
                    return;
                }
                let body = with_deadlines(resp.bytes_stream(), first_byte, total);
                let mut body = std::pin::pin!(body);
                while let Some(item) = body.next().await {
                    match item {
                        Ok(Ok(bytes)) => {
                            if !send(Event::Audio(bytes.to_vec())).await {
                                return;
                            }
                        }
                        Ok(Err(_)) => {
                            failure = Some("the upstream audio stream broke off".to_owned());
                            break;
                        }
                        Err(deadline) => {
                            failure = Some(deadline.to_string());
                            break;
                        }
                    }
                }
            }
            // Characters are billed once synthesis started, as the provider bills them.
            let usage = Usage {
                characters,
                ..Usage::default()
            };
            send(Event::Usage(usage)).await;
            if let Some(message) = failure {
                metrics::counter!("oneflow_router_stream_cuts_total", "deployment" => dep.name.clone()).increment(1);
                send(Event::Error(pb::StreamError {
                    message,
                    info: Some(ErrorInfo {
                        code: "upstream_stream_error".into(),
                        upstream_status: 502,
                        ..ErrorInfo::default()
                    }),
                }))
                .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all)]
    async fn transcribe(
        &self,
        request: Request<pb::TranscriptionRequest>,
    ) -> Result<Response<pb::TranscriptionResponse>, Status> {
        let r = request.into_inner();
        if r.model.is_empty() {
            return Err(invalid("model", "`model` is required"));
        }
        let info = oneflow_audio::inspect(r.audio.clone(), None).map_err(|e| invalid("file", e.to_string()))?;
        let audio_millis = u64::try_from(info.duration.as_millis()).unwrap_or(u64::MAX);
        let model = self
            .catalog
            .load()
            .model(&r.model)
            .filter(|m| m.operation == ModelOperation::Transcription)
            .ok_or_else(|| {
                oneflow_proto::status_with_info(
                    Code::NotFound,
                    format!(
                        "The model `{}` does not exist or you do not have access to it.",
                        r.model
                    ),
                    ErrorInfo {
                        code: "model_not_found".into(),
                        param: "model".into(),
                        ..ErrorInfo::default()
                    },
                )
            })?;
        let call = ModelCall {
            body: Map::new(),
            model,
            upload: Some(audio::Upload {
                audio: r.audio,
                filename: if r.filename.is_empty() {
                    format!("audio.{}", info.format.extension())
                } else {
                    r.filename
                },
                fields: r.fields,
                info,
            }),
        };
        let op = Op::Transcription { translate: r.translate };
        let d = self.dispatch(&call, r.meta.as_ref(), op, false).await?;
        let route = d.route();
        let Dispatched { dep, resp, reply, .. } = d;
        let (content_type, body) = match reply {
            Reply::GoogleTranscript { call, request } => {
                let body = Upstream::body(resp).await.map_err(upstream_status)?;
                audio::google_transcript(&body, &call, &request).map_err(upstream_status)?
            }
            Reply::Transcribe { mut decoder, request } => {
                let mut body = resp.bytes_stream();
                let mut failure = None;
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(bytes) => {
                            if let Err(e) = decoder.feed(&bytes) {
                                failure = Some(e);
                                break;
                            }
                        }
                        Err(_) => {
                            failure = Some(oneflow_aws::AwsError::Protocol(
                                "the transcript stream broke off".to_owned(),
                            ));
                            break;
                        }
                    }
                }
                let transcript = match failure {
                    Some(e) => Err(e),
                    None => decoder.finish(),
                };
                match transcript {
                    Ok(t) => audio::render(&t, &request),
                    Err(e) => {
                        // An exception inside the stream: the provider failed
                        // after answering 200, so its breaker hears of it.
                        if let Ok(p) = dep.breaker.try_acquire()
                            && e.http_status() >= 500
                        {
                            p.failure();
                        }
                        return Err(upstream_status(dialect::aws_error(e)));
                    }
                }
            }
            _ => {
                let content_type = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned();
                (content_type, Upstream::body(resp).await.map_err(upstream_status)?)
            }
        };
        Ok(Response::new(pb::TranscriptionResponse {
            route: Some(route),
            body: body.to_vec(),
            content_type,
            usage: Some(Usage {
                audio_millis,
                ..Usage::default()
            }),
        }))
    }

    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let models = self
            .catalog
            .load()
            .models()
            .iter()
            .map(|m| pb::Model {
                id: m.name.clone(),
                operation: match m.operation {
                    ModelOperation::Chat => Operation::Chat,
                    ModelOperation::Embeddings => Operation::Embeddings,
                    ModelOperation::Speech => Operation::Speech,
                    ModelOperation::Transcription => Operation::Transcription,
                }
                .into(),
                context_window: m.context_window,
                max_output_tokens: m.max_output_tokens,
                owned_by: m
                    .deployments
                    .first()
                    .map_or_else(String::new, |d| d.provider.name.clone()),
                created: 0,
            })
            .collect();
        Ok(Response::new(pb::ListModelsResponse { models }))
    }

    async fn provider_health(
        &self,
        _request: Request<pb::ProviderHealthRequest>,
    ) -> Result<Response<pb::ProviderHealthResponse>, Status> {
        let deployments = self
            .catalog
            .load()
            .deployments()
            .iter()
            .map(|d| {
                let (lat, err) = d.stats.snapshot();
                pb::DeploymentHealth {
                    deployment: d.name.clone(),
                    provider: d.provider.name.clone(),
                    breaker_state: match d.breaker.state() {
                        oneflow_resilience::BreakerState::Closed => "closed",
                        oneflow_resilience::BreakerState::Open => "open",
                        oneflow_resilience::BreakerState::HalfOpen => "half_open",
                    }
                    .to_owned(),
                    ewma_latency_millis: lat,
                    error_rate: err,
                    in_flight: d.stats.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                }
            })
            .collect();
        Ok(Response::new(pb::ProviderHealthResponse { deployments }))
    }
}

/// Cheap pre-check before parsing a chunk for usage.
fn memchr_usage(data: &[u8]) -> bool {
    data.windows(7).any(|w| w == b"\"usage\"")
}

fn has_empty_choices(data: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Choices {
        #[serde(default)]
        choices: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Choices>(data).is_ok_and(|c| c.choices.is_empty())
}
