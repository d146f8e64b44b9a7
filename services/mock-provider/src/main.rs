//! `oneflow-mock-provider`: a deployable upstream speaking the OpenAI, Azure,
//! Anthropic, Gemini and Bedrock dialects and the audio dialects of Google
//! Cloud (OAuth, Text-to-Speech, Speech-to-Text), Amazon Polly and Amazon
//! Transcribe streaming, with scripted latency, errors and stream cuts, for
//! tests, demos and benchmarks.

/// mimalloc: fewer cycles in allocation than the system allocator on the hot path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;
use oneflow_mock_provider::{MockConfig, MockState, router};
use oneflow_runtime::{Cli, Command, ServerConfig, emit};
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Configuration of the mock provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MockServiceConfig {
    server: ServerConfig,
    mock: MockConfig,
    telemetry: TelemetryConfig,
}

impl Default for MockServiceConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::new(([0, 0, 0, 0], 8090).into()),
            mock: MockConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::<oneflow_runtime::NoExtra>::parse();
    let config: MockServiceConfig = oneflow_runtime::load_config(cli.config.as_deref(), &cli.overrides())?;
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = oneflow_telemetry::init(&config.telemetry, "oneflow-mock-provider")?;
            let listener = oneflow_runtime::bind(config.server.listen).await?;
            tracing::info!(addr = %listener.local_addr()?, "mock provider listening");
            let app = router(MockState::new(config.mock));
            oneflow_runtime::serve(
                listener,
                app,
                oneflow_runtime::shutdown_on_signal(),
                config.server.shutdown_grace,
            )
            .await?;
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        }
        Command::Migrate => {}
        Command::CheckConfig => emit(&serde_json::to_string_pretty(&config)?),
        Command::HealthCheck { url } => oneflow_runtime::health_check(url.as_deref(), config.server.listen).await?,
        Command::Extra(never) => match never {},
    }
    Ok(())
}
