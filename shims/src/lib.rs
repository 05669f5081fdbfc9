//! HTTP sessions inside real-time socket connections: your socket.io or
//! WebSocket handlers see the same logged-in session as your HTTP app, follow
//! it as it changes, and write to it without losing anyone's changes.
//!
//! **The invariant:** for the same request headers, a socket sees exactly the
//! session the HTTP app sees (for an Express app: exactly what
//! express-session 1.x resolves), and no write is ever lost or resurrected.
//!
//! # An axum app with socket.io on one session
//!
//! ```toml
//! [dependencies]
//! session-sockets = { version = "0.1", features = ["axum", "socketioxide"] }
//! socketioxide = "0.18.9"
//! axum = "0.8"
//! tokio = { version = "1", features = ["rt-multi-thread", "macros", "net"] }
//! ```
//!
//! ```no_run
//! # #[cfg(all(feature = "axum", feature = "socketioxide"))]
//! # mod app {
//! use axum::http::StatusCode;
//! use axum::routing::{get, post};
//! use session_sockets::http::{HttpSession, SessionLayer};
//! use session_sockets::socketio::{SessionMiddleware, SocketSession};
//! use session_sockets::{Config, MemoryStore, SessionSockets};
//! use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
//!
//! pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // 1. The HTTP app's settings and its store: one handle for both sides.
//!     let config = Config::builder().secret("your secret sauce").build()?;
//!     let sessions = SessionSockets::new(config, MemoryStore::new());
//!
//!     // 2. socket.io, each namespace behind the session middleware.
//!     let (io_layer, io) = SocketIo::builder()
//!         .max_payload(1_000_000)
//!         .ws_max_message_size(1_000_000)
//!         .build_layer();
//!     io.ns("/", on_connect.with(SessionMiddleware::required(sessions.clone())));
//!
//!     // 3. The HTTP routes, behind the session layer, which wraps socket.io.
//!     let app = axum::Router::new()
//!         .route("/login", post(login))
//!         .route("/visits", get(visits))
//!         .layer(SessionLayer::new(sessions).with_socketio(io_layer, &io));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//!
//! async fn login(session: HttpSession) -> StatusCode {
//!     match session.login([("user", "ada")]).await {
//!         Ok(()) => StatusCode::SEE_OTHER,
//!         Err(_) => StatusCode::SERVICE_UNAVAILABLE,
//!     }
//! }
//!
//! async fn visits(session: HttpSession) -> String {
//!     let n = session.get::<u64>("visits").ok().flatten().unwrap_or(0) + 1;
//!     session.insert("visits", n).ok();
//!     format!("visit {n}")
//! }
//!
//! async fn on_connect(socket: SocketRef, session: SocketSession) {
//!     let user = session.get::<String>("user").ok().flatten();
//!     socket.emit("welcome", &user).ok();
//! }
//! # }
//! ```
//!
//! What each piece does:
//!
//! 1. [`Config`] holds what the HTTP app's session middleware holds: the
//!    secret(s) (the first signs, every one verifies: rotation), the cookie
//!    name and options, the store's key prefix, the `Origin` policy. Its
//!    defaults are express-session's (cookie `connect.sid`, no `SameSite`,
//!    a browser-session cookie, prefix `sess:`) with one addition: `Origin`
//!    must be the same host unless you list origins.
//!    [`SessionSockets`] is the handle: the config, a store ([`MemoryStore`],
//!    [`RedisStore`], or [your own](store::Store)) and a runtime. Clone it
//!    freely.
//! 2. [`SessionMiddleware::required`](socketio::SessionMiddleware::required)
//!    loads the session of each socket.io connection from the request that
//!    opened it (`Origin` first, then the cookie and its signature, then the
//!    store), refuses the connection with a readable `connect_error`
//!    without one, and keeps a [`LiveSession`] on the socket: handlers take
//!    [`SocketSession`](socketio::SocketSession).
//! 3. [`SessionLayer`](http::SessionLayer) gives routes the same sessions
//!    ([`HttpSession`](http::HttpSession): `get`, `insert`, `remove`,
//!    `update`, `login`, `logout`), writes every `Set-Cookie`, saves changes
//!    at the end of the request through the same write path as the sockets,
//!    refuses cross-site state changes (CSRF) and checks `Origin` on every
//!    later socket.io request.
//!
//! Sessions stay in step: a socket's copy follows the store (another
//! route's, socket's or server's change shows without a reload), every
//! socket of a session is disconnected when it ends anywhere (logout,
//! expiry, an Express app's `destroy`), and writes are compare-and-set, so
//! an HTTP route and a socket writing at once both keep their keys and a
//! logout is never undone by a late save.
//!
//! # Errors
//!
//! Every error has a stable [`reason`](HandshakeError::reason) code, a
//! [`hint`](HandshakeError::hint) for the person at the browser (what
//! clients are told), and a `Display` that tells the operator what to check
//! (what the log says). See [`HandshakeError`] and [`WriteError`].
//!
//! # The guides
//!
//! [`guide`] has the long form: runtimes (tokio, smol, async-std, yours),
//! custom stores, Redis and sharing sessions with Express, the sessions of
//! tower-sessions (axum-login) and actix-session apps, live sessions,
//! plain WebSockets on axum, and operating it (logs, traces, metrics, a
//! clean stop). [`socketio`] maps session.socket.io's API. The sans-IO core,
//! where every decision lives, is [`core`] (`session-sockets-core`): drive
//! its machines by hand, or implement a store against them.
//!
//! # Features
//!
//! `tokio`, `smol`, `async-std` (the runtime modules), `redis`
//! ([`RedisStore`]), `axum` ([`http::SessionLayer`]), `socketioxide`
//! ([`socketio`]), `socketio-redis` (socket.io across nodes on a driver that
//! survives a Redis restart), `metrics` (through the `metrics` facade). None
//! is on by default.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub use session_sockets_core as core;
pub use session_sockets_core::format;
pub use session_sockets_core::machines::{Created, Touched};
pub use session_sockets_core::{
    Config, ConfigBuilder, ConfigError, CookieOptions, Failure, Fault, Format, HandshakeError,
    Meta, SameSite, Session, SessionId, WriteError,
};

#[cfg(all(
    feature = "tokio",
    feature = "smol",
    feature = "async-std",
    feature = "redis",
    feature = "axum",
    feature = "socketioxide"
))]
pub mod guide;
mod handle;
pub mod http;
mod live;
mod observe;
#[cfg(feature = "redis")]
pub mod redis;
pub mod runtime;
#[cfg(feature = "socketioxide")]
pub mod socketio;
pub mod store;
mod write_queue;

pub use handle::{SessionSockets, ShutdownReport};
pub use live::{LiveSession, SessionEnd};
#[cfg(feature = "redis")]
pub use redis::{KeyspaceEvents, RedisStore, RedisStoreBuilder};
pub use store::MemoryStore;

/// The README's Rust snippets, compiled and run as doctests.
#[cfg(all(
    doctest,
    feature = "tokio",
    feature = "smol",
    feature = "async-std",
    feature = "socketioxide",
    feature = "axum",
    feature = "redis"
))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
