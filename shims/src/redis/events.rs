//! Keyspace notifications: how [`RedisStore`](super::RedisStore) reports
//! that a session key changed, was deleted or expired ([R32]).
//!
//! The store keeps a second connection (RESP3, so that it receives push
//! messages and re-subscribes by itself after a reconnect) subscribed to
//! `__keyspace@<db>__:<prefix>*` and to its own write channel. Its
//! compare-and-set script publishes the key on that channel just before its
//! `SET`, so the notification of the store's own write is recognised (by
//! the core's [`KeyspaceFilter`]) and not reported: its writer already
//! knows.
//!
//! Redis sends keyspace notifications only for the classes listed in its
//! `notify-keyspace-events` setting, which is empty by default. The store
//! needs `K` (keyspace channel), `g` (generic commands: `DEL`, `EXPIRE`,
//! `RENAME`), `$` (string commands: `SET`), `x` (expired) and `e` (evicted)
//! ([`NEEDED_CLASSES`]); see [`KeyspaceEvents`] for what it does when they
//! are missing.
//!
//! [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use session_sockets_core::event::KeyspaceFilter;

use crate::store::{EventSink, StoreError, StoreEvent, Subscription};

/// The `notify-keyspace-events` classes live sessions need.
pub const NEEDED_CLASSES: &str = "Kg$xe";

/// What [`RedisStore`](super::RedisStore) does about Redis's
/// `notify-keyspace-events` setting, which live sessions need to include
/// [`NEEDED_CLASSES`] (Redis's default is empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyspaceEvents {
    /// Check the setting at connect (and after every reconnect) and fail
    /// with a message naming the exact setting when classes are missing:
    /// for operators who want the server's configuration left alone.
    Require,
    /// The default: add the missing classes with `CONFIG SET`, keeping the
    /// classes already set (again after Redis restarts with its default
    /// settings), so a stock redis-server works as it is; fail with the
    /// message naming the setting when `CONFIG` is refused (managed Redis
    /// services often refuse it: set the parameter there).
    #[default]
    Configure,
    /// No keyspace notifications: the store reports no changes, and sockets
    /// keep the session they loaded until they reload it.
    Off,
}

/// The classes of `flags` (a `notify-keyspace-events` value) that
/// [`NEEDED_CLASSES`] lacks, in that order. `A` stands for `g$lshzxetd`.
pub(crate) fn missing_classes(flags: &str) -> String {
    let has = |c: char| flags.contains(c) || (c != 'K' && c != 'E' && flags.contains('A'));
    NEEDED_CLASSES.chars().filter(|c| !has(*c)).collect()
}

/// The message for a server whose setting lacks classes.
pub(crate) fn setting_message(addr: &str, current: &str, want: &str, why: &str) -> String {
    format!(
        "Redis at {addr} has notify-keyspace-events \"{current}\", which lacks classes live \
         sessions need ({why}): set notify-keyspace-events \"{want}\" in the server's \
         configuration (redis.conf, or the notify-keyspace-events parameter of a managed \
         Redis; on a Redis Cluster, on every node), or let this store set it with \
         .keyspace_events(KeyspaceEvents::Configure) on the RedisStore builder, or turn live \
         sessions off with KeyspaceEvents::Off"
    )
}

/// Checks `notify-keyspace-events` on the server behind `conn` (adding the
/// missing classes with `CONFIG SET` in [`KeyspaceEvents::Configure`]
/// mode). `addr` names the server in messages.
pub(crate) async fn ensure(
    conn: &mut impl redis::aio::ConnectionLike,
    addr: &str,
    mode: KeyspaceEvents,
) -> Result<(), StoreError> {
    // A map in RESP3, a flat array in RESP2: both read as a map.
    let got: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(conn)
        .await
        .map_err(|e| {
            StoreError::with_source(
                format!(
                    "cannot read notify-keyspace-events from Redis at {addr} (CONFIG GET): \
                     if CONFIG is disabled, set notify-keyspace-events \"{NEEDED_CLASSES}\" \
                     in the server's configuration and use \
                     KeyspaceEvents::Require, or turn live sessions off with \
                     KeyspaceEvents::Off"
                ),
                e,
            )
        })?;
    let current = got
        .get("notify-keyspace-events")
        .map(String::as_str)
        .unwrap_or_default();
    let missing = missing_classes(current);
    if missing.is_empty() {
        return Ok(());
    }
    let want = format!("{current}{missing}");
    match mode {
        KeyspaceEvents::Configure => redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(&want)
            .query_async::<()>(conn)
            .await
            .map_err(|e| {
                StoreError::with_source(
                    setting_message(addr, current, &want, "and CONFIG SET was refused"),
                    e,
                )
            }),
        _ => Err(StoreError::new(setting_message(
            addr,
            current,
            &want,
            &format!("{missing} missing"),
        ))),
    }
}

/// The subscriber side of a store: its RESP3 connection and what the push
/// messages go to.
pub(crate) struct Events {
    conn: ConnectionManager,
    /// The channel this store announces its own writes on.
    pub(crate) own_channel: String,
    db: i64,
    mode: KeyspaceEvents,
    shared: Arc<Shared>,
}

#[derive(Default)]
pub(crate) struct Shared {
    filter: Mutex<Option<KeyspaceFilter>>,
    sinks: Mutex<Vec<(u64, Vec<u8>, EventSink)>>,
    next: AtomicU64,
    /// The connection dropped and has not re-subscribed yet.
    lost: AtomicBool,
}

impl Shared {
    fn sinks(&self) -> MutexGuard<'_, Vec<(u64, Vec<u8>, EventSink)>> {
        // Whole entries pushed and removed: consistent after a panic.
        self.sinks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn filter(&self) -> MutexGuard<'_, Option<KeyspaceFilter>> {
        self.filter.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn broadcast(&self, event: &StoreEvent) {
        let sinks: Vec<EventSink> = self.sinks().iter().map(|(_, _, s)| Arc::clone(s)).collect();
        for sink in sinks {
            sink(event.clone());
        }
    }

    /// A push message from the subscriber connection. Runs on the
    /// connection's reader: quick, never blocking.
    pub(crate) fn on_push(&self, info: PushInfo) {
        let bulk = |v: &Value| match v {
            Value::BulkString(b) => Some(b.clone()),
            Value::SimpleString(s) => Some(s.clone().into_bytes()),
            _ => None,
        };
        let (channel, payload) = match (info.kind, info.data.as_slice()) {
            (PushKind::PMessage, [_pattern, channel, payload]) => (bulk(channel), bulk(payload)),
            (PushKind::Message, [channel, payload]) => (bulk(channel), bulk(payload)),
            (PushKind::Disconnection, _) => {
                if let Some(f) = self.filter().as_mut() {
                    f.reset();
                }
                if !self.lost.swap(true, Ordering::SeqCst) {
                    self.broadcast(&StoreEvent::Lost);
                }
                return;
            }
            (PushKind::PSubscribe, _) => {
                // Re-subscribed after a reconnect: reporting again.
                if self.lost.swap(false, Ordering::SeqCst) {
                    self.broadcast(&StoreEvent::Resumed);
                }
                return;
            }
            _ => return,
        };
        let (Some(channel), Some(payload)) = (channel, payload) else {
            return;
        };
        let event = match self.filter().as_mut() {
            Some(f) => f.handle(&channel, &payload),
            None => None,
        };
        let Some(event) = event else { return };
        let sinks: Vec<EventSink> = self
            .sinks()
            .iter()
            .filter(|(_, prefix, _)| event.key.starts_with(prefix))
            .map(|(_, _, s)| Arc::clone(s))
            .collect();
        for sink in sinks {
            sink(StoreEvent::Key(event.clone()));
        }
    }
}

/// A random channel name for one store's own writes.
pub(crate) fn own_channel() -> Result<String, StoreError> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| {
        StoreError::with_source("the operating system's random number generator failed", e)
    })?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("session-sockets:writes:{hex}"))
}

/// A `PSUBSCRIBE` pattern matching exactly the keys that start with
/// `prefix` (glob characters escaped).
pub(crate) fn pattern(db: i64, prefix: &[u8]) -> Vec<u8> {
    let mut p = format!("__keyspace@{db}__:").into_bytes();
    for &b in prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            p.push(b'\\');
        }
        p.push(b);
    }
    p.push(b'*');
    p
}

impl Events {
    pub(crate) fn new(
        conn: ConnectionManager,
        own_channel: String,
        db: i64,
        mode: KeyspaceEvents,
        shared: Arc<Shared>,
    ) -> Self {
        *shared.filter() = Some(KeyspaceFilter::new(own_channel.as_bytes()));
        Events {
            conn,
            own_channel,
            db,
            mode,
            shared,
        }
    }

    /// Checks `notify-keyspace-events` (adding the missing classes with
    /// `CONFIG SET` in [`KeyspaceEvents::Configure`] mode).
    pub(crate) async fn ensure(&self, addr: &str) -> Result<(), StoreError> {
        ensure(&mut self.conn.clone(), addr, self.mode).await
    }

    /// Reports keys starting with `prefix` to `sink`.
    pub(crate) async fn subscribe(
        &self,
        prefix: &[u8],
        sink: EventSink,
        addr: &str,
    ) -> Result<Subscription, StoreError> {
        let mut conn = self.conn.clone();
        let failed = |what: &str, e: redis::RedisError| {
            StoreError::with_source(format!("cannot {what} on Redis at {addr}"), e)
        };
        conn.subscribe(&self.own_channel)
            .await
            .map_err(|e| failed("subscribe to the store's write channel", e))?;
        conn.psubscribe(pattern(self.db, prefix))
            .await
            .map_err(|e| failed("subscribe to keyspace notifications (PSUBSCRIBE)", e))?;
        let id = self.shared.next.fetch_add(1, Ordering::SeqCst);
        self.shared
            .sinks()
            .push((id, prefix.to_vec(), Arc::clone(&sink)));
        sink(StoreEvent::Resumed);
        Ok(Subscription::new(Unsubscribe {
            shared: Arc::downgrade(&self.shared),
            id,
        }))
    }
}

/// Stops reporting to one sink when dropped (the Redis subscription stays
/// until the store goes: other sinks may share its pattern).
struct Unsubscribe {
    shared: std::sync::Weak<Shared>,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.sinks().retain(|(id, _, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_classes_of_a_setting() {
        assert_eq!(missing_classes(""), "Kg$xe");
        assert_eq!(missing_classes("Ex"), "Kg$e");
        assert_eq!(missing_classes("KA"), "");
        assert_eq!(missing_classes("AK"), "");
        assert_eq!(missing_classes("EA"), "K", "A is every class but K and E");
        assert_eq!(missing_classes("Kg$xe"), "");
        assert_eq!(missing_classes("gxK$elt"), "");
    }

    #[test]
    fn patterns_escape_glob_characters() {
        assert_eq!(pattern(0, b"sess:"), b"__keyspace@0__:sess:*".to_vec());
        assert_eq!(
            pattern(3, b"a*b?[c]\\"),
            b"__keyspace@3__:a\\*b\\?\\[c\\]\\\\*".to_vec()
        );
    }

    #[test]
    fn the_setting_message_names_the_exact_setting() {
        let m = setting_message("127.0.0.1:6379", "", "Kg$xe", "Kg$xe missing");
        assert!(m.contains("notify-keyspace-events \"Kg$xe\""), "{m}");
        assert!(m.contains("KeyspaceEvents::Configure"), "{m}");
    }
}
