//! A plain WebSocket route on axum whose connection holds a live session:
//! the session of the upgrade request is loaded before the upgrade (no
//! session, no upgrade: `401` with the reason and a hint), the connection
//! follows it as the store changes it, and closes with the reason when it
//! ends anywhere (a logout on any server, an Express app's `destroy`,
//! expiry). Text messages: `whoami` answers the session's data as JSON,
//! `incr` adds one to `counter` in the session and answers the new value,
//! `logout` destroys the session (and so closes every connection of it).
//!
//! ```text
//! cargo run --bin ws-axum -- --secret S [--addr 127.0.0.1:3001] [--origin URL]...
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::process::ExitCode;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use session_sockets::runtime::tokio::Tokio;
use session_sockets::{LiveSession, Session, SessionEnd, SessionSockets};
use session_sockets_ws_examples::Options;
use tokio::sync::watch;

/// The largest message a client may send.
const MAX_MESSAGE: usize = 64 * 1024;
/// The close code for "your session ended" (4000-4999: the application's).
const SESSION_ENDED: u16 = 4001;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let sessions = match options.sockets(Tokio).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let app = axum::Router::new()
        .route("/", get(upgrade))
        .with_state(sessions);
    let listener = match tokio::net::TcpListener::bind(&options.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on ws://{addr}"),
        Err(e) => eprintln!("listening (address unknown: {e})"),
    }
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The upgrade: the session first (Origin, cookie, signature, store), then
/// the WebSocket, which is handed the live session and a receiver of its
/// end.
async fn upgrade(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    State(sessions): State<SessionSockets<Tokio>>,
) -> Response {
    let (ended, end) = watch::channel(None);
    let live = sessions
        .live_session(&headers, move |why| {
            let _ = ended.send(Some(why));
        })
        .await;
    match live {
        Ok(live) => ws
            .max_message_size(MAX_MESSAGE)
            .on_upgrade(move |socket| connection(socket, live, end))
            .into_response(),
        Err(e) => {
            let status = match e.fault() {
                fault if fault.needs_operator() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            // The reason and a hint; the detail is in the log (R35).
            (status, format!("{}: {}", e.reason(), e.hint())).into_response()
        }
    }
}

/// One connection, until the client goes or its session ends.
async fn connection(
    mut socket: WebSocket,
    session: LiveSession<Tokio>,
    mut end: watch::Receiver<Option<SessionEnd>>,
) {
    loop {
        tokio::select! {
            ended = ended(&mut end) => {
                let why = ended;
                let reason = why.map_or("ended", SessionEnd::reason);
                let frame = CloseFrame { code: SESSION_ENDED, reason: reason.into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
            message = socket.recv() => {
                let Some(Ok(Message::Text(text))) = message else {
                    // Closed, an error, or a kind this example ignores.
                    if matches!(message, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) {
                        return;
                    }
                    continue;
                };
                let answer = answer(&session, text.as_str()).await;
                if socket.send(Message::text(answer)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Why the session ended, once it has (`None`: the handle went away).
async fn ended(end: &mut watch::Receiver<Option<SessionEnd>>) -> Option<SessionEnd> {
    end.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|why| *why)
}

/// The answer to one text message.
async fn answer(session: &LiveSession<Tokio>, text: &str) -> String {
    match text {
        "whoami" => serde_json::Value::Object(session.data()).to_string(),
        "incr" => match session.update(add_one).await {
            Ok(n) => n.to_string(),
            Err(e) => serde_json::json!({ "error": e.reason(), "message": e.hint() }).to_string(),
        },
        "logout" => match session.destroy().await {
            // The close follows, from the session's end.
            Ok(()) => "bye".to_owned(),
            Err(e) => serde_json::json!({ "error": e.reason(), "message": e.hint() }).to_string(),
        },
        _ => "unknown command; try whoami, incr or logout".to_owned(),
    }
}

/// `counter + 1`, re-run on the stored record if another writer came first.
fn add_one(s: &mut Session) -> i64 {
    let n = s
        .get::<i64>("counter")
        .ok()
        .flatten()
        .unwrap_or(0)
        .saturating_add(1);
    let _ = s.insert("counter", n);
    n
}
