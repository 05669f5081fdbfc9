//! The long form: how to run, extend and operate session-sockets. Each
//! page's examples are compiled and run as tests.
//!
//! | page | what it covers |
//! |---|---|
//! | [`runtimes`] | tokio, smol, async-std, or your own runtime; the handle's methods |
//! | [`stores`] | `MemoryStore`, and writing a store of your own |
//! | [`redis_and_express`] | `RedisStore`, several servers on one Redis, sharing sessions with an Express app |
//! | [`formats`] | sharing the sessions of a tower-sessions (axum-login) or actix-session app |
//! | [`live_sessions`] | sockets that follow their session: changes, ends, outages, writes under contention |
//! | [`websockets`] | a plain WebSocket route on axum whose connection holds a live session |
//! | [`operations`] | what clients see, logs and traces, metrics, a clean stop |

#[doc = include_str!("../docs/runtimes.md")]
pub mod runtimes {}

#[doc = include_str!("../docs/stores.md")]
pub mod stores {}

#[doc = include_str!("../docs/redis-and-express.md")]
pub mod redis_and_express {}

#[doc = include_str!("../docs/formats.md")]
pub mod formats {}

#[doc = include_str!("../docs/live-sessions.md")]
pub mod live_sessions {}

#[doc = include_str!("../docs/websockets.md")]
pub mod websockets {}

#[doc = include_str!("../docs/operations.md")]
pub mod operations {}
