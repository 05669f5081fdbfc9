//! [`MemoryStore`]: the embedded default store, in process memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::store::{CasOutcome, Store, StoreError, StoreFuture};

/// The default [`MemoryStore`] capacity, in records.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How many expired records one write sweeps at most, so that a write never
/// holds the lock for long.
const SWEEP_PER_WRITE: usize = 32;

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
/// ```
/// use std::sync::Arc;
/// use session_sockets::{MemoryStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::with_capacity(10_000));
/// # let _ = store;
/// ```
///
/// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
pub struct MemoryStore {
    inner: Mutex<Inner>,
    capacity: usize,
    clock: Clock,
}

#[derive(Default)]
struct Inner {
    records: HashMap<Vec<u8>, Entry>,
    /// (expiry, insertion sequence) -> key: the order records expire in.
    by_expiry: BTreeMap<(Instant, u64), Vec<u8>>,
    /// Insertion sequence -> key of the records never used since created:
    /// the only ones a full store evicts (R34).
    unused: BTreeMap<u64, Vec<u8>>,
    seq: u64,
}

struct Entry {
    value: Vec<u8>,
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
            .field("capacity", &self.capacity)
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
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            clock: Arc::new(Instant::now),
        }
    }

    /// Replaces the clock that decides expiry (for tests that step time).
    pub fn with_clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The maximum number of records.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many live (unexpired) records the store holds.
    pub fn len(&self) -> usize {
        let now = (self.clock)();
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
        // A panic while the lock was held cannot leave a record half
        // written (every mutation below is a single map operation pair that
        // does not panic), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ttl_error(op: &str) -> StoreError {
        StoreError::new(format!(
            "MemoryStore::{op} was given a time to live of 0 s; a record must live at least 1 s"
        ))
    }

    fn do_load(&self, key: &[u8]) -> Option<Vec<u8>> {
        let now = (self.clock)();
        let mut inner = self.lock();
        let value = inner.live(key, now).map(|e| e.value.clone());
        inner.mark_used(key);
        value
    }

    fn do_create(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        if ttl.is_zero() {
            return Err(Self::ttl_error("create"));
        }
        let now = (self.clock)();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        if inner.live(key, now).is_some() {
            return Ok(false);
        }
        while inner.records.len() >= self.capacity {
            // `sweep` above left no expired record at the front unless more
            // than its batch expired at once.
            if !inner.evict_expired(now) && !inner.evict_oldest_unused() {
                return Err(StoreError::new(format!(
                    "MemoryStore is full: all {} sessions are live and in use, so no new session \
                     is stored (none in use is evicted to make room); raise \
                     MemoryStore::with_capacity, or use a shared store such as Redis",
                    self.capacity
                )));
            }
        }
        inner.insert(key.to_vec(), value.to_vec(), expiry(now, ttl));
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
        let now = (self.clock)();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        let Some(entry) = inner.live(key, now) else {
            return Ok(CasOutcome::Gone);
        };
        if entry.value != expected {
            let current = entry.value.clone();
            inner.mark_used(key);
            return Ok(CasOutcome::Conflict(current));
        }
        entry.value = new.to_vec();
        inner.mark_used(key);
        inner.set_expiry(key, expiry(now, ttl));
        Ok(CasOutcome::Swapped)
    }

    fn do_touch(&self, key: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        if ttl.is_zero() {
            return Err(Self::ttl_error("touch"));
        }
        let now = (self.clock)();
        let mut inner = self.lock();
        if inner.live(key, now).is_none() {
            return Ok(false);
        }
        inner.mark_used(key);
        inner.set_expiry(key, expiry(now, ttl));
        Ok(true)
    }

    fn do_destroy(&self, key: &[u8]) {
        self.lock().remove(key);
    }
}

impl Inner {
    /// The record at `key` if it has not expired; drops it if it has.
    fn live(&mut self, key: &[u8], now: Instant) -> Option<&mut Entry> {
        let expired = self.records.get(key)?.expires <= now;
        if expired {
            self.remove(key);
            return None;
        }
        self.records.get_mut(key)
    }

    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>, expires: Instant) {
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
        true
    }

    /// Drops the oldest record never used since it was created.
    fn evict_oldest_unused(&mut self) -> bool {
        let Some((_, key)) = self.unused.pop_first() else {
            return false;
        };
        self.remove(&key);
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
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>> {
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
