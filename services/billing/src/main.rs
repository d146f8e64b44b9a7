//! `oneflow-billing`: wires configuration, telemetry and the service together.

/// mimalloc: fewer cycles in allocation than the system allocator on the hot path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;
use oneflow_billing::{App, BillingConfig, BillingStore, EntryKind, parse_credits};
use oneflow_runtime::{Cli, Command, emit};

/// Billing-specific subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
enum BillingCommand {
    /// Grant credits to a user (idempotent per --idempotency-key).
    Grant {
        /// The user id.
        #[arg(long)]
        user: String,
        /// Credits, a decimal with at most 2 places.
        #[arg(long)]
        amount: String,
        /// Makes a repeat of the same grant a no-op.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oneflow_runtime::install_crypto_provider();
    let cli = Cli::<BillingCommand>::parse();
    let config: BillingConfig = oneflow_runtime::load_config(cli.config.as_deref(), &cli.overrides())?;
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = oneflow_telemetry::init(&config.telemetry, "oneflow-billing")?;
            let app = App::build(config).await?;
            tracing::info!(addr = %app.local_addr()?, "billing listening");
            app.run(oneflow_runtime::shutdown_on_signal()).await?;
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        }
        Command::Migrate => BillingStore::connect(&config.database).await?.migrate().await?,
        Command::CheckConfig => emit(&serde_json::to_string_pretty(&config)?),
        Command::HealthCheck { url } => oneflow_runtime::health_check(url.as_deref(), config.server.listen).await?,
        Command::Extra(BillingCommand::Grant {
            user,
            amount,
            idempotency_key,
        }) => {
            let cents = parse_credits(&amount)
                .ok_or_else(|| anyhow::anyhow!("amount must be a decimal with at most 2 places"))?;
            anyhow::ensure!(cents > 0, "amount must be positive");
            let grpc = oneflow_billing::grpc(&config).await?;
            let key = idempotency_key.unwrap_or_else(|| format!("cli-grant:{}", uuid::Uuid::now_v7()));
            let balance = grpc
                .grant(&user, cents, EntryKind::Grant, &key, Some("cli grant"), None)
                .await?;
            emit(
                &serde_json::json!({ "user_id": user, "balance": oneflow_billing::format_cents(balance) }).to_string(),
            );
        }
    }
    Ok(())
}
