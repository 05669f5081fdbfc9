//! A socket.io load generator for the end-to-end comparison: logs in once
//! over HTTP, then opens connections that carry the session cookie through
//! the whole Engine.IO 4 / Socket.IO 5 handshake, over WebSocket or
//! polling-first (then upgraded, as browsers do), answering pings.
//!
//! ```text
//! loadgen --url http://127.0.0.1:PORT connect [--count 1000] [--concurrency 1] [--transport websocket|polling]
//! loadgen --url http://127.0.0.1:PORT hold --count 10000 [--hold-secs 10] [--ready-file PATH] [--session-each]
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
//! `--session-each`, each connection first logs in as a user of its own
//! (one session per socket, rather than one session for all). `logins` sends
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

use futures_util::{SinkExt, StreamExt};
use session_sockets_benches::client::{Http, login, login_as, open_polling, open_websocket};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

const USAGE: &str = "\
usage: loadgen --url http://127.0.0.1:PORT connect [--count N] [--concurrency C] [--transport websocket|polling] [--timeout SECS]
       loadgen --url http://127.0.0.1:PORT hold --count N [--hold-secs S] [--ready-file PATH] [--session-each] [--timeout SECS]
       loadgen --url http://127.0.0.1:PORT logins --count N [--concurrency C] [--timeout SECS]";

/// Deadline for one connection's handshake.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Connect,
    Hold,
    Logins,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    WebSocket,
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
    timeout: Duration,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut url = None;
    let mut mode = None;
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        mode: Mode::Connect,
        count: 1000,
        concurrency: 1,
        transport: Transport::WebSocket,
        hold_secs: 10,
        ready_file: None,
        session_each: false,
        timeout: Duration::from_secs(120),
    };
    let number = |flag: &str, v: Option<String>| -> Result<u64, String> {
        v.as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{flag} needs a positive whole number\n\n{USAGE}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--url" => url = it.next(),
            "--count" => args.count = number("--count", it.next())? as usize,
            "--concurrency" => args.concurrency = number("--concurrency", it.next())? as usize,
            "--hold-secs" => args.hold_secs = number("--hold-secs", it.next())?,
            "--timeout" => args.timeout = Duration::from_secs(number("--timeout", it.next())?),
            "--ready-file" => args.ready_file = it.next(),
            "--session-each" => args.session_each = true,
            "--transport" => {
                args.transport = match it.next().as_deref() {
                    Some("websocket") => Transport::WebSocket,
                    Some("polling") => Transport::Polling,
                    _ => return Err(format!("--transport is websocket or polling\n\n{USAGE}")),
                }
            }
            "connect" | "hold" | "logins" => mode = Some(a),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| format!("--url is required\n\n{USAGE}"))?;
    let host = url
        .strip_prefix("http://")
        .ok_or_else(|| "--url must be http://127.0.0.1:PORT (loopback only)".to_owned())?;
    args.addr = host
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| a.ip().is_loopback())
        .ok_or_else(|| "--url must be http://127.0.0.1:PORT (loopback only)".to_owned())?;
    args.mode = match mode.as_deref() {
        Some("hold") => Mode::Hold,
        Some("logins") => Mode::Logins,
        Some(_) => Mode::Connect,
        None => return Err(format!("say connect, hold or logins\n\n{USAGE}")),
    };
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
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
        let (addr, cookie) = (args.addr, Arc::clone(&cookie));
        let (ready, mut done) = (ready_tx.clone(), done_tx.subscribe());
        let own_session = args.session_each;
        tasks.spawn(async move {
            let open = async {
                let cookie = match own_session {
                    true => Arc::new(login_as(addr, &format!("user{n}")).await?),
                    false => cookie,
                };
                open_websocket(addr, &cookie, None).await
            };
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
        Transport::WebSocket => {
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
