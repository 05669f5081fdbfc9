//! Shared code of the `ws-smol` and `ws-async-std` examples: WebSocket
//! servers that read the session from the upgrade request's headers,
//! refuse the upgrade without a valid session (HTTP 401 with the reason),
//! and answer a `whoami` text message with the session's JSON.
//!
//! The upgrade is answered by hand so that the session lookup, which is
//! async, happens before the `101 Switching Protocols`: tungstenite's own
//! accept callback is synchronous. The binaries differ only in their
//! listener, spawner and runtime timer: each calls [`main`] with those.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use futures_lite::future::{Boxed, BoxedLocal};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use session_sockets::runtime::Runtime;
use session_sockets::store::Store;
use session_sockets::{Config, MemoryStore, SessionSockets};

/// The longest upgrade request head read (R4).
const MAX_HEAD: usize = 16 * 1024;
/// The most request headers parsed.
const MAX_HEADERS: usize = 64;
/// How long a client may take to send its upgrade request, by default.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Command-line options.
#[derive(Clone)]
pub struct Options {
    /// Where to listen, e.g. `127.0.0.1:3001` (port 0: any free port).
    pub addr: String,
    /// The HTTP app's express-session secret.
    secret: String,
    /// Allowed `Origin`s; empty: the default same-host check.
    pub origins: Vec<String>,
    /// How long a client may take to send its upgrade request.
    pub head_timeout: Duration,
    /// Sessions to store at start: (session id, express-session JSON).
    seeds: Vec<(String, String)>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("origins", &self.origins)
            .field("head_timeout", &self.head_timeout)
            .field("seeds", &self.seeds.len())
            .finish_non_exhaustive()
    }
}

/// The usage text.
pub const USAGE: &str = "\
usage: ws-smol|ws-async-std [--addr HOST:PORT] [--secret SECRET] [--origin URL]... \
[--seed-session SID=JSON]...
  --addr           where to listen (default 127.0.0.1:3001; port 0 picks a free one)
  --secret         the HTTP app's express-session secret (or env SESSION_SECRET)
  --origin         an allowed Origin, e.g. https://app.example (default: same host only)
  --head-timeout-ms  how long a client may take to send its upgrade request (default 10000)
  --seed-session   store the express-session record JSON under session id SID at start
                   (this demo keeps sessions in memory; point a real app at Redis)";

impl Options {
    /// Parses `args` (without the program name); the error is for the user.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            addr: "127.0.0.1:3001".into(),
            secret: std::env::var("SESSION_SECRET").unwrap_or_default(),
            origins: Vec::new(),
            head_timeout: HEAD_TIMEOUT,
            seeds: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
            match flag.as_str() {
                "--addr" => o.addr = value()?,
                "--secret" => o.secret = value()?,
                "--origin" => o.origins.push(value()?),
                "--head-timeout-ms" => {
                    let ms = value()?;
                    let ms = ms.parse().map_err(|_| {
                        format!("--head-timeout-ms takes a number of milliseconds, not `{ms}`")
                    })?;
                    o.head_timeout = Duration::from_millis(ms);
                }
                "--seed-session" => {
                    let v = value()?;
                    let (sid, json) = v
                        .split_once('=')
                        .ok_or(format!("--seed-session takes SID=JSON\n{USAGE}"))?;
                    o.seeds.push((sid.to_owned(), json.to_owned()));
                }
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        if o.secret.is_empty() {
            return Err(format!(
                "no secret: pass --secret or set SESSION_SECRET to the HTTP app's \
                 express-session secret\n{USAGE}"
            ));
        }
        Ok(o)
    }

    /// The session configuration these options describe.
    pub fn config(&self) -> Result<Config, String> {
        let mut b = Config::builder().secret(&self.secret);
        if !self.origins.is_empty() {
            b = b.allowed_origins(self.origins.iter().cloned());
        }
        b.build().map_err(|e| e.to_string())
    }

    /// A handle over a [`MemoryStore`] holding the `--seed-session`s.
    pub async fn sockets<R: Runtime>(&self, runtime: R) -> Result<SessionSockets<R>, String> {
        let config = self.config()?;
        let store = MemoryStore::new();
        for (sid, json) in &self.seeds {
            session_sockets::core::codec::record::decode(json.as_bytes()).map_err(|e| {
                format!("--seed-session: the JSON is not an express-session record: {e}")
            })?;
            let key = format!("{}{sid}", config.key_prefix());
            let ttl = Duration::from_secs(86_400);
            match store.create(key.as_bytes(), json.as_bytes(), ttl).await {
                Ok(true) => {}
                Ok(false) => return Err("--seed-session: the same id is given twice".into()),
                Err(e) => return Err(format!("--seed-session: {e}")),
            }
        }
        Ok(SessionSockets::with_runtime(config, store, runtime))
    }
}

/// A runtime's TCP listener, as the servers use it.
pub trait Listener: Sized {
    /// An accepted connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Listens on `addr`.
    fn bind(addr: &str) -> impl Future<Output = std::io::Result<Self>>;
    /// The address listened on.
    fn local_addr(&self) -> std::io::Result<SocketAddr>;
    /// The next connection.
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Stream>>;
}

impl Listener for smol::net::TcpListener {
    type Stream = smol::net::TcpStream;
    async fn bind(addr: &str) -> std::io::Result<Self> {
        smol::net::TcpListener::bind(addr).await
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        smol::net::TcpListener::local_addr(self)
    }
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        smol::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Listener for async_std::net::TcpListener {
    type Stream = async_std::net::TcpStream;
    async fn bind(addr: &str) -> std::io::Result<Self> {
        async_std::net::TcpListener::bind(addr).await
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        async_std::net::TcpListener::local_addr(self)
    }
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        async_std::net::TcpListener::accept(self)
            .await
            .map(|(s, _)| s)
    }
}

/// A binary's `main`: parses the command line, then, inside `block_on`,
/// listens with `L` and runs [`serve`] on `runtime` for every connection,
/// each a task started by `spawn`. Exits 2 on a usage error, 1 when it
/// cannot listen.
pub fn main<L, R>(
    runtime: R,
    block_on: impl FnOnce(BoxedLocal<ExitCode>) -> ExitCode,
    spawn: impl Fn(Boxed<()>) + 'static,
) -> ExitCode
where
    L: Listener + 'static,
    R: Runtime + Clone,
{
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The session layer's detail (a store's failure, with its cause) goes
    // to the log, never to clients (R35).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    block_on(Box::pin(async move {
        let sockets = match options.sockets(runtime).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let listener = match L::bind(&options.addr).await {
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
        loop {
            let stream = match listener.accept().await {
                Ok(stream) => stream,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            };
            let (sockets, head_timeout) = (sockets.clone(), options.head_timeout);
            spawn(Box::pin(async move {
                if let Err(e) = serve(stream, sockets, head_timeout).await {
                    eprintln!("connection ended: {e}");
                }
            }));
        }
    }))
}

/// Why a connection ended early.
#[derive(Debug)]
pub enum ConnError {
    /// Reading or writing the socket failed.
    Io(std::io::Error),
    /// The WebSocket protocol failed.
    Ws(async_tungstenite::tungstenite::Error),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "socket error: {e}"),
            ConnError::Ws(e) => write!(f, "websocket error: {e}"),
        }
    }
}

impl std::error::Error for ConnError {}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        ConnError::Io(e)
    }
}

impl From<async_tungstenite::tungstenite::Error> for ConnError {
    fn from(e: async_tungstenite::tungstenite::Error) -> Self {
        ConnError::Ws(e)
    }
}

/// Serves one connection: reads the upgrade request (within
/// `head_timeout`), loads its session, then answers `whoami` messages until
/// the client closes.
pub async fn serve<S, R>(
    mut stream: S,
    sockets: SessionSockets<R>,
    head_timeout: Duration,
) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Runtime,
{
    // 1. The request head, bounded in size and time.
    let mut buf = Vec::with_capacity(1024);
    let read = async { read_head(&mut stream, &mut buf).await.map(Some) };
    let timeout = async {
        sockets.runtime().sleep(head_timeout).await;
        Ok(None)
    };
    let (head_len, key, headers) = match futures_lite::future::or(read, timeout).await? {
        Some(Head::Upgrade { len, key, headers }) => (len, key, headers),
        Some(Head::Refuse(status, why)) => return reject(&mut stream, status, why).await,
        Some(Head::Closed) => return Ok(()),
        None => {
            let why = "the request head did not arrive in time";
            return reject(&mut stream, "408 Request Timeout", why).await;
        }
    };

    // 2. The session, before the upgrade is accepted.
    let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()));
    let session = match sockets.session_from_pairs(pairs).await {
        Ok(s) => s,
        Err(e) => {
            let status = match e.fault() {
                fault if fault.needs_operator() => "503 Service Unavailable",
                _ => "401 Unauthorized",
            };
            // The reason and a hint; what to check is in the log (R35).
            let why = format!("{}: {}", e.reason(), e.hint());
            return reject(&mut stream, status, &why).await;
        }
    };

    // 3. The upgrade.
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    let rest = buf.split_off(head_len);
    let mut ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, None).await;

    // 4. Messages.
    let id = session.id().clone();
    while let Some(msg) = ws.next().await {
        match msg? {
            Message::Text(t) if t.as_str() == "whoami" => {
                // Re-read the store: an HTTP route may have changed or
                // destroyed the session since the handshake (R9).
                match sockets.reload(&id).await {
                    Ok(s) => {
                        let json = String::from_utf8_lossy(&s.encode()).into_owned();
                        ws.send(Message::text(json)).await?;
                    }
                    Err(e) => {
                        let frame = CloseFrame {
                            code: CloseCode::Policy,
                            reason: e.reason().into(),
                        };
                        ws.close(Some(frame)).await?;
                        break;
                    }
                }
            }
            Message::Text(_) => {
                ws.send(Message::text("unknown command; try whoami"))
                    .await?
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// What the start of a connection held.
enum Head {
    /// The client closed before a full request head.
    Closed,
    /// A WebSocket upgrade request.
    Upgrade {
        /// The head's length in bytes (what follows is WebSocket data).
        len: usize,
        /// `Sec-WebSocket-Key`.
        key: String,
        /// Every header, in wire order.
        headers: Vec<(String, Vec<u8>)>,
    },
    /// Not an acceptable upgrade: the status line and why.
    Refuse(&'static str, &'static str),
}

/// Reads and parses the request head into `buf`.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<Head> {
    loop {
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        return Ok(match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => match upgrade_key(&req) {
                Ok(key) => Head::Upgrade {
                    len,
                    key,
                    headers: req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), h.value.to_vec()))
                        .collect(),
                },
                Err(why) => Head::Refuse("400 Bad Request", why),
            },
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => Head::Refuse(
                "431 Request Header Fields Too Large",
                "request head too large",
            ),
            Err(httparse::Error::TooManyHeaders) => Head::Refuse(
                "431 Request Header Fields Too Large",
                "more than 64 request headers",
            ),
            Err(_) => Head::Refuse("400 Bad Request", "malformed HTTP request"),
        });
    }
}

/// The `Sec-WebSocket-Key` of a valid upgrade request, or why it is not one.
fn upgrade_key(req: &httparse::Request<'_, '_>) -> Result<String, &'static str> {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if req.method != Some("GET") {
        return Err("a WebSocket upgrade must be a GET request");
    }
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err("this endpoint only serves WebSocket upgrades (Upgrade: websocket)");
    }
    if header("sec-websocket-version") != Some(b"13") {
        return Err("unsupported Sec-WebSocket-Version; expected 13");
    }
    match header("sec-websocket-key").map(std::str::from_utf8) {
        Some(Ok(key)) if !key.is_empty() => Ok(key.to_owned()),
        _ => Err("missing Sec-WebSocket-Key"),
    }
}

/// Answers `status` with `why` as a plain-text body and closes.
async fn reject<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    why: &str,
) -> Result<(), ConnError> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{why}",
        why.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await?;
    stream.close().await?;
    Ok(())
}
