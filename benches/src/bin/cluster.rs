//! RedisStore on a Redis Cluster next to one Redis node, on loopback:
//!
//! - handshakes/s (a cookie verified, its session loaded: batched `GET`s,
//!   one pipeline per primary on the cluster) over many sessions;
//! - acknowledged writes/s (`update`, one compare-and-set each) over many
//!   sessions, on the cluster with and without `WAIT 1` for a replica;
//! - keyspace event latency on the cluster: from sending a foreign write to
//!   its event at a subscribed store, p50 / p99;
//! - what `WAIT 1` costs one write, alone (p50 / p99 of a lone
//!   compare-and-set) and under load.
//!
//! ```text
//! cargo run --release -p session-sockets-benches --bin cluster [-- --secs 3 --sessions 2000]
//! ```
//!
//! Starts its own redis-server and 3-primary / 3-replica cluster on free
//! loopback ports (redis-server must be installed), stops them at the end;
//! bounded in time (`--secs` per row, default 3).
#![forbid(unsafe_code)]

#[path = "../../../shims/tests/support/redis_cluster.rs"]
mod redis_cluster;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_sockets::redis::Durability;
use session_sockets::runtime::tokio::Tokio;
use session_sockets::store::{CasOutcome, EventSink, Store, StoreEvent};
use session_sockets::{Config, KeyspaceEvents, RedisStore, SessionId, SessionSockets};

/// Concurrent callers in the throughput rows.
const CALLERS: usize = 64;

fn arg(name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| range.contains(s))
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let secs = Duration::from_secs(arg("--secs", 3, 1..=60));
    let sessions = arg("--sessions", 2000, 10..=100_000) as usize;
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(secs, sessions)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(secs: Duration, sessions: usize) -> Result<(), String> {
    let (_redis, url) = session_sockets_benches::procs::redis()?;
    let cluster = tokio::task::spawn_blocking(redis_cluster::RedisCluster::start)
        .await
        .map_err(|e| format!("cannot start the cluster: {e}"))?;
    let seeds = cluster.seeds();
    let config = Arc::new(
        Config::builder()
            .secret("bench secret")
            .build()
            .map_err(|e| e.to_string())?,
    );
    let single = || RedisStore::builder(url.clone()).keyspace_events(KeyspaceEvents::Configure);
    let on_cluster = |durability: Durability| {
        RedisStore::cluster_builder(seeds.clone())
            .keyspace_events(KeyspaceEvents::Configure)
            .durability(durability)
    };
    println!(
        "{sessions} sessions, {CALLERS} concurrent callers, {} s per row, loopback, 2 tokio workers\n",
        secs.as_secs()
    );
    println!("| store | handshakes/s | acknowledged writes/s | failed | counters = acks |");
    println!("|---|---|---|---|---|");
    let rows: [(&str, session_sockets::RedisStoreBuilder); 5] = [
        ("one Redis node", single()),
        (
            "cluster 3+3, WAIT 1 (default)",
            on_cluster(Durability::default()),
        ),
        ("cluster 3+3, no WAIT", on_cluster(Durability::NONE)),
        (
            "one Redis node, keyspace events off",
            single().keyspace_events(KeyspaceEvents::Off),
        ),
        (
            "cluster 3+3, WAIT 1, keyspace events off",
            on_cluster(Durability::default()).keyspace_events(KeyspaceEvents::Off),
        ),
    ];
    for (name, builder) in rows {
        let store: Arc<dyn Store> = Arc::new(builder.connect().await.map_err(|e| e.to_string())?);
        let handle = SessionSockets::new(Arc::clone(&config), store);
        let ids = seed(&handle, sessions).await?;
        let hs = handshakes(&handle, &config, &ids, secs).await?;
        let w = writes(&handle, &ids, secs).await?;
        println!(
            "| {name} | {:.0} | {:.0} | {} | {} |",
            hs,
            w.ok as f64 / w.secs,
            w.failed,
            if w.counted == w.ok { "yes" } else { "NO" }
        );
        for id in &ids {
            let _ = handle.destroy(id).await;
        }
    }

    println!(
        "\nwhat WAIT 1 costs one compare-and-set on the cluster (the key's replica on loopback; \
         the store's compare-and-set alone, keyspace events off)\n"
    );
    println!(
        "| store | lone write p50 | lone write p99 | writes/s, {CALLERS} callers, one key each |"
    );
    println!("|---|---|---|---|");
    for (name, durability) in [
        ("one Redis node (for comparison)", None),
        ("cluster, no WAIT", Some(Durability::NONE)),
        ("cluster, WAIT 1", Some(Durability::default())),
    ] {
        let builder = match durability {
            Some(d) => on_cluster(d),
            None => single(),
        };
        let store = builder
            .keyspace_events(KeyspaceEvents::Off)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let (p50, p99) = lone_writes(&store, 2000).await?;
        let rate = raw_writes(&store, secs).await?;
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:.0} |",
            p50 * 1e3,
            p99 * 1e3,
            rate
        );
    }

    let (p50, p99, n) = event_latency(&seeds, 2000).await?;
    println!(
        "\nkeyspace event latency on the cluster (a foreign SET to the event at a subscribed store, \
         {n} writes spread over the 3 primaries): p50 {:.3} ms, p99 {:.3} ms",
        p50 * 1e3,
        p99 * 1e3
    );
    drop(cluster);
    Ok(())
}

/// Creates `n` sessions; their ids.
async fn seed(handle: &SessionSockets<Tokio>, n: usize) -> Result<Vec<SessionId>, String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let mut data = serde_json::Map::new();
        data.insert("user".into(), format!("u{i}").into());
        data.insert("n".into(), 0.into());
        let created = handle.create(data).await.map_err(|e| e.to_string())?;
        ids.push(created.session.id().clone());
    }
    Ok(ids)
}

/// Handshakes per second: `CALLERS` callers, each resolving the cookie of
/// a session after another (a signed cookie verified, the record loaded).
async fn handshakes(
    handle: &SessionSockets<Tokio>,
    config: &Config,
    ids: &[SessionId],
    secs: Duration,
) -> Result<f64, String> {
    let cookies: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| {
                let signed = session_sockets::core::codec::signature::sign_cookie(
                    id.expose(),
                    "bench secret",
                );
                format!("{}={}", config.cookie_name(), signed.replace(':', "%3A"))
            })
            .collect(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CALLERS {
        let (handle, cookies, done, failed, stop) = (
            handle.clone(),
            cookies.clone(),
            done.clone(),
            failed.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let cookie = &cookies[i % cookies.len()];
                let pairs = [("cookie", cookie.as_str())];
                match handle.session_from_pairs(pairs).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
                i += CALLERS;
            }
        }));
    }
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{failed} handshakes failed"));
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

struct Writes {
    ok: u64,
    failed: u64,
    secs: f64,
    /// The increments the stored counters add up to.
    counted: u64,
}

/// Acknowledged writes per second: `CALLERS` writers, each incrementing a
/// counter in a session after another (`update`: its own compare-and-set).
async fn writes(
    handle: &SessionSockets<Tokio>,
    ids: &[SessionId],
    secs: Duration,
) -> Result<Writes, String> {
    let ids = Arc::new(ids.to_vec());
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CALLERS {
        let (handle, ids, ok, failed, stop) = (
            handle.clone(),
            ids.clone(),
            ok.clone(),
            failed.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let id = &ids[i % ids.len()];
                let written = match handle.reload(id).await {
                    Ok(s) => handle
                        .update(s, |s| {
                            let n = s.get::<u64>("n").ok().flatten().unwrap_or(0);
                            let _ = s.insert("n", n + 1);
                        })
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if written {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += CALLERS;
            }
        }));
    }
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut counted = 0;
    for id in ids.iter() {
        counted += handle
            .reload(id)
            .await
            .ok()
            .and_then(|s| s.get::<u64>("n").ok().flatten())
            .unwrap_or(0);
    }
    Ok(Writes {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        secs,
        counted,
    })
}

/// p50 and p99 (seconds) of `n` lone compare-and-sets, one after another.
async fn lone_writes(store: &RedisStore, n: usize) -> Result<(f64, f64), String> {
    let key = b"sess:bench-lone-writes";
    let ttl = Duration::from_secs(600);
    store.destroy(key).await.map_err(|e| e.to_string())?;
    store
        .create(key, b"0", ttl)
        .await
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 200 {
        let (old, new) = (i.to_string(), (i + 1).to_string());
        let t0 = Instant::now();
        store
            .compare_and_set(key, old.as_bytes(), new.as_bytes(), ttl)
            .await
            .map_err(|e| e.to_string())?;
        if i >= 200 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    store.destroy(key).await.map_err(|e| e.to_string())?;
    Ok(percentiles(&mut times))
}

/// Compare-and-sets per second, `CALLERS` callers each on its own key.
async fn raw_writes(store: &RedisStore, secs: Duration) -> Result<f64, String> {
    let ttl = Duration::from_secs(600);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..CALLERS {
        let key = format!("sess:bench-raw-{c}");
        store
            .destroy(key.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        store
            .create(key.as_bytes(), b"0", ttl)
            .await
            .map_err(|e| e.to_string())?;
        let (store, done, stop) = (store.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut cur = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (old, new) = (cur.to_string(), (cur + 1).to_string());
                if let Ok(CasOutcome::Swapped) = store
                    .compare_and_set(key.as_bytes(), old.as_bytes(), new.as_bytes(), ttl)
                    .await
                {
                    cur += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = store.destroy(key.as_bytes()).await;
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Keyspace event latency: a store subscribed; another (no WAIT) writes
/// keys spread over the slots, one at a time; from sending each write to
/// its event at the subscriber.
async fn event_latency(seeds: &[String], n: usize) -> Result<(f64, f64, usize), String> {
    let observer = RedisStore::cluster_builder(seeds.to_vec())
        .keyspace_events(KeyspaceEvents::Configure)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let writer = RedisStore::cluster_builder(seeds.to_vec())
        .keyspace_events(KeyspaceEvents::Off)
        .durability(Durability::NONE)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let sink: EventSink = Arc::new(move |e| {
        if let StoreEvent::Key(k) = e {
            let _ = tx.send((Instant::now(), k.key));
        }
    });
    let _sub = observer
        .subscribe(b"sess:bench-ev-", sink)
        .await
        .map_err(|e| e.to_string())?;
    let ttl = Duration::from_secs(60);
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let key = format!("sess:bench-ev-{i}");
        let t0 = Instant::now();
        writer
            .create(key.as_bytes(), b"{}", ttl)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
                Ok(Some((at, k))) if k == key.as_bytes() => {
                    if i >= 100 {
                        times.push(at.duration_since(t0).as_secs_f64());
                    }
                    break;
                }
                Ok(Some(_)) => continue,
                _ => return Err(format!("no event for write {i} within 2 s")),
            }
        }
    }
    for i in 0..n + 100 {
        let _ = writer
            .destroy(format!("sess:bench-ev-{i}").as_bytes())
            .await;
    }
    let (p50, p99) = percentiles(&mut times);
    Ok((p50, p99, n))
}

fn percentiles(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).copied().unwrap_or(0.0)
    };
    (at(0.50), at(0.99))
}
