//! The write queue: every save and update of a session, from HTTP requests
//! and sockets alike, queues on its session's entry in the hub; one task at
//! a time writes the queued edits with one compare-and-set
//! ([`Commit`](session_sockets_core::machines::Commit), a group commit), so
//! writers in one process never conflict with each other, and each caller
//! still gets its own outcome.

use std::sync::Arc;

use session_sockets_core::machines::Commit;
use session_sockets_core::{Failure, Request, Session, SessionId, StoreError, WriteError};
use tracing::Instrument as _;

use crate::handle::{Observed, OnRequest, SessionSockets, stalled_failure};
use crate::live::hub::{Hub, Queued, SessionEnd, Update};
use crate::observe::{Observation, Op, Stats};
use crate::runtime::{Runtime, start};

impl<R: Runtime> SessionSockets<R> {
    /// Queues a write of `session` on its session's queue; starts the
    /// session's commit task if none runs.
    pub(crate) async fn commit(
        &self,
        session: Session,
        update: Option<Update>,
    ) -> Result<Session, WriteError> {
        let (reply, outcome) = futures_channel::oneshot::channel();
        let id = session.id().clone();
        let write = Queued {
            session,
            update,
            reply,
        };
        if self.shared.hub.enqueue(write) {
            let this = self.clone();
            self.shared.runtime.spawn(Box::pin(async move {
                // Owes its writers an answer: a stop waits for it.
                let _running = this.shared.stop.track();
                this.run_commits(id).await;
            }));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(WriteError::Failed(Failure::Store(StoreError::new(
                "the task writing this session ended before it answered (was the runtime shut \
                 down?); the write may or may not have happened: reload to find out",
            ))))
        })
    }

    /// The commit task of session `id`: writes its queue, batch by batch,
    /// until it is empty.
    async fn run_commits(&self, id: SessionId) {
        while let Some((mut batch, latest)) = self.shared.hub.next_batch(&id) {
            // Every queued write is of a stored session (`save` and
            // `update` answer the others at once), so the batch has a base.
            let Some(base) = latest.or_else(|| batch.first().map(|q| q.session.clone())) else {
                continue;
            };
            if self.shared.stop.draining_over(self.shared.runtime.now()) {
                // The stop's wait is over: fail what was queued rather than
                // write it after the process may have gone.
                self.shared.hub.committed(&id, None);
                for write in batch {
                    let _ = write
                        .reply
                        .send(Err(WriteError::Failed(Failure::ShuttingDown)));
                }
                continue;
            }
            let edits = batch.iter_mut().map(Queued::edit).collect();
            let commit = Commit::new(
                Arc::clone(&self.shared.config),
                base,
                edits,
                start(&*self.shared.runtime),
            );
            let mut commit = Observed {
                machine: commit,
                hook: RecordWrites {
                    hub: &self.shared.hub,
                    id: &id,
                },
            };
            let observation = Observation::start(Op::Commit, Some(&id));
            let mut stats = Stats::default();
            let outcome = match self
                .run_counted(&mut commit, &mut stats)
                .instrument(observation.span().clone())
                .await
            {
                Ok(outcome) => outcome,
                Err(stalled) => Err(WriteError::Failed(stalled_failure(stalled))),
            };
            observation.finish(&outcome, stats, true);
            match outcome {
                Ok(stored) => {
                    let (followers, latest) =
                        self.shared.hub.committed(&id, stored.first().cloned());
                    // The other sockets of the session see the write before
                    // any writer hears it landed (a store does not report
                    // its own writes): whoever a writer tells next reads it.
                    if let Some(latest) = latest {
                        for f in followers {
                            f.refresh(&latest);
                        }
                    }
                    for (write, session) in batch.into_iter().zip(stored) {
                        // A caller that went away needs no answer.
                        let _ = write.reply.send(Ok(session));
                    }
                }
                Err(e) => {
                    self.shared.hub.committed(&id, None);
                    for write in batch {
                        let _ = write.reply.send(Err(e.clone()));
                    }
                    match e {
                        WriteError::Gone => self.end_followers(&id, SessionEnd::Destroyed),
                        WriteError::Expired => self.end_followers(&id, SessionEnd::Expired),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// A commit's hook: tells the hub what each compare-and-set writes, so
/// that the store's report of it is known as this process's own.
struct RecordWrites<'a> {
    hub: &'a Hub,
    id: &'a SessionId,
}

impl OnRequest for RecordWrites<'_> {
    fn on_request(&mut self, request: &Request) {
        if let Request::CompareAndSet { new, .. } = request {
            self.hub.writing(self.id, new);
        }
    }
}
