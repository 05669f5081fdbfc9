//! RedisStore against a real redis-server: connect-redis 9's commands and
//! format, insert-only create, update-only compare-and-set, on tokio, smol
//! and async-std.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use session_sockets::store::{CasOutcome, Store};
use session_sockets::{KeyspaceEvents, RedisStore};
use support::redis_server::{RedisServer, Resp};

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

/// Redis's count of read events so far (`INFO stats`).
fn reads_processed(redis: &RedisServer) -> u64 {
    let Resp::Bulk(info) = redis.command(&[b"INFO", b"stats"]) else {
        panic!("INFO stats did not answer a bulk string");
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("total_reads_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_reads_processed (Redis 6 or later)")
}

async fn store_without_events(redis: &RedisServer) -> RedisStore {
    RedisStore::builder(redis.url())
        .keyspace_events(KeyspaceEvents::Off)
        .connect()
        .await
        .unwrap()
}

/// Loads started by tasks that are runnable together (connections woken by
/// one poll of the reactor) reach Redis as one pipeline, and each gets its
/// own record. One worker thread, as the tasks of one busy server thread:
/// there, without the batching, each `GET` goes out on its own write.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn loads_started_together_share_one_pipeline_each_with_its_own_record() {
    let redis = RedisServer::start();
    let store = store_without_events(&redis).await;
    for i in 0..50 {
        let key = format!("sess:b{i}");
        assert!(
            store
                .create(
                    key.as_bytes(),
                    format!("v{i}").as_bytes(),
                    Duration::from_secs(60)
                )
                .await
                .unwrap()
        );
    }
    let before = reads_processed(&redis);
    // Spawned from a task on the worker, so that all of them are in its
    // run queue at once; ten of the keys do not exist.
    let s = store.clone();
    let results = tokio::spawn(async move {
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { s.load(format!("sess:b{i}").as_bytes()).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    })
    .await
    .unwrap();
    // The two `INFO` commands are a read each.
    let reads = reads_processed(&redis) - before;
    for (i, got) in results.iter().enumerate() {
        let want = (i < 50).then(|| format!("v{i}").into_bytes());
        assert_eq!(got.as_deref(), want.as_deref(), "load {i}");
    }
    assert!(
        reads <= 10,
        "60 loads started together took {reads} reads in Redis"
    );
}

/// A load that starts while no other is out sends its own `GET` at once:
/// with nothing to batch with, it does not yield first.
#[tokio::test]
async fn a_load_alone_goes_out_at_once_and_loads_started_meanwhile_batch() {
    use futures_lite::future::{poll_once, zip};
    let redis = RedisServer::start();
    let store = store_without_events(&redis).await;
    let ttl = Duration::from_secs(60);
    for k in [&b"sess:a"[..], b"sess:b", b"sess:c"] {
        assert!(store.create(k, k, ttl).await.unwrap());
    }
    let gets = || {
        let Resp::Bulk(info) = redis.command(&[b"INFO", b"commandstats"]) else {
            panic!("INFO commandstats did not answer a bulk string");
        };
        String::from_utf8_lossy(&info)
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
            .and_then(|n| n.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = gets();
    let mut alone = store.load(b"sess:a");
    assert!(poll_once(&mut alone).await.is_none(), "waits for Redis");
    // Its GET is out before it is polled again.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while gets() == before && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(gets() - before, 1, "the lone load's GET, unpolled");
    // While it is out, the next two share a pipeline.
    let (b, c) = zip(store.load(b"sess:b"), store.load(b"sess:c")).await;
    assert_eq!(b.unwrap().as_deref(), Some(&b"sess:b"[..]));
    assert_eq!(c.unwrap().as_deref(), Some(&b"sess:c"[..]));
    assert_eq!(alone.await.unwrap().as_deref(), Some(&b"sess:a"[..]));
}

/// No load waits on another caller's future: whether the load that
/// started its batch is dropped before the batch is sent, dropped after it
/// sent it, or kept but never polled again, the other load of the batch
/// gets its record.
#[tokio::test]
async fn a_batch_member_dropped_or_parked_holds_up_no_one() {
    use futures_lite::future::poll_once;
    let redis = RedisServer::start();
    let store = store_without_events(&redis).await;
    let ttl = Duration::from_secs(60);
    assert!(store.create(b"sess:x", b"x", ttl).await.unwrap());
    assert!(store.create(b"sess:y", b"y", ttl).await.unwrap());
    let bounded = |f| tokio::time::timeout(Duration::from_secs(5), f);
    for case in ["dropped before sending", "dropped after sending", "parked"] {
        // A load out already: the next ones batch.
        let mut lead = store.load(b"sess:y");
        assert!(poll_once(&mut lead).await.is_none(), "{case}: out");
        let mut first = store.load(b"sess:x");
        assert!(
            poll_once(&mut first).await.is_none(),
            "{case}: yields first"
        );
        let mut second = store.load(b"sess:y");
        assert!(
            poll_once(&mut second).await.is_none(),
            "{case}: joins, yields"
        );
        let parked = match case {
            "dropped before sending" => {
                drop(first);
                None
            }
            "dropped after sending" => {
                // Back from its yield, it sends the batch and waits for Redis.
                assert!(poll_once(&mut first).await.is_none(), "{case}");
                drop(first);
                None
            }
            _ => Some(first),
        };
        let got = bounded(second)
            .await
            .unwrap_or_else(|_| panic!("{case}: the load waited on the other one"));
        assert_eq!(got.unwrap().as_deref(), Some(&b"y"[..]), "{case}");
        if let Some(first) = parked {
            // Polled again, it still gets its own record.
            let got = bounded(first).await.expect("the parked load, resumed");
            assert_eq!(got.unwrap().as_deref(), Some(&b"x"[..]), "{case}");
        }
        let lead = bounded(lead).await.expect("the lead load");
        assert_eq!(lead.unwrap().as_deref(), Some(&b"y"[..]), "{case}");
        // The next load goes out on its own.
        let next = bounded(store.load(b"sess:x")).await.expect("a later load");
        assert_eq!(next.unwrap().as_deref(), Some(&b"x"[..]), "{case}");
    }
}

/// In a batch, a key Redis refuses to `GET` (another type) fails only its
/// own load, whichever of them leads.
#[tokio::test]
async fn a_failing_get_in_a_batch_fails_only_its_own_load() {
    use futures_lite::future::{poll_once, zip};
    let redis = RedisServer::start();
    let store = store_without_events(&redis).await;
    assert!(
        store
            .create(b"sess:ok", b"fine", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(matches!(
        redis.command(&[b"RPUSH", b"sess:list", b"item"]),
        Resp::Int(1)
    ));
    for (first, second) in [
        (&b"sess:ok"[..], &b"sess:list"[..]),
        (b"sess:list", b"sess:ok"),
    ] {
        // A load out already: the next two batch.
        let mut lead = store.load(b"sess:ok");
        assert!(poll_once(&mut lead).await.is_none());
        let mut a = store.load(first);
        assert!(poll_once(&mut a).await.is_none());
        let mut b = store.load(second);
        assert!(poll_once(&mut b).await.is_none());
        let (a, b) = zip(a, b).await;
        let (ok, list) = if first == b"sess:ok" { (a, b) } else { (b, a) };
        assert_eq!(ok.unwrap().as_deref(), Some(&b"fine"[..]));
        let err = list.unwrap_err().to_string();
        assert!(err.contains("rejected GET"), "{err}");
        assert_eq!(lead.await.unwrap().as_deref(), Some(&b"fine"[..]));
    }
}

/// A stock redis-server (keyspace notifications off) works as it is with the
/// default settings: the store adds the classes live sessions need, keeping
/// what was set. `Require` leaves the server alone and says what to set.
#[tokio::test]
async fn a_stock_redis_works_by_default_and_require_names_the_setting() {
    let redis = RedisServer::start_with_defaults();
    let events = |redis: &RedisServer| match redis.command(&[
        b"CONFIG",
        b"GET",
        b"notify-keyspace-events",
    ]) {
        Resp::Array(v) => match v.get(1) {
            Some(Resp::Bulk(b)) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(events(&redis), "");
    let err = RedisStore::builder(redis.url())
        .keyspace_events(KeyspaceEvents::Require)
        .connect()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("notify-keyspace-events \"Kg$xe\""),
        "{err}"
    );
    // What a `main` returning it prints: the message, not a struct.
    assert!(
        format!("{err:?}").starts_with("Redis at 127.0.0.1:"),
        "{err:?}"
    );
    assert_eq!(events(&redis), "", "Require changes nothing");

    let store = RedisStore::connect(redis.url()).await.unwrap();
    let set = events(&redis);
    for class in ['K', 'g', '$', 'x', 'e'] {
        assert!(set.contains(class), "{set}");
    }
    drop(store);
}
