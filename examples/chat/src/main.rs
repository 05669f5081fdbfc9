//! The socket.io chat: an HTTP login (axum) and socket.io handlers
//! (socketioxide) sharing one session, in the session format of the HTTP
//! app next to it: express-session (the default), tower-sessions or
//! actix-session.
//!
//! ```text
//! cargo run --release --bin chat [-- --port 3000 --secret S --redis redis://127.0.0.1/ --origin https://chat.example]
//! cargo run --release --bin chat -- --redis-cluster redis://10.0.0.1:6379/ --redis-cluster redis://10.0.0.2:6379/
//! chat --redis URL --format tower-sessions [--signed KEY | --private KEY] [--inactivity SECS]
//! chat --redis URL --format actix-session (--private KEY | --signed KEY)
//! ```
//!
//! KEY is the standard base64 of the app's 64-byte `cookie::Key`
//! (`Key::master()`); several, comma-separated, rotate keys (the first
//! signs or seals, every one verifies or opens). The chat's own login and
//! logout then write that format's cookie and record, so a user signed in
//! on either side is signed in on both.
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
use clap::Parser;
use serde_json::{Map, Value, json};
use session_sockets::core::{CookieOptions, SameSite, WriteError};
use session_sockets::format::actix_session::CookieContentSecurity;
use session_sockets::format::tower_sessions::Expiry;
use session_sockets::http::{HttpSession, SessionLayer};
use session_sockets::runtime::tokio::Tokio;
use session_sockets::socketio::redis as socketio_redis;
use session_sockets::socketio::{SessionMiddleware, SocketSession};
use session_sockets::store::Store;
use session_sockets::{Config, Format, MemoryStore, SessionSockets};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::{ParserConfig, SocketIo};
use socketioxide_core::adapter::DefinedAdapter;
use tower_http::set_header::SetResponseHeaderLayer;

/// Used when neither `--secret` nor `SESSION_SECRET` is given. Fine on a
/// laptop, never in production: anyone who knows it can forge sessions.
const DEV_SECRET: &str = "session-sockets chat development secret";
/// The socket.io namespaces.
const NAMESPACES: [&str; 2] = ["/", "/chat"];
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

/// The socket.io chat: an HTTP login and socket.io handlers sharing one
/// express-session compatible session.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Listen on 127.0.0.1:PORT (0 picks a free port; the last one given
    /// counts).
    #[arg(long, default_value_t = 3000, overrides_with = "port")]
    port: u16,
    /// The session secret: the same as your HTTP app's [default: a
    /// development secret, with a warning].
    #[arg(long, env = "SESSION_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Keep sessions in Redis (connect-redis format) instead of in memory,
    /// e.g. redis://127.0.0.1:6379/.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Keep sessions in a Redis Cluster instead: a seed node's URL
    /// (repeatable; any few nodes, one answering is enough), e.g.
    /// redis://10.0.0.1:6379/. Writes wait for a replica; socket.io
    /// broadcasts cross the nodes through the cluster.
    #[arg(long = "redis-cluster", value_name = "URL", conflicts_with = "redis")]
    redis_cluster: Vec<String>,
    /// Allow pages of this origin (repeatable) [default: same host only].
    #[arg(long = "origin", value_name = "URL")]
    origins: Vec<String>,
    /// The origin browsers load the chat from, behind a proxy or TLS
    /// terminator (e.g. `https://chat.example`): the same-host check compares
    /// its scheme too.
    #[arg(long, value_name = "URL")]
    public_origin: Option<String>,
    /// Close connections that take longer to send a request's headers
    /// (slowloris, R30).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = header_timeout)]
    header_timeout: Duration,
    /// The memory store's bound, in sessions; when it is full of sessions in
    /// use, new logins get a 503.
    #[arg(long, value_name = "N", default_value_t = session_sockets::store::DEFAULT_CAPACITY,
          value_parser = positive)]
    capacity: usize,
    /// Serve metrics in Prometheus text format on this address (e.g.
    /// 127.0.0.1:9464) [default: off].
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Benchmark baseline only: socket.io without the session middleware
    /// (every connection is accepted).
    #[arg(long)]
    no_sessions: bool,
    /// The session format of the HTTP app whose sessions the chat shares.
    #[arg(long, value_enum, default_value_t = FormatArg::ExpressSession)]
    format: FormatArg,
    /// Signed cookies (tower-sessions `with_signed`, actix-session
    /// `CookieContentSecurity::Signed`) with this key: the standard base64
    /// of the app's 64-byte cookie key; comma-separated keys rotate.
    #[arg(
        long,
        value_name = "KEY",
        env = "SESSION_SIGNED_KEY",
        hide_env_values = true,
        value_delimiter = ',',
        conflicts_with = "private"
    )]
    signed: Vec<String>,
    /// Private cookies (tower-sessions `with_private`, actix-session's
    /// default) with this key: the standard base64 of the app's 64-byte
    /// cookie key; comma-separated keys rotate.
    #[arg(
        long,
        value_name = "KEY",
        env = "SESSION_PRIVATE_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    private: Vec<String>,
    /// tower-sessions `Expiry::OnInactivity`: sessions end this many
    /// seconds after their last save, as the app's layer says [default:
    /// tower-sessions' two weeks].
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    inactivity: Option<Duration>,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// express-session 1.x with connect-redis (`--secret`).
    ExpressSession,
    /// tower-sessions 0.14 with tower-sessions-redis-store 0.16.
    TowerSessions,
    /// actix-session 0.10 / 0.11 with its Redis store.
    ActixSession,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("port", &self.port)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("redis", &self.redis.as_ref().map(|_| "<redacted>"))
            .field(
                "redis_cluster",
                &format!("<{} redacted>", self.redis_cluster.len()),
            )
            .field("origins", &self.origins)
            .field("public_origin", &self.public_origin)
            .field("header_timeout", &self.header_timeout)
            .field("capacity", &self.capacity)
            .field("metrics", &self.metrics)
            .field("no_sessions", &self.no_sessions)
            .field("format", &self.format)
            .field("signed", &format_args!("<{} redacted>", self.signed.len()))
            .field(
                "private",
                &format_args!("<{} redacted>", self.private.len()),
            )
            .field("inactivity", &self.inactivity)
            .finish()
    }
}

fn header_timeout(v: &str) -> Result<Duration, String> {
    v.parse()
        .ok()
        .filter(|s| (1..=3600).contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{v:?} is not a number of seconds (1-3600)"))
}

fn positive_secs(v: &str) -> Result<Duration, String> {
    v.parse()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{v:?} is not a positive number of seconds"))
}

fn positive(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{v:?} is not a positive number of sessions"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    logs();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, at the levels `RUST_LOG` sets (`info` by default; e.g.
/// `RUST_LOG=session_sockets=debug` for a span per session operation).
fn logs() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
}

/// The session settings `args` ask for: express-session's (the secret, and
/// the chat's cookie), or the format of a Rust HTTP app next to the chat.
fn session_config(args: &Args) -> Result<session_sockets::ConfigBuilder, String> {
    let format: Format = match args.format {
        FormatArg::ExpressSession => {
            if !args.signed.is_empty() || !args.private.is_empty() || args.inactivity.is_some() {
                return Err("--signed, --private and --inactivity are for --format                             tower-sessions or actix-session; express-session takes --secret"
                    .into());
            }
            return Ok(express_config(args));
        }
        FormatArg::TowerSessions => {
            let mut settings = Format::tower_sessions();
            if !args.signed.is_empty() {
                settings = settings
                    .with_signed(args.signed.clone())
                    .map_err(|e| format!("invalid --signed key: {e}"))?;
            } else if !args.private.is_empty() {
                settings = settings
                    .with_private(args.private.clone())
                    .map_err(|e| format!("invalid --private key: {e}"))?;
            }
            if let Some(d) = args.inactivity {
                settings = settings.with_expiry(Expiry::OnInactivity(d));
            }
            settings.into()
        }
        FormatArg::ActixSession => {
            if args.inactivity.is_some() {
                return Err("--inactivity is tower-sessions' Expiry::OnInactivity".into());
            }
            match (&args.private[..], &args.signed[..]) {
                ([], []) => {
                    return Err(
                        "actix-session signs or encrypts its cookie: pass the app's key with \
                         --private KEY (its default) or --signed KEY"
                            .into(),
                    );
                }
                (private, []) => Format::actix_session(private.to_vec())
                    .map_err(|e| format!("invalid --private key: {e}"))?
                    .into(),
                (_, signed) => Format::actix_session(signed.to_vec())
                    .map_err(|e| format!("invalid --signed key: {e}"))?
                    .cookie_content_security(CookieContentSecurity::Signed)
                    .into(),
            }
        }
    };
    if args.secret.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(format!(
            "--secret is express-session's; {} takes the app's cookie key",
            format.name()
        ));
    }
    Ok(Config::builder().format(format))
}

/// express-session with the secret and the chat's cookie.
fn express_config(args: &Args) -> session_sockets::ConfigBuilder {
    let secret = match args.secret.clone() {
        Some(s) if !s.is_empty() => s,
        _ => {
            tracing::warn!(
                "using the built-in development secret; pass --secret or set SESSION_SECRET \
                 (the same secret as your HTTP app) before exposing this server"
            );
            DEV_SECRET.to_owned()
        }
    };
    // SameSite=Lax keeps the cookie off other sites' subrequests; one day of
    // life, then the user signs in again.
    let cookie = CookieOptions {
        same_site: Some(SameSite::Lax),
        max_age: Some(Duration::from_secs(24 * 3600)),
        ..CookieOptions::default()
    };
    Config::builder().secret(secret).cookie(cookie)
}

async fn run(args: Args) -> Result<(), String> {
    let mut config = session_config(&args)?;
    if let Some(addr) = args.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        tracing::info!("metrics on http://{addr}/metrics");
    }
    if !args.origins.is_empty() {
        config = config.allowed_origins(args.origins.clone());
    }
    if let Some(public) = args.public_origin.clone() {
        config = config.public_origin(public);
    }
    let config = config
        .build()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    let store: Arc<dyn Store> = match &args.redis {
        None if !args.redis_cluster.is_empty() => Arc::new(
            session_sockets::RedisStore::cluster_builder(args.redis_cluster.iter().cloned())
                // Every node, replicas included, gets the keyspace
                // notifications live sessions need.
                .keyspace_events(session_sockets::KeyspaceEvents::Configure)
                .connect()
                .await
                // The error names hosts and ports; the URLs may hold a password.
                .map_err(|e| format!("cannot use the Redis Cluster: {e}"))?,
        ),
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
    let sessions = SessionSockets::new(config, store);

    match &args.redis {
        // The same on a cluster, on a driver that follows failovers.
        None if !args.redis_cluster.is_empty() => {
            let adapter = socketio_redis::cluster_adapter(&args.redis_cluster)
                .await
                .map_err(|e| format!("cannot use the Redis Cluster for socket.io: {e}"))?;
            let (io_layer, io) = socketio()
                .with_adapter::<socketio_redis::ClusterAdapter<_>>(adapter)
                .build_layer();
            for init in namespaces(&io, &sessions, args.no_sessions) {
                init.await
                    .map_err(|e| format!("cannot set up socket.io on the Redis Cluster: {e}"))?;
            }
            serve_until_stopped(&args, sessions, io_layer, io).await
        }
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
            serve_until_stopped(&args, sessions, io_layer, io).await
        }
        None => {
            let (io_layer, io) = socketio().build_layer();
            namespaces(&io, &sessions, args.no_sessions);
            serve_until_stopped(&args, sessions, io_layer, io).await
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then stops without losing a write or
/// applying one its client never hears of (R38): stop the sessions (new
/// operations are refused, new socket.io connections answered `503` so that
/// clients retry later, queued writes land); let the socket handlers that
/// write answer their clients; tell every socket why it is disconnected,
/// and disconnect it once it acknowledged; then stop accepting and let HTTP
/// requests in flight finish. All within [`STOP_WITHIN`].
async fn serve_until_stopped<A: Adapter>(
    args: &Args,
    sessions: SessionSockets<Tokio>,
    io_layer: socketioxide::layer::SocketIoLayer<A>,
    io: SocketIo<A>,
) -> Result<(), String> {
    let app = routes(sessions.clone(), io_layer, &io, !args.no_sessions);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = serve::listen(addr).map_err(|e| {
        format!("cannot listen on {addr}: {e} (is another chat running? try --port)")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!(
        "chat: listening on http://{local} ({} sessions, {} store{})",
        sessions.config().format().name(),
        if args.redis.is_some() {
            "Redis"
        } else if !args.redis_cluster.is_empty() {
            "Redis Cluster"
        } else {
            "memory"
        },
        if args.no_sessions {
            "; socket.io WITHOUT sessions, a benchmark baseline"
        } else {
            ""
        }
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The accept loop runs on a runtime worker, not on the main thread that
    // `#[tokio::main]` blocks on: from there, every accepted connection
    // would cross threads to a worker (a wake-up each way, and a context
    // switch each way on a busy core).
    let server = tokio::spawn(serve::serve(listener, app, args.header_timeout, async {
        let _ = stopped.await;
    }));
    let signal = stop_signal().await;
    let started = tokio::time::Instant::now();
    tracing::info!("{signal}: stopping");
    // Still serving: polling clients need their next requests to hear the
    // answers to what they sent, and the stop's own message.
    let report = sessions.shutdown().await;
    tracing::info!(
        "sessions stopped: {} writes landed, {} failed, {} refused, {} unfinished",
        report.landed,
        report.failed,
        report.refused,
        report.unfinished
    );
    Writing::wait(STOP_HANDLERS).await;
    disconnect_all(&io).await;
    let _ = stop.send(());
    let connections = server
        .await
        .map_err(|e| format!("the server loop stopped: {e}"))?;
    if tokio::time::timeout(STOP_CONNECTIONS, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections were still open when the chat stopped");
    }
    tracing::info!("stopped in {} ms", started.elapsed().as_millis());
    Ok(())
}

/// The whole stop stays under five seconds: the sessions' drain (at most
/// the store deadline, 3 s), then these.
const STOP_WITHIN: Duration = Duration::from_secs(5);
/// How long handlers that write may take to answer their clients.
const STOP_HANDLERS: Duration = Duration::from_millis(300);
/// How long a socket may take to acknowledge that it was told.
const STOP_TELL: Duration = Duration::from_millis(600);
/// How long sockets may take to leave, and HTTP requests to finish.
const STOP_CONNECTIONS: Duration = Duration::from_millis(400);
const _: () = assert!(3000 + 300 + 600 + 400 + 400 < STOP_WITHIN.as_millis() as u64);

/// Waits for SIGTERM (a deploy, `kill`) or Ctrl-C; names the one that came.
async fn stop_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    name = ctrl_c => name,
                    _ = term.recv() => "SIGTERM",
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); stop with Ctrl-C");
                ctrl_c.await
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await
}

/// The event every socket of this server receives just before it is
/// disconnected because the server stops: `{"reason": "shutting_down",
/// "message": hint}`, with an ack the client sends back (it then has every
/// packet sent before, acks of its writes included). The page connects again
/// a moment later (to this server once restarted, or to another).
const SERVER_STOPPING: &str = "server_stopping";

/// Tells every socket of this server why, waits for each to acknowledge
/// (for at most [`STOP_TELL`]), then disconnects it, and waits (a little)
/// for them to leave; sockets on other nodes stay.
async fn disconnect_all<A: Adapter>(io: &SocketIo<A>) {
    use futures_lite::StreamExt as _;
    let why = WriteError::Failed(session_sockets::Failure::ShuttingDown);
    let body = json!({ "reason": why.reason(), "message": why.hint() });
    for ns in NAMESPACES {
        let Some(ops) = io.of(ns) else { continue };
        let told = ops
            .clone()
            .local()
            .timeout(STOP_TELL)
            .emit_with_ack::<_, Value>(SERVER_STOPPING, &body)
            .await;
        if let Ok(acks) = told {
            // Each ack, or its timeout.
            acks.for_each(drop).await;
        }
        let _ = ops.local().disconnect().await;
    }
    let until = tokio::time::Instant::now() + STOP_CONNECTIONS;
    while tokio::time::Instant::now() < until
        && NAMESPACES
            .iter()
            .filter_map(|ns| io.of(ns))
            .any(|ops| !ops.local().sockets().is_empty())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Socket handlers that write, running now: a stop lets them answer their
/// clients before it disconnects them, so no write is applied without its
/// client hearing of it.
struct Writing;

static WRITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Writing {
    fn enter() -> Self {
        WRITING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Writing
    }

    /// Waits until none runs, for at most `limit`.
    async fn wait(limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        while WRITING.load(std::sync::atomic::Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

// ---- socket.io -------------------------------------------------------------

/// What a WebSocket reads at most per read, and the read buffer each
/// socket starts with and keeps while idle (socketioxide's default is
/// 4 KiB). Every chat event fits: a message is at most [`MAX_MESSAGE`]
/// characters, under 600 bytes framed when ASCII. A larger frame is still
/// read whole (the buffer grows to fit it), in a few more reads.
const WS_READ_BUFFER: usize = 1024;

/// socket.io with bounded payloads (R29), and a WebSocket read buffer sized
/// for the chat's events ([`WS_READ_BUFFER`]): 3 KiB less per idle socket.
fn socketio() -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .ws_read_buffer_size(WS_READ_BUFFER)
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
    NAMESPACES
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
    let data: Map<String, Value> = session.data();
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
    let _writing = Writing::enter();
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
    let user = session
        .get::<String>("user")
        .ok()
        .flatten()
        .unwrap_or_default();
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
    sockets_need_a_session: bool,
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
        // Cookies, CSRF and socket.io origin checks, socket.io; every
        // namespace requires a session, so anonymous engine.io opens are
        // refused before socket.io allocates anything (R39); refusals and
        // store failures answer `/api/*` in JSON.
        .layer(
            SessionLayer::new(sessions)
                .with_socketio(io_layer, io)
                .socketio_requires_session(sockets_need_a_session)
                // socketioxide keeps each connection's opening request for
                // its whole life: only the headers the sessions read, not
                // the browser's dozen others (the socket handlers read none).
                .socketio_keep_headers([])
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
        Args::try_parse_from(std::iter::once("chat").chain(v.iter().copied()))
            .map_err(|e| e.to_string())
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
        assert_eq!(args(&["--port", "0", "--port", "7"]).unwrap().port, 7);
        assert_eq!(a.secret.as_deref(), Some("s"));
        assert_eq!(a.origins, ["https://a.example"]);
        assert!(args(&["--port"]).unwrap_err().contains("--port"));
        assert!(
            args(&["--port", "x"])
                .unwrap_err()
                .contains("invalid value 'x'")
        );
        assert!(
            args(&["--bogus"])
                .unwrap_err()
                .contains("unexpected argument")
        );
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
        assert_eq!(args(&[]).unwrap().header_timeout, Duration::from_secs(10));
        assert_eq!(
            args(&["--header-timeout", "2"]).unwrap().header_timeout,
            Duration::from_secs(2)
        );
        assert!(args(&["--header-timeout", "-1"]).is_err());
        for bad in ["0", "x", "3601"] {
            assert!(
                args(&["--header-timeout", bad])
                    .unwrap_err()
                    .contains("is not a number of seconds"),
                "{bad}"
            );
        }
        assert_eq!(
            args(&["--metrics", "127.0.0.1:9464"]).unwrap().metrics,
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9464)))
        );
        assert!(args(&["--metrics", "nowhere"]).is_err());
        let dbg = format!("{:?}", args(&["--secret", "hunter2"]).unwrap());
        assert!(!dbg.contains("hunter2"), "{dbg}");
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
