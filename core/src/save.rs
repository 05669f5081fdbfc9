//! Saving a session: compare-and-set against the exact bytes it was loaded
//! from, so that concurrent writers lose nothing and nothing destroyed comes
//! back (R24, R25).
//!
//! ```text
//! Save::new(config, session, now)       unchanged -> Ok(session), no request
//!   poll_request() -> Request::CompareAndSet { key, expected, new, ttl_secs }
//!   handle_reply(id, Swapped, now)          -> Ok(session)
//!   handle_reply(id, Conflict(current), now)
//!       re-apply this side's changed keys onto `current` (or re-run the
//!       update closure on it) and compare-and-set again, at most
//!       Config::max_save_attempts times in all    -> Err(Conflict)
//!   handle_reply(id, Gone, now)             -> Err(Gone), never re-created
//! TTL <= 0 (cookie.expires passed): Request::Destroy -> Err(Expired)
//! ```
//!
//! The conflict rule: this save's own changed keys (set or removed since
//! load) win over the stored record; every other key keeps the value the
//! stored record has now. With [`Save::with_update`] the update closure is
//! re-run on the current record instead, so a read-modify-write such as a
//! counter increment composes with other writers.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::record;
use crate::request::{Bytes, Reply, Request, RequestId, StoreKey};
use crate::session::Session;
use crate::write::{Ending, expired, ttl_secs};

/// A change to apply to a session, re-run on the current record after a
/// conflict (see [`Save::with_update`]).
pub type Update = Box<dyn FnMut(&mut Session) + Send>;

#[derive(Debug)]
enum Phase {
    /// A compare-and-set of these bytes is outstanding.
    Swapping(Bytes),
    /// The record expired; its destroy is outstanding.
    Destroying,
}

/// Saves a changed session.
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
/// stored record has now. With [`Save::with_update`] the update closure is
/// re-run on the current record instead.
///
/// The outcome is `Ok(Session)` (the session as now stored,
/// [`Session::is_changed`] `false`) or a [`WriteError`]: `Conflict`,
/// `Gone`, `Expired`, `NotStored`, `InvalidSessionId`, `MalformedRecord`,
/// `Store` or `Timeout`.
#[must_use = "a save does nothing until its requests are run"]
pub struct Save {
    config: Arc<Config>,
    end: Ending<Session>,
    key: StoreKey,
    session: Option<Session>,
    update: Option<Update>,
    attempts: u32,
    phase: Option<Phase>,
}

impl std::fmt::Debug for Save {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Save")
            .field("io", &self.end.io)
            .field("attempts", &self.attempts)
            .field(
                "phase",
                &self.phase.as_ref().filter(|_| !self.end.is_finished()),
            )
            .field("finished", &self.end.is_finished())
            .finish_non_exhaustive()
    }
}

impl Save {
    /// Saves `session` if its data changed since it was loaded (or
    /// created); finishes at once with `Ok` and no request if not, as
    /// express-session does. On a conflict, this session's changed keys are
    /// re-applied onto the current record.
    pub fn new(config: Arc<Config>, session: Session, now: SystemTime) -> Self {
        Self::start(config, session, None, now)
    }

    /// Applies `update` to `session`, then saves as [`Save::new`]; on a
    /// conflict, runs `update` again on the current record instead of
    /// re-applying keys. Use it for read-modify-write changes (a counter,
    /// appending to a list) so that concurrent writers lose nothing.
    pub fn with_update(
        config: Arc<Config>,
        mut session: Session,
        mut update: Update,
        now: SystemTime,
    ) -> Self {
        update(&mut session);
        Self::start(config, session, Some(update), now)
    }

    fn start(
        config: Arc<Config>,
        session: Session,
        update: Option<Update>,
        now: SystemTime,
    ) -> Self {
        let sid = session.id().expose().as_bytes();
        let key = StoreKey::new(config.key_prefix.as_bytes(), sid);
        let usable = config.usable_sid(sid);
        let mut save = Save {
            config,
            end: Ending::new(),
            key,
            session: None,
            update,
            attempts: 0,
            phase: None,
        };
        if !usable {
            save.end
                .finish(Err(WriteError::Failed(Failure::InvalidSessionId)));
        } else if session.loaded_bytes().is_none() {
            save.end.finish(Err(WriteError::NotStored));
        } else if !session.is_changed() {
            save.end.finish(Ok(session));
        } else {
            save.attempt(session, now);
        }
        save
    }

    /// Sends the next compare-and-set, or the destroy of an expired record.
    fn attempt(&mut self, session: Session, now: SystemTime) {
        let ttl = ttl_secs(&self.config, session.cookie(), now);
        let key = self.key.clone();
        match (u64::try_from(ttl), session.loaded_bytes()) {
            (Ok(ttl_secs @ 1..), Some(expected)) => {
                let expected = Bytes(Arc::clone(expected));
                let new = Bytes::from(session.encode());
                self.attempts += 1;
                self.end
                    .io
                    .issue(&self.config, now, |id| Request::CompareAndSet {
                        id,
                        key,
                        expected,
                        new: new.clone(),
                        ttl_secs,
                    });
                self.phase = Some(Phase::Swapping(new));
            }
            (Ok(1..), None) => self.end.finish(Err(WriteError::NotStored)),
            _ => {
                // connect-redis deletes a record whose TTL is <= 0.
                self.end
                    .io
                    .issue(&self.config, now, |id| Request::Destroy { id, key });
                self.phase = Some(Phase::Destroying);
            }
        }
        self.session = Some(session);
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
        let (Some(phase), Some(mut session)) = (self.phase.take(), self.session.take()) else {
            return;
        };
        match (phase, reply) {
            (Phase::Destroying, reply) => self.end.finish(Err(expired(reply))),
            (Phase::Swapping(new), Reply::Swapped) => {
                session.mark_stored(new.0);
                self.end.finish(Ok(session));
            }
            (Phase::Swapping(_), Reply::Conflict(current)) => {
                if self.attempts >= self.config.max_save_attempts {
                    return self.end.finish(Err(WriteError::Conflict {
                        attempts: self.attempts,
                    }));
                }
                let rec = match record::decode(&current) {
                    Ok(rec) => rec,
                    Err(e) => return self.end.finish(Err(Failure::MalformedRecord(e).into())),
                };
                if let Some(update) = &mut self.update {
                    let mut fresh = Session::from_record(session.id().clone(), rec, current.0);
                    update(&mut fresh);
                    session = fresh;
                } else {
                    session.rebase(rec, current.0);
                }
                if session.is_changed() {
                    self.attempt(session, now);
                } else {
                    // The current record already holds every change: the
                    // session is stored as it is.
                    if let Some(bytes) = session.loaded_bytes().cloned() {
                        session.mark_stored(bytes);
                    }
                    self.end.finish(Ok(session));
                }
            }
            (Phase::Swapping(_), Reply::Gone) => self.end.finish(Err(WriteError::Gone)),
            (Phase::Swapping(_), Reply::Failed(e)) => {
                self.end.finish(Err(Failure::Store(e).into()))
            }
            (Phase::Swapping(_), other) => self.end.finish(Err(unexpected(
                "CompareAndSet",
                &other,
                "Swapped, Conflict, Gone or Failed",
            )
            .into())),
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

    /// How many compare-and-set requests this save has sent.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

crate::machine::forward_machine!(Save, Result<Session, WriteError>);
