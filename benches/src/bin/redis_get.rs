//! What one Redis `GET` round trip costs the calling process in CPU, the
//! floor under RedisStore's per-connection overhead in the end-to-end
//! comparison: `RedisStore::load` (the redis crate's multiplexed
//! connection) next to a bare RESP `GET` over one tokio `TcpStream`, one
//! caller at a time and 50 at once, on a current-thread runtime pinned by
//! the caller (`taskset -c 0`), Redis on loopback.
//!
//! Back to back, a caller hardly ever finds the process idle. A server
//! handshaking one connection at a time does: it waits for its client
//! before and after each `GET`, so the `GET`'s wait is one more time the
//! process goes to sleep and is woken. The last rows measure that: a loop
//! that sleeps 1 ms then sends one `GET`, less the same loop without the
//! `GET` (the sleep's own wake-up), per `GET`.
//!
//! ```text
//! cargo build --release -p session-sockets-benches --bin redis_get && REDIS_CPU=1 taskset -c 0 target/release/redis_get
//! ```
//!
//! Starts its own redis-server on a free loopback port (`REDIS_CPU=1`
//! pins it to CPU 1, as `benches/e2e/compare.sh` places it: the round trip
//! the chat's handshake pays wakes Redis on the other CPU); bounded (20,000
//! GETs per row, 5 x 1,000 in the rows with a pause).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_sockets::{KeyspaceEvents, RedisStore};

use session_sockets::store::Store;
use session_sockets_benches::procs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPS: usize = 20_000;
/// `GET`s in the rows with a pause before each (a 1 ms timer each), per
/// round.
const OPS_IDLE: usize = 1_000;
/// Rounds of the rows with a pause (odd: the median is one of them).
const ROUNDS_IDLE: usize = 5;

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redis_get: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (redis, url) = match procs::redis() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redis_get: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(&url)).and_then(|()| {
        // The paused rows again on the runtime the chat uses (`#[tokio::main]`,
        // one worker when pinned to one CPU), from a task on its worker.
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start tokio: {e}"))?;
        multi.block_on(async {
            let url = url.clone();
            tokio::spawn(async move {
                let store = Arc::new(connect(&url).await?);
                paused_rows(&store, "multi-thread runtime, 1 worker").await
            })
            .await
            .map_err(|e| e.to_string())?
        })
    });
    drop(redis);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redis_get: {e}");
            ExitCode::FAILURE
        }
    }
}

/// This process's CPU time (all threads), from /proc.
fn cpu() -> Duration {
    let mut ns = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

async fn measure<F, Fut>(label: &str, callers: usize, op: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let (c0, t0) = (cpu(), Instant::now());
    let per = OPS / callers;
    let runs = (0..callers).map(|_| async {
        for _ in 0..per {
            op().await?;
        }
        Ok::<(), String>(())
    });
    for r in futures_util::future::join_all(runs).await {
        r?;
    }
    let (cpu_us, wall) = ((cpu() - c0).as_secs_f64() * 1e6, t0.elapsed().as_secs_f64());
    let n = (per * callers) as f64;
    println!(
        "| {label} | {callers} | {:.1} | {:.0} |",
        cpu_us / n,
        n / wall
    );
    Ok(())
}

async fn connect(url: &str) -> Result<RedisStore, String> {
    RedisStore::builder(url)
        .keyspace_events(KeyspaceEvents::Off)
        .connect()
        .await
        .map_err(|e| e.to_string())
}

async fn run(url: &str) -> Result<(), String> {
    let store = Arc::new(connect(url).await?);
    let value = vec![b'x'; 196];
    store
        .create(b"sess:bench", &value, Duration::from_secs(600))
        .await
        .map_err(|e| e.to_string())?;
    let addr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    println!("| path | callers | process CPU us per GET | GETs/s |\n|---|---|---|---|");
    for callers in [1, 50] {
        measure("RedisStore::load", callers, || {
            let store = Arc::clone(&store);
            async move {
                match store.load(b"sess:bench").await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err("the record is gone".to_owned()),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await?;
        // One raw connection per caller: write the command, read the reply.
        let conns: Vec<_> = futures_util::future::join_all(
            (0..callers).map(|_| tokio::net::TcpStream::connect(addr.clone())),
        )
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
        let conns: Vec<_> = conns.into_iter().map(tokio::sync::Mutex::new).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        measure("raw RESP over a TcpStream", callers, || {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % callers;
            let conn = &conns[i];
            async move {
                let mut c = conn.lock().await;
                c.write_all(b"*2\r\n$3\r\nGET\r\n$10\r\nsess:bench\r\n")
                    .await
                    .map_err(|e| e.to_string())?;
                let mut buf = [0u8; 512];
                let mut got = 0;
                // `$196\r\n` + 196 bytes + `\r\n`.
                while got < 6 + 196 + 2 {
                    let n = c.read(&mut buf[got..]).await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("Redis closed the connection".to_owned());
                    }
                    got += n;
                }
                Ok(())
            }
        })
        .await?;
    }
    paused_rows(&store, "current-thread runtime").await
}

/// One `GET` after each pause, less the pauses alone: `ROUNDS_IDLE` rounds,
/// each the two loops back to back, so that a busy moment of the machine
/// moves one round; the median and the spread of the rounds.
async fn paused_rows(store: &Arc<RedisStore>, runtime: &str) -> Result<(), String> {
    let paused = |get: bool| {
        let store = Arc::clone(store);
        async move {
            let c0 = cpu();
            for _ in 0..OPS_IDLE {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if get {
                    match store.load(b"sess:bench").await {
                        Ok(Some(_)) => {}
                        Ok(None) => return Err("the record is gone".to_owned()),
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Ok::<Duration, String>(cpu() - c0)
        }
    };
    let mut rounds = Vec::with_capacity(ROUNDS_IDLE);
    for _ in 0..ROUNDS_IDLE {
        let alone = paused(false).await?;
        let with_get = paused(true).await?;
        rounds.push((with_get.as_secs_f64() - alone.as_secs_f64()) * 1e6 / OPS_IDLE as f64);
    }
    rounds.sort_by(f64::total_cmp);
    let median = rounds[ROUNDS_IDLE / 2];
    let (low, high) = (rounds[0], rounds[ROUNDS_IDLE - 1]);
    println!(
        "| RedisStore::load, 1 ms apart (idle before each: one more sleep and wake-up), {runtime} | 1 | {median:.1} ({low:.1} to {high:.1}) | - |"
    );
    Ok(())
}
