//! Each provider family's dialect, seen from the router: how a request is
//! prepared (URL, headers, signed body), how an error answer is read, how a
//! successful answer becomes OpenAI's shape, and how a stream is decoded.
//! The translations themselves live in `oneflow-providers` (OpenAI, Azure,
//! Anthropic, Gemini) and `oneflow-aws` (Bedrock); this module only routes a
//! deployment to its family and maps their results onto the router's types,
//! so the dispatcher stays the same for every provider.
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use oneflow_proto::common::v1::Usage;
use oneflow_providers::{self as providers, AdapterError, Family, StreamItem};

use crate::catalog::Deployment;
use crate::config::ProviderKind;
use crate::upstream::{UpstreamError, usage_of};

/// What a request asks of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Chat completions.
    Chat,
    /// Embeddings.
    Embeddings,
    /// Text to speech: the body is OpenAI's speech JSON.
    Speech,
    /// Speech to text: the body is a multipart form (see [`multipart`]).
    Transcription {
        /// Into English (`/translations`) rather than the spoken language.
        translate: bool,
    },
}

/// A speech-to-text upload as it goes upstream.
#[derive(Debug)]
pub struct Upload<'a> {
    /// The audio file.
    pub audio: &'a [u8],
    /// Its name as the client sent it.
    pub filename: &'a str,
    /// The model the upstream knows.
    pub model: &'a str,
    /// The other form fields (language, prompt, response_format, ...).
    pub fields: &'a std::collections::HashMap<String, String>,
}

/// Encodes `upload` as `multipart/form-data` (RFC 7578); returns the content
/// type (with its boundary, chosen so it cannot occur in the parts) and body.
pub fn multipart(upload: &Upload<'_>) -> (String, Bytes) {
    let mut boundary = format!("oneflow-{:032x}", rand::random::<u128>());
    while upload.audio.windows(boundary.len()).any(|w| w == boundary.as_bytes())
        || upload.fields.values().any(|v| v.contains(&boundary))
    {
        boundary = format!("oneflow-{:032x}", rand::random::<u128>());
    }
    let clean = |s: &str| s.replace(['"', '\r', '\n'], "_");
    let mut body = Vec::with_capacity(upload.audio.len() + 1024);
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
                clean(name)
            )
            .as_bytes(),
        );
    };
    field("model", upload.model);
    let mut names: Vec<_> = upload.fields.keys().collect();
    names.sort();
    for name in names {
        if name == "model" {
            continue;
        }
        if name.ends_with("[]") {
            // A repeated field (`timestamp_granularities[]`): the gateway joined
            // its values with commas; each goes back as its own part.
            for value in upload.fields[name].split(',').filter(|v| !v.is_empty()) {
                field(name, value);
            }
        } else {
            field(name, &upload.fields[name]);
        }
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            clean(upload.filename)
        )
        .as_bytes(),
    );
    body.extend_from_slice(upload.audio);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), Bytes::from(body))
}

/// The audio routes of the OpenAI-compatible and Azure families.
pub(crate) fn audio_request(
    dep: &Deployment,
    op: Op,
    body: &Bytes,
    content_type: &str,
) -> Result<Prepared, UpstreamError> {
    let p = &dep.provider;
    let tail = match op {
        Op::Speech => "audio/speech",
        Op::Transcription { translate: false } => "audio/transcriptions",
        Op::Transcription { translate: true } => "audio/translations",
        Op::Chat | Op::Embeddings => return Err(UpstreamError::Config("not an audio operation".to_owned())),
    };
    let mut headers = http::HeaderMap::new();
    let value = |v: &str| {
        http::HeaderValue::from_str(v).map_err(|_| UpstreamError::Config("a header value is not valid".to_owned()))
    };
    headers.insert(http::header::CONTENT_TYPE, value(content_type)?);
    let key = p.api_key.as_ref().map(oneflow_runtime::Secret::expose);
    let url = match p.kind {
        ProviderKind::OpenaiCompatible => {
            if let Some(k) = key {
                let mut v = value(&format!("Bearer {k}"))?;
                v.set_sensitive(true);
                headers.insert(http::header::AUTHORIZATION, v);
            }
            format!("{}/{tail}", p.base_url)
        }
        ProviderKind::Azure => {
            if let Some(k) = key {
                let mut v = value(k)?;
                v.set_sensitive(true);
                headers.insert("api-key", v);
            }
            format!(
                "{}/openai/deployments/{}/{tail}?api-version={}",
                p.base_url,
                dep.upstream_model,
                p.api_version.as_deref().unwrap_or("2024-10-21")
            )
        }
        kind => {
            return Err(UpstreamError::Unsupported(format!(
                "model: {kind:?} deployments do not serve audio in OneFlow yet"
            )));
        }
    };
    Ok(Prepared {
        url,
        headers,
        body: body.clone(),
    })
}

/// An upstream request ready to send with POST.
#[derive(Debug)]
pub struct Prepared {
    /// Full URL.
    pub url: String,
    /// Content type, credentials and provider headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl From<oneflow_aws::Prepared> for Prepared {
    fn from(p: oneflow_aws::Prepared) -> Self {
        Prepared {
            url: p.url,
            headers: p.headers,
            body: p.body,
        }
    }
}

/// Identity given to answers of translated families (the OpenAI dialect keeps
/// the upstream's own).
#[derive(Debug, Clone)]
pub struct AnswerId {
    /// `chatcmpl-…`
    pub id: String,
    /// Unix seconds.
    pub created: i64,
}

impl AnswerId {
    /// A fresh id.
    pub fn new() -> Self {
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        Self {
            id: format!("chatcmpl-{:032x}", rand::random::<u128>()),
            created,
        }
    }
}

fn family(kind: ProviderKind) -> Option<Family> {
    match kind {
        ProviderKind::OpenaiCompatible => Some(Family::OpenAi),
        ProviderKind::Azure => Some(Family::Azure),
        ProviderKind::Anthropic => Some(Family::Anthropic),
        ProviderKind::Gemini => Some(Family::Gemini),
        ProviderKind::Bedrock | ProviderKind::Google | ProviderKind::Polly | ProviderKind::Transcribe => None,
    }
}

fn target(dep: &Deployment, default_max_tokens: u64) -> providers::Target<'_> {
    providers::Target {
        base_url: &dep.provider.base_url,
        upstream_model: &dep.upstream_model,
        api_key: dep.provider.api_key.as_ref().map(oneflow_runtime::Secret::expose),
        api_version: dep.provider.api_version.as_deref(),
        default_max_tokens,
    }
}

fn bedrock_target<'a>(
    dep: &'a Deployment,
    region: &'a str,
    default_max_tokens: u64,
) -> oneflow_aws::bedrock::Target<'a> {
    oneflow_aws::bedrock::Target {
        region,
        endpoint: (!dep.provider.base_url.is_empty()).then_some(dep.provider.base_url.as_str()),
        model_id: &dep.upstream_model,
        default_max_tokens,
    }
}

fn adapter_error(e: AdapterError) -> UpstreamError {
    match e {
        AdapterError::Invalid(message) => UpstreamError::Unsupported(message),
        AdapterError::Protocol(_) => UpstreamError::Protocol,
        AdapterError::Config(message) => UpstreamError::Config(message),
    }
}

pub(crate) fn aws_error(e: oneflow_aws::AwsError) -> UpstreamError {
    match e {
        oneflow_aws::AwsError::Invalid(message) => UpstreamError::Unsupported(message),
        oneflow_aws::AwsError::Protocol(_) => UpstreamError::Protocol,
        oneflow_aws::AwsError::Upstream { status, code, message } => UpstreamError::Status {
            status,
            message,
            code: Some(code),
            retry_after: None,
        },
        other => UpstreamError::Config(other.to_string()),
    }
}

/// The request for `body` (the client's OpenAI body with the upstream model
/// set) to `dep`. `default_max_tokens` is the output cap for providers that
/// require one.
pub fn prepare(
    dep: &Deployment,
    op: Op,
    body: &Bytes,
    stream: bool,
    default_max_tokens: u64,
    content_type: &str,
) -> Result<Prepared, UpstreamError> {
    if matches!(op, Op::Speech | Op::Transcription { .. }) {
        return audio_request(dep, op, body, content_type);
    }
    if matches!(
        dep.provider.kind,
        ProviderKind::Google | ProviderKind::Polly | ProviderKind::Transcribe
    ) {
        return Err(UpstreamError::Unsupported(
            "model: Google Cloud speech, Polly and Transcribe deployments serve audio only".to_owned(),
        ));
    }
    if let Some(family) = family(dep.provider.kind) {
        let t = target(dep, default_max_tokens);
        let p = match op {
            Op::Embeddings => providers::embeddings_request(family, &t, body),
            _ => providers::chat_request(family, &t, body, stream),
        }
        .map_err(adapter_error)?;
        return Ok(Prepared {
            url: p.url,
            headers: p.headers,
            body: p.body,
        });
    }
    let aws = dep
        .provider
        .aws
        .as_ref()
        .ok_or_else(|| UpstreamError::Config("Bedrock provider without AWS settings".to_owned()))?;
    if op == Op::Embeddings {
        return Err(UpstreamError::Unsupported(
            "model: Bedrock deployments serve chat only in OneFlow".to_owned(),
        ));
    }
    let t = bedrock_target(dep, &aws.region, default_max_tokens);
    let p =
        oneflow_aws::bedrock::chat_request(&t, body, stream, &aws.credentials, SystemTime::now()).map_err(aws_error)?;
    Ok(p.into())
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Reads an error answer of `dep`'s provider.
pub async fn error(dep: &Deployment, resp: reqwest::Response) -> UpstreamError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.bytes().await.unwrap_or_default();
    let aws_answer = |(status, code, message): (u16, String, String)| {
        if oneflow_aws::is_credential_failure(&code) {
            // OneFlow's own AWS credentials: not retried here, the next
            // deployment may have working ones.
            UpstreamError::Config(message)
        } else {
            UpstreamError::Status {
                status,
                message,
                code: Some(code),
                retry_after,
            }
        }
    };
    match dep.provider.kind {
        ProviderKind::Google => {
            let e = oneflow_audio::google::parse_error(&body);
            return UpstreamError::Status {
                status,
                message: e
                    .as_ref()
                    .map_or_else(|| format!("Google Cloud answered HTTP {status}"), |e| e.message.clone()),
                code: e.map(|e| e.status.to_ascii_lowercase()),
                retry_after,
            };
        }
        ProviderKind::Polly => {
            return aws_answer(oneflow_aws::polly::error_from(status, error_type.as_deref(), &body));
        }
        ProviderKind::Transcribe => {
            return aws_answer(oneflow_aws::transcribe::error_from(
                status,
                error_type.as_deref(),
                &body,
            ));
        }
        _ => {}
    }
    match family(dep.provider.kind) {
        Some(family) => {
            let e = providers::error_from(family, status, &body);
            UpstreamError::Status {
                status,
                message: e.message,
                code: e.code,
                retry_after,
            }
        }
        None => {
            let (status, code, message) = oneflow_aws::bedrock::error_from(status, error_type.as_deref(), &body);
            UpstreamError::Status {
                status,
                message,
                code: Some(code),
                retry_after,
            }
        }
    }
}

fn usage(u: providers::Usage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cached_input_tokens: u.cached_input_tokens,
        ..Usage::default()
    }
}

fn aws_usage(u: &oneflow_aws::bedrock::Usage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cached_input_tokens: u.cached_input_tokens,
        ..Usage::default()
    }
}

/// A successful non-streamed answer in OpenAI's shape, with its usage.
/// `base64` says the client asked for base64 embeddings.
pub fn answer(
    dep: &Deployment,
    op: Op,
    base64: bool,
    body: Bytes,
    default_max_tokens: u64,
) -> Result<(Bytes, Usage), UpstreamError> {
    let Some(family) = family(dep.provider.kind) else {
        let aws = dep
            .provider
            .aws
            .as_ref()
            .ok_or_else(|| UpstreamError::Config("Bedrock provider without AWS settings".to_owned()))?;
        let id = AnswerId::new();
        let t = bedrock_target(dep, &aws.region, default_max_tokens);
        let (out, u) = oneflow_aws::bedrock::chat_response(&t, &body, &id.id, id.created).map_err(aws_error)?;
        return Ok((out, aws_usage(&u)));
    };
    if family == Family::OpenAi {
        // Passed through untouched: no re-encoding on the hot path.
        let u = usage_of(&body).map(Usage::from).unwrap_or_default();
        return Ok((body, u));
    }
    let t = target(dep, default_max_tokens);
    let (out, u) = match op {
        Op::Chat | Op::Speech | Op::Transcription { .. } => {
            providers::chat_response(family, &t, &body, &AnswerId::new().id)
        }
        Op::Embeddings => {
            let format = if base64 {
                providers::EmbeddingFormat::Base64
            } else {
                providers::EmbeddingFormat::Float
            };
            providers::embeddings_response_as(family, &t, &body, format)
        }
    }
    .map_err(adapter_error)?;
    Ok((out, usage(u)))
}

/// One thing found in an upstream stream.
#[derive(Debug)]
pub enum Item {
    /// An OpenAI `chat.completion.chunk` JSON object, without framing.
    Chunk(Bytes),
    /// The stream's usage.
    Usage(Usage),
    /// An error event inside the stream; nothing follows it.
    Error(String),
}

/// Decodes one upstream stream, whatever its family's framing.
#[derive(Debug)]
pub enum Decoder {
    /// SSE-based families.
    Sse(providers::StreamDecoder),
    /// Bedrock's binary event stream.
    Bedrock(oneflow_aws::bedrock::StreamDecoder),
}

impl Decoder {
    /// A decoder for a stream from `dep`.
    pub fn new(dep: &Deployment) -> Self {
        let id = AnswerId::new();
        match family(dep.provider.kind) {
            Some(family) => Decoder::Sse(providers::StreamDecoder::new(
                family,
                &dep.upstream_model,
                &id.id,
                id.created,
            )),
            None => Decoder::Bedrock(oneflow_aws::bedrock::StreamDecoder::new(
                &dep.upstream_model,
                &id.id,
                id.created,
            )),
        }
    }

    fn sse_items(items: Vec<StreamItem>) -> Vec<Item> {
        items
            .into_iter()
            .map(|i| match i {
                StreamItem::Chunk(b) => Item::Chunk(b),
                StreamItem::Usage(u) => Item::Usage(usage(u)),
                StreamItem::Error(e) => Item::Error(e.message),
            })
            .collect()
    }

    fn bedrock_items(
        d: &oneflow_aws::bedrock::StreamDecoder,
        items: Vec<oneflow_aws::bedrock::StreamItem>,
    ) -> Vec<Item> {
        let mut out = Vec::with_capacity(items.len() + 1);
        for i in items {
            match i {
                oneflow_aws::bedrock::StreamItem::Chunk(b) => out.push(Item::Chunk(b)),
                oneflow_aws::bedrock::StreamItem::Usage(u) => {
                    // The usage chunk OpenAI sends when asked; the relay drops
                    // it when the client did not ask.
                    out.push(Item::Chunk(d.usage_chunk(&u)));
                    out.push(Item::Usage(aws_usage(&u)));
                }
                oneflow_aws::bedrock::StreamItem::Error { message, .. } => out.push(Item::Error(message)),
            }
        }
        out
    }

    /// Feeds bytes as they arrive; `Err` when the stream cannot be read.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Item>, String> {
        match self {
            Decoder::Sse(d) => d.feed(bytes).map(Self::sse_items).map_err(|e| e.to_string()),
            Decoder::Bedrock(d) => match d.feed(bytes) {
                Ok(items) => Ok(Self::bedrock_items(d, items)),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// The body ended: `Err` when it ended before the provider said it was done.
    pub fn finish(&mut self) -> Result<Vec<Item>, String> {
        match self {
            Decoder::Sse(d) => d.finish().map(Self::sse_items).map_err(|e| e.to_string()),
            Decoder::Bedrock(d) => match d.finish() {
                Ok(items) => Ok(Self::bedrock_items(d, items)),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// A cheap authenticated request that tells whether `dep`'s provider answers
/// (its model list); `None` for families without one that fits (Bedrock's
/// lives on another endpoint and needs other permissions).
pub fn probe(client: &reqwest::Client, dep: &Deployment) -> Option<reqwest::RequestBuilder> {
    let p = &dep.provider;
    let key = p.api_key.as_ref().map(oneflow_runtime::Secret::expose);
    let req = match p.kind {
        ProviderKind::OpenaiCompatible => {
            let r = client.get(format!("{}/models", p.base_url));
            match key {
                Some(k) => r.bearer_auth(k),
                None => r,
            }
        }
        ProviderKind::Azure => {
            let version = p.api_version.as_deref().unwrap_or_default();
            client
                .get(format!("{}/openai/models?api-version={version}", p.base_url))
                .header("api-key", key.unwrap_or_default())
        }
        ProviderKind::Anthropic => client
            .get(format!("{}/v1/models", p.base_url))
            .header("x-api-key", key.unwrap_or_default())
            .header("anthropic-version", p.api_version.as_deref().unwrap_or("2023-06-01")),
        ProviderKind::Gemini => {
            let version = p.api_version.as_deref().unwrap_or("v1beta");
            client
                .get(format!("{}/{version}/models", p.base_url))
                .header("x-goog-api-key", key.unwrap_or_default())
        }
        ProviderKind::Bedrock | ProviderKind::Google | ProviderKind::Polly | ProviderKind::Transcribe => {
            return None;
        }
    };
    Some(req)
}
