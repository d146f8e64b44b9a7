//! Reloading the routing table while serving. SIGHUP reloads at once; the
//! configuration file's modification time is also polled, so an edited file
//! (or an updated ConfigMap) takes effect without a signal. The new table is
//! built and checked completely before it replaces the old one, in one atomic
//! swap: a request in flight keeps the table it started with, a broken file
//! leaves the old table serving (with an error log and a metric), and
//! deployments that keep their name keep their breaker and statistics.
//! Timeouts, retries, the cache and the listen address are read at start-up only.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::config::RouterConfig;

/// Reads the configuration again, through the same layers as at start-up.
pub type Loader = Arc<dyn Fn() -> anyhow::Result<RouterConfig> + Send + Sync>;

/// What to reload from and how often to look.
#[derive(Clone)]
pub struct ReloadSource {
    /// Reads the whole configuration.
    pub loader: Loader,
    /// The file whose modification time is watched, when there is one.
    pub path: Option<PathBuf>,
    /// Poll interval; zero = SIGHUP only.
    pub interval: Duration,
}

impl std::fmt::Debug for ReloadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadSource")
            .field("path", &self.path)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Builds a table from a fresh read of the configuration and swaps it in.
/// Returns whether the table was replaced.
pub fn reload_once(table: &ArcSwap<Catalog>, loader: &Loader) -> bool {
    let outcome = loader().and_then(|config| {
        let current = table.load();
        Ok(Catalog::rebuild(&config, Some(&current))?)
    });
    match outcome {
        Ok(catalog) => {
            let models = catalog.models().len();
            let deployments = catalog.deployments().len();
            table.store(Arc::new(catalog));
            metrics::counter!("oneflow_router_config_reloads_total", "result" => "ok").increment(1);
            tracing::info!(models, deployments, "routing table reloaded");
            true
        }
        Err(e) => {
            metrics::counter!("oneflow_router_config_reloads_total", "result" => "error").increment(1);
            tracing::error!(error = %e, "configuration reload failed; the previous routing table stays");
            false
        }
    }
}

fn modified(path: Option<&PathBuf>) -> Option<SystemTime> {
    path.and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
}

/// Reloads on SIGHUP and on file changes until `shutdown`.
pub async fn watch(table: Arc<ArcSwap<Catalog>>, source: ReloadSource, shutdown: CancellationToken) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload on file change only");
            None
        }
    };
    let mut seen = modified(source.path.as_ref());
    let mut tick = (!source.interval.is_zero()).then(|| tokio::time::interval(source.interval));
    loop {
        let hangup = async {
            #[cfg(unix)]
            if let Some(h) = hup.as_mut() {
                h.recv().await;
                return;
            }
            std::future::pending::<()>().await;
        };
        let polled = async {
            match tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = hangup => {
                tracing::info!("SIGHUP: reloading the configuration");
                seen = modified(source.path.as_ref());
                reload_once(&table, &source.loader);
            }
            () = polled => {
                let now = modified(source.path.as_ref());
                if now != seen {
                    seen = now;
                    tracing::info!("configuration file changed: reloading");
                    reload_once(&table, &source.loader);
                }
            }
        }
    }
}
