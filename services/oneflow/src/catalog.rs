//! The routing table and prices of the one-process mode: the mock provider's
//! models always, OpenAI's when `OPENAI_API_KEY` is set.
use std::net::SocketAddr;

use oneflow_billing::{ModelPrice, PricingConfig};
use oneflow_router::{
    DeploymentConfig, ModelConfig, ModelOperation, ProviderConfig, ProviderKind, RouterConfig, Strategy,
};
use oneflow_runtime::ServerConfig;
use rust_decimal::Decimal;

struct Entry {
    model: &'static str,
    operation: ModelOperation,
    input: (i64, u32),
    output: (i64, u32),
    cached: Option<(i64, u32)>,
    context: u64,
    max_output: u64,
}

const MOCK: &[Entry] = &[
    Entry {
        model: "mock-gpt",
        operation: ModelOperation::Chat,
        input: (15, 2),
        output: (60, 2),
        cached: Some((75, 3)),
        context: 128_000,
        max_output: 4096,
    },
    Entry {
        model: "mock-gpt-mini",
        operation: ModelOperation::Chat,
        input: (5, 2),
        output: (20, 2),
        cached: None,
        context: 32_000,
        max_output: 2048,
    },
    Entry {
        model: "mock-embed",
        operation: ModelOperation::Embeddings,
        input: (2, 2),
        output: (0, 0),
        cached: None,
        context: 8192,
        max_output: 0,
    },
];

const OPENAI: &[Entry] = &[
    Entry {
        model: "gpt-4o-mini",
        operation: ModelOperation::Chat,
        input: (15, 2),
        output: (60, 2),
        cached: Some((75, 3)),
        context: 128_000,
        max_output: 16_384,
    },
    Entry {
        model: "gpt-4o",
        operation: ModelOperation::Chat,
        input: (250, 2),
        output: (1000, 2),
        cached: Some((125, 2)),
        context: 128_000,
        max_output: 16_384,
    },
    Entry {
        model: "text-embedding-3-small",
        operation: ModelOperation::Embeddings,
        input: (2, 2),
        output: (0, 0),
        cached: None,
        context: 8191,
        max_output: 0,
    },
];

fn add(router: &mut RouterConfig, pricing: &mut PricingConfig, provider: &str, entries: &[Entry]) {
    for e in entries {
        let deployment = format!("{provider}/{}", e.model);
        router.deployments.push(DeploymentConfig {
            name: deployment.clone(),
            provider: provider.to_owned(),
            upstream_model: e.model.to_owned(),
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
        });
    }
}

/// Router config and prices for the embedded mode.
pub(crate) fn embedded(mock: SocketAddr, server: ServerConfig) -> (RouterConfig, PricingConfig) {
    let mut router = RouterConfig {
        server,
        ..RouterConfig::default()
    };
    let mut pricing = PricingConfig::default();
    router.providers.push(ProviderConfig {
        name: "mock".to_owned(),
        kind: ProviderKind::OpenaiCompatible,
        base_url: format!("http://{mock}/v1"),
        api_key_env: None,
        api_key_file: None,
        api_version: None,
        region: None,
    });
    add(&mut router, &mut pricing, "mock", MOCK);
    if std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.is_empty()) {
        router.providers.push(ProviderConfig {
            name: "openai".to_owned(),
            kind: ProviderKind::OpenaiCompatible,
            base_url: std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".to_owned()),
            api_key_env: Some("OPENAI_API_KEY".to_owned()),
            api_key_file: None,
            api_version: None,
            region: None,
        });
        add(&mut router, &mut pricing, "openai", OPENAI);
    }
    (router, pricing)
}
