//! A socket.io load generator for the end-to-end comparison: logs in once
//! over HTTP, then opens connections that carry the session cookie through
//! the whole Engine.IO 4 / Socket.IO 5 handshake, over WebSocket or
//! polling-first (then upgraded, as browsers do), answering pings.
//!
//! ```text
//! loadgen --url http://127.0.0.1:PORT connect [--count 1000] [--concurrency 1] [--transport websocket|polling]
//! loadgen --url http://127.0.0.1:PORT hold --count 10000 [--hold-secs 10] [--ready-file PATH] [--session-each] [--sources 1]
//! loadgen --url http://127.0.0.1:PORT logins --count 100000 [--concurrency 32]
//! ```
//!
//! `connect` opens `--count` connections, `--concurrency` at a time, each
//! closed as soon as its namespace connect is acknowledged (`40{"sid":..}`),
//! and prints one JSON line: counts, connections per second, and connect
//! latency percentiles (from the TCP connect to the acknowledgement).
//! `hold` opens `--count` WebSocket connections, keeps them open answering
//! pings, writes `--ready-file` once all are connected (so a script can read
//! the server's memory), waits `--hold-secs` and closes them; with
//! `--session-each`, each connection logs in as a user of its own first
//! (one session per socket, rather than one session for all; the logins go
//! one after the other on one keep-alive connection), and with `--sources
//! N` the sockets come from N loopback addresses, 127.0.0.1 to 127.0.0.N
//! (one address has about 28,000 ephemeral ports). `logins` sends
//! `--count` anonymous `POST /login` requests (a login flood), each worker on
//! one keep-alive connection, and prints how many got each status.
//!
//! Bounded: loopback URLs only, every connection has a 10 s deadline, and
//! the whole run `--timeout` seconds (default 120). It runs on one thread
//! (a current-thread tokio runtime) so it can be pinned to one core, away
//! from the server under test.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use session_sockets_benches::client::{
    Http, login, login_on, open_polling, open_websocket, open_websocket_from,
};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Deadline for one connection's handshake.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Connect,
    Hold,
    Logins,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Websocket,
    Polling,
}

struct Args {
    addr: SocketAddr,
    mode: Mode,
    count: usize,
    concurrency: usize,
    transport: Transport,
    hold_secs: u64,
    ready_file: Option<String>,
    session_each: bool,
    sources: u8,
    timeout: Duration,
}

/// A socket.io load generator for the end-to-end benchmarks (loopback only).
#[derive(Parser)]
#[command(
    version,
    about = "A socket.io load generator for the end-to-end benchmarks (loopback only)"
)]
struct Cli {
    /// The server under test: `http://127.0.0.1:PORT` (loopback only).
    #[arg(long, global = true, value_name = "URL", value_parser = loopback)]
    url: Option<SocketAddr>,
    /// Give up on the whole run after this many seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120, value_parser = positive)]
    timeout: u64,
    #[command(subcommand)]
    mode: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open connections through the handshake, some at a time, and report
    /// connections/s and latency.
    Connect {
        /// How many connections.
        #[arg(long, default_value_t = 1000, value_parser = positive)]
        count: u64,
        /// How many at a time.
        #[arg(long, default_value_t = 1, value_parser = positive)]
        concurrency: u64,
        /// The transport the client starts with.
        #[arg(long, value_enum, default_value_t = Transport::Websocket)]
        transport: Transport,
    },
    /// Open WebSocket connections and hold them, answering pings.
    Hold {
        /// How many connections.
        #[arg(long, value_parser = positive)]
        count: u64,
        /// How long to hold them.
        #[arg(long, default_value_t = 10, value_parser = positive)]
        hold_secs: u64,
        /// A file written (with the number open) once every socket is open.
        #[arg(long, value_name = "PATH")]
        ready_file: Option<String>,
        /// A login (a session) per socket, instead of one for all.
        #[arg(long)]
        session_each: bool,
        /// Open the sockets from this many loopback source addresses
        /// (127.0.0.1 to 127.0.0.N), for more than ~28,000 sockets.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=250))]
        sources: u8,
    },
    /// Anonymous `POST /login` requests: a login flood.
    Logins {
        /// How many logins.
        #[arg(long, value_parser = positive)]
        count: u64,
        /// How many workers, each on one keep-alive connection.
        #[arg(long, default_value_t = 1, value_parser = positive)]
        concurrency: u64,
    },
}

/// A loopback `http://IP:PORT`.
fn loopback(url: &str) -> Result<SocketAddr, String> {
    url.strip_prefix("http://")
        .and_then(|host| host.parse::<SocketAddr>().ok())
        .filter(|a| a.ip().is_loopback())
        .ok_or_else(|| "must be http://127.0.0.1:PORT (loopback only)".to_owned())
}

fn positive(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "needs a positive whole number".to_owned())
}

/// Counts from the command line, as this platform's sizes.
fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn parse_args() -> Result<Args, String> {
    let cli = Cli::parse();
    let addr = cli.url.ok_or("--url http://127.0.0.1:PORT is required")?;
    let mut args = Args {
        addr,
        mode: Mode::Connect,
        count: 1000,
        concurrency: 1,
        transport: Transport::Websocket,
        hold_secs: 10,
        ready_file: None,
        session_each: false,
        sources: 1,
        timeout: Duration::from_secs(cli.timeout),
    };
    match cli.mode {
        Command::Connect {
            count,
            concurrency,
            transport,
        } => {
            (args.count, args.concurrency, args.transport) =
                (size(count), size(concurrency), transport);
        }
        Command::Hold {
            count,
            hold_secs,
            ready_file,
            session_each,
            sources,
        } => {
            args.mode = Mode::Hold;
            (
                args.count,
                args.hold_secs,
                args.ready_file,
                args.session_each,
                args.sources,
            ) = (size(count), hold_secs, ready_file, session_each, sources);
        }
        Command::Logins { count, concurrency } => {
            args.mode = Mode::Logins;
            (args.count, args.concurrency) = (size(count), size(concurrency));
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = args.timeout;
    match rt.block_on(async { tokio::time::timeout(timeout, run(args)).await }) {
        Ok(Ok(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("loadgen: the run took longer than --timeout ({timeout:?})");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<String, String> {
    if args.mode == Mode::Logins {
        return logins(&args).await;
    }
    let cookie = Arc::new(login(args.addr).await?);
    match args.mode {
        Mode::Hold => hold(&args, cookie).await,
        _ => connect_all(&args, cookie).await,
    }
}

/// `--count` anonymous logins, `--concurrency` workers on one keep-alive
/// connection each (a new one after an error).
async fn logins(args: &Args) -> Result<String, String> {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.min(args.count) {
        let (addr, next, count) = (args.addr, Arc::clone(&next), args.count);
        tasks.spawn(async move {
            let mut statuses: Vec<(u16, usize)> = Vec::new();
            let mut http = None;
            let origin = format!("http://{addr}");
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let conn = match &mut http {
                    Some(c) => c,
                    None => match Http::connect(addr).await {
                        Ok(c) => http.insert(c),
                        Err(_) => {
                            bump(&mut statuses, 0);
                            continue;
                        }
                    },
                };
                let headers = [
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("origin", origin.as_str()),
                ];
                match conn
                    .request("POST", "/login", &headers, b"name=flood")
                    .await
                {
                    Ok(r) => bump(&mut statuses, r.status),
                    Err(_) => {
                        bump(&mut statuses, 0);
                        http = None;
                    }
                }
            }
            statuses
        });
    }
    let mut all: Vec<(u16, usize)> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        for (status, n) in r.map_err(|e| e.to_string())? {
            for _ in 0..n {
                bump(&mut all, status);
            }
        }
    }
    all.sort();
    let secs = started.elapsed().as_secs_f64();
    let by_status: Vec<String> = all.iter().map(|(s, n)| format!("\"{s}\":{n}")).collect();
    Ok(format!(
        "{{\"seconds\":{secs:.3},\"per_second\":{:.1},\"status\":{{{}}}}}",
        args.count as f64 / secs.max(1e-9),
        by_status.join(",")
    ))
}

fn bump(counts: &mut Vec<(u16, usize)>, status: u16) {
    match counts.iter_mut().find(|(s, _)| *s == status) {
        Some((_, n)) => *n += 1,
        None => counts.push((status, 1)),
    }
}

async fn connect_all(args: &Args, cookie: Arc<String>) -> Result<String, String> {
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.count {
        let permit = Arc::clone(&gate)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (addr, cookie, transport) = (args.addr, Arc::clone(&cookie), args.transport);
        tasks.spawn(async move {
            let t0 = Instant::now();
            let ok = tokio::time::timeout(CONNECT_DEADLINE, connect_once(addr, &cookie, transport))
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r);
            drop(permit);
            ok.map(|()| t0.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(args.count);
    let mut failed = 0usize;
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(d)) => latencies.push(d),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    Ok(format!(
        "{{\"ok\":{},\"failed\":{failed},\"seconds\":{secs:.3},\"per_second\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"first_error\":{}}}",
        latencies.len(),
        latencies.len() as f64 / secs.max(1e-9),
        pct(0.50),
        pct(0.99),
        json_string(first_error.as_deref()),
    ))
}

async fn hold(args: &Args, cookie: Arc<String>) -> Result<String, String> {
    // A session each: the logins first, one after the other on one
    // keep-alive connection (a connection per login would leave as many
    // ports in TIME_WAIT).
    let mut cookies = Vec::new();
    if args.session_each {
        let mut http = Http::connect(args.addr).await?;
        for n in 0..args.count {
            let cookie = login_on(&mut http, &format!("user{n}"))
                .await
                .map_err(|e| format!("login {n}: {e}"))?;
            cookies.push(Arc::new(cookie));
        }
    }
    let gate = Arc::new(Semaphore::new(args.concurrency.max(50)));
    let (done_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..args.count {
        let permit = Arc::clone(&gate)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let addr = args.addr;
        let cookie = Arc::clone(cookies.get(n).unwrap_or(&cookie));
        let from = (args.sources > 1).then(|| {
            let last = u8::try_from(n % usize::from(args.sources)).unwrap_or(0);
            std::net::IpAddr::from([127, 0, 0, 1 + last])
        });
        let (ready, mut done) = (ready_tx.clone(), done_tx.subscribe());
        tasks.spawn(async move {
            let open = open_websocket_from(addr, &cookie, None, from);
            let ws = tokio::time::timeout(CONNECT_DEADLINE, open)
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r);
            drop(permit);
            let outcome = ws.as_ref().map(|_| ()).map_err(Clone::clone);
            let _ = ready.send(outcome);
            drop(ready);
            let Ok(mut ws) = ws else {
                return;
            };
            // Answer pings until told to stop.
            loop {
                tokio::select! {
                    _ = done.recv() => break,
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                            if ws.send(Message::text("3")).await.is_err() { break; }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
            let _ = ws.close(None).await;
        });
    }
    drop(ready_tx);
    let (mut open, mut failed, mut first_error) = (0usize, 0usize, None);
    for _ in 0..args.count {
        let Some(r) = ready_rx.recv().await else {
            break;
        };
        match r {
            Ok(()) => open += 1,
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{open}\n"))
            .map_err(|e| format!("--ready-file {path}: {e}"))?;
    }
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let _ = done_tx.send(());
    while tasks.join_next().await.is_some() {}
    Ok(format!(
        "{{\"open\":{open},\"failed\":{failed},\"seconds_to_open\":{secs:.3},\"first_error\":{}}}",
        json_string(first_error.as_deref())
    ))
}

fn json_string(s: Option<&str>) -> String {
    match s {
        None => "null".to_owned(),
        Some(s) => {
            let escaped: String = s
                .chars()
                .map(|c| match c {
                    '"' | '\\' => format!("\\{c}"),
                    c if c.is_control() => " ".to_owned(),
                    c => c.to_string(),
                })
                .collect();
            format!("\"{escaped}\"")
        }
    }
}

async fn connect_once(addr: SocketAddr, cookie: &str, transport: Transport) -> Result<(), String> {
    match transport {
        Transport::Websocket => {
            let mut ws = open_websocket(addr, cookie, None).await?;
            let _ = ws.close(None).await;
        }
        Transport::Polling => {
            let (sid, _http) = open_polling(addr, cookie).await?;
            // Upgrade, as browsers do, then close.
            let mut ws = open_websocket(addr, cookie, Some(&sid)).await?;
            let _ = ws.close(None).await;
        }
    }
    Ok(())
}
