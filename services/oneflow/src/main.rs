//! `oneflow`: the whole gateway in one process (see the crate docs).

/// mimalloc: fewer cycles in allocation than the system allocator on the hot path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;
use oneflow::OneflowConfig;
use oneflow_gateway::GatewayCommand;
use oneflow_runtime::{Cli, Command, emit};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oneflow_runtime::install_crypto_provider();
    let cli = Cli::<GatewayCommand>::parse();
    let config: OneflowConfig = oneflow_runtime::load_config(cli.config.as_deref(), &cli.overrides())?;
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = oneflow_telemetry::init(&config.telemetry, "oneflow")?;
            let (started, run) = oneflow::start(config, oneflow_runtime::shutdown_on_signal()).await?;
            tracing::info!(addr = %started.gateway, "gateway listening");
            emit(&format!("OneFlow is running at http://{}", started.gateway));
            match &started.new_admin_key {
                Some(key) => emit(&format!(
                    "Admin API key (shown once, also saved to {}):\n{key}",
                    started.key_file.display()
                )),
                None => emit(&format!("Admin API key: see {}", started.key_file.display())),
            }
            run.await?;
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        }
        Command::Migrate => {}
        Command::CheckConfig => emit(&serde_json::to_string_pretty(&config)?),
        Command::HealthCheck { url } => oneflow_runtime::health_check(url.as_deref(), config.server.listen).await?,
        Command::Extra(GatewayCommand::WarmCache(mut args)) => {
            // The one-process defaults: its admin key and its address.
            if args.key.is_none() && args.key_file.is_none() {
                args.key_file = Some(config.data_dir.join("admin.key"));
            }
            if args.url.is_none() {
                args.url = Some(format!("http://{}", config.server.listen));
            }
            let summary = oneflow_gateway::warm_cache(args).await?;
            emit(&serde_json::to_string_pretty(&summary)?);
            if summary.failed > 0 {
                anyhow::bail!("{} of {} phrases failed", summary.failed, summary.phrases);
            }
        }
    }
    Ok(())
}
