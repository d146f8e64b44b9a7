//! The command line every service binary shares.
use std::net::SocketAddr;
use std::path::PathBuf;

/// `oneflow-<service> [--config FILE] [--listen ADDR] [--set key=value]… [COMMAND]`
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli<X: clap::Subcommand = NoExtra> {
    /// TOML configuration file.
    #[arg(long, short, env = "ONEFLOW_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Listen address (overrides `server.listen`).
    #[arg(long, global = true)]
    pub listen: Option<SocketAddr>,
    /// Override any key, e.g. `--set database.url=sqlite://auth.db` (repeatable).
    #[arg(long = "set", value_parser = parse_kv, global = true)]
    pub overrides: Vec<(String, String)>,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command<X>>,
}

impl<X: clap::Subcommand> Cli<X> {
    /// Flag overrides as dotted key/value pairs, `--listen` included.
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut all = self.overrides.clone();
        if let Some(addr) = self.listen {
            all.push(("server.listen".to_owned(), addr.to_string()));
        }
        all
    }
}

/// Subcommands: the four every service has, plus the service's own `X`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command<X: clap::Subcommand = NoExtra> {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration, print it with secrets redacted, and exit.
    CheckConfig,
    /// Probe a running instance's `/healthz`; exit 0 when healthy (for Docker HEALTHCHECK).
    HealthCheck {
        /// URL to probe; defaults to this service's configured listen address.
        #[arg(long)]
        url: Option<String>,
    },
    /// Service-specific commands.
    #[command(flatten)]
    Extra(X),
}

/// No service-specific subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum NoExtra {}

fn parse_kv(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got `{raw}`"))
}

/// Writes command output (`check-config`, `bootstrap-admin`, …) to stdout;
/// logs go to stderr, so the two never mix.
#[expect(clippy::print_stdout, reason = "command output is the point")]
pub fn emit(text: &str) {
    println!("{text}");
}
