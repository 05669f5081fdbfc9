//! One writer per session per process: every save and update of a session
//! made through one [`SessionSockets`](crate::SessionSockets) handle (and
//! its clones), from HTTP requests and sockets alike, queues here; one task
//! at a time writes the queued edits of a session, all of them with one
//! compare-and-set ([`Commit`](session_sockets_core::Commit), a group
//! commit). Writers in one process therefore never conflict with each
//! other, a burst of writes costs one store round trip per batch instead of
//! one per write, and each caller still gets its own outcome.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use futures_channel::oneshot;
use session_sockets_core::{Edit, Session, SessionId, WriteError};

/// An update closure, as queued.
pub(crate) type Update = Box<dyn FnMut(&mut Session) + Send>;

/// One caller's queued write, and where its outcome goes.
pub(crate) struct Queued {
    pub(crate) session: Session,
    pub(crate) update: Option<Update>,
    pub(crate) reply: oneshot::Sender<Result<Session, WriteError>>,
}

impl Queued {
    /// The core's edit for this write.
    pub(crate) fn edit(&mut self) -> Edit {
        match self.update.take() {
            Some(update) => Edit::update(&self.session, update),
            None => Edit::save(&self.session),
        }
    }
}

/// The write queues of one handle, by session.
#[derive(Default)]
pub(crate) struct Hub {
    entries: Mutex<HashMap<SessionId, Entry>>,
}

#[derive(Default)]
struct Entry {
    queue: Vec<Queued>,
    /// A commit task is running for this session.
    committing: bool,
    /// The session as this process last stored it, while its task runs:
    /// the next batch starts from it (it is at least as new as what the
    /// queued writers loaded).
    latest: Option<Session>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entries are keyed by session id: counts only (R16).
        f.debug_struct("Hub")
            .field("sessions", &self.lock().len())
            .finish()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
        // Every mutation below is a few map and vector operations that do
        // not panic, so a poisoned lock still holds consistent queues.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `write`; `true` if the caller must start the session's commit
    /// task (none is running).
    pub(crate) fn enqueue(&self, write: Queued) -> bool {
        let mut entries = self.lock();
        let entry = entries.entry(write.session.id().clone()).or_default();
        entry.queue.push(write);
        !std::mem::replace(&mut entry.committing, true)
    }

    /// The next batch of `id`'s writes, with the session to start it from;
    /// `None` when the queue is empty, which ends the commit task.
    pub(crate) fn next_batch(&self, id: &SessionId) -> Option<(Vec<Queued>, Option<Session>)> {
        let mut entries = self.lock();
        let entry = entries.get_mut(id)?;
        if entry.queue.is_empty() {
            entries.remove(id);
            return None;
        }
        Some((std::mem::take(&mut entry.queue), entry.latest.clone()))
    }

    /// What the last batch stored (`None`: it failed; start the next one
    /// from its writers' own copies).
    pub(crate) fn committed(&self, id: &SessionId, latest: Option<Session>) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.latest = latest;
        }
    }
}
