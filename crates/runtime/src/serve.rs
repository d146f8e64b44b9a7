//! Serving an axum router (HTTP/1 and HTTP/2, so gRPC too) with a bounded
//! graceful drain: on cancellation the listener closes at once, in-flight
//! requests and streams finish, and after `grace` whatever is left is dropped.
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    Ok(listener)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then drains for at
/// most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        res = &mut server => return res,
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(res) => {
            tracing::info!(%local, "drained");
            res
        }
        Err(_) => {
            tracing::warn!(%local, grace_secs = grace.as_secs(), "drain bound reached; dropping remaining connections");
            Ok(())
        }
    }
}
