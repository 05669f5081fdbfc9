//! The handshake machine: request headers in, a [`Session`] out.
//!
//! ```text
//! new(config, now)
//!   handle_headers(..)   Origin check, cookie lookup, signature: no IO
//!   poll_request()    -> Request::Load { id, key }
//!   handle_reply(id, Found | NotFound | Failed, now)
//!   handle_timeout(now)  fails closed once the store deadline passes
//!   poll_outcome()    -> Ok(Session) | Err(HandshakeError)
//! ```
//!
//! Mutate, then drain outputs: after every `handle_*` call, drain
//! `poll_request` and check `poll_outcome`. A finished machine stays
//! finished: later inputs are ignored.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::cookie::{Lookup, Scan, ValueBuf};
use crate::error::{Failure, HandshakeError, unexpected};
use crate::origin::OriginHeaders;
use crate::record;
use crate::request::{Reply, Request, RequestId, StoreKey};
use crate::session::{Session, SessionId};
use crate::signature::{SIGNED_PREFIX, unsign};
use crate::time::millis;

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
        SessionId::new(String::from_utf8_lossy(self.expose()).into_owned())
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
    let mut scan = Scan::new(&config.cookie_finder, config.limits);
    for line in lines {
        scan.line(line);
    }
    verify(config, scan.finish())
}

fn verify(config: &Config, lookup: Lookup) -> Result<ResolvedSid, HandshakeError> {
    let name = || config.cookie_name.clone();
    let value = match lookup {
        Lookup::NoHeader => return Err(HandshakeError::NoCookieHeader),
        Lookup::Absent => {
            return Err(HandshakeError::CookieAbsent {
                cookie_name: name(),
            });
        }
        Lookup::TooLarge(e) => return Err(HandshakeError::HeaderTooLarge(e)),
        Lookup::Found(v) => v,
    };
    if value.is_empty() {
        return Err(HandshakeError::EmptyValue {
            cookie_name: name(),
        });
    }
    let Some(signed) = value.strip_prefix(SIGNED_PREFIX) else {
        return if config.accept_unsigned {
            Ok(ResolvedSid {
                buf: value,
                start: 0,
            })
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
    let mut buf = value;
    buf.truncate(start + len);
    Ok(ResolvedSid { buf, start })
}

/// One `Load` of a known id, shared by [`Handshake`] and [`Reload`].
#[derive(Debug)]
struct Loading {
    id: RequestId,
    key: StoreKey,
    prefix_len: usize,
    sid: Option<SessionId>,
    unsent: bool,
    deadline: SystemTime,
    check_expiry: bool,
}

impl Loading {
    fn new(config: &Config, sid: &[u8], session_id: Option<SessionId>, now: SystemTime) -> Self {
        Loading {
            id: RequestId(1),
            key: StoreKey::new(config.key_prefix.as_bytes(), sid),
            prefix_len: config.key_prefix.len(),
            sid: session_id,
            unsent: true,
            // `build` caps the deadline; a clock near the end of time fails
            // closed at once instead of overflowing.
            deadline: now.checked_add(config.store_deadline).unwrap_or(now),
            // With rolling sessions the stored `cookie.expires` goes stale by
            // design (connect-redis's touch only refreshes the TTL), so the
            // store's TTL is the authority, as it is for express-session.
            check_expiry: !config.rolling,
        }
    }

    fn poll_request(&mut self) -> Option<Request> {
        if !std::mem::take(&mut self.unsent) {
            return None;
        }
        Some(Request::Load {
            id: self.id,
            key: self.key.clone(),
        })
    }

    /// Whether `id` is the answer this load waits for.
    fn awaits(&self, id: RequestId) -> bool {
        self.id == id && !self.unsent
    }

    /// The outcome for a reply to this load.
    fn finish(&mut self, reply: Reply, now: SystemTime) -> Result<Session, HandshakeError> {
        if now >= self.deadline {
            return Err(Failure::Timeout.into());
        }
        match reply {
            Reply::Found(bytes) => {
                let rec = record::decode(&bytes)
                    .map_err(|e| HandshakeError::from(Failure::MalformedRecord(e)))?;
                if self.check_expiry && rec.cookie.is_expired(millis(now)) {
                    return Err(HandshakeError::Expired);
                }
                // The id is materialized only now; until the record arrives
                // the inline store key is all that exists (no allocation on
                // the way to the `Load` request).
                let sid = self.sid.take().unwrap_or_else(|| {
                    let raw = self
                        .key
                        .as_bytes()
                        .get(self.prefix_len..)
                        .unwrap_or_default();
                    SessionId::new(String::from_utf8_lossy(raw).into_owned())
                });
                Ok(Session::from_record(sid, rec, bytes.0))
            }
            Reply::NotFound => Err(HandshakeError::SessionNotFound),
            Reply::Failed(e) => Err(Failure::Store(e).into()),
            other => Err(unexpected("Load", &other, "Found, NotFound or Failed").into()),
        }
    }
}

#[derive(Debug)]
enum State {
    AwaitHeaders,
    Loading(Loading),
    Done,
}

/// The handshake machine: headers in, one `Load`, a [`Session`] out.
///
/// ```
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use session_sockets_core::{Config, Handshake, Reply, Request};
///
/// let config = Arc::new(Config::builder().secret("keyboard cat").build().unwrap());
/// let now = SystemTime::now();
/// let mut hs = Handshake::new(config, now);
/// hs.handle_headers([(
///     "cookie",
///     "connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU",
/// )]);
/// let Some(Request::Load { id, key }) = hs.poll_request() else { panic!() };
/// assert_eq!(key.as_bytes(), b"sess:apple");
/// hs.handle_reply(id, Reply::Found(br#"{"cookie":{"expires":null},"user":"ada"}"#[..].into()), now);
/// let session = hs.poll_outcome().unwrap().unwrap();
/// assert_eq!(session.get::<String>("user").unwrap().as_deref(), Some("ada"));
/// ```
#[derive(Debug)]
#[must_use = "a handshake does nothing until its requests are run"]
pub struct Handshake {
    config: Arc<Config>,
    now: SystemTime,
    state: State,
    outcome: Option<Result<Session, HandshakeError>>,
}

impl Handshake {
    /// A handshake started at `now`; the store deadline counts from here.
    pub fn new(config: Arc<Config>, now: SystemTime) -> Self {
        Handshake {
            config,
            now,
            state: State::AwaitHeaders,
            outcome: None,
        }
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
        if !matches!(self.state, State::AwaitHeaders) {
            return;
        }
        let config = Arc::clone(&self.config);
        let mut scan = Scan::new(&config.cookie_finder, config.limits);
        let mut origin = OriginHeaders::default();
        for (name, value) in headers {
            let (name, value) = (name.as_ref(), value.as_ref());
            if name.eq_ignore_ascii_case(b"cookie") {
                scan.line(value);
            } else {
                origin.offer(name, value);
            }
        }
        if let Err(r) = config.origin.check_gathered(&origin) {
            return self.finish(Err(HandshakeError::OriginRejected(r)));
        }
        let sid = match verify(&config, scan.finish()) {
            Ok(sid) => sid,
            Err(e) => return self.finish(Err(e)),
        };
        if !config.usable_sid(sid.expose()) {
            return self.finish(Err(HandshakeError::Failed(Failure::InvalidSessionId)));
        }
        self.state = State::Loading(Loading::new(&config, sid.expose(), None, self.now));
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

    /// The next store request, if any.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        match &mut self.state {
            State::Loading(l) => l.poll_request(),
            _ => None,
        }
    }

    /// Feeds the store's answer to request `id`. Answers to unknown ids are
    /// ignored; an answer that arrives at or after the deadline fails the
    /// handshake with [`Failure::Timeout`](crate::Failure::Timeout).
    pub fn handle_reply(&mut self, id: RequestId, reply: Reply, now: SystemTime) {
        let State::Loading(l) = &mut self.state else {
            return;
        };
        if !l.awaits(id) {
            return;
        }
        let result = l.finish(reply, now);
        self.finish(result);
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        match &self.state {
            State::Loading(l) => Some(l.deadline),
            _ => None,
        }
    }

    /// Tells the machine the time. Fails the handshake closed with
    /// [`Failure::Timeout`](crate::Failure::Timeout) once the deadline has passed; safe to call
    /// early or often.
    pub fn handle_timeout(&mut self, now: SystemTime) {
        if let State::Loading(l) = &self.state
            && now >= l.deadline
        {
            self.finish(Err(Failure::Timeout.into()));
        }
    }

    /// The outcome, once: `Some` the first time it is polled after the
    /// machine finished, `None` before and after.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<Session, HandshakeError>> {
        self.outcome.take()
    }

    /// Whether the machine has finished (its outcome may already be taken).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn finish(&mut self, outcome: Result<Session, HandshakeError>) {
        self.state = State::Done;
        self.outcome = Some(outcome);
    }
}

/// Loads a known session again: session.socket.io's `getSession`, and how a
/// long-lived socket picks up what an HTTP route changed (R9). Same shape
/// and outcomes as [`Handshake`] after its headers: one `Load`, then
/// `Ok(Session)`, `SessionNotFound`, `Expired`, `MalformedRecord`, `Store`
/// or `Timeout`.
#[derive(Debug)]
#[must_use = "a reload does nothing until its request is run"]
pub struct Reload {
    loading: Option<Loading>,
    outcome: Option<Result<Session, HandshakeError>>,
}

impl Reload {
    /// Reloads the session `sid`, starting at `now`.
    pub fn new(config: &Config, sid: &SessionId, now: SystemTime) -> Self {
        let bytes = sid.expose().as_bytes();
        if !config.usable_sid(bytes) {
            return Reload {
                loading: None,
                outcome: Some(Err(HandshakeError::Failed(Failure::InvalidSessionId))),
            };
        }
        Reload {
            loading: Some(Loading::new(config, bytes, Some(sid.clone()), now)),
            outcome: None,
        }
    }

    /// The next store request, if any.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.loading.as_mut()?.poll_request()
    }

    /// Feeds the store's answer to request `id`.
    pub fn handle_reply(&mut self, id: RequestId, reply: Reply, now: SystemTime) {
        if let Some(l) = &mut self.loading
            && l.awaits(id)
        {
            self.outcome = Some(l.finish(reply, now));
            self.loading = None;
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.loading.as_ref().map(|l| l.deadline)
    }

    /// Fails closed with [`Failure::Timeout`](crate::Failure::Timeout) once the deadline passed.
    pub fn handle_timeout(&mut self, now: SystemTime) {
        if self.loading.as_ref().is_some_and(|l| now >= l.deadline) {
            self.loading = None;
            self.outcome = Some(Err(Failure::Timeout.into()));
        }
    }

    /// The outcome, once.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<Session, HandshakeError>> {
        self.outcome.take()
    }

    /// Whether the machine has finished.
    pub fn is_finished(&self) -> bool {
        self.loading.is_none()
    }
}

crate::machine::forward_machine!(Handshake, Result<Session, HandshakeError>);
crate::machine::forward_machine!(Reload, Result<Session, HandshakeError>);
