//! Saving one writer's session: [`Save`]. The order of calls is
//! [`Machine`](crate::Machine)'s; the conflict rule is in
//! [`compare_and_set`](super::compare_and_set).

use std::sync::Arc;

use crate::config::Config;
use crate::error::WriteError;
use crate::machines::compare_and_set::{Edit, Writes};
use crate::machines::op::{Cx, Op, Step};
use crate::request::Reply;
use crate::session::Session;
use crate::time::Now;

/// The step of [`Save`].
pub struct SaveStep(Writes);

impl Step for SaveStep {
    type Output = Session;
    type Error = WriteError;
    const NAME: &'static str = "Save";

    fn on_reply(&mut self, cx: &mut Cx<'_>, reply: Reply) -> Option<Result<Session, WriteError>> {
        let outcome = self.0.on_reply(cx, reply)?;
        Some(outcome.map(|s| self.stored(s)))
    }

    fn on_wake(&mut self, cx: &mut Cx<'_>) -> Option<Result<Session, WriteError>> {
        let outcome = self.0.on_wake(cx)?;
        Some(outcome.map(|s| self.stored(s)))
    }
}

impl SaveStep {
    /// The saved session, remembering what it was handed.
    fn stored(&mut self, mut session: Session) -> Session {
        let sent = self
            .0
            .edits
            .first_mut()
            .map(|e| std::mem::take(&mut e.sent))
            .unwrap_or_default();
        session.set_sent(sent);
        session
    }
}

/// Saves a changed session. Drive it through [`Machine`](crate::Machine).
///
/// ```text
/// Save::new(config, session, now)       unchanged -> Ok(session), no request
///   poll_request() -> Request::CompareAndSet { key, expected, new, ttl_secs }
///   handle_reply(id, Swapped, now)          -> Ok(session)
///   handle_reply(id, Conflict(current), now)
///       re-apply this side's changed keys onto `current` (and re-run the
///       update closure on it), then compare-and-set again: at once the
///       first time, after a random backoff later (Request::Random once,
///       then poll_timeout / handle_timeout), until the store deadline
///       counted from the start         -> Err(Conflict)
///   handle_reply(id, Gone, now)             -> Err(Gone), never re-created
/// TTL <= 0 (cookie.expires passed): Request::Destroy -> Err(Expired)
/// ```
///
/// The conflict rule: this save's own changed keys (set or removed since
/// load) win over the stored record; every other key keeps the value the
/// stored record has now. With [`Save::update`] the update closure is
/// re-run on the current record too.
///
/// The outcome is `Ok(Session)` (the session as now stored,
/// [`Session::is_changed`] `false`) or a [`WriteError`]: `Conflict`,
/// `Gone`, `Expired`, `NotStored`, or a [`Failure`](crate::Failure) (`InvalidSessionId`,
/// `MalformedRecord`, `Store`, `Timeout`).
pub type Save = Op<SaveStep>;

impl Op<SaveStep> {
    /// Saves `session` if its data changed since it was loaded (or
    /// created); finishes at once with `Ok` and no request if not, as
    /// express-session does. On a conflict, this session's changed keys are
    /// re-applied onto the current record.
    pub fn new(config: Arc<Config>, session: Session, now: Now) -> Self {
        let edit = Edit::save(&session);
        Self::start(config, session, edit, now)
    }

    /// Applies `update` to `session`, then saves as [`Save::new`]; on a
    /// conflict, re-applies the session's changed keys onto the current
    /// record and runs `update` again on it. Use it for read-modify-write
    /// changes (a counter, appending to a list) so that concurrent writers
    /// lose nothing.
    pub fn update<F>(config: Arc<Config>, session: Session, update: F, now: Now) -> Self
    where
        F: FnMut(&mut Session) + Send + 'static,
    {
        let edit = Edit::update(&session, update);
        Self::start(config, session, edit, now)
    }

    fn start(config: Arc<Config>, session: Session, edit: Edit, now: Now) -> Self {
        let writes = Writes::new(&config, &session, vec![edit], now);
        let mut op = Op::with_step(config, now, SaveStep(writes));
        op.begin(|step, cx| {
            let outcome = step.0.begin(cx, session)?;
            Some(outcome.map(|s| step.stored(s)))
        });
        op
    }

    /// How many compare-and-set requests this save has sent.
    pub fn attempts(&self) -> u32 {
        self.step.0.attempts
    }
}
