//! The `health-check` subcommand: probes `/healthz` of a running instance, so
//! container health checks need no curl in the image.
use std::net::SocketAddr;
use std::time::Duration;

/// Probes `url` (or `http://<listen>/healthz`, with an unspecified address
/// replaced by loopback). Ok when it answers 200 within 3 seconds.
pub async fn health_check(url: Option<&str>, listen: SocketAddr) -> anyhow::Result<()> {
    let url = match url {
        Some(u) => u.to_owned(),
        None => {
            let mut addr = listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}/healthz")
        }
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let status = client.get(&url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}
