//! The `Store` trait: bytes in, bytes out, runtime-agnostic.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use session_sockets_core::StoreError;

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
    /// The record at `key`, or `None`.
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>>;

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
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>> {
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
}
