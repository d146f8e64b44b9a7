//! The one-process mode: the four services and the mock provider in one
//! process, still talking gRPC over loopback, with SQLite files under a data
//! directory and in-memory counters. This is how OneFlow runs on a laptop with
//! no servers; real providers switch on by environment (`OPENAI_API_KEY`).

mod catalog;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oneflow_mock_provider::MockConfig;
use oneflow_runtime::{DatabaseConfig, GrpcClientConfig, Secret, ServerConfig};
use oneflow_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Configuration of `oneflow`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OneflowConfig {
    /// Where the gateway listens and how long shutdown drains.
    pub server: ServerConfig,
    /// SQLite files and the admin key live here.
    pub data_dir: PathBuf,
    /// Email of the admin created at first start.
    pub admin_email: String,
    /// Whole credits granted to that admin at first start.
    pub admin_credits: u64,
    /// Default rate limits and quotas (billing's `[limits]`).
    pub limits: oneflow_billing::LimitsConfig,
    /// The built-in mock provider.
    pub mock: MockConfig,
    /// Send the mock models to this mock provider (`http://host:port`)
    /// instead of the built-in one, which then idles. The benchmark uses it
    /// to run the mock on another core than OneFlow.
    pub mock_base_url: Option<String>,
    /// The speech cache: `store` empty keeps it in `{data_dir}/audio-cache`,
    /// `off` turns it off, anything else is used as the gateway's
    /// `[audio_cache] store` (`s3://…`, `gs://…`, a directory).
    pub audio_cache: oneflow_gateway::AudioCacheConfig,
    /// Logs, metrics, traces.
    pub telemetry: TelemetryConfig,
}

impl Default for OneflowConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::new(([127, 0, 0, 1], 8080).into()),
            data_dir: PathBuf::from("./data"),
            admin_email: "admin@localhost".to_owned(),
            admin_credits: 1000,
            limits: oneflow_billing::LimitsConfig::default(),
            mock: MockConfig::default(),
            mock_base_url: None,
            audio_cache: oneflow_gateway::AudioCacheConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

const LOOPBACK: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

fn internal(grace: Duration) -> ServerConfig {
    ServerConfig {
        listen: LOOPBACK.into(),
        shutdown_grace: grace,
    }
}

fn sqlite(dir: &Path, name: &str) -> DatabaseConfig {
    DatabaseConfig {
        url: Secret::new(format!("sqlite://{}", dir.join(name).display())),
        max_connections: 4,
        ..DatabaseConfig::default()
    }
}

fn client(addr: SocketAddr) -> GrpcClientConfig {
    GrpcClientConfig {
        url: format!("http://{addr}"),
        ..GrpcClientConfig::default()
    }
}

/// What the operator must see once: where OneFlow listens, and the admin key
/// when it was just created.
#[derive(Debug)]
pub struct Started {
    /// The gateway's address.
    pub gateway: SocketAddr,
    /// The admin key, only at first start.
    pub new_admin_key: Option<String>,
    /// Where the admin key is kept.
    pub key_file: PathBuf,
}

/// Starts everything; returns once the gateway listens. The returned future
/// runs until `shutdown`, then stops the gateway first (so its streams and
/// settlements finish against live services) and the rest after it.
pub async fn start(
    config: OneflowConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<(Started, impl Future<Output = anyhow::Result<()>>)> {
    let grace = config.server.shutdown_grace;
    std::fs::create_dir_all(&config.data_dir)?;
    let data = config.data_dir.canonicalize()?;

    let mock_listener = oneflow_runtime::bind(LOOPBACK.into()).await?;
    let mock_addr = mock_listener.local_addr()?;
    let mock_app = oneflow_mock_provider::router(oneflow_mock_provider::MockState::new(config.mock.clone()));

    let auth = oneflow_auth::App::build(oneflow_auth::AuthConfig {
        server: internal(grace),
        database: sqlite(&data, "auth.db"),
        jwt: oneflow_auth::JwtConfig {
            secret: signing_secret(&data)?,
            ..oneflow_auth::JwtConfig::default()
        },
        ..oneflow_auth::AuthConfig::default()
    })
    .await?;
    let mock_url = config
        .mock_base_url
        .as_deref()
        .map_or_else(|| format!("http://{mock_addr}"), |u| u.trim_end_matches('/').to_owned());
    let (mut router_config, pricing) = catalog::embedded(&mock_url, internal(grace));
    let billing = oneflow_billing::App::build(oneflow_billing::BillingConfig {
        server: internal(grace),
        database: sqlite(&data, "billing.db"),
        pricing,
        limits: config.limits.clone(),
        ..oneflow_billing::BillingConfig::default()
    })
    .await?;
    router_config.billing = Some(client(billing.local_addr()?));
    let router = oneflow_router::App::build(router_config).await?;
    let mut audio_cache = config.audio_cache.clone();
    match audio_cache.store.trim() {
        "" => audio_cache.store = data.join("audio-cache").display().to_string(),
        "off" => audio_cache.store.clear(),
        _ => {}
    }
    let gateway = oneflow_gateway::App::build(oneflow_gateway::GatewayConfig {
        server: config.server.clone(),
        audio_cache,
        auth: client(auth.local_addr()?),
        billing: client(billing.local_addr()?),
        router: client(router.local_addr()?),
        ..oneflow_gateway::GatewayConfig::default()
    })
    .await?;

    let key_file = data.join("admin.key");
    let new_admin_key = match auth.store().bootstrap_admin(&config.admin_email).await? {
        Some(admin) => {
            let credits = i64::try_from(config.admin_credits)
                .ok()
                .and_then(|c| c.checked_mul(100))
                .ok_or_else(|| anyhow::anyhow!("admin_credits is too large"))?;
            billing
                .grpc()
                .grant(
                    &admin.user_id,
                    credits,
                    oneflow_billing::EntryKind::Grant,
                    &format!("bootstrap:{}", admin.user_id),
                    Some("first admin"),
                    None,
                )
                .await?;
            write_private(&key_file, &admin.secret)?;
            Some(admin.secret)
        }
        None => None,
    };
    tracing::info!(
        mock = %mock_addr,
        auth = %auth.local_addr()?,
        billing = %billing.local_addr()?,
        router = %router.local_addr()?,
        "internal services listening on loopback"
    );
    let started = Started {
        gateway: gateway.local_addr()?,
        new_admin_key,
        key_file,
    };

    let backends = CancellationToken::new();
    let run = async move {
        let b = backends.clone();
        let backend_tasks = tokio::spawn(async move {
            tokio::try_join!(
                auth.run(b.clone()),
                billing.run(b.clone()),
                router.run(b.clone()),
                oneflow_runtime::serve(mock_listener, mock_app, b.clone(), grace),
            )
        });
        let gateway_result = gateway.run(shutdown).await;
        backends.cancel();
        let backend_result = backend_tasks.await?;
        gateway_result?;
        backend_result?;
        Ok(())
    };
    Ok((started, run))
}

/// The JWT signing secret kept in the data directory (created at first start),
/// so login tokens survive a restart.
fn signing_secret(data: &Path) -> anyhow::Result<Secret> {
    let path = data.join("jwt.secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(Secret::new(existing));
        }
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &secret)?;
    Ok(Secret::new(secret))
}

/// Writes `secret` to `path` readable by the owner only (0600).
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}
