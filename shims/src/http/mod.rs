//! HTTP types, and (feature `axum`) one session for HTTP routes and sockets.
//!
//! This module re-exports the [`http`](https://docs.rs/http) crate (so
//! `http::HeaderMap` is the type the handshake takes). With
//! the `axum` feature it adds the HTTP half of the session seam:
//!
//! - [`SessionLayer`]: a tower layer over a [`SessionSockets`](crate::SessionSockets)
//!   handle. It writes every `Set-Cookie` (create, regenerate, rolling
//!   refresh, clear), saves a changed session at the end of the request
//!   through the same save path as the sockets, and is secure by default:
//!   state-changing requests from other sites are refused before the handler
//!   runs (login CSRF included, R26), and every later engine.io request of a
//!   socket.io connection passes the `Origin` policy on every path the
//!   engine.io layer serves (R27). With [`SessionLayer::with_socketio`] it
//!   also wraps the socket.io layer, so the order of the two cannot be got
//!   wrong, and a login or logout disconnects the old session's sockets.
//! - [`HttpSession`]: the axum extractor giving handlers the session the
//!   sockets see, with typed `get`/`insert`/`remove`, `update` (a
//!   read-modify-write that composes with other writers), `login` (a fresh id
//!   every time, R11) and `logout`.
//!
//! A request whose handler never extracts [`HttpSession`] makes no store
//! call.
//!
//! ```no_run
//! # #[cfg(feature = "socketioxide")]
//! # async fn demo(sessions: session_sockets::SessionSockets<session_sockets::runtime::tokio::Tokio>) {
//! use axum::{Router, response::{IntoResponse, Redirect}, routing::post};
//! use session_sockets::http::{HttpSession, SessionLayer};
//! use socketioxide::SocketIo;
//!
//! async fn login(session: HttpSession) -> impl IntoResponse {
//!     match session.login([("user", "ada")]).await {
//!         Ok(()) => Redirect::to("/").into_response(),
//!         Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
//!     }
//! }
//!
//! let (io_layer, io) = SocketIo::new_layer();
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .layer(SessionLayer::new(sessions).with_socketio(io_layer, &io));
//! # }
//! ```

mod check;
#[cfg(feature = "axum")]
mod layer;
#[cfg(feature = "axum")]
mod reply;
#[cfg(feature = "axum")]
mod session;
#[cfg(feature = "axum")]
mod slot;

pub use check::{Refused, check_request};
#[cfg(feature = "axum")]
pub use layer::{RouteService, SessionLayer, SessionService};
#[cfg(feature = "axum")]
pub use session::{HttpSession, SessionRejection};

/// socketioxide's default engine.io path.
pub const DEFAULT_ENGINE_PATH: &str = "/socket.io";
