//! The conformance suite (`common/conformance.rs`) against RedisStore and a
//! real redis-server, on every runtime: tokio (redis-rs on tokio), smol and
//! async-std (redis-rs on smol's reactor). Each check gets its own server.
//! Run with `cargo test -p session-sockets --features redis,tokio,async-std,smol`.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

macro_rules! on_runtime {
    ($m:ident, $feature:literal, $runtime:expr, $spawn:expr, $block_on:expr; $($check:ident),+) => {
        #[cfg(feature = $feature)]
        mod $m {
            use std::sync::Arc;
            use session_sockets::RedisStore;
            use crate::common::conformance::*;
            use crate::redis_server::RedisServer;
            $(
                #[test]
                fn $check() {
                    let redis = RedisServer::start();
                    let block_on = $block_on;
                    block_on(async {
                        let store = RedisStore::connect(redis.url()).await.unwrap();
                        let suite = Suite::new(Arc::new(store), $runtime, $spawn);
                        suite.$check().await;
                    });
                }
            )+
        }
    };
}

macro_rules! on_every_runtime {
    ($($check:ident),+ $(,)?) => {
        on_runtime!(
            tokio, "tokio", session_sockets::runtime::tokio::Tokio, spawn_tokio(),
            |f| tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(f);
            $($check),+
        );
        on_runtime!(
            smol, "smol", session_sockets::runtime::smol::Smol, spawn_smol(), smol::block_on;
            $($check),+
        );
        on_runtime!(
            async_std, "async-std", session_sockets::runtime::async_std::AsyncStd,
            spawn_async_std(), async_std::task::block_on;
            $($check),+
        );
    };
}

on_every_runtime!(
    handshake_found,
    handshake_not_found,
    r13_handshake_expired,
    r01_handshake_bad_signature,
    r05_handshake_origin_rejected,
    r23_silent_store_times_out_at_deadline,
    r09_reload_sees_other_writers,
    save_visible_to_later_load,
    r25_concurrent_saves_lose_nothing,
    r24_destroy_then_save_does_not_resurrect,
    r10_create_then_handshake_with_its_cookie,
    r11_regenerate_replaces_the_id,
    r25_touch_keeps_the_record_bytes,
);
