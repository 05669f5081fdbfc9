//! Loading a session from a request's headers: [`Handshake`]. The order of
//! calls is [`Machine`](crate::Machine)'s.

use std::sync::Arc;
use std::time::Instant;

use crate::codec::cookie::ValueBuf;
use crate::codec::record;
use crate::codec::resolve::check_headers;
use crate::config::Config;
use crate::error::{Failure, HandshakeError, unexpected};
use crate::format::Format;
use crate::machines::op::{Cx, Op, Step};
use crate::request::{Reply, Request, StoreKey};
use crate::session::{Session, SessionId};
use crate::time::{Now, millis};

/// The outcome of a `Load` of `sid` answered with `reply` at `now`.
pub(crate) fn loaded(
    cx: &Cx<'_>,
    reply: Reply,
    sid: impl FnOnce() -> SessionId,
) -> Result<Session, HandshakeError> {
    match reply {
        Reply::Found(bytes) if matches!(cx.config.format, Format::Express) => {
            let rec = record::decode(&bytes).map_err(Failure::MalformedRecord)?;
            // With rolling sessions the stored `cookie.expires` goes stale by
            // design (connect-redis's touch only refreshes the TTL), so the
            // store's TTL is the authority, as it is for express-session.
            if !cx.config.rolling && rec.cookie.is_expired(millis(cx.now.wall)) {
                return Err(HandshakeError::Expired);
            }
            Ok(Session::from_record(sid(), rec, bytes.0))
        }
        Reply::Found(bytes) => {
            let sid = sid();
            let (meta, data) = cx
                .config
                .decode_record(sid.expose(), &bytes)
                .map_err(Failure::MalformedRecord)?;
            if cx.config.meta_expired(&meta, cx.now.wall) {
                return Err(HandshakeError::Expired);
            }
            Ok(Session::from_stored(sid, meta, data, bytes.0))
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
///   handle_headers(.., now) Origin check, cookie lookup, signature: no IO
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
/// use session_sockets_core::machines::{Handshake};
/// use session_sockets_core::{Config, Machine, Now, Reply, Request};
///
/// let config = Arc::new(Config::builder().secret("keyboard cat").build().unwrap());
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let mut hs = Handshake::new(config, now);
/// let cookie = "connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU";
/// hs.handle_headers([("cookie", cookie)], now.instant);
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

    /// Takes the request's headers at `now`, all at once, as `(name,
    /// value)` byte pairs in wire order; names are matched
    /// case-insensitively. Checks `Origin`, finds and verifies the session
    /// cookie, and either queues a `Load` (its deadline counted from `now`)
    /// or finishes with an error. Past the store deadline counted from the
    /// machine's start it finishes with a timeout instead. Calls after the
    /// first are ignored.
    pub fn handle_headers<I, N, V>(&mut self, headers: I, now: Instant)
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        if std::mem::replace(&mut self.step.headers_seen, true) {
            return;
        }
        self.begin_at(now, |step, cx| {
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
    pub fn handle_header_map(&mut self, headers: &http::HeaderMap, now: Instant) {
        self.handle_headers(
            headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
            now,
        );
    }
}
