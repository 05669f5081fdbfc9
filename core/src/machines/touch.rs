//! Refreshing a session's expiry: [`Touch`]. The order of calls is
//! [`Machine`](crate::Machine)'s.

use std::sync::Arc;

use crate::codec::cookie_syntax::check_expires;
use crate::codec::set_cookie::cookie_header;
use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::format::TouchPlan;
use crate::machines::op::{Cx, Op, Step};
use crate::machines::write::{Redacted, expired, ttl_secs};
use crate::request::{Bytes, Reply, Request};
use crate::session::{Meta, Session};
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
    /// tower-sessions: the compare-and-set of the record with its new
    /// expiry date is outstanding; the session, and the record it writes.
    Rewriting {
        session: Session,
        meta: Meta,
        data: serde_json::Map<String, serde_json::Value>,
        new: Bytes,
    },
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
            State::Rewriting {
                mut session,
                meta,
                data,
                new,
            } => match reply {
                Reply::Swapped => {
                    // The session now rests on the record as rewritten,
                    // keeping any change of its own not yet saved.
                    session.rest_on(meta, data, Some(new.0));
                    Ok(Touched {
                        session,
                        set_cookie: None,
                    })
                }
                // Another writer wrote the record since it was loaded, and
                // every writer of the format renews the date as it writes
                // (tower-sessions' save, this crate's saves and touches): it
                // is as fresh as this touch would make it.
                Reply::Conflict(_) => Ok(Touched {
                    session,
                    set_cookie: None,
                }),
                Reply::Gone => Err(WriteError::Gone),
                Reply::Failed(e) => Err(Failure::Store(e).into()),
                other => {
                    Err(
                        unexpected("CompareAndSet", &other, "Swapped, Conflict, Gone or Failed")
                            .into(),
                    )
                }
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
/// In the other formats, a touch does what refreshes a session there
/// without a change to its data:
///
/// - tower-sessions with `Expiry::OnInactivity(d)`: the date lives in the
///   record, so the record as loaded is written back with the date `now +
///   d` (a compare-and-set against the loaded bytes; TTL to that date), as
///   a save of the unchanged session would (`with_always_save`). A
///   conflict means another writer wrote meanwhile, renewing the date:
///   the touch is then done. Other expiries: nothing to refresh, no
///   request.
/// - actix-session with `TtlExtensionPolicy::OnEveryRequest`: `EXPIRE` with
///   the lifecycle's TTL, as its middleware's `update_ttl`; otherwise
///   nothing, no request.
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
        let Some(key) = config.store_key(session.id().expose().as_bytes()) else {
            return Some(Err(Failure::InvalidSessionId.into()));
        };
        let untouched = |session| {
            Some(Ok(Touched {
                session,
                set_cookie: None,
            }))
        };
        match config.touch_plan() {
            TouchPlan::Express => {}
            TouchPlan::Nothing => return untouched(session),
            TouchPlan::Expire(ttl_secs) => {
                self.0 = State::Touching {
                    session,
                    set_cookie: None,
                };
                cx.issue(|id| Request::Touch { id, key, ttl_secs });
                return None;
            }
            TouchPlan::Rewrite => {
                let Some(loaded) = session.loaded_bytes().cloned() else {
                    return Some(Err(WriteError::NotStored));
                };
                // The record as loaded, not this copy's unsaved changes: a
                // touch writes no data.
                let (meta, data) = match config.decode_record(session.id().expose(), &loaded) {
                    Ok(parts) => parts,
                    Err(e) => return Some(Err(Failure::MalformedRecord(e).into())),
                };
                let mut stored = Session::with_meta(session.id().clone(), meta, data);
                let ttl = match config.prepare_write(&mut stored, cx.now.wall) {
                    Ok(ttl) => ttl,
                    Err(e) => return Some(Err(e)),
                };
                let Ok(ttl_secs @ 1..) = u64::try_from(ttl) else {
                    self.0 = State::Destroying;
                    cx.issue(|id| Request::Destroy { id, key });
                    return None;
                };
                let new = Bytes::from(stored.encode());
                let expected = Bytes(loaded);
                let meta = stored.meta().clone();
                let data = stored.data().clone();
                self.0 = State::Rewriting {
                    session,
                    meta,
                    data,
                    new: new.clone(),
                };
                cx.issue(|id| Request::CompareAndSet {
                    id,
                    key,
                    expected,
                    new,
                    ttl_secs,
                });
                return None;
            }
        }
        let Some(cookie) = session.cookie_mut() else {
            return Some(Err(Failure::MalformedRecord(
                crate::codec::record::RecordError::Format(crate::format::RecordError::OtherFormat),
            )
            .into()));
        };
        if let Some(max_age) = cookie.original_max_age() {
            let expires = millis(cx.now.wall).saturating_add(max_age);
            // Past what `Date#toISOString` can write in four digits.
            if let Err(e) = check_expires(expires) {
                return Some(Err(WriteError::InvalidCookie(e)));
            }
            cookie.set_expires(Some(expires));
        }
        let ttl = ttl_secs(config, cookie, cx.now.wall);
        match u64::try_from(ttl) {
            Ok(ttl_secs @ 1..) => {
                let set_cookie = match (config.rolling, session.cookie()) {
                    (true, Some(cookie)) => match cookie_header(config, session.id(), cookie) {
                        Ok(h) => Some(Redacted(h)),
                        Err(e) => return Some(Err(WriteError::InvalidCookie(e))),
                    },
                    _ => None,
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
