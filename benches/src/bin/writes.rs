//! Acknowledged writes per second on ONE session, Redis on loopback: N
//! concurrent writers, each incrementing a counter in a loop (a
//! read-modify-write, `update`), on one node and on two nodes (two handles,
//! each with its own write queue and its own Redis connection, as two
//! servers have), next to the same writers without the write queue (each
//! write its own compare-and-set, retried on conflict: what every write cost
//! before group commit). Prints a table with the slowest acknowledged
//! write; checks the counter equals the acknowledged writes.
//!
//! ```text
//! cargo run --release -p session-sockets-benches --bin writes [-- --secs 3]
//! ```
//!
//! Starts its own redis-server on a free loopback port (redis-server must
//! be installed); bounded in time (`--secs` per row, default 3).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use session_sockets::core::Now;
use session_sockets::core::machines::Save;
use session_sockets::runtime::tokio::Tokio;
use session_sockets::store::Store;
use session_sockets::{Config, KeyspaceEvents, RedisStore, Session, SessionSockets};

fn main() -> ExitCode {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| (1..=60).contains(s))
        .unwrap_or(3);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("writes: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(Duration::from_secs(secs))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writes: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// `SessionSockets::update`: the write queue, group commit.
    Queue,
    /// A `Save::update` machine per write, driven directly.
    Direct,
}

struct Row {
    ok: u64,
    failed: u64,
    /// The longest an acknowledged write took.
    slowest: Duration,
    secs: f64,
    counter: u64,
}

async fn run(secs: Duration) -> Result<(), String> {
    let (_redis, url) = session_sockets_benches::procs::redis()?;
    let config = Arc::new(
        Config::builder()
            .secret("bench secret")
            .build()
            .map_err(|e| e.to_string())?,
    );
    println!(
        "one session, Redis on loopback, {} s per row\n",
        secs.as_secs()
    );
    println!(
        "| writers | nodes | path | acknowledged writes/s | failed | slowest write | counter = acks |"
    );
    println!("|---|---|---|---|---|---|---|");
    for writers in [1usize, 16, 64] {
        for nodes in [1usize, 2] {
            let mut rates = Vec::new();
            for path in [Path::Queue, Path::Direct] {
                let row = measure(&config, &url, writers, nodes, path, secs).await?;
                let rate = row.ok as f64 / row.secs;
                rates.push(rate);
                println!(
                    "| {writers} | {nodes} | {} | {:.0} | {} ({:.1} %) | {:.1} ms | {} |",
                    match path {
                        Path::Queue => "write queue (group commit)",
                        Path::Direct => "one compare-and-set per write",
                    },
                    rate,
                    row.failed,
                    100.0 * row.failed as f64 / (row.ok + row.failed).max(1) as f64,
                    row.slowest.as_secs_f64() * 1e3,
                    if row.counter == row.ok { "yes" } else { "NO" },
                );
            }
            println!(
                "| {writers} | {nodes} | ratio | **{:.1}x** | | | |",
                rates[0] / rates[1].max(1e-9)
            );
        }
    }
    Ok(())
}

async fn measure(
    config: &Arc<Config>,
    url: &str,
    writers: usize,
    nodes: usize,
    path: Path,
    secs: Duration,
) -> Result<Row, String> {
    let mut handles = Vec::new();
    for _ in 0..nodes {
        let store: Arc<dyn Store> = Arc::new(
            RedisStore::builder(url.to_owned())
                .keyspace_events(KeyspaceEvents::Configure)
                .connect()
                .await
                .map_err(|e| e.to_string())?,
        );
        handles.push(SessionSockets::new(Arc::clone(config), store));
    }
    let mut data = serde_json::Map::new();
    data.insert("n".into(), 0.into());
    let created = handles[0].create(data).await.map_err(|e| e.to_string())?;
    let id = created.session.id().clone();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let sockets = handles[w % nodes].clone();
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        let slowest = slowest.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            // Each writer's copy, refreshed by its own writes.
            let mut copy = match sockets.reload(&id).await {
                Ok(s) => s,
                Err(_) => return,
            };
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                match write(&sockets, copy.clone(), path).await {
                    Ok(stored) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                        slowest.fetch_max(us, Ordering::Relaxed);
                        copy = stored;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let counter = handles[0]
        .reload(&id)
        .await
        .ok()
        .and_then(|s| s.get::<u64>("n").ok().flatten())
        .unwrap_or(0);
    let _ = handles[0].destroy(&id).await;
    Ok(Row {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        slowest: Duration::from_micros(slowest.load(Ordering::Relaxed)),
        secs,
        counter,
    })
}

fn increment(s: &mut Session) {
    let n = s.get::<u64>("n").ok().flatten().unwrap_or(0);
    let _ = s.insert("n", n + 1);
}

async fn write(
    sockets: &SessionSockets<Tokio>,
    copy: Session,
    path: Path,
) -> Result<Session, session_sockets::WriteError> {
    match path {
        Path::Queue => sockets.update(copy, increment).await.map(|(s, ())| s),
        Path::Direct => {
            let now = Now::new(Instant::now(), SystemTime::now());
            let mut save = Save::update(Arc::clone(sockets.config()), copy, increment, now);
            match sockets.run(&mut save).await {
                Ok(outcome) => outcome,
                Err(_) => Err(session_sockets::WriteError::Conflict {
                    attempts: save.attempts(),
                }),
            }
        }
    }
}
