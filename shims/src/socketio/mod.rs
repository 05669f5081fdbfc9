#![doc = include_str!("../../docs/socketio.md")]

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::handler::{
    ConnectMiddleware, FromConnectParts, FromDisconnectParts, FromMessageParts, Value,
};
use socketioxide::socket::{DisconnectReason, Socket};

use crate::core::origin::OriginRejection;
use crate::live::LiveSession;
use crate::live::hub::SessionEnd;
use crate::runtime::Runtime;
use crate::runtime::tokio::Tokio;
use crate::{HandshakeError, SessionId, SessionSockets};

#[cfg(feature = "socketio-redis")]
pub mod redis;

/// The name of the socket.io room that every socket of session `id` joins:
/// the first 16 bytes of the SHA-256 of the id, base64url without padding
/// (22 characters). The id itself never becomes a room name, so room lists,
/// adapters and logs never hold it (R16); 128 bits keep distinct sessions
/// apart, and the short name is what socketioxide copies into its room maps
/// for every socket.
pub fn session_room(id: &SessionId) -> String {
    let digest = Sha256::digest(id.expose().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Disconnects every socket of session `id`, on every namespace of `io`:
/// what an HTTP logout calls after destroying the session (R9). Sockets of
/// other sessions stay connected. The clients see the disconnect reason
/// `io server disconnect` and do not reconnect on their own.
pub async fn disconnect_session<A: Adapter>(
    io: &SocketIo<A>,
    id: &SessionId,
) -> Result<(), socketioxide::BroadcastError> {
    let room = session_room(id);
    for ns in io.nsps() {
        ns.within(room.clone()).disconnect().await?;
    }
    Ok(())
}

/// Checks `Origin` on the later HTTP requests of a socket.io connection
/// (R6). The session middleware sees the request that opened the engine.io
/// connection only: socketioxide keeps that one's headers, so a WebSocket
/// upgrade (or a poll) sent later, from another site, onto a connection a
/// same-site page opened would pass unseen. Call this from an HTTP
/// middleware in front of socketioxide for every request: requests that
/// carry an engine.io `sid` (the later ones) must pass the config's origin
/// policy; the opening request (no `sid`) is left to the session
/// middleware, whose refusal is the readable `connect_error`. Answer an
/// `Err` with 403 and its message (`origin_rejected: ...`).
///
/// ```
/// use session_sockets::Config;
/// use http::{HeaderMap, HeaderValue, Uri, header};
/// use session_sockets::socketio::check_later_origin;
///
/// let config = Config::builder().secret("s").build().unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert(header::HOST, HeaderValue::from_static("chat.example"));
/// headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
/// let upgrade: Uri = "/socket.io/?EIO=4&transport=websocket&sid=abc".parse().unwrap();
/// let err = check_later_origin(&config, &upgrade, &headers).unwrap_err();
/// assert_eq!(err.reason(), "origin_rejected");
/// ```
pub fn check_later_origin(
    config: &crate::Config,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Result<(), ConnectRejection> {
    // Every path: a caller that routes only socket.io here loses nothing.
    crate::http::check_request(config, "", false, &http::Method::GET, uri, headers).map_err(|r| {
        let rejection = r
            .origin_rejection()
            .cloned()
            .unwrap_or(OriginRejection::Malformed);
        ConnectRejection(HandshakeError::OriginRejected(rejection))
    })
}

/// The connect middleware that loads the session of each namespace
/// connection. Attach it with socketioxide's `ConnectHandler::with`:
///
/// ```no_run
/// # async fn demo(sessions: session_sockets::SessionSockets<session_sockets::runtime::tokio::Tokio>) {
/// use session_sockets::socketio::{SessionMiddleware, SocketSession};
/// use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
///
/// let (_layer, io) = SocketIo::new_layer();
/// io.ns(
///     "/",
///     (async |_socket: SocketRef, _session: SocketSession| {})
///         .with(SessionMiddleware::required(sessions)),
/// );
/// # }
/// ```
pub struct SessionMiddleware<R = Tokio> {
    sessions: SessionSockets<R>,
    required: bool,
}

impl<R: Clone> Clone for SessionMiddleware<R> {
    fn clone(&self) -> Self {
        SessionMiddleware {
            sessions: self.sessions.clone(),
            required: self.required,
        }
    }
}

impl<R> fmt::Debug for SessionMiddleware<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime + Clone> SessionMiddleware<R> {
    /// Refuses connections without a valid session: the client gets a
    /// `connect_error` whose message is `reason: hint` (see
    /// [`ConnectRejection::client_message`]). Handlers take
    /// [`SocketSession`].
    pub fn required(sessions: SessionSockets<R>) -> Self {
        SessionMiddleware {
            sessions,
            required: true,
        }
    }

    /// Lets every connection through; handlers take [`TrySession`] and see
    /// either the session or why there is none (session.socket.io's
    /// `(err, socket, session)`). [`SocketSession`] extraction fails for
    /// sockets without a session, so handlers taking it are not called.
    pub fn optional(sessions: SessionSockets<R>) -> Self {
        SessionMiddleware {
            sessions,
            required: false,
        }
    }

    async fn connect<A: Adapter>(&self, s: Arc<Socket<A>>) -> Result<(), ConnectRejection> {
        let socket = Arc::downgrade(&s);
        let on_end = move |why: SessionEnd| {
            if let Some(socket) = socket.upgrade() {
                // The client sees why, then the disconnect.
                let reason = serde_json::json!({
                    "reason": why.reason(),
                    "message": why.to_string(),
                });
                let _ = socket.emit(SESSION_ENDED, &reason);
                let _ = socket.disconnect();
            }
        };
        let slot = match self
            .sessions
            .live_session(&s.req_parts().headers, on_end)
            .await
        {
            Ok(live) => {
                s.join(session_room(live.id()));
                Slot::Session(SocketSession { live })
            }
            Err(e) if self.required => return Err(ConnectRejection(e)),
            Err(e) => Slot::Error(Box::new(e)),
        };
        s.extensions.insert(slot);
        Ok(())
    }
}

impl<A: Adapter, R: Runtime + Clone> ConnectMiddleware<A, SessionMiddleware<R>>
    for SessionMiddleware<R>
{
    async fn call<'a>(
        &'a self,
        s: Arc<Socket<A>>,
        _auth: &'a Option<Value>,
    ) -> Result<(), Box<dyn fmt::Display + Send>> {
        self.connect(s)
            .await
            .map_err(|e| Box::new(e.client_message()) as Box<dyn fmt::Display + Send>)
    }
}

/// Why [`SessionMiddleware::required`] refused a connection. The client
/// receives [`client_message`](Self::client_message) as its
/// `connect_error` message; `Display` ([`HandshakeError::reason`], `": "`,
/// then what to check) is the operator's. Neither holds a session id,
/// cookie value or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRejection(pub HandshakeError);

impl ConnectRejection {
    /// The stable reason code ([`HandshakeError::reason`]).
    pub fn reason(&self) -> &'static str {
        self.0.reason()
    }

    /// What the client is told (R35): the reason code, `": "`, and a hint
    /// for the person at the browser ([`HandshakeError::hint`]), with
    /// nothing of the server's insides.
    pub fn client_message(&self) -> ClientMessage {
        ClientMessage {
            reason: self.0.reason(),
            hint: self.0.hint(),
        }
    }
}

/// What a client is told about an error ([R35]): `reason: hint`.
///
/// [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientMessage {
    /// The stable reason code.
    pub reason: &'static str,
    /// A hint for the person at the browser.
    pub hint: &'static str,
}

impl fmt::Display for ClientMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.hint)
    }
}

impl fmt::Display for ConnectRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.reason(), self.0)
    }
}

/// The message already holds the [`HandshakeError`]'s, so `source` is that
/// error's own cause (a store's, say), as in the core's errors: a report
/// walking the chain says each thing once.
impl std::error::Error for ConnectRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

/// What the middleware left on the socket. The error is boxed: every socket
/// keeps its slot, and most hold a session (one pointer).
enum Slot<R> {
    Session(SocketSession<R>),
    Error(Box<HandshakeError>),
}

impl<R> Clone for Slot<R> {
    fn clone(&self) -> Self {
        match self {
            Slot::Session(s) => Slot::Session(s.clone()),
            Slot::Error(e) => Slot::Error(e.clone()),
        }
    }
}

/// The event a socket receives, with `{"reason": "destroyed" | "expired",
/// "message": ..}`, just before the server disconnects it because its
/// session ended (a logout anywhere, deletion, expiry; [R32]).
///
/// [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32
pub const SESSION_ENDED: &str = "session_ended";

/// The session of a socket: the extractor for connect, message and
/// disconnect handlers, and the handle to read, change, save, reload and
/// destroy it from any of them. Clones share one session.
///
/// It is the socket's [`LiveSession`] (it derefs to it), with the verbs of
/// `HttpSession`: `session.get::<String>("user")`, `session.insert("n",
/// 1)`, `session.remove("draft")`, then `session.save().await`.
///
/// Changes stay on the socket until [`save`](LiveSession::save); the save writes
/// only the keys this socket changed, merged onto whatever the store holds
/// now, so an HTTP route's concurrent changes are kept (R25), and it never
/// brings back a session that was destroyed meanwhile (R24).
///
/// Extraction fails (the handler is not called) when the socket has no
/// session: use [`TrySession`] with [`SessionMiddleware::optional`] to see
/// why.
pub struct SocketSession<R = Tokio> {
    live: LiveSession<R>,
}

impl<R> Clone for SocketSession<R> {
    fn clone(&self) -> Self {
        SocketSession {
            live: self.live.clone(),
        }
    }
}

impl<R> fmt::Debug for SocketSession<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SocketSession").field(&self.live).finish()
    }
}

impl SocketSession {
    /// The session of any socket, outside its handlers (session.socket.io's
    /// `getSession(socket, ..)` starts here): e.g. for every socket of
    /// `io.sockets()`. Fails for sockets without a session.
    pub fn of<A: Adapter>(socket: &Socket<A>) -> Result<SocketSession, NoSession> {
        session_of(socket)
    }
}

impl<R> SocketSession<R> {
    /// The name of this session's room (see [`session_room`]).
    pub fn room(&self) -> String {
        session_room(self.live.id())
    }

    /// The live session underneath.
    pub fn live(&self) -> &LiveSession<R> {
        &self.live
    }
}

/// A socket's session is a [`LiveSession`]: `get`, `insert`, `remove`,
/// `data`, `with`, `with_mut`, `save`, `update`, `reload`, `destroy` are
/// its methods.
impl<R> std::ops::Deref for SocketSession<R> {
    type Target = LiveSession<R>;

    fn deref(&self) -> &LiveSession<R> {
        &self.live
    }
}

/// The socket has no session, so [`SocketSession`] extraction failed and
/// the handler is not called.
#[derive(Debug)]
pub struct NoSession(Option<HandshakeError>);

impl NoSession {
    /// Why the socket has no session; `None` when no session middleware
    /// ran for its namespace.
    pub fn error(&self) -> Option<&HandshakeError> {
        self.0.as_ref()
    }
}

impl fmt::Display for NoSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(e) => write!(f, "the socket has no session ({}): {e}", e.reason()),
            None => f.write_str(NOT_INSTALLED),
        }
    }
}

impl std::error::Error for NoSession {}

const NOT_INSTALLED: &str = "the socket has no session slot: add \
     `.with(SessionMiddleware::required(..))` or `.with(SessionMiddleware::optional(..))` \
     to this namespace's connect handler";

/// The middleware is not installed on this namespace.
#[derive(Debug)]
pub struct MiddlewareMissing;

impl fmt::Display for MiddlewareMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_INSTALLED)
    }
}

impl std::error::Error for MiddlewareMissing {}

fn session_of<A: Adapter, R: Runtime + Clone>(
    s: &Socket<A>,
) -> Result<SocketSession<R>, NoSession> {
    match s.extensions.get::<Slot<R>>() {
        Some(Slot::Session(session)) => Ok(session),
        Some(Slot::Error(e)) => Err(NoSession(Some(*e))),
        None => Err(NoSession(None)),
    }
}

fn try_session_of<A: Adapter, R: Runtime + Clone>(
    s: &Socket<A>,
) -> Result<TrySession<R>, MiddlewareMissing> {
    match s.extensions.get::<Slot<R>>() {
        Some(Slot::Session(session)) => Ok(TrySession(Ok(session))),
        Some(Slot::Error(e)) => Ok(TrySession(Err(*e))),
        None => Err(MiddlewareMissing),
    }
}

impl<A: Adapter, R: Runtime + Clone> FromConnectParts<A> for SocketSession<R> {
    type Error = NoSession;
    fn from_connect_parts(s: &Arc<Socket<A>>, _: &Option<Value>) -> Result<Self, NoSession> {
        session_of(s)
    }
}

impl<A: Adapter, R: Runtime + Clone> FromMessageParts<A> for SocketSession<R> {
    type Error = NoSession;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, NoSession> {
        session_of(s)
    }
}

impl<A: Adapter, R: Runtime + Clone> FromDisconnectParts<A> for SocketSession<R> {
    type Error = NoSession;
    fn from_disconnect_parts(s: &Arc<Socket<A>>, _: DisconnectReason) -> Result<Self, NoSession> {
        session_of(s)
    }
}

/// The session or why there is none: session.socket.io's `(err, socket,
/// session)` for [`SessionMiddleware::optional`]. Extraction fails only
/// when no session middleware ran for the namespace.
#[derive(Clone, Debug)]
pub struct TrySession<R = Tokio>(pub Result<SocketSession<R>, HandshakeError>);

impl<A: Adapter, R: Runtime + Clone> FromConnectParts<A> for TrySession<R> {
    type Error = MiddlewareMissing;
    fn from_connect_parts(s: &Arc<Socket<A>>, _: &Option<Value>) -> Result<Self, Self::Error> {
        try_session_of(s)
    }
}

impl<A: Adapter, R: Runtime + Clone> FromMessageParts<A> for TrySession<R> {
    type Error = MiddlewareMissing;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        try_session_of(s)
    }
}

impl<A: Adapter, R: Runtime + Clone> FromDisconnectParts<A> for TrySession<R> {
    type Error = MiddlewareMissing;
    fn from_disconnect_parts(s: &Arc<Socket<A>>, _: DisconnectReason) -> Result<Self, Self::Error> {
        try_session_of(s)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;
    use crate::core::{Failure, StoreError};

    #[derive(Debug)]
    struct Cause;

    impl fmt::Display for Cause {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection refused")
        }
    }

    impl Error for Cause {}

    #[test]
    fn a_rejection_says_each_thing_once_along_its_source_chain() {
        let plain = ConnectRejection(HandshakeError::NoCookieHeader);
        assert!(plain.to_string().starts_with("no_cookie_header: "));
        assert!(plain.source().is_none(), "the message already holds it");

        let failed = ConnectRejection(HandshakeError::Failed(Failure::Store(
            StoreError::with_source("Redis is down", Cause),
        )));
        let mut chain = vec![failed.to_string()];
        let mut next = failed.source();
        while let Some(e) = next {
            chain.push(e.to_string());
            next = e.source();
        }
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert!(chain[0].contains("Redis is down"), "{chain:?}");
        assert_eq!(chain[1], "connection refused");
    }
}
