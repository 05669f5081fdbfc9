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

pub use serde_json;
pub use session_sockets_core as core;
pub use session_sockets_core::{
    Config, ConfigBuilder, ConfigError, Created, Failure, HandshakeError, Session, SessionId,
    WriteError,
};

mod driver;
pub mod http;
mod hub;
mod live;
mod memory;
mod observe;
#[cfg(feature = "redis")]
pub mod redis;
pub mod runtime;
#[cfg(feature = "socketioxide")]
pub mod socketio;
mod sockets;
mod store;
#[cfg(feature = "redis")]
pub use crate::redis::{KeyspaceEvents, RedisStore, RedisStoreBuilder};
pub use driver::{Stalled, drive};
pub use hub::SessionEnd;
pub use live::LiveSession;
pub use memory::{Clock, DEFAULT_CAPACITY, MemoryStore};
pub use runtime::Runtime;
pub use sockets::{SessionSockets, ShutdownReport, Touched};
pub use store::{
    Bytes, CasOutcome, EventSink, KeyChange, KeyEvent, Store, StoreError, StoreEvent, StoreFuture,
    Subscription,
};

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
