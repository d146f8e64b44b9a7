//! The `BillingService` gRPC server: validated commands in, precise statuses
//! out (with `ErrorInfo` codes the gateway maps to OpenAI errors).
use std::sync::Arc;
use std::time::Duration;

use oneflow_proto::billing::v1 as pb;
use oneflow_proto::billing::v1::billing_service_server::BillingService;
use oneflow_proto::common::v1::{ErrorInfo, KeyLimits, Operation, Usage};
use tonic::{Code, Request, Response, Status};

use crate::batch::SettleBatcher;
use crate::counters::{Counters, Reserve};
use crate::limits::{self, LimitKind, LimitsConfig};
use crate::pricing::{ModelPrice, PriceBook, PriceError, format_cents, parse_credits};
use crate::store::{BillingStore, EntryKind, NewEntry, OwnedUsageRecord, StoreError, UsageGroup, now_millis};

/// gRPC implementation of the billing service.
#[derive(Clone, Debug)]
pub struct BillingGrpc {
    store: BillingStore,
    settlements: SettleBatcher,
    counters: Counters,
    prices: PriceBook,
    reservation_ttl: Duration,
    limits: Arc<LimitsConfig>,
    user_credit_cap: Option<i64>,
}

/// At most this many settlements share one transaction.
const SETTLE_BATCH: usize = 128;

fn store_status(e: StoreError) -> Status {
    tracing::error!(error = %e, "billing store");
    match &e {
        StoreError::Query(q) => oneflow_runtime::count_db_error(Some(q)),
        StoreError::Connect(_) => oneflow_runtime::count_db_error(None),
        StoreError::Migrate(_) | StoreError::WriterGone => {}
    }
    match e {
        StoreError::Connect(_) | StoreError::Query(_) | StoreError::WriterGone => {
            Status::unavailable("billing storage unavailable")
        }
        StoreError::Migrate(_) => Status::internal("billing storage error"),
    }
}

fn price_status(e: PriceError) -> Status {
    match e {
        // A model priced for tokens but not for the characters or audio a
        // request uses is as unusable for it as a model without any price.
        PriceError::NotPriced(_) | PriceError::UnitNotPriced { .. } => oneflow_proto::status_with_info(
            Code::FailedPrecondition,
            e.to_string(),
            ErrorInfo {
                code: "model_not_priced".into(),
                param: "model".into(),
                ..ErrorInfo::default()
            },
        ),
        PriceError::Overflow => Status::invalid_argument(e.to_string()),
    }
}

fn counter_status(e: &crate::counters::CounterError) -> Status {
    tracing::error!(error = %e, "billing counters");
    metrics::counter!("oneflow_billing_counter_errors_total").increment(1);
    Status::unavailable("billing counters unavailable")
}

fn price_proto(from: i64, p: &ModelPrice) -> pb::Price {
    pb::Price {
        model: p.model.clone(),
        deployment: String::new(),
        input_per_million: p.input_per_million.to_string(),
        output_per_million: p.output_per_million.to_string(),
        cached_input_per_million: p.cached_input_per_million.unwrap_or(p.input_per_million).to_string(),
        per_million_characters: optional_decimal(p.per_million_characters),
        per_minute_audio: optional_decimal(p.per_minute_audio),
        effective_from_millis: from,
    }
}

/// An optional price on the wire: empty when not set.
fn optional_decimal(d: Option<rust_decimal::Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn required(value: &str, field: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    Ok(())
}

fn operation_name(op: i32) -> &'static str {
    match Operation::try_from(op).unwrap_or(Operation::Unspecified) {
        Operation::Chat => "chat",
        Operation::Embeddings => "embeddings",
        Operation::Speech => "speech",
        Operation::Transcription => "transcription",
        Operation::Translation => "translation",
        Operation::Unspecified => "unspecified",
    }
}

/// A validated authorize call.
struct AuthorizeCommand {
    request_id: String,
    user_id: String,
    key_id: String,
    model: String,
    worst_case: Usage,
    key_limits: Option<KeyLimits>,
}

impl TryFrom<pb::AuthorizeRequest> for AuthorizeCommand {
    type Error = Status;
    fn try_from(r: pb::AuthorizeRequest) -> Result<Self, Status> {
        required(&r.request_id, "request_id")?;
        required(&r.user_id, "user_id")?;
        required(&r.model, "model")?;
        if let Some(raw) = r.key_limits.as_ref().and_then(|l| l.credits_per_month.as_deref())
            && parse_credits(raw).is_none()
        {
            return Err(Status::invalid_argument(
                "key_limits.credits_per_month is not a decimal with at most 2 places",
            ));
        }
        Ok(Self {
            request_id: r.request_id,
            user_id: r.user_id,
            key_id: r.key_id,
            model: r.model,
            worst_case: r.worst_case.unwrap_or_default(),
            key_limits: r.key_limits,
        })
    }
}

impl BillingGrpc {
    /// A server over its store, counters, prices and limits.
    pub fn new(
        store: BillingStore,
        counters: Counters,
        prices: PriceBook,
        reservation_ttl: Duration,
        limits: LimitsConfig,
    ) -> Self {
        let user_credit_cap = limits.user_credits_per_month.as_deref().and_then(parse_credits);
        Self {
            settlements: SettleBatcher::start(store.clone(), SETTLE_BATCH),
            store,
            counters,
            prices,
            reservation_ttl,
            limits: Arc::new(limits),
            user_credit_cap,
        }
    }

    /// Deletes usage records past `retention` (a bounded batch per call);
    /// returns how many.
    pub async fn prune_usage(&self, retention: Duration) -> u64 {
        if retention.is_zero() {
            return 0;
        }
        let before = now_millis() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match self.store.prune_usage(before, 10_000).await {
            Ok(n) => {
                if n > 0 {
                    metrics::counter!("oneflow_billing_usage_pruned_total").increment(n);
                    tracing::info!(deleted = n, "usage records past retention deleted");
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "usage retention failed");
                0
            }
        }
    }

    /// Reloads price versions from the database (edits made through other replicas).
    pub async fn reload_prices(&self) {
        match self.store.load_prices().await {
            Ok(versions) => self.prices.merge(versions),
            Err(e) => tracing::warn!(error = %e, "cannot reload prices"),
        }
    }

    /// Turns reservations that expired unsettled (a gateway died mid-request)
    /// into charges of their whole amount; returns how many. A settlement that
    /// arrives later corrects the charge to the real usage.
    pub async fn sweep_expired(&self) -> usize {
        let expired = match self.counters.take_expired(500).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot scan for expired reservations");
                return 0;
            }
        };
        let mut charged = 0;
        for e in expired {
            match self.store.expire_reservation(&e.user, &e.request_id, e.amount).await {
                Ok(_) => {
                    charged += 1;
                    metrics::counter!("oneflow_billing_reservations_expired_total").increment(1);
                    tracing::warn!(request_id = %e.request_id, "reservation expired unsettled; charged its whole amount");
                }
                Err(err) => {
                    tracing::error!(error = %err, request_id = %e.request_id, "cannot charge an expired reservation")
                }
            }
        }
        charged
    }

    /// Grants (or adjusts) credits; idempotent per key. Shared by the RPC and the CLI.
    pub async fn grant(
        &self,
        user_id: &str,
        amount: i64,
        kind: EntryKind,
        key: &str,
        note: Option<&str>,
        actor: Option<&str>,
    ) -> Result<i64, Status> {
        let written = self
            .store
            .append(&NewEntry {
                user_id,
                kind,
                amount,
                idempotency_key: key,
                note,
                actor_user_id: actor,
            })
            .await
            .map_err(store_status)?;
        if !written.duplicate {
            self.counters
                .credit(user_id, amount)
                .await
                .map_err(|e| counter_status(&e))?;
        }
        Ok(written.balance_after)
    }
}

#[tonic::async_trait]
impl BillingService for BillingGrpc {
    #[tracing::instrument(skip_all)]
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        let cmd = AuthorizeCommand::try_from(request.into_inner())?;
        let amount = self
            .prices
            .charge_cents(&cmd.model, &cmd.worst_case)
            .map_err(price_status)?;
        let key_credit_cap = cmd
            .key_limits
            .as_ref()
            .and_then(|l| l.credits_per_month.as_deref())
            .and_then(parse_credits);
        let plan = limits::plan(
            &self.limits,
            &cmd.user_id,
            &cmd.key_id,
            cmd.key_limits.as_ref(),
            now_millis(),
            self.user_credit_cap,
            key_credit_cap,
        );
        // The first request of an account loads its balance from the ledger;
        // every later one stays off the database.
        let mut outcome = self
            .counters
            .reserve(&cmd.user_id, &cmd.request_id, amount, self.reservation_ttl, None, &plan)
            .await
            .map_err(|e| counter_status(&e))?;
        if outcome == Reserve::NotLoaded {
            let balance = self.store.balance(&cmd.user_id).await.map_err(store_status)?;
            outcome = self
                .counters
                .reserve(
                    &cmd.user_id,
                    &cmd.request_id,
                    amount,
                    self.reservation_ttl,
                    Some(balance),
                    &plan,
                )
                .await
                .map_err(|e| counter_status(&e))?;
        }
        match outcome {
            Reserve::Reserved { window, .. } => {
                metrics::counter!("oneflow_billing_authorizations_total", "result" => "ok").increment(1);
                let as_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
                Ok(Response::new(pb::AuthorizeResponse {
                    reservation_id: cmd.request_id,
                    reserved_credits: format_cents(amount),
                    requests: window.map(|w| pb::RateLimitStatus {
                        limit: as_u64(w.limit),
                        remaining: as_u64(w.remaining),
                        reset_millis: as_u64(w.reset_millis),
                    }),
                    tokens: None,
                }))
            }
            Reserve::Limited {
                kind,
                unit,
                window,
                limit,
                retry_after_millis,
            } => {
                let (code, what) = match kind {
                    LimitKind::Rate => ("rate_limit_exceeded", "Rate limit"),
                    LimitKind::Quota => ("quota_exceeded", "Quota"),
                };
                metrics::counter!("oneflow_billing_authorizations_total", "result" => code).increment(1);
                let shown = if unit == "credits" {
                    format_cents(limit)
                } else {
                    limit.to_string()
                };
                Err(oneflow_proto::status_with_info(
                    Code::ResourceExhausted,
                    format!("{what} reached: {shown} {unit} per {window}. Retry after the window resets."),
                    ErrorInfo {
                        code: code.into(),
                        retry_after_millis: u64::try_from(retry_after_millis).unwrap_or(0),
                        ..ErrorInfo::default()
                    },
                ))
            }
            Reserve::Insufficient { available } => {
                metrics::counter!("oneflow_billing_authorizations_total", "result" => "insufficient_credits")
                    .increment(1);
                Err(oneflow_proto::status_with_info(
                    Code::FailedPrecondition,
                    format!(
                        "insufficient credits: this request may cost up to {} credits and {} are available",
                        format_cents(amount),
                        format_cents(available.max(0))
                    ),
                    ErrorInfo {
                        code: "insufficient_credits".into(),
                        ..ErrorInfo::default()
                    },
                ))
            }
            Reserve::Duplicate => Err(Status::already_exists("this request id is already authorized")),
            Reserve::NotLoaded => Err(Status::unavailable("billing counters could not load the account")),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn settle(&self, request: Request<pb::SettleRequest>) -> Result<Response<pb::SettleResponse>, Status> {
        let r = request.into_inner();
        required(&r.request_id, "request_id")?;
        required(&r.user_id, "user_id")?;
        required(&r.model, "model")?;
        let usage = r.usage.unwrap_or_default();
        let charge = self.prices.charge_cents(&r.model, &usage).map_err(price_status)?;
        let record = OwnedUsageRecord {
            request_id: r.request_id.clone(),
            key_id: r.key_id.clone(),
            model: r.model.clone(),
            provider: r.provider.clone(),
            deployment: r.deployment.clone(),
            operation: operation_name(r.operation).to_owned(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cached_tokens: usage.cached_input_tokens,
            characters: usage.characters,
            audio_millis: usage.audio_millis,
            latency_ms: r.latency_millis,
            status: r.status,
            client_request_id: r.client_request_id.clone(),
        };
        let written = self
            .settlements
            .settle(&r.user_id, charge, record)
            .await
            .map_err(store_status)?;
        // Release even when the ledger entry already existed: a previous
        // attempt may have written it and failed before this step.
        let tokens = i64::try_from(usage.input_tokens.saturating_add(usage.output_tokens)).unwrap_or(i64::MAX);
        let plan = limits::settle_plan(&r.user_id, &r.key_id, now_millis());
        let had_reservation = self
            .counters
            .release(&r.user_id, &r.request_id, charge, tokens, &plan)
            .await
            .map_err(|e| counter_status(&e))?;
        if written.correction != 0 {
            // The reservation had expired into a charge of its whole amount,
            // which the available counter still holds: give back the difference.
            self.counters
                .credit(&r.user_id, written.correction)
                .await
                .map_err(|e| counter_status(&e))?;
            tracing::info!(request_id = %r.request_id, "late settlement corrected an expired reservation");
        } else if !had_reservation && !written.duplicate {
            tracing::warn!(request_id = %r.request_id, "settled without an open reservation");
        }
        if !written.duplicate {
            metrics::counter!("oneflow_credits_consumed_total", "model" => r.model.clone())
                .increment(u64::try_from(charge).unwrap_or(0));
            metrics::counter!("oneflow_tokens_total", "model" => r.model.clone(), "provider" => r.provider.clone(), "direction" => "input")
                .increment(usage.input_tokens);
            metrics::counter!("oneflow_tokens_total", "model" => r.model.clone(), "provider" => r.provider.clone(), "direction" => "output")
                .increment(usage.output_tokens);
            let status_class = match r.status {
                200..=299 => "2xx",
                499 => "client_closed",
                400..=498 => "4xx",
                _ => "5xx",
            };
            metrics::counter!("oneflow_billed_requests_total", "provider" => r.provider, "status" => status_class)
                .increment(1);
            #[expect(clippy::cast_precision_loss, reason = "a metric, not money")]
            let credits = charge as f64 / 100.0;
            metrics::histogram!("oneflow_cost_per_request_credits", "model" => r.model).record(credits);
        }
        Ok(Response::new(pb::SettleResponse {
            charged_credits: format_cents(charge),
            balance: format_cents(written.balance_after),
            duplicate: written.duplicate,
        }))
    }

    async fn acquire_deployment_capacity(
        &self,
        request: Request<pb::AcquireDeploymentCapacityRequest>,
    ) -> Result<Response<pb::AcquireDeploymentCapacityResponse>, Status> {
        let r = request.into_inner();
        required(&r.deployment, "deployment")?;
        let now = now_millis();
        let minute = now.div_euclid(60_000);
        let ttl = (minute + 1) * 60_000 - now;
        // One hash slot per deployment, so the script works on Redis Cluster.
        let tag = format!("{{d:{}}}", r.deployment);
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut windows = Vec::new();
        if r.requests_per_minute > 0 {
            windows.push((format!("{tag}:rpm:{minute}"), as_i64(r.requests_per_minute), 1, ttl));
        }
        if r.tokens_per_minute > 0 {
            windows.push((
                format!("{tag}:tpm:{minute}"),
                as_i64(r.tokens_per_minute),
                as_i64(r.tokens),
                ttl,
            ));
        }
        let full = self
            .counters
            .acquire_windows(&windows)
            .await
            .map_err(|e| counter_status(&e))?;
        let granted = full.is_none();
        let label = if granted { "granted" } else { "full" };
        metrics::counter!("oneflow_deployment_capacity_total", "deployment" => r.deployment, "result" => label)
            .increment(1);
        Ok(Response::new(pb::AcquireDeploymentCapacityResponse {
            granted,
            retry_after_millis: full.map_or(0, |ms| u64::try_from(ms).unwrap_or(0)),
        }))
    }

    async fn get_balance(&self, request: Request<pb::GetBalanceRequest>) -> Result<Response<pb::Balance>, Status> {
        let r = request.into_inner();
        required(&r.user_id, "user_id")?;
        let balance = self.store.balance(&r.user_id).await.map_err(store_status)?;
        Ok(Response::new(pb::Balance {
            user_id: r.user_id,
            balance: format_cents(balance),
            reserved: String::new(),
            available: String::new(),
        }))
    }

    async fn grant_credits(
        &self,
        request: Request<pb::GrantCreditsRequest>,
    ) -> Result<Response<pb::LedgerEntry>, Status> {
        let r = request.into_inner();
        required(&r.user_id, "user_id")?;
        required(&r.idempotency_key, "idempotency_key")?;
        let amount = parse_credits(&r.amount)
            .ok_or_else(|| Status::invalid_argument("amount must be a decimal with at most 2 places"))?;
        let kind = match pb::EntryKind::try_from(r.kind).unwrap_or(pb::EntryKind::Unspecified) {
            pb::EntryKind::Grant | pb::EntryKind::Unspecified => EntryKind::Grant,
            pb::EntryKind::TopUp => EntryKind::TopUp,
            pb::EntryKind::Refund => EntryKind::Refund,
            pb::EntryKind::Adjustment => EntryKind::Adjustment,
            pb::EntryKind::Charge => return Err(Status::invalid_argument("charges come from settlement only")),
        };
        if amount <= 0 && kind != EntryKind::Adjustment {
            return Err(Status::invalid_argument(
                "amount must be positive (use an adjustment to remove credits)",
            ));
        }
        let note = (!r.note.is_empty()).then_some(r.note.as_str());
        let actor = (!r.actor_user_id.is_empty()).then_some(r.actor_user_id.as_str());
        let balance = self
            .grant(&r.user_id, amount, kind, &r.idempotency_key, note, actor)
            .await?;
        Ok(Response::new(pb::LedgerEntry {
            id: String::new(),
            user_id: r.user_id,
            kind: r.kind,
            amount: format_cents(amount),
            idempotency_key: r.idempotency_key,
            at_millis: now_millis(),
            balance_after: format_cents(balance),
        }))
    }

    async fn list_prices(
        &self,
        _request: Request<pb::ListPricesRequest>,
    ) -> Result<Response<pb::ListPricesResponse>, Status> {
        let prices = self
            .prices
            .prices(now_millis())
            .into_iter()
            .map(|(from, p)| price_proto(from, &p))
            .collect();
        Ok(Response::new(pb::ListPricesResponse { prices }))
    }

    async fn upsert_price(&self, request: Request<pb::UpsertPriceRequest>) -> Result<Response<pb::Price>, Status> {
        let r = request.into_inner();
        let p = r.price.ok_or_else(|| Status::invalid_argument("price is required"))?;
        required(&p.model, "model")?;
        let decimal = |raw: &str, field: &str| -> Result<rust_decimal::Decimal, Status> {
            raw.trim()
                .parse::<rust_decimal::Decimal>()
                .ok()
                .filter(|d| !d.is_sign_negative())
                .ok_or_else(|| Status::invalid_argument(format!("{field} must be a non-negative decimal")))
        };
        let optional = |raw: &str, field: &str| -> Result<Option<rust_decimal::Decimal>, Status> {
            match raw.trim() {
                "" => Ok(None),
                raw => decimal(raw, field).map(Some),
            }
        };
        let price = ModelPrice {
            model: p.model.clone(),
            input_per_million: decimal(&p.input_per_million, "input_per_million")?,
            output_per_million: decimal(&p.output_per_million, "output_per_million")?,
            cached_input_per_million: optional(&p.cached_input_per_million, "cached_input_per_million")?,
            per_million_characters: optional(&p.per_million_characters, "per_million_characters")?,
            per_minute_audio: optional(&p.per_minute_audio, "per_minute_audio")?,
        };
        let now = now_millis();
        let from = if p.effective_from_millis == 0 {
            now
        } else {
            p.effective_from_millis
        };
        if from < now - 60_000 {
            return Err(Status::invalid_argument(
                "effective_from cannot be in the past: charges already made keep their price",
            ));
        }
        let actor = (!r.actor_user_id.is_empty()).then_some(r.actor_user_id.as_str());
        self.store
            .upsert_price(from, &price, actor)
            .await
            .map_err(store_status)?;
        self.prices.merge([(from, price.clone())]);
        tracing::info!(model = %price.model, effective_from = from, "price version stored");
        Ok(Response::new(price_proto(from, &price)))
    }

    async fn get_usage(&self, request: Request<pb::GetUsageRequest>) -> Result<Response<pb::GetUsageResponse>, Status> {
        let r = request.into_inner();
        required(&r.user_id, "user_id")?;
        let group = match r.group_by.as_str() {
            "" | "day" => UsageGroup::Day,
            "model" => UsageGroup::Model,
            "key" => UsageGroup::Key,
            other => {
                return Err(Status::invalid_argument(format!(
                    "group_by must be day, model or key, not `{other}`"
                )));
            }
        };
        let to = if r.to_millis > 0 { r.to_millis } else { now_millis() + 1 };
        if r.from_millis < 0 || r.from_millis >= to {
            return Err(Status::invalid_argument("`from` must be before `to`"));
        }
        let totals = self
            .store
            .usage(&r.user_id, r.from_millis, to, group)
            .await
            .map_err(store_status)?;
        let as_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
        let rows = totals
            .into_iter()
            .map(|t| pb::UsageRow {
                group: match group {
                    UsageGroup::Day => t.group.parse::<i64>().map(limits::date_of_day).unwrap_or(t.group),
                    UsageGroup::Model | UsageGroup::Key => t.group,
                },
                requests: as_u64(t.requests),
                usage: Some(Usage {
                    input_tokens: as_u64(t.input),
                    output_tokens: as_u64(t.output),
                    cached_input_tokens: as_u64(t.cached),
                    characters: as_u64(t.characters),
                    audio_millis: as_u64(t.audio_millis),
                }),
                credits: format_cents(t.credits),
            })
            .collect();
        Ok(Response::new(pb::GetUsageResponse { rows }))
    }
}
