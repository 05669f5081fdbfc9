//! Saving a session: compare-and-set against the exact bytes it was loaded
//! from, so that concurrent writers lose nothing and nothing destroyed comes
//! back ([R24], [R25]).
//!
//! The transcript is on [`Save`].
//!
//! The conflict rule: this save's own changed keys (set or removed since
//! load) win over the stored record; every other key keeps the value the
//! stored record has now. With [`Save::update`] the update closure is
//! re-run on the current record instead, so a read-modify-write such as a
//! counter increment composes with other writers.
//!
//! [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
//! [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25

use std::sync::Arc;

use serde_json::Value;

use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::machine::{Cx, Op, Step};
use crate::record;
use crate::request::{Bytes, Reply, Request, StoreKey};
use crate::session::Session;
use crate::time::Now;
use crate::write::{expired, ttl_secs};

/// A change to apply to a session, re-run on the current record after a
/// conflict (see [`Save::update`]).
type Update = Box<dyn FnMut(&mut Session) + Send>;

enum Phase {
    /// A compare-and-set of these bytes is outstanding.
    Swapping(Bytes),
    /// The record expired; its destroy is outstanding.
    Destroying,
}

/// The save's step.
pub struct SaveStep {
    key: StoreKey,
    update: Option<Update>,
    attempts: u32,
    /// The outstanding request and the session it would store.
    pending: Option<(Phase, Session)>,
    /// What the session handed to the save held for its changed keys; the
    /// saved session remembers it (see `Session::adopt_saved`).
    sent: Vec<(String, Option<Value>)>,
}

impl SaveStep {
    /// Sends the next compare-and-set, or the destroy of an expired record.
    fn attempt(
        &mut self,
        cx: &mut Cx<'_>,
        session: Session,
    ) -> Option<Result<Session, WriteError>> {
        let ttl = ttl_secs(cx.config, session.cookie(), cx.now.wall);
        let key = self.key.clone();
        let phase = match (u64::try_from(ttl), session.loaded_bytes()) {
            (Ok(ttl_secs @ 1..), Some(expected)) => {
                let expected = Bytes(Arc::clone(expected));
                let new = Bytes::from(session.encode());
                self.attempts += 1;
                cx.issue(|id| Request::CompareAndSet {
                    id,
                    key,
                    expected,
                    new: new.clone(),
                    ttl_secs,
                });
                Phase::Swapping(new)
            }
            (Ok(1..), None) => return Some(Err(WriteError::NotStored)),
            _ => {
                // connect-redis deletes a record whose TTL is <= 0.
                cx.issue(|id| Request::Destroy { id, key });
                Phase::Destroying
            }
        };
        self.pending = Some((phase, session));
        None
    }
}

impl Step for SaveStep {
    type Output = Session;
    type Error = WriteError;
    const NAME: &'static str = "Save";

    fn on_reply(&mut self, cx: &mut Cx<'_>, reply: Reply) -> Option<Result<Session, WriteError>> {
        let outcome = self.decide(cx, reply)?;
        Some(outcome.map(|s| self.stored(s)))
    }
}

impl SaveStep {
    /// The saved session, remembering what it was handed.
    fn stored(&mut self, mut session: Session) -> Session {
        session.set_sent(std::mem::take(&mut self.sent));
        session
    }

    fn decide(&mut self, cx: &mut Cx<'_>, reply: Reply) -> Option<Result<Session, WriteError>> {
        // Every request is issued with its pending state: the machine only
        // passes on replies to an outstanding request.
        let (phase, mut session) = self.pending.take()?;
        match (phase, reply) {
            (Phase::Destroying, reply) => Some(Err(expired(reply))),
            (Phase::Swapping(new), Reply::Swapped) => {
                session.mark_stored(new.0);
                Some(Ok(session))
            }
            (Phase::Swapping(_), Reply::Conflict(current)) => {
                if self.attempts >= cx.config.max_save_attempts {
                    return Some(Err(WriteError::Conflict {
                        attempts: self.attempts,
                    }));
                }
                let rec = match record::decode(&current) {
                    Ok(rec) => rec,
                    Err(e) => return Some(Err(Failure::MalformedRecord(e).into())),
                };
                if let Some(update) = &mut self.update {
                    let mut fresh = Session::from_record(session.id().clone(), rec, current.0);
                    update(&mut fresh);
                    session = fresh;
                } else {
                    session.rebase(rec, current.0);
                }
                if session.is_changed() {
                    self.attempt(cx, session)
                } else {
                    // The current record already holds every change: the
                    // session is stored as it is.
                    if let Some(bytes) = session.loaded_bytes().cloned() {
                        session.mark_stored(bytes);
                    }
                    Some(Ok(session))
                }
            }
            (Phase::Swapping(_), Reply::Gone) => Some(Err(WriteError::Gone)),
            (Phase::Swapping(_), Reply::Failed(e)) => Some(Err(Failure::Store(e).into())),
            (Phase::Swapping(_), other) => Some(Err(unexpected(
                "CompareAndSet",
                &other,
                "Swapped, Conflict, Gone or Failed",
            )
            .into())),
        }
    }
}

/// Saves a changed session. Drive it through [`Machine`](crate::Machine).
///
/// ```text
/// Save::new(config, session, now)       unchanged -> Ok(session), no request
///   poll_request() -> Request::CompareAndSet { key, expected, new, ttl_secs }
///   handle_reply(id, Swapped, now)          -> Ok(session)
///   handle_reply(id, Conflict(current), now)
///       re-apply this side's changed keys onto `current` (or re-run the
///       update closure on it) and compare-and-set again, at most
///       Config::max_save_attempts times in all    -> Err(Conflict)
///   handle_reply(id, Gone, now)             -> Err(Gone), never re-created
/// TTL <= 0 (cookie.expires passed): Request::Destroy -> Err(Expired)
/// ```
///
/// The conflict rule: this save's own changed keys (set or removed since
/// load) win over the stored record; every other key keeps the value the
/// stored record has now. With [`Save::update`] the update closure is
/// re-run on the current record instead.
///
/// The outcome is `Ok(Session)` (the session as now stored,
/// [`Session::is_changed`] `false`) or a [`WriteError`]: `Conflict`,
/// `Gone`, `Expired`, `NotStored`, or a [`Failure`] (`InvalidSessionId`,
/// `MalformedRecord`, `Store`, `Timeout`).
pub type Save = Op<SaveStep>;

impl Op<SaveStep> {
    /// Saves `session` if its data changed since it was loaded (or
    /// created); finishes at once with `Ok` and no request if not, as
    /// express-session does. On a conflict, this session's changed keys are
    /// re-applied onto the current record.
    pub fn new(config: Arc<Config>, session: Session, now: Now) -> Self {
        let sent = session.handed();
        Self::start(config, session, None, sent, now)
    }

    /// Applies `update` to `session`, then saves as [`Save::new`]; on a
    /// conflict, runs `update` again on the current record instead of
    /// re-applying keys. Use it for read-modify-write changes (a counter,
    /// appending to a list) so that concurrent writers lose nothing.
    pub fn update<F>(config: Arc<Config>, mut session: Session, mut update: F, now: Now) -> Self
    where
        F: FnMut(&mut Session) + Send + 'static,
    {
        // The session as handed in, before the update changes it.
        let sent = session.handed();
        update(&mut session);
        Self::start(config, session, Some(Box::new(update)), sent, now)
    }

    fn start(
        config: Arc<Config>,
        session: Session,
        update: Option<Update>,
        sent: Vec<(String, Option<Value>)>,
        now: Now,
    ) -> Self {
        let sid = session.id().expose().as_bytes();
        let key = StoreKey::new(config.key_prefix.as_bytes(), sid);
        let usable = config.usable_sid(sid);
        let step = SaveStep {
            key,
            update,
            attempts: 0,
            pending: None,
            sent,
        };
        let mut op = Op::with_step(config, now, step);
        op.begin(|step, cx| {
            if !usable {
                Some(Err(Failure::InvalidSessionId.into()))
            } else if session.loaded_bytes().is_none() {
                Some(Err(WriteError::NotStored))
            } else if !session.is_changed() {
                Some(Ok(step.stored(session)))
            } else {
                step.attempt(cx, session)
            }
        });
        op
    }

    /// How many compare-and-set requests this save has sent.
    pub fn attempts(&self) -> u32 {
        self.step.attempts
    }
}
