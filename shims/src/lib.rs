//! # session-sockets
//!
//! HTTP sessions inside real-time socket connections. This crate is the
//! async face of [`session_sockets_core`]; it re-exports the core.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use session_sockets_core as core;
pub use session_sockets_core::{Config, ConfigBuilder, ConfigError, HandshakeError, Session, SessionId};
