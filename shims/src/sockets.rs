//! [`SessionSockets`]: the handle a socket server holds.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use session_sockets_core::{
    Commit, Config, Create, Created, Destroy, Failure, Handshake, HandshakeError, Machine,
    Regenerate, Reload, Reply, Request, RequestId, Save, Session, SessionId, StoreError, Touch,
    WriteError,
};
use tracing::Instrument as _;

use crate::driver::{Stalled, drive, drive_counted};
use crate::hub::{Follow, Follower, Hub, Queued, SessionEnd, Update, Watch};
use crate::observe::{self, Failed, Observation, Op, Stats};
use crate::runtime::{Runtime, start};
use crate::store::{Store, StoreEvent};

/// Sessions for socket connections: a [`Config`], a [`Store`] and a
/// [`Runtime`]. Cheap to clone and to share between tasks; clones share one
/// write queue per session (see [`save`](Self::save)).
///
/// - [`session`](Self::session) / [`session_from_pairs`](Self::session_from_pairs):
///   the session of a connection, from its handshake request's headers
///   (`Origin` check, cookie, signature, load).
/// - [`reload`](Self::reload): the session again by id, to pick up what an
///   HTTP route changed (session.socket.io's `getSession`, [R9]).
/// - [`save`](Self::save) / [`update`](Self::update): write changes
///   back without losing another writer's keys and without resurrecting a
///   destroyed session ([R24], [R25]).
/// - [`touch`](Self::touch), [`destroy`](Self::destroy),
///   [`regenerate`](Self::regenerate) (new id on login, [R11]),
///   [`create`](Self::create).
///
/// Every store call has the config's store deadline
/// ([`ConfigBuilder::store_deadline`](crate::ConfigBuilder::store_deadline)):
/// a store that does not answer in time fails closed with a `Timeout`
/// error ([R23]).
///
/// [R9]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r9
/// [R11]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r11
/// [R23]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r23
/// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
/// [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25
pub struct SessionSockets<R> {
    shared: Arc<Shared<R>>,
}

/// What the clones of a handle share: one allocation, so that a clone (one
/// per live session) is one pointer.
struct Shared<R> {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    runtime: Arc<R>,
    hub: Arc<Hub>,
    stop: Stop,
}

/// Where a handle is in stopping ([R38]): operations running now, and what
/// became of the writes that finished after the stop began.
///
/// [R38]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r38
#[derive(Default)]
struct Stop {
    stopping: AtomicBool,
    /// Operations, and commit tasks, running now.
    in_flight: AtomicUsize,
    landed: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    /// Past it, queued writes are failed instead of sent.
    drain_until: Mutex<Option<Instant>>,
}

/// One running operation's place in [`Stop::in_flight`].
struct Running<'a>(&'a Stop);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stop {
    /// Counts an operation in; `None` once the stop began (refused). The
    /// count goes up before the flag is read, so [`SessionSockets::shutdown`]
    /// either sees the operation running or the operation sees the stop.
    fn enter(&self) -> Option<Running<'_>> {
        let running = self.track();
        if self.stopping.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(running)
    }

    /// Counts work that must finish before the stop completes, even after
    /// it began (a commit task already owing answers).
    fn track(&self) -> Running<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Running(self)
    }

    /// A write finished; counted if the stop had begun.
    fn wrote(&self, ok: bool) {
        if self.stopping.load(Ordering::SeqCst) {
            let n = if ok { &self.landed } else { &self.failed };
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether queued writes must now be failed instead of sent.
    fn draining_over(&self, now: Instant) -> bool {
        self.stopping.load(Ordering::SeqCst)
            && self
                .drain_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some_and(|until| now >= until)
    }
}

/// What [`SessionSockets::shutdown`] found: the writes that finished while
/// it waited, and what it refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Writes (saves, updates, creates, touches, destroys, regenerates)
    /// stored after the stop began: their callers got `Ok`.
    pub landed: u64,
    /// Writes that failed after the stop began: their callers got the
    /// error (the store's, or [`Failure::ShuttingDown`] for queued writes
    /// the drain could not send in time).
    pub failed: u64,
    /// Operations asked for after the stop began, refused with
    /// [`Failure::ShuttingDown`] before any store call.
    pub refused: u64,
    /// Operations still running when the wait ended at the store deadline:
    /// their outcome is unknown to this report.
    pub unfinished: u64,
}

/// A touched session, and the `Set-Cookie` header to re-send when the
/// config is `rolling`. `Debug` redacts the header (it holds the signed id).
#[derive(Clone)]
pub struct Touched {
    /// The session with its refreshed cookie.
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

impl<R> SessionSockets<R> {
    /// The hub of the sessions this handle's sockets follow.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }
}

impl<R> Clone for SessionSockets<R> {
    fn clone(&self) -> Self {
        SessionSockets {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: std::fmt::Debug> std::fmt::Debug for SessionSockets<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Config's Debug redacts the secrets; the store is not printed.
        f.debug_struct("SessionSockets")
            .field("config", &self.shared.config)
            .field("runtime", &self.shared.runtime)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> SessionSockets<R> {
    /// A handle over `store`, sleeping on `runtime` (e.g.
    /// `runtime::tokio::Tokio`).
    pub fn new(config: impl Into<Arc<Config>>, store: Arc<dyn Store>, runtime: R) -> Self {
        SessionSockets {
            shared: Arc::new(Shared {
                config: config.into(),
                store,
                runtime: Arc::new(runtime),
                hub: Arc::default(),
                stop: Stop::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.shared.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.shared.runtime
    }

    /// Runs any core machine to its outcome against this handle's store.
    pub async fn run<M: Machine + ?Sized>(&self, machine: &mut M) -> Result<M::Outcome, Stalled> {
        drive(machine, &*self.shared.store, &*self.shared.runtime).await
    }

    /// The session of a connection whose handshake request carried
    /// `headers`: checks `Origin` (before any store lookup, [R5]), finds and
    /// verifies the session cookie exactly as express-session does, and
    /// loads the session. The error says what to check.
    ///
    /// [R5]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r5
    pub async fn session(&self, headers: &http::HeaderMap) -> Result<Session, HandshakeError> {
        self.observed(Op::Handshake, None, false, async {
            let mut hs = Handshake::new(
                Arc::clone(&self.shared.config),
                start(&*self.shared.runtime),
            );
            hs.handle_header_map(headers);
            self.load(hs).await
        })
        .await
    }

    /// [`Self::session`] for headers as `(name, value)` byte pairs in wire
    /// order (names matched case-insensitively; several `Cookie` lines are
    /// one list, [R17]).
    ///
    /// [R17]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r17
    pub async fn session_from_pairs<I, N, V>(&self, headers: I) -> Result<Session, HandshakeError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.observed(Op::Handshake, None, false, async {
            let mut hs = Handshake::new(
                Arc::clone(&self.shared.config),
                start(&*self.shared.runtime),
            );
            hs.handle_headers(headers);
            self.load(hs).await
        })
        .await
    }

    /// The session `id` as the store holds it now (session.socket.io's
    /// `getSession`): how a long-lived socket re-validates its session and
    /// sees what an HTTP route changed ([R9]).
    ///
    /// [R9]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r9
    pub async fn reload(&self, id: &SessionId) -> Result<Session, HandshakeError> {
        self.observed(Op::Reload, Some(id), false, async {
            self.load(Reload::new(
                Arc::clone(&self.shared.config),
                id,
                start(&*self.shared.runtime),
            ))
            .await
        })
        .await
    }

    /// Saves `session` if it changed since it was loaded (no store call
    /// otherwise). Only update: a session destroyed or expired meanwhile
    /// fails with [`WriteError::Gone`] and is not brought back ([R24]). If
    /// another writer saved first, this session's changed keys are
    /// re-applied onto the current record ([R25]), and conflicts with other
    /// servers are retried, with a random backoff, until the store deadline.
    /// Returns the session as stored.
    ///
    /// Saves and updates of one session through this handle (and its
    /// clones: HTTP requests and sockets alike) queue and are written one
    /// batch at a time, each batch with one compare-and-set of all its
    /// writers' edits in order (a group commit), so they never conflict
    /// with each other. Each caller still gets its own outcome. A write that
    /// started finishes even if its caller is dropped.
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    /// [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25
    pub async fn save(&self, session: Session) -> Result<Session, WriteError> {
        let id = session.id().clone();
        self.observed(Op::Save, Some(&id), true, async {
            if !session.is_changed() || !session.is_stored() {
                // Nothing to queue: the machine answers at once (unchanged,
                // or never stored).
                let now = start(&*self.shared.runtime);
                return self
                    .write(Save::new(Arc::clone(&self.shared.config), session, now))
                    .await;
            }
            (self.commit(session, None).await, Stats::default())
        })
        .await
    }

    /// Applies `update` to `session` and saves it, as [`save`](Self::save)
    /// does; after a conflict with another writer, `update` runs again on
    /// the current record. Use it for read-modify-write changes (counters,
    /// appends) so that concurrent writers lose nothing. Returns the session
    /// as stored and what `update` returned on the record that was stored
    /// (its own result, in the order the queued writes were applied).
    ///
    /// ```no_run
    /// # async fn demo(sessions: session_sockets::SessionSockets<session_sockets::runtime::tokio::Tokio>, session: session_sockets::Session) -> Result<(), session_sockets::WriteError> {
    /// let (_stored, n) = sessions
    ///     .update(session, |s| {
    ///         let n = s.get::<i64>("counter").ok().flatten().unwrap_or(0) + 1;
    ///         let _ = s.insert("counter", n);
    ///         n
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn update<F, T>(
        &self,
        session: Session,
        mut update: F,
    ) -> Result<(Session, T), WriteError>
    where
        F: FnMut(&mut Session) -> T + Send + 'static,
        T: Send + 'static,
    {
        // Each run leaves its result here; the last run is the one on the
        // stored record.
        let result = Arc::new(std::sync::Mutex::new(None));
        let slot = Arc::clone(&result);
        let run = move |s: &mut Session| {
            let value = update(s);
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
        };
        let id = session.id().clone();
        let stored = self
            .observed(Op::Update, Some(&id), true, async {
                if session.is_stored() {
                    (
                        self.commit(session, Some(Box::new(run))).await,
                        Stats::default(),
                    )
                } else {
                    let now = start(&*self.shared.runtime);
                    let config = Arc::clone(&self.shared.config);
                    self.write(Save::update(config, session, run, now)).await
                }
            })
            .await?;
        let value = result
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match value {
            Some(value) => Ok((stored, value)),
            // Every successful save ran the update on what it stored.
            None => Err(WriteError::Failed(Failure::Store(StoreError::new(
                "the update closure did not run on the stored session; this is a bug in \
                 session-sockets: please report it",
            )))),
        }
    }

    /// Queues a write of `session` on its session's queue; starts the
    /// session's commit task if none runs.
    async fn commit(
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
                    for (write, session) in batch.into_iter().zip(stored) {
                        // A caller that went away needs no answer.
                        let _ = write.reply.send(Ok(session));
                    }
                    // The other sockets of the session see the write at
                    // once (a store does not report its own writes).
                    if let Some(latest) = latest {
                        for f in followers {
                            f.refresh(&latest);
                        }
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

    /// Refreshes the session's expiry and the store's time to live without
    /// rewriting its data ([R25]). [`WriteError::Gone`] if it no longer
    /// exists.
    ///
    /// [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25
    pub async fn touch(&self, session: Session) -> Result<Touched, WriteError> {
        let id = session.id().clone();
        self.observed(Op::Touch, Some(&id), true, async {
            let mut touch = Touch::new(
                Arc::clone(&self.shared.config),
                session,
                start(&*self.shared.runtime),
            );
            let (outcome, stats) = self.write_mut(&mut touch).await;
            let touched = outcome.map(|session| Touched {
                session,
                set_cookie: touch.set_cookie().map(str::to_owned),
            });
            (touched, stats)
        })
        .await
    }

    /// Destroys the session `id` (logout): every later save of it fails
    /// with [`WriteError::Gone`] ([R24]). No error if it did not exist.
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    pub async fn destroy(&self, id: &SessionId) -> Result<(), WriteError> {
        self.observed(Op::Destroy, Some(id), true, async {
            self.write(Destroy::new(
                Arc::clone(&self.shared.config),
                id,
                start(&*self.shared.runtime),
            ))
            .await
        })
        .await?;
        // This process's sockets of the session end at once; other
        // processes' follow the store's event.
        self.end_followers(id, SessionEnd::Destroyed);
        Ok(())
    }

    /// Gives `session` a new id (on login or any privilege change, [R11]):
    /// stores a new record (with the old data if `carry_over`) and destroys
    /// the old one. Send the returned `set_cookie` to the client.
    ///
    /// [R11]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r11
    pub async fn regenerate(
        &self,
        session: Session,
        carry_over: bool,
    ) -> Result<Created, WriteError> {
        let config = Arc::clone(&self.shared.config);
        let old = session.id().clone();
        let created = self
            .observed(Op::Regenerate, Some(&old), true, async {
                let now = start(&*self.shared.runtime);
                self.write(Regenerate::new(config, session, carry_over, now))
                    .await
            })
            .await?;
        self.end_followers(&old, SessionEnd::Destroyed);
        Ok(created)
    }

    /// Creates and stores a new session holding `data`, with a fresh id
    /// from the OS CSPRNG ([R10]) inserted only if free ([R24]). Send the
    /// returned `set_cookie` to the client.
    ///
    /// [R10]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r10
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    pub async fn create(&self, data: Map<String, Value>) -> Result<Created, WriteError> {
        self.observed(Op::Create, None, true, async {
            self.write(Create::new(
                Arc::clone(&self.shared.config),
                data,
                start(&*self.shared.runtime),
            ))
            .await
        })
        .await
    }

    // ---- live sessions ----------------------------------------------------

    /// The session of a connection, as [`session`](Self::session) finds
    /// it, with a watch on it taken before it was loaded (so that a session
    /// ending during the handshake is noticed, [R32]); `None` when the
    /// handshake failed before loading.
    ///
    /// [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32
    pub(crate) async fn watched_session(
        &self,
        headers: &http::HeaderMap,
    ) -> (Result<Session, HandshakeError>, Option<Watch>) {
        let mut watch = None;
        let outcome = self
            .observed(Op::Handshake, None, false, async {
                let mut hs = Handshake::new(
                    Arc::clone(&self.shared.config),
                    start(&*self.shared.runtime),
                );
                hs.handle_header_map(headers);
                let mut watched = Observed {
                    machine: hs,
                    hook: WatchOnLoad {
                        sockets: self,
                        watch: None,
                    },
                };
                let mut stats = Stats::default();
                let outcome = match self.run_counted(&mut watched, &mut stats).await {
                    Ok(outcome) => outcome,
                    Err(stalled) => Err(HandshakeError::Failed(stalled_failure(stalled))),
                };
                watch = watched.hook.watch;
                (outcome, stats)
            })
            .await;
        (outcome, watch)
    }

    /// Makes `follower` follow its session from `watch` on: refreshed when
    /// another writer changes it, ended when it ends. `false` if the session
    /// ended while the handshake loaded it (refuse the connection).
    pub(crate) fn follow(
        &self,
        watch: Watch,
        follower: std::sync::Weak<dyn Follower>,
        loaded: &Arc<Session>,
    ) -> bool {
        let id = match watch.follow(follower, loaded) {
            Follow::Ended => return false,
            Follow::Following => None,
            Follow::Differs(id) => Some(id),
        };
        self.start_events();
        if let Some(id) = id {
            self.reload_followed(id);
        }
        true
    }

    /// Tells the followers of `id` that it ended.
    fn end_followers(&self, id: &SessionId, why: SessionEnd) {
        let followers = self.shared.hub.ended(id);
        if followers.is_empty() {
            return;
        }
        let _span = observe::live_event("end", id).entered();
        tracing::debug!(
            reason = why.reason(),
            sockets = followers.len(),
            "session ended"
        );
        observe::metrics::ends(why.reason(), followers.len());
        for f in followers {
            f.end(why);
        }
    }

    /// Starts the task that follows the store's events, once (and never
    /// once the handle stops).
    fn start_events(&self) {
        if !self.shared.hub.start_events() {
            return;
        }
        let live = Live {
            config: Arc::clone(&self.shared.config),
            store: Arc::clone(&self.shared.store),
            runtime: Arc::clone(&self.shared.runtime),
            hub: Arc::downgrade(&self.shared.hub),
            shared: Arc::downgrade(&self.shared),
        };
        self.shared.runtime.spawn(Box::pin(live.run()));
    }

    /// [`run`](Self::run), counting into `stats`.
    async fn run_counted<M: Machine + ?Sized>(
        &self,
        machine: &mut M,
        stats: &mut Stats,
    ) -> Result<M::Outcome, Stalled> {
        drive_counted(machine, &*self.shared.store, &*self.shared.runtime, stats).await
    }

    async fn load<M>(&self, mut machine: M) -> (Result<Session, HandshakeError>, Stats)
    where
        M: Machine<Outcome = Result<Session, HandshakeError>>,
    {
        let mut stats = Stats::default();
        let outcome = match self.run_counted(&mut machine, &mut stats).await {
            Ok(outcome) => outcome,
            Err(stalled) => Err(HandshakeError::Failed(stalled_failure(stalled))),
        };
        (outcome, stats)
    }

    async fn write<M, T>(&self, mut machine: M) -> (Result<T, WriteError>, Stats)
    where
        M: Machine<Outcome = Result<T, WriteError>>,
    {
        self.write_mut(&mut machine).await
    }

    async fn write_mut<M, T>(&self, machine: &mut M) -> (Result<T, WriteError>, Stats)
    where
        M: Machine<Outcome = Result<T, WriteError>>,
    {
        let mut stats = Stats::default();
        let outcome = match self.run_counted(machine, &mut stats).await {
            Ok(outcome) => outcome,
            Err(stalled) => Err(WriteError::Failed(stalled_failure(stalled))),
        };
        (outcome, stats)
    }

    /// Runs one operation: refused once the handle stops, otherwise in its
    /// own span, its outcome recorded (span fields, metrics, the failure's
    /// detail in the log once) and, for a `write`, counted for the stop's
    /// report. Saves and updates that wait in the write queue leave the
    /// log to their commit.
    async fn observed<T, E, F>(
        &self,
        op: Op,
        id: Option<&SessionId>,
        write: bool,
        run: F,
    ) -> Result<T, E>
    where
        E: Failed + From<Failure>,
        F: Future<Output = (Result<T, E>, Stats)>,
        T: Observable,
    {
        let observation = Observation::start(op, id);
        let Some(_running) = self.shared.stop.enter() else {
            let refused = Err(E::from(Failure::ShuttingDown));
            observation.finish(&refused, Stats::default(), true);
            return refused;
        };
        let (outcome, stats) = run.instrument(observation.span().clone()).await;
        if let Ok(value) = &outcome
            && id.is_none()
            && let Some(id) = value.session_id()
        {
            observation.session(id);
        }
        let queued = matches!(op, Op::Save | Op::Update) && stats.round_trips == 0;
        observation.finish(&outcome, stats, !queued);
        if write {
            self.shared.stop.wrote(outcome.is_ok());
        }
        outcome
    }

    /// Stops the handle, gracefully ([R38]): from now on every operation
    /// is refused with [`Failure::ShuttingDown`] before any store call;
    /// writes already asked for (queued group commits included) finish or
    /// fail, each within its store deadline; the store's event
    /// subscription ends. Returns once nothing is running, or after the
    /// config's store deadline, with what became of the writes meanwhile.
    ///
    /// Callers of the writes that finished got their outcome; answer them
    /// (socket.io acks, HTTP responses) before closing their connections,
    /// so that no write is applied without its client hearing of it.
    /// Calling it again waits again and reports the totals since the first
    /// call.
    ///
    /// [R38]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r38
    pub async fn shutdown(&self) -> ShutdownReport {
        let stop = &self.shared.stop;
        let until = self.shared.runtime.now() + self.shared.config.store_deadline();
        {
            let mut drain = stop
                .drain_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            drain.get_or_insert(until);
        }
        stop.stopping.store(true, Ordering::SeqCst);
        self.shared.hub.stop_events();
        while (stop.in_flight.load(Ordering::SeqCst) > 0 || self.shared.hub.events_running())
            && self.shared.runtime.now() < until
        {
            self.shared.runtime.sleep(STOP_POLL).await;
        }
        let report = ShutdownReport {
            landed: stop.landed.load(Ordering::Relaxed),
            failed: stop.failed.load(Ordering::Relaxed),
            refused: stop.refused.load(Ordering::Relaxed),
            unfinished: stop.in_flight.load(Ordering::SeqCst) as u64,
        };
        tracing::info!(
            landed = report.landed,
            failed = report.failed,
            refused = report.refused,
            unfinished = report.unfinished,
            "session handle stopped"
        );
        report
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.stop.stopping.load(Ordering::SeqCst)
    }
}

/// How often a stop looks whether the work it waits for is done.
const STOP_POLL: Duration = Duration::from_millis(5);

/// An operation's successful outcome, as observation names its session.
trait Observable {
    fn session_id(&self) -> Option<&SessionId>;
}

impl Observable for Session {
    fn session_id(&self) -> Option<&SessionId> {
        Some(self.id())
    }
}

impl Observable for Created {
    fn session_id(&self) -> Option<&SessionId> {
        Some(self.session.id())
    }
}

impl Observable for Touched {
    fn session_id(&self) -> Option<&SessionId> {
        Some(self.session.id())
    }
}

impl Observable for () {
    fn session_id(&self) -> Option<&SessionId> {
        None
    }
}

/// A machine whose every request is shown to `hook` just before it goes
/// out (the store may report a write before its reply arrives).
struct Observed<M, H> {
    machine: M,
    hook: H,
}

/// What [`Observed`] does with each request.
trait OnRequest {
    fn on_request(&mut self, request: &Request);
}

impl<M: Machine, H: OnRequest> Machine for Observed<M, H> {
    type Outcome = M::Outcome;

    fn poll_request(&mut self) -> Option<Request> {
        let request = self.machine.poll_request()?;
        self.hook.on_request(&request);
        Some(request)
    }
    fn handle_reply(&mut self, id: RequestId, reply: Reply, now: std::time::Instant) {
        self.machine.handle_reply(id, reply, now);
    }
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.machine.poll_timeout()
    }
    fn handle_timeout(&mut self, now: std::time::Instant) {
        self.machine.handle_timeout(now);
    }
    fn poll_outcome(&mut self) -> Option<Self::Outcome> {
        self.machine.poll_outcome()
    }
    fn is_finished(&self) -> bool {
        self.machine.is_finished()
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

/// A handshake's hook: registers a watch on its session just before the
/// load request goes out.
struct WatchOnLoad<'a, R> {
    sockets: &'a SessionSockets<R>,
    watch: Option<Watch>,
}

impl<R> OnRequest for WatchOnLoad<'_, R> {
    fn on_request(&mut self, request: &Request) {
        if let Request::Load { key, .. } = request
            && self.watch.is_none()
            && let Some(id) = session_sockets_core::event::session_of_key(
                &self.sockets.shared.config,
                key.as_bytes(),
            )
        {
            self.watch = Some(self.sockets.hub().watch(id));
        }
    }
}

/// Tells the hub the event task ended, however it ends.
struct EventsRunning(std::sync::Weak<Hub>);

impl Drop for EventsRunning {
    fn drop(&mut self) {
        if let Some(hub) = self.0.upgrade() {
            hub.events_ended();
        }
    }
}

/// How often the event task looks at keep-alive, expiry and a lost event
/// stream.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// The event task's view of a handle: everything but a strong hold on the
/// handle, so that the task ends once every handle is dropped.
struct Live<R> {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    runtime: Arc<R>,
    hub: std::sync::Weak<Hub>,
    shared: std::sync::Weak<Shared<R>>,
}

impl<R: Runtime> Live<R> {
    /// A handle again, while the hub lives.
    fn sockets(&self) -> Option<SessionSockets<R>> {
        Some(SessionSockets {
            shared: self.shared.upgrade()?,
        })
    }

    /// Follows the store's events until the hub is gone: subscribes, then
    /// handles each event, and once a second refreshes TTLs (keep-alive),
    /// ends sessions whose cookie expired and nudges a lost event stream.
    async fn run(self) {
        let sink_hub = self.hub.clone();
        let sink: crate::store::EventSink = Arc::new(move |event| {
            if let Some(hub) = sink_hub.upgrade() {
                hub.push_event(event);
            }
        });
        let _running = EventsRunning(self.hub.clone());
        let mut _subscription = None;
        let mut subscribed = false;
        let mut lost = false;
        loop {
            if self.hub.upgrade().is_none_or(|hub| hub.events_stopped()) {
                // Dropping the subscription ends it.
                return;
            }
            if !subscribed {
                match self
                    .store
                    .subscribe(self.config.key_prefix().as_bytes(), Arc::clone(&sink))
                    .await
                {
                    Ok(sub) => {
                        _subscription = sub;
                        subscribed = true;
                    }
                    Err(e) => tracing::warn!(
                        error = %observe::Chain(&e),
                        "cannot follow the store's session events; retrying"
                    ),
                }
            }
            let Some(hub) = self.hub.upgrade() else {
                return;
            };
            let next = futures_lite::future::or(
                async { Some(std::future::poll_fn(|cx| hub.poll_event(cx)).await) },
                async {
                    self.runtime.sleep(TICK).await;
                    None
                },
            )
            .await;
            drop(hub);
            let Some(sockets) = self.sockets() else {
                return;
            };
            if let Some(event) = &next {
                observe::metrics::store_event(match event {
                    StoreEvent::Key(k) => match k.change {
                        session_sockets_core::event::KeyChange::Written(_) => "written",
                        session_sockets_core::event::KeyChange::Deleted => "deleted",
                        session_sockets_core::event::KeyChange::Expired => "expired",
                    },
                    StoreEvent::Lost => "lost",
                    StoreEvent::Resumed => "resumed",
                });
            }
            match next {
                Some(StoreEvent::Key(event)) => sockets.on_key_event(&event),
                Some(StoreEvent::Lost) => {
                    tracing::warn!("the store's session events were lost; re-validating once back");
                    lost = true;
                }
                Some(StoreEvent::Resumed) => lost = !sockets.resume().await,
                None => {
                    if lost {
                        // Redis reconnects (and re-subscribes, which sends
                        // `Resumed`) when a command needs it.
                        let _ = sockets.store().events_resumed().await;
                    }
                    sockets.keep_alive();
                    sockets.check_expiry();
                }
            }
        }
    }
}

impl<R: Runtime> SessionSockets<R> {
    /// A store event about a key: what it means for a followed session.
    fn on_key_event(&self, event: &session_sockets_core::event::KeyEvent) {
        use session_sockets_core::event::{SessionChange, session_event};
        let Some(ev) = session_event(&self.shared.config, event) else {
            return;
        };
        if !self.shared.hub.follows(&ev.id) {
            return;
        }
        let kind = match ev.change {
            SessionChange::Destroyed => "destroyed",
            SessionChange::Expired => "expired",
            SessionChange::Changed(_) => "changed",
        };
        let _span = observe::live_event(kind, &ev.id).entered();
        match ev.change {
            SessionChange::Destroyed => self.end_followers(&ev.id, SessionEnd::Destroyed),
            SessionChange::Expired => self.end_followers(&ev.id, SessionEnd::Expired),
            SessionChange::Changed(Some(bytes)) if self.shared.hub.is_latest(&ev.id, &bytes) => {
                // This process's own write: its sockets know it already.
            }
            SessionChange::Changed(_) => self.reload_followed(ev.id),
        }
    }

    /// Reloads a followed session (coalesced: one reload per burst of
    /// changes) and refreshes or ends its followers.
    fn reload_followed(&self, id: SessionId) {
        if !self.shared.hub.want_reload(&id) {
            return;
        }
        let this = self.clone();
        let span = observe::live_event("reload", &id);
        self.shared.runtime.spawn(Box::pin(
            async move {
                loop {
                    match this.reload(&id).await {
                        Ok(fresh) => {
                            let (followers, fresh) = this.hub().reloaded(&id, fresh);
                            for f in followers {
                                f.refresh(&fresh);
                            }
                        }
                        Err(HandshakeError::SessionNotFound) => {
                            this.end_followers(&id, SessionEnd::Destroyed);
                        }
                        Err(HandshakeError::Expired) => {
                            this.end_followers(&id, SessionEnd::Expired)
                        }
                        // The store is in trouble: keep the copies; a later
                        // event or re-validation catches up.
                        Err(_) => {}
                    }
                    if !this.hub().reload_done(&id) {
                        break;
                    }
                }
            }
            .instrument(span),
        ));
    }

    /// The event stream is back: re-arm it, then re-validate every followed
    /// session once (events in the gap were lost). `false` if it could not
    /// be re-armed (tried again on the next tick).
    async fn resume(&self) -> bool {
        if let Err(e) = self.shared.store.events_resumed().await {
            tracing::warn!(
                error = %observe::Chain(&e),
                "the store's session events are not back yet"
            );
            return false;
        }
        tracing::info!("the store's session events are back; re-validating followed sessions");
        for id in self.shared.hub.followed() {
            self.reload_followed(id);
        }
        true
    }

    /// Touches each followed session at most once per keep-alive interval.
    fn keep_alive(&self) {
        let Some(interval) = self.shared.config.keep_alive() else {
            return;
        };
        let Some(before) = std::time::Instant::now().checked_sub(interval) else {
            return;
        };
        for session in self.shared.hub.due_for_touch(before) {
            let this = self.clone();
            self.shared.runtime.spawn(Box::pin(async move {
                let id = session.id().clone();
                match this.touch(session).await {
                    Ok(t) => this.hub().touched(&t.session),
                    Err(WriteError::Gone) => this.end_followers(&id, SessionEnd::Destroyed),
                    Err(WriteError::Expired) => this.end_followers(&id, SessionEnd::Expired),
                    Err(_) => {}
                }
            }));
        }
    }

    /// Ends followed sessions whose stored `cookie.expires` has passed
    /// ([R13]; with `rolling`, the store's TTL decides, as for loads).
    ///
    /// [R13]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r13
    fn check_expiry(&self) {
        if self.shared.config.rolling() {
            return;
        }
        let now = session_sockets_core::time::millis(self.shared.runtime.wall());
        for s in self.shared.hub.latest_followed() {
            if s.cookie().is_expired(now) {
                self.end_followers(s.id(), SessionEnd::Expired);
            }
        }
    }
}

/// A stalled machine as a store failure whose cause is the [`Stalled`]
/// itself, so that callers can tell it from a failing store
/// (`error.source()` downcasts to it).
fn stalled_failure(stalled: Stalled) -> Failure {
    Failure::Store(StoreError::with_source(stalled.to_string(), stalled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[derive(Clone, Debug)]
    struct NoTimer;

    impl Runtime for NoTimer {
        type Sleep = std::future::Pending<()>;
        fn sleep(&self, _: std::time::Duration) -> Self::Sleep {
            std::future::pending()
        }
    }

    fn assert_send<T: Send>(_: &T) {}

    /// Every operation's future can be spawned on a multi-threaded runtime.
    #[test]
    fn every_operation_future_is_send() {
        let config = Config::builder().secret("s").build().unwrap();
        let sockets = SessionSockets::new(config, Arc::new(MemoryStore::new()), NoTimer);
        let id = SessionId::new("abc");
        let headers = http::HeaderMap::new();
        let session = || {
            let cookie = session_sockets_core::record::SessionCookie::new(None, 0);
            Session::new(id.clone(), cookie, Map::new())
        };
        assert_send(&sockets.session(&headers));
        assert_send(&sockets.session_from_pairs([("cookie", "a=b")]));
        assert_send(&sockets.reload(&id));
        assert_send(&sockets.save(session()));
        assert_send(&sockets.update(session(), |_| {}));
        assert_send(&sockets.touch(session()));
        assert_send(&sockets.destroy(&id));
        assert_send(&sockets.regenerate(session(), true));
        assert_send(&sockets.create(Map::new()));
    }

    /// A store whose every call fails with a cause attached.
    struct Down;

    impl Store for Down {
        fn load<'a>(&'a self, _: &'a [u8]) -> crate::StoreFuture<'a, Option<crate::Bytes>> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn create<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: std::time::Duration,
        ) -> crate::StoreFuture<'a, bool> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn compare_and_set<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: &'a [u8],
            _: std::time::Duration,
        ) -> crate::StoreFuture<'a, crate::CasOutcome> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn touch<'a>(
            &'a self,
            _: &'a [u8],
            _: std::time::Duration,
        ) -> crate::StoreFuture<'a, bool> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn destroy<'a>(&'a self, _: &'a [u8]) -> crate::StoreFuture<'a, ()> {
            Box::pin(std::future::ready(Err(down())))
        }
    }

    fn down() -> StoreError {
        StoreError::with_source(
            "the test store is down",
            std::io::Error::other("disk on fire"),
        )
    }

    #[test]
    fn a_store_errors_cause_reaches_the_callers_error() {
        use std::error::Error as _;
        let config = Config::builder().secret("s").build().unwrap();
        let sockets = SessionSockets::new(config, Arc::new(Down), NoTimer);
        let e = futures_lite::future::block_on(sockets.reload(&SessionId::new("abc"))).unwrap_err();
        assert_eq!(e.reason(), "store_error");
        assert!(e.to_string().contains("the test store is down"), "{e}");
        let cause = e.source().expect("the store's cause is kept");
        assert_eq!(cause.to_string(), "disk on fire");
        assert!(cause.downcast_ref::<std::io::Error>().is_some());
        let e =
            futures_lite::future::block_on(sockets.destroy(&SessionId::new("abc"))).unwrap_err();
        let cause = e.source().expect("the store's cause is kept");
        assert!(cause.downcast_ref::<std::io::Error>().is_some());
    }

    /// A machine that never asks, never finishes and has no deadline.
    struct Stuck;

    impl Machine for Stuck {
        type Outcome = Result<Session, HandshakeError>;
        fn poll_request(&mut self) -> Option<session_sockets_core::Request> {
            None
        }
        fn handle_reply(
            &mut self,
            _: session_sockets_core::RequestId,
            _: session_sockets_core::Reply,
            _: std::time::Instant,
        ) {
        }
        fn poll_timeout(&self) -> Option<std::time::Instant> {
            None
        }
        fn handle_timeout(&mut self, _: std::time::Instant) {}
        fn poll_outcome(&mut self) -> Option<Self::Outcome> {
            None
        }
        fn is_finished(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_stalled_machine_is_its_own_cause_not_a_store_message() {
        use std::error::Error as _;
        let config = Config::builder().secret("s").build().unwrap();
        let sockets = SessionSockets::new(config, Arc::new(MemoryStore::new()), NoTimer);
        let e = futures_lite::future::block_on(sockets.load(Stuck))
            .0
            .unwrap_err();
        assert_eq!(e.reason(), "store_error");
        let cause = e.source().expect("the stall is the cause");
        assert!(cause.downcast_ref::<Stalled>().is_some(), "{cause:?}");
    }

    /// A runtime whose wall clock is stepped by `jump` right after it is
    /// first read, as an NTP correction or an operator might do while an
    /// operation is in flight; it counts the reads.
    #[derive(Clone, Debug)]
    struct SteppedWall {
        base: std::time::SystemTime,
        jump: std::time::Duration,
        forward: bool,
        reads: Arc<std::sync::atomic::AtomicU32>,
    }

    impl Runtime for SteppedWall {
        type Sleep = std::future::Pending<()>;
        fn sleep(&self, _: std::time::Duration) -> Self::Sleep {
            std::future::pending()
        }
        fn wall(&self) -> std::time::SystemTime {
            let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match (n, self.forward) {
                (0, _) => self.base,
                (_, true) => self.base + self.jump,
                (_, false) => self.base - self.jump,
            }
        }
    }

    #[test]
    fn r23_a_wall_clock_stepped_an_hour_either_way_mid_operation_fails_nothing() {
        use futures_lite::future::block_on;
        let config = Arc::new(
            Config::builder()
                .secret("s")
                .store_deadline(std::time::Duration::from_secs(3))
                .cookie(session_sockets_core::CookieOptions {
                    max_age: Some(std::time::Duration::from_secs(7200)),
                    ..Default::default()
                })
                .build()
                .unwrap(),
        );
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        for forward in [true, false] {
            // Each operation gets a clock that is stepped after its first
            // read: an operation reads it once, as it starts, and never
            // again.
            let fresh = || {
                let rt = SteppedWall {
                    base: std::time::SystemTime::now(),
                    jump: std::time::Duration::from_secs(3600),
                    forward,
                    reads: Arc::default(),
                };
                let sockets = SessionSockets::new(Arc::clone(&config), Arc::clone(&store), rt);
                let reads = Arc::clone(&sockets.runtime().reads);
                let once = move || {
                    assert_eq!(
                        reads.load(std::sync::atomic::Ordering::SeqCst),
                        1,
                        "{forward}"
                    );
                };
                (sockets, once)
            };
            let (sockets, once) = fresh();
            let created = block_on(sockets.create(Map::new())).unwrap();
            once();
            let cookie = created.set_cookie.split(';').next().unwrap().to_owned();

            let (sockets, once) = fresh();
            let mut session = block_on(sockets.session_from_pairs([("cookie", cookie.as_str())]))
                .unwrap_or_else(|e| panic!("handshake ({forward}): {e}"));
            once();
            let (sockets, once) = fresh();
            session = block_on(sockets.reload(session.id())).unwrap();
            once();
            session.insert("n", 1).unwrap();
            let (sockets, once) = fresh();
            session = block_on(sockets.save(session)).unwrap();
            once();
            let (sockets, once) = fresh();
            session = block_on(sockets.update(session, |s| {
                let _ = s.insert("m", 2);
            }))
            .unwrap()
            .0;
            once();
            let (sockets, once) = fresh();
            let touched = block_on(sockets.touch(session)).unwrap();
            once();
            let (sockets, once) = fresh();
            let regenerated = block_on(sockets.regenerate(touched.session, true)).unwrap();
            once();
            assert_eq!(regenerated.session.get::<i64>("m").unwrap(), Some(2));
            let (sockets, once) = fresh();
            block_on(sockets.destroy(regenerated.session.id())).unwrap();
            once();
        }
    }

    #[test]
    fn r16_debug_redacts_secrets_and_set_cookie() {
        let config = Config::builder().secret("hunter2-secret").build().unwrap();
        let sockets = SessionSockets::new(config, Arc::new(MemoryStore::new()), NoTimer);
        let dbg = format!("{sockets:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let cookie = session_sockets_core::record::SessionCookie::new(None, 0);
        let touched = Touched {
            session: Session::new(SessionId::new("the-sid"), cookie, Map::new()),
            set_cookie: Some("connect.sid=s%3Athe-sid.sig".into()),
        };
        let dbg = format!("{touched:?}");
        assert!(!dbg.contains("the-sid"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }
}
