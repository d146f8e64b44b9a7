//! The billing API: the caller's balance and usage report, the price list,
//! and the admin endpoint that grants or adjusts credits.
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oneflow_proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::account::{json_body, require_admin};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// The user a report is about: the caller, or (admins only) `user_id`.
fn subject(principal: &Principal, requested: Option<String>) -> Result<String, ApiError> {
    match requested {
        Some(id) if id != principal.user_id => {
            if principal.admin {
                Ok(id)
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "permission_error",
                    "Only administrators can see other users.",
                )
                .code("insufficient_permissions"))
            }
        }
        _ => Ok(principal.user_id.clone()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BalanceQuery {
    #[serde(default)]
    user_id: Option<String>,
}

/// `GET /v1/billing/balance`
pub async fn balance(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    q: Result<Query<BalanceQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) =
        q.map_err(|e| crate::error::ApiError::invalid(format!("Invalid query string: {}", e.body_text())))?;
    let user_id = subject(&principal, q.user_id)?;
    let mut billing = state.clients.billing.clone();
    let b = billing
        .get_balance(state.clients.billing_request(pb::GetBalanceRequest { user_id }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(
        json!({ "object": "balance", "user_id": b.user_id, "balance": b.balance, "currency": "credits" }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    /// Unix seconds, inclusive; default 30 days ago.
    #[serde(default)]
    from: Option<i64>,
    /// Unix seconds, exclusive; default now.
    #[serde(default)]
    to: Option<i64>,
    /// `day` (default), `model` or `key`.
    #[serde(default)]
    group_by: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

/// `GET /v1/billing/usage`
pub async fn usage(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    q: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) =
        q.map_err(|e| crate::error::ApiError::invalid(format!("Invalid query string: {}", e.body_text())))?;
    let user_id = subject(&principal, q.user_id)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let to = q.to.unwrap_or(now);
    let from = q.from.unwrap_or_else(|| to.saturating_sub(30 * 86_400));
    let group_by = q.group_by.unwrap_or_else(|| "day".to_owned());
    if !matches!(group_by.as_str(), "day" | "model" | "key") {
        return Err(ApiError::invalid("`group_by` must be day, model or key").param("group_by"));
    }
    if from < 0 || from >= to {
        return Err(ApiError::invalid("`from` must be before `to` (Unix seconds)").param("from"));
    }
    let mut billing = state.clients.billing.clone();
    let rows = billing
        .get_usage(state.clients.billing_request(pb::GetUsageRequest {
            user_id: user_id.clone(),
            from_millis: from.saturating_mul(1000),
            // Without `to`, billing reads up to this very millisecond.
            to_millis: q.to.map_or(0, |t| t.saturating_mul(1000)),
            group_by: group_by.clone(),
        }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner()
        .rows;
    let data: Vec<Value> = rows.into_iter().map(|r| usage_row_json(&group_by, r)).collect();
    Ok(Json(
        json!({ "object": "list", "user_id": user_id, "from": from, "to": to, "group_by": group_by, "data": data }),
    ))
}

/// One row of a usage report as the REST API shows it: the group under its
/// `group_by` name, then the summed tokens, characters synthesised
/// (text-to-speech), milliseconds of audio transcribed (speech-to-text) and
/// credits.
fn usage_row_json(group_by: &str, r: pb::UsageRow) -> Value {
    let u = r.usage.unwrap_or_default();
    json!({
        group_by: r.group,
        "requests": r.requests,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "characters": u.characters,
        "audio_millis": u.audio_millis,
        "credits": r.credits,
    })
}

/// One price version as the REST API shows it: decimal strings in USD, the
/// audio prices `null` when the model has none.
fn price_json(p: pb::Price) -> Value {
    let optional = |s: String| (!s.is_empty()).then_some(s);
    json!({
        "object": "price", "model": p.model,
        "input_per_million": p.input_per_million,
        "output_per_million": p.output_per_million,
        "cached_input_per_million": p.cached_input_per_million,
        "per_million_characters": optional(p.per_million_characters),
        "per_minute_audio": optional(p.per_minute_audio),
        "currency": "USD",
        "effective_from": p.effective_from_millis / 1000,
    })
}

/// `GET /v1/billing/pricing`
pub async fn pricing(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut billing = state.clients.billing.clone();
    let prices = billing
        .list_prices(state.clients.billing_request(pb::ListPricesRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner()
        .prices;
    let mut data: Vec<Value> = prices.into_iter().map(price_json).collect();
    data.sort_by(|a, b| {
        a["model"]
            .as_str()
            .cmp(&b["model"].as_str())
            .then(a["effective_from"].as_i64().cmp(&b["effective_from"].as_i64()))
    });
    Ok(Json(json!({ "object": "list", "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    /// USD per 1M input tokens, a decimal string.
    input_per_million: String,
    /// USD per 1M output tokens.
    output_per_million: String,
    /// USD per 1M cached input tokens (default: the input price).
    #[serde(default)]
    cached_input_per_million: Option<String>,
    /// USD per 1M characters synthesised (text-to-speech); default: none.
    #[serde(default)]
    per_million_characters: Option<String>,
    /// USD per minute of audio transcribed, charged by the millisecond; default: none.
    #[serde(default)]
    per_minute_audio: Option<String>,
    /// Unix seconds; default now. Past dates are refused.
    #[serde(default)]
    effective_from: Option<i64>,
}

/// `PUT /v1/admin/pricing/{model}`: a new price version for `model`.
pub async fn update_price(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(model): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&principal)?;
    let b: PriceBody = json_body(body)?;
    let mut billing = state.clients.billing.clone();
    let p = billing
        .upsert_price(state.clients.billing_request(pb::UpsertPriceRequest {
            price: Some(pb::Price {
                model,
                input_per_million: b.input_per_million,
                output_per_million: b.output_per_million,
                cached_input_per_million: b.cached_input_per_million.unwrap_or_default(),
                per_million_characters: b.per_million_characters.unwrap_or_default(),
                per_minute_audio: b.per_minute_audio.unwrap_or_default(),
                effective_from_millis: b.effective_from.map_or(0, |s| s.saturating_mul(1000)),
                ..pb::Price::default()
            }),
            actor_user_id: principal.user_id.clone(),
        }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(price_json(p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditsBody {
    /// Decimal credits, at most 2 places; negative only for adjustments.
    amount: String,
    /// `grant` (default), `top_up`, `refund` or `adjustment`.
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    note: Option<String>,
    /// Makes a repeat a no-op; the `Idempotency-Key` header also works.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// `POST /v1/admin/users/{id}/credits`
pub async fn grant(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&principal)?;
    let b: CreditsBody = json_body(body)?;
    let kind = match b.kind.as_deref().unwrap_or("grant") {
        "grant" => pb::EntryKind::Grant,
        "top_up" => pb::EntryKind::TopUp,
        "refund" => pb::EntryKind::Refund,
        "adjustment" => pb::EntryKind::Adjustment,
        _ => return Err(ApiError::invalid("`kind` must be grant, top_up, refund or adjustment").param("kind")),
    };
    let key = b
        .idempotency_key
        .or_else(|| {
            headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut billing = state.clients.billing.clone();
    let entry = billing
        .grant_credits(state.clients.billing_request(pb::GrantCreditsRequest {
            user_id,
            amount: b.amount,
            kind: kind.into(),
            idempotency_key: format!("admin:{key}"),
            note: b.note.unwrap_or_default(),
            actor_user_id: principal.user_id.clone(),
        }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    let out = json!({
        "object": "ledger_entry", "user_id": entry.user_id, "amount": entry.amount,
        "kind": b.kind.unwrap_or_else(|| "grant".into()), "balance": entry.balance_after,
        "created_at": entry.at_millis / 1000,
    });
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `GET /v1/admin/providers`: each deployment's breaker state, EWMA latency,
/// error rate and requests in flight, as the router sees them.
pub async fn providers(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&principal)?;
    let mut router = state.clients.router.clone();
    let health = router
        .provider_health(
            state
                .clients
                .router_request(oneflow_proto::router::v1::ProviderHealthRequest {}),
        )
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    let data: Vec<Value> = health
        .deployments
        .into_iter()
        .map(|d| {
            json!({
                "object": "deployment_health", "deployment": d.deployment, "provider": d.provider,
                "breaker_state": d.breaker_state, "ewma_latency_ms": d.ewma_latency_millis,
                "error_rate": d.error_rate, "in_flight": d.in_flight,
            })
        })
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

#[cfg(test)]
mod tests {
    use oneflow_proto::common::v1::Usage;

    use super::*;

    #[test]
    fn usage_rows_show_characters_and_audio_millis() {
        let row = pb::UsageRow {
            group: "tts-1".into(),
            requests: 2,
            usage: Some(Usage {
                input_tokens: 3,
                characters: 1_234,
                audio_millis: 61_500,
                ..Usage::default()
            }),
            credits: "73.84".into(),
        };
        assert_eq!(
            usage_row_json("model", row),
            json!({
                "model": "tts-1", "requests": 2, "input_tokens": 3, "output_tokens": 0,
                "cached_input_tokens": 0, "characters": 1_234, "audio_millis": 61_500, "credits": "73.84",
            })
        );
        // A row without usage shows zeros, not missing fields.
        let empty = usage_row_json("day", pb::UsageRow::default());
        assert_eq!(empty["characters"], 0);
        assert_eq!(empty["audio_millis"], 0);
    }
}
