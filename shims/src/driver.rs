//! The driver: one async loop that runs any core [`Machine`] against a
//! [`Store`], with the machine's deadline on every store call (R23).
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

use std::time::{Duration, SystemTime};

use futures_lite::future;
use session_sockets_core::{Machine, Reply, Request, StoreError};

use crate::runtime::{Runtime, sleep_until};
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
/// The machine is borrowed so that what it holds after finishing (e.g.
/// `Touch::set_cookie`) can still be read.
///
/// Every store call is raced against the machine's deadline, so a store
/// that never answers fails the machine at the deadline (for the handshake:
/// [`HandshakeError::Timeout`](crate::HandshakeError::Failed(crate::Failure::Timeout))) instead of
/// hanging. Random bytes come from the operating system's CSPRNG (R10).
///
/// ```
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use session_sockets::core::Reload;
/// use session_sockets::{Config, HandshakeError, MemoryStore, SessionId, drive};
/// # #[derive(Clone, Copy)] struct Rt;
/// # impl session_sockets::runtime::Runtime for Rt {
/// #     type Sleep = std::future::Pending<()>;
/// #     fn sleep(&self, _: std::time::Duration) -> Self::Sleep { std::future::pending() }
/// # }
///
/// let config = Arc::new(Config::builder().secret("keyboard cat").build().unwrap());
/// let store = MemoryStore::new();
/// let mut reload = Reload::new(config, &SessionId::new("no-such-id"), SystemTime::now());
/// let outcome = futures_lite::future::block_on(drive(&mut reload, &store, &Rt)).unwrap();
/// assert_eq!(outcome.unwrap_err(), HandshakeError::SessionNotFound);
/// ```
pub async fn drive<M, R>(
    machine: &mut M,
    store: &dyn Store,
    runtime: &R,
) -> Result<M::Outcome, Stalled>
where
    M: Machine + ?Sized,
    R: Runtime + ?Sized,
{
    loop {
        while let Some(request) = machine.poll_request() {
            let id = request.id();
            let call = async { Ok(execute(store, &request).await) };
            let reply = match machine.poll_timeout() {
                Some(deadline) => {
                    let expiry = async {
                        sleep_until(runtime, deadline).await;
                        Err(deadline)
                    };
                    future::or(call, expiry).await
                }
                None => call.await,
            };
            match reply {
                Ok(reply) => machine.handle_reply(id, reply, runtime.now()),
                Err(deadline) => machine.handle_timeout(expired_at(runtime, deadline)),
            }
        }
        if let Some(outcome) = machine.poll_outcome() {
            return Ok(outcome);
        }
        let Some(deadline) = machine.poll_timeout() else {
            return Err(Stalled);
        };
        sleep_until(runtime, deadline).await;
        machine.handle_timeout(expired_at(runtime, deadline));
    }
}

/// The time to report once the timer for `deadline` fired: the runtime's
/// timer is monotonic, so the deadline has passed even if the wall clock
/// says otherwise (it was set back, or runs behind the timer). Without
/// this, a wall clock set back would keep a machine waiting.
fn expired_at<R: Runtime + ?Sized>(runtime: &R, deadline: SystemTime) -> SystemTime {
    runtime.now().max(deadline)
}

/// Runs one request and translates the answer into the core's [`Reply`].
async fn execute(store: &dyn Store, request: &Request) -> Reply {
    match request {
        Request::Load { key, .. } => match store.load(key.as_bytes()).await {
            Ok(Some(bytes)) => Reply::Found(bytes.into()),
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

/// `len` bytes from the OS CSPRNG (R10).
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
        fn handle_reply(&mut self, _: RequestId, _: Reply, _: std::time::SystemTime) {}
        fn poll_timeout(&self) -> Option<std::time::SystemTime> {
            None
        }
        fn handle_timeout(&mut self, _: std::time::SystemTime) {}
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
        let mut reload =
            session_sockets_core::Reload::new(config, &id, std::time::SystemTime::now());
        let out = future::block_on(drive(&mut reload, &store, &NoTimer)).unwrap();
        assert_eq!(out.unwrap_err(), crate::HandshakeError::SessionNotFound);
    }

    /// A store that never answers.
    struct Silent;

    impl Store for Silent {
        fn load<'a>(&'a self, _: &'a [u8]) -> crate::StoreFuture<'a, Option<Vec<u8>>> {
            Box::pin(std::future::pending())
        }
        fn create<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: Duration,
        ) -> crate::StoreFuture<'a, bool> {
            Box::pin(std::future::pending())
        }
        fn compare_and_set<'a>(
            &'a self,
            _: &'a [u8],
            _: &'a [u8],
            _: &'a [u8],
            _: Duration,
        ) -> crate::StoreFuture<'a, CasOutcome> {
            Box::pin(std::future::pending())
        }
        fn touch<'a>(&'a self, _: &'a [u8], _: Duration) -> crate::StoreFuture<'a, bool> {
            Box::pin(std::future::pending())
        }
        fn destroy<'a>(&'a self, _: &'a [u8]) -> crate::StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
    }

    /// A runtime whose wall clock is stuck an hour in the past but whose
    /// timer fires at once; it counts how often the driver waits.
    #[derive(Default)]
    struct ClockSetBack {
        sleeps: std::sync::atomic::AtomicU32,
    }

    impl Runtime for ClockSetBack {
        type Sleep = std::future::Ready<()>;
        fn sleep(&self, _: Duration) -> Self::Sleep {
            let n = self
                .sleeps
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert!(
                n < 10,
                "the driver keeps waiting for a deadline that has passed"
            );
            std::future::ready(())
        }
        fn now(&self) -> SystemTime {
            SystemTime::now() - Duration::from_secs(3600)
        }
    }

    #[test]
    fn r23_a_wall_clock_set_back_does_not_keep_a_machine_waiting() {
        let config = std::sync::Arc::new(
            session_sockets_core::Config::builder()
                .secret("s")
                .build()
                .unwrap(),
        );
        let id = session_sockets_core::SessionId::new("abc");
        let mut reload = session_sockets_core::Reload::new(config, &id, SystemTime::now());
        let silent = Silent;
        let rt = ClockSetBack::default();
        let out = future::block_on(drive(&mut reload, &silent, &rt)).unwrap();
        assert_eq!(
            out.unwrap_err(),
            crate::HandshakeError::Failed(crate::Failure::Timeout)
        );
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
