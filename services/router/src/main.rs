//! `oneflow-router`: wires configuration, telemetry and the service together.

/// mimalloc: fewer cycles in allocation than the system allocator on the hot path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;
use oneflow_router::{App, Catalog, ReloadSource, RouterConfig};
use oneflow_runtime::{Cli, Command, NoExtra, emit};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oneflow_runtime::install_crypto_provider();
    let cli = Cli::<NoExtra>::parse();
    let config: RouterConfig = oneflow_runtime::load_config(cli.config.as_deref(), &cli.overrides())?;
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = oneflow_telemetry::init(&config.telemetry, "oneflow-router")?;
            let path = cli.config.clone();
            let overrides = cli.overrides();
            let source = ReloadSource {
                path: path.clone(),
                interval: config.reload.watch_interval,
                loader: std::sync::Arc::new(move || Ok(oneflow_runtime::load_config(path.as_deref(), &overrides)?)),
            };
            let app = App::build_with_reload(config, Some(source)).await?;
            tracing::info!(addr = %app.local_addr()?, "router listening");
            app.run(oneflow_runtime::shutdown_on_signal()).await?;
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        }
        Command::Migrate => {}
        Command::CheckConfig => {
            Catalog::build(&config)?;
            emit(&serde_json::to_string_pretty(&config)?);
        }
        Command::HealthCheck { url } => oneflow_runtime::health_check(url.as_deref(), config.server.listen).await?,
        Command::Extra(never) => match never {},
    }
    Ok(())
}
