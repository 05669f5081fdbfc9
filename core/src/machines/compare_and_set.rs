//! Saving a session: compare-and-set against the exact bytes it was loaded
//! from, so that concurrent writers lose nothing and nothing destroyed comes
//! back ([R24], [R25]).
//!
//! [`Save`](super::Save) saves one writer's session; [`Commit`](super::Commit) saves several writers'
//! edits of one session with a single compare-and-set (a group commit: the
//! edits are applied in order onto the record and written at once). Both
//! are the same step.
//!
//! The conflict rule: each writer's own changed keys (set or removed since
//! it loaded the session) win over the stored record; every other key keeps
//! the value the stored record has now. An update closure
//! ([`Save::update`](super::Save::update), [`Edit::update`]) is re-run on the current record, so
//! a read-modify-write such as a counter increment composes with other
//! writers.
//!
//! Conflicts are retried for as long as the store deadline allows, counted
//! from the start of the save ([`Config::store_deadline`](crate::Config::store_deadline)): the first retry
//! at once, later ones after a random backoff (full jitter, doubling from
//! 1 ms up to 16 ms), so writers on several servers do not retry in step.
//! An attempt sent after a backoff was built from what the writer knew
//! before it; when it conflicts, its reply carries the current record and
//! the retry goes at once, so a server whose write queue saves without
//! pause cannot starve the others.
//! The random bytes are a [`Request::Random`](crate::Request::Random): the core draws none itself.
//!
//! [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
//! [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::machines::op::Cx;
use crate::machines::write::expired;
use crate::request::{Bytes, Reply, Request, StoreKey};
use crate::session::Session;
use crate::time::Now;

/// A change to apply to a session, re-run on the current record after a
/// conflict.
type Update = Box<dyn FnMut(&mut Session) + Send>;

/// The first backoff cap, doubled after each further conflict up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The largest backoff cap.
const MAX_BACKOFF: Duration = Duration::from_millis(16);

/// One writer's part of a save: the keys it changed (with its values), and
/// optionally an update closure to run after them, both re-applied onto the
/// current record after every conflict.
pub struct Edit {
    changes: Vec<(String, Option<Value>)>,
    update: Option<Update>,
    /// What the writer's copy held for its changed keys when it handed
    /// them over (see [`Session::adopt_saved`]).
    pub(crate) sent: Vec<(String, Option<Value>)>,
}

impl std::fmt::Debug for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and values are session data: counts only.
        f.debug_struct("Edit")
            .field("changes", &self.changes.len())
            .field("update", &self.update.is_some())
            .finish()
    }
}

impl Edit {
    /// The changes `session` made since it was loaded: its changed keys win
    /// over the stored record.
    pub fn save(session: &Session) -> Edit {
        Edit {
            changes: changed(session),
            update: None,
            sent: session.handed(),
        }
    }

    /// The changes `session` made, then `update`, run again on the current
    /// record after every conflict (a read-modify-write that composes with
    /// other writers).
    pub fn update<F>(session: &Session, update: F) -> Edit
    where
        F: FnMut(&mut Session) + Send + 'static,
    {
        Edit {
            changes: changed(session),
            update: Some(Box::new(update)),
            sent: session.handed(),
        }
    }

    pub(crate) fn apply(&mut self, session: &mut Session) {
        for (k, v) in &self.changes {
            match v {
                Some(v) => {
                    session.insert_value(k, v.clone());
                }
                None => {
                    session.remove(k);
                }
            }
        }
        if let Some(update) = &mut self.update {
            update(session);
        }
    }
}

/// `session`'s changed keys with their values now (`None`: removed).
fn changed(session: &Session) -> Vec<(String, Option<Value>)> {
    session
        .changed_keys()
        .map(|(k, v)| (k.to_owned(), v.cloned()))
        .collect()
}

enum Phase {
    /// A compare-and-set of these bytes is outstanding.
    Swapping(Bytes),
    /// The record expired; its destroy is outstanding.
    Destroying,
    /// Random bytes for the backoff are outstanding.
    Seeding,
}

/// What [`Save`](super::Save) and [`Commit`](super::Commit) share: the
/// edits, the attempts, the backoff.
pub(crate) struct Writes {
    key: StoreKey,
    pub(crate) edits: Vec<Edit>,
    pub(crate) attempts: u32,
    /// No new attempt starts at or after this instant (the store deadline
    /// counted from the start of the save).
    until: Instant,
    /// The outstanding request and the session it would store.
    pending: Option<(Phase, Session)>,
    /// The rebased session waiting for its backoff to end.
    waiting: Option<Session>,
    /// xorshift64 state for the backoff jitter, once seeded.
    rng: Option<u64>,
    /// The outstanding attempt was sent after a backoff, from what the
    /// writer knew before it: its conflict brings fresh knowledge.
    after_wait: bool,
}

impl Writes {
    pub(crate) fn new(config: &Config, base: &Session, edits: Vec<Edit>, now: Now) -> Self {
        let sid = base.id().expose().as_bytes();
        Writes {
            // An unusable id is refused by `begin` before any request.
            key: config
                .store_key(sid)
                .unwrap_or_else(|| StoreKey::new(config.key_prefix.as_bytes(), sid)),
            edits,
            attempts: 0,
            until: now
                .instant
                .checked_add(config.store_deadline)
                .unwrap_or(now.instant),
            pending: None,
            waiting: None,
            rng: None,
            after_wait: false,
        }
    }

    /// The first attempt, from `base` with every edit applied.
    pub(crate) fn begin(
        &mut self,
        cx: &mut Cx<'_>,
        mut base: Session,
    ) -> Option<Result<Session, WriteError>> {
        if cx.config.store_key(base.id().expose().as_bytes()).is_none() {
            return Some(Err(Failure::InvalidSessionId.into()));
        }
        if base.loaded_bytes().is_none() {
            return Some(Err(WriteError::NotStored));
        }
        for edit in &mut self.edits {
            edit.apply(&mut base);
        }
        if !base.is_changed() {
            return Some(Ok(base));
        }
        self.attempt(cx, base)
    }

    /// Sends the next compare-and-set, or the destroy of an expired record.
    pub(crate) fn attempt(
        &mut self,
        cx: &mut Cx<'_>,
        mut session: Session,
    ) -> Option<Result<Session, WriteError>> {
        // What a write renews in the format (tower-sessions' expiry date),
        // and the TTL it gets.
        let ttl = match cx.config.prepare_write(&mut session, cx.now.wall) {
            Ok(ttl) => ttl,
            Err(e) => return Some(Err(e)),
        };
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

    pub(crate) fn on_reply(
        &mut self,
        cx: &mut Cx<'_>,
        reply: Reply,
    ) -> Option<Result<Session, WriteError>> {
        // Every request is issued with its pending state: the machine only
        // passes on replies to an outstanding request.
        let (phase, mut session) = self.pending.take()?;
        match (phase, reply) {
            (Phase::Destroying, reply) => Some(Err(expired(reply))),
            (Phase::Seeding, Reply::Random(bytes)) => {
                let mut seed = [0u8; 8];
                for (d, s) in seed.iter_mut().zip(bytes.iter()) {
                    *d = *s;
                }
                // xorshift needs a non-zero state.
                self.rng = Some(u64::from_le_bytes(seed) | 1);
                self.back_off(cx, session)
            }
            (Phase::Seeding, Reply::Failed(e)) => Some(Err(Failure::Store(e).into())),
            (Phase::Seeding, other) => Some(Err(unexpected("Random", &other, "Random").into())),
            (Phase::Swapping(new), Reply::Swapped) => {
                session.mark_stored(new.0);
                Some(Ok(session))
            }
            (Phase::Swapping(_), Reply::Conflict(current)) => {
                if self.attempts >= cx.config.max_save_attempts || cx.now.instant >= self.until {
                    return Some(Err(WriteError::Conflict {
                        attempts: self.attempts,
                    }));
                }
                let (meta, data) = match cx.config.decode_record(session.id().expose(), &current) {
                    Ok(parts) => parts,
                    Err(e) => return Some(Err(Failure::MalformedRecord(e).into())),
                };
                let mut fresh = Session::from_stored(session.id().clone(), meta, data, current.0);
                for edit in &mut self.edits {
                    edit.apply(&mut fresh);
                }
                if !fresh.is_changed() {
                    // The current record already holds every change: the
                    // session is stored as it is.
                    if let Some(bytes) = fresh.loaded_bytes().cloned() {
                        fresh.mark_stored(bytes);
                    }
                    return Some(Ok(fresh));
                }
                if self.attempts < 2 || std::mem::take(&mut self.after_wait) {
                    // A retry after a conflict that followed the first try or
                    // a backoff goes at once: the conflict brought the
                    // current record, and a writer that saves without pause
                    // (another server's busy write queue) leaves no gap for
                    // an attempt made from older knowledge.
                    return self.attempt(cx, fresh);
                }
                if self.rng.is_none() {
                    cx.issue(|id| Request::Random { id, len: 8 });
                    self.pending = Some((Phase::Seeding, fresh));
                    return None;
                }
                self.back_off(cx, fresh)
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

    /// Waits a random part of the current backoff cap before the next
    /// attempt with `session`; gives up if that would pass the deadline.
    pub(crate) fn back_off(
        &mut self,
        cx: &mut Cx<'_>,
        session: Session,
    ) -> Option<Result<Session, WriteError>> {
        let doublings = self.attempts.saturating_sub(2).min(6);
        let cap = (FIRST_BACKOFF * (1 << doublings)).min(MAX_BACKOFF);
        let r = self.next_random();
        let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX).max(1);
        let delay = Duration::from_micros(r % cap_us);
        match cx.now.instant.checked_add(delay) {
            Some(at) if at < self.until => {
                cx.wake_at(at);
                self.waiting = Some(session);
                None
            }
            _ => Some(Err(WriteError::Conflict {
                attempts: self.attempts,
            })),
        }
    }

    pub(crate) fn on_wake(&mut self, cx: &mut Cx<'_>) -> Option<Result<Session, WriteError>> {
        let session = self.waiting.take()?;
        self.after_wait = true;
        self.attempt(cx, session)
    }

    pub(crate) fn next_random(&mut self) -> u64 {
        let mut x = self.rng.unwrap_or(0x9E37_79B9_7F4A_7C15);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = Some(x);
        x
    }

    /// The stored session as `edit` sees it: remembering what that writer
    /// handed over.
    pub(crate) fn stored_for(session: &Session, sent: Vec<(String, Option<Value>)>) -> Session {
        let mut s = session.clone();
        s.set_sent(sent);
        s
    }
}
