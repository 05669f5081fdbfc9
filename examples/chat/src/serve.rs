//! The HTTP server loop, with the settings a server facing the internet
//! needs and `axum::serve` does not set: a deadline for each request's
//! headers (slowloris, R30), `TCP_NODELAY` and a listen backlog for bursts.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may hold for `accept` (capped by
/// `net.core.somaxconn`). `TcpListener::bind` asks for 128: a burst of a
/// few hundred connects while the accept loop waits its turn on a busy
/// worker overflows that, and each dropped connect is retried by the client
/// only a second later (the SYN retransmission timeout).
pub const BACKLOG: u32 = 1024;

/// A listener on `addr` with [`BACKLOG`] and, as `TcpListener::bind` does
/// outside Windows, `SO_REUSEADDR` (a restarted server can listen again at
/// once; on Windows the option would let a second server take the port).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

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
