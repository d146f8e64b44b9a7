//! `oneflow-gateway`: wires configuration, telemetry and the service together.

/// mimalloc: fewer cycles in allocation than the system allocator on the hot path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;
use oneflow_gateway::{App, GatewayCommand, GatewayConfig};
use oneflow_runtime::{Cli, Command, emit};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oneflow_runtime::install_crypto_provider();
    let cli = Cli::<GatewayCommand>::parse();
    let config: GatewayConfig = oneflow_runtime::load_config(cli.config.as_deref(), &cli.overrides())?;
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = oneflow_telemetry::init(&config.telemetry, "oneflow-gateway")?;
            let app = App::build(config).await?;
            tracing::info!(addr = %app.local_addr()?, "gateway listening");
            app.run(oneflow_runtime::shutdown_on_signal()).await?;
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        }
        Command::Migrate => {}
        Command::CheckConfig => emit(&serde_json::to_string_pretty(&config)?),
        Command::HealthCheck { url } => oneflow_runtime::health_check(url.as_deref(), config.server.listen).await?,
        Command::Extra(GatewayCommand::WarmCache(args)) => {
            let summary = oneflow_gateway::warm_cache(args).await?;
            emit(&serde_json::to_string_pretty(&summary)?);
            if summary.failed > 0 {
                anyhow::bail!("{} of {} phrases failed", summary.failed, summary.phrases);
            }
        }
    }
    Ok(())
}
