//! Loading a session: [`Handshake`] (request headers in, a [`Session`]
//! out) and [`Reload`] (a known id in, the session as stored now out). Both
//! are one `Load`; the order of calls is [`Machine`](crate::Machine)'s.

use std::sync::Arc;

use crate::config::Config;
use crate::cookie::{Lookup, Scan, ValueBuf};
use crate::error::{Failure, HandshakeError, unexpected};
use crate::machine::{Cx, Op, Step};
use crate::origin::{Gathered, eq_ignore_case};
use crate::record;
use crate::request::{Reply, Request, StoreKey};
use crate::session::{Session, SessionId};
use crate::signature::{SIGNED_PREFIX, unsign};
use crate::time::{Now, millis};

/// The session id a request's cookie names, after verification. `Debug` is
/// redacted.
pub struct ResolvedSid {
    buf: ValueBuf,
    start: usize,
}

impl ResolvedSid {
    /// The id's bytes (UTF-8: the JavaScript string express-session sees).
    pub fn expose(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The id as a [`SessionId`].
    pub fn to_session_id(&self) -> SessionId {
        SessionId::new(&*String::from_utf8_lossy(self.expose()))
    }
}

impl std::fmt::Debug for ResolvedSid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResolvedSid(<redacted>)")
    }
}

/// Resolves the session id named by a request's `Cookie` header lines
/// exactly as express-session 1.x does (cookie 0.7.2 parsing,
/// cookie-signature 1.0.7 verification, secret rotation), without any IO.
///
/// Errors are the cookie-level [`HandshakeError`]s: `NoCookieHeader`,
/// `CookieAbsent`, `EmptyValue`, `Unsigned`, `SignatureInvalid`,
/// `SignedEmptySid` and `HeaderTooLarge`.
pub fn resolve_cookie<'a, I>(config: &Config, lines: I) -> Result<ResolvedSid, HandshakeError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut buf = ValueBuf::new();
    let mut scan = Scan::new(&config.cookie_finder, config.limits, &mut buf);
    for line in lines {
        scan.line(line);
    }
    let lookup = scan.finish();
    let start = verify(config, lookup, &mut buf)?;
    Ok(ResolvedSid { buf, start })
}

/// Verifies the value a scan found, in `buf`: on success `buf[start..]` is
/// the session id (the buffer is cut after it).
fn verify(config: &Config, lookup: Lookup, buf: &mut ValueBuf) -> Result<usize, HandshakeError> {
    let name = || config.cookie_name.clone();
    match lookup {
        Lookup::NoHeader => return Err(HandshakeError::NoCookieHeader),
        Lookup::Absent => {
            return Err(HandshakeError::CookieAbsent {
                cookie_name: name(),
            });
        }
        Lookup::TooLarge(e) => return Err(HandshakeError::HeaderTooLarge(e)),
        Lookup::Found => {}
    }
    if buf.is_empty() {
        return Err(HandshakeError::EmptyValue {
            cookie_name: name(),
        });
    }
    let Some(signed) = buf.strip_prefix(SIGNED_PREFIX) else {
        return if config.accept_unsigned {
            Ok(0)
        } else {
            Err(HandshakeError::Unsigned {
                cookie_name: name(),
            })
        };
    };
    let Some(sid) = unsign(signed, &config.keys) else {
        return Err(HandshakeError::SignatureInvalid {
            cookie_name: name(),
        });
    };
    if sid.is_empty() {
        return Err(HandshakeError::SignedEmptySid {
            cookie_name: name(),
        });
    }
    let (start, len) = (SIGNED_PREFIX.len(), sid.len());
    buf.truncate(start + len);
    Ok(start)
}

/// What a handshake checks before it asks the store: `Origin`, the session
/// cookie and its signature, the id's shape. On success `buf[start..]` is
/// the session id.
fn check_headers<I, N, V>(
    config: &Config,
    headers: I,
    buf: &mut ValueBuf,
) -> Result<usize, HandshakeError>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut scan = Scan::new(&config.cookie_finder, config.limits, buf);
    // `Origin` and `Host` are kept as the caller's values, not copied.
    let mut origin = Gathered::new();
    for (name, value) in headers {
        let name = name.as_ref();
        if eq_ignore_case(name, b"cookie") {
            scan.line(value.as_ref());
        } else {
            origin.offer(name, || value);
        }
    }
    if let Err(r) = config.origin.check_seen(&origin.seen()) {
        return Err(HandshakeError::OriginRejected(r));
    }
    let lookup = scan.finish();
    let start = verify(config, lookup, buf)?;
    if !config.usable_sid(buf.get(start..).unwrap_or_default()) {
        return Err(Failure::InvalidSessionId.into());
    }
    Ok(start)
}

/// The checks a [`Handshake`] makes before it asks the store, alone: the
/// `Origin` policy ([R5]), then the session cookie, its signature and the
/// id's shape, with no IO and the same errors in the same order. What a
/// server can afford on every engine.io open, to refuse anonymous ones
/// before anything is allocated for them ([R39]). `Ok` says only that the
/// cookie verifies: the session may still have ended.
///
/// ```
/// use session_sockets_core::{Config, HandshakeError, precheck};
///
/// let config = Config::builder().secret("keyboard cat").build().unwrap();
/// assert_eq!(precheck(&config, [("accept", "*/*")]), Err(HandshakeError::NoCookieHeader));
/// let cookie = "connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU";
/// assert_eq!(precheck(&config, [("cookie", cookie)]), Ok(()));
/// ```
///
/// [R5]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r5
/// [R39]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r39
pub fn precheck<I, N, V>(config: &Config, headers: I) -> Result<(), HandshakeError>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    check_headers(config, headers, &mut ValueBuf::new()).map(|_| ())
}

/// The outcome of a `Load` of `sid` answered with `reply` at `now`.
fn loaded(
    cx: &Cx<'_>,
    reply: Reply,
    sid: impl FnOnce() -> SessionId,
) -> Result<Session, HandshakeError> {
    match reply {
        Reply::Found(bytes) => {
            let rec = record::decode(&bytes).map_err(Failure::MalformedRecord)?;
            // With rolling sessions the stored `cookie.expires` goes stale by
            // design (connect-redis's touch only refreshes the TTL), so the
            // store's TTL is the authority, as it is for express-session.
            if !cx.config.rolling && rec.cookie.is_expired(millis(cx.now.wall)) {
                return Err(HandshakeError::Expired);
            }
            Ok(Session::from_record(sid(), rec, bytes.0))
        }
        Reply::NotFound => Err(HandshakeError::SessionNotFound),
        Reply::Failed(e) => Err(Failure::Store(e).into()),
        other => Err(unexpected("Load", &other, "Found, NotFound or Failed").into()),
    }
}

/// The handshake's step: the cookie's value, decoded in place, and where
/// the verified id starts in it.
pub struct HandshakeStep {
    headers_seen: bool,
    buf: ValueBuf,
    start: usize,
}

impl Step for HandshakeStep {
    type Output = Session;
    type Error = HandshakeError;
    const NAME: &'static str = "Handshake";

    fn on_reply(
        &mut self,
        cx: &mut Cx<'_>,
        reply: Reply,
    ) -> Option<Result<Session, HandshakeError>> {
        // The id is materialized only now; until the record arrives the
        // inline buffers are all that exist (no allocation on the way to
        // the `Load` request).
        let sid = self.buf.get(self.start..).unwrap_or_default();
        // One allocation, the id's own: the lossy view borrows the bytes
        // (decoded ids are UTF-8) instead of copying them into a String first.
        Some(loaded(cx, reply, || {
            SessionId::new(&*String::from_utf8_lossy(sid))
        }))
    }
}

/// The handshake machine: headers in, one `Load`, a [`Session`] out. Drive
/// it through [`Machine`](crate::Machine).
///
/// ```text
/// Handshake::new(config, now)
///   handle_headers(..)   Origin check, cookie lookup, signature: no IO
///   poll_request()    -> Request::Load { id, key }
///   handle_reply(id, Found | NotFound | Failed, now)
///   handle_timeout(now)  fails closed once the store deadline passes
///   poll_outcome()    -> Ok(Session) | Err(HandshakeError)
/// ```
///
/// The store deadline counts from `new`. A finished machine stays finished:
/// later inputs are ignored.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Instant, SystemTime};
/// use session_sockets_core::{Config, Handshake, Machine, Now, Reply, Request};
///
/// let config = Arc::new(Config::builder().secret("keyboard cat").build().unwrap());
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let mut hs = Handshake::new(config, now);
/// hs.handle_headers([(
///     "cookie",
///     "connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU",
/// )]);
/// let Some(Request::Load { id, key }) = hs.poll_request() else { panic!() };
/// assert_eq!(key.as_bytes(), b"sess:apple");
/// hs.handle_reply(id, Reply::Found(br#"{"cookie":{"expires":null},"user":"ada"}"#[..].into()), now.instant);
/// let session = hs.poll_outcome().unwrap().unwrap();
/// assert_eq!(session.get::<String>("user").unwrap().as_deref(), Some("ada"));
/// ```
pub type Handshake = Op<HandshakeStep>;

impl Op<HandshakeStep> {
    /// A handshake started at `now`; the store deadline counts from here.
    pub fn new(config: Arc<Config>, now: Now) -> Self {
        Op::with_step(
            config,
            now,
            HandshakeStep {
                headers_seen: false,
                buf: ValueBuf::new(),
                start: 0,
            },
        )
    }

    /// Takes the request's headers, all at once, as `(name, value)` byte
    /// pairs in wire order; names are matched case-insensitively. Checks
    /// `Origin`, finds and verifies the session cookie, and either queues a
    /// `Load` or finishes with an error. Calls after the first are ignored.
    pub fn handle_headers<I, N, V>(&mut self, headers: I)
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        if std::mem::replace(&mut self.step.headers_seen, true) {
            return;
        }
        self.begin(|step, cx| {
            let config = cx.config;
            step.start = match check_headers(config, headers, &mut step.buf) {
                Ok(start) => start,
                Err(e) => return Some(Err(e)),
            };
            let sid = step.buf.get(step.start..).unwrap_or_default();
            let prefix = config.key_prefix.as_bytes();
            // Built where the request is, so it is written once.
            cx.issue(|id| Request::Load {
                id,
                key: StoreKey::new(prefix, sid),
            });
            None
        });
    }

    /// [`Self::handle_headers`] for an `http::HeaderMap`.
    #[cfg(feature = "http")]
    pub fn handle_header_map(&mut self, headers: &http::HeaderMap) {
        self.handle_headers(
            headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
        );
    }
}

/// The reload's step: the id being loaded.
pub struct ReloadStep {
    sid: SessionId,
}

impl Step for ReloadStep {
    type Output = Session;
    type Error = HandshakeError;
    const NAME: &'static str = "Reload";

    fn on_reply(
        &mut self,
        cx: &mut Cx<'_>,
        reply: Reply,
    ) -> Option<Result<Session, HandshakeError>> {
        Some(loaded(cx, reply, || self.sid.clone()))
    }
}

/// Loads a known session again: session.socket.io's `getSession`, and how a
/// long-lived socket picks up what an HTTP route changed ([R9]). Same shape
/// and outcomes as [`Handshake`] after its headers: one `Load`, then
/// `Ok(Session)`, `SessionNotFound`, `Expired`, or a [`Failure`]
/// (`InvalidSessionId`, `MalformedRecord`, `Store`, `Timeout`).
///
/// [R9]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r9
pub type Reload = Op<ReloadStep>;

impl Op<ReloadStep> {
    /// Reloads the session `sid`, starting at `now`.
    pub fn new(config: Arc<Config>, sid: &SessionId, now: Now) -> Self {
        let mut op = Op::with_step(config, now, ReloadStep { sid: sid.clone() });
        op.begin(|step, cx| {
            let bytes = step.sid.expose().as_bytes();
            if !cx.config.usable_sid(bytes) {
                return Some(Err(Failure::InvalidSessionId.into()));
            }
            let key = StoreKey::new(cx.config.key_prefix.as_bytes(), bytes);
            cx.issue(|id| Request::Load { id, key });
            None
        });
        op
    }
}
