//! One pass-through [`Store`] for every test that needs a store to do
//! something on cue: count calls, fail, hang, wait for a [`Gate`], lose its
//! event stream, report events of its own, or report none at all.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use session_sockets::MemoryStore;

use session_sockets::store::{
    Bytes, CasOutcome, EventSink, Store, StoreError, StoreEvent, StoreFuture, Subscription,
};

/// A store call, as hooks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Load,
    Create,
    CompareAndSet,
    Touch,
    Destroy,
}

const CALLS: usize = 5;

impl Call {
    fn index(self) -> usize {
        self as usize
    }
}

/// What a hook makes of one call.
pub enum Act {
    /// Run it on the inner store.
    Pass,
    /// Fail it with this error.
    Fail(StoreError),
    /// Never answer.
    Hang,
    /// Wait for this future, then run it on the inner store.
    After(Pin<Box<dyn Future<Output = ()> + Send>>),
}

type Hook = Box<dyn Fn(Call) -> Act + Send + Sync>;

/// A store wrapped with a hook on every call, call counts, and control of
/// its event stream.
pub struct Hooked {
    inner: Arc<dyn Store>,
    hook: Mutex<Option<Arc<Hook>>>,
    counts: [AtomicUsize; CALLS],
    conflicts: AtomicUsize,
    sinks: Mutex<Vec<EventSink>>,
    /// While set, the inner store's events are dropped (the stream is
    /// "lost").
    deaf: Arc<AtomicBool>,
    /// Subscriptions alive now.
    subscribed: Arc<AtomicUsize>,
    /// `false`: `subscribe` answers `None`, as a store without events.
    events: bool,
}

impl Default for Hooked {
    fn default() -> Self {
        Hooked::new(Arc::new(MemoryStore::new()))
    }
}

impl Hooked {
    /// Every call passes to `inner` until a hook is set.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Hooked {
            inner,
            hook: Mutex::new(None),
            counts: Default::default(),
            conflicts: AtomicUsize::new(0),
            sinks: Mutex::new(Vec::new()),
            deaf: Arc::default(),
            subscribed: Arc::default(),
            events: true,
        }
    }

    /// The same store, reporting no events: `subscribe` answers `None` (a
    /// server on it never hears of changes made behind its back).
    pub fn without_events(mut self) -> Self {
        self.events = false;
        self
    }

    /// A store that is down: every call fails with `error()`, and it
    /// reports no events.
    pub fn failing(error: fn() -> StoreError) -> Self {
        let store = Hooked::default().without_events();
        store.set_hook(move |_| Act::Fail(error()));
        store
    }

    /// A store that never answers, and reports no events.
    pub fn silent() -> Self {
        let store = Hooked::default().without_events();
        store.set_hook(|_| Act::Hang);
        store
    }

    /// The store behind the hooks: what it is given is neither hooked nor
    /// counted, as another process's calls would not be.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Decides every call from now on.
    pub fn set_hook(&self, hook: impl Fn(Call) -> Act + Send + Sync + 'static) {
        *self.hook.lock().unwrap() = Some(Arc::new(Box::new(hook)));
    }

    /// Fails the `calls` from now on with `error()`; the others pass.
    pub fn fail(&self, calls: &'static [Call], error: fn() -> StoreError) {
        self.set_hook(move |call| {
            if calls.contains(&call) {
                Act::Fail(error())
            } else {
                Act::Pass
            }
        });
    }

    /// Every call passes from now on.
    pub fn clear_hook(&self) {
        *self.hook.lock().unwrap() = None;
    }

    /// How many `call`s were made.
    pub fn count(&self, call: Call) -> usize {
        self.counts[call.index()].load(Ordering::SeqCst)
    }

    /// How many calls of any kind were made.
    pub fn total(&self) -> usize {
        self.counts.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    /// How many compare-and-sets found another writer's record.
    pub fn conflicts(&self) -> usize {
        self.conflicts.load(Ordering::SeqCst)
    }

    /// Drops (`true`) or passes (`false`) the inner store's events.
    pub fn set_deaf(&self, deaf: bool) {
        self.deaf.store(deaf, Ordering::SeqCst);
    }

    /// Reports `event` to every subscriber, as the store would.
    pub fn emit(&self, event: StoreEvent) {
        for sink in self.sinks.lock().unwrap().iter() {
            sink(event.clone());
        }
    }

    /// Subscriptions alive now.
    pub fn subscriptions(&self) -> usize {
        self.subscribed.load(Ordering::SeqCst)
    }

    fn act(&self, call: Call) -> Act {
        self.counts[call.index()].fetch_add(1, Ordering::SeqCst);
        let hook = self.hook.lock().unwrap().clone();
        hook.map_or(Act::Pass, |hook| hook(call))
    }

    /// `call` as its hook decides; `pass` makes the inner store's call,
    /// which a failed or hung call never reaches.
    fn run<'a, T: Send + 'a>(
        &'a self,
        call: Call,
        pass: impl FnOnce() -> StoreFuture<'a, T> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        match self.act(call) {
            Act::Pass => pass(),
            Act::Fail(e) => Box::pin(async move { Err(e) }),
            Act::Hang => Box::pin(std::future::pending()),
            Act::After(wait) => Box::pin(async move {
                wait.await;
                pass().await
            }),
        }
    }
}

/// What a Redis client says when Redis is down, the address included (what
/// must reach the operator's log and never a client).
pub fn refused() -> StoreError {
    StoreError::with_source(
        "Redis at 127.0.0.1:6399 refused the connection (GET)",
        std::io::Error::other("Connection refused (os error 111)"),
    )
}

/// A gate that calls wait at (through [`Act::After`]) while it is shut.
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<GateState>>);

#[derive(Default)]
struct GateState {
    open: bool,
    waiting: Vec<Waker>,
}

impl Gate {
    /// A gate that holds every call until [`Gate::open`].
    pub fn shut() -> Self {
        Gate::default()
    }

    /// Lets every held call through, and every later one.
    pub fn open(&self) {
        let mut g = self.0.lock().unwrap();
        g.open = true;
        for w in g.waiting.drain(..) {
            w.wake();
        }
    }

    /// Ends once the gate is open.
    pub fn passed(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let gate = self.clone();
        Box::pin(std::future::poll_fn(move |cx| {
            let mut g = gate.0.lock().unwrap();
            if g.open {
                Poll::Ready(())
            } else {
                g.waiting.push(cx.waker().clone());
                Poll::Pending
            }
        }))
    }
}

/// Ends with the subscription it guards.
struct Counted(Arc<AtomicUsize>, #[allow(dead_code)] Option<Subscription>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Store for Hooked {
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Bytes>> {
        self.run(Call::Load, move || self.inner.load(key))
    }
    fn create<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.run(Call::Create, move || self.inner.create(key, value, ttl))
    }
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        new: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, CasOutcome> {
        self.run(Call::CompareAndSet, move || {
            Box::pin(async move {
                let out = self.inner.compare_and_set(key, expected, new, ttl).await?;
                if matches!(out, CasOutcome::Conflict(_)) {
                    self.conflicts.fetch_add(1, Ordering::SeqCst);
                }
                Ok(out)
            })
        })
    }
    fn touch<'a>(&'a self, key: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        self.run(Call::Touch, move || self.inner.touch(key, ttl))
    }
    fn destroy<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, ()> {
        self.run(Call::Destroy, move || self.inner.destroy(key))
    }
    fn subscribe<'a>(
        &'a self,
        prefix: &'a [u8],
        sink: EventSink,
    ) -> StoreFuture<'a, Option<Subscription>> {
        Box::pin(async move {
            if !self.events {
                return Ok(None);
            }
            self.sinks.lock().unwrap().push(Arc::clone(&sink));
            let deaf = Arc::clone(&self.deaf);
            let heard: EventSink = Arc::new(move |e| {
                if !deaf.load(Ordering::SeqCst) {
                    sink(e);
                }
            });
            let Some(inner) = self.inner.subscribe(prefix, heard).await? else {
                return Ok(None);
            };
            self.subscribed.fetch_add(1, Ordering::SeqCst);
            let guard = Counted(Arc::clone(&self.subscribed), Some(inner));
            Ok(Some(Subscription::new(guard)))
        })
    }
    fn events_resumed(&self) -> StoreFuture<'_, ()> {
        self.inner.events_resumed()
    }
}
