//! What a store implementor needs: the [`Store`] trait (bytes in, bytes
//! out, runtime-agnostic), its events, the embedded [`MemoryStore`], and
//! [`drive`], the loop that runs a core machine against a store.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

mod driver;
mod memory;

pub(crate) use driver::drive_counted;
pub use driver::{Stalled, drive};
pub use memory::{Clock, DEFAULT_CAPACITY, MemoryStore};
pub use session_sockets_core::event::{KeyChange, KeyEvent};
pub use session_sockets_core::{Bytes, StoreError};

/// A boxed, `Send` future, as every [`Store`] method returns (so that
/// `Arc<dyn Store>` works and stores can be chosen at run time).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What a compare-and-set found. `Debug` shows only the length of record
/// bytes (they hold session data).
#[derive(Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The record equalled `expected` and now holds `new`.
    Swapped,
    /// The record differs from `expected`; these are its current bytes.
    /// Nothing was written.
    Conflict(Vec<u8>),
    /// There is no record (destroyed or expired). Nothing was written: a
    /// compare-and-set never creates ([R24]).
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    Gone,
}

impl std::fmt::Debug for CasOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CasOutcome::Swapped => f.write_str("Swapped"),
            CasOutcome::Conflict(b) => write!(f, "Conflict(<{} bytes>)", b.len()),
            CasOutcome::Gone => f.write_str("Gone"),
        }
    }
}

/// A session store holding express-session records by key, each with a time
/// to live. Keys and values are opaque bytes; the core decides what they
/// hold. Implementations must never log keys or values (they hold session
/// ids and session data, [R16]).
///
/// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
pub trait Store: Send + Sync + 'static {
    /// The record at `key`, or `None`. A store that keeps records in
    /// memory can hand out the very bytes it holds (a [`Bytes`] is shared,
    /// not copied): a connected socket keeps them for as long as it lives.
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Bytes>>;

    /// Inserts `value` at `key` with time to live `ttl`, only if `key` does
    /// not exist (`SET NX EX`). `true` if inserted, `false` if the key
    /// exists (nothing written).
    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8], ttl: Duration)
    -> StoreFuture<'a, bool>;

    /// Atomically replaces the record at `key` with `new` (time to live
    /// `ttl`) if it equals `expected` byte for byte. Never creates a record.
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        new: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, CasOutcome>;

    /// Sets the time to live of `key` without changing its value. `true` if
    /// the record exists, `false` if not.
    fn touch<'a>(&'a self, key: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool>;

    /// Deletes the record at `key`; no error if there is none.
    fn destroy<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, ()>;

    /// Reports, from now on and until the returned [`Subscription`] is
    /// dropped, the changes of keys starting with `prefix`: written,
    /// deleted or expired, by anyone (other processes, an Express app, the
    /// store's own expiry). A write made through this very store value (or a
    /// clone) need not be reported, since its writer knows it: RedisStore
    /// leaves those out; MemoryStore reports every write, with the new bytes
    /// (so a subscriber tells its own writes by their bytes). `sink` is
    /// called from the store's own context and must return quickly.
    ///
    /// When the store cannot be sure it saw every change (its event stream
    /// broke), it sends [`StoreEvent::Lost`], then [`StoreEvent::Resumed`]
    /// once it reports again: changes in between are not reported, so the
    /// subscriber must look again at whatever it follows.
    ///
    /// `None` (the default): this store reports nothing, and sockets keep
    /// the copy of the session they loaded until they reload it. An error:
    /// the store should report changes but cannot (say, Redis lacks the
    /// setting for it); the message says what to fix.
    fn subscribe<'a>(
        &'a self,
        prefix: &'a [u8],
        sink: EventSink,
    ) -> StoreFuture<'a, Option<Subscription>> {
        let _ = (prefix, sink);
        Box::pin(async { Ok(None) })
    }

    /// Called by a subscriber after [`StoreEvent::Resumed`], before it looks
    /// again at what it follows: a store re-arms its reports here (Redis,
    /// restarted with its default settings, needs `notify-keyspace-events`
    /// again). The default does nothing.
    fn events_resumed(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// What a store reports to a [`Store::subscribe`]r.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// A key changed ([`KeyChange::Written`], with the new bytes when the
    /// store has them), was deleted or expired.
    Key(KeyEvent),
    /// The event stream broke: changes from now on may go unreported.
    Lost,
    /// The event stream works (again): changes made while it was lost were
    /// not reported. Also sent once when a subscription first starts
    /// reporting.
    Resumed,
}

/// Where a store sends its [`StoreEvent`]s.
pub type EventSink = std::sync::Arc<dyn Fn(StoreEvent) + Send + Sync>;

/// An active [`Store::subscribe`]; dropping it ends the subscription.
pub struct Subscription(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Subscription {
    /// A subscription that ends when `guard` is dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Subscription(Box::new(guard))
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Bytes>> {
        (**self).load(key)
    }
    fn create<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        (**self).create(key, value, ttl)
    }
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        new: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, CasOutcome> {
        (**self).compare_and_set(key, expected, new, ttl)
    }
    fn touch<'a>(&'a self, key: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        (**self).touch(key, ttl)
    }
    fn destroy<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, ()> {
        (**self).destroy(key)
    }
    fn subscribe<'a>(
        &'a self,
        prefix: &'a [u8],
        sink: EventSink,
    ) -> StoreFuture<'a, Option<Subscription>> {
        (**self).subscribe(prefix, sink)
    }
    fn events_resumed(&self) -> StoreFuture<'_, ()> {
        (**self).events_resumed()
    }
}
