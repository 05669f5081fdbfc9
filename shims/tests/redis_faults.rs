//! R23: RedisStore when Redis dies, comes back, or freezes. Each call ends
//! quickly with a named store error, never hangs, and the store recovers by
//! itself once Redis answers again. Prints the measured times.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use session_sockets::RedisStore;
use session_sockets::store::Store;
use support::redis_server::{self, RedisServer};

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
async fn timed_load(
    store: &RedisStore,
    key: &[u8],
) -> (
    Duration,
    Result<Option<session_sockets::store::Bytes>, String>,
) {
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

/// A batch of loads sent on a connection that Redis closed under it (a
/// restart since the last call) is sent again once on a fresh connection,
/// as a lone `GET` is: the first loads after the restart succeed.
#[tokio::test]
async fn r23_a_batch_sent_on_a_connection_redis_restarted_under_is_sent_again() {
    use futures_lite::future::{poll_once, zip};
    let mut redis = RedisServer::start();
    let store = store_for(&redis).await;
    assert_eq!(timed_load(&store, b"sess:a").await.1, Ok(None));
    redis.restart();
    for (k, v) in [(&b"sess:a"[..], &b"1"[..]), (b"sess:b", b"2")] {
        assert!(matches!(
            redis.command(&[b"SET", k, v]),
            redis_server::Resp::Simple(_)
        ));
    }
    // A load out already, so that the next two batch.
    let mut lead = store.load(b"sess:a");
    assert!(poll_once(&mut lead).await.is_none());
    let mut a = store.load(b"sess:a");
    assert!(poll_once(&mut a).await.is_none());
    let mut b = store.load(b"sess:b");
    assert!(poll_once(&mut b).await.is_none());
    let (a, b) = tokio::time::timeout(Duration::from_secs(10), zip(a, b))
        .await
        .expect("a batch after a restart hung");
    let lead = tokio::time::timeout(Duration::from_secs(10), lead)
        .await
        .expect("the lead load after a restart hung");
    assert_eq!(
        lead.map_err(|e| e.to_string()).unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        a.map_err(|e| e.to_string()).unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        b.map_err(|e| e.to_string()).unwrap().as_deref(),
        Some(&b"2"[..])
    );
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
    assert_eq!(
        r,
        Ok(Some(session_sockets::store::Bytes::from(&b"v"[..]))),
        "first call after resume"
    );
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

/// Through the whole stack (SessionSockets, driver, RedisStore): a
/// handshake while Redis is down or paused fails closed with a named error,
/// bounded by the smaller of the driver's deadline and the client's
/// response timeout, and the next handshake after Redis returns succeeds
/// with the same handle.
#[cfg(feature = "tokio")]
mod handshake {
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use http::{HeaderMap, HeaderValue, header};
    use session_sockets::runtime::tokio::Tokio;
    use session_sockets::store::Store;
    use session_sockets::{Failure, HandshakeError, RedisStore, SessionSockets};

    use crate::support::redis_server::RedisServer;
    use crate::support::{SECRET, config_with, connect_sid, record};

    const SID: &str = "fault-test-session-id-0123456789";

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&connect_sid(SID, SECRET)).unwrap(),
        );
        h
    }

    async fn seed(store: &RedisStore) {
        let rec = record(
            SystemTime::now() + Duration::from_secs(3600),
            r#""user":"ada""#,
        );
        let key = format!("sess:{SID}");
        assert!(
            store
                .create(key.as_bytes(), &rec, Duration::from_secs(3600))
                .await
                .unwrap()
        );
    }

    async fn sockets(
        redis: &RedisServer,
        deadline: Duration,
        response: Duration,
    ) -> (RedisStore, SessionSockets<Tokio>) {
        let store = RedisStore::builder(redis.url())
            .response_timeout(response)
            .connection_timeout(Duration::from_millis(500))
            .connect()
            .await
            .unwrap();
        let config = config_with(|b| b.store_deadline(deadline));
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        (store, SessionSockets::new(config, shared))
    }

    async fn timed(sockets: &SessionSockets<Tokio>) -> (Duration, Result<String, HandshakeError>) {
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(10), sockets.session(&headers()))
            .await
            .expect("a handshake hung for 10 s (R23)");
        (
            started.elapsed(),
            r.map(|s| s.get::<String>("user").unwrap().unwrap_or_default()),
        )
    }

    #[tokio::test]
    async fn r23_handshake_with_redis_killed_fails_closed_then_recovers_without_restart() {
        let mut redis = RedisServer::start();
        let (store, sockets) =
            sockets(&redis, Duration::from_secs(3), Duration::from_millis(500)).await;
        seed(&store).await;
        assert_eq!(timed(&sockets).await.1.unwrap(), "ada");

        redis.kill();
        let (took, r) = timed(&sockets).await;
        match r {
            Err(HandshakeError::Failed(Failure::Store(e))) => {
                let msg = e.to_string();
                assert!(msg.contains("Redis at 127.0.0.1:"), "{msg}");
                // The redis error itself is the cause, all the way up.
                let outer = HandshakeError::Failed(Failure::Store(e));
                let cause = std::error::Error::source(&outer);
                assert!(
                    cause.is_some_and(|c| c.downcast_ref::<redis::RedisError>().is_some()),
                    "{cause:?}"
                );
            }
            other => panic!("expected a store error, got {other:?}"),
        }
        assert!(took < Duration::from_secs(2), "{took:?}");
        eprintln!("handshake, redis down: fails closed in {took:?}");

        redis.restart();
        seed(&store).await;
        let (took, r) = timed(&sockets).await;
        assert_eq!(r.unwrap(), "ada", "the same handle works again");
        eprintln!("handshake after restart: succeeded in {took:?}");
    }

    #[tokio::test]
    async fn r23_handshake_with_redis_paused_ends_at_the_driver_deadline() {
        let redis = RedisServer::start();
        // The driver's deadline (300 ms) is shorter than the client's
        // response timeout (5 s): the deadline ends the handshake.
        let (store, sockets) =
            sockets(&redis, Duration::from_millis(300), Duration::from_secs(5)).await;
        seed(&store).await;
        redis.pause();
        let (took, r) = timed(&sockets).await;
        assert_eq!(r, Err(HandshakeError::Failed(Failure::Timeout)));
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        eprintln!("handshake, redis paused: timed out at the deadline in {took:?}");
        redis.resume();
        assert_eq!(timed(&sockets).await.1.unwrap(), "ada");
    }
}
