//! The conformance suite (`support/conformance.rs`) on every runtime, with
//! the embedded `MemoryStore`. Run with
//! `cargo test -p session-sockets --features tokio,async-std,smol`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

support::conformance::on_every_runtime! {
    store: session_sockets::MemoryStore::new(),
    also: run_all,
}
