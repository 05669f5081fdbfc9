//! How cost grows with the work: the scale curves of BENCHMARKS.md that
//! are not load-generator runs (those are in `benches/scale.sh`).
//!
//! ```text
//! scale store  --sessions 10000,100000,1000000     # MemoryStore bytes per session
//! scale fanout --sockets 1000,10000 [--rounds 3]   # one logout to N sockets of one session
//! scale stream --sessions 10000 --rates 1000,5000 [--secs 10]   # changes on followed sessions
//! scale ticks  --sessions 10000,100000,1000000     # the live layer's once-a-second look
//! scale leave  --followers 10000,100000            # N sockets of one session leaving
//! ```
//!
//! - `store`: for each N, a fresh process creates N sessions through
//!   `SessionSockets::create` on a `MemoryStore` (a `{"user": ..}` record,
//!   one-day cookie, as the chat's login makes) and reports the growth of
//!   its resident memory per session, and creates per second.
//! - `fanout`: the chat (MemoryStore) with N WebSockets of one session; one
//!   `POST /logout`, then the time from sending it to each socket's
//!   namespace disconnect (`41`): p50, p99 and the last, per round.
//! - `stream`: the chat on Redis with N sessions, a socket each; another
//!   process (this one) rewrites the records in Redis at R changes per
//!   second, round robin, for `--secs`; the chat reloads each changed
//!   session from the keyspace events and refreshes its socket. Reported:
//!   changes/s sent, store events and reloads/s the chat handled (its
//!   Prometheus counters), its CPU, and the lag from a write to a socket
//!   seeing it (probe sessions polled with `whoami`), p50 / p99.
//! - `ticks`: for each N, a fresh process follows N sessions (N live
//!   sessions on a `MemoryStore`, as N connected sockets of a session each
//!   hold, without the sockets) and reports the CPU the process then uses
//!   per second while nothing happens: the live layer's once-a-second look
//!   at keep-alive and expiry, and the store's expiry thread.
//! - `leave`: N live sessions of one session (its N sockets), then all of
//!   them dropped (the sockets closing): the time and CPU that takes.
//!
//! The chat binary is the one next to this one (`cargo build --release
//! --bin chat --bin scale`); `BENCH_SERVER_CPU=0` pins it to CPU 0 (run
//! this one on another: `taskset -c 1`). Loopback only; every step has a
//! deadline and every count a bound; raise `ulimit -n` above twice the
//! sockets first.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use session_sockets_benches::client::{Http, Ws, login_on, open_websocket};
use session_sockets_benches::procs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// The most sessions or sockets one run takes.
const MAX_COUNT: usize = 2_000_000;
/// Deadline for one socket's handshake.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
const SECRET: &str = "scale bench secret";

/// The scale curves (loopback only).
#[derive(Parser)]
#[command(about = "Scale curves: MemoryStore size, logout fan-out, change streams")]
struct Cli {
    #[command(subcommand)]
    run: Run,
}

#[derive(Subcommand)]
enum Run {
    /// MemoryStore resident bytes per session at each count.
    Store {
        /// Session counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        sessions: Vec<usize>,
    },
    /// One count of `store`, in this process (what `store` runs per count).
    #[command(hide = true)]
    StoreOne {
        #[arg(long)]
        sessions: usize,
    },
    /// One logout, N sockets of that session: time to each disconnect.
    Fanout {
        /// Socket counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        sockets: Vec<usize>,
        /// Logouts per count (a fresh login and sockets each).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// CPU per second of a process following N idle sessions.
    Ticks {
        /// Session counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        sessions: Vec<usize>,
    },
    /// One count of `ticks`, in this process.
    #[command(hide = true)]
    TicksOne {
        #[arg(long)]
        sessions: usize,
    },
    /// N followers of one session leaving.
    Leave {
        /// Follower counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        followers: Vec<usize>,
    },
    /// A sustained stream of changes to followed sessions.
    Stream {
        /// Followed sessions (a socket each).
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        /// Changes per second, comma-separated (one window each).
        #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
        rates: Vec<usize>,
        /// Seconds per window.
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scale: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run = async {
        match cli.run {
            Run::Store { sessions } => store(&sessions),
            Run::StoreOne { sessions } => store_one(sessions).await,
            Run::Ticks { sessions } => ticks(&sessions),
            Run::TicksOne { sessions } => ticks_one(sessions).await,
            Run::Leave { followers } => leave(&followers).await,
            Run::Fanout { sockets, rounds } => fanout(&sockets, rounds).await,
            Run::Stream {
                sessions,
                rates,
                secs,
            } => stream(sessions, &rates, secs).await,
        }
    };
    // Every run is bounded: none takes more than half an hour.
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(1800), run).await }) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("scale: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("scale: the run took over 30 minutes");
            ExitCode::FAILURE
        }
    }
}

fn check(n: usize, what: &str) -> Result<(), String> {
    if n == 0 || n > MAX_COUNT {
        return Err(format!("{what} must be between 1 and {MAX_COUNT}"));
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    percentile(&xs, 0.5)
}

// ---- store -------------------------------------------------------------

/// Runs `store-one` in a fresh process per count: memory one count freed
/// would be reused by the next and hide its cost.
fn store(counts: &[usize]) -> Result<(), String> {
    println!("| sessions | RSS growth | bytes per session | creates/s |");
    println!("|---|---|---|---|");
    per_process("store-one", counts)
}

/// Runs `sub --sessions N` in a fresh process for each count, its table row
/// to this one's output.
fn per_process(sub: &str, counts: &[usize]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for &n in counts {
        check(n, "--sessions")?;
        let out = std::process::Command::new(&exe)
            .args([sub, "--sessions", &n.to_string()])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// A handle on a MemoryStore for `n` sessions with the chat's login cookie
/// (one day).
fn memory_sessions(
    n: usize,
) -> Result<session_sockets::SessionSockets<session_sockets::runtime::tokio::Tokio>, String> {
    use session_sockets::{Config, MemoryStore, SessionSockets};
    let config = Config::builder()
        .secret(SECRET)
        .cookie(session_sockets::core::CookieOptions {
            max_age: Some(Duration::from_secs(24 * 3600)),
            ..Default::default()
        })
        .build()
        .map_err(|e| e.to_string())?;
    Ok(SessionSockets::new(
        config,
        MemoryStore::with_capacity(n + 1),
    ))
}

async fn store_one(n: usize) -> Result<(), String> {
    check(n, "--sessions")?;
    let sessions = memory_sessions(n)?;
    // Warm up the allocator and the handle, then measure.
    let one = serde_json::Map::from_iter([("user".to_owned(), json!("warm-up"))]);
    sessions.create(one).await.map_err(|e| e.to_string())?;
    let pid = std::process::id();
    let before = procs::rss(pid);
    let started = Instant::now();
    for i in 0..n {
        let data = serde_json::Map::from_iter([("user".to_owned(), json!(format!("user{i}")))]);
        sessions.create(data).await.map_err(|e| e.to_string())?;
    }
    let secs = started.elapsed().as_secs_f64();
    let grown = procs::rss(pid).saturating_sub(before);
    println!(
        "| {n} | {:.1} MiB | {:.0} | {:.0} |",
        grown as f64 / 1048576.0,
        grown as f64 / n as f64,
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

// ---- ticks -------------------------------------------------------------

/// Runs `ticks-one` in a fresh process per count.
fn ticks(counts: &[usize]) -> Result<(), String> {
    println!("| followed sessions | process CPU per second, idle | followed in |");
    println!("|---|---|---|");
    per_process("ticks-one", counts)
}

async fn ticks_one(n: usize) -> Result<(), String> {
    check(n, "--sessions")?;
    let sessions = memory_sessions(n)?;
    let started = Instant::now();
    let mut live = Vec::with_capacity(n);
    for i in 0..n {
        let data = serde_json::Map::from_iter([("user".to_owned(), json!(format!("user{i}")))]);
        let created = sessions.create(data).await.map_err(|e| e.to_string())?;
        let cookie = created.set_cookie.split(';').next().unwrap_or_default();
        let mut headers = tokio_tungstenite::tungstenite::http::HeaderMap::new();
        headers.insert(
            tokio_tungstenite::tungstenite::http::header::COOKIE,
            tokio_tungstenite::tungstenite::http::HeaderValue::from_str(cookie)
                .map_err(|e| e.to_string())?,
        );
        let session = sessions
            .live_session(&headers, |_| {})
            .await
            .map_err(|e| e.to_string())?;
        live.push(session);
    }
    let followed_in = started.elapsed();
    // Settle (the store reported each create: the event task works through
    // them), then measure whole ticks.
    let pid = std::process::id();
    let settle_until = Instant::now() + Duration::from_secs(120);
    let mut last = procs::cpu_time(pid);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = procs::cpu_time(pid);
        let used = now.saturating_sub(last);
        last = now;
        if used < Duration::from_millis(100) || Instant::now() > settle_until {
            break;
        }
    }
    let c0 = procs::cpu_time(pid);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu = procs::cpu_time(pid).saturating_sub(c0);
    let per_sec = cpu.as_secs_f64() / t0.elapsed().as_secs_f64();
    println!(
        "| {n} | {:.2} ms | {:.1} s |",
        per_sec * 1000.0,
        followed_in.as_secs_f64()
    );
    drop(live);
    Ok(())
}

// ---- leave -------------------------------------------------------------

async fn leave(counts: &[usize]) -> Result<(), String> {
    use session_sockets::{Config, MemoryStore, SessionSockets};
    println!("| followers of one session | all leaving took | per follower |");
    println!("|---|---|---|");
    for &n in counts {
        check(n, "--followers")?;
        let config = Config::builder()
            .secret(SECRET)
            .build()
            .map_err(|e| e.to_string())?;
        let sessions = SessionSockets::new(config, MemoryStore::new());
        let data = serde_json::Map::from_iter([("user".to_owned(), json!("many"))]);
        let created = sessions.create(data).await.map_err(|e| e.to_string())?;
        let cookie = created.set_cookie.split(';').next().unwrap_or_default();
        let mut headers = tokio_tungstenite::tungstenite::http::HeaderMap::new();
        headers.insert(
            tokio_tungstenite::tungstenite::http::header::COOKIE,
            tokio_tungstenite::tungstenite::http::HeaderValue::from_str(cookie)
                .map_err(|e| e.to_string())?,
        );
        let mut live = Vec::with_capacity(n);
        for _ in 0..n {
            let session = sessions
                .live_session(&headers, |_| {})
                .await
                .map_err(|e| e.to_string())?;
            live.push(session);
        }
        let pid = std::process::id();
        let (c0, t0) = (procs::cpu_time(pid), Instant::now());
        // In the order they came, as sockets of a session that opened one
        // after the other and close together.
        for session in live {
            drop(session);
        }
        let took = t0.elapsed();
        let cpu = procs::cpu_time(pid).saturating_sub(c0);
        println!(
            "| {n} | {} ms (CPU {} ms) | {:.2} us |",
            ms(took),
            ms(cpu),
            took.as_secs_f64() * 1e6 / n as f64
        );
    }
    Ok(())
}

// ---- fanout ------------------------------------------------------------

async fn fanout(counts: &[usize], rounds: usize) -> Result<(), String> {
    if !(1..=20).contains(&rounds) {
        return Err("--rounds must be between 1 and 20".into());
    }
    let (chat, addr) = procs::chat(&["--secret", SECRET, "--capacity", "1000000"])?;
    println!(
        "one POST /logout, N sockets of that session; time from sending it to each socket's \
         disconnect (41), median of {rounds} rounds\n"
    );
    println!("| sockets | p50 ms | p99 ms | last ms | server CPU ms per logout |");
    println!("|---|---|---|---|---|");
    for &n in counts {
        check(n, "--sockets")?;
        let (mut p50, mut p99, mut last, mut cpu) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let (times, used) = one_fanout(addr, chat.pid(), n).await?;
            p50.push(percentile(&times, 0.5));
            p99.push(percentile(&times, 0.99));
            last.push(times.last().copied().unwrap_or_default());
            cpu.push(used);
        }
        println!(
            "| {n} | {} | {} | {} | {} |",
            ms(median(p50)),
            ms(median(p99)),
            ms(median(last)),
            ms(median(cpu))
        );
    }
    drop(chat);
    Ok(())
}

/// One logout to `n` sockets: each socket's time to its disconnect, sorted,
/// and the server's CPU time from the logout to the last disconnect.
async fn one_fanout(
    addr: SocketAddr,
    pid: u32,
    n: usize,
) -> Result<(Vec<Duration>, Duration), String> {
    let mut http = Http::connect(addr).await?;
    let cookie = Arc::new(login_on(&mut http, "fanout").await?);
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let (open_tx, mut open_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = Arc::clone(&gate)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (cookie, open_tx, mut go_rx) = (Arc::clone(&cookie), open_tx.clone(), go_rx.clone());
        tasks.spawn(async move {
            let ws = tokio::time::timeout(CONNECT_DEADLINE, open_websocket(addr, &cookie, None))
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r);
            drop(permit);
            let mut ws = match ws {
                Ok(ws) => {
                    let _ = open_tx.send(Ok(()));
                    ws
                }
                Err(e) => {
                    let _ = open_tx.send(Err(e));
                    return None;
                }
            };
            drop(open_tx);
            // Until the disconnect (or the connection's end), answering pings.
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                        let _ = ws.send(Message::text("3")).await;
                    }
                    Some(Ok(Message::Text(t))) if t.as_str() == "41" => break,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
            let at = Instant::now();
            let sent = *go_rx.wait_for(Option::is_some).await.ok()?;
            sent.map(|s| at.saturating_duration_since(s))
        });
    }
    drop(open_tx);
    for _ in 0..n {
        match open_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("a socket did not open: {e}")),
            None => return Err("the sockets' tasks ended early".into()),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu0 = procs::cpu_time(pid);
    let origin = format!("http://{addr}");
    let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let _ = go_tx.send(Some(Instant::now()));
    let res = http.request("POST", "/logout", &headers, b"").await?;
    if res.status != 303 && res.status != 302 {
        return Err(format!("POST /logout answered {}", res.status));
    }
    let mut times = Vec::with_capacity(n);
    let all = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(Some(t)) = r {
                times.push(t);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .map_err(|_| "the sockets were not all disconnected within 60 s".to_owned())?;
    let cpu = procs::cpu_time(pid).saturating_sub(cpu0);
    if times.len() != n {
        return Err(format!("{} of {n} sockets saw the disconnect", times.len()));
    }
    times.sort();
    Ok((times, cpu))
}

// ---- stream ------------------------------------------------------------

/// A raw RESP connection to Redis, for writes "behind the chat's back".
struct Resp {
    io: tokio::io::BufReader<tokio::net::TcpStream>,
}

impl Resp {
    async fn connect(url: &str) -> Result<Resp, String> {
        let addr = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Resp {
            io: tokio::io::BufReader::new(tcp),
        })
    }

    fn command(buf: &mut Vec<u8>, args: &[&[u8]]) {
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
    }

    /// Sends the pipelined commands in `buf` and reads `n` replies: bulk
    /// strings (`None` for nil) or simple replies (`Some` of the line).
    async fn pipeline(&mut self, buf: &[u8], n: usize) -> Result<Vec<Option<Vec<u8>>>, String> {
        use tokio::io::AsyncBufReadExt;
        self.io
            .get_mut()
            .write_all(buf)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(n);
        let mut line = String::new();
        for _ in 0..n {
            line.clear();
            self.io
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if let Some(len) = l.strip_prefix('$') {
                let Ok(len) = len.parse::<i64>() else {
                    return Err(format!("bad reply {l:?}"));
                };
                let Ok(len) = usize::try_from(len) else {
                    out.push(None);
                    continue;
                };
                let mut v = vec![0; len + 2];
                self.io
                    .read_exact(&mut v)
                    .await
                    .map_err(|e| e.to_string())?;
                v.truncate(len);
                out.push(Some(v));
            } else if l.starts_with('-') {
                return Err(format!("Redis: {l}"));
            } else {
                out.push(Some(l.as_bytes().to_vec()));
            }
        }
        Ok(out)
    }
}

/// The session id in a `connect.sid=s%3A<id>.<signature>` pair.
fn sid_of(cookie: &str) -> Option<String> {
    let value = cookie.strip_prefix("connect.sid=")?;
    let value = value.strip_prefix("s%3A").or(value.strip_prefix("s:"))?;
    let (id, _) = value.rsplit_once('.')?;
    Some(id.to_owned())
}

/// Calls `whoami` on `ws` and returns the session data it acks.
async fn whoami(ws: &mut Ws, ack: u64) -> Result<Value, String> {
    ws.send(Message::text(format!("42{ack}[\"whoami\"]")))
        .await
        .map_err(|e| e.to_string())?;
    let prefix = format!("43{ack}");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let t = t.as_str();
                if let Some(rest) = t.strip_prefix(&prefix) {
                    let v: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
                    return Ok(v.get(0).cloned().unwrap_or(Value::Null));
                }
                if t == "2" {
                    ws.send(Message::text("3"))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Some(Ok(_)) => {}
            _ => return Err("the probe socket closed".into()),
        }
    }
}

/// How many sessions probe the lag.
const PROBES: usize = 16;

async fn stream(n: usize, rates: &[usize], secs: u64) -> Result<(), String> {
    check(n, "--sessions")?;
    if n < PROBES * 2 {
        return Err(format!("--sessions must be at least {}", PROBES * 2));
    }
    if !(1..=600).contains(&secs) {
        return Err("--secs must be between 1 and 600".into());
    }
    let (_redis, url) = procs::redis()?;
    let metrics = procs::free_port()?;
    let metrics_addr = format!("127.0.0.1:{metrics}");
    let (chat, addr) = procs::chat(&[
        "--secret",
        SECRET,
        "--redis",
        &url,
        "--metrics",
        &metrics_addr,
    ])?;
    // A session and a socket each.
    let mut http = Http::connect(addr).await?;
    let mut cookies = Vec::with_capacity(n);
    for i in 0..n {
        cookies.push(login_on(&mut http, &format!("user{i}")).await?);
    }
    let ids: Vec<String> = cookies
        .iter()
        .map(|c| sid_of(c).ok_or_else(|| format!("unexpected cookie {c:.20}..")))
        .collect::<Result<_, _>>()?;
    let mut probes = Vec::with_capacity(PROBES);
    for cookie in &cookies[..PROBES] {
        probes.push(open_websocket(addr, cookie, None).await?);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    let mut holders = tokio::task::JoinSet::new();
    let (open_tx, mut open_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    for cookie in cookies.iter().skip(PROBES) {
        let permit = Arc::clone(&gate)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (cookie, open_tx, mut stop) = (cookie.clone(), open_tx.clone(), stop_rx.clone());
        holders.spawn(async move {
            let ws = tokio::time::timeout(CONNECT_DEADLINE, open_websocket(addr, &cookie, None))
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r);
            drop(permit);
            let mut ws = match ws {
                Ok(ws) => {
                    let _ = open_tx.send(Ok(()));
                    ws
                }
                Err(e) => {
                    let _ = open_tx.send(Err(e));
                    return;
                }
            };
            drop(open_tx);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                            if ws.send(Message::text("3")).await.is_err() { break; }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
        });
    }
    drop(open_tx);
    for _ in PROBES..n {
        match open_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("a socket did not open: {e}")),
            None => return Err("the sockets' tasks ended early".into()),
        }
    }
    // Each record as stored, to rewrite.
    let mut redis = Resp::connect(&url).await?;
    let mut records = Vec::with_capacity(n);
    for chunk in ids.chunks(500) {
        let mut buf = Vec::new();
        for id in chunk {
            Resp::command(
                &mut buf,
                &[b"GET".as_slice(), format!("sess:{id}").as_bytes()],
            );
        }
        for v in redis.pipeline(&buf, chunk.len()).await? {
            let v = v.ok_or("a session's record is missing in Redis")?;
            let rec: Value = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
            records.push(rec);
        }
    }
    let mut probe_redis = Resp::connect(&url).await?;
    println!(
        "{n} sessions with a socket each on one chat (RedisStore, --metrics); records rewritten \
         in Redis by another process, round robin; lag: a write to a probe session until its \
         socket's whoami shows it ({PROBES} probe sessions)\n"
    );
    println!(
        "| changes/s sent | store events/s handled | reloads/s | server CPU | CPU us per event | lag p50 ms | lag p99 ms | probes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (probe_records, records) = records.split_at_mut(PROBES);
    let mut next = 0usize;
    let mut version = 0u64;
    for &rate in rates {
        if !(1..=200_000).contains(&rate) {
            return Err("each rate must be between 1 and 200000".into());
        }
        let counters0 = scrape(metrics).await?;
        let cpu0 = procs::cpu_time(chat.pid());
        let started = Instant::now();
        let until = started + Duration::from_secs(secs);
        let mut sent = 0usize;
        let mut lags = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut probe_at = Instant::now();
        let mut probe = 0usize;
        let writer = async {
            while Instant::now() < until {
                tick.tick().await;
                let due = (started.elapsed().as_secs_f64() * rate as f64) as usize;
                if due <= sent {
                    continue;
                }
                let mut buf = Vec::new();
                let batch = (due - sent).min(rate);
                for _ in 0..batch {
                    version += 1;
                    let i = next;
                    next = (next + 1) % records.len();
                    records[i]["n"] = json!(version);
                    let body = serde_json::to_vec(&records[i]).map_err(|e| e.to_string())?;
                    let key = format!("sess:{}", ids[PROBES + i]);
                    Resp::command(
                        &mut buf,
                        &[b"SET".as_slice(), key.as_bytes(), &body, b"EX", b"86400"],
                    );
                }
                redis.pipeline(&buf, batch).await?;
                sent += batch;
            }
            Ok::<(), String>(())
        };
        let prober = async {
            while Instant::now() + Duration::from_millis(500) < until {
                tokio::time::sleep_until((probe_at + Duration::from_millis(50)).into()).await;
                probe_at = Instant::now();
                let i = probe % PROBES;
                probe += 1;
                probe_records[i]["probe"] = json!(probe);
                let body = serde_json::to_vec(&probe_records[i]).map_err(|e| e.to_string())?;
                let key = format!("sess:{}", ids[i]);
                let mut buf = Vec::new();
                Resp::command(
                    &mut buf,
                    &[b"SET".as_slice(), key.as_bytes(), &body, b"EX", b"86400"],
                );
                let t0 = Instant::now();
                probe_redis.pipeline(&buf, 1).await?;
                let deadline = t0 + Duration::from_secs(5);
                let mut ack = 0;
                loop {
                    ack += 1;
                    let me = whoami(&mut probes[i], ack).await?;
                    if me["probe"] == json!(probe) {
                        lags.push(t0.elapsed());
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err("a probe saw no change within 5 s".into());
                    }
                }
            }
            Ok::<(), String>(())
        };
        let (w, p) = futures_util::future::join(writer, prober).await;
        w?;
        p?;
        let wall = started.elapsed().as_secs_f64();
        // Let the last events land before reading the counters.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu = procs::cpu_time(chat.pid()).saturating_sub(cpu0);
        let counters1 = scrape(metrics).await?;
        let delta = |name: &str| {
            counters1.get(name).copied().unwrap_or(0.0)
                - counters0.get(name).copied().unwrap_or(0.0)
        };
        let events = delta("written");
        let reloads = delta("reload");
        lags.sort();
        println!(
            "| {:.0} | {:.0} | {:.0} | {:.0} % | {:.1} | {} | {} | {} |",
            sent as f64 / wall,
            events / wall,
            reloads / wall,
            cpu.as_secs_f64() / wall * 100.0,
            cpu.as_secs_f64() * 1e6 / events.max(1.0),
            ms(percentile(&lags, 0.5)),
            ms(percentile(&lags, 0.99)),
            lags.len()
        );
    }
    let _ = stop_tx.send(true);
    while holders.join_next().await.is_some() {}
    for mut p in probes {
        let _ = p.close(None).await;
    }
    drop(chat);
    Ok(())
}

/// The chat's counters of store events (`written`) and finished reloads
/// (`reload`), from its Prometheus endpoint.
async fn scrape(port: u16) -> Result<std::collections::HashMap<String, f64>, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut http = Http::connect(addr).await?;
    let res = http.request("GET", "/metrics", &[], b"").await?;
    let body = String::from_utf8_lossy(&res.body);
    let mut out = std::collections::HashMap::new();
    for line in body.lines() {
        let value = || line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if line.starts_with("session_sockets_store_events_total")
            && line.contains("kind=\"written\"")
        {
            *out.entry("written".to_owned()).or_insert(0.0) += value().unwrap_or(0.0);
        } else if line.starts_with("session_sockets_operations_total")
            && line.contains("op=\"reload\"")
        {
            *out.entry("reload".to_owned()).or_insert(0.0) += value().unwrap_or(0.0);
        }
    }
    Ok(out)
}
