//! Loads that arrive together leave together: one pipeline of `GET`s.
//!
//! Every socket.io connection loads its session with one `GET`. Sent one by
//! one, each costs the server a write to Redis and a read of its reply;
//! under load most of a connection's Redis cost is those two system calls,
//! not Redis. So the first load to arrive leads a batch: it lets the tasks
//! already runnable go first (one yield to the executor), and every load
//! they start in the meantime joins its batch; then it sends all of them as
//! one pipeline and hands each its reply. A load alone pays one yield.
//!
//! Each load gets exactly what its own `GET` would have returned: the
//! pipeline keeps each command's error to itself (a key holding another
//! type fails only its own load), and a pipeline that fails as a whole
//! (Redis down or too slow) fails each load with that error, as each of its
//! `GET`s would have. A load whose batch is dropped unsent (its leader's
//! call was cancelled: a deadline, a client gone) sends its own `GET`.

use std::mem;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_channel::oneshot;
use redis::RedisResult;

/// At most this many loads share one pipeline; later ones go alone.
const MAX_BATCH: usize = 128;

/// The loads waiting for a batch's pipeline, shared by a store's clones.
#[derive(Default)]
pub(super) struct Loads {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A batch is being gathered: its leader has not sent it yet.
    gathering: bool,
    waiting: Vec<Waiter>,
}

/// A load that joined a batch: its key, and where its reply goes.
pub(super) struct Waiter {
    pub(super) key: Box<[u8]>,
    pub(super) reply: oneshot::Sender<RedisResult<Option<Vec<u8>>>>,
}

/// How a load takes part.
pub(super) enum Join {
    /// Leads the batch being gathered: yield, then [`Leader::take`].
    Lead(Leader),
    /// Joined a batch: what its `GET` returned, or `Canceled` if the batch
    /// was dropped before it was sent (its leader's call was cancelled).
    Follow(oneshot::Receiver<RedisResult<Option<Vec<u8>>>>),
    /// The batch is full: send alone.
    Alone,
}

impl Loads {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (plain
        // pushes and takes), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins the batch being gathered, or starts one.
    pub(super) fn join(self: &Arc<Self>, key: &[u8]) -> Join {
        let mut state = self.lock();
        if !state.gathering {
            state.gathering = true;
            return Join::Lead(Leader {
                loads: Arc::clone(self),
                taken: false,
            });
        }
        if state.waiting.len() >= MAX_BATCH {
            return Join::Alone;
        }
        let (reply, rx) = oneshot::channel();
        state.waiting.push(Waiter {
            key: key.into(),
            reply,
        });
        Join::Follow(rx)
    }
}

/// The load gathering a batch. Dropped before [`take`](Self::take) (its
/// call was cancelled), it closes the batch: the loads in it send alone.
pub(super) struct Leader {
    loads: Arc<Loads>,
    taken: bool,
}

impl Leader {
    /// Closes the batch and takes the loads that joined it; the next load
    /// starts a new one.
    pub(super) fn take(mut self) -> Vec<Waiter> {
        self.taken = true;
        let mut state = self.loads.lock();
        state.gathering = false;
        mem::take(&mut state.waiting)
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.taken {
            let waiting = {
                let mut state = self.loads.lock();
                state.gathering = false;
                mem::take(&mut state.waiting)
            };
            // Dropping the senders tells each waiter to go alone.
            drop(waiting);
        }
    }
}
