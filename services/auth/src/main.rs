//! `oneflow-auth`: wires configuration, telemetry and the service together.

/// mimalloc: fewer cycles in allocation than the system allocator on the hot path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;
use oneflow_auth::{App, AuthConfig, AuthStore};
use oneflow_runtime::{Cli, Command, emit};

/// Auth-specific subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
enum AuthCommand {
    /// Create the first admin user and an admin API key (once); prints the key as JSON.
    BootstrapAdmin {
        /// The admin's email.
        #[arg(long, default_value = "admin@localhost")]
        email: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oneflow_runtime::install_crypto_provider();
    let cli = Cli::<AuthCommand>::parse();
    let config: AuthConfig = oneflow_runtime::load_config(cli.config.as_deref(), &cli.overrides())?;
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = oneflow_telemetry::init(&config.telemetry, "oneflow-auth")?;
            let app = App::build(config).await?;
            tracing::info!(addr = %app.local_addr()?, "auth listening");
            app.run(oneflow_runtime::shutdown_on_signal()).await?;
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        }
        Command::Migrate => AuthStore::connect(&config.database).await?.migrate().await?,
        Command::CheckConfig => emit(&serde_json::to_string_pretty(&config)?),
        Command::HealthCheck { url } => oneflow_runtime::health_check(url.as_deref(), config.server.listen).await?,
        Command::Extra(AuthCommand::BootstrapAdmin { email }) => {
            let store = AuthStore::connect(&config.database).await?;
            store.migrate().await?;
            match store.bootstrap_admin(&email).await? {
                Some(admin) => emit(
                    &serde_json::json!({
                        "user_id": admin.user_id, "key_id": admin.key_id, "api_key": admin.secret,
                    })
                    .to_string(),
                ),
                None => anyhow::bail!("an admin already exists; nothing created"),
            }
        }
    }
    Ok(())
}
