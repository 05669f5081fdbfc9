//! The socket.io chat: an HTTP login (axum) and socket.io handlers
//! (socketioxide) sharing one express-session compatible session.
//!
//! ```text
//! cargo run --release --bin chat [-- --port 3000 --secret S --redis redis://127.0.0.1/ --origin https://chat.example]
//! ```
//!
//! - `GET /`: the login form without a session, the chat page with one.
//! - `POST /login` (form field `name`): creates the session, sets the cookie.
//! - `POST /logout`: destroys the session and disconnects its sockets.
//! - `GET /api/session`: the session data as JSON, or 401 with a JSON error.
//! - socket.io namespaces `/` and `/chat`, events `whoami`, `incr`, `message`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use session_sockets::core::{CookieOptions, SameSite, WriteError};
use session_sockets::runtime::tokio::Tokio;
use session_sockets::socketio::{
    SessionMiddleware, SocketSession, check_later_origin, disconnect_session,
};
use session_sockets::{Config, MemoryStore, SessionSockets, Store};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;

/// Used when neither `--secret` nor `SESSION_SECRET` is given. Fine on a
/// laptop, never in production: anyone who knows it can forge sessions.
const DEV_SECRET: &str = "session-sockets chat development secret";
/// Where browsers get the socket.io client when `npm ci` was skipped.
const CDN_CLIENT: &str = "https://cdn.socket.io/4.8.1/socket.io.min.js";
/// The room every chat socket of a namespace joins.
const LOBBY: &str = "lobby";
const MAX_NAME: usize = 32;
const MAX_MESSAGE: usize = 500;

const LOGIN_HTML: &str = include_str!("../assets/login.html");
const CHAT_HTML: &str = include_str!("../assets/chat.html");
const STYLE_CSS: &str = include_str!("../assets/style.css");

const USAGE: &str = "\
usage: chat [--port N] [--secret S] [--redis URL] [--origin URL]...

  --port N        listen on 127.0.0.1:N (default 3000; 0 picks a free port)
  --secret S      the session secret (default: env SESSION_SECRET, else a
                  development secret, with a warning)
  --redis URL     keep sessions in Redis (connect-redis format) instead of
                  in memory, e.g. redis://127.0.0.1:6379/
  --origin URL    allow socket.io connections from this page origin
                  (repeatable; default: same host only)";

struct Args {
    port: u16,
    secret: Option<String>,
    redis: Option<String>,
    origins: Vec<String>,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("port", &self.port)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("redis", &self.redis.as_ref().map(|_| "<redacted>"))
            .field("origins", &self.origins)
            .finish()
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        port: 3000,
        secret: None,
        redis: None,
        origins: Vec::new(),
    };
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                out.port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?} is not a port number (0-65535)"))?;
            }
            "--secret" => out.secret = Some(value("--secret")?),
            "--redis" => out.redis = Some(value("--redis")?),
            "--origin" => out.origins.push(value("--origin")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(out)
}

#[derive(Clone)]
struct App {
    sessions: SessionSockets<Tokio>,
    io: SocketIo,
    client_js: Arc<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let secret = match args.secret {
        Some(s) => s,
        None => match std::env::var("SESSION_SECRET") {
            Ok(s) if !s.is_empty() => s,
            _ => {
                eprintln!(
                    "chat: warning: using the built-in development secret; pass --secret or set \
                     SESSION_SECRET (the same secret as your HTTP app) before exposing this server"
                );
                DEV_SECRET.to_owned()
            }
        },
    };
    // SameSite=Lax: other sites' forms cannot post to /login or /logout with
    // this cookie. One day of life, then the user signs in again.
    let cookie = CookieOptions {
        same_site: Some(SameSite::Lax),
        max_age: Some(Duration::from_secs(24 * 3600)),
        ..CookieOptions::default()
    };
    let mut config = Config::builder().secret(secret).cookie(cookie);
    if !args.origins.is_empty() {
        config = config.allowed_origins(args.origins);
    }
    let config = config
        .build()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    let store: Arc<dyn Store> = match &args.redis {
        Some(url) => Arc::new(
            session_sockets::RedisStore::connect(url)
                .await
                // The error names host and port; the URL may hold a password.
                .map_err(|e| format!("cannot use Redis: {e}"))?,
        ),
        None => Arc::new(MemoryStore::new()),
    };
    let sessions = SessionSockets::new(config, store, Tokio);

    let (layer, io) = SocketIo::new_layer();
    let middleware = SessionMiddleware::required(sessions.clone());
    for ns in ["/", "/chat"] {
        // `.with` runs the last-added middleware first: the session, then
        // the handler registration.
        io.ns(ns, on_connect.with(register).with(middleware.clone()));
    }

    let app = App {
        sessions,
        io,
        client_js: Arc::new(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("node_modules/socket.io-client/dist/socket.io.min.js"),
        ),
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/session", get(api_session))
        .route("/style.css", get(style))
        // Not under /socket.io: socketioxide answers every path with that prefix.
        .route("/js/socket.io.min.js", get(client_js))
        .with_state(app.clone())
        .layer(layer)
        // Outermost, so it runs before socketioxide sees the request.
        .layer(axum::middleware::from_fn_with_state(app, socketio_origin));

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen on {addr}: {e} (is another chat running? try --port)")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!(
        "chat: listening on http://{local} ({} store)",
        if args.redis.is_some() {
            "Redis"
        } else {
            "memory"
        }
    );
    // socket.io answers the open packet with a ping at once: without
    // TCP_NODELAY, Nagle's algorithm holds the connect reply behind it for
    // the client's delayed ACK (about 40 ms per connection).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("chat: cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server error: {e}"))
}

// ---- socket.io -------------------------------------------------------------

/// Registers the event handlers. A connect middleware, not the connect
/// handler: middlewares run before the client is told it is connected, while
/// socketioxide runs the connect handler in a task after that, so an event
/// the client emits right on `connect` could arrive before its handler.
async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
    socket.join(LOBBY);
    socket.on("whoami", whoami);
    socket.on("incr", incr);
    socket.on("message", message);
    Ok(())
}

/// Every connection that reaches here has a session (the middleware refused
/// the others).
async fn on_connect(_socket: SocketRef, _session: SocketSession) {}

/// Acks the session data (without its cookie).
async fn whoami(session: SocketSession, ack: AckSender) {
    let data: Map<String, Value> = session.with(|s| s.data().clone());
    let _ = ack.send(&data);
}

/// Increments `counter` in the session, saves, acks the new value. The
/// update re-runs on the stored record if an HTTP route (or another socket)
/// wrote first, so no increment is lost.
async fn incr(socket: SocketRef, session: SocketSession, ack: AckSender) {
    let saved = session
        .update(|s| {
            let n = s.get::<i64>("counter").ok().flatten().unwrap_or(0);
            let _ = s.insert("counter", n.saturating_add(1));
        })
        .await;
    match saved {
        Ok(s) => {
            let _ = ack.send(&s.get::<i64>("counter").ok().flatten());
        }
        Err(e) => {
            // The session ended (logout, expiry) or the store failed: say
            // so, and close a socket whose session is gone.
            let _ = ack.send(&json!({ "error": "save_failed", "message": e.to_string() }));
            if matches!(e, WriteError::Gone | WriteError::Expired) {
                let _ = socket.disconnect();
            } else {
                eprintln!("chat: saving a session failed: {e}");
            }
        }
    }
}

/// Broadcasts `{user, text}` to everyone in the namespace, sender included.
async fn message(socket: SocketRef, session: SocketSession, Data(text): Data<String>) {
    let text: String = text.trim().chars().take(MAX_MESSAGE).collect();
    if text.is_empty() {
        return;
    }
    let user = session.with(|s| s.get::<String>("user").ok().flatten().unwrap_or_default());
    let _ = socket
        .within(LOBBY)
        .emit("message", &json!({ "user": user, "text": text }))
        .await;
}

// ---- HTTP ------------------------------------------------------------------

/// R6: socket.io's polling requests and its WebSocket upgrade are separate
/// HTTP requests, and the session middleware checks `Origin` on the one
/// that opened the connection only (socketioxide keeps that one's headers;
/// its refusal is the readable `connect_error`). Every later request of a
/// connection (it carries the engine.io `sid`) is checked here, so an
/// upgrade or poll from another site onto a connection a same-site page
/// opened is refused too.
async fn socketio_origin(State(app): State<App>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/socket.io/")
        && let Err(e) = check_later_origin(app.sessions.config(), req.uri(), req.headers())
    {
        return (StatusCode::FORBIDDEN, e.to_string()).into_response();
    }
    next.run(req).await
}

async fn index(State(app): State<App>, headers: HeaderMap) -> Html<String> {
    match app.sessions.session(&headers).await {
        Ok(_) => Html(CHAT_HTML.to_owned()),
        Err(_) => Html(login_page(None)),
    }
}

fn login_page(error: Option<&str>) -> String {
    match error {
        Some(e) => LOGIN_HTML.replace(
            "<!--error-->",
            &format!("<p class=\"error\">{}</p>", escape_html(e)),
        ),
        None => LOGIN_HTML.to_owned(),
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
}

async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        let page = login_page(Some(&format!(
            "Please enter a name of 1 to {MAX_NAME} characters."
        )));
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    // A login starts a new session (R11): the old one, if any, ends.
    if let Ok(old) = app.sessions.session(&headers).await {
        let _ = app.sessions.destroy(old.id()).await;
        let _ = disconnect_session(&app.io, old.id()).await;
    }
    let mut data = Map::new();
    data.insert("user".into(), Value::String(name.to_owned()));
    match app.sessions.create(data).await {
        Ok(created) => {
            // `Redirect::to` is 303 See Other: the browser GETs `/`.
            let mut res = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&created.set_cookie) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => {
            eprintln!("chat: creating a session failed: {e}");
            let page = login_page(Some("The session store is unavailable; try again shortly."));
            (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
        }
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Ok(session) = app.sessions.session(&headers).await {
        if let Err(e) = app.sessions.destroy(session.id()).await {
            eprintln!("chat: destroying a session failed: {e}");
        }
        if let Err(e) = disconnect_session(&app.io, session.id()).await {
            eprintln!("chat: disconnecting a session's sockets failed: {e}");
        }
    }
    let mut res = Redirect::to("/").into_response();
    // The same name, path, domain and flags as the session cookie, expired.
    match session_sockets::core::clear_cookie_header(app.sessions.config())
        .map_err(|e| e.to_string())
        .and_then(|c| HeaderValue::from_str(&c).map_err(|e| e.to_string()))
    {
        Ok(v) => {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
        Err(e) => eprintln!("chat: cannot clear the session cookie: {e}"),
    }
    res
}

async fn api_session(State(app): State<App>, headers: HeaderMap) -> Response {
    match app.sessions.session(&headers).await {
        Ok(session) => Json(Value::Object(session.data().clone())).into_response(),
        Err(e) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": e.reason(), "message": e.to_string() })),
        )
            .into_response(),
    }
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
}

/// The socket.io browser client from the npm package `socket.io-client`
/// (installed by `npm ci` in this example's folder), else the CDN.
async fn client_js(State(app): State<App>) -> Response {
    match tokio::fs::read(app.client_js.as_path()).await {
        Ok(js) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            js,
        )
            .into_response(),
        Err(_) => Redirect::to(CDN_CLIENT).into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse_and_errors_say_what_to_fix() {
        let a = args(&[
            "--port",
            "0",
            "--secret",
            "s",
            "--origin",
            "https://a.example",
        ])
        .unwrap();
        assert_eq!(a.port, 0);
        assert_eq!(a.secret.as_deref(), Some("s"));
        assert_eq!(a.origins, ["https://a.example"]);
        assert!(
            args(&["--port"])
                .unwrap_err()
                .starts_with("--port needs a value")
        );
        assert!(
            args(&["--port", "x"])
                .unwrap_err()
                .contains("not a port number")
        );
        assert!(args(&["--bogus"]).unwrap_err().contains("unknown argument"));
    }

    #[test]
    fn login_errors_are_escaped() {
        let page = login_page(Some("<script>&"));
        assert!(page.contains("&lt;script&gt;&amp;"));
        assert!(!page.contains("<script>&"));
    }
}
