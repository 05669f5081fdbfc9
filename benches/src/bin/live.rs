//! How fast sockets follow their session across processes (R32): two chat
//! nodes on one redis-server (default settings; the chat turns keyspace
//! notifications on), and for each trial a fresh login on node A and a
//! WebSocket on node B.
//!
//! - destroy -> disconnect: from sending `POST /logout` to node A until the
//!   socket on node B has its `session_ended` event (and until its
//!   namespace disconnect, `41`, on which a socket.io client closes);
//! - HTTP write -> seen: from sending `POST /api/incr` to node A until a
//!   `whoami` on node B shows the new counter (whoami round trips included:
//!   an upper bound).
//!
//! ```text
//! cargo build --release --bin chat --bin live && target/release/live [--trials 200]
//! ```
//!
//! Loopback only; bounded (each trial has a 5 s deadline).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use session_sockets_benches::client::{Http, Ws, login_as, open_websocket};
use session_sockets_benches::procs;
use tokio_tungstenite::tungstenite::Message;

fn main() -> ExitCode {
    let trials = std::env::args()
        .skip_while(|a| a != "--trials")
        .nth(1)
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .unwrap_or(200);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("live: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(trials)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("live: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(trials: usize) -> Result<(), String> {
    let (_redis, url) = procs::redis()?;
    let secret = "live bench secret";
    let (_a, a) = procs::chat(&["--secret", secret, "--redis", &url])?;
    let (_b, b) = procs::chat(&["--secret", secret, "--redis", &url])?;
    let mut ended = Vec::new();
    let mut closed = Vec::new();
    let mut seen = Vec::new();
    for i in 0..trials {
        let (e, c) = tokio::time::timeout(Duration::from_secs(5), destroy_trial(a, b, i))
            .await
            .map_err(|_| format!("destroy trial {i} took over 5 s"))??;
        ended.push(e);
        closed.push(c);
        let s = tokio::time::timeout(Duration::from_secs(5), write_trial(a, b, i))
            .await
            .map_err(|_| format!("write trial {i} took over 5 s"))??;
        seen.push(s);
    }
    println!("{trials} trials each, two chat nodes on one redis-server, loopback\n");
    println!("| from | to | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (from, to, v) in [
        (
            "POST /logout on node A",
            "session_ended on node B",
            &mut ended,
        ),
        (
            "POST /logout on node A",
            "disconnect (`41`) on node B",
            &mut closed,
        ),
        (
            "POST /api/incr on node A",
            "whoami on node B shows it",
            &mut seen,
        ),
    ] {
        v.sort();
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
        println!(
            "| {from} | {to} | {:.2} ms | {:.2} ms | {:.2} ms |",
            p(0.5),
            p(0.99),
            p(1.0)
        );
    }
    Ok(())
}

async fn connected(a: SocketAddr, b: SocketAddr, name: &str) -> Result<(String, Ws), String> {
    let cookie = login_as(a, name).await?;
    let ws = open_websocket(b, &cookie, None).await?;
    Ok((cookie, ws))
}

async fn post(addr: SocketAddr, path: &str, cookie: &str) -> Result<Vec<u8>, String> {
    let origin = format!("http://{addr}");
    let mut http = Http::connect(addr).await?;
    let res = http
        .request(
            "POST",
            path,
            &[("cookie", cookie), ("origin", &origin)],
            b"",
        )
        .await?;
    if res.status >= 400 {
        return Err(format!("POST {path} answered {}", res.status));
    }
    Ok(res.body)
}

/// Logout on A; how long until B's socket is told, and until it closes.
async fn destroy_trial(
    a: SocketAddr,
    b: SocketAddr,
    i: usize,
) -> Result<(Duration, Duration), String> {
    let (cookie, mut ws) = connected(a, b, &format!("d{i}")).await?;
    let t0 = Instant::now();
    post(a, "/logout", &cookie).await?;
    let mut told = None;
    // socket.io's namespace disconnect (`41`) is what a client acts on: a
    // socket.io client closes its connection once no namespace is left.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().starts_with("42[\"session_ended\"") => {
                told = Some(t0.elapsed());
            }
            Some(Ok(Message::Text(t))) if t.as_str() == "41" => break,
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                let _ = ws.send(Message::text("3")).await;
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    let closed = t0.elapsed();
    let _ = ws.close(None).await;
    Ok((
        told.ok_or("no session_ended event before the close")?,
        closed,
    ))
}

/// An HTTP write on A; how long until a socket on B sees it.
async fn write_trial(a: SocketAddr, b: SocketAddr, i: usize) -> Result<Duration, String> {
    let (cookie, mut ws) = connected(a, b, &format!("w{i}")).await?;
    let t0 = Instant::now();
    let body = post(a, "/api/incr", &cookie).await?;
    let want = String::from_utf8_lossy(&body).into_owned(); // {"counter":1}
    let want = want
        .trim()
        .strip_prefix("{\"counter\":")
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("unexpected /api/incr answer {want:?}"))?
        .to_owned();
    let mut ack = 0u32;
    loop {
        ack += 1;
        ws.send(Message::text(format!("42{ack}[\"whoami\"]")))
            .await
            .map_err(|e| e.to_string())?;
        let reply = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with(&format!("43{ack}[")) => {
                    break t.as_str().to_owned();
                }
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    let _ = ws.send(Message::text("3")).await;
                }
                Some(Ok(_)) => {}
                other => return Err(format!("the socket closed: {other:?}")),
            }
        };
        if reply.contains(&format!("\"counter\":{want}")) {
            let _ = ws.close(None).await;
            return Ok(t0.elapsed());
        }
    }
}
