//! `GET /v1/models` and `GET /v1/models/{id}`.
//!
//! Gateways and SDKs list an upstream's models for discovery and health
//! checks; the mock lists every configured chat and embedding model as an
//! OpenAI `model` object owned by `oneflow-mock`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::MockState;
use crate::error::ApiError;

/// `owned_by` of every mock model.
const OWNED_BY: &str = "oneflow-mock";
/// Fixed `created` timestamp (2023-11-14T22:13:20Z) so answers are stable.
const CREATED: u64 = 1_700_000_000;

#[derive(Serialize)]
struct ModelObject<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

impl<'a> ModelObject<'a> {
    fn new(id: &'a str) -> Self {
        Self {
            id,
            object: "model",
            created: CREATED,
            owned_by: OWNED_BY,
        }
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelObject<'a>>,
}

/// `GET /v1/models`.
pub(crate) async fn list_models(State(state): State<MockState>) -> Response {
    let config = state.config();
    let data = config
        .chat_models
        .iter()
        .chain(&config.embedding_models)
        .map(|id| ModelObject::new(id))
        .collect();
    Json(ModelList { object: "list", data }).into_response()
}

/// `GET /v1/models/{id}` (ids may contain `/`).
pub(crate) async fn get_model(State(state): State<MockState>, Path(id): Path<String>) -> Response {
    let config = state.config();
    let known = config
        .chat_models
        .iter()
        .chain(&config.embedding_models)
        .find(|known| **known == id);
    match known {
        Some(id) => Json(ModelObject::new(id)).into_response(),
        None => ApiError::model_not_found(&id).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::json;

    use crate::test_util::{body_json, send};
    use crate::{MockConfig, MockState};

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn lists_every_model() {
        let state = MockState::default();
        let response = send(&state, get("/v1/models")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["object"], "list");
        let ids: Vec<_> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|model| model["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["mock-gpt", "mock-gpt-mini", "mock-embed"]);
        assert_eq!(body["data"][0]["object"], "model");
        assert_eq!(body["data"][0]["owned_by"], "oneflow-mock");
    }

    #[tokio::test]
    async fn gets_one_model_or_404() {
        let state = MockState::new(MockConfig {
            chat_models: vec!["org/mock-gpt".to_owned()],
            ..MockConfig::default()
        });
        let response = send(&state, get("/v1/models/org/mock-gpt")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            body_json(response).await,
            json!({"id": "org/mock-gpt", "object": "model", "created": 1_700_000_000, "owned_by": "oneflow-mock"})
        );

        let response = send(&state, get("/v1/models/mock-embed")).await;
        assert_eq!(response.status(), StatusCode::OK);

        let response = send(&state, get("/v1/models/gpt-4o")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "model_not_found");
    }
}
