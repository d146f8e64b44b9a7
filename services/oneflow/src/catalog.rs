//! The routing table and prices of the one-process mode: the mock provider's
//! models always, and each real provider's when its credentials are in the
//! environment (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`,
//! `AZURE_OPENAI_API_KEY` with its endpoint and deployment, the AWS variables
//! for Bedrock, Polly and Transcribe, `GOOGLE_APPLICATION_CREDENTIALS` or
//! `GOOGLE_CLOUD_API_KEY` for Google Cloud speech). `*_BASE_URL` variables
//! point a provider elsewhere (a proxy, or the mock in tests). Prices are list
//! prices per 1M tokens in USD.

use oneflow_billing::{ModelPrice, PricingConfig};
use oneflow_router::{
    DeploymentConfig, ModelConfig, ModelOperation, ProviderConfig, ProviderKind, RouterConfig, Strategy,
};
use oneflow_runtime::ServerConfig;
use rust_decimal::Decimal;

struct Entry<'a> {
    model: &'a str,
    /// The upstream's name when it differs from the public one.
    upstream: Option<&'a str>,
    operation: ModelOperation,
    input: (i64, u32),
    output: (i64, u32),
    cached: Option<(i64, u32)>,
    context: u64,
    max_output: u64,
    /// USD per 1M characters (text to speech).
    per_million_chars: Option<(i64, u32)>,
    /// USD per minute of audio (speech to text).
    per_minute: Option<(i64, u32)>,
}

const MOCK: &[Entry<'static>] = &[
    Entry {
        model: "mock-gpt",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (15, 2),
        output: (60, 2),
        cached: Some((75, 3)),
        context: 128_000,
        max_output: 4096,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "mock-gpt-mini",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (5, 2),
        output: (20, 2),
        cached: None,
        context: 32_000,
        max_output: 2048,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "mock-embed",
        upstream: None,
        operation: ModelOperation::Embeddings,
        input: (2, 2),
        output: (0, 0),
        cached: None,
        context: 8192,
        max_output: 0,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "mock-tts",
        upstream: None,
        operation: ModelOperation::Speech,
        input: (0, 0),
        output: (0, 0),
        cached: None,
        context: 0,
        max_output: 0,
        per_million_chars: Some((15, 0)),
        per_minute: None,
    },
    Entry {
        model: "mock-whisper",
        upstream: None,
        operation: ModelOperation::Transcription,
        input: (0, 0),
        output: (0, 0),
        cached: None,
        context: 0,
        max_output: 0,
        per_million_chars: None,
        per_minute: Some((6, 3)),
    },
];

const OPENAI: &[Entry<'static>] = &[
    Entry {
        model: "gpt-4o-mini",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (15, 2),
        output: (60, 2),
        cached: Some((75, 3)),
        context: 128_000,
        max_output: 16_384,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "gpt-4o",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (250, 2),
        output: (1000, 2),
        cached: Some((125, 2)),
        context: 128_000,
        max_output: 16_384,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "text-embedding-3-small",
        upstream: None,
        operation: ModelOperation::Embeddings,
        input: (2, 2),
        output: (0, 0),
        cached: None,
        context: 8191,
        max_output: 0,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "tts-1",
        upstream: None,
        operation: ModelOperation::Speech,
        input: (0, 0),
        output: (0, 0),
        cached: None,
        context: 0,
        max_output: 0,
        per_million_chars: Some((15, 0)),
        per_minute: None,
    },
    Entry {
        model: "gpt-4o-mini-tts",
        upstream: None,
        operation: ModelOperation::Speech,
        input: (0, 0),
        output: (0, 0),
        cached: None,
        context: 0,
        max_output: 0,
        per_million_chars: Some((12, 0)),
        per_minute: None,
    },
    Entry {
        model: "whisper-1",
        upstream: None,
        operation: ModelOperation::Transcription,
        input: (0, 0),
        output: (0, 0),
        cached: None,
        context: 0,
        max_output: 0,
        per_million_chars: None,
        per_minute: Some((6, 3)),
    },
    Entry {
        model: "gpt-4o-transcribe",
        upstream: None,
        operation: ModelOperation::Transcription,
        input: (0, 0),
        output: (0, 0),
        cached: None,
        context: 0,
        max_output: 0,
        per_million_chars: None,
        per_minute: Some((6, 3)),
    },
];

const ANTHROPIC: &[Entry<'static>] = &[
    Entry {
        model: "claude-sonnet-4-5",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (300, 2),
        output: (1500, 2),
        cached: Some((30, 2)),
        context: 200_000,
        max_output: 64_000,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "claude-haiku-4-5",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (100, 2),
        output: (500, 2),
        cached: Some((10, 2)),
        context: 200_000,
        max_output: 64_000,
        per_million_chars: None,
        per_minute: None,
    },
];

const GEMINI: &[Entry<'static>] = &[
    Entry {
        model: "gemini-2.5-flash",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (30, 2),
        output: (250, 2),
        cached: Some((75, 3)),
        context: 1_048_576,
        max_output: 65_536,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "gemini-2.5-pro",
        upstream: None,
        operation: ModelOperation::Chat,
        input: (125, 2),
        output: (1000, 2),
        cached: Some((31, 2)),
        context: 1_048_576,
        max_output: 65_536,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "gemini-embedding-001",
        upstream: None,
        operation: ModelOperation::Embeddings,
        input: (15, 2),
        output: (0, 0),
        cached: None,
        context: 2048,
        max_output: 0,
        per_million_chars: None,
        per_minute: None,
    },
];

const BEDROCK: &[Entry<'static>] = &[
    Entry {
        model: "nova-lite",
        upstream: Some("amazon.nova-lite-v1:0"),
        operation: ModelOperation::Chat,
        input: (6, 2),
        output: (24, 2),
        cached: None,
        context: 300_000,
        max_output: 5000,
        per_million_chars: None,
        per_minute: None,
    },
    Entry {
        model: "nova-pro",
        upstream: Some("amazon.nova-pro-v1:0"),
        operation: ModelOperation::Chat,
        input: (80, 2),
        output: (320, 2),
        cached: None,
        context: 300_000,
        max_output: 5000,
        per_million_chars: None,
        per_minute: None,
    },
];

/// Entry for an audio model: text to speech priced per 1M characters, or
/// speech to text per minute.
const fn audio(model: &'static str, operation: ModelOperation, price: (i64, u32)) -> Entry<'static> {
    let speech = matches!(operation, ModelOperation::Speech);
    Entry {
        model,
        upstream: None,
        operation,
        input: (0, 0),
        output: (0, 0),
        cached: None,
        context: 0,
        max_output: 0,
        per_million_chars: if speech { Some(price) } else { None },
        per_minute: if speech { None } else { Some(price) },
    }
}

/// Google Cloud: Neural2 voices at $16 per 1M characters, Speech-to-Text at
/// $0.016 a minute.
const GOOGLE: &[Entry<'static>] = &[
    audio("google-tts", ModelOperation::Speech, (16, 0)),
    audio("google-stt", ModelOperation::Transcription, (16, 3)),
];
/// Polly's neural voices at $16 per 1M characters.
const POLLY: &[Entry<'static>] = &[audio("polly-tts", ModelOperation::Speech, (16, 0))];
/// Transcribe streaming at $0.024 a minute (first pricing tier).
const TRANSCRIBE: &[Entry<'static>] = &[audio("aws-transcribe", ModelOperation::Transcription, (24, 3))];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn provider(name: &str, kind: ProviderKind, base_url: String, key_env: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        kind,
        base_url,
        api_key_env: key_env.map(str::to_owned),
        api_key_file: None,
        api_version: None,
        region: None,
        ..ProviderConfig::default()
    }
}

fn add(router: &mut RouterConfig, pricing: &mut PricingConfig, provider: &str, entries: &[Entry<'_>]) {
    for e in entries {
        let deployment = format!("{provider}/{}", e.model);
        router.deployments.push(DeploymentConfig {
            name: deployment.clone(),
            provider: provider.to_owned(),
            upstream_model: e.upstream.unwrap_or(e.model).to_owned(),
            requests_per_minute: None,
            tokens_per_minute: None,
            weight: 1,
            cost: None,
            quality: None,
        });
        router.models.push(ModelConfig {
            name: e.model.to_owned(),
            operation: e.operation,
            deployments: vec![deployment],
            context_window: e.context,
            max_output_tokens: e.max_output,
            strategy: Strategy::Ordered,
            max_cost: None,
            variants: Vec::new(),
        });
        pricing.models.push(ModelPrice {
            model: e.model.to_owned(),
            input_per_million: Decimal::new(e.input.0, e.input.1),
            output_per_million: Decimal::new(e.output.0, e.output.1),
            cached_input_per_million: e.cached.map(|(m, s)| Decimal::new(m, s)),
            per_million_characters: e.per_million_chars.map(|(m, s)| Decimal::new(m, s)),
            per_minute_audio: e.per_minute.map(|(m, s)| Decimal::new(m, s)),
        });
    }
}

/// Router config and prices for the embedded mode.
pub(crate) fn embedded(mock: &str, server: ServerConfig) -> (RouterConfig, PricingConfig) {
    let mut router = RouterConfig {
        server,
        ..RouterConfig::default()
    };
    let mut pricing = PricingConfig::default();
    router.providers.push(ProviderConfig {
        name: "mock".to_owned(),
        kind: ProviderKind::OpenaiCompatible,
        base_url: format!("{mock}/v1"),
        api_key_env: None,
        api_key_file: None,
        api_version: None,
        region: None,
        ..ProviderConfig::default()
    });
    add(&mut router, &mut pricing, "mock", MOCK);
    if env("OPENAI_API_KEY").is_some() {
        let base = env("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
        router.providers.push(provider(
            "openai",
            ProviderKind::OpenaiCompatible,
            base,
            Some("OPENAI_API_KEY"),
        ));
        add(&mut router, &mut pricing, "openai", OPENAI);
    }
    if env("ANTHROPIC_API_KEY").is_some() {
        let base = env("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".to_owned());
        router.providers.push(provider(
            "anthropic",
            ProviderKind::Anthropic,
            base,
            Some("ANTHROPIC_API_KEY"),
        ));
        add(&mut router, &mut pricing, "anthropic", ANTHROPIC);
    }
    if env("GEMINI_API_KEY").is_some() {
        let base = env("GEMINI_BASE_URL").unwrap_or_else(|| "https://generativelanguage.googleapis.com".to_owned());
        router
            .providers
            .push(provider("gemini", ProviderKind::Gemini, base, Some("GEMINI_API_KEY")));
        add(&mut router, &mut pricing, "gemini", GEMINI);
    }
    if env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some() {
        let mut bedrock = provider(
            "bedrock",
            ProviderKind::Bedrock,
            env("BEDROCK_BASE_URL").unwrap_or_default(),
            None,
        );
        bedrock.region = Some(env("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()));
        router.providers.push(bedrock);
        add(&mut router, &mut pricing, "bedrock", BEDROCK);
        for (name, kind, base, entries) in [
            ("polly", ProviderKind::Polly, "POLLY_BASE_URL", POLLY),
            (
                "transcribe",
                ProviderKind::Transcribe,
                "TRANSCRIBE_BASE_URL",
                TRANSCRIBE,
            ),
        ] {
            let mut p = provider(name, kind, env(base).unwrap_or_default(), None);
            p.region = Some(env("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()));
            router.providers.push(p);
            add(&mut router, &mut pricing, name, entries);
        }
    }
    let google_key = env("GOOGLE_CLOUD_API_KEY");
    let google_credentials = env("GOOGLE_APPLICATION_CREDENTIALS");
    if google_key.is_some() || google_credentials.is_some() {
        let mut google = provider(
            "google",
            ProviderKind::Google,
            env("GOOGLE_SPEECH_BASE_URL").unwrap_or_default(),
            google_key.is_some().then_some("GOOGLE_CLOUD_API_KEY"),
        );
        // A service account wins over an API key when both are set.
        if google_credentials.is_some() {
            google.api_key_env = None;
        }
        google.credentials_file = google_credentials;
        router.providers.push(google);
        add(&mut router, &mut pricing, "google", GOOGLE);
    }
    if let (Some(_), Some(endpoint), Some(deployment)) = (
        env("AZURE_OPENAI_API_KEY"),
        env("AZURE_OPENAI_ENDPOINT"),
        env("AZURE_OPENAI_DEPLOYMENT"),
    ) {
        let mut azure = provider("azure", ProviderKind::Azure, endpoint, Some("AZURE_OPENAI_API_KEY"));
        azure.api_version = Some(env("AZURE_OPENAI_API_VERSION").unwrap_or_else(|| "2024-10-21".to_owned()));
        router.providers.push(azure);
        // The public name is the Azure deployment's, priced like gpt-4o-mini
        // unless a price is set for it.
        let entry = Entry {
            model: &deployment,
            upstream: None,
            operation: ModelOperation::Chat,
            input: (15, 2),
            output: (60, 2),
            cached: Some((75, 3)),
            context: 128_000,
            max_output: 16_384,
            per_million_chars: None,
            per_minute: None,
        };
        add(&mut router, &mut pricing, "azure", std::slice::from_ref(&entry));
    }
    (router, pricing)
}
