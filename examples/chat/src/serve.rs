//! The HTTP server loop, with the settings a server facing the internet
//! needs and `axum::serve` does not set: a deadline for each request's
//! headers (slowloris, R30) and `TCP_NODELAY`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and gives open connections `grace` to finish.
///
/// A connection that has not sent a request's complete headers within
/// `header_timeout` is closed (R30). socket.io answers the open packet with
/// a ping at once: without `TCP_NODELAY`, Nagle's algorithm holds the
/// connect reply behind it for the client's delayed ACK (about 40 ms per
/// connection).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors or a connection reset before accept:
                // keep serving the others.
                eprintln!("chat: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("chat: cannot set TCP_NODELAY: {e}");
        }
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), service)
                // WebSocket upgrades (socket.io's websocket transport).
                .with_upgrades();
            // A client that goes away mid-request is not the server's error.
            let _ = conn.await;
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
