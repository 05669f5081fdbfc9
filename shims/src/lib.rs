//! # session-sockets
//!
//! HTTP sessions inside real-time socket connections. This crate is the
//! async face of [`session_sockets_core`] (re-exported as [`core`]): the
//! [`Store`] trait and its implementations, one driver loop, and a small
//! module per runtime.
//!
//! - [`SessionSockets`]: the handle a socket server holds (handshake,
//!   reload, save, touch, destroy, regenerate, create).
//! - [`MemoryStore`]: the embedded default store.
//! - [`drive`]: runs any core machine against any [`Store`], with a
//!   deadline on every store call.
//! - [`runtime`]: the timer seam, with modules for tokio, smol and
//!   async-std behind features of those names.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub use session_sockets_core as core;
pub use session_sockets_core::machines::{Created, Touched};
pub use session_sockets_core::{
    Config, ConfigBuilder, ConfigError, CookieOptions, Failure, Fault, HandshakeError, SameSite,
    Session, SessionId, WriteError,
};

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
    feature = "redis"
))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
