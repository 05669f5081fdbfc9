//! R23: RedisStore when Redis dies, comes back, or freezes. Each call ends
//! quickly with a named store error, never hangs, and the store recovers by
//! itself once Redis answers again. Prints the measured times.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use redis_server::RedisServer;
use session_sockets::{RedisStore, Store};

const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

async fn store_for(redis: &RedisServer) -> RedisStore {
    RedisStore::builder(redis.url())
        .response_timeout(RESPONSE_TIMEOUT)
        .connection_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap()
}

/// Runs `load` under an outer bound far above the expected time, so that a
/// hang fails the test instead of blocking it.
async fn timed_load(store: &RedisStore, key: &[u8]) -> (Duration, Result<Option<Vec<u8>>, String>) {
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), store.load(key))
        .await
        .expect("a store call hung for 10 s (R23)")
        .map_err(|e| e.to_string());
    (started.elapsed(), r)
}

#[tokio::test]
async fn r23_redis_killed_mid_run_errors_fast_and_recovers_after_restart() {
    let mut redis = RedisServer::start();
    let store = store_for(&redis).await;
    assert!(
        store
            .create(b"sess:k", b"v", Duration::from_secs(60))
            .await
            .unwrap()
    );

    redis.kill();
    // Every call while Redis is down ends with a named error, quickly.
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let (took, r) = timed_load(&store, b"sess:k").await;
        let err = r.expect_err("a load while Redis is down must fail");
        assert!(err.contains("Redis at 127.0.0.1:"), "{err}");
        assert!(
            err.contains("refused the connection") || err.contains("lost the connection"),
            "{err}"
        );
        worst = worst.max(took);
    }
    assert!(worst < Duration::from_secs(2), "time to error {worst:?}");
    eprintln!("redis down: worst time to error over 5 calls: {worst:?}");

    // Same port, empty server (persistence is off): the next call succeeds
    // without recreating the store.
    let restarted = Instant::now();
    redis.restart();
    let (took, r) = timed_load(&store, b"sess:k").await;
    assert_eq!(r, Ok(None), "first call after the restart");
    eprintln!(
        "redis restarted: first call succeeded in {took:?} ({:?} after the restart began)",
        restarted.elapsed()
    );
    assert!(
        store
            .create(b"sess:k", b"v2", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(redis.get("sess:k").as_deref(), Some(&b"v2"[..]));
}

#[tokio::test]
async fn r23_paused_redis_times_out_and_recovers_on_resume() {
    let redis = RedisServer::start();
    let store = store_for(&redis).await;
    assert!(
        store
            .create(b"sess:p", b"v", Duration::from_secs(60))
            .await
            .unwrap()
    );

    redis.pause();
    let (took, r) = timed_load(&store, b"sess:p").await;
    let err = r.expect_err("a paused Redis must give an error");
    assert!(
        err.contains("did not answer GET within the timeout"),
        "{err}"
    );
    assert!(
        took >= RESPONSE_TIMEOUT && took < RESPONSE_TIMEOUT * 3,
        "{took:?}"
    );
    eprintln!("redis paused: time to error {took:?} (response timeout {RESPONSE_TIMEOUT:?})");
    // Several concurrent calls all end, none hangs.
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { timed_load(&store, b"sess:p").await })
        })
        .collect();
    for call in calls {
        let (took, r) = call.await.unwrap();
        assert!(r.is_err() && took < RESPONSE_TIMEOUT * 3, "{took:?} {r:?}");
    }

    redis.resume();
    let (took, r) = timed_load(&store, b"sess:p").await;
    assert_eq!(r, Ok(Some(b"v".to_vec())), "first call after resume");
    eprintln!("redis resumed: first call succeeded in {took:?}");
}

#[test]
fn r23_redis_down_on_smol_errors_fast_and_recovers() {
    let mut redis = RedisServer::start();
    smol::block_on(async {
        let store = RedisStore::builder(redis.url())
            .response_timeout(RESPONSE_TIMEOUT)
            .connect()
            .await
            .unwrap();
        redis.kill();
        let started = Instant::now();
        let err = store.load(b"sess:s").await.unwrap_err().to_string();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}: {err}");
        eprintln!("smol, redis down: time to error {took:?}");
        redis.restart();
        assert_eq!(store.load(b"sess:s").await.unwrap(), None);
    });
}
