//! [`SessionSockets`]: the handle a socket server holds.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use session_sockets_core::machines::{
    Create, Created, Destroy, Handshake, Regenerate, Reload, Save, Touch, Touched,
};
use session_sockets_core::{
    Config, Failure, HandshakeError, Machine, Reply, Request, RequestId, Session, SessionId,
    StoreError, WriteError,
};
use tracing::Instrument as _;

use crate::live::hub::Hub;
use crate::observe::{Failed, Observation, Op, Stats};
use crate::runtime::{Runtime, start};
use crate::store::Store;
use crate::store::{Stalled, drive, drive_counted};

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
    pub(crate) shared: Arc<Handle<R>>,
}

/// What the clones of a handle share: one allocation, so that a clone (one
/// per live session) is one pointer.
pub(crate) struct Handle<R> {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Arc<R>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) stop: Stop,
}

/// Where a handle is in stopping ([R38]): operations running now, and what
/// became of the writes that finished after the stop began.
///
/// [R38]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r38
#[derive(Default)]
pub(crate) struct Stop {
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
pub(crate) struct Running<'a>(&'a Stop);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stop {
    /// Counts an operation in; `None` once the stop began (refused). The
    /// count goes up before the flag is read, so [`SessionSockets::shutdown`]
    /// either sees the operation running or the operation sees the stop.
    pub(crate) fn enter(&self) -> Option<Running<'_>> {
        let running = self.track();
        if self.stopping.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(running)
    }

    /// Counts work that must finish before the stop completes, even after
    /// it began (a commit task already owing answers).
    pub(crate) fn track(&self) -> Running<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Running(self)
    }

    /// A write finished; counted if the stop had begun.
    pub(crate) fn wrote(&self, ok: bool) {
        if self.stopping.load(Ordering::SeqCst) {
            let n = if ok { &self.landed } else { &self.failed };
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether queued writes must now be failed instead of sent.
    pub(crate) fn draining_over(&self, now: Instant) -> bool {
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

#[cfg(feature = "tokio")]
impl SessionSockets<crate::runtime::tokio::Tokio> {
    /// A handle over `store` on tokio: the HTTP app's settings (`config`,
    /// its secret above all) and its store. Use it inside a tokio runtime
    /// with the time driver (`#[tokio::main]` has it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use session_sockets::{Config, MemoryStore, SessionSockets};
    /// let config = Config::builder().secret("the HTTP app's secret").build()?;
    /// let sessions = SessionSockets::new(config, MemoryStore::new());
    /// # let _ = sessions; Ok(()) }
    /// ```
    pub fn new(config: impl Into<Arc<Config>>, store: impl Store) -> Self {
        SessionSockets::with_runtime(config, store, crate::runtime::tokio::Tokio)
    }
}

impl<R: Runtime> SessionSockets<R> {
    /// A handle over `store` (any [`Store`]; an `Arc<dyn Store>` chosen at
    /// run time is one too), on `runtime`: `runtime::smol::Smol`,
    /// `runtime::async_std::AsyncStd`, `runtime::tokio::Tokio` (for which
    /// [`SessionSockets::new`] is shorter), or your own.
    pub fn with_runtime(config: impl Into<Arc<Config>>, store: impl Store, runtime: R) -> Self {
        SessionSockets {
            shared: Arc::new(Handle {
                config: config.into(),
                store: Arc::new(store),
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
    pub async fn run<M: Machine>(&self, machine: M) -> Result<M::Outcome, Stalled> {
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
            let now = start(&*self.shared.runtime);
            let mut hs = Handshake::new(Arc::clone(&self.shared.config), now);
            hs.handle_header_map(headers, now.instant);
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
            let now = start(&*self.shared.runtime);
            let mut hs = Handshake::new(Arc::clone(&self.shared.config), now);
            hs.handle_headers(headers, now.instant);
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

    /// Refreshes the session's expiry and the store's time to live without
    /// rewriting its data ([R25]). [`WriteError::Gone`] if it no longer
    /// exists.
    ///
    /// [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25
    pub async fn touch(&self, session: Session) -> Result<Touched, WriteError> {
        let id = session.id().clone();
        self.observed(Op::Touch, Some(&id), true, async {
            self.write(Touch::new(
                Arc::clone(&self.shared.config),
                session,
                start(&*self.shared.runtime),
            ))
            .await
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
        self.end_followers(id, crate::live::SessionEnd::Destroyed);
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
        self.end_followers(&old, crate::live::SessionEnd::Destroyed);
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

    /// [`run`](Self::run), counting into `stats`.
    pub(crate) async fn run_counted<M: Machine>(
        &self,
        machine: M,
        stats: &mut Stats,
    ) -> Result<M::Outcome, Stalled> {
        drive_counted(machine, &*self.shared.store, &*self.shared.runtime, stats).await
    }

    pub(crate) async fn load<M>(&self, mut machine: M) -> (Result<Session, HandshakeError>, Stats)
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

    pub(crate) async fn write<M, T>(&self, mut machine: M) -> (Result<T, WriteError>, Stats)
    where
        M: Machine<Outcome = Result<T, WriteError>>,
    {
        let mut stats = Stats::default();
        let outcome = match self.run_counted(&mut machine, &mut stats).await {
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
    pub(crate) async fn observed<T, E, F>(
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
pub(crate) trait Observable {
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
pub(crate) struct Observed<M, H> {
    pub(crate) machine: M,
    pub(crate) hook: H,
}

/// What [`Observed`] does with each request.
pub(crate) trait OnRequest {
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

/// A stalled machine as a store failure whose cause is the [`Stalled`]
/// itself, so that callers can tell it from a failing store
/// (`error.source()` downcasts to it).
pub(crate) fn stalled_failure(stalled: Stalled) -> Failure {
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
        let sockets = SessionSockets::with_runtime(config, MemoryStore::new(), NoTimer);
        let id = SessionId::new("abc");
        let headers = http::HeaderMap::new();
        let session = || {
            let cookie = session_sockets_core::codec::record::SessionCookie::new(None, 0);
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
        fn load<'a>(
            &'a self,
            _: &'a [u8],
        ) -> crate::store::StoreFuture<'a, Option<crate::store::Bytes>> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn create<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: std::time::Duration,
        ) -> crate::store::StoreFuture<'a, bool> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn compare_and_set<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: &'a [u8],
            _: std::time::Duration,
        ) -> crate::store::StoreFuture<'a, crate::store::CasOutcome> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn touch<'a>(
            &'a self,
            _: &'a [u8],
            _: std::time::Duration,
        ) -> crate::store::StoreFuture<'a, bool> {
            Box::pin(std::future::ready(Err(down())))
        }
        fn destroy<'a>(&'a self, _: &'a [u8]) -> crate::store::StoreFuture<'a, ()> {
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
        let sockets = SessionSockets::with_runtime(config, Down, NoTimer);
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
        let sockets = SessionSockets::with_runtime(config, MemoryStore::new(), NoTimer);
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
                let sockets =
                    SessionSockets::with_runtime(Arc::clone(&config), Arc::clone(&store), rt);
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
        let sockets = SessionSockets::with_runtime(config, MemoryStore::new(), NoTimer);
        let dbg = format!("{sockets:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let cookie = session_sockets_core::codec::record::SessionCookie::new(None, 0);
        let touched = Touched {
            session: Session::new(SessionId::new("the-sid"), cookie, Map::new()),
            set_cookie: Some("connect.sid=s%3Athe-sid.sig".into()),
        };
        let dbg = format!("{touched:?}");
        assert!(!dbg.contains("the-sid"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }
}
