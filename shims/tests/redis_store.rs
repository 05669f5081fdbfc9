//! RedisStore against a real redis-server: connect-redis 9's commands and
//! format, insert-only create, update-only compare-and-set, on tokio, smol
//! and async-std.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use redis_server::{RedisServer, Resp};
use session_sockets::{CasOutcome, RedisStore, Store};

const RECORD: &[u8] = br#"{"cookie":{"originalMaxAge":86400000,"expires":"2030-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"user":"ada"}"#;

/// Every Store operation, checked against what Redis holds afterwards.
async fn exercise(store: &RedisStore, redis: &RedisServer, key: &str) {
    let k = key.as_bytes();
    let day = Duration::from_secs(86400);

    assert_eq!(store.load(k).await.unwrap(), None);
    assert!(
        !store.touch(k, day).await.unwrap(),
        "touch of a missing key"
    );
    assert_eq!(redis.ttl(key), -2, "touch never creates");

    assert!(
        store
            .create(k, RECORD, Duration::from_secs(600))
            .await
            .unwrap()
    );
    assert_eq!(redis.get(key).as_deref(), Some(RECORD));
    let ttl = redis.ttl(key);
    assert!((599..=600).contains(&ttl), "SET EX 600 gave TTL {ttl}");
    assert_eq!(store.load(k).await.unwrap().as_deref(), Some(RECORD));

    assert!(store.touch(k, day).await.unwrap());
    assert!(redis.ttl(key) > 86000, "EXPIRE refreshed the TTL");
    assert_eq!(
        redis.get(key).as_deref(),
        Some(RECORD),
        "touch keeps the value"
    );

    store.destroy(k).await.unwrap();
    assert_eq!(redis.get(key), None);
    store.destroy(k).await.unwrap();
}

#[tokio::test]
async fn r24_create_is_insert_only_set_nx_ex() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(redis.url()).await.unwrap();
    let k = b"sess:create";
    assert!(
        store
            .create(k, b"first", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create(k, b"second", Duration::from_secs(999))
            .await
            .unwrap()
    );
    assert_eq!(redis.get("sess:create").as_deref(), Some(&b"first"[..]));
    assert!(
        redis.ttl("sess:create") <= 60,
        "the refused create left the TTL alone"
    );
}

#[tokio::test]
async fn r24_compare_and_set_swaps_conflicts_and_never_creates() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(redis.url()).await.unwrap();
    let k = b"sess:cas";
    let ttl = Duration::from_secs(300);

    // Gone: nothing there, nothing written (a save never resurrects).
    assert_eq!(
        store.compare_and_set(k, b"a", b"b", ttl).await.unwrap(),
        CasOutcome::Gone
    );
    assert_eq!(redis.get("sess:cas"), None);

    assert!(
        store
            .create(k, b"v1", Duration::from_secs(10))
            .await
            .unwrap()
    );
    // Swapped: value and TTL replaced.
    assert_eq!(
        store.compare_and_set(k, b"v1", b"v2", ttl).await.unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(redis.get("sess:cas").as_deref(), Some(&b"v2"[..]));
    assert!(redis.ttl("sess:cas") > 10, "SET EX applied the new TTL");
    // Conflict: the current bytes come back, nothing written.
    assert_eq!(
        store.compare_and_set(k, b"v1", b"v3", ttl).await.unwrap(),
        CasOutcome::Conflict(b"v2".to_vec())
    );
    assert_eq!(redis.get("sess:cas").as_deref(), Some(&b"v2"[..]));
    // Comparison is byte for byte, including a prefix of the current value.
    assert_eq!(
        store.compare_and_set(k, b"v", b"v3", ttl).await.unwrap(),
        CasOutcome::Conflict(b"v2".to_vec())
    );
    // Non-UTF-8 and empty values survive the script untouched.
    let odd = [0u8, 0xff, b'"', b'\\', 0xc3];
    assert_eq!(
        store.compare_and_set(k, b"v2", &odd, ttl).await.unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(store.load(k).await.unwrap().as_deref(), Some(&odd[..]));
    assert_eq!(
        store.compare_and_set(k, &odd, b"", ttl).await.unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(store.load(k).await.unwrap().as_deref(), Some(&b""[..]));
}

#[tokio::test]
async fn connect_redis_format_key_value_and_ttl_are_exact() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(redis.url()).await.unwrap();
    exercise(&store, &redis, "sess:tokio-format").await;
    // A TTL with a fraction of a second rounds up, as connect-redis's
    // Math.ceil does.
    store
        .create(b"sess:ceil", RECORD, Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(redis.ttl("sess:ceil"), 2);
    // The key is exactly the bytes given (the core adds the prefix).
    assert!(matches!(
        redis.command(&[b"EXISTS", b"sess:ceil"]),
        Resp::Int(1)
    ));
}

#[test]
fn works_on_smol() {
    let redis = RedisServer::start();
    smol::block_on(async {
        let store = RedisStore::connect(redis.url()).await.unwrap();
        exercise(&store, &redis, "sess:smol").await;
        // Concurrent calls from one clone multiplex on one connection.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                smol::spawn(async move {
                    let key = format!("sess:smol-{i}");
                    store
                        .create(key.as_bytes(), b"x", Duration::from_secs(5))
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
    });
}

#[test]
fn works_on_async_std() {
    // redis-rs has no async-std feature in 1.x; its smol support runs on
    // async-io and smol's own executor, which work under async-std too.
    let redis = RedisServer::start();
    async_std::task::block_on(async {
        let store = RedisStore::connect(redis.url()).await.unwrap();
        exercise(&store, &redis, "sess:async-std").await;
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                async_std::task::spawn(async move {
                    let key = format!("sess:as-{i}");
                    store.touch(key.as_bytes(), Duration::from_secs(5)).await
                })
            })
            .collect();
        for h in handles {
            assert!(!h.await.unwrap());
        }
    });
}

#[tokio::test]
async fn connect_to_nothing_fails_fast_with_a_clear_message() {
    // A port with no server: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = RedisStore::connect(format!("redis://:hunter2@127.0.0.1:{port}/"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("refused the connection"), "{err}");
    assert!(err.contains("is redis-server running"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "r16: no password in errors: {err}"
    );
}

#[tokio::test]
async fn r16_errors_and_debug_never_show_keys_or_values() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(redis.url()).await.unwrap();
    // A key holding a list makes GET fail on the server side.
    assert!(matches!(
        redis.command(&[b"RPUSH", b"sess:secret-sid", b"secret-value"]),
        Resp::Int(1)
    ));
    let err = store
        .load(b"sess:secret-sid")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("rejected GET"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert!(!format!("{store:?}").contains("secret"));
}
