//! Refreshing a session's expiry ([`Touch`]) and ending it ([`Destroy`]).
//! The order of calls is [`Machine`](crate::Machine)'s; each type shows its
//! transcript.

use std::sync::Arc;

use crate::config::Config;
use crate::cookie_syntax::check_expires;
use crate::error::{Failure, WriteError, unexpected};
use crate::header::cookie_header;
use crate::machine::{Cx, Op, Step};
use crate::request::{Reply, Request, StoreKey};
use crate::session::{Session, SessionId};
use crate::time::{Now, millis};
use crate::write::{Redacted, destroyed, expired, ttl_secs};

/// The touch's step.
pub struct TouchStep {
    session: Option<Session>,
    destroying: bool,
    set_cookie: Option<Redacted>,
}

impl Step for TouchStep {
    type Output = Session;
    type Error = WriteError;
    const NAME: &'static str = "Touch";

    fn on_reply(&mut self, _: &mut Cx<'_>, reply: Reply) -> Option<Result<Session, WriteError>> {
        if self.destroying {
            return Some(Err(expired(reply)));
        }
        match (reply, self.session.take()) {
            (Reply::Done, Some(session)) => Some(Ok(session)),
            // The session is kept until the one request is answered.
            (Reply::Done, None) => None,
            (Reply::Gone, _) => Some(Err(WriteError::Gone)),
            (Reply::Failed(e), _) => Some(Err(Failure::Store(e).into())),
            (other, _) => Some(Err(
                unexpected("Touch", &other, "Done, Gone or Failed").into()
            )),
        }
    }
}

/// Refreshes a session's expiry as express-session's `touch` does: when
/// `cookie.originalMaxAge` is a number, `cookie.expires = now +
/// originalMaxAge`; then the store's TTL is set from it (connect-redis's
/// `touch`, an `EXPIRE`) without rewriting the record ([R25]). Drive it
/// through [`Machine`](crate::Machine).
///
/// ```text
/// Touch::new(config, session, now)    expires = now + originalMaxAge
///   poll_request() -> Request::Touch { key, ttl_secs }      EXPIRE, data untouched
///   handle_reply(id, Done, now)        -> Ok(session)   (+ set_cookie() if rolling)
///   handle_reply(id, Gone, now)        -> Err(Gone)
/// TTL <= 0: Request::Destroy -> Err(Expired)
/// ```
///
/// The outcome is `Ok(Session)` with the refreshed cookie (its stored bytes
/// unchanged, so a later [`Save`](crate::Save) still compares against
/// them), or a [`WriteError`]: `Gone`, `Expired` (the TTL came out <= 0;
/// the record is destroyed, as connect-redis's `EXPIRE` with a negative
/// TTL does), `InvalidCookie`, or a [`Failure`] (`InvalidSessionId`,
/// `Store`, `Timeout`). With `rolling` configured, [`Touch::set_cookie`]
/// gives the header to re-send.
///
/// [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25
pub type Touch = Op<TouchStep>;

impl Op<TouchStep> {
    /// Touches `session` at `now`.
    pub fn new(config: Arc<Config>, session: Session, now: Now) -> Self {
        let step = TouchStep {
            session: None,
            destroying: false,
            set_cookie: None,
        };
        let mut op = Op::with_step(config, now, step);
        op.begin(|step, cx| step.start(cx, session));
        op
    }

    /// With `rolling` configured, the `Set-Cookie` header value to re-send
    /// with the refreshed `Expires` (as express-session does on every
    /// response); `None` without `rolling`, or once the touch failed. It holds
    /// the signed id: never log it.
    pub fn set_cookie(&self) -> Option<&str> {
        self.step
            .set_cookie
            .as_ref()
            .filter(|_| !self.failed())
            .map(|r| r.0.as_str())
    }
}

impl TouchStep {
    fn start(
        &mut self,
        cx: &mut Cx<'_>,
        mut session: Session,
    ) -> Option<Result<Session, WriteError>> {
        let config = cx.config;
        let sid = session.id().expose().as_bytes();
        if !config.usable_sid(sid) {
            return Some(Err(Failure::InvalidSessionId.into()));
        }
        let key = StoreKey::new(config.key_prefix.as_bytes(), sid);
        if let Some(max_age) = session.cookie().original_max_age() {
            let expires = millis(cx.now.wall).saturating_add(max_age);
            // Past what `Date#toISOString` can write in four digits.
            if let Err(e) = check_expires(expires) {
                return Some(Err(WriteError::InvalidCookie(e)));
            }
            session.cookie_mut().set_expires(Some(expires));
        }
        match u64::try_from(ttl_secs(config, session.cookie(), cx.now.wall)) {
            Ok(ttl_secs @ 1..) => {
                if config.rolling {
                    match cookie_header(config, session.id(), session.cookie()) {
                        Ok(h) => self.set_cookie = Some(Redacted(h)),
                        Err(e) => return Some(Err(WriteError::InvalidCookie(e))),
                    }
                }
                cx.issue(|id| Request::Touch { id, key, ttl_secs });
            }
            _ => {
                self.destroying = true;
                cx.issue(|id| Request::Destroy { id, key });
            }
        }
        self.session = Some(session);
        None
    }
}

/// The destroy's step: nothing to remember.
pub struct DestroyStep;

impl Step for DestroyStep {
    type Output = ();
    type Error = WriteError;
    const NAME: &'static str = "Destroy";

    fn on_reply(&mut self, _: &mut Cx<'_>, reply: Reply) -> Option<Result<(), WriteError>> {
        Some(destroyed(reply))
    }
}

/// Destroys a session (logout): deletes its record (`DEL`). Every later
/// save of it fails with [`WriteError::Gone`] ([R24]). Drive it through
/// [`Machine`](crate::Machine).
///
/// ```text
/// Destroy::new(config, &sid, now)
///   poll_request() -> Request::Destroy { key }               DEL
///   handle_reply(id, Done, now)        -> Ok(())
/// ```
///
/// The outcome is `Ok(())` (also when there was no record) or a
/// [`Failure`] (`InvalidSessionId`, `Store`, `Timeout`) as a
/// [`WriteError`].
///
/// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
pub type Destroy = Op<DestroyStep>;

impl Op<DestroyStep> {
    /// Destroys the session `sid` at `now`.
    pub fn new(config: Arc<Config>, sid: &SessionId, now: Now) -> Self {
        let mut op = Op::with_step(config, now, DestroyStep);
        op.begin(|_, cx| {
            let sid = sid.expose().as_bytes();
            if !cx.config.usable_sid(sid) {
                return Some(Err(Failure::InvalidSessionId.into()));
            }
            let key = StoreKey::new(cx.config.key_prefix.as_bytes(), sid);
            cx.issue(|id| Request::Destroy { id, key });
            None
        });
        op
    }
}
