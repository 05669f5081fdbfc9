//! Starts each example server (`ws-smol`, `ws-async-std`) on a free
//! loopback port with a seeded session, and drives it with a real
//! WebSocket client sending the signed cookie as a browser does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::{Error, Message};
use futures_lite::{FutureExt, StreamExt};
use session_sockets::core::codec::signature::sign_cookie;

const SECRET: &str = "ws example secret";
const SID: &str = "0123456789abcdefghijABCDEFGHIJ-_";
const RECORD: &str = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ada","room":"lobby"}"#;

/// The server process; killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str) -> Server {
    let mut child = Command::new(bin)
        .args(["--addr", "127.0.0.1:0", "--secret", SECRET])
        .args([
            "--origin",
            "https://app.example",
            "--head-timeout-ms",
            "300",
        ])
        .args(["--seed-session", &format!("{SID}={RECORD}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, addr }
}

/// The cookie as a browser sends it: express-session's value,
/// `encodeURIComponent`-ed (`s:` becomes `s%3A`).
fn browser_cookie(sid: &str, secret: &str) -> String {
    let value = sign_cookie(sid, secret)
        .replace('%', "%25")
        .replace(':', "%3A")
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    format!("theme=dark; connect.sid={value}")
}

type Ws = async_tungstenite::WebSocketStream<smol::net::TcpStream>;

async fn connect(addr: &str, cookie: Option<&str>, origin: Option<&str>) -> Result<Ws, Error> {
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    if let Some(c) = cookie {
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(c).unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).unwrap());
    }
    let tcp = smol::net::TcpStream::connect(addr).await.unwrap();
    async_tungstenite::client_async(req, tcp)
        .await
        .map(|(ws, _)| ws)
}

/// The HTTP status and body of a refused upgrade.
fn refusal(result: Result<Ws, Error>) -> (u16, String) {
    match result {
        Err(Error::Http(resp)) => (
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

/// Sends `request` as raw bytes and reads the whole answer.
async fn raw(addr: &str, request: &[u8]) -> String {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = smol::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

async fn whoami(ws: &mut Ws) -> serde_json::Value {
    ws.send(Message::text("whoami")).await.unwrap();
    let msg = ws.next().await.expect("an answer").unwrap();
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

fn drive(bin: &str) {
    let server = start(bin);
    let addr = server.addr.as_str();
    let checks = async {
        // A valid signed cookie: the upgrade succeeds and whoami answers
        // with the session's JSON.
        let cookie = browser_cookie(SID, SECRET);
        let mut ws = connect(addr, Some(&cookie), Some("https://app.example"))
            .await
            .expect("upgrade with a valid session");
        let me = whoami(&mut ws).await;
        assert_eq!(me["user"], "ada");
        assert_eq!(me["room"], "lobby");
        assert_eq!(me["cookie"]["httpOnly"], true);
        assert!(
            !me.to_string().contains(SID),
            "the answer holds no session id"
        );
        ws.send(Message::text("hello")).await.unwrap();
        let msg = ws.next().await.unwrap().unwrap();
        assert!(msg.to_text().unwrap().contains("whoami"));
        ws.close(None).await.unwrap();

        // No cookie, a forged cookie, an unknown session, a foreign origin:
        // HTTP 401 with the reason, and no upgrade.
        let (status, body) = refusal(connect(addr, None, None).await);
        assert_eq!(status, 401);
        assert!(body.starts_with("no_cookie_header:"), "{body}");
        let forged = browser_cookie(SID, "another secret");
        let (status, body) = refusal(connect(addr, Some(&forged), None).await);
        assert_eq!(status, 401);
        assert!(body.starts_with("signature_invalid:"), "{body}");
        // R35: a hint for the person at the browser; what to check (the
        // secret) is the operator's, in the log.
        assert!(body.contains("not valid here"), "{body}");
        assert!(!body.contains("secret"), "{body}");
        let unknown = browser_cookie("no-such-session", SECRET);
        let (status, body) = refusal(connect(addr, Some(&unknown), None).await);
        assert_eq!(status, 401);
        assert!(body.starts_with("session_not_found:"), "{body}");
        let origin = Some("https://evil.example");
        let (status, body) = refusal(connect(addr, Some(&cookie), origin).await);
        assert_eq!(status, 401);
        assert!(body.starts_with("origin_rejected:"), "{body}");

        // Not an upgrade: 400 saying what this endpoint serves.
        let answer = raw(addr, b"GET / HTTP/1.1\r\nHost: app.example\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(answer.contains("WebSocket upgrades"), "{answer}");
        let answer = raw(addr, b"\x01\x02 garbage\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        // A client that never sends its request head is cut off.
        let start = std::time::Instant::now();
        let answer = raw(addr, b"").await;
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(start.elapsed() >= Duration::from_millis(300));
    };
    let timeout = async {
        smol::Timer::after(Duration::from_secs(20)).await;
        panic!("{bin} did not answer within 20 s");
    };
    smol::block_on(checks.or(timeout));
}

#[test]
fn ws_smol_serves_the_session_of_the_upgrade_request() {
    drive(env!("CARGO_BIN_EXE_ws-smol"));
}

#[test]
fn ws_async_std_serves_the_session_of_the_upgrade_request() {
    drive(env!("CARGO_BIN_EXE_ws-async-std"));
}

#[test]
fn ws_example_refuses_to_start_without_a_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_ws-smol"))
        .args(["--addr", "127.0.0.1:0"])
        .env_remove("SESSION_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SESSION_SECRET"), "{err}");
}

/// The axum route: the session of the upgrade request, held live by the
/// connection; the connections of a session close, with the reason, when
/// it ends (R32); no session, no upgrade.
#[test]
fn ws_axum_connections_hold_a_live_session_and_close_when_it_ends() {
    let server = start(env!("CARGO_BIN_EXE_ws-axum"));
    let addr = server.addr.as_str();
    let origin = Some("https://app.example");
    let checks = async {
        let cookie = browser_cookie(SID, SECRET);
        let mut a = connect(addr, Some(&cookie), origin).await.expect("upgrade");
        let mut b = connect(addr, Some(&cookie), origin).await.expect("upgrade");
        assert_eq!(whoami(&mut a).await["user"], "ada");
        a.send(Message::text("incr")).await.unwrap();
        assert_eq!(a.next().await.unwrap().unwrap().to_text().unwrap(), "1");
        // b follows: a's write shows there without a reload.
        assert_eq!(whoami(&mut b).await["counter"], 1);

        // A logout on one connection ends both, with the reason.
        a.send(Message::text("logout")).await.unwrap();
        assert_eq!(a.next().await.unwrap().unwrap().to_text().unwrap(), "bye");
        for ws in [&mut a, &mut b] {
            let close = loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => break frame,
                    Some(Ok(_)) => continue,
                    other => panic!("expected a close frame, got {other:?}"),
                }
            };
            let frame = close.expect("a close frame with a reason");
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "destroyed");
        }
        // The session is gone: a new upgrade is refused, as one without a
        // cookie is.
        let (status, body) = refusal(connect(addr, Some(&cookie), origin).await);
        assert_eq!(status, 401);
        assert!(body.starts_with("session_not_found: "), "{body}");
        let (status, body) = refusal(connect(addr, None, origin).await);
        assert_eq!(status, 401);
        assert!(body.starts_with("no_cookie_header: "), "{body}");
    };
    let timeout = async {
        smol::Timer::after(Duration::from_secs(20)).await;
        panic!("ws-axum did not answer within 20 s");
    };
    smol::block_on(checks.or(timeout));
}
