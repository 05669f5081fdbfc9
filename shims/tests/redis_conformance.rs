//! The conformance suite (`support/conformance.rs`) against RedisStore and a
//! real redis-server, on every runtime: tokio (redis-rs on tokio), smol and
//! async-std (redis-rs on smol's reactor). Each check gets its own server.
//! Run with `cargo test -p session-sockets --features redis,tokio,async-std,smol`.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

support::conformance::on_every_runtime! {
    per_check: let redis = crate::support::redis_server::RedisServer::start();
    store: session_sockets::RedisStore::connect(redis.url()).await.unwrap(),
}
