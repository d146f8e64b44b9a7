//! `POST /openai/deployments/{deployment}/…?api-version=…`: Azure OpenAI.
//!
//! Azure serves OpenAI's bodies on different routes: the model is chosen by
//! a deployment in the path, an `api-version` query parameter is mandatory
//! and the key travels in an `api-key` header (or as an Entra ID bearer
//! token). The router's Azure adapter must get those right, so the mock
//! checks them — with Azure's `{"error":{"code","message"}}` bodies — and
//! then answers with the ordinary OpenAI handlers, the deployment standing in
//! for the model. Deployments are named after the configured models: a
//! deployment that is not a configured chat (or embedding) model is a 404
//! `DeploymentNotFound`.

use std::borrow::Cow;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::MockState;
use crate::stats::Counters;
use crate::{chat, embeddings};

/// The header carrying the API key (any non-empty value is accepted).
const API_KEY: &str = "api-key";

/// Which OpenAI operation a deployment route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Chat,
    Embeddings,
}

/// `POST /openai/deployments/{deployment}/chat/completions`.
pub(crate) async fn chat_completions(
    State(state): State<MockState>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match prepare(&state, &deployment, query.as_deref(), &headers, &body, Operation::Chat) {
        Ok(body) => chat::chat_completions(State(state), headers, body).await,
        Err(err) => err.into_response(),
    }
}

/// `POST /openai/deployments/{deployment}/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<MockState>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match prepare(
        &state,
        &deployment,
        query.as_deref(),
        &headers,
        &body,
        Operation::Embeddings,
    ) {
        Ok(body) => embeddings::create_embeddings(State(state), headers, body).await,
        Err(err) => err.into_response(),
    }
}

/// Counts the request, checks Azure's own requirements and returns the body
/// to hand to the OpenAI handler: the request with `model` set to the
/// deployment (a body that is not a JSON object is passed on untouched, for
/// the handler to reject).
fn prepare(
    state: &MockState,
    deployment: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    operation: Operation,
) -> Result<Bytes, AzureError> {
    let counters = state.counters();
    Counters::bump(&counters.azure_requests);
    let has_key = headers.get(API_KEY).is_some_and(|key| !key.is_empty());
    let has_bearer = headers
        .get(AUTHORIZATION)
        .is_some_and(|value| value.as_bytes().starts_with(b"Bearer "));
    if !has_key && !has_bearer {
        counters.record_headers(headers);
        return Err(AzureError {
            status: StatusCode::UNAUTHORIZED,
            code: "401",
            message:
                "Access denied: send the key in an api-key header (or an Entra ID token as Authorization: Bearer)."
                    .into(),
        });
    }
    let has_version = query.unwrap_or_default().split('&').any(|pair| {
        pair.strip_prefix("api-version=")
            .is_some_and(|version| !version.is_empty())
    });
    if !has_version {
        counters.record_headers(headers);
        return Err(AzureError {
            status: StatusCode::BAD_REQUEST,
            code: "MissingApiVersionParameter",
            message: "The api-version query parameter (?api-version=) is required for all requests.".into(),
        });
    }
    let config = state.config();
    let models = match operation {
        Operation::Chat => &config.chat_models,
        Operation::Embeddings => &config.embedding_models,
    };
    if !models.iter().any(|model| model == deployment) {
        counters.record_headers(headers);
        return Err(AzureError {
            status: StatusCode::NOT_FOUND,
            code: "DeploymentNotFound",
            message: format!("The API deployment {deployment} does not exist on this OneFlow mock.").into(),
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut request)) => {
            request.insert("model".to_owned(), Value::String(deployment.to_owned()));
            Ok(Bytes::from(Value::Object(request).to_string()))
        }
        _ => Ok(body.clone()),
    }
}

/// A failure of Azure's own checks, answered with Azure's error body.
#[derive(Debug)]
struct AzureError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
}

impl IntoResponse for AzureError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_util::{body_bytes, body_json, default_state, post_json, send};

    const CHAT: &str = "/openai/deployments/mock-gpt/chat/completions?api-version=2024-10-21";
    const KEY: (&str, &str) = ("api-key", "azure-key");

    fn chat() -> Value {
        json!({"messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hello there mock world"}]})
    }

    #[tokio::test]
    async fn chat_through_a_deployment() {
        let state = default_state();
        let response = send(&state, post_json(CHAT, &chat(), &[KEY])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], "mock-gpt");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Mock reply to: Hello there mock world"
        );
        assert_eq!(body["usage"]["prompt_tokens"], 13);

        // The deployment wins over a model in the body; bearer tokens work too.
        let mut other = chat();
        other["model"] = json!("gpt-4o");
        other["stream"] = json!(true);
        let response = send(
            &state,
            post_json(
                "/openai/deployments/mock-gpt-mini/chat/completions?foo=1&api-version=2024-10-21",
                &other,
                &[("authorization", "Bearer entra-token")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = String::from_utf8(body_bytes(response).await.to_vec()).unwrap();
        assert!(text.contains("\"model\":\"mock-gpt-mini\""));
        assert!(text.ends_with("data: [DONE]\n\n"));

        let stats = state.stats();
        assert_eq!(stats.azure_requests, 2);
        assert_eq!(stats.chat_requests, 2);
        assert_eq!(stats.stream_requests, 1);
    }

    #[tokio::test]
    async fn embeddings_through_a_deployment() {
        let state = default_state();
        let response = send(
            &state,
            post_json(
                "/openai/deployments/mock-embed/embeddings?api-version=2024-10-21",
                &json!({"input": "hello"}),
                &[KEY],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["model"], "mock-embed");
        assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 16);
        assert_eq!(state.stats().embedding_requests, 1);
        assert_eq!(state.stats().azure_requests, 1);
    }

    #[tokio::test]
    async fn key_version_and_deployment_are_required() {
        let state = default_state();
        let response = send(&state, post_json(CHAT, &chat(), &[])).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(response).await["error"]["code"], "401");

        for path in [
            "/openai/deployments/mock-gpt/chat/completions",
            "/openai/deployments/mock-gpt/chat/completions?api-version=",
        ] {
            let response = send(&state, post_json(path, &chat(), &[KEY])).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(body_json(response).await["error"]["code"], "MissingApiVersionParameter");
        }

        let response = send(
            &state,
            post_json(
                "/openai/deployments/mock-embed/chat/completions?api-version=2024-10-21",
                &chat(),
                &[KEY],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(response).await["error"]["code"], "DeploymentNotFound");

        // Scripting and OpenAI-shaped errors come from the shared handler.
        let response = send(&state, post_json(CHAT, &chat(), &[KEY, ("x-mock-status", "429")])).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body_json(response).await["error"]["code"], "rate_limit_exceeded");
        assert_eq!(state.stats().azure_requests, 5);
        assert_eq!(state.stats().chat_requests, 1);
    }
}
