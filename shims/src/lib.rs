//! # session-sockets
//!
//! HTTP sessions inside real-time socket connections. This crate is the
//! async face of [`session_sockets_core`] (re-exported as [`core`]): the
//! [`Store`] trait and its implementations, one driver loop, and a small
//! module per runtime.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use session_sockets_core as core;
pub use session_sockets_core::{
    Config, ConfigBuilder, ConfigError, HandshakeError, Session, SessionId,
};

mod store;
pub use store::{CasOutcome, Store, StoreError, StoreFuture};
