//! What the integration test binaries of `shims/` share. Each binary has
//! `mod support;` and uses the parts it needs (hence `dead_code`):
//!
//! - [`conformance`]: the suite every store and every runtime must pass;
//! - [`hooked`]: a pass-through store that counts, fails, hangs or waits on
//!   cue, and controls its event stream;
//! - [`redis_server`]: a real `redis-server` per test (feature `redis`);
//! - [`sio_client`]: a socket.io polling client (feature `socketioxide`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
pub mod hooked;
#[cfg(feature = "redis")]
pub mod redis_server;
#[cfg(feature = "socketioxide")]
pub mod sio_client;
