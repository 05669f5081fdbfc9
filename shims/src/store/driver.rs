//! The driver: one async loop that runs any core [`Machine`] against a
//! [`Store`], with the machine's deadline on every store call ([R23]).
//!
//! The loop only moves bytes and waits; every decision (what to load, what
//! to write, when a reply is too late) is the machine's:
//!
//! 1. drain [`Machine::poll_request`], running each request against the
//!    store (or the OS random number generator for [`Request::Random`]),
//!    raced against [`Machine::poll_timeout`];
//! 2. feed each answer back with [`Machine::handle_reply`], or call
//!    [`Machine::handle_timeout`] when the deadline won the race (the store
//!    call is then dropped, which cancels it);
//! 3. return [`Machine::poll_outcome`] once there is one; otherwise sleep
//!    until the deadline and call [`Machine::handle_timeout`].
//!
//! [R23]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r23

use std::time::Duration;

use futures_lite::future;
use session_sockets_core::{Machine, Reply, Request, StoreError};

use crate::observe::Stats;
use crate::runtime::Runtime;
use crate::store::{CasOutcome, Store};

/// A machine stopped without an outcome, a pending request or a deadline.
/// Core machines never do; this reports a bug instead of waiting forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the session machine stopped without an outcome, a store request or a deadline; \
             this is a bug in session-sockets-core (or in a custom Machine): please report it",
        )
    }
}

impl std::error::Error for Stalled {}

/// Runs `machine` to its outcome against `store`, sleeping on `runtime`.
/// Pass `&mut machine` to keep the machine (every `&mut` of a machine is a
/// machine).
///
/// Every store call is raced against the machine's deadline, so a store
/// that never answers fails the machine at the deadline
/// ([`Failure::Timeout`](crate::Failure::Timeout)) instead of hanging.
/// Deadlines are [`Runtime::now`] instants and the timer is
/// [`Runtime::sleep_until`], so the wall clock plays no part in them.
/// Random bytes come from the operating system's CSPRNG ([R10]).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Instant, SystemTime};
/// use session_sockets::core::Now;
/// use session_sockets::core::machines::Reload;
/// use session_sockets::{Config, HandshakeError, MemoryStore, SessionId};
/// use session_sockets::store::drive;
/// # #[derive(Clone, Copy)] struct Rt;
/// # impl session_sockets::runtime::Runtime for Rt {
/// #     type Sleep = std::future::Pending<()>;
/// #     fn sleep(&self, _: std::time::Duration) -> Self::Sleep { std::future::pending() }
/// # }
///
/// let config = Arc::new(Config::builder().secret("keyboard cat").build().unwrap());
/// let store = MemoryStore::new();
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let reload = Reload::new(config, &SessionId::new("no-such-id"), now);
/// let outcome = futures_lite::future::block_on(drive(reload, &store, &Rt)).unwrap();
/// assert_eq!(outcome.unwrap_err(), HandshakeError::SessionNotFound);
/// ```
///
/// [R10]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r10
pub async fn drive<M, R>(machine: M, store: &dyn Store, runtime: &R) -> Result<M::Outcome, Stalled>
where
    M: Machine,
    R: Runtime + ?Sized,
{
    drive_counted(machine, store, runtime, &mut Stats::default()).await
}

/// [`drive`], counting round trips and compare-and-set conflicts into
/// `stats` (and, with the `metrics` feature, recording each store call's
/// latency).
pub(crate) async fn drive_counted<M, R>(
    mut machine: M,
    store: &dyn Store,
    runtime: &R,
    stats: &mut Stats,
) -> Result<M::Outcome, Stalled>
where
    M: Machine,
    R: Runtime + ?Sized,
{
    loop {
        while let Some(request) = machine.poll_request() {
            let id = request.id();
            count(stats, &request);
            let call = async { Ok(timed(store, &request, runtime).await) };
            let reply = match machine.poll_timeout() {
                Some(deadline) => {
                    let expiry = async {
                        runtime.sleep_until(deadline).await;
                        Err(())
                    };
                    future::or(call, expiry).await
                }
                None => call.await,
            };
            match reply {
                Ok(reply) => {
                    if matches!(reply, Reply::Conflict(_)) {
                        stats.conflicts = stats.conflicts.saturating_add(1);
                    }
                    machine.handle_reply(id, reply, runtime.now());
                }
                Err(()) => machine.handle_timeout(runtime.now()),
            }
        }
        if let Some(outcome) = machine.poll_outcome() {
            return Ok(outcome);
        }
        let Some(deadline) = machine.poll_timeout() else {
            return Err(Stalled);
        };
        runtime.sleep_until(deadline).await;
        machine.handle_timeout(runtime.now());
    }
}

/// Counts `request` as it goes out.
fn count(stats: &mut Stats, request: &Request) {
    match request {
        Request::Random { .. } => {}
        Request::CompareAndSet { .. } => {
            stats.round_trips = stats.round_trips.saturating_add(1);
            stats.cas = stats.cas.saturating_add(1);
        }
        _ => stats.round_trips = stats.round_trips.saturating_add(1),
    }
}

/// [`execute`], with the store call's latency recorded (feature `metrics`).
#[cfg(feature = "metrics")]
async fn timed<R: Runtime + ?Sized>(store: &dyn Store, request: &Request, runtime: &R) -> Reply {
    let kind = match request {
        Request::Load { .. } => "load",
        Request::Create { .. } => "create",
        Request::CompareAndSet { .. } => "compare_and_set",
        Request::Touch { .. } => "touch",
        Request::Destroy { .. } => "destroy",
        _ => return execute(store, request).await,
    };
    let started = runtime.now();
    let reply = execute(store, request).await;
    let took = runtime.now().saturating_duration_since(started);
    crate::observe::metrics::latency(kind, took.as_secs_f64());
    reply
}

/// [`execute`] (latency is recorded with the `metrics` feature only).
#[cfg(not(feature = "metrics"))]
async fn timed<R: Runtime + ?Sized>(store: &dyn Store, request: &Request, _: &R) -> Reply {
    execute(store, request).await
}

/// Runs one request and translates the answer into the core's [`Reply`].
async fn execute(store: &dyn Store, request: &Request) -> Reply {
    match request {
        Request::Load { key, .. } => match store.load(key.as_bytes()).await {
            Ok(Some(bytes)) => Reply::Found(bytes),
            Ok(None) => Reply::NotFound,
            Err(e) => failed(e),
        },
        Request::Create {
            key,
            value,
            ttl_secs,
            ..
        } => match store.create(key.as_bytes(), value, secs(*ttl_secs)).await {
            Ok(true) => Reply::Created,
            Ok(false) => Reply::Exists,
            Err(e) => failed(e),
        },
        Request::CompareAndSet {
            key,
            expected,
            new,
            ttl_secs,
            ..
        } => match store
            .compare_and_set(key.as_bytes(), expected, new, secs(*ttl_secs))
            .await
        {
            Ok(CasOutcome::Swapped) => Reply::Swapped,
            Ok(CasOutcome::Conflict(current)) => Reply::Conflict(current.into()),
            Ok(CasOutcome::Gone) => Reply::Gone,
            Err(e) => failed(e),
        },
        Request::Touch { key, ttl_secs, .. } => {
            match store.touch(key.as_bytes(), secs(*ttl_secs)).await {
                Ok(true) => Reply::Done,
                Ok(false) => Reply::Gone,
                Err(e) => failed(e),
            }
        }
        Request::Destroy { key, .. } => match store.destroy(key.as_bytes()).await {
            Ok(()) => Reply::Done,
            Err(e) => failed(e),
        },
        Request::Random { len, .. } => random(*len),
        _ => Reply::Failed(StoreError::new(
            "this version of session-sockets cannot run a store request that \
             session-sockets-core emitted: use matching versions of the two crates",
        )),
    }
}

fn secs(ttl_secs: u64) -> Duration {
    Duration::from_secs(ttl_secs)
}

/// The store's error as it is, cause and all.
fn failed(e: StoreError) -> Reply {
    Reply::Failed(e)
}

/// `len` bytes from the OS CSPRNG ([R10]).
///
/// [R10]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r10
fn random(len: usize) -> Reply {
    let mut buf = vec![0u8; len];
    match getrandom::fill(&mut buf) {
        Ok(()) => Reply::Random(buf.into()),
        Err(e) => Reply::Failed(StoreError::with_source(
            format!(
                "the operating system's random number generator failed ({e}); \
                 no session id can be made safely"
            ),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use session_sockets_core::RequestId;

    #[test]
    fn r10_random_requests_get_fresh_os_bytes() {
        let (Reply::Random(a), Reply::Random(b)) = (random(24), random(24)) else {
            panic!("random failed");
        };
        assert_eq!((a.len(), b.len()), (24, 24));
        assert_ne!(a, b);
    }

    /// A machine that never asks, never finishes and has no deadline.
    struct Stuck;

    impl Machine for Stuck {
        type Outcome = ();
        fn poll_request(&mut self) -> Option<Request> {
            None
        }
        fn handle_reply(&mut self, _: RequestId, _: Reply, _: std::time::Instant) {}
        fn poll_timeout(&self) -> Option<std::time::Instant> {
            None
        }
        fn handle_timeout(&mut self, _: std::time::Instant) {}
        fn poll_outcome(&mut self) -> Option<()> {
            None
        }
        fn is_finished(&self) -> bool {
            false
        }
    }

    /// A runtime whose timer never fires: the driver must not need it.
    struct NoTimer;

    impl Runtime for NoTimer {
        type Sleep = std::future::Pending<()>;
        fn sleep(&self, _: Duration) -> Self::Sleep {
            std::future::pending()
        }
    }

    #[test]
    fn a_stalled_machine_is_reported_not_awaited_forever() {
        let store = MemoryStore::new();
        let out = future::block_on(drive(&mut Stuck, &store, &NoTimer));
        let e = out.unwrap_err();
        assert!(e.to_string().contains("bug"), "{e}");
    }

    #[test]
    fn a_store_that_answers_needs_no_timer_to_fire() {
        // The outcome comes from the store answer alone, not from a timer.
        let store = MemoryStore::new();
        let config = std::sync::Arc::new(
            session_sockets_core::Config::builder()
                .secret("s")
                .build()
                .unwrap(),
        );
        let id = session_sockets_core::SessionId::new("abc");
        let mut reload = session_sockets_core::machines::Reload::new(
            config,
            &id,
            crate::runtime::start(&NoTimer),
        );
        let out = future::block_on(drive(&mut reload, &store, &NoTimer)).unwrap();
        assert_eq!(out.unwrap_err(), crate::HandshakeError::SessionNotFound);
    }

    /// A store that never answers.
    struct Silent;

    impl Store for Silent {
        fn load<'a>(
            &'a self,
            _: &'a [u8],
        ) -> crate::store::StoreFuture<'a, Option<crate::store::Bytes>> {
            Box::pin(std::future::pending())
        }
        fn create<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: Duration,
        ) -> crate::store::StoreFuture<'a, bool> {
            Box::pin(std::future::pending())
        }
        fn compare_and_set<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: &'a [u8],
            _: Duration,
        ) -> crate::store::StoreFuture<'a, CasOutcome> {
            Box::pin(std::future::pending())
        }
        fn touch<'a>(&'a self, _: &'a [u8], _: Duration) -> crate::store::StoreFuture<'a, bool> {
            Box::pin(std::future::pending())
        }
        fn destroy<'a>(&'a self, _: &'a [u8]) -> crate::store::StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
    }

    /// A runtime on a virtual monotonic clock that its timer advances at
    /// once, with a wall clock an hour off; it counts how often the driver
    /// waits.
    struct VirtualClock {
        base: std::time::Instant,
        elapsed: std::sync::Mutex<Duration>,
        wall_ahead: bool,
        sleeps: std::sync::atomic::AtomicU32,
    }

    impl VirtualClock {
        fn new(wall_ahead: bool) -> Self {
            VirtualClock {
                base: std::time::Instant::now(),
                elapsed: std::sync::Mutex::new(Duration::ZERO),
                wall_ahead,
                sleeps: std::sync::atomic::AtomicU32::new(0),
            }
        }
    }

    impl Runtime for VirtualClock {
        type Sleep = std::future::Ready<()>;
        fn sleep(&self, duration: Duration) -> Self::Sleep {
            self.sleeps
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *self.elapsed.lock().unwrap() += duration;
            std::future::ready(())
        }
        fn now(&self) -> std::time::Instant {
            self.base + *self.elapsed.lock().unwrap()
        }
        fn wall(&self) -> std::time::SystemTime {
            let hour = Duration::from_secs(3600);
            if self.wall_ahead {
                std::time::SystemTime::now() + hour
            } else {
                std::time::SystemTime::now() - hour
            }
        }
    }

    #[test]
    fn r23_the_deadline_is_monotonic_whatever_the_wall_clock_says() {
        let config = std::sync::Arc::new(
            session_sockets_core::Config::builder()
                .secret("s")
                .build()
                .unwrap(),
        );
        for wall_ahead in [false, true] {
            let rt = VirtualClock::new(wall_ahead);
            let id = session_sockets_core::SessionId::new("abc");
            let started = rt.now();
            let mut reload = session_sockets_core::machines::Reload::new(
                config.clone(),
                &id,
                crate::runtime::start(&rt),
            );
            let out = future::block_on(drive(&mut reload, &Silent, &rt)).unwrap();
            assert_eq!(
                out.unwrap_err(),
                crate::HandshakeError::Failed(crate::Failure::Timeout)
            );
            // One wait, to exactly the store deadline on the monotonic clock.
            assert_eq!(rt.sleeps.load(std::sync::atomic::Ordering::SeqCst), 1);
            assert_eq!(rt.now() - started, config.store_deadline());
        }
    }

    #[test]
    fn every_request_maps_to_its_store_call_and_reply() {
        let store = MemoryStore::new();
        let run = |r: Request| future::block_on(execute(&store, &r));
        let key = session_sockets_core::StoreKey::new(b"sess:", b"abc");
        let id = RequestId(1);
        let load = || Request::Load {
            id,
            key: key.clone(),
        };
        assert_eq!(run(load()), Reply::NotFound);
        let create = |v: &[u8], ttl_secs| Request::Create {
            id,
            key: key.clone(),
            value: v.into(),
            ttl_secs,
        };
        assert_eq!(run(create(b"one", 60)), Reply::Created);
        assert_eq!(run(create(b"two", 60)), Reply::Exists);
        assert_eq!(run(load()), Reply::Found(b"one"[..].into()));
        let cas = |e: &[u8], n: &[u8]| Request::CompareAndSet {
            id,
            key: key.clone(),
            expected: e.into(),
            new: n.into(),
            ttl_secs: 60,
        };
        assert_eq!(run(cas(b"x", b"y")), Reply::Conflict(b"one"[..].into()));
        assert_eq!(run(cas(b"one", b"two")), Reply::Swapped);
        let touch = || Request::Touch {
            id,
            key: key.clone(),
            ttl_secs: 60,
        };
        assert_eq!(run(touch()), Reply::Done);
        assert_eq!(
            run(Request::Destroy {
                id,
                key: key.clone()
            }),
            Reply::Done
        );
        assert_eq!(run(touch()), Reply::Gone);
        assert_eq!(run(cas(b"two", b"three")), Reply::Gone);
        assert_eq!(run(load()), Reply::NotFound);
        // A store error becomes Failed with the store's message.
        let Reply::Failed(e) = run(create(b"v", 0)) else {
            panic!("expected Failed");
        };
        assert!(e.to_string().contains("time to live of 0 s"), "{e}");
    }
}
