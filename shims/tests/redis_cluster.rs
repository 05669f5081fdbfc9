//! RedisStore on a real Redis Cluster (three primaries, three replicas of
//! stock redis-server on loopback, started by the tests: see
//! `support/redis_cluster.rs`): the conformance suite on every runtime,
//! every operation on every primary, batched loads spanning the nodes,
//! keyspace events from every primary, a slot moving to another node,
//! writes waiting for a replica, and a primary killed while writing.
//! Run with `cargo test -p session-sockets --all-features --test redis_cluster`.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_cluster::{RedisCluster, Resp, slot};
use session_sockets::RedisStore;
use session_sockets::redis::{Durability, KeyspaceEvents};
use session_sockets::store::{CasOutcome, KeyChange, KeyEvent, Store, StoreEvent};
use support::conformance::Suite;
use support::fresh_sid;
use support::redis_server;

const TTL: Duration = Duration::from_secs(600);

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(c: &RedisCluster) -> RedisStore {
    RedisStore::cluster_builder(c.seeds())
        .keyspace_events(KeyspaceEvents::Configure)
        .connect()
        .await
        .unwrap()
}

/// `n` fresh session keys whose slots the primary on `port` owns.
fn keys_on(c: &RedisCluster, port: u16, n: usize) -> Vec<String> {
    let shards = c.shards();
    let shard = shards
        .iter()
        .find(|s| s.primary() == Some(port))
        .unwrap_or_else(|| panic!("{port} is not a primary"));
    let mut keys = Vec::new();
    while keys.len() < n {
        let key = format!("sess:{}", fresh_sid());
        if shard.owns(slot(key.as_bytes())) {
            keys.push(key);
        }
    }
    keys
}

/// The initial primaries' ports.
fn primaries(c: &RedisCluster) -> Vec<u16> {
    c.ports()[..3].to_vec()
}

/// A sink that forwards every event to a channel.
fn sink() -> (
    session_sockets::store::EventSink,
    tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Arc::new(move |e| drop(tx.send(e))), rx)
}

/// The next key event (skipping `Lost`/`Resumed`), within `within`.
async fn next_key(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
    within: Duration,
) -> Option<KeyEvent> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(StoreEvent::Key(k))) => return Some(k),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

/// Waits for `want` among the events (others are skipped), within `within`.
async fn wait_for(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
    want: StoreEvent,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if e == want => return true,
            Ok(Some(_)) => continue,
            _ => return false,
        }
    }
}

/// One cluster (started with Redis's default settings) for everything that
/// leaves it whole; each check uses fresh keys.
#[test]
fn r24_r25_r32_r37_a_store_on_a_cluster_serves_every_primary() {
    let mut cluster = RedisCluster::start_with_defaults();
    let rt = tokio_rt();
    rt.block_on(keyspace_events_are_checked_and_set_on_every_node_replicas_included(&cluster));
    let store = rt.block_on(connect(&cluster));
    rt.block_on(async {
        let suite = Suite::new(
            Arc::new(store.clone()),
            session_sockets::runtime::tokio::Tokio,
            support::conformance::spawn_tokio(),
        );
        suite.run_all().await;
    });
    // The same suite on smol (redis-rs and the store's own tasks on smol's
    // reactor and executor).
    smol::block_on(async {
        let store = connect(&cluster).await;
        Suite::new(
            Arc::new(store),
            session_sockets::runtime::smol::Smol,
            support::conformance::spawn_smol(),
        )
        .run_all()
        .await;
    });
    rt.block_on(r24_every_operation_lands_on_the_keys_primary_and_its_replica(&cluster, &store));
    rt.block_on(batched_loads_span_every_primary_one_pipeline_each(
        &cluster, &store,
    ));
    rt.block_on(r32_events_come_from_every_primary_except_the_stores_own_writes(&cluster));
    rt.block_on(r32_a_slot_moving_to_another_node_is_a_change_not_an_end(
        &cluster, &store,
    ));
    rt.block_on(r37_too_few_replica_acknowledgements_fail_the_write_saying_so(&cluster, &store));
    r32_a_primary_added_later_is_followed(&mut cluster, &rt);
}

async fn keyspace_events_are_checked_and_set_on_every_node_replicas_included(c: &RedisCluster) {
    for port in c.ports() {
        assert_eq!(c.keyspace_events(port), "", "started with Redis's defaults");
    }
    let err = RedisStore::cluster_builder(c.seeds())
        .keyspace_events(KeyspaceEvents::Require)
        .connect()
        .await
        .expect_err("Require refuses a cluster without the setting");
    let msg = err.to_string();
    assert!(
        msg.contains("notify-keyspace-events") && msg.contains("Redis Cluster node"),
        "{msg}"
    );
    assert!(msg.contains("KeyspaceEvents::Configure"), "{msg}");
    let _configured = connect(c).await;
    for port in c.ports() {
        let events = c.keyspace_events(port);
        for class in ["K", "g", "$", "x", "e"] {
            assert!(events.contains(class), "node {port}: {events:?}");
        }
    }
    RedisStore::cluster_builder(c.seeds())
        .keyspace_events(KeyspaceEvents::Require)
        .connect()
        .await
        .expect("Require accepts it now");
    // Seeds: one answering node is enough, dead ones are skipped.
    let mut seeds = vec!["redis://127.0.0.1:1/".to_owned()];
    seeds.push(c.seeds()[2].clone());
    RedisStore::cluster_builder(seeds).connect().await.unwrap();
    let err = RedisStore::cluster_builder(Vec::<String>::new())
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least one seed"), "{err}");
    let err = RedisStore::cluster_builder(["redis://:hunter2@127.0.0.1:1/"])
        .response_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("no seed answered"), "{err}");
    // A Redis that is not a cluster node: said so.
    let plain = redis_server::RedisServer::start();
    let err = RedisStore::cluster_builder([plain.url()])
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster mode (cluster-enabled yes"), "{err}");
}

async fn r24_every_operation_lands_on_the_keys_primary_and_its_replica(
    c: &RedisCluster,
    store: &RedisStore,
) {
    for port in primaries(c) {
        let replica = c.replica_of(port);
        let key = keys_on(c, port, 1).remove(0);
        let k = key.as_bytes();
        assert!(store.create(k, b"{\"n\":0}", TTL).await.unwrap());
        // Acknowledged means a replica has it (WAIT 1, the default).
        assert_eq!(
            c.replica_get(replica, &key).as_deref(),
            Some(&b"{\"n\":0}"[..])
        );
        assert!(
            !store.create(k, b"{\"other\":1}", TTL).await.unwrap(),
            "insert-only"
        );
        assert_eq!(
            store
                .compare_and_set(k, b"{\"n\":0}", b"{\"n\":1}", TTL)
                .await
                .unwrap(),
            CasOutcome::Swapped
        );
        assert_eq!(
            c.replica_get(replica, &key).as_deref(),
            Some(&b"{\"n\":1}"[..])
        );
        assert_eq!(
            store
                .compare_and_set(k, b"{\"n\":0}", b"{\"n\":2}", TTL)
                .await
                .unwrap(),
            CasOutcome::Conflict(b"{\"n\":1}".to_vec())
        );
        assert!(store.touch(k, Duration::from_secs(77)).await.unwrap());
        match c.command(port, &[b"TTL", k]) {
            Resp::Int(t) => assert!((70..=77).contains(&t), "{t}"),
            other => panic!("{other:?}"),
        }
        store.destroy(k).await.unwrap();
        assert_eq!(
            c.replica_get(replica, &key),
            None,
            "the logout is on the replica"
        );
        assert_eq!(store.load(k).await.unwrap(), None);
        assert_eq!(
            store
                .compare_and_set(k, b"{\"n\":1}", b"{\"n\":3}", TTL)
                .await
                .unwrap(),
            CasOutcome::Gone,
            "a save after a destroy never re-creates (R24)"
        );
        assert!(!store.touch(k, TTL).await.unwrap());
        assert_eq!(c.get(&key), None);
    }
}

async fn batched_loads_span_every_primary_one_pipeline_each(c: &RedisCluster, store: &RedisStore) {
    let mut keys = Vec::new();
    for port in primaries(c) {
        for key in keys_on(c, port, 20) {
            keys.push(key);
        }
    }
    for (i, key) in keys.iter().enumerate() {
        assert!(
            store
                .create(key.as_bytes(), format!("{{\"i\":{i}}}").as_bytes(), TTL)
                .await
                .unwrap()
        );
    }
    // A missing key, and a key of another type (fails alone).
    let missing = format!("sess:{}", fresh_sid());
    let hash = format!("sess:{}", fresh_sid());
    c.keyed(hash.as_bytes(), &[b"HSET", hash.as_bytes(), b"f", b"v"]);
    let all: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .chain([missing.as_str(), hash.as_str()])
        .collect();
    // Started together: one batch (a pipeline per primary).
    let loads = all.iter().map(|k| store.load(k.as_bytes()));
    let got = futures_util::future::join_all(loads).await;
    for (i, r) in got.iter().take(keys.len()).enumerate() {
        let bytes = r.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(&bytes[..], format!("{{\"i\":{i}}}").as_bytes());
    }
    assert_eq!(got[keys.len()].as_ref().unwrap(), &None);
    assert!(
        got[keys.len() + 1].is_err(),
        "WRONGTYPE fails its own load only"
    );
}

async fn r32_events_come_from_every_primary_except_the_stores_own_writes(c: &RedisCluster) {
    let store = connect(c).await;
    let (sink, mut rx) = sink();
    let _sub = store.subscribe(b"sess:", sink).await.unwrap().unwrap();
    assert!(wait_for(&mut rx, StoreEvent::Resumed, Duration::from_secs(5)).await);
    for port in primaries(c) {
        let [own, foreign, deleted, expiring] =
            <[String; 4]>::try_from(keys_on(c, port, 4)).unwrap();
        // The store's own write (create, then a compare-and-set) is not
        // reported; a foreign write on the same node right after it is.
        assert!(store.create(own.as_bytes(), b"{}", TTL).await.unwrap());
        let _ = next_key(&mut rx, Duration::from_millis(200)).await;
        store
            .compare_and_set(own.as_bytes(), b"{}", b"{\"a\":1}", TTL)
            .await
            .unwrap();
        c.keyed(foreign.as_bytes(), &[b"SET", foreign.as_bytes(), b"{}"]);
        let ev = next_key(&mut rx, Duration::from_secs(2))
            .await
            .expect("the foreign write");
        assert_eq!(
            ev.key,
            foreign.as_bytes(),
            "node {port}: the own write was not reported"
        );
        assert_eq!(ev.change, KeyChange::Written(None));
        // A DEL is a change to reload (the slot may have moved), not an end.
        c.keyed(deleted.as_bytes(), &[b"SET", deleted.as_bytes(), b"{}"]);
        assert_eq!(
            next_key(&mut rx, Duration::from_secs(2)).await.unwrap().key,
            deleted.as_bytes()
        );
        c.keyed(deleted.as_bytes(), &[b"DEL", deleted.as_bytes()]);
        let ev = next_key(&mut rx, Duration::from_secs(2)).await.unwrap();
        assert_eq!(
            (ev.key.as_slice(), ev.change),
            (deleted.as_bytes(), KeyChange::Written(None))
        );
        // Expiry is an end.
        c.keyed(
            expiring.as_bytes(),
            &[b"SET", expiring.as_bytes(), b"{}", b"PX", b"100"],
        );
        assert_eq!(
            next_key(&mut rx, Duration::from_secs(2)).await.unwrap().key,
            expiring.as_bytes()
        );
        let ev = next_key(&mut rx, Duration::from_secs(3)).await.unwrap();
        assert_eq!(
            (ev.key.as_slice(), ev.change),
            (expiring.as_bytes(), KeyChange::Expired)
        );
    }
}

async fn r32_a_slot_moving_to_another_node_is_a_change_not_an_end(
    c: &RedisCluster,
    store: &RedisStore,
) {
    let [a, b] = [primaries(c)[0], primaries(c)[1]];
    let key = keys_on(c, a, 1).remove(0);
    let k = key.as_bytes();
    let s = slot(k).to_string();
    assert!(store.create(k, b"{\"n\":1}", TTL).await.unwrap());
    let observer = connect(c).await;
    let (sink, mut rx) = sink();
    let _sub = observer.subscribe(b"sess:", sink).await.unwrap().unwrap();
    assert!(wait_for(&mut rx, StoreEvent::Resumed, Duration::from_secs(5)).await);
    let (id_a, id_b) = (c.node_id(a), c.node_id(b));
    let ok = |r: Resp| assert_eq!(r, Resp::Simple("OK".into()));
    ok(c.command(
        b,
        &[
            b"CLUSTER",
            b"SETSLOT",
            s.as_bytes(),
            b"IMPORTING",
            id_a.as_bytes(),
        ],
    ));
    ok(c.command(
        a,
        &[
            b"CLUSTER",
            b"SETSLOT",
            s.as_bytes(),
            b"MIGRATING",
            id_b.as_bytes(),
        ],
    ));
    let b_port = b.to_string();
    ok(c.command(
        a,
        &[
            b"MIGRATE",
            b"127.0.0.1",
            b_port.as_bytes(),
            k,
            b"0",
            b"5000",
        ],
    ));
    // The old node reports a `del`, the new one a `restore`: both are
    // changes to reload, neither ends the session.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = next_key(&mut rx, Duration::from_secs(2))
            .await
            .expect("migration events");
        assert_eq!(ev.key, k);
        seen.push(ev.change);
    }
    assert!(
        seen.iter().all(|c| *c == KeyChange::Written(None)),
        "{seen:?}"
    );
    // Mid-migration (ASK): loads and writes reach the key on its new node.
    assert_eq!(
        store.load(k).await.unwrap().as_deref(),
        Some(&b"{\"n\":1}"[..])
    );
    assert_eq!(
        store
            .compare_and_set(k, b"{\"n\":1}", b"{\"n\":2}", TTL)
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    for port in [a, b] {
        ok(c.command(
            port,
            &[
                b"CLUSTER",
                b"SETSLOT",
                s.as_bytes(),
                b"NODE",
                id_b.as_bytes(),
            ],
        ));
    }
    // After it (MOVED): the same.
    assert_eq!(
        store.load(k).await.unwrap().as_deref(),
        Some(&b"{\"n\":2}"[..])
    );
    assert_eq!(
        store
            .compare_and_set(k, b"{\"n\":2}", b"{\"n\":3}", TTL)
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(
        c.command(b, &[b"GET", k]),
        Resp::Bulk(b"{\"n\":3}".to_vec())
    );
    c.wait_ok(Duration::from_secs(10));
}

async fn r37_too_few_replica_acknowledgements_fail_the_write_saying_so(
    c: &RedisCluster,
    store: &RedisStore,
) {
    let port = primaries(c)[2];
    let replica = c.replica_of(port);
    let key = keys_on(c, port, 1).remove(0);
    c.pause(replica);
    let started = Instant::now();
    let res = store.create(key.as_bytes(), b"{}", TTL).await;
    c.resume(replica);
    let msg = res.expect_err("no replica acknowledged").to_string();
    assert!(msg.contains("may or may not survive a failover"), "{msg}");
    assert!(msg.contains("acknowledged by 0 of 1 replicas"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Without waiting for replicas, the same write is acknowledged.
    let fast = RedisStore::cluster_builder(c.seeds())
        .keyspace_events(KeyspaceEvents::Off)
        .durability(Durability::NONE)
        .connect()
        .await
        .unwrap();
    let other = keys_on(c, port, 1).remove(0);
    assert!(fast.create(other.as_bytes(), b"{}", TTL).await.unwrap());
    // One node refuses the option it cannot honour.
    let err = RedisStore::builder("redis://127.0.0.1:1/")
        .durability(Durability::default())
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster_builder"), "{err}");
}

/// A node joins as a new primary and a slot moves to it: within a couple
/// of seconds the store hears its keys' changes too (the watcher subscribed
/// there, and set its notify-keyspace-events), without losing the stream.
fn r32_a_primary_added_later_is_followed(c: &mut RedisCluster, rt: &tokio::runtime::Runtime) {
    let (observer, mut rx) = rt.block_on(async {
        let observer = connect(c).await;
        let (sink, mut rx) = sink();
        let sub = observer.subscribe(b"sess:", sink).await.unwrap().unwrap();
        assert!(wait_for(&mut rx, StoreEvent::Resumed, Duration::from_secs(5)).await);
        ((observer, sub), rx)
    });
    let added = c.add_node();
    let from = primaries(c)[2];
    // An empty slot of `from`, and a key in it.
    let (slot_moved, key) = loop {
        let key = format!("sess:{}", fresh_sid());
        let s = slot(key.as_bytes());
        if c.shards()
            .iter()
            .any(|sh| sh.primary() == Some(from) && sh.owns(s))
            && c.command(
                from,
                &[b"CLUSTER", b"COUNTKEYSINSLOT", s.to_string().as_bytes()],
            ) == Resp::Int(0)
        {
            break (s, key);
        }
    };
    c.move_empty_slot(slot_moved, from, added);
    let moved = Instant::now();
    rt.block_on(async {
        loop {
            assert_eq!(
                c.command(added, &[b"SET", key.as_bytes(), b"{}"]),
                Resp::Simple("OK".into())
            );
            match next_key(&mut rx, Duration::from_millis(100)).await {
                Some(ev) if ev.key == key.as_bytes() => break,
                _ => assert!(
                    moved.elapsed() < Duration::from_secs(3),
                    "no event from the added primary within 3 s of the slot moving"
                ),
            }
        }
        // And its write through the store lands there.
        assert_eq!(
            observer
                .0
                .compare_and_set(key.as_bytes(), b"{}", b"{\"n\":1}", TTL)
                .await
                .unwrap(),
            CasOutcome::Swapped
        );
    });
    eprintln!(
        "events from the added primary {:?} after its slot moved",
        moved.elapsed()
    );
    for class in ["K", "g", "$", "x", "e"] {
        assert!(
            c.keyspace_events(added).contains(class),
            "the store set it on the new node"
        );
    }
}

/// kill -9 a primary while writing to its slots: every acknowledged write
/// is on the promoted replica, compare-and-set values acknowledged are
/// distinct and the stored one is the highest, writes land again after the
/// promotion, and the event stream reports the gap (Lost, then Resumed on
/// the promoted node, which reports changes again).
#[test]
fn r37_a_primary_killed_while_writing_loses_no_acknowledged_write() {
    let mut cluster = RedisCluster::start();
    let rt = tokio_rt();
    let victim = primaries(&cluster)[1];
    let replica = cluster.replica_of(victim);
    let counter = keys_on(&cluster, victim, 1).remove(0);
    let (writer, observer) =
        rt.block_on(async { (connect(&cluster).await, connect(&cluster).await) });
    let (sink, mut rx) = sink();
    let _sub = rt
        .block_on(observer.subscribe(b"sess:", sink))
        .unwrap()
        .unwrap();
    assert!(rt.block_on(wait_for(
        &mut rx,
        StoreEvent::Resumed,
        Duration::from_secs(5)
    )));
    assert!(
        rt.block_on(writer.create(counter.as_bytes(), b"0", TTL))
            .unwrap()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<(Instant, u64)>::new()));
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    // A writer incrementing one counter with compare-and-set, as a save does.
    let cas_task = {
        let (w, key, stop, acked, errors) = (
            writer.clone(),
            counter.clone(),
            stop.clone(),
            acked.clone(),
            errors.clone(),
        );
        rt.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let cur = match w.load(key.as_bytes()).await {
                    Ok(Some(b)) => b,
                    Ok(None) => panic!("the counter vanished"),
                    Err(e) => {
                        errors.lock().unwrap().push(e.to_string());
                        continue;
                    }
                };
                let n: u64 = std::str::from_utf8(&cur).unwrap().parse().unwrap();
                let next = (n + 1).to_string();
                match w
                    .compare_and_set(key.as_bytes(), &cur, next.as_bytes(), TTL)
                    .await
                {
                    Ok(CasOutcome::Swapped) => acked.lock().unwrap().push((Instant::now(), n + 1)),
                    Ok(other) => panic!("the only writer got {other:?}"),
                    Err(e) => errors.lock().unwrap().push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // Logins on the same shard: every acknowledged create must survive.
    let keys = keys_on(&cluster, victim, 4000);
    let create_task = {
        let (w, stop, created, errors) = (
            writer.clone(),
            stop.clone(),
            created.clone(),
            errors.clone(),
        );
        rt.spawn(async move {
            for key in keys {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match w.create(key.as_bytes(), b"{\"user\":\"x\"}", TTL).await {
                    Ok(true) => created.lock().unwrap().push(key),
                    Ok(false) => panic!("a fresh key existed"),
                    Err(e) => errors.lock().unwrap().push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    let before = acked.lock().unwrap().len();
    assert!(
        before > 10,
        "only {before} writes acknowledged before the kill"
    );
    cluster.kill(victim);
    let killed = Instant::now();
    let took = cluster.wait_primary(replica, Duration::from_secs(15));
    let promoted = killed + took;
    eprintln!("replica {replica} promoted {took:?} after the kill");
    // Writes land again after the promotion.
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t > promoted)
        .count()
        < 20
    {
        assert!(
            Instant::now() < deadline,
            "writes did not land again after the promotion"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    rt.block_on(async {
        cas_task.await.unwrap();
        create_task.await.unwrap();
    });
    let acked: Vec<u64> = acked.lock().unwrap().iter().map(|(_, n)| *n).collect();
    let distinct: HashSet<u64> = acked.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        acked.len(),
        "an acknowledged value was acknowledged twice"
    );
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "acknowledged values go up"
    );
    let highest = *acked.last().unwrap();
    let stored = cluster.get(&counter).expect("the counter survived");
    assert_eq!(
        std::str::from_utf8(&stored).unwrap(),
        highest.to_string(),
        "the stored counter is the highest acknowledged"
    );
    let created = created.lock().unwrap().clone();
    let lost: Vec<&String> = created
        .iter()
        .filter(|k| cluster.get(k).is_none())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost",
        lost.len(),
        created.len()
    );
    let errors = errors.lock().unwrap().clone();
    eprintln!(
        "{} increments and {} creates acknowledged, {} calls failed during the failover",
        acked.len(),
        created.len(),
        errors.len()
    );
    for e in &errors {
        eprintln!("  {e}");
        assert!(
            !e.contains("127.0.0.1:") || e.contains("Redis Cluster"),
            "{e}"
        );
    }
    // The event stream reported the gap, and reports again from the
    // promoted node.
    rt.block_on(async {
        assert!(
            wait_for(&mut rx, StoreEvent::Lost, Duration::from_secs(1)).await,
            "no Lost"
        );
        assert!(
            wait_for(&mut rx, StoreEvent::Resumed, Duration::from_secs(5)).await,
            "no Resumed"
        );
        let key = keys_on(&cluster, replica, 1).remove(0);
        cluster.keyed(key.as_bytes(), &[b"SET", key.as_bytes(), b"{}"]);
        // (After the writer's own, queued while the test ran.)
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = next_key(&mut rx, left)
                .await
                .expect("an event from the promoted node");
            if ev.key == key.as_bytes() {
                break;
            }
        }
    });
}
