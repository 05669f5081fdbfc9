//! Refreshing a session's expiry: [`Touch`]. The order of calls is
//! [`Machine`](crate::Machine)'s.

use std::sync::Arc;

use crate::codec::set_cookie::check_expires;
use crate::codec::set_cookie::cookie_header;
use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::machines::op::{Cx, Op, Step};
use crate::machines::write::{Redacted, expired, ttl_secs};
use crate::request::{Reply, Request, StoreKey};
use crate::session::Session;
use crate::time::{Now, millis};

/// A touched session, and the `Set-Cookie` header to re-send when the
/// config is `rolling`. `Debug` redacts the header (it holds the signed id).
#[derive(Clone)]
pub struct Touched {
    /// The session with its refreshed cookie (its stored bytes unchanged,
    /// so a later [`Save`](crate::machines::Save) still compares against
    /// them).
    pub session: Session,
    /// With `rolling`, the `Set-Cookie` header value with the new expiry.
    pub set_cookie: Option<String>,
}

impl std::fmt::Debug for Touched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Touched")
            .field("session", &self.session)
            .field(
                "set_cookie",
                &self.set_cookie.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The touch's step: what it waits for.
pub struct TouchStep(State);

enum State {
    /// Nothing asked yet, or the outcome handed out.
    Idle,
    /// The `EXPIRE` is outstanding; the session and header it will give.
    Touching {
        session: Session,
        set_cookie: Option<Redacted>,
    },
    /// The TTL came out <= 0: the record's destroy is outstanding.
    Destroying,
}

impl Step for TouchStep {
    type Output = Touched;
    type Error = WriteError;
    const NAME: &'static str = "Touch";

    fn on_reply(&mut self, _: &mut Cx<'_>, reply: Reply) -> Option<Result<Touched, WriteError>> {
        Some(match std::mem::replace(&mut self.0, State::Idle) {
            State::Destroying => Err(expired(reply)),
            State::Touching {
                session,
                set_cookie,
            } => match reply {
                Reply::Done => Ok(Touched {
                    session,
                    set_cookie: set_cookie.map(|c| c.0),
                }),
                Reply::Gone => Err(WriteError::Gone),
                Reply::Failed(e) => Err(Failure::Store(e).into()),
                other => Err(unexpected("Touch", &other, "Done, Gone or Failed").into()),
            },
            State::Idle => Err(unexpected("Touch", &reply, "no reply (nothing was asked)").into()),
        })
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
///   handle_reply(id, Done, now)        -> Ok(Touched { session, set_cookie })
///   handle_reply(id, Gone, now)        -> Err(Gone)
/// TTL <= 0: Request::Destroy -> Err(Expired)
/// ```
///
/// The outcome is `Ok(`[`Touched`]`)`: the session with the refreshed
/// cookie and, with `rolling` configured, the header to re-send; or a
/// [`WriteError`]: `Gone`, `Expired` (the TTL came out <= 0; the record is
/// destroyed, as connect-redis's `EXPIRE` with a negative TTL does),
/// `InvalidCookie`, or a [`Failure`] (`InvalidSessionId`, `Store`,
/// `Timeout`).
///
/// [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25
pub type Touch = Op<TouchStep>;

impl Op<TouchStep> {
    /// Touches `session` at `now`.
    pub fn new(config: Arc<Config>, session: Session, now: Now) -> Self {
        let mut op = Op::with_step(config, now, TouchStep(State::Idle));
        op.begin(|step, cx| step.start(cx, session));
        op
    }
}

impl TouchStep {
    fn start(
        &mut self,
        cx: &mut Cx<'_>,
        mut session: Session,
    ) -> Option<Result<Touched, WriteError>> {
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
                let set_cookie = match config.rolling {
                    true => match cookie_header(config, session.id(), session.cookie()) {
                        Ok(h) => Some(Redacted(h)),
                        Err(e) => return Some(Err(WriteError::InvalidCookie(e))),
                    },
                    false => None,
                };
                self.0 = State::Touching {
                    session,
                    set_cookie,
                };
                cx.issue(|id| Request::Touch { id, key, ttl_secs });
            }
            _ => {
                self.0 = State::Destroying;
                cx.issue(|id| Request::Destroy { id, key });
            }
        }
        None
    }
}
