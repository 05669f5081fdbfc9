//! [`SessionLayer`]: the tower layer, and the checks it makes before any
//! handler (or socket.io) sees a request.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::response::IntoResponse;
use tower::layer::util::Identity;
use tower::{Layer, Service};

use session_sockets_core::HandshakeError;
use session_sockets_core::codec::resolve::precheck;
use session_sockets_core::origin::EngineRequest;

use super::reply::ClientError;
use super::slot::{Redacted, RequestSession, Slot};
use super::{Refused, check_request};
use crate::observe::{Observation, Op, Stats};
use crate::runtime::Runtime;
use crate::runtime::tokio::Tokio;
use crate::{Session, SessionSockets, WriteError};

/// A future the services return.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The layer's settings, which its services share.
struct Settings<R> {
    sessions: SessionSockets<R>,
    engine_path: Cow<'static, str>,
    csrf: bool,
    /// A socket.io layer is wrapped.
    socketio: bool,
    /// Requests under this path get error replies as JSON.
    json_under: Option<Cow<'static, str>>,
    /// Every socket.io namespace requires a session: engine.io opens
    /// without a cookie that verifies are refused here (R39).
    require_session: bool,
    /// The socket.io namespaces, for a refused open's connect errors.
    namespaces: Option<Namespaces>,
    /// `Some`: an engine.io open keeps only the headers the sessions need
    /// and these (see [`SessionLayer::socketio_keep_headers`]).
    keep_headers: Option<Arc<[HeaderName]>>,
}

/// The paths of the socket.io namespaces, as they are now.
type Namespaces = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

impl<R: Clone> Clone for Settings<R> {
    fn clone(&self) -> Self {
        Settings {
            sessions: self.sessions.clone(),
            engine_path: self.engine_path.clone(),
            csrf: self.csrf,
            socketio: self.socketio,
            json_under: self.json_under.clone(),
            require_session: self.require_session,
            namespaces: self.namespaces.clone(),
            keep_headers: self.keep_headers.clone(),
        }
    }
}

impl<R> Settings<R> {
    /// Whether error replies to a request for `path` are JSON.
    fn json_for(&self, path: &str) -> bool {
        self.json_under.as_deref().is_some_and(|prefix| {
            let prefix = prefix.trim_end_matches('/');
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

/// The tower layer that gives HTTP routes the sessions the sockets see.
///
/// Put it on the router, last (outermost), built from the same
/// [`SessionSockets`] handle the socket.io middleware uses:
///
/// ```no_run
/// # #[cfg(feature = "socketioxide")]
/// # fn demo(sessions: session_sockets::SessionSockets<session_sockets::runtime::tokio::Tokio>) {
/// use session_sockets::http::SessionLayer;
/// let (io_layer, io) = socketioxide::SocketIo::new_layer();
/// let app: axum::Router = axum::Router::new()
///     /* .route(..) */
///     .layer(SessionLayer::new(sessions).with_socketio(io_layer, &io));
/// # }
/// ```
///
/// For every request, before the handler or socket.io sees it:
///
/// - **Later engine.io requests** (those carrying an engine.io `sid`: polling
///   `GET`/`POST` and the WebSocket upgrade) must pass the config's `Origin`
///   policy, on every path under the engine.io path (`/socket.io`,
///   `/socket.io/`, `/socket.iox/...`), whatever the method or other query
///   parameters (R27). The opening request is left to the session
///   middleware, whose refusal is the readable `connect_error`.
/// - **State-changing requests** (every method but `GET`, `HEAD`, `OPTIONS`
///   and `TRACE`) are refused when their `Origin` fails the policy, or, with
///   no `Origin`, when `Sec-Fetch-Site` is `cross-site` (R26; login and
///   logout included). On by default; [`SessionLayer::csrf_check`] turns it
///   off for APIs that authenticate otherwise.
///
/// Refusals are `403 Forbidden` with a `text/plain` body `reason: hint`
/// (see [`Refused`](super::Refused)), or JSON under
/// [`json_errors_under`](Self::json_errors_under); what to check goes to
/// the log, at `debug`.
///
/// After the handler, for requests whose handler extracted
/// [`HttpSession`](super::HttpSession): a changed session is saved (the same
/// compare-and-set as [`SessionSockets::save`], R25), a new one is created,
/// an unchanged one is touched as express-session touches it, and the
/// matching `Set-Cookie` is written. A save that fails replaces the response
/// with `503` (or `401` when the session ended meanwhile), so a handler's
/// success is never reported for a change that was not stored.
///
/// Every error reply the layer (or the [`HttpSession`](super::HttpSession)
/// extractor) sends holds a stable reason code and a hint for the person
/// at the browser, never the store's address or message ([R35]; the detail
/// goes to the log): `text/plain` `reason: hint`, or
/// `{"error": reason, "message": hint}` for requests under
/// [`json_errors_under`](Self::json_errors_under) and for handlers that
/// answered JSON.
///
/// [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35
pub struct SessionLayer<R = Tokio, L = Identity> {
    shared: Settings<R>,
    inner: L,
}

impl<R: Clone, L: Clone> Clone for SessionLayer<R, L> {
    fn clone(&self) -> Self {
        SessionLayer {
            shared: self.shared.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<R, L> std::fmt::Debug for SessionLayer<R, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("engine_path", &self.shared.engine_path)
            .field("csrf", &self.shared.csrf)
            .field("socketio", &self.shared.socketio)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime + Clone> SessionLayer<R> {
    /// A layer over `sessions`: the same handle (config and store) the
    /// socket.io middleware uses.
    pub fn new(sessions: SessionSockets<R>) -> Self {
        SessionLayer {
            shared: Settings {
                sessions,
                // Checked even when no socket.io layer is attached;
                // `with_socketio` replaces it with the real one.
                engine_path: Cow::Borrowed(super::DEFAULT_ENGINE_PATH),
                csrf: true,
                socketio: false,
                json_under: None,
                require_session: false,
                namespaces: None,
                keep_headers: None,
            },
            inner: Identity::new(),
        }
    }

    /// Wraps the socket.io layer too, so that the checks run in front of it
    /// whatever order the router's layers are in: the engine.io path comes
    /// from `io`'s config (not a string prefix). A login or logout ends the
    /// old session's sockets through the shared [`SessionSockets`] handle:
    /// on this server at once, on the others through the store's events.
    #[cfg(feature = "socketioxide")]
    pub fn with_socketio<A: socketioxide::adapter::Adapter>(
        self,
        io_layer: socketioxide::layer::SocketIoLayer<A>,
        io: &socketioxide::SocketIo<A>,
    ) -> SessionLayer<R, socketioxide::layer::SocketIoLayer<A>> {
        let engine_path = io.config().engine_config.req_path.clone();
        let io = io.clone();
        let namespaces: Namespaces =
            Arc::new(move || io.nsps().iter().map(|ns| ns.ns_path().to_owned()).collect());
        SessionLayer {
            shared: Settings {
                engine_path,
                socketio: true,
                namespaces: Some(namespaces),
                ..self.shared
            },
            inner: io_layer,
        }
    }
}

impl<R, L> SessionLayer<R, L> {
    /// Whether state-changing requests from other sites are refused (R26).
    /// Default `true`. Turn it off only for routes that do not rely on the
    /// session cookie for authority (e.g. an API authenticated by a bearer
    /// token on a separate router).
    pub fn csrf_check(mut self, on: bool) -> Self {
        self.shared.csrf = on;
        self
    }

    /// Declares that every socket.io namespace requires a session
    /// ([`SessionMiddleware::required`](crate::socketio::SessionMiddleware::required)),
    /// so that an engine.io open (the first request of a socket.io
    /// connection) whose `Origin` fails the policy or whose session cookie
    /// is absent or does not verify is refused here, before socket.io
    /// allocates anything for it, with the reason code a namespace connect
    /// would give ([R39]). Only the signature is checked: no store call.
    ///
    /// A polling open (what socket.io clients send first by default) is
    /// answered with an engine.io open that holds nothing on the server and
    /// a `connect_error` for each namespace: the client's `connect_error`
    /// handler sees `reason: hint`, as from the middleware, and the client
    /// does not reconnect by itself. A WebSocket-only open is refused with
    /// `403` and engine.io's `{"code":4,"message":"reason: hint"}`
    /// (clients see `websocket error`, and retry with backoff).
    ///
    /// [R39]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r39
    pub fn socketio_requires_session(mut self, on: bool) -> Self {
        self.shared.require_session = on;
        self
    }

    /// Keeps only the headers the sessions read (`Cookie`, `Origin`,
    /// `Host`), `Sec-WebSocket-Key` (which socket.io reads to answer a
    /// WebSocket open) and `keep` in the opening request of each socket.io
    /// connection. socketioxide keeps that request's head for the
    /// connection's whole life (`Socket::req_parts`), and the session
    /// middleware reads its headers; a browser sends a dozen more
    /// (`User-Agent`, `Accept-*`, `Sec-WebSocket-Extensions`, ...), about
    /// 100 bytes of header map each plus their values, per connected socket.
    /// Every occurrence of a kept name stays, in order. Off by default: with
    /// it on, handlers see only these headers in `req_parts()`, so list every
    /// header your socket handlers or other middlewares read there (e.g.
    /// `X-Forwarded-For`). Other requests (HTTP routes, later engine.io
    /// requests) keep all their headers.
    ///
    /// ```no_run
    /// # #[cfg(feature = "socketioxide")]
    /// # fn demo(sessions: session_sockets::SessionSockets<session_sockets::runtime::tokio::Tokio>) {
    /// use session_sockets::http::SessionLayer;
    /// let (io_layer, io) = socketioxide::SocketIo::new_layer();
    /// let layer = SessionLayer::new(sessions)
    ///     .with_socketio(io_layer, &io)
    ///     .socketio_keep_headers([http::HeaderName::from_static("x-forwarded-for")]);
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn socketio_keep_headers(mut self, keep: impl IntoIterator<Item = HeaderName>) -> Self {
        let mut names: Vec<HeaderName> = vec![
            header::COOKIE,
            header::ORIGIN,
            header::HOST,
            header::SEC_WEBSOCKET_KEY,
        ];
        for name in keep {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        self.shared.keep_headers = Some(names.into());
        self
    }

    /// Answers the layer's errors to requests under `prefix` (e.g. `/api`:
    /// `/api` and `/api/...`, not `/apix`) as JSON
    /// `{"error": reason, "message": hint}` rather than text: refusals
    /// (`403`), a session that could not be loaded (`503`) or saved (`401`,
    /// `503`).
    pub fn json_errors_under(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.shared.json_under = Some(prefix.into());
        self
    }
}

impl<S, R, L> Layer<S> for SessionLayer<R, L>
where
    R: Clone,
    L: Layer<RouteService<S, R>>,
{
    type Service = SessionService<L::Service, R>;

    fn layer(&self, inner: S) -> Self::Service {
        let shared = Arc::new(self.shared.clone());
        SessionService {
            inner: self.inner.layer(RouteService {
                inner,
                shared: Arc::clone(&shared),
            }),
            shared,
        }
    }
}

/// The outer service of [`SessionLayer`]: refuses cross-site requests
/// before anything else sees them.
pub struct SessionService<S, R = Tokio> {
    inner: S,
    shared: Arc<Settings<R>>,
}

impl<S: Clone, R> Clone for SessionService<S, R> {
    fn clone(&self) -> Self {
        SessionService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, R, B> Service<Request<Body>> for SessionService<S, R>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    R: Runtime,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = &self.shared;
        if let Err(refused) = check_request(
            shared.sessions.config(),
            &shared.engine_path,
            shared.csrf,
            req.method(),
            req.uri(),
            req.headers(),
        ) {
            let json = shared.json_for(req.uri().path());
            return Box::pin(std::future::ready(Ok(refused.reply(json))));
        }
        let mut req = req;
        let uri = req.uri();
        let kind = EngineRequest::of(
            shared.engine_path.as_bytes(),
            uri.path().as_bytes(),
            uri.query().map(str::as_bytes),
        );
        if shared.socketio && kind == EngineRequest::Open {
            if shared.sessions.is_shutting_down() {
                // Clients retry a refused open with backoff: against this
                // server once restarted, or another.
                return Box::pin(std::future::ready(Ok(stopping())));
            }
            if shared.require_session {
                let observation = Observation::start(Op::Open, None);
                let headers = req
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes()));
                let checked = precheck(shared.sessions.config(), headers);
                observation.finish(&checked, Stats::default(), true);
                if let Err(e) = checked {
                    let refusal = refuse_open(&req, &e, shared.namespaces.as_deref());
                    return Box::pin(std::future::ready(Ok(refusal)));
                }
            }
            unpin_head(&mut req, shared.keep_headers.as_deref());
        }
        let fut = self.inner.call(req);
        Box::pin(async move { Ok(fut.await?.map(Body::new)) })
    }
}

/// The answer to an engine.io open while the sessions stop: `503`, in
/// engine.io's error format, so that socket.io clients retry.
fn stopping() -> Response<Body> {
    let why = session_sockets_core::Failure::ShuttingDown;
    let message = format!("{}: {}", why.reason(), why.hint());
    let body = serde_json::json!({ "code": 4, "message": message }).to_string();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (
                ::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (::http::header::RETRY_AFTER, HeaderValue::from_static("1")),
        ],
        body,
    )
        .into_response()
}

/// The answer to an engine.io open refused for `e` (R39), allocating
/// nothing that outlives it. A polling open (`GET`, `EIO=4`,
/// `transport=polling`) gets an engine.io open packet under a session id
/// engine.io does not know, and a socket.io `CONNECT_ERROR` for each
/// namespace, worded as the session middleware words it: the client
/// reports `connect_error` with `reason: hint` and stays disconnected; its
/// later requests name an unknown session and are refused by engine.io.
/// Any other open gets engine.io's own refusal, `403`
/// `{"code":4,"message":..}`.
fn refuse_open(
    req: &Request<Body>,
    e: &HandshakeError,
    namespaces: Option<&(dyn Fn() -> Vec<String> + Send + Sync)>,
) -> Response<Body> {
    let message = format!("{}: {}", e.reason(), e.hint());
    let query = req.uri().query().unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    };
    let polling = req.method() == ::http::Method::GET
        && param("EIO") == Some("4")
        && param("transport") == Some("polling");
    let (status, content_type, body) = match namespaces {
        Some(namespaces) if polling => {
            let error = serde_json::json!({ "message": message }).to_string();
            // Not a session id engine.io could ever issue (those are 16
            // characters): every later request with it is refused.
            let mut body = String::from(
                r#"0{"sid":"refused","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            );
            for ns in namespaces() {
                body.push('\u{1e}');
                body.push_str("44");
                if ns != "/" {
                    body.push_str(&ns);
                    body.push(',');
                }
                body.push_str(&error);
            }
            (StatusCode::OK, "text/plain; charset=UTF-8", body)
        }
        _ => {
            let body = serde_json::json!({ "code": 4, "message": message }).to_string();
            (StatusCode::FORBIDDEN, "application/json", body)
        }
    };
    (
        status,
        [
            (
                ::http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            ),
            (
                ::http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Gives the request's URI and header values bytes of their own. hyper
/// hands them out as slices of its 8 KiB read buffer, so a request head
/// kept for a connection's life (socket.io keeps the opening request's, as
/// `Socket::req_parts`) keeps that whole buffer: 8 KiB per idle socket.
/// One buffer of exactly the head's size replaces it. With `keep`, only
/// the headers named there stay (every occurrence, in order), in a header
/// map sized for them. Values that do not parse again (none that hyper
/// accepted) stay as they were.
fn unpin_head(req: &mut Request<Body>, keep: Option<&[HeaderName]>) {
    let kept = |name: &HeaderName| keep.is_none_or(|k| k.contains(name));
    let uri = req.uri().to_string();
    let (mut len, mut count) = (uri.len(), 0);
    for (name, v) in req.headers() {
        if kept(name) {
            len += v.len();
            count += 1;
        }
    }
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(uri.as_bytes());
    for (name, v) in req.headers() {
        if kept(name) {
            buf.extend_from_slice(v.as_bytes());
        }
    }
    let buf = Bytes::from(buf);
    if let Ok(fresh) = ::http::Uri::from_maybe_shared(buf.slice(..uri.len())) {
        *req.uri_mut() = fresh;
    }
    let fresh_value = |v: &HeaderValue, at: usize| {
        let end = at + v.len();
        let value = match HeaderValue::from_maybe_shared(buf.slice(at..end)) {
            Ok(mut fresh) => {
                fresh.set_sensitive(v.is_sensitive());
                fresh
            }
            Err(_) => v.clone(),
        };
        (value, end)
    };
    let mut at = uri.len();
    if keep.is_none() {
        for v in req.headers_mut().values_mut() {
            let (fresh, end) = fresh_value(v, at);
            *v = fresh;
            at = end;
        }
        return;
    }
    let mut trimmed = HeaderMap::with_capacity(count);
    for (name, v) in req.headers() {
        if kept(name) {
            let (fresh, end) = fresh_value(v, at);
            trimmed.append(name.clone(), fresh);
            at = end;
        }
    }
    *req.headers_mut() = trimmed;
}

/// The inner service of [`SessionLayer`], in front of the routes: gives
/// the request a session slot for [`HttpSession`](super::HttpSession) and,
/// after the handler, saves, creates or touches the session and writes the
/// `Set-Cookie`.
pub struct RouteService<S, R = Tokio> {
    inner: S,
    shared: Arc<Settings<R>>,
}

impl<S: Clone, R> Clone for RouteService<S, R> {
    fn clone(&self) -> Self {
        RouteService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, R, B> Service<Request<Body>> for RouteService<S, R>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    R: Runtime + Clone,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let slot = Slot::new(self.shared.sessions.clone());
        req.extensions_mut().insert(slot.clone());
        let json = self.shared.json_for(req.uri().path());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut res = fut.await?.map(Body::new);
            if json && let Some(e) = res.extensions().get::<ClientError>().copied() {
                // The extractor's rejection, answered as text: as JSON here.
                res = e.reply(res.status(), true);
            }
            Ok(finish(&slot, res, json).await)
        })
    }
}

impl Refused {
    /// The `403`, as text or JSON.
    fn reply(&self, json: bool) -> Response<Body> {
        tracing::debug!(reason = self.reason(), "request refused: {self}");
        ClientError {
            reason: self.reason(),
            hint: self.hint(),
        }
        .reply(StatusCode::FORBIDDEN, json)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> axum::response::Response {
        self.reply(false)
    }
}

/// After the handler: saves a changed session, creates a new one, touches
/// an unchanged one (as express-session does), and writes the `Set-Cookie`.
/// A save that fails replaces the handler's response (`json`: its errors
/// are answered in JSON).
async fn finish<R: Runtime + Clone>(
    slot: &Slot<R>,
    mut res: Response<Body>,
    json: bool,
) -> Response<Body> {
    let touches = slot.sessions().config().touches_after_request();
    let plan = match &slot.lock().copy {
        RequestSession::Stored { session, .. } if session.is_changed() => Plan::Save,
        RequestSession::Stored {
            session,
            written: false,
        } if touches => Plan::Touch(Box::new(session.clone())),
        RequestSession::Anonymous(data) if !data.is_empty() => Plan::Save,
        _ => Plan::Nothing,
    };
    match plan {
        Plan::Nothing => {}
        Plan::Save => {
            if let Err(e) = slot.save().await {
                res = unsaved(&e, json || is_json(&res));
                if matches!(e, WriteError::Gone | WriteError::Expired) {
                    slot.clear_cookie();
                }
            }
        }
        Plan::Touch(session) => {
            // A failed touch leaves the session as it was; a read-only
            // request still succeeds.
            if let Ok(touched) = slot.sessions().touch(*session).await
                && let Some(cookie) = touched.set_cookie
            {
                slot.lock().cookie = Some(Redacted(cookie));
            }
        }
    }
    slot.refresh_cookie();
    if let Some(Redacted(cookie)) = slot.lock().cookie.take()
        && let Ok(v) = HeaderValue::from_str(&cookie)
    {
        // The core writes only valid cookie values (R3), so this parse
        // does not fail.
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

enum Plan {
    Nothing,
    Save,
    Touch(Box<Session>),
}

/// The response for a request whose changes could not be stored, in
/// place of the handler's: `401` when the session ended meanwhile, `503`
/// otherwise. The body holds the reason code and a hint, never the
/// store's message (R35; the operation logged that): JSON
/// `{"error": reason, "message": hint}` when the handler answered JSON,
/// `reason: hint` text otherwise.
fn unsaved(e: &WriteError, json: bool) -> Response<Body> {
    let status = match e {
        WriteError::Gone | WriteError::Expired => StatusCode::UNAUTHORIZED,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    ClientError {
        reason: e.reason(),
        hint: e.hint(),
    }
    .reply(status, json)
}

/// Whether `res` is a JSON response.
fn is_json(res: &Response<Body>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ::http::header;

    /// Whether `bytes` lie inside `buf`'s allocation.
    fn inside(buf: &Bytes, bytes: &[u8]) -> bool {
        let range = buf.as_ptr_range();
        range.contains(&bytes.as_ptr())
    }

    #[test]
    fn an_unpinned_head_no_longer_holds_the_read_buffer_and_is_unchanged() {
        // As hyper parses a request: every part a slice of one read buffer.
        let wire = Bytes::from_static(
            b"/socket.io/?EIO=4&transport=websocket|connect.sid=s%3Aabc.def|http://a.example|\xe9t\xe9",
        );
        let mut at = 0;
        let mut part = |len: usize| {
            let s = wire.slice(at..at + len);
            at += len + 1;
            s
        };
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = ::http::Uri::from_maybe_shared(part(37)).unwrap();
        let mut cookie = HeaderValue::from_maybe_shared(part(23)).unwrap();
        cookie.set_sensitive(true);
        req.headers_mut().insert(header::COOKIE, cookie);
        let origin = HeaderValue::from_maybe_shared(part(16)).unwrap();
        req.headers_mut().append(header::ORIGIN, origin.clone());
        req.headers_mut().append(
            header::ORIGIN,
            HeaderValue::from_maybe_shared(part(3)).unwrap(),
        );
        assert!(inside(&wire, req.headers()[header::COOKIE].as_bytes()));
        let before = (req.uri().clone(), req.headers().clone());

        unpin_head(&mut req, None);

        assert_eq!(req.uri(), &before.0);
        assert_eq!(req.headers(), &before.1);
        assert!(req.headers()[header::COOKIE].is_sensitive());
        assert_eq!(
            req.headers()
                .get_all(header::ORIGIN)
                .iter()
                .collect::<Vec<_>>(),
            [&origin, &HeaderValue::from_bytes(b"\xe9t\xe9").unwrap()]
        );
        assert!(!inside(&wire, req.uri().path().as_bytes()));
        for v in req.headers().values() {
            assert!(
                !inside(&wire, v.as_bytes()),
                "a value still points into the read buffer"
            );
        }
    }

    #[test]
    fn a_trimmed_head_keeps_the_named_headers_in_order_and_drops_the_rest() {
        let wire = Bytes::from_static(b"/socket.io/?EIO=4&transport=websocket|a=1|b=2|Mozilla/5.0");
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = ::http::Uri::from_maybe_shared(wire.slice(..37)).unwrap();
        let h = req.headers_mut();
        h.append(header::HOST, HeaderValue::from_static("chat.example"));
        h.append(
            header::USER_AGENT,
            HeaderValue::from_maybe_shared(wire.slice(42..)).unwrap(),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_maybe_shared(wire.slice(38..41)).unwrap(),
        );
        h.append(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        h.append(
            header::COOKIE,
            HeaderValue::from_maybe_shared(wire.slice(42..45)).unwrap(),
        );
        h.append(
            header::ORIGIN,
            HeaderValue::from_static("http://chat.example"),
        );
        h.append(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let layer = SessionLayer::new(crate::SessionSockets::new(
            crate::Config::builder().secret("s").build().unwrap(),
            crate::MemoryStore::new(),
        ))
        .socketio_keep_headers([HeaderName::from_static("x-forwarded-for"), header::HOST]);
        let before = req.headers().clone();

        unpin_head(&mut req, layer.shared.keep_headers.as_deref());

        let names: Vec<_> = req.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "host",
                "cookie",
                "origin",
                "sec-websocket-key",
                "x-forwarded-for"
            ]
        );
        for name in names {
            assert_eq!(
                req.headers().get_all(name).iter().collect::<Vec<_>>(),
                before.get_all(name).iter().collect::<Vec<_>>(),
                "{name}"
            );
        }
        assert_eq!(req.headers().len(), 6, "both cookie lines");
        assert!(req.headers().capacity() < before.capacity());
        assert!(!inside(&wire, req.uri().path().as_bytes()));
        for v in req.headers().values() {
            assert!(!inside(&wire, v.as_bytes()));
        }
    }
}
