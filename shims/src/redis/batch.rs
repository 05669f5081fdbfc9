//! Loads that start together leave together: one pipeline of `GET`s.
//!
//! Every socket.io connection loads its session with one `GET`. Sent one by
//! one, each costs the server a write to Redis and a read of its reply,
//! and Redis a read event: under load, most of a connection's Redis cost.
//! So a load that starts while other loads are out (the server is busy)
//! joins the batch being gathered (or starts one), yields to the executor
//! once, so that the tasks already runnable (typically the other
//! connections woken by the same poll of the reactor) start their loads
//! and join too, and then the first member of the batch back from its
//! yield closes it and turns it into one pipeline. A load that starts
//! while no other is out and no batch is open sends its own `GET` at once:
//! with nothing to share a pipeline with, the yield and the batch would
//! only cost it a trip through the executor and a few allocations. A load
//! dropped during its yield leaves its key in the open batch: the next
//! load then joins it and sends a pipeline of two `GET`s (one wasted read,
//! no wrong result).
//!
//! On a Redis Cluster the batch becomes one pipeline per primary, sent at
//! once (see `cluster.rs`): a pipeline's keys must all live on the node it
//! goes to.
//!
//! No load depends on another caller's future: the pipeline is a shared
//! future that every member polls, so a member whose caller stops polling
//! it (or drops it) holds up no one, and the pipeline is dropped only with
//! its last member. Each load gets exactly what its own `GET` would have
//! returned: the pipeline keeps each command's error to itself (a key
//! holding another type fails only its own load), and a pipeline that fails
//! as a whole (Redis down or too slow) fails each load with that error, as
//! each of its `GET`s would have.

use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::ConnectionManager;
use redis::{RedisError, RedisResult};

/// At most this many loads share one pipeline; a load that finds the
/// batch full starts the next one.
const MAX_BATCH: usize = 128;

/// What one load gets: what its `GET` returned.
pub(super) type Reply = RedisResult<Option<Vec<u8>>>;

/// The pipeline's replies, one per member in the order they joined.
type Replies = Shared<BoxFuture<'static, Result<Arc<Vec<Reply>>, RedisError>>>;

/// The batch being gathered, shared by a store's clones.
#[derive(Default)]
pub(super) struct Loads {
    open: Mutex<Option<Arc<Batch>>>,
    /// Loads started and not yet finished (or dropped).
    out: AtomicUsize,
}

/// A load's count in [`Loads::out`], for as long as it lives.
pub(super) struct Out<'a>(&'a AtomicUsize);

impl Drop for Out<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a load goes out.
pub(super) enum Join<'a> {
    /// No other load is out and no batch is open: it sends its own `GET`
    /// now.
    Now(Out<'a>),
    /// It is in a batch: it yields, then takes its [`Turn`].
    Batch(Ticket, Out<'a>),
}

/// One batch: its keys while it is gathered, then its pipeline.
struct Batch {
    phase: Mutex<Phase>,
}

enum Phase {
    Gathering(Vec<Box<[u8]>>),
    Sent(Replies),
}

/// A load's place in a batch.
pub(super) struct Ticket {
    batch: Arc<Batch>,
    index: usize,
}

/// What a member does once back from its yield.
pub(super) enum Turn {
    /// It was alone in its batch: it sends its own `GET`.
    Alone,
    /// The batch's pipeline, to await (see [`Ticket::reply`]).
    Batch(Replies),
}

/// A panic while a lock is held leaves these states whole (plain pushes,
/// takes and swaps; nothing that can panic runs between a take and its
/// write-back), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Loads {
    /// Joins the batch being gathered; else sends at once when no other
    /// load is out, or starts a batch.
    pub(super) fn join(&self, key: &[u8]) -> Join<'_> {
        let others = self.out.fetch_add(1, Ordering::Relaxed);
        let out = Out(&self.out);
        let mut open = lock(&self.open);
        if let Some(batch) = open.as_ref()
            && let Phase::Gathering(keys) = &mut *lock(&batch.phase)
            && keys.len() < MAX_BATCH
        {
            keys.push(key.into());
            let ticket = Ticket {
                batch: Arc::clone(batch),
                index: keys.len() - 1,
            };
            return Join::Batch(ticket, out);
        }
        if others == 0 {
            return Join::Now(out);
        }
        let batch = Arc::new(Batch {
            phase: Mutex::new(Phase::Gathering(vec![key.into()])),
        });
        *open = Some(Arc::clone(&batch));
        Join::Batch(Ticket { batch, index: 0 }, out)
    }

    /// The member's turn, after its yield: the first member back closes the
    /// batch (no load joins it any more) and sends it, with `send` (the
    /// keys, in the order the members joined; see [`on_connection`] and
    /// the cluster's per-primary pipelines); the others find it sent.
    pub(super) fn turn(
        &self,
        ticket: &Ticket,
        send: impl FnOnce(Vec<Box<[u8]>>) -> BoxFuture<'static, Result<Arc<Vec<Reply>>, RedisError>>,
    ) -> Turn {
        {
            let mut open = lock(&self.open);
            if open.as_ref().is_some_and(|b| Arc::ptr_eq(b, &ticket.batch)) {
                *open = None;
            }
        }
        let mut phase = lock(&ticket.batch.phase);
        let keys = match mem::replace(&mut *phase, Phase::Gathering(Vec::new())) {
            Phase::Sent(replies) => {
                *phase = Phase::Sent(replies.clone());
                return Turn::Batch(replies);
            }
            // Closed with this load alone in it: no one else can join.
            Phase::Gathering(keys) if keys.len() == 1 => return Turn::Alone,
            Phase::Gathering(keys) => keys,
        };
        let replies = send(keys).shared();
        *phase = Phase::Sent(replies.clone());
        Turn::Batch(replies)
    }
}

/// A batch as one pipeline of `GET`s on one connection (sent again once
/// when `may_send_again` says so, as a lone `GET` is).
pub(super) fn on_connection(
    conn: &ConnectionManager,
    keys: Vec<Box<[u8]>>,
) -> BoxFuture<'static, Result<Arc<Vec<Reply>>, RedisError>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for key in &keys {
        pipe.cmd("GET").arg(&**key);
    }
    let mut conn = conn.clone();
    async move {
        let values: Vec<Reply> = match pipe.query_async(&mut conn).await {
            Err(e) if super::may_send_again(&e) => pipe.query_async(&mut conn).await,
            r => r,
        }?;
        Ok(Arc::new(values))
    }
    .boxed()
}

impl Ticket {
    /// This member's reply from the batch's pipeline; `None` if the reply
    /// has no entry for it (a guard: redis reads exactly one reply per
    /// command, so only a server that is not Redis could get here).
    pub(super) async fn reply(&self, replies: Replies) -> Option<Reply> {
        match replies.await {
            Ok(values) => values.get(self.index).cloned(),
            Err(e) => Some(Err(e)),
        }
    }
}
