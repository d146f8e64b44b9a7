//! The OpenAPI 3.1 document of the public API, served at `/openapi.json` with
//! a browsable page at `/docs`. The schemas here describe the wire format the
//! handlers produce; the OpenAI-compatible ones list the fields the gateway
//! reads and accept every other field of OpenAI's specification unchanged.
#![allow(dead_code, reason = "schema and path declarations exist for the document only")]

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// OpenAI's error envelope, used by every error response.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}))]
struct ErrorResponse {
    error: ErrorObject,
}

#[derive(ToSchema)]
struct ErrorObject {
    message: String,
    #[schema(rename = "type")]
    kind: String,
    param: Option<String>,
    code: Option<String>,
}

/// A chat message (OpenAI shape; `content` is a string or an array of parts).
#[derive(ToSchema)]
struct ChatMessage {
    role: String,
    #[schema(value_type = Object)]
    content: Value,
}

/// `POST /v1/chat/completions` body. Unknown OpenAI parameters are passed on unchanged.
#[derive(ToSchema)]
#[schema(example = json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "Hello!"}], "stream": false}))]
struct ChatCompletionRequest {
    model: String,
    messages: Vec<ChatMessage>,
    stream: Option<bool>,
    #[schema(value_type = Option<Object>)]
    stream_options: Option<Value>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
    temperature: Option<f64>,
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Value>,
    #[schema(value_type = Option<Object>)]
    response_format: Option<Value>,
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(ToSchema)]
struct CompletionUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// `chat.completion` (or, with `stream: true`, `text/event-stream` of `chat.completion.chunk`).
#[derive(ToSchema)]
struct ChatCompletion {
    id: String,
    object: String,
    created: i64,
    model: String,
    #[schema(value_type = Vec<Object>)]
    choices: Value,
    usage: Option<CompletionUsage>,
}

/// `POST /v1/embeddings` body.
#[derive(ToSchema)]
#[schema(example = json!({"model": "mock-embed", "input": "Hello", "encoding_format": "float"}))]
struct EmbeddingRequest {
    model: String,
    /// A string, an array of strings, or arrays of token ids.
    #[schema(value_type = Object)]
    input: Value,
    /// `float` (default) or `base64`.
    encoding_format: Option<String>,
    dimensions: Option<u64>,
}

#[derive(ToSchema)]
struct Embedding {
    object: String,
    index: u64,
    /// Floats, or a base64 string of little-endian f32.
    #[schema(value_type = Object)]
    embedding: Value,
}

#[derive(ToSchema)]
struct EmbeddingResponse {
    object: String,
    data: Vec<Embedding>,
    model: String,
    #[schema(value_type = Object)]
    usage: Value,
}

#[derive(ToSchema)]
struct Model {
    id: String,
    object: String,
    created: i64,
    owned_by: String,
}

#[derive(ToSchema)]
struct ModelList {
    object: String,
    data: Vec<Model>,
}

#[derive(ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery"}))]
struct Credentials {
    email: String,
    /// At least 12 characters, at most 72 bytes.
    password: String,
}

#[derive(ToSchema)]
struct TokenPair {
    access_token: String,
    /// Opaque (`ofr_…`), single use.
    refresh_token: String,
    token_type: String,
    expires_in: u64,
}

#[derive(ToSchema)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(ToSchema)]
struct User {
    id: String,
    object: String,
    email: String,
    /// `user` or `admin`.
    role: String,
    disabled: bool,
    created_at: i64,
}

#[derive(ToSchema)]
struct UserList {
    object: String,
    data: Vec<User>,
}

#[derive(ToSchema)]
struct NewUser {
    email: String,
    password: String,
    role: Option<String>,
}

#[derive(ToSchema)]
struct UserUpdate {
    role: Option<String>,
    disabled: Option<bool>,
}

#[derive(ToSchema)]
struct KeyLimits {
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
    requests_per_day: Option<u64>,
    tokens_per_day: Option<u64>,
    tokens_per_month: Option<u64>,
    credits_per_month: Option<String>,
}

#[derive(ToSchema)]
#[schema(example = json!({"name": "ci", "scopes": ["inference"]}))]
struct NewKey {
    name: String,
    /// `inference` (default) and/or `admin` (admins only).
    scopes: Option<Vec<String>>,
    /// Unix seconds.
    expires_at: Option<i64>,
    limits: Option<KeyLimits>,
    /// Owner (admins only; default the caller).
    user_id: Option<String>,
}

/// An API key. `key` (the secret) is present only when it was just created or rotated.
#[derive(ToSchema)]
struct ApiKey {
    id: String,
    object: String,
    user_id: String,
    name: String,
    prefix: String,
    scopes: Vec<String>,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    grace_until: Option<i64>,
    limits: Option<KeyLimits>,
    key: Option<String>,
}

#[derive(ToSchema)]
struct ApiKeyList {
    object: String,
    data: Vec<ApiKey>,
}

#[derive(ToSchema)]
struct RotateKey {
    /// How long the old key keeps working; default 7 days, 0 allowed.
    grace_seconds: Option<u64>,
}

#[derive(ToSchema)]
struct AuditEvent {
    id: String,
    object: String,
    action: String,
    actor_user_id: Option<String>,
    target: String,
    at: i64,
    client_address: String,
    request_id: String,
}

#[derive(ToSchema)]
struct AuditList {
    object: String,
    data: Vec<AuditEvent>,
}

#[derive(ToSchema)]
struct Balance {
    object: String,
    user_id: String,
    /// Decimal credits, e.g. `"12.34"`.
    balance: String,
    currency: String,
}

#[derive(ToSchema)]
struct UsageRow {
    /// The UTC date (`group_by=day`).
    day: Option<String>,
    /// The model (`group_by=model`).
    model: Option<String>,
    /// The API key id (`group_by=key`).
    key: Option<String>,
    requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    cached_input_tokens: u64,
    /// Characters synthesised (text-to-speech).
    characters: u64,
    /// Milliseconds of audio transcribed (speech-to-text).
    audio_millis: u64,
    credits: String,
}

#[derive(ToSchema)]
struct UsageReport {
    object: String,
    user_id: String,
    from: i64,
    to: i64,
    group_by: String,
    data: Vec<UsageRow>,
}

/// One price version; decimal strings in USD.
#[derive(ToSchema)]
struct Price {
    object: String,
    model: String,
    /// Per 1M input tokens.
    input_per_million: String,
    /// Per 1M output tokens.
    output_per_million: String,
    /// Per 1M cached input tokens (the input price when none is set).
    cached_input_per_million: String,
    /// Per 1M characters synthesised (text-to-speech); `null` when the model has none.
    per_million_characters: Option<String>,
    /// Per minute of audio transcribed (speech-to-text), charged by the millisecond;
    /// `null` when the model has none.
    per_minute_audio: Option<String>,
    currency: String,
    /// Unix seconds from which this version applies.
    effective_from: i64,
}

/// A new price version: the whole price, so a unit left out has no price in it.
#[derive(ToSchema)]
#[schema(example = json!({"input_per_million": "0.20", "output_per_million": "0.80"}))]
struct PriceUpdate {
    /// USD per 1M input tokens, a decimal string.
    input_per_million: String,
    /// USD per 1M output tokens.
    output_per_million: String,
    /// USD per 1M cached input tokens; default the input price.
    cached_input_per_million: Option<String>,
    /// USD per 1M characters (text-to-speech); default none.
    per_million_characters: Option<String>,
    /// USD per minute of audio (speech-to-text), charged by the millisecond; default none.
    per_minute_audio: Option<String>,
    /// Unix seconds; default now; past dates are refused.
    effective_from: Option<i64>,
}

#[derive(ToSchema)]
struct DeploymentHealth {
    object: String,
    deployment: String,
    provider: String,
    /// `closed`, `open` or `half_open`.
    breaker_state: String,
    ewma_latency_ms: f64,
    error_rate: f64,
    in_flight: u64,
}

#[derive(ToSchema)]
struct DeploymentHealthList {
    object: String,
    data: Vec<DeploymentHealth>,
}

#[derive(ToSchema)]
struct PriceList {
    object: String,
    data: Vec<Price>,
}

#[derive(ToSchema)]
#[schema(example = json!({"amount": "25.00", "kind": "top_up", "note": "invoice 42"}))]
struct CreditGrant {
    /// Decimal credits, at most 2 places; negative only for `adjustment`.
    amount: String,
    /// `grant` (default), `top_up`, `refund` or `adjustment`.
    kind: Option<String>,
    note: Option<String>,
    /// Or the `Idempotency-Key` header.
    idempotency_key: Option<String>,
}

#[derive(ToSchema)]
struct LedgerEntry {
    object: String,
    user_id: String,
    amount: String,
    kind: String,
    balance: String,
    created_at: i64,
}

#[utoipa::path(post, path = "/v1/chat/completions", tag = "OpenAI", request_body = ChatCompletionRequest,
    responses((status = 200, description = "A completion, or an SSE stream when `stream` is true", body = ChatCompletion),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 402, description = "insufficient_credits", body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, description = "model_not_found", body = ErrorResponse), (status = 413, body = ErrorResponse),
        (status = 429, description = "rate_limit_exceeded or quota_exceeded, with Retry-After", body = ErrorResponse),
        (status = 502, body = ErrorResponse), (status = 503, body = ErrorResponse), (status = 504, body = ErrorResponse)),
    security(("bearer" = [])))]
fn chat_completions() {}

#[utoipa::path(post, path = "/v1/embeddings", tag = "OpenAI", request_body = EmbeddingRequest,
    responses((status = 200, body = EmbeddingResponse), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 402, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 429, body = ErrorResponse), (status = 502, body = ErrorResponse)),
    security(("bearer" = [])))]
fn embeddings() {}

#[utoipa::path(get, path = "/v1/models", tag = "OpenAI", responses((status = 200, body = ModelList), (status = 401, body = ErrorResponse)), security(("bearer" = [])))]
fn list_models() {}

/// `POST /v1/audio/speech` body.
#[derive(ToSchema)]
#[schema(example = json!({"model": "mock-tts", "input": "Hello", "voice": "alloy", "response_format": "mp3"}))]
struct SpeechRequest {
    model: String,
    /// The text to speak (at most 4096 characters).
    input: String,
    /// A voice name (`alloy`, `nova`, ...) or `{"id": "..."}`.
    #[schema(value_type = Object)]
    voice: Value,
    /// `mp3` (default), `opus`, `aac`, `flac`, `wav` or `pcm`.
    response_format: Option<String>,
    /// 0.25 to 4.0.
    speed: Option<f64>,
    /// Style instructions, for models that take them.
    instructions: Option<String>,
}

/// `POST /v1/audio/transcriptions` and `/translations` form.
#[derive(ToSchema)]
struct TranscriptionForm {
    /// The audio file (flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm), at most 25 MB;
    /// its format is read from its bytes.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    model: String,
    language: Option<String>,
    prompt: Option<String>,
    /// `json` (default), `text`, `srt`, `vtt` or `verbose_json`.
    response_format: Option<String>,
    temperature: Option<f64>,
}

/// `{"text": ...}` (json); other formats are plain text or the verbose object.
#[derive(ToSchema)]
struct Transcription {
    text: String,
}

#[utoipa::path(post, path = "/v1/audio/speech", tag = "OpenAI", request_body = SpeechRequest,
    responses((status = 200, description = "The audio, streamed, with the format's Content-Type", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorResponse), (status = 402, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 429, body = ErrorResponse), (status = 502, body = ErrorResponse)),
    security(("bearer" = [])))]
fn speech() {}

#[utoipa::path(post, path = "/v1/audio/transcriptions", tag = "OpenAI",
    request_body(content = TranscriptionForm, content_type = "multipart/form-data"),
    responses((status = 200, body = Transcription), (status = 400, description = "Not audio, or a bad field (named in `param`)", body = ErrorResponse),
        (status = 402, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 413, description = "Over 25 MB", body = ErrorResponse),
        (status = 429, body = ErrorResponse), (status = 502, body = ErrorResponse)),
    security(("bearer" = [])))]
fn transcriptions() {}

#[utoipa::path(post, path = "/v1/audio/translations", tag = "OpenAI",
    request_body(content = TranscriptionForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "English text", body = Transcription), (status = 400, body = ErrorResponse),
        (status = 402, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 413, body = ErrorResponse),
        (status = 429, body = ErrorResponse), (status = 502, body = ErrorResponse)),
    security(("bearer" = [])))]
fn translations() {}

#[utoipa::path(get, path = "/v1/audio/files/{sha256}", tag = "Audio",
    params(("sha256" = String, Path, description = "The address of stored speech: 64 lowercase hex digits, from a speech answer's `ETag` or `Content-Location`"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` the client holds: 304 when it matches")),
    responses((status = 200, description = "The stored audio, with `ETag`, `Cache-Control` and its format's Content-Type", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "The client's copy is current"),
        (status = 404, description = "No stored audio has this address, or the gateway has no audio cache", body = ErrorResponse)),
    security(("bearer" = [])))]
fn audio_file() {}

#[utoipa::path(get, path = "/v1/models/{id}", tag = "OpenAI", params(("id" = String, Path, description = "Model id")),
    responses((status = 200, body = Model), (status = 404, body = ErrorResponse)), security(("bearer" = [])))]
fn retrieve_model() {}

#[utoipa::path(post, path = "/v1/auth/register", tag = "Auth", request_body = Credentials,
    responses((status = 201, body = User), (status = 400, body = ErrorResponse), (status = 403, description = "registration closed", body = ErrorResponse), (status = 409, body = ErrorResponse)))]
fn register() {}

#[utoipa::path(post, path = "/v1/auth/login", tag = "Auth", request_body = Credentials,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
fn login() {}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "Auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid, spent (family revoked) or expired", body = ErrorResponse)))]
fn refresh() {}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "Auth", request_body = RefreshRequest, responses((status = 204, description = "The refresh token's family is revoked")))]
fn logout() {}

#[utoipa::path(get, path = "/v1/auth/me", tag = "Auth", responses((status = 200, body = User), (status = 401, body = ErrorResponse)), security(("bearer" = [])))]
fn me() {}

#[utoipa::path(post, path = "/v1/keys", tag = "Keys", request_body = NewKey,
    responses((status = 201, description = "The key; `key` holds the secret, shown once", body = ApiKey), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = [])))]
fn create_key() {}

#[utoipa::path(get, path = "/v1/keys", tag = "Keys", params(("user_id" = Option<String>, Query, description = "Another user's keys (admins)")),
    responses((status = 200, body = ApiKeyList), (status = 403, body = ErrorResponse)), security(("bearer" = [])))]
fn list_keys() {}

#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "Keys", params(("id" = String, Path)), request_body = RotateKey,
    responses((status = 201, description = "The new key; the old one works until `grace_until`", body = ApiKey), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
fn rotate_key() {}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "Keys", params(("id" = String, Path)),
    responses((status = 200, description = "Revoked at once, on every gateway", body = ApiKey), (status = 404, body = ErrorResponse)), security(("bearer" = [])))]
fn revoke_key() {}

#[utoipa::path(get, path = "/v1/admin/users", tag = "Admin", params(("limit" = Option<u32>, Query), ("after" = Option<String>, Query)),
    responses((status = 200, body = UserList), (status = 403, body = ErrorResponse)), security(("bearer" = [])))]
fn list_users() {}

#[utoipa::path(post, path = "/v1/admin/users", tag = "Admin", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 409, body = ErrorResponse)), security(("bearer" = [])))]
fn create_user() {}

#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "Admin", params(("id" = String, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)), security(("bearer" = [])))]
fn update_user() {}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "Admin", params(("limit" = Option<u32>, Query), ("before" = Option<i64>, Query, description = "Unix seconds")),
    responses((status = 200, body = AuditList), (status = 403, body = ErrorResponse)), security(("bearer" = [])))]
fn list_audit() {}

#[utoipa::path(post, path = "/v1/admin/users/{id}/credits", tag = "Admin", params(("id" = String, Path)), request_body = CreditGrant,
    responses((status = 201, body = LedgerEntry), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)), security(("bearer" = [])))]
fn grant_credits() {}

#[utoipa::path(get, path = "/v1/billing/balance", tag = "Billing", params(("user_id" = Option<String>, Query, description = "Another user (admins)")),
    responses((status = 200, body = Balance), (status = 403, body = ErrorResponse)), security(("bearer" = [])))]
fn balance() {}

#[utoipa::path(get, path = "/v1/billing/usage", tag = "Billing",
    params(("from" = Option<i64>, Query, description = "Unix seconds, default 30 days ago"), ("to" = Option<i64>, Query, description = "Unix seconds, default now"),
        ("group_by" = Option<String>, Query, description = "day (default), model or key"), ("user_id" = Option<String>, Query)),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)), security(("bearer" = [])))]
fn usage() {}

#[utoipa::path(get, path = "/v1/billing/pricing", tag = "Billing", responses((status = 200, body = PriceList)), security(("bearer" = [])))]
fn pricing() {}

#[utoipa::path(put, path = "/v1/admin/pricing/{model}", tag = "Admin", params(("model" = String, Path)), request_body = PriceUpdate,
    responses((status = 200, description = "The stored price version", body = Price), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = [])))]
fn update_price() {}

#[utoipa::path(get, path = "/v1/admin/providers", tag = "Admin",
    responses((status = 200, description = "Each deployment's breaker state, EWMA latency, error rate and requests in flight", body = DeploymentHealthList), (status = 403, body = ErrorResponse)),
    security(("bearer" = [])))]
fn providers() {}

/// Every operation can answer these, always with the OpenAI error body:
/// malformed input, authentication, permissions, limits and upstream trouble.
struct CommonErrors;

const COMMON_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "Malformed JSON, an invalid field (named in `param`) or query string",
    ),
    ("401", "Missing or invalid credential"),
    ("403", "The credential lacks the scope or role"),
    ("404", "Unknown model, key, user or route"),
    ("405", "Method not allowed on this route"),
    ("409", "Conflict (duplicate, or an Idempotency-Key still in progress)"),
    ("413", "Body over the limit"),
    ("415", "Unsupported content encoding"),
    ("422", "Idempotency-Key reused with a different body"),
    ("429", "Rate limit or quota reached; see Retry-After"),
    ("500", "Unexpected server error (no detail is exposed)"),
    ("502", "The upstream provider failed"),
    ("503", "A dependency is temporarily unavailable"),
    ("504", "Timed out"),
];

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for (code, description) in COMMON_ERRORS {
                    if !op.responses.responses.contains_key(*code) {
                        let response = ResponseBuilder::new()
                            .description(*description)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("ErrorResponse")))
                                    .build(),
                            )
                            .build();
                        op.responses.responses.insert((*code).to_owned(), response.into());
                    }
                }
            }
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`ofk_…`) or a login access token"))
                    .build(),
            ),
        );
    }
}

/// The public API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "OneFlow", description = "OpenAI-compatible AI gateway: model calls, accounts, keys and billing."),
    paths(chat_completions, embeddings, speech, transcriptions, translations, audio_file, list_models, retrieve_model, register, login, refresh, logout, me, create_key, list_keys,
        rotate_key, revoke_key, list_users, create_user, update_user, list_audit, grant_credits, balance, usage, pricing, update_price, providers),
    modifiers(&BearerAuth, &CommonErrors),
    tags((name = "OpenAI", description = "OpenAI-compatible endpoints"), (name = "Audio", description = "OneFlow's speech cache"), (name = "Auth"), (name = "Keys"), (name = "Admin"), (name = "Billing"))
)]
pub struct ApiDoc;
