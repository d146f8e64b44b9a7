//! The model directory: the router's public models, cached briefly so a chat
//! request can find its output cap (for the worst-case reservation) without a
//! router hop, and served as `/v1/models`.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use oneflow_proto::router::v1 as pb;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::state::AppState;

/// What the gateway knows of a model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Public id.
    pub id: String,
    /// Output cap for reservations.
    pub max_output_tokens: u64,
    /// Owner shown in `/v1/models`.
    pub owned_by: String,
}

type Snapshot = Arc<HashMap<String, ModelInfo>>;

/// Cached model list.
#[derive(Debug, Clone)]
pub struct ModelDirectory {
    cached: Arc<RwLock<Option<(Snapshot, Instant)>>>,
    ttl: Duration,
}

impl ModelDirectory {
    /// An empty directory refreshed every `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            cached: Arc::new(RwLock::new(None)),
            ttl,
        }
    }

    /// The current models, refreshed from the router when stale. A failed
    /// refresh keeps serving the previous list.
    pub async fn snapshot(&self, state: &AppState) -> Result<Snapshot, ApiError> {
        let stale = match self.cached.read().ok().and_then(|g| g.clone()) {
            Some((snap, at)) if at.elapsed() < self.ttl => return Ok(snap),
            other => other,
        };
        let mut router = state.clients.router.clone();
        match router
            .list_models(state.clients.router_request(pb::ListModelsRequest {}))
            .await
        {
            Ok(resp) => {
                let map: HashMap<_, _> = resp
                    .into_inner()
                    .models
                    .into_iter()
                    .map(|m| {
                        (
                            m.id.clone(),
                            ModelInfo {
                                id: m.id,
                                max_output_tokens: m.max_output_tokens,
                                owned_by: m.owned_by,
                            },
                        )
                    })
                    .collect();
                let snap = Arc::new(map);
                if let Ok(mut g) = self.cached.write() {
                    *g = Some((snap.clone(), Instant::now()));
                }
                Ok(snap)
            }
            Err(status) => match stale {
                Some((snap, _)) => {
                    tracing::warn!(code = ?status.code(), "model list refresh failed; serving the cached list");
                    Ok(snap)
                }
                None => Err(ApiError::from_status(&status)),
            },
        }
    }

    /// The model named `id`, or OpenAI's 404.
    pub async fn get(&self, state: &AppState, id: &str) -> Result<ModelInfo, ApiError> {
        self.snapshot(state)
            .await?
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("The model `{id}` does not exist or you do not have access to it."),
    )
    .param("model")
    .code("model_not_found")
}

fn model_json(m: &ModelInfo) -> Value {
    json!({ "id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by })
}

/// `GET /v1/models`
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let snap = state.models.snapshot(&state).await?;
    let mut models: Vec<_> = snap.values().collect();
    models.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(
        json!({ "object": "list", "data": models.into_iter().map(model_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /v1/models/{id}`
pub async fn retrieve(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let model = state.models.get(&state, &id).await?;
    Ok(Json(model_json(&model)))
}
