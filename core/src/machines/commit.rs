//! Saving several writers' edits of one session with one compare-and-set
//! (a group commit): [`Commit`]. The order of calls is
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

/// The step of [`Commit`].
pub struct CommitStep(Writes);

impl CommitStep {
    /// One stored session per edit, each remembering what its writer handed.
    fn stored(&mut self, session: Session) -> Vec<Session> {
        self.0
            .edits
            .iter_mut()
            .map(|e| Writes::stored_for(&session, std::mem::take(&mut e.sent)))
            .collect()
    }
}

impl Step for CommitStep {
    type Output = Vec<Session>;
    type Error = WriteError;
    const NAME: &'static str = "Commit";

    fn on_reply(
        &mut self,
        cx: &mut Cx<'_>,
        reply: Reply,
    ) -> Option<Result<Vec<Session>, WriteError>> {
        let outcome = self.0.on_reply(cx, reply)?;
        Some(outcome.map(|s| self.stored(s)))
    }

    fn on_wake(&mut self, cx: &mut Cx<'_>) -> Option<Result<Vec<Session>, WriteError>> {
        let outcome = self.0.on_wake(cx)?;
        Some(outcome.map(|s| self.stored(s)))
    }
}

/// Saves the edits of several writers of one session with one
/// compare-and-set (a group commit): the edits are applied in order onto
/// `base`, then, after each conflict, onto the current record, exactly as
/// [`Save`](super::Save) applies one writer's. Drive it through
/// [`Machine`](crate::Machine).
///
/// `base` is the session the first attempt starts from: the newest stored
/// copy the caller knows (its unsaved changes are written only in that
/// first attempt; give changes to keep as edits). The outcome is one
/// stored session per edit, in order (the same record, each remembering
/// what its writer handed over, for [`Session::adopt_saved`]), or one
/// [`WriteError`] for all.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Instant, SystemTime};
/// use session_sockets_core::time::Now;
/// use session_sockets_core::codec::record;
/// use session_sockets_core::machines::{Commit, Edit};
/// use session_sockets_core::{Config, Machine, Reply, Request, Session, SessionId};
///
/// let config = Arc::new(Config::builder().secret("keyboard cat").build().unwrap());
/// let loaded = br#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}"#;
/// let base = Session::from_record(SessionId::new("abc"), record::decode(loaded).unwrap(), Arc::from(&loaded[..]));
/// let mut socket = base.clone();
/// socket.insert("theme", "dark").unwrap();
/// let add = |s: &mut Session| {
///     let n = s.get::<i64>("n").unwrap().unwrap_or(0);
///     s.insert("n", n + 1).unwrap();
/// };
/// let edits = vec![Edit::save(&socket), Edit::update(&base, add), Edit::update(&base, add)];
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let mut commit = Commit::new(config, base, edits, now);
/// let Some(Request::CompareAndSet { id, new, .. }) = commit.poll_request() else { panic!() };
/// assert!(std::str::from_utf8(&new).unwrap().ends_with(r#""n":3,"theme":"dark"}"#));
/// commit.handle_reply(id, Reply::Swapped, now.instant);
/// let stored = commit.poll_outcome().unwrap().unwrap();
/// assert_eq!(stored.len(), 3);
/// assert_eq!(stored[2].get::<i64>("n").unwrap(), Some(3));
/// ```
pub type Commit = Op<CommitStep>;

impl Op<CommitStep> {
    /// Saves `edits`, in order, starting from `base`.
    pub fn new(config: Arc<Config>, base: Session, edits: Vec<Edit>, now: Now) -> Self {
        let writes = Writes::new(&config, &base, edits, now);
        let mut op = Op::with_step(config, now, CommitStep(writes));
        op.begin(|step, cx| {
            let outcome = step.0.begin(cx, base)?;
            Some(outcome.map(|s| step.stored(s)))
        });
        op
    }

    /// How many compare-and-set requests this commit has sent.
    pub fn attempts(&self) -> u32 {
        self.step.0.attempts
    }
}
