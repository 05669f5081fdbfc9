//! What machines ask of a store, and what the store answers.
//!
//! Each side effect is a [`Request`] output tied by a [`RequestId`] to the
//! [`Reply`] the caller feeds back with `handle_reply`. Store keys and
//! record bytes hold session ids, so their `Debug` is redacted.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::store_error::StoreError;

/// Ties a [`Reply`] to the [`Request`] it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A store key: prefix + session id, inline up to 48 bytes (`sess:` + a 32-byte id fits). `Debug` is
/// redacted because the key holds the session id ([R16]).
///
/// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey(SmallVec<[u8; 48]>);

impl StoreKey {
    /// `prefix` + `sid`.
    pub fn new(prefix: &[u8], sid: &[u8]) -> Self {
        let len = prefix.len() + sid.len();
        if len <= 48 {
            // The common case, without SmallVec's growth path: one copy
            // each. `prefix.len() <= len <= 48`, so the slices are in range.
            let mut inline = [0u8; 48];
            let (p, rest) = inline.split_at_mut(prefix.len());
            p.copy_from_slice(prefix);
            rest[..sid.len()].copy_from_slice(sid);
            return StoreKey(SmallVec::from_buf_and_len(inline, len));
        }
        let mut k = SmallVec::with_capacity(len);
        k.extend_from_slice(prefix);
        k.extend_from_slice(sid);
        StoreKey(k)
    }

    /// The key's bytes (UTF-8 for every key a machine emits).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

/// Record bytes. `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Arc<[u8]>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes(<{} bytes>)", self.0.len())
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v.into())
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.into())
    }
}

/// A store operation a machine needs done. Run it, then feed the answer to
/// the machine's `handle_reply` with the same [`RequestId`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Read the record at `key`. Answer [`Reply::Found`], [`Reply::NotFound`]
    /// or [`Reply::Failed`].
    Load {
        /// Ties the reply to this request.
        id: RequestId,
        /// The record's key.
        key: StoreKey,
    },
    /// Insert `value` at `key` with a time to live of `ttl_secs`, only if the
    /// key does not exist (`SET NX EX`, [R24]). Answer [`Reply::Created`],
    /// [`Reply::Exists`] or [`Reply::Failed`].
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    Create {
        /// Ties the reply to this request.
        id: RequestId,
        /// The record's key.
        key: StoreKey,
        /// The record to store.
        value: Bytes,
        /// Time to live in seconds, always > 0.
        ttl_secs: u64,
    },
    /// Replace the record at `key` with `new` (TTL `ttl_secs`) only if it
    /// currently equals `expected` byte for byte; never create it ([R24]).
    /// Answer [`Reply::Swapped`], [`Reply::Conflict`] with the current bytes,
    /// [`Reply::Gone`] if there is no record, or [`Reply::Failed`].
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    CompareAndSet {
        /// Ties the reply to this request.
        id: RequestId,
        /// The record's key.
        key: StoreKey,
        /// The bytes the writer loaded.
        expected: Bytes,
        /// The bytes to store.
        new: Bytes,
        /// Time to live in seconds, always > 0.
        ttl_secs: u64,
    },
    /// Set the time to live of `key` to `ttl_secs` without touching its
    /// value (`EXPIRE`). Answer [`Reply::Done`], [`Reply::Gone`] if there is
    /// no record, or [`Reply::Failed`].
    Touch {
        /// Ties the reply to this request.
        id: RequestId,
        /// The record's key.
        key: StoreKey,
        /// Time to live in seconds, always > 0.
        ttl_secs: u64,
    },
    /// Delete the record at `key` (`DEL`). Answer [`Reply::Done`] (also when
    /// there was none) or [`Reply::Failed`].
    Destroy {
        /// Ties the reply to this request.
        id: RequestId,
        /// The record's key.
        key: StoreKey,
    },
    /// The machine needs fresh random bytes (at least `len`) for a new
    /// session id. Answer [`Reply::Random`]. The core never draws randomness
    /// itself; use a CSPRNG ([R10]).
    ///
    /// [R10]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r10
    Random {
        /// Ties the reply to this request.
        id: RequestId,
        /// How many bytes are needed.
        len: usize,
    },
}

impl Request {
    /// The id to answer with.
    pub fn id(&self) -> RequestId {
        match self {
            Request::Load { id, .. }
            | Request::Create { id, .. }
            | Request::CompareAndSet { id, .. }
            | Request::Touch { id, .. }
            | Request::Destroy { id, .. }
            | Request::Random { id, .. } => *id,
        }
    }

    /// The store key it concerns, if any.
    pub fn key(&self) -> Option<&StoreKey> {
        match self {
            Request::Load { key, .. }
            | Request::Create { key, .. }
            | Request::CompareAndSet { key, .. }
            | Request::Touch { key, .. }
            | Request::Destroy { key, .. } => Some(key),
            Request::Random { .. } => None,
        }
    }
}

/// A store's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// `Load`: the record's exact bytes.
    Found(Bytes),
    /// `Load`: no record at that key.
    NotFound,
    /// `Create`: inserted.
    Created,
    /// `Create`: the key already exists; nothing was written.
    Exists,
    /// `CompareAndSet`: replaced.
    Swapped,
    /// `CompareAndSet`: the record differs from `expected`; these are its
    /// current bytes and nothing was written.
    Conflict(Bytes),
    /// `CompareAndSet` / `Touch`: there is no record (destroyed or expired);
    /// nothing was written.
    Gone,
    /// `Touch` / `Destroy`: done.
    Done,
    /// `Random`: the bytes (redacted in `Debug`: they become the id).
    Random(Bytes),
    /// Any request: the store failed. Its message must not contain session
    /// ids or record contents; its cause is kept.
    Failed(StoreError),
}

impl Reply {
    /// The variant's name (`"Found"`, `"Conflict"`, ...), for messages about
    /// an answer a machine did not expect. Never the payload.
    pub fn name(&self) -> &'static str {
        match self {
            Reply::Found(_) => "Found",
            Reply::NotFound => "NotFound",
            Reply::Created => "Created",
            Reply::Exists => "Exists",
            Reply::Swapped => "Swapped",
            Reply::Conflict(_) => "Conflict",
            Reply::Gone => "Gone",
            Reply::Done => "Done",
            Reply::Random(_) => "Random",
            Reply::Failed(_) => "Failed",
        }
    }
}
