//! The socket.io chat: an HTTP login (axum) and socket.io handlers
//! (socketioxide) sharing one express-session compatible session.
//!
//! ```text
//! cargo run --release --bin chat [-- --port 3000 --secret S --redis redis://127.0.0.1/ --origin https://chat.example]
//! ```
//!
//! - `GET /`: the login form without a session, the chat page with one.
//! - `POST /login` (form field `name`): a new session, with its cookie.
//! - `POST /logout`: destroys the session and disconnects its sockets.
//! - `GET /api/session`: the session data as JSON, or 401 with a JSON error.
//! - `POST /api/incr`: increments the session's `counter` (the same one the
//!   socket `incr` event increments) and answers `{"counter": n}`.
//! - socket.io namespaces `/` and `/chat`, events `whoami`, `incr`, `message`.
//!
//! The session layer owns every `Set-Cookie`, refuses state-changing
//! requests from other sites (R26) and later socket.io requests from other
//! origins (R27); socket.io payloads and attachments are bounded (R29), and
//! request headers have a deadline (R30). Every response carries a
//! Content-Security-Policy that runs scripts only from the chat's own
//! origin and nothing inline, refuses framing (with `X-Frame-Options` for
//! older browsers), `nosniff` and `Referrer-Policy: same-origin`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod serve;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Form;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use session_sockets::core::{CookieOptions, SameSite, WriteError};
use session_sockets::http::{HttpSession, SessionLayer};
use session_sockets::runtime::tokio::Tokio;
use session_sockets::socketio::redis as socketio_redis;
use session_sockets::socketio::{SessionMiddleware, SocketSession};
use session_sockets::{Config, MemoryStore, SessionSockets, Store};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::{ParserConfig, SocketIo};
use socketioxide_core::adapter::DefinedAdapter;
use tower_http::set_header::SetResponseHeaderLayer;

/// Used when neither `--secret` nor `SESSION_SECRET` is given. Fine on a
/// laptop, never in production: anyone who knows it can forge sessions.
const DEV_SECRET: &str = "session-sockets chat development secret";
/// The room every chat socket of a namespace joins.
const LOBBY: &str = "lobby";
const MAX_NAME: usize = 32;
const MAX_MESSAGE: usize = 500;
/// The most a client may send in one polling request or one WebSocket
/// message (fragments included), and in the binary attachments of one
/// event: socket.io's `maxHttpBufferSize` (R29).
const MAX_PAYLOAD: usize = 1_000_000;
/// The most binary attachments one event may announce: socket.io-parser's
/// limit (R29). The chat uses none; the bound stops a packet announcing
/// millions of placeholders.
const MAX_ATTACHMENTS: usize = 10;
/// How long a client may take to send a request's headers (R30).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The Content-Security-Policy of every response: scripts, styles, images
/// and connections (socket.io's polling and websocket included: CSP 3's
/// `'self'` matches `ws:`/`wss:` on the page's own host and port) only from
/// the page's own origin, nothing inline (the page's script is a file, see
/// [`CHAT_JS`]), no plugins, no `<base>`, forms only to the chat, and no
/// page of any site may frame the chat (clickjacking).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

const LOGIN_HTML: &str = include_str!("../assets/login.html");
const CHAT_HTML: &str = include_str!("../assets/chat.html");
const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The chat page's script: a file, so that the Content-Security-Policy can
/// refuse every inline script; the page loads it with its integrity hash.
const CHAT_JS: &str = include_str!("../assets/chat.js");
/// The socket.io browser client, vendored from the pinned npm package
/// `socket.io-client` (see assets/vendor/socket.io-client/LICENSE): served
/// from the binary, so the page works without internet (R33).
const CLIENT_JS: &[u8] = include_bytes!("../assets/vendor/socket.io-client/socket.io.min.js");

const USAGE: &str = "\
usage: chat [--port N] [--secret S] [--redis URL] [--origin URL]... [--public-origin URL]
            [--header-timeout SECS] [--capacity N]

  --port N              listen on 127.0.0.1:N (default 3000; 0 picks a free port)
  --secret S            the session secret (default: env SESSION_SECRET, else a
                        development secret, with a warning)
  --redis URL           keep sessions in Redis (connect-redis format) instead of
                        in memory, e.g. redis://127.0.0.1:6379/
  --origin URL          allow pages of this origin (repeatable; default: same
                        host only)
  --public-origin URL   the origin browsers load the chat from, behind a proxy
                        or TLS terminator (e.g. https://chat.example): the
                        same-host check compares its scheme too
  --header-timeout SECS close connections that take longer to send a request's
                        headers (default 10)
  --capacity N          the memory store's bound, in sessions (default 100000);
                        when full of sessions in use, new logins get a 503
  --no-sessions         benchmark baseline only: socket.io without the session
                        middleware (every connection is accepted)";

struct Args {
    port: u16,
    secret: Option<String>,
    redis: Option<String>,
    origins: Vec<String>,
    public_origin: Option<String>,
    header_timeout: Duration,
    capacity: usize,
    no_sessions: bool,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("port", &self.port)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("redis", &self.redis.as_ref().map(|_| "<redacted>"))
            .field("origins", &self.origins)
            .field("public_origin", &self.public_origin)
            .field("header_timeout", &self.header_timeout)
            .field("capacity", &self.capacity)
            .field("no_sessions", &self.no_sessions)
            .finish()
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        port: 3000,
        secret: None,
        redis: None,
        origins: Vec::new(),
        public_origin: None,
        header_timeout: HEADER_TIMEOUT,
        capacity: session_sockets::DEFAULT_CAPACITY,
        no_sessions: false,
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
            "--public-origin" => out.public_origin = Some(value("--public-origin")?),
            "--header-timeout" => {
                let v = value("--header-timeout")?;
                out.header_timeout = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=3600).contains(s))
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        format!("--header-timeout {v:?} is not a number of seconds (1-3600)")
                    })?;
            }
            "--capacity" => {
                let v = value("--capacity")?;
                out.capacity = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--capacity {v:?} is not a positive number of sessions")
                })?;
            }
            "--no-sessions" => out.no_sessions = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(out)
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
    // SameSite=Lax keeps the cookie off other sites' subrequests; one day of
    // life, then the user signs in again.
    let cookie = CookieOptions {
        same_site: Some(SameSite::Lax),
        max_age: Some(Duration::from_secs(24 * 3600)),
        ..CookieOptions::default()
    };
    let mut config = Config::builder().secret(secret).cookie(cookie);
    if !args.origins.is_empty() {
        config = config.allowed_origins(args.origins);
    }
    if let Some(public) = args.public_origin {
        config = config.public_origin(public);
    }
    let config = config
        .build()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    let store: Arc<dyn Store> = match &args.redis {
        Some(url) => Arc::new(
            session_sockets::RedisStore::builder(url.as_str())
                // Several chat processes and an Express app on one stock
                // Redis just work: the store turns on the keyspace
                // notifications live sessions need.
                .keyspace_events(session_sockets::KeyspaceEvents::Configure)
                .connect()
                .await
                // The error names host and port; the URL may hold a password.
                .map_err(|e| format!("cannot use Redis: {e}"))?,
        ),
        None => Arc::new(MemoryStore::with_capacity(args.capacity)),
    };
    let sessions = SessionSockets::new(config, store, Tokio);

    let app = match &args.redis {
        // One node of many: broadcasts (and `disconnect_session`) reach the
        // sockets of every chat process on this Redis.
        Some(url) => {
            // RESP3 on its own connection, which reconnects and subscribes
            // again after a Redis restart.
            let adapter = socketio_redis::adapter(url)
                .await
                // The URL may hold a password: the error names neither.
                .map_err(|e| format!("cannot use Redis for socket.io: {e}"))?;
            let (io_layer, io) = socketio()
                .with_adapter::<socketio_redis::Adapter<_>>(adapter)
                .build_layer();
            for init in namespaces(&io, &sessions, args.no_sessions) {
                init.await
                    .map_err(|e| format!("cannot set up socket.io on Redis: {e}"))?;
            }
            routes(sessions, io_layer, &io)
        }
        None => {
            let (io_layer, io) = socketio().build_layer();
            namespaces(&io, &sessions, args.no_sessions);
            routes(sessions, io_layer, &io)
        }
    };

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = serve::listen(addr).map_err(|e| {
        format!("cannot listen on {addr}: {e} (is another chat running? try --port)")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!(
        "chat: listening on http://{local} ({} store{})",
        if args.redis.is_some() {
            "Redis"
        } else {
            "memory"
        },
        if args.no_sessions {
            "; socket.io WITHOUT sessions, a benchmark baseline"
        } else {
            ""
        }
    );
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // The accept loop runs on a runtime worker, not on the main thread that
    // `#[tokio::main]` blocks on: from there, every accepted connection
    // would cross threads to a worker (a wake-up each way, and a context
    // switch each way on a busy core).
    tokio::spawn(serve::serve(
        listener,
        app,
        args.header_timeout,
        Duration::from_secs(5),
        ctrl_c,
    ))
    .await
    .map_err(|e| format!("the server loop stopped: {e}"))
}

// ---- socket.io -------------------------------------------------------------

/// socket.io with bounded payloads (R29).
fn socketio() -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .max_payload(MAX_PAYLOAD as u64)
        .ws_max_message_size(MAX_PAYLOAD)
        .ws_max_frame_size(MAX_PAYLOAD)
        .with_parser(
            ParserConfig::common()
                .max_incoming_binaries(MAX_ATTACHMENTS)
                .max_incoming_binary_buf_size(MAX_PAYLOAD),
        )
}

/// The namespaces `/` and `/chat`; what each registration returns (the
/// Redis adapter's initialization, to await).
fn namespaces<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    sessions: &SessionSockets<Tokio>,
    no_sessions: bool,
) -> Vec<A::InitRes> {
    let middleware = SessionMiddleware::required(sessions.clone());
    ["/", "/chat"]
        .into_iter()
        .map(|ns| {
            if no_sessions {
                // What socketioxide costs alone, for the end-to-end
                // benchmark: the same room and events, no session.
                io.ns(ns, on_bare_connect::<A>.with(register_bare::<A>))
            } else {
                // `.with` runs the last-added middleware first: the session,
                // then the handler registration.
                io.ns(
                    ns,
                    on_connect::<A>.with(register::<A>).with(middleware.clone()),
                )
            }
        })
        .collect()
}

/// Registers the event handlers. A connect middleware, not the connect
/// handler: middlewares run before the client is told it is connected, while
/// socketioxide runs the connect handler in a task after that, so an event
/// the client emits right on `connect` could arrive before its handler.
async fn register<A: Adapter>(socket: SocketRef<A>) -> Result<(), std::convert::Infallible> {
    socket.join(LOBBY);
    socket.on("whoami", whoami::<A>);
    socket.on("incr", incr::<A>);
    socket.on("message", message::<A>);
    Ok(())
}

/// `--no-sessions`: the same room and event handlers as [`register`], with
/// nothing to read or write (the benchmark baseline).
async fn register_bare<A: Adapter>(socket: SocketRef<A>) -> Result<(), std::convert::Infallible> {
    socket.join(LOBBY);
    socket.on("whoami", async |ack: AckSender<A>| {
        let _ = ack.send(&json!({}));
    });
    socket.on("incr", async |ack: AckSender<A>| {
        let _ = ack.send(&0);
    });
    socket.on(
        "message",
        async |socket: SocketRef<A>, Data(text): Data<String>| {
            let text: String = text.trim().chars().take(MAX_MESSAGE).collect();
            let _ = socket
                .within(LOBBY)
                .emit("message", &json!({ "user": "", "text": text }))
                .await;
        },
    );
    Ok(())
}

async fn on_bare_connect<A: Adapter>(_socket: SocketRef<A>) {}

/// Every connection that reaches here has a session (the middleware refused
/// the others).
async fn on_connect<A: Adapter>(_socket: SocketRef<A>, _session: SocketSession) {}

/// Acks the session data (without its cookie).
async fn whoami<A: Adapter>(session: SocketSession, ack: AckSender<A>) {
    let data: Map<String, Value> = session.with(|s| s.data().clone());
    let _ = ack.send(&data);
}

/// Increments `counter` in the session and returns the new value: the
/// update re-runs on the stored record if an HTTP route (or another socket,
/// or another server) wrote first, so no increment is lost.
fn add_one(s: &mut session_sockets::Session) -> i64 {
    let n = s
        .get::<i64>("counter")
        .ok()
        .flatten()
        .unwrap_or(0)
        .saturating_add(1);
    let _ = s.insert("counter", n);
    n
}

/// `incr`: saves `counter + 1` in the session and acks the new value.
async fn incr<A: Adapter>(socket: SocketRef<A>, session: SocketSession, ack: AckSender<A>) {
    match session.update(add_one).await {
        Ok(n) => {
            let _ = ack.send(&n);
        }
        Err(e) => {
            // The session ended (logout, expiry) or the store failed: say
            // so (the reason and a hint; the operation logged the detail,
            // R35), and close a socket whose session is gone.
            let _ = ack.send(&json!({ "error": e.reason(), "message": e.hint() }));
            if matches!(e, WriteError::Gone | WriteError::Expired) {
                let _ = socket.disconnect();
            }
        }
    }
}

/// Broadcasts `{user, text}` to everyone in the namespace, sender included.
async fn message<A: Adapter>(
    socket: SocketRef<A>,
    session: SocketSession,
    Data(text): Data<String>,
) {
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

/// The HTTP routes, behind the session layer, which also wraps socket.io.
fn routes<A: Adapter>(
    sessions: SessionSockets<Tokio>,
    io_layer: socketioxide::layer::SocketIoLayer<A>,
    io: &SocketIo<A>,
) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/session", get(api_session))
        .route("/api/incr", post(api_incr))
        .route("/style.css", get(style))
        .route("/js/socket.io.min.js", get(client_js))
        .route("/js/chat.js", get(chat_js))
        // Cookies, CSRF and socket.io origin checks, socket.io; its
        // refusals and store failures answer `/api/*` in JSON.
        .layer(
            SessionLayer::new(sessions)
                .with_socketio(io_layer, io)
                .json_errors_under("/api"),
        )
        // Outermost, so that every answer carries them: the session layer's
        // refusals and socket.io's replies too.
        .layer(security_header(header::REFERRER_POLICY, "same-origin"))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
}

/// One of the security headers every response carries, replacing any a
/// handler set: the CSP above (whose `frame-ancestors 'none'` older browsers
/// learn from `X-Frame-Options: DENY`), `nosniff` (a response is only ever
/// what its Content-Type says, so no answer can run as a script or a style),
/// and `Referrer-Policy: same-origin` (no `Referer` to other sites).
fn security_header(
    name: header::HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    // `from_static` panics on bytes a header value cannot hold: these are
    // the printable ASCII constants above, and every test loads them.
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

async fn index(session: HttpSession) -> Html<String> {
    Html(match session.is_stored() {
        true => CHAT_HTML.to_owned(),
        false => login_page(None),
    })
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

/// A new session with a fresh id (the old one ends), then the chat page.
async fn login(session: HttpSession, Form(form): Form<LoginForm>) -> Response {
    let Some(name) = valid_name(&form.name) else {
        let page = login_page(Some(&format!(
            "Please enter a name of 1 to {MAX_NAME} characters."
        )));
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    };
    match session.login([("user", name)]).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(_) => unavailable("Signing in"),
    }
}

/// Ends the session everywhere; a store outage is reported, not hidden.
async fn logout(session: HttpSession) -> Response {
    match session.logout().await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(_) => unavailable("Signing out"),
    }
}

fn valid_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let ok =
        !name.is_empty() && name.chars().count() <= MAX_NAME && !name.chars().any(char::is_control);
    ok.then_some(name)
}

/// The 503 page when the session store could not do what the user asked
/// (the session operation logged why).
fn unavailable(what: &str) -> Response {
    let page = login_page(Some(&format!(
        "{what} failed because the session store is unavailable; nothing changed. Try again shortly."
    )));
    (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
}

/// An `/api/*` error: `{"error": reason, "message": hint}` (R35).
fn api_error(status: StatusCode, reason: &str, hint: &str) -> Response {
    (status, Json(json!({ "error": reason, "message": hint }))).into_response()
}

/// 401 with why the request has no session, as the socket would be told.
fn no_session(session: &HttpSession) -> Response {
    match session.error() {
        Some(e) => api_error(StatusCode::UNAUTHORIZED, e.reason(), e.hint()),
        None => api_error(
            StatusCode::UNAUTHORIZED,
            "no_session",
            "You are not signed in: please sign in.",
        ),
    }
}

async fn api_session(session: HttpSession) -> Response {
    match session.is_stored() {
        true => Json(Value::Object(session.data())).into_response(),
        false => no_session(&session),
    }
}

/// The HTTP twin of the socket `incr`: the same counter, the same update.
async fn api_incr(session: HttpSession) -> Response {
    if !session.is_stored() {
        return no_session(&session);
    }
    match session.update(add_one).await {
        Ok(n) => Json(json!({ "counter": n })).into_response(),
        Err(e) => {
            let status = match e {
                WriteError::Gone | WriteError::Expired => StatusCode::UNAUTHORIZED,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            api_error(status, e.reason(), e.hint())
        }
    }
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
}

/// The vendored socket.io browser client; the page loads it with its
/// Subresource Integrity hash.
async fn client_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        CLIENT_JS,
    )
}

/// The page's script. Revalidated on every load (`no-cache`): a copy
/// cached from an older binary would fail the new page's integrity check,
/// and the browser would not run the page at all.
async fn chat_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CHAT_JS,
    )
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
        assert!(!args(&[]).unwrap().no_sessions);
        assert_eq!(
            args(&["--public-origin", "https://chat.example"])
                .unwrap()
                .public_origin
                .as_deref(),
            Some("https://chat.example")
        );
        assert_eq!(args(&["--capacity", "5"]).unwrap().capacity, 5);
        assert!(
            args(&["--capacity", "0"])
                .unwrap_err()
                .contains("positive number")
        );
        assert!(args(&["--no-sessions"]).unwrap().no_sessions);
        assert_eq!(args(&[]).unwrap().header_timeout, HEADER_TIMEOUT);
        assert_eq!(
            args(&["--header-timeout", "2"]).unwrap().header_timeout,
            Duration::from_secs(2)
        );
        for bad in ["0", "x", "-1", "3601"] {
            assert!(
                args(&["--header-timeout", bad])
                    .unwrap_err()
                    .contains("is not a number of seconds"),
                "{bad}"
            );
        }
    }

    /// The Subresource Integrity value of `bytes`, as a browser checks it.
    fn sri(bytes: &[u8]) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha384::digest(bytes);
        format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }

    /// R33: the page loads the client and its own script with the
    /// Subresource Integrity hashes of the exact bytes the binary serves, so
    /// a browser refuses any other.
    #[test]
    fn r33_the_page_pins_the_served_scripts_by_their_integrity_hashes() {
        for (src, bytes) in [
            ("/js/socket.io.min.js", CLIENT_JS),
            ("/js/chat.js", CHAT_JS.as_bytes()),
        ] {
            let sri = sri(bytes);
            let tag = format!(r#"<script src="{src}" integrity="{sri}""#);
            assert!(
                CHAT_HTML.contains(&tag),
                "chat.html must load {src} with {sri}"
            );
        }
        assert!(!CHAT_HTML.contains("cdn."), "no CDN fallback");
    }

    /// The pages work under a CSP that refuses inline code: no inline
    /// script, event handler attribute, `javascript:` URL or style
    /// attribute, and every script is a same-origin file with its hash.
    #[test]
    fn the_pages_have_nothing_inline_the_csp_would_refuse() {
        for (name, page) in [
            ("chat.html", CHAT_HTML),
            ("login.html", LOGIN_HTML),
            ("the login error page", &login_page(Some("x"))),
        ] {
            let lower = page.to_ascii_lowercase();
            for (i, _) in lower.match_indices("<script") {
                let tag = &lower[i..i + lower[i..].find('>').unwrap()];
                assert!(tag.contains(" src=\"/js/"), "{name}: {tag}");
                assert!(tag.contains(" integrity=\"sha384-"), "{name}: {tag}");
            }
            for bad in ["javascript:", " style=", "<style"] {
                assert!(!lower.contains(bad), "{name}: {bad}");
            }
            // An event handler attribute: ` on` + letters + `=`.
            let handler = lower.match_indices(" on").find(|(i, _)| {
                let rest = &lower[i + 3..];
                let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
                letters > 0 && rest[letters..].starts_with('=')
            });
            assert_eq!(handler, None, "{name}: an event handler attribute");
        }
        assert!(!STYLE_CSS.contains("expression("), "style.css");
        assert!(!STYLE_CSS.contains("url("), "style.css loads nothing");
    }

    /// The security headers are valid header values, and the CSP allows
    /// nothing inline and nothing from elsewhere.
    #[test]
    fn the_content_security_policy_refuses_inline_code_and_framing() {
        for v in [CONTENT_SECURITY_POLICY, "DENY", "nosniff", "same-origin"] {
            assert!(HeaderValue::from_str(v).is_ok(), "{v}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-"));
        assert!(!CONTENT_SECURITY_POLICY.contains('*'));
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(valid_name("  ada "), Some("ada"));
        assert_eq!(valid_name(""), None);
        assert_eq!(valid_name(&"x".repeat(MAX_NAME + 1)), None);
        assert_eq!(valid_name("a\u{7}b"), None);
    }

    #[test]
    fn login_errors_are_escaped() {
        let page = login_page(Some("<script>&"));
        assert!(page.contains("&lt;script&gt;&amp;"));
        assert!(!page.contains("<script>&"));
    }
}
