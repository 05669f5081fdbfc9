//! Refreshing a session's expiry ([`Touch`]) and ending it ([`Destroy`]).
//!
//! ```text
//! Touch::new(config, session, now)    expires = now + originalMaxAge
//!   poll_request() -> Request::Touch { key, ttl_secs }      EXPIRE, data untouched
//!   handle_reply(id, Done, now)        -> Ok(session)   (+ set_cookie() if rolling)
//!   handle_reply(id, Gone, now)        -> Err(Gone)
//! TTL <= 0: Request::Destroy -> Err(Expired)
//!
//! Destroy::new(config, &sid, now)
//!   poll_request() -> Request::Destroy { key }               DEL
//!   handle_reply(id, Done, now)        -> Ok(())
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::cookie_syntax::check_expires;
use crate::error::{Failure, WriteError, unexpected};
use crate::header::cookie_header;
use crate::request::{Reply, Request, RequestId, StoreKey};
use crate::session::{Session, SessionId};
use crate::time::millis;
use crate::write::{Ending, Redacted, destroyed, expired, ttl_secs};

/// Refreshes a session's expiry as express-session's `touch` does: when
/// `cookie.originalMaxAge` is a number, `cookie.expires = now +
/// originalMaxAge`; then the store's TTL is set from it (connect-redis's
/// `touch`, an `EXPIRE`) without rewriting the record (R25).
///
/// The outcome is `Ok(Session)` with the refreshed cookie (its stored bytes
/// unchanged, so a later [`Save`](crate::Save) still compares against
/// them), or a [`WriteError`]: `Gone`, `Expired` (the TTL came out <= 0;
/// the record is destroyed, as connect-redis's `EXPIRE` with a negative
/// TTL does), `InvalidSessionId`, `InvalidCookie`, `Store` or `Timeout`.
/// With `rolling` configured, [`Touch::set_cookie`] gives the header to
/// re-send.
#[must_use = "a touch does nothing until its request is run"]
pub struct Touch {
    end: Ending<Session>,
    session: Option<Session>,
    destroying: bool,
    set_cookie: Option<Redacted>,
}

impl std::fmt::Debug for Touch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Touch")
            .field("io", &self.end.io)
            .field("destroying", &self.destroying)
            .field("set_cookie", &self.header())
            .field("finished", &self.end.is_finished())
            .finish_non_exhaustive()
    }
}

impl Touch {
    /// Touches `session` at `now`.
    pub fn new(config: Arc<Config>, mut session: Session, now: SystemTime) -> Self {
        let mut touch = Touch {
            end: Ending::new(),
            session: None,
            destroying: false,
            set_cookie: None,
        };
        let sid = session.id().expose().as_bytes();
        if !config.usable_sid(sid) {
            touch
                .end
                .finish(Err(WriteError::Failed(Failure::InvalidSessionId)));
            return touch;
        }
        let key = StoreKey::new(config.key_prefix.as_bytes(), sid);
        if let Some(max_age) = session.cookie().original_max_age() {
            let expires = millis(now).saturating_add(max_age);
            if let Err(e) = check_expires(expires) {
                // Past what `Date#toISOString` can write in four digits.
                touch.end.finish(Err(WriteError::InvalidCookie(e)));
                return touch;
            }
            session.cookie_mut().set_expires(Some(expires));
        }
        match u64::try_from(ttl_secs(&config, session.cookie(), now)) {
            Ok(ttl_secs @ 1..) => {
                if config.rolling {
                    match cookie_header(&config, session.id(), session.cookie()) {
                        Ok(h) => touch.set_cookie = Some(Redacted(h)),
                        Err(e) => {
                            touch.end.finish(Err(WriteError::InvalidCookie(e)));
                            return touch;
                        }
                    }
                }
                touch
                    .end
                    .io
                    .issue(&config, now, |id| Request::Touch { id, key, ttl_secs });
            }
            _ => {
                touch.destroying = true;
                touch
                    .end
                    .io
                    .issue(&config, now, |id| Request::Destroy { id, key });
            }
        }
        touch.session = Some(session);
        touch
    }

    /// The next request, if any.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.end.poll_request()
    }

    /// Feeds the answer to request `id`. Answers to unknown, already
    /// answered or not yet polled ids are ignored; one at or after the
    /// deadline fails with [`Failure::Timeout`](crate::Failure::Timeout).
    pub fn handle_reply(&mut self, id: RequestId, reply: Reply, now: SystemTime) {
        let Some(reply) = self.end.accept(id, reply, now) else {
            return;
        };
        if self.destroying {
            return self.end.finish(Err(expired(reply)));
        }
        match (reply, self.session.take()) {
            (Reply::Done, Some(session)) => self.end.finish(Ok(session)),
            (Reply::Done, None) => {}
            (Reply::Gone, _) => self.end.finish(Err(WriteError::Gone)),
            (Reply::Failed(e), _) => self.end.finish(Err(Failure::Store(e).into())),
            (other, _) => {
                self.end.finish(Err(
                    unexpected("Touch", &other, "Done, Gone or Failed").into()
                ));
            }
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.end.poll_timeout()
    }

    /// Fails with [`Failure::Timeout`](crate::Failure::Timeout) once the outstanding request's
    /// deadline has passed; safe to call early or often.
    pub fn handle_timeout(&mut self, now: SystemTime) {
        self.end.handle_timeout(now);
    }

    /// The outcome, once.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<Session, WriteError>> {
        self.end.poll_outcome()
    }

    /// Whether the machine has finished (its outcome may already be taken).
    pub fn is_finished(&self) -> bool {
        self.end.is_finished()
    }

    /// With `rolling` configured, the `Set-Cookie` header value to re-send
    /// with the refreshed `Expires` (as express-session does on every
    /// response); `None` without `rolling`, or once the touch failed. It holds
    /// the signed id: never log it.
    pub fn set_cookie(&self) -> Option<&str> {
        self.header().map(|r| r.0.as_str())
    }

    /// The header to re-send, unless the touch failed.
    fn header(&self) -> Option<&Redacted> {
        self.set_cookie.as_ref().filter(|_| !self.end.failed())
    }
}

/// Destroys a session (logout): deletes its record (`DEL`). Every later
/// save of it fails with [`WriteError::Gone`] (R24).
///
/// The outcome is `Ok(())` (also when there was no record) or a
/// [`WriteError`]: `InvalidSessionId`, `Store` or `Timeout`.
#[derive(Debug)]
#[must_use = "a destroy does nothing until its request is run"]
pub struct Destroy {
    end: Ending<()>,
}

impl Destroy {
    /// Destroys the session `sid` at `now`.
    pub fn new(config: Arc<Config>, sid: &SessionId, now: SystemTime) -> Self {
        let mut destroy = Destroy { end: Ending::new() };
        let sid = sid.expose().as_bytes();
        if config.usable_sid(sid) {
            let key = StoreKey::new(config.key_prefix.as_bytes(), sid);
            destroy
                .end
                .io
                .issue(&config, now, |id| Request::Destroy { id, key });
        } else {
            destroy
                .end
                .finish(Err(WriteError::Failed(Failure::InvalidSessionId)));
        }
        destroy
    }

    /// The next request, if any.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.end.poll_request()
    }

    /// Feeds the answer to request `id`. Answers to unknown, already
    /// answered or not yet polled ids are ignored; one at or after the
    /// deadline fails with [`Failure::Timeout`](crate::Failure::Timeout).
    pub fn handle_reply(&mut self, id: RequestId, reply: Reply, now: SystemTime) {
        if let Some(reply) = self.end.accept(id, reply, now) {
            self.end.finish(destroyed(reply));
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.end.poll_timeout()
    }

    /// Fails with [`Failure::Timeout`](crate::Failure::Timeout) once the deadline has passed.
    pub fn handle_timeout(&mut self, now: SystemTime) {
        self.end.handle_timeout(now);
    }

    /// The outcome, once.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<(), WriteError>> {
        self.end.poll_outcome()
    }

    /// Whether the machine has finished (its outcome may already be taken).
    pub fn is_finished(&self) -> bool {
        self.end.is_finished()
    }
}

crate::machine::forward_machine!(Touch, Result<Session, WriteError>);
crate::machine::forward_machine!(Destroy, Result<(), WriteError>);
