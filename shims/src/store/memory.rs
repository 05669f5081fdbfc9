//! [`MemoryStore`]: the embedded default store, in process memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use session_sockets_core::Bytes;

use crate::store::{
    CasOutcome, EventSink, KeyChange, KeyEvent, Store, StoreError, StoreEvent, StoreFuture,
    Subscription,
};

/// The default [`MemoryStore`] capacity, in records.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How many expired records one write sweeps at most, so that a write never
/// holds the lock for long.
const SWEEP_PER_WRITE: usize = 32;

/// The longest the expiry thread sleeps between looks.
const REAP_IDLE: Duration = Duration::from_secs(1);

/// A source of the current time for [`MemoryStore`] (replace it in tests).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// An in-process session store: the embedded default, for a single server
/// process and for tests. Sessions in it are not shared with other
/// processes (use a shared store such as Redis for that) and are lost on
/// restart.
///
/// It keeps the exact semantics of [`Store`]: `create` inserts only ([R24]),
/// `compare_and_set` replaces only an existing, byte-equal record and never
/// creates one, `touch` reports a missing record. Records expire lazily: an
/// expired record is treated as absent (and dropped) when it is next
/// accessed, and each write also sweeps a few of the soonest-expired ones.
///
/// The store is bounded, and the bound never ends a session that is in use
/// (R34): when a new record would exceed the capacity, expired records go
/// first, then records that were never used since they were created (never
/// loaded, saved or touched: what a flood of anonymous logins leaves
/// behind), oldest first. When every record is live and in use, `create`
/// fails with a store error that says the store is full, and the caller
/// answers that login with a 503; nobody who is signed in is signed out.
/// The capacity is [`DEFAULT_CAPACITY`] unless set with
/// [`MemoryStore::with_capacity`].
///
/// It is safe to share between many tasks and threads: every operation takes
/// a short `std::sync::Mutex` and never holds it across an `.await`.
///
/// It reports changes to subscribers ([`Store::subscribe`]) in process:
/// every write with its new value, deletes and evictions, and expiry, which
/// a background thread (started with the first subscription, ended with
/// the last) notices when it is due.
///
/// ```
/// use std::sync::Arc;
/// use session_sockets::MemoryStore;
/// use session_sockets::store::Store;
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::with_capacity(10_000));
/// # let _ = store;
/// ```
///
/// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
pub struct MemoryStore {
    state: Arc<State>,
}

struct State {
    inner: Mutex<Inner>,
    capacity: usize,
    clock: Clock,
    /// Wakes the expiry thread (a sooner expiry, or no subscriber left).
    wake: Condvar,
    subscribers: Mutex<Subscribers>,
}

#[derive(Default)]
struct Subscribers {
    next: u64,
    list: Vec<(u64, Vec<u8>, EventSink)>,
    /// The expiry thread runs.
    reaping: bool,
}

#[derive(Default)]
struct Inner {
    /// Someone subscribed: record what changed in `notes`.
    watched: bool,
    /// Changes to report once the lock is released.
    notes: Vec<(Vec<u8>, KeyChange)>,
    records: HashMap<Vec<u8>, Entry>,
    /// (expiry, insertion sequence) -> key: the order records expire in.
    by_expiry: BTreeMap<(Instant, u64), Vec<u8>>,
    /// Insertion sequence -> key of the records never used since created:
    /// the only ones a full store evicts (R34).
    unused: BTreeMap<u64, Vec<u8>>,
    seq: u64,
}

struct Entry {
    /// Shared with every session loaded from it (no copy per load).
    value: Bytes,
    expires: Instant,
    seq: u64,
    used: bool,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys hold session ids and values hold session data (R16): only
        // the sizes are shown.
        f.debug_struct("MemoryStore")
            .field("records", &self.lock().records.len())
            .field("capacity", &self.state.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store holding at most [`DEFAULT_CAPACITY`] records.
    pub fn new() -> Self {
        MemoryStore::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty store holding at most `capacity` records (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryStore {
            state: Arc::new(State {
                inner: Mutex::new(Inner::default()),
                capacity: capacity.max(1),
                clock: Arc::new(Instant::now),
                wake: Condvar::new(),
                subscribers: Mutex::new(Subscribers::default()),
            }),
        }
    }

    /// Replaces the clock that decides expiry (for tests that step time).
    /// Call it before the store is shared or subscribed to.
    pub fn with_clock(self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        let clock: Clock = Arc::new(clock);
        match Arc::try_unwrap(self.state) {
            Ok(mut state) => {
                state.clock = clock;
                MemoryStore {
                    state: Arc::new(state),
                }
            }
            // Only a subscription's expiry thread holds another reference,
            // and a store is given its clock before anyone subscribes.
            Err(state) => MemoryStore { state },
        }
    }

    /// The maximum number of records.
    pub fn capacity(&self) -> usize {
        self.state.capacity
    }

    fn now(&self) -> Instant {
        (self.state.clock)()
    }

    /// How many live (unexpired) records the store holds.
    pub fn len(&self) -> usize {
        let now = self.now();
        self.lock()
            .records
            .values()
            .filter(|e| e.expires > now)
            .count()
    }

    /// Whether the store holds no live record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock()
    }

    /// Reports what the last operation changed to the subscribers, outside
    /// the lock.
    fn report(&self, mut inner: MutexGuard<'_, Inner>) {
        if inner.notes.is_empty() {
            return;
        }
        let notes = std::mem::take(&mut inner.notes);
        drop(inner);
        self.state.report(notes);
    }

    fn ttl_error(op: &str) -> StoreError {
        StoreError::new(format!(
            "MemoryStore::{op} was given a time to live of 0 s; a record must live at least 1 s"
        ))
    }

    fn do_load(&self, key: &[u8]) -> Option<Bytes> {
        let now = self.now();
        let mut inner = self.lock();
        let value = inner.live(key, now).map(|e| e.value.clone());
        inner.mark_used(key);
        self.report(inner);
        value
    }

    fn do_create(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        if ttl.is_zero() {
            return Err(Self::ttl_error("create"));
        }
        let now = self.now();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        if inner.live(key, now).is_some() {
            self.report(inner);
            return Ok(false);
        }
        while inner.records.len() >= self.state.capacity {
            // `sweep` above left no expired record at the front unless more
            // than its batch expired at once.
            if !inner.evict_expired(now) && !inner.evict_oldest_unused() {
                self.report(inner);
                return Err(StoreError::new(format!(
                    "MemoryStore is full: all {} sessions are live and in use, so no new session \
                     is stored (none in use is evicted to make room); raise \
                     MemoryStore::with_capacity, or use a shared store such as Redis",
                    self.state.capacity
                )));
            }
        }
        let value = Bytes::from(value);
        inner.insert(key.to_vec(), value.clone(), expiry(now, ttl));
        inner.note(key, || KeyChange::Written(Some(value)));
        self.wake_reaper(&inner);
        self.report(inner);
        Ok(true)
    }

    fn do_compare_and_set(
        &self,
        key: &[u8],
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome, StoreError> {
        if ttl.is_zero() {
            return Err(Self::ttl_error("compare_and_set"));
        }
        let now = self.now();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        let Some(entry) = inner.live(key, now) else {
            self.report(inner);
            return Ok(CasOutcome::Gone);
        };
        if *entry.value != *expected {
            let current = entry.value.to_vec();
            inner.mark_used(key);
            self.report(inner);
            return Ok(CasOutcome::Conflict(current));
        }
        let new = Bytes::from(new);
        entry.value = new.clone();
        inner.mark_used(key);
        inner.set_expiry(key, expiry(now, ttl));
        inner.note(key, || KeyChange::Written(Some(new)));
        self.wake_reaper(&inner);
        self.report(inner);
        Ok(CasOutcome::Swapped)
    }

    fn do_touch(&self, key: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        if ttl.is_zero() {
            return Err(Self::ttl_error("touch"));
        }
        let now = self.now();
        let mut inner = self.lock();
        if inner.live(key, now).is_none() {
            self.report(inner);
            return Ok(false);
        }
        inner.mark_used(key);
        inner.set_expiry(key, expiry(now, ttl));
        self.wake_reaper(&inner);
        Ok(true)
    }

    fn do_destroy(&self, key: &[u8]) {
        let mut inner = self.lock();
        if inner.records.contains_key(key) {
            inner.remove(key);
            inner.note(key, || KeyChange::Deleted);
        }
        self.report(inner);
    }

    /// A write may have set an expiry sooner than the one the expiry thread
    /// waits for.
    fn wake_reaper(&self, inner: &Inner) {
        if inner.watched {
            self.state.wake.notify_all();
        }
    }
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held cannot leave a record half
        // written (every mutation is a single map operation pair that does
        // not panic), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn subscribers(&self) -> MutexGuard<'_, Subscribers> {
        // Pushes and removals of whole entries: consistent after a panic.
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends each change to the subscribers whose prefix its key has.
    fn report(&self, notes: Vec<(Vec<u8>, KeyChange)>) {
        let sinks: Vec<(Vec<u8>, EventSink)> = self
            .subscribers()
            .list
            .iter()
            .map(|(_, p, s)| (p.clone(), Arc::clone(s)))
            .collect();
        for (key, change) in notes {
            for (prefix, sink) in &sinks {
                if key.starts_with(prefix) {
                    sink(StoreEvent::Key(KeyEvent {
                        key: key.clone(),
                        change: change.clone(),
                    }));
                }
            }
        }
    }

    /// The expiry thread: drops records as they expire and reports them,
    /// until the last subscription ends or the store is dropped.
    fn reap(state: Weak<State>) {
        loop {
            let Some(state) = state.upgrade() else { return };
            {
                // Decided under the subscribers' lock, which `subscribe`
                // holds while it checks whether a thread runs.
                let mut subs = state.subscribers();
                if subs.list.is_empty() {
                    subs.reaping = false;
                    return;
                }
            }
            let notes = {
                let mut inner = state.lock();
                let now = (state.clock)();
                while inner.evict_expired(now) {}
                std::mem::take(&mut inner.notes)
            };
            state.report(notes);
            let inner = state.lock();
            let now = (state.clock)();
            let next = inner
                .by_expiry
                .first_key_value()
                .map(|((at, _), _)| at.saturating_duration_since(now));
            if !inner.watched || next == Some(Duration::ZERO) {
                continue;
            }
            // Wake at the next expiry (a write that sets a sooner one
            // notifies), and now and then anyway.
            let wait = next.unwrap_or(REAP_IDLE).min(REAP_IDLE);
            drop(
                state
                    .wake
                    .wait_timeout(inner, wait)
                    .unwrap_or_else(|p| p.into_inner()),
            );
        }
    }
}

impl Inner {
    /// Records a change to report, when someone subscribed.
    fn note(&mut self, key: &[u8], change: impl FnOnce() -> KeyChange) {
        if self.watched {
            self.notes.push((key.to_vec(), change()));
        }
    }

    /// The record at `key` if it has not expired; drops it if it has.
    fn live(&mut self, key: &[u8], now: Instant) -> Option<&mut Entry> {
        let expired = self.records.get(key)?.expires <= now;
        if expired {
            self.remove(key);
            self.note(key, || KeyChange::Expired);
            return None;
        }
        self.records.get_mut(key)
    }

    fn insert(&mut self, key: Vec<u8>, value: Bytes, expires: Instant) {
        self.remove(&key);
        self.seq += 1;
        let seq = self.seq;
        self.by_expiry.insert((expires, seq), key.clone());
        self.unused.insert(seq, key.clone());
        self.records.insert(
            key,
            Entry {
                value,
                expires,
                seq,
                used: false,
            },
        );
    }

    /// The record at `key` (if any) was loaded, saved or touched: a full
    /// store no longer evicts it.
    fn mark_used(&mut self, key: &[u8]) {
        if let Some(e) = self.records.get_mut(key)
            && !std::mem::replace(&mut e.used, true)
        {
            self.unused.remove(&e.seq);
        }
    }

    fn set_expiry(&mut self, key: &[u8], expires: Instant) {
        let Some(entry) = self.records.get_mut(key) else {
            return;
        };
        let Some(k) = self.by_expiry.remove(&(entry.expires, entry.seq)) else {
            return;
        };
        entry.expires = expires;
        self.by_expiry.insert((expires, entry.seq), k);
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(e) = self.records.remove(key) {
            self.by_expiry.remove(&(e.expires, e.seq));
            self.unused.remove(&e.seq);
        }
    }

    /// Drops the record that expires soonest if it has expired.
    fn evict_expired(&mut self, now: Instant) -> bool {
        let key = match self.by_expiry.first_key_value() {
            Some(((expires, _), key)) if *expires <= now => key.clone(),
            _ => return false,
        };
        self.remove(&key);
        self.note(&key, || KeyChange::Expired);
        true
    }

    /// Drops the oldest record never used since it was created.
    fn evict_oldest_unused(&mut self) -> bool {
        let Some((_, key)) = self.unused.pop_first() else {
            return false;
        };
        self.remove(&key);
        self.note(&key, || KeyChange::Deleted);
        true
    }

    /// Drops up to `max` records that have expired.
    fn sweep(&mut self, now: Instant, max: usize) {
        for _ in 0..max {
            if !self.evict_expired(now) {
                break;
            }
        }
    }
}

impl Store for MemoryStore {
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move { Ok(self.do_load(key)) })
    }

    fn create<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.do_create(key, value, ttl) })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        new: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, CasOutcome> {
        Box::pin(async move { self.do_compare_and_set(key, expected, new, ttl) })
    }

    fn touch<'a>(&'a self, key: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.do_touch(key, ttl) })
    }

    fn destroy<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.do_destroy(key);
            Ok(())
        })
    }

    /// Every write is reported with its new value (the subscriber tells
    /// its own by the bytes), deletes and evictions as deleted, and expiry
    /// by a background thread as records come due.
    fn subscribe<'a>(
        &'a self,
        prefix: &'a [u8],
        sink: EventSink,
    ) -> StoreFuture<'a, Option<Subscription>> {
        Box::pin(async move { Ok(self.subscribe_now(prefix, sink)) })
    }
}

impl MemoryStore {
    fn subscribe_now(&self, prefix: &[u8], sink: EventSink) -> Option<Subscription> {
        let first = Arc::clone(&sink);
        let id = {
            let mut subs = self.state.subscribers();
            subs.next += 1;
            let id = subs.next;
            subs.list.push((id, prefix.to_vec(), sink));
            let start = !std::mem::replace(&mut subs.reaping, true);
            self.lock().watched = true;
            if start {
                let state = Arc::downgrade(&self.state);
                let spawned = std::thread::Builder::new()
                    .name("session-sockets-memory-expiry".into())
                    .spawn(move || State::reap(state));
                if spawned.is_err() {
                    // No thread, no expiry events: report none at all
                    // rather than some.
                    subs.list.retain(|(i, _, _)| *i != id);
                    subs.reaping = false;
                    self.lock().watched = !subs.list.is_empty();
                    return None;
                }
            }
            id
        };
        first(StoreEvent::Resumed);
        Some(Subscription::new(Unsubscribe {
            state: Arc::downgrade(&self.state),
            id,
        }))
    }
}

/// Ends a [`MemoryStore`] subscription when dropped.
struct Unsubscribe {
    state: Weak<State>,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let none_left = {
            let mut subs = state.subscribers();
            subs.list.retain(|(id, _, _)| *id != self.id);
            subs.list.is_empty()
        };
        if none_left {
            state.lock().watched = false;
            state.wake.notify_all();
        }
    }
}

/// `now + ttl`, or a century from now if that overflows `Instant`.
fn expiry(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A store whose clock moves only when the test says so.
    fn stepped(capacity: usize) -> (MemoryStore, Arc<AtomicU64>) {
        let base = Instant::now();
        let offset = Arc::new(AtomicU64::new(0));
        let o = offset.clone();
        let store = MemoryStore::with_capacity(capacity)
            .with_clock(move || base + Duration::from_millis(o.load(Ordering::SeqCst)));
        (store, offset)
    }

    fn run<T>(f: StoreFuture<'_, T>) -> T {
        futures_lite::future::block_on(f).unwrap()
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn r24_create_is_insert_only() {
        let (s, _) = stepped(10);
        assert!(run(s.create(b"k", b"one", S)));
        assert!(!run(s.create(b"k", b"two", S)));
        assert_eq!(run(s.load(b"k")).as_deref(), Some(&b"one"[..]));
    }

    #[test]
    fn r24_compare_and_set_never_creates() {
        let (s, _) = stepped(10);
        assert_eq!(
            run(s.compare_and_set(b"k", b"", b"new", S)),
            CasOutcome::Gone
        );
        assert_eq!(run(s.load(b"k")), None);
        assert!(run(s.create(b"k", b"one", S)));
        assert_eq!(
            run(s.compare_and_set(b"k", b"other", b"new", S)),
            CasOutcome::Conflict(b"one".to_vec())
        );
        assert_eq!(run(s.load(b"k")).as_deref(), Some(&b"one"[..]));
        assert_eq!(
            run(s.compare_and_set(b"k", b"one", b"new", S)),
            CasOutcome::Swapped
        );
        assert_eq!(run(s.load(b"k")).as_deref(), Some(&b"new"[..]));
        run(s.destroy(b"k"));
        assert_eq!(
            run(s.compare_and_set(b"k", b"new", b"again", S)),
            CasOutcome::Gone
        );
        assert_eq!(run(s.load(b"k")), None);
    }

    #[test]
    fn touch_reports_missing_and_extends_ttl_only() {
        let (s, clock) = stepped(10);
        assert!(!run(s.touch(b"k", S)));
        assert!(run(s.create(b"k", b"v", S)));
        clock.store(900, Ordering::SeqCst);
        assert!(run(s.touch(b"k", 2 * S)));
        clock.store(2_000, Ordering::SeqCst);
        assert_eq!(
            run(s.load(b"k")).as_deref(),
            Some(&b"v"[..]),
            "touch moved the expiry"
        );
        clock.store(2_900, Ordering::SeqCst);
        assert_eq!(run(s.load(b"k")), None);
        assert!(
            !run(s.touch(b"k", S)),
            "an expired record is gone for touch too"
        );
    }

    #[test]
    fn r13_expiry_is_lazy_and_exact() {
        let (s, clock) = stepped(10);
        assert!(run(s.create(b"k", b"v", S)));
        clock.store(999, Ordering::SeqCst);
        assert!(run(s.load(b"k")).is_some());
        clock.store(1_000, Ordering::SeqCst);
        assert_eq!(run(s.load(b"k")), None, "expired at exactly its TTL");
        assert_eq!(s.lock().records.len(), 0, "dropped on access");
        assert!(
            run(s.create(b"k", b"again", S)),
            "an expired key can be created"
        );
        clock.store(5_000, Ordering::SeqCst);
        assert_eq!(
            run(s.compare_and_set(b"k", b"again", b"x", S)),
            CasOutcome::Gone
        );
    }

    #[test]
    fn compare_and_set_sets_the_new_ttl() {
        let (s, clock) = stepped(10);
        assert!(run(s.create(b"k", b"v", S)));
        assert_eq!(
            run(s.compare_and_set(b"k", b"v", b"w", 10 * S)),
            CasOutcome::Swapped
        );
        clock.store(5_000, Ordering::SeqCst);
        assert_eq!(run(s.load(b"k")).as_deref(), Some(&b"w"[..]));
    }

    #[test]
    fn r34_a_full_store_evicts_only_sessions_never_used_oldest_first() {
        let (s, _) = stepped(3);
        assert!(run(s.create(b"ada", b"v", 100 * S)));
        assert!(run(s.load(b"ada")).is_some(), "ada uses her session");
        assert!(run(s.create(b"anon1", b"v", 100 * S)));
        assert!(run(s.create(b"anon2", b"v", 100 * S)));
        // A flood: every new record pushes out the oldest never-used one.
        for i in 0..50 {
            let key = format!("flood{i}");
            assert!(run(s.create(key.as_bytes(), b"v", 100 * S)));
            assert!(
                run(s.load(b"ada")).is_some(),
                "ada's session survives the flood"
            );
        }
        assert_eq!(run(s.load(b"anon1")), None);
        assert_eq!(run(s.load(b"anon2")), None);
        assert_eq!(s.len(), 3);
        let inner = s.lock();
        assert_eq!(inner.by_expiry.len(), 3, "indexes and map agree");
        assert_eq!(
            inner.unused.len(),
            2,
            "flood48 and flood49 are still unused"
        );
    }

    #[test]
    fn r34_a_store_full_of_sessions_in_use_refuses_creates_with_a_clear_error() {
        let (s, _) = stepped(2);
        for k in [&b"a"[..], b"b"] {
            assert!(run(s.create(k, b"v", 100 * S)));
        }
        // Saved and touched count as used, like loaded.
        assert_eq!(
            run(s.compare_and_set(b"a", b"v", b"w", 100 * S)),
            CasOutcome::Swapped
        );
        assert!(run(s.touch(b"b", 100 * S)));
        let e = futures_lite::future::block_on(s.create(b"c", b"v", S)).unwrap_err();
        assert!(e.to_string().contains("MemoryStore is full"), "{e}");
        assert!(e.to_string().contains("with_capacity"), "{e}");
        assert_eq!(run(s.load(b"c")), None, "nothing written");
        assert!(run(s.load(b"a")).is_some() && run(s.load(b"b")).is_some());
    }

    #[test]
    fn a_full_store_drops_expired_records_before_anything_else() {
        let (s, clock) = stepped(2);
        assert!(run(s.create(b"old", b"v", S)));
        assert!(run(s.load(b"old")).is_some());
        assert!(run(s.create(b"fresh", b"v", 100 * S)));
        clock.store(2_000, Ordering::SeqCst);
        assert!(run(s.create(b"new", b"v", 100 * S)));
        assert!(
            run(s.load(b"fresh")).is_some(),
            "the unused live record stays"
        );
        assert!(run(s.load(b"new")).is_some());
        assert_eq!(s.lock().records.len(), 2);
    }

    #[test]
    fn zero_ttl_is_a_clear_error_and_writes_nothing() {
        let (s, _) = stepped(3);
        let e = futures_lite::future::block_on(s.create(b"k", b"v", Duration::ZERO)).unwrap_err();
        assert!(e.to_string().contains("time to live of 0 s"), "{e}");
        assert_eq!(run(s.load(b"k")), None);
        assert!(MemoryStore::with_capacity(0).capacity() == 1);
    }

    /// Collects what a subscription reports.
    fn collector() -> (EventSink, Arc<Mutex<Vec<StoreEvent>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (Arc::new(move |e| s.lock().unwrap().push(e)), seen)
    }

    fn key_event(key: &[u8], change: KeyChange) -> StoreEvent {
        StoreEvent::Key(KeyEvent {
            key: key.to_vec(),
            change,
        })
    }

    #[test]
    fn r32_subscribers_see_writes_with_their_value_deletes_and_their_prefix_only() {
        let s = MemoryStore::new();
        let (sink, seen) = collector();
        let sub = run(s.subscribe(b"sess:", sink)).unwrap();
        assert!(run(s.create(b"sess:a", b"one", S)));
        assert!(run(s.create(b"other:b", b"x", S)));
        assert_eq!(
            run(s.compare_and_set(b"sess:a", b"nope", b"two", S)),
            CasOutcome::Conflict(b"one".to_vec())
        );
        assert_eq!(
            run(s.compare_and_set(b"sess:a", b"one", b"two", S)),
            CasOutcome::Swapped
        );
        assert!(run(s.touch(b"sess:a", S)), "a touch is no change");
        run(s.destroy(b"sess:a"));
        run(s.destroy(b"sess:a"));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                StoreEvent::Resumed,
                key_event(
                    b"sess:a",
                    KeyChange::Written(Some(Bytes::from(&b"one"[..])))
                ),
                key_event(
                    b"sess:a",
                    KeyChange::Written(Some(Bytes::from(&b"two"[..])))
                ),
                key_event(b"sess:a", KeyChange::Deleted),
            ]
        );
        drop(sub);
        assert!(run(s.create(b"sess:c", b"v", S)));
        assert_eq!(
            seen.lock().unwrap().len(),
            4,
            "nothing after the subscription ended"
        );
    }

    #[test]
    fn r32_expiry_is_reported_when_due_and_evictions_as_deletes() {
        let s = MemoryStore::with_capacity(2);
        let (sink, seen) = collector();
        let _sub = run(s.subscribe(b"", sink)).unwrap();
        let started = Instant::now();
        assert!(run(s.create(b"short", b"v", S)));
        let until = started + Duration::from_secs(5);
        while !seen
            .lock()
            .unwrap()
            .contains(&key_event(b"short", KeyChange::Expired))
        {
            assert!(Instant::now() < until, "no expiry event within 5 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = started.elapsed();
        assert!(
            took >= S && took < S + Duration::from_millis(500),
            "reported after {took:?}"
        );
        // A full store evicting a never-used record reports it deleted.
        assert!(run(s.create(b"a", b"v", 60 * S)));
        assert!(run(s.create(b"b", b"v", 60 * S)));
        assert!(run(s.create(b"c", b"v", 60 * S)));
        assert!(
            seen.lock()
                .unwrap()
                .contains(&key_event(b"a", KeyChange::Deleted))
        );
    }

    #[test]
    fn r16_debug_shows_no_keys_or_values() {
        let (s, _) = stepped(3);
        assert!(run(s.create(b"sess:secret-id", b"{\"user\":\"ada\"}", S)));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("secret-id") && !dbg.contains("ada"), "{dbg}");
        assert!(dbg.contains("records: 1"), "{dbg}");
    }

    #[test]
    fn concurrent_creates_of_one_key_insert_exactly_once() {
        let s = Arc::new(MemoryStore::new());
        let winners: usize = (0..8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .filter(|j| {
                            let key = format!("k{j}");
                            let v = format!("{i}");
                            run(s.create(key.as_bytes(), v.as_bytes(), S))
                        })
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(winners, 200);
        assert_eq!(s.len(), 200);
    }
}
