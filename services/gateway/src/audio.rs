//! `POST /v1/audio/speech`, `/v1/audio/transcriptions` and
//! `/v1/audio/translations` in OpenAI's shapes. Speech is reserved at its
//! character count and relayed to the client as the audio arrives;
//! transcription uploads (up to 25 MB, more than the general body limit) are
//! checked by their bytes, not their name, and reserved at their decoded
//! duration. Both settle the real usage like chat does, also when the client
//! hangs up or the upstream breaks off (a cut audio body ends in an error,
//! never in a clean end). With `[audio_cache]` set, a speech request whose
//! audio is already stored is answered from the store (see `audio_cache`),
//! and `GET /v1/audio/files/{sha256}` serves stored audio to any caller with
//! the `inference` scope, with `ETag` and `If-None-Match`.
use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use oneflow_proto::common::v1::{Operation, Usage};
use oneflow_proto::router::v1 as pb;
use oneflow_proto::router::v1::speech_event::Event;

use crate::audio_cache::{self, AudioCache, HitBilling};
use crate::error::ApiError;
use crate::inference::{
    authorize, body_or_error, client_request_id, require_inference, route_headers, with_rate_headers,
};
use crate::principal::Principal;
use crate::settle::{Pending, Settlement};
use crate::state::AppState;

/// Upload bound of the transcription routes (OpenAI's).
pub const UPLOAD_LIMIT: usize = 25 * 1024 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "The audio file is larger than the 25 MB limit.",
    )
    .param("file")
    .code("request_too_large")
}

fn invalid_audio(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message).param("file")
}

/// `POST /v1/audio/speech`
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, model, billing_id))]
pub async fn speech(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_inference(&principal)?;
    let body = body_or_error(body)?;
    let request: oneflow_audio::SpeechRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("We could not parse the speech request: {e}.")))?;
    request
        .format()
        .map_err(|e| ApiError::invalid(e.to_string()).param("response_format"))?;
    request.validate().map_err(|e| ApiError::invalid(e.to_string()))?;
    let model = request.model.clone();
    state.models.get(&state, &model).await?;
    let billing_id = uuid::Uuid::now_v7().to_string();
    let span = tracing::Span::current();
    span.record("model", model.as_str());
    span.record("billing_id", billing_id.as_str());
    let characters = u64::try_from(request.input.chars().count()).unwrap_or(u64::MAX);
    let worst = Usage {
        characters,
        ..Usage::default()
    };
    let cache = state.audio_cache.clone().filter(|_| !skips_cache(&headers));
    let key = cache.as_ref().map(|c| c.key(&request));
    let window = authorize(&state, &principal, &billing_id, &model, Operation::Speech, worst).await?;
    let outcome: Result<Response, ApiError> = async move {
        let mut pending = Pending::new(
            &state.settler,
            Settlement::new(&billing_id, &principal, &model, Operation::Speech)
                .with_client_request_id(client_request_id(&headers)),
            0,
        );
        if let (Some(cache), Some(key)) = (&cache, &key)
            && let Some(audio) = cache.get(key).await
        {
            metrics::counter!("oneflow_audio_cache_requests_total", "result" => "hit").increment(1);
            pending.route(CACHE_PROVIDER, CACHE_DEPLOYMENT);
            pending.exact_usage(match cache.hit_billing() {
                HitBilling::Full => Usage {
                    characters,
                    ..Usage::default()
                },
                HitBilling::Free => Usage::default(),
            });
            pending.finish();
            let format = request.format().map_err(|e| ApiError::invalid(e.to_string()))?;
            let mut out = stored_audio(cache, key, audio, format.content_type());
            out.headers_mut()
                .insert("x-oneflow-cache", HeaderValue::from_static("hit"));
            let route = pb::Route {
                provider: CACHE_PROVIDER.to_owned(),
                deployment: CACHE_DEPLOYMENT.to_owned(),
                cache_hit: true,
                ..pb::Route::default()
            };
            route_headers(&mut out, Some(&route), &billing_id);
            return Ok(out);
        }
        let request = pb::SpeechRequest {
            meta: Some(pb::RequestMeta {
                request_id: client_request_id(&headers),
                user_id: principal.user_id.clone(),
                key_id: principal.key_id.clone(),
                cache: false,
            }),
            body: body.to_vec(),
        };
        let mut router = state.clients.router.clone();
        let mut upstream = match router.speech(request).await {
            Ok(s) => s.into_inner(),
            Err(status) => {
                let err = ApiError::from_status(&status);
                pending.status(err.status.as_u16());
                return Err(err);
            }
        };
        // Route and content type come first.
        let mut route = None;
        let mut content_type = None;
        while route.is_none() || content_type.is_none() {
            match upstream.message().await {
                Ok(Some(pb::SpeechEvent {
                    event: Some(Event::Route(r)),
                })) => route = Some(r),
                Ok(Some(pb::SpeechEvent {
                    event: Some(Event::ContentType(c)),
                })) => content_type = Some(c),
                Err(status) => {
                    let err = ApiError::from_status(&status);
                    pending.status(err.status.as_u16());
                    return Err(err);
                }
                Ok(_) => {
                    pending.status(502);
                    return Err(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "server_error",
                        "The upstream audio stream ended before it began.",
                    ));
                }
            }
        }
        let (route, content_type) = (route.unwrap_or_default(), content_type.unwrap_or_default());
        pending.route(&route.provider, &route.deployment);
        // Synthesis started: its characters are billed even if the client
        // hangs up before the router's final usage arrives.
        pending.usage(Usage {
            characters,
            ..Usage::default()
        });
        let capture = cache.zip(key).map(|(cache, key)| {
            metrics::counter!("oneflow_audio_cache_requests_total", "result" => "miss").increment(1);
            Capture {
                cache,
                key,
                audio: Vec::new(),
            }
        });
        let cached = capture.is_some();
        let relay = AudioRelay {
            upstream,
            pending: Some(pending),
            capture,
        };
        let body_stream = futures::stream::unfold(relay, |mut relay| async move {
            let item = relay.next_chunk().await?;
            Some((item, relay))
        });
        let mut out = Response::new(Body::from_stream(futures::StreamExt::fuse(body_stream)));
        let h = out.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        route_headers(&mut out, Some(&route), &billing_id);
        if cached {
            mark_miss(&mut out);
        }
        Ok(out)
    }
    .await;
    Ok(with_rate_headers(outcome, window.as_ref()))
}

/// The provider and deployment recorded for audio served from the cache.
const CACHE_PROVIDER: &str = "oneflow-cache";
const CACHE_DEPLOYMENT: &str = "audio-cache";

fn mark_miss(out: &mut Response) {
    out.headers_mut()
        .insert("x-oneflow-cache", HeaderValue::from_static("miss"));
}

/// `x-oneflow-cache: skip` bypasses the audio cache (neither read nor written).
fn skips_cache(headers: &HeaderMap) -> bool {
    headers
        .get("x-oneflow-cache")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("skip"))
}

/// A 200 with stored audio and its validators.
fn stored_audio(cache: &AudioCache, key: &str, audio: Bytes, content_type: &str) -> Response {
    let mut out = Response::new(Body::from(audio));
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    add_validators(h, cache, key);
    out
}

fn add_validators(h: &mut HeaderMap, cache: &AudioCache, key: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{key}\"")) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, cache.cache_control().clone());
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/audio/files/{key}")) {
        h.insert(header::CONTENT_LOCATION, v);
    }
}

fn file_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "No stored audio has this address.",
    )
    .param("sha256")
    .code("audio_file_not_found")
}

/// `GET /v1/audio/files/{sha256}`: stored speech, for clients and CDNs.
pub async fn file(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_inference(&principal)?;
    let cache = state.audio_cache.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "The audio cache is not enabled on this gateway.",
        )
        .code("audio_cache_disabled")
    })?;
    if !audio_cache::is_key(&key) {
        return Err(file_not_found());
    }
    if audio_cache::none_match(headers.get(header::IF_NONE_MATCH), &format!("\"{key}\"")) && cache.exists(&key).await {
        // Validators only: the client's copy is current.
        let mut out = Response::new(Body::empty());
        *out.status_mut() = StatusCode::NOT_MODIFIED;
        add_validators(out.headers_mut(), cache, &key);
        return Ok(out);
    }
    let audio = cache.get(&key).await.ok_or_else(file_not_found)?;
    let content_type = audio_cache::content_type(&audio);
    Ok(stored_audio(cache, &key, audio, content_type))
}

/// Audio being relayed, kept to be stored once it ended cleanly.
struct Capture {
    cache: AudioCache,
    key: String,
    audio: Vec<u8>,
}

/// Relays audio chunks; settles when the stream ends, fails, or the client
/// goes away (the `Pending` settles on drop).
struct AudioRelay {
    upstream: tonic::Streaming<pb::SpeechEvent>,
    pending: Option<Pending>,
    capture: Option<Capture>,
}

impl Drop for AudioRelay {
    fn drop(&mut self) {
        // The client went away before the audio ended: record it as such (the
        // characters already recorded are still charged).
        if let Some(mut p) = self.pending.take() {
            p.status(499);
        }
    }
}

impl AudioRelay {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            let pending = self.pending.as_mut()?;
            match self.upstream.message().await {
                Ok(Some(pb::SpeechEvent {
                    event: Some(Event::Audio(bytes)),
                })) => {
                    if let Some(c) = self.capture.as_mut() {
                        if c.audio.len() + bytes.len() > c.cache.max_object_bytes() {
                            self.capture = None;
                        } else {
                            c.audio.extend_from_slice(&bytes);
                        }
                    }
                    return Some(Ok(Bytes::from(bytes)));
                }
                Ok(Some(pb::SpeechEvent {
                    event: Some(Event::Usage(u)),
                })) => pending.usage(u),
                Ok(Some(pb::SpeechEvent {
                    event: Some(Event::Error(e)),
                })) => {
                    pending.status(502);
                    if let Some(p) = self.pending.take() {
                        p.finish();
                    }
                    return Some(Err(std::io::Error::other(e.message)));
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    if let Some(p) = self.pending.take() {
                        p.finish();
                    }
                    // Only audio that arrived whole is stored.
                    if let Some(c) = self.capture.take() {
                        tokio::spawn(async move { c.cache.put(&c.key, Bytes::from(c.audio)).await });
                    }
                    return None;
                }
                Err(status) => {
                    pending.status(502);
                    if let Some(p) = self.pending.take() {
                        p.finish();
                    }
                    return Some(Err(std::io::Error::other(status.message().to_owned())));
                }
            }
        }
    }
}

/// The multipart form of a transcription, read and checked.
struct Upload {
    audio: Vec<u8>,
    filename: String,
    model: String,
    fields: HashMap<String, String>,
}

async fn read_upload(mut form: Multipart) -> Result<Upload, ApiError> {
    let mut audio = None;
    let mut filename = String::new();
    let mut model = None;
    let mut fields = HashMap::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => return Err(ApiError::invalid(format!("Could not read the multipart form: {e}."))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            filename = field.file_name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    invalid_audio(format!("Could not read the uploaded file: {e}."))
                }
            })?;
            audio = Some(bytes.to_vec());
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| ApiError::invalid(format!("Could not read the form field `{name}`: {e}.")).param(&name))?;
            if name == "model" {
                model = Some(text);
            } else {
                // `timestamp_granularities[]` may repeat: keep every value.
                fields
                    .entry(name)
                    .and_modify(|v: &mut String| {
                        v.push(',');
                        v.push_str(&text);
                    })
                    .or_insert(text);
            }
        }
    }
    let audio = audio.ok_or_else(|| invalid_audio("you must provide a file parameter"))?;
    let model = model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid("you must provide a model parameter").param("model"))?;
    Ok(Upload {
        audio,
        filename,
        model,
        fields,
    })
}

async fn transcribe(
    state: AppState,
    principal: Arc<Principal>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
    translate: bool,
) -> Result<Response, ApiError> {
    require_inference(&principal)?;
    let form = form.map_err(|e| ApiError::invalid(format!("Expected a multipart/form-data body: {e}.")))?;
    let upload = read_upload(form).await?;
    // The format comes from the bytes; the duration is what is billed.
    let info = oneflow_audio::inspect(upload.audio.clone(), None).map_err(|e| {
        invalid_audio(format!(
            "The audio file could not be decoded or its format is not supported ({e}). Supported formats: \
             flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm."
        ))
    })?;
    state.models.get(&state, &upload.model).await?;
    let operation = if translate {
        Operation::Translation
    } else {
        Operation::Transcription
    };
    let billing_id = uuid::Uuid::now_v7().to_string();
    let audio_millis = u64::try_from(info.duration.as_millis()).unwrap_or(u64::MAX);
    let worst = Usage {
        audio_millis,
        ..Usage::default()
    };
    let window = authorize(&state, &principal, &billing_id, &upload.model, operation, worst).await?;
    let outcome: Result<Response, ApiError> = async move {
        let mut pending = Pending::new(
            &state.settler,
            Settlement::new(&billing_id, &principal, &upload.model, operation)
                .with_client_request_id(client_request_id(&headers)),
            0,
        );
        let request = pb::TranscriptionRequest {
            meta: Some(pb::RequestMeta {
                request_id: client_request_id(&headers),
                user_id: principal.user_id.clone(),
                key_id: principal.key_id.clone(),
                cache: false,
            }),
            translate,
            audio: upload.audio,
            filename: upload.filename,
            model: upload.model,
            fields: upload.fields,
        };
        let mut router = state.clients.router.clone();
        match router.transcribe(state.clients.router_request(request)).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                if let Some(r) = &answer.route {
                    pending.route(&r.provider, &r.deployment);
                }
                pending.usage(answer.usage.unwrap_or_default());
                pending.finish();
                let mut out = Response::new(Body::from(answer.body));
                out.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(&answer.content_type).unwrap_or(HeaderValue::from_static("application/json")),
                );
                route_headers(&mut out, answer.route.as_ref(), &billing_id);
                Ok(out)
            }
            Err(status) => {
                let err = ApiError::from_status(&status);
                pending.status(err.status.as_u16());
                pending.finish();
                Err(err)
            }
        }
    }
    .await;
    Ok(with_rate_headers(outcome, window.as_ref()))
}

/// `POST /v1/audio/transcriptions`
pub async fn transcriptions(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    transcribe(state, principal, headers, form, false).await
}

/// `POST /v1/audio/translations`
pub async fn translations(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    transcribe(state, principal, headers, form, true).await
}
