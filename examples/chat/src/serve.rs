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
/// accepting and returns the open connections, to be shut down gracefully
/// once the application has said goodbye to its sockets (each finishes the
/// request it is serving, then closes).
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
    shutdown: impl Future<Output = ()>,
) -> Connections {
    let mut shutdown = std::pin::pin!(shutdown);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = Connections {
        stop,
        tasks: tokio::task::JoinSet::new(),
    };
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
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
        let service = TowerToHyperService::new(app.clone());
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(tcp), service)
            // WebSocket upgrades (socket.io's websocket transport).
            .with_upgrades();
        let mut stopping = stopping.clone();
        connections.tasks.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            // A client that goes away mid-request is not the server's error.
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
        // Reap finished connections so the set does not grow.
        while connections.tasks.try_join_next().is_some() {}
    }
    connections
}

/// The connections a stopped accept loop leaves open.
pub struct Connections {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Connections {
    /// Asks every connection to close once the request it serves is
    /// answered (idle keep-alive connections close at once), and waits
    /// until they have. A connection upgraded to a WebSocket is socket.io's
    /// from then on, and does not count here.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
