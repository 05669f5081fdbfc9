//! Store events: a store reports that a key was written, deleted or
//! expired; this module says what that means for a session ([R32]).
//!
//! [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32
//!
//! Two pure steps, both fed untrusted bytes and fuzzed:
//!
//! - [`KeyspaceFilter`] turns Redis keyspace notifications (the messages
//!   of `PSUBSCRIBE __keyspace@<db>__:<prefix>*`) into [`KeyEvent`]s, and
//!   drops the notification of a write this process made itself (the
//!   compare-and-set script announces it on the process's own channel just
//!   before its `SET`, and Redis delivers both to one subscriber in order).
//!   On a Redis Cluster ([`KeyspaceFilter::cluster`]) a `del` is a change
//!   to reload rather than an end: moving a slot deletes its keys on the
//!   old node.
//! - [`session_event`] maps a [`KeyEvent`] to a [`SessionEvent`]: which
//!   session (the key minus the configured prefix, checked like any id
//!   before it is used, [R15]), and whether it changed, was destroyed or
//!   expired.
//!
//! [R15]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r15
//!
//! ```
//! use session_sockets_core::Config;
//! use session_sockets_core::event::{KeyspaceFilter, SessionChange, session_event};
//!
//! let config = Config::builder().secret("s").build().unwrap();
//! let mut filter = KeyspaceFilter::new(b"session-sockets:own:1");
//! let key = filter.handle(b"__keyspace@0__:sess:abc", b"del").unwrap();
//! let ev = session_event(&config, &key).unwrap();
//! assert_eq!(ev.id.expose(), "abc");
//! assert_eq!(ev.change, SessionChange::Destroyed);
//! // Our own write: announced, then its notification is dropped.
//! assert!(filter.handle(b"session-sockets:own:1", b"sess:abc").is_none());
//! assert!(filter.handle(b"__keyspace@0__:sess:abc", b"set").is_none());
//! ```

use crate::config::Config;
use crate::request::Bytes;
use crate::session::SessionId;

/// What happened to a store key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChange {
    /// Written by someone; with the new value when the store knows it (an
    /// in-process store does, Redis notifications do not).
    Written(Option<Bytes>),
    /// Deleted (`DEL`, `UNLINK`, renamed or moved away, evicted).
    Deleted,
    /// Its time to live ran out.
    Expired,
}

/// A store's report about one key. `Debug` redacts the key (it holds a
/// session id, R16).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// The key's bytes.
    pub key: Vec<u8>,
    /// What happened to it.
    pub change: KeyChange,
}

impl std::fmt::Debug for KeyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEvent")
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("change", &self.change)
            .finish()
    }
}

/// What happened to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// Another writer changed it; reload to see (or use the value, when the
    /// store sent it).
    Changed(Option<Bytes>),
    /// It ended: logout, deleted, evicted.
    Destroyed,
    /// Its time to live ran out.
    Expired,
}

/// A store event as it concerns one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    /// The session (redacted in `Debug`).
    pub id: SessionId,
    /// What happened to it.
    pub change: SessionChange,
}

/// The session a store event is about, if any: the key must start with the
/// configured key prefix, and the rest must be a usable session id (UTF-8,
/// no control characters, at most `max_sid_len` bytes, R15). Keys of other
/// applications sharing the store map to `None`.
pub fn session_event(config: &Config, event: &KeyEvent) -> Option<SessionEvent> {
    let id = session_of_key(config, &event.key)?;
    let change = match &event.change {
        KeyChange::Written(v) => SessionChange::Changed(v.clone()),
        KeyChange::Deleted => SessionChange::Destroyed,
        KeyChange::Expired => SessionChange::Expired,
    };
    Some(SessionEvent { id, change })
}

/// The session whose store key is `key`: the configured key prefix, then a
/// usable session id (UTF-8, no control characters, at most `max_sid_len`
/// bytes, [R15](https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r15)).
pub fn session_of_key(config: &Config, key: &[u8]) -> Option<SessionId> {
    let sid = key.strip_prefix(config.key_prefix.as_bytes())?;
    if sid.is_empty() || !config.usable_sid(sid) {
        return None;
    }
    // Without a prefix (tower-sessions, actix-session), the key's shape
    // tells a session's key from the other keys of the database.
    if !config.format().is_event_key(sid) {
        return None;
    }
    Some(SessionId::new(std::str::from_utf8(sid).ok()?))
}

/// What a Redis keyspace event name means for a key, `None` when its value
/// is untouched (`expire`, `persist`: a touch). Every other event is a
/// write to look at: a session record is a string, and whatever a foreign
/// command did to it, a reload shows it.
pub fn keyspace_change(event: &[u8]) -> Option<KeyChange> {
    match event {
        b"expire" | b"persist" => None,
        b"expired" => Some(KeyChange::Expired),
        b"del" | b"evicted" | b"rename_from" | b"move_from" => Some(KeyChange::Deleted),
        _ => Some(KeyChange::Written(None)),
    }
}

/// The key a keyspace channel names: `__keyspace@<db>__:<key>`, `<db>`
/// being decimal digits.
pub fn keyspace_key(channel: &[u8]) -> Option<&[u8]> {
    let rest = channel.strip_prefix(b"__keyspace@")?;
    let end = rest.iter().position(|&b| !b.is_ascii_digit())?;
    if end == 0 {
        return None;
    }
    rest[end..].strip_prefix(b"__:")
}

/// What a Redis keyspace event name means for a key on a Redis Cluster
/// node: as [`keyspace_change`], except that `del` is a change to look at
/// ([`KeyChange::Written`]), not an end. Moving a slot to another node
/// (resharding) deletes each of its keys on the old node with a `del`
/// notification while the new node restores it, so a `del` alone does not
/// say the session ended: a reload does (it ends the session only if the
/// key is really gone).
pub fn cluster_keyspace_change(event: &[u8]) -> Option<KeyChange> {
    match event {
        b"del" => Some(KeyChange::Written(None)),
        other => keyspace_change(other),
    }
}

/// Turns the messages of one Redis subscriber connection, in order, into
/// [`KeyEvent`]s, dropping the notification of each write this process
/// announced on its own channel.
///
/// The compare-and-set script publishes the key on the writer's own channel
/// right before its `SET`; a script runs atomically, so on the subscriber
/// connection the announcement is immediately followed by that key's `set`
/// notification. The filter remembers the announced key for exactly one
/// message: any other message clears it (so a lost notification can never
/// make a later foreign write look like ours).
///
/// On a Redis Cluster, use one filter per node's subscriber connection, made
/// with [`KeyspaceFilter::cluster`]: `del` is then read as a change to
/// reload ([`cluster_keyspace_change`]).
#[derive(Debug)]
pub struct KeyspaceFilter {
    own_channel: Vec<u8>,
    announced: Option<Vec<u8>>,
    cluster: bool,
}

impl KeyspaceFilter {
    /// A filter for a process whose writes are announced on `own_channel`.
    pub fn new(own_channel: &[u8]) -> Self {
        KeyspaceFilter {
            own_channel: own_channel.to_vec(),
            announced: None,
            cluster: false,
        }
    }

    /// Whether the messages come from a Redis Cluster node (default
    /// `false`): there, a `del` may be a slot moving to another node, so it
    /// maps to [`KeyChange::Written`] (reload, and end the session only if
    /// the key is gone) instead of [`KeyChange::Deleted`]; see
    /// [`cluster_keyspace_change`].
    #[must_use]
    pub fn cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }

    /// Takes one message (`channel`, `payload`); `Some` when it reports a
    /// change by someone else.
    pub fn handle(&mut self, channel: &[u8], payload: &[u8]) -> Option<KeyEvent> {
        let announced = self.announced.take();
        if channel == self.own_channel.as_slice() {
            self.announced = Some(payload.to_vec());
            return None;
        }
        let key = keyspace_key(channel)?;
        let change = if self.cluster {
            cluster_keyspace_change(payload)?
        } else {
            keyspace_change(payload)?
        };
        if payload == b"set" && announced.as_deref() == Some(key) {
            return None;
        }
        Some(KeyEvent {
            key: key.to_vec(),
            change,
        })
    }

    /// Forgets an announcement (the connection was lost and re-made).
    pub fn reset(&mut self) {
        self.announced = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::builder().secret("s").build().unwrap()
    }

    fn key(k: &[u8], change: KeyChange) -> KeyEvent {
        KeyEvent {
            key: k.to_vec(),
            change,
        }
    }

    #[test]
    fn r32_keys_under_the_prefix_map_to_their_session() {
        let c = config();
        let ev = session_event(&c, &key(b"sess:abc", KeyChange::Expired)).unwrap();
        assert_eq!((ev.id.expose(), ev.change), ("abc", SessionChange::Expired));
        let ev = session_event(&c, &key(b"sess:abc", KeyChange::Deleted)).unwrap();
        assert_eq!(ev.change, SessionChange::Destroyed);
        let v = Bytes::from(&b"{}"[..]);
        let ev = session_event(&c, &key(b"sess:abc", KeyChange::Written(Some(v.clone())))).unwrap();
        assert_eq!(ev.change, SessionChange::Changed(Some(v)));
    }

    #[test]
    fn r15_other_keys_and_unusable_ids_map_to_nothing() {
        let c = config();
        for k in [
            &b"other:abc"[..],
            b"sess:",
            b"sess",
            b"sess:a\x01b",
            b"sess:\xff\xfe",
            b"SESS:abc",
        ] {
            assert_eq!(
                session_event(&c, &key(k, KeyChange::Deleted)),
                None,
                "{}",
                k.escape_ascii()
            );
        }
        let long = [b"sess:".as_slice(), &[b'a'; 257]].concat();
        assert_eq!(session_event(&c, &key(&long, KeyChange::Deleted)), None);
    }

    #[test]
    fn keyspace_channels_and_event_names() {
        assert_eq!(
            keyspace_key(b"__keyspace@0__:sess:abc"),
            Some(&b"sess:abc"[..])
        );
        assert_eq!(
            keyspace_key(b"__keyspace@15__:sess:a:b"),
            Some(&b"sess:a:b"[..])
        );
        assert_eq!(keyspace_key(b"__keyspace@15__:"), Some(&b""[..]));
        for bad in [
            &b"__keyspace@__:k"[..],
            b"__keyevent@0__:del",
            b"__keyspace@0_:k",
            b"",
            b"__keyspace@0x__:k",
        ] {
            assert_eq!(keyspace_key(bad), None, "{}", bad.escape_ascii());
        }
        assert_eq!(keyspace_change(b"expire"), None);
        assert_eq!(keyspace_change(b"persist"), None);
        assert_eq!(keyspace_change(b"expired"), Some(KeyChange::Expired));
        for gone in [&b"del"[..], b"evicted", b"rename_from", b"move_from"] {
            assert_eq!(keyspace_change(gone), Some(KeyChange::Deleted));
        }
        for written in [
            &b"set"[..],
            b"setrange",
            b"append",
            b"rename_to",
            b"restore",
            b"hset",
        ] {
            assert_eq!(keyspace_change(written), Some(KeyChange::Written(None)));
        }
    }

    #[test]
    fn r32_own_writes_are_dropped_and_only_the_next_message_counts() {
        let mut f = KeyspaceFilter::new(b"own:1");
        assert_eq!(f.handle(b"own:1", b"sess:a"), None);
        assert_eq!(
            f.handle(b"__keyspace@0__:sess:a", b"set"),
            None,
            "our own write"
        );
        // The announcement is spent: the next write of the key is foreign.
        assert_eq!(
            f.handle(b"__keyspace@0__:sess:a", b"set"),
            Some(key(b"sess:a", KeyChange::Written(None)))
        );
        // An announcement of another key does not hide this one.
        assert_eq!(f.handle(b"own:1", b"sess:b"), None);
        assert!(f.handle(b"__keyspace@0__:sess:a", b"set").is_some());
        // Nor a delete right after an announcement.
        assert_eq!(f.handle(b"own:1", b"sess:a"), None);
        assert_eq!(
            f.handle(b"__keyspace@0__:sess:a", b"del"),
            Some(key(b"sess:a", KeyChange::Deleted))
        );
        // Another process's channel is just an unknown channel.
        assert_eq!(f.handle(b"own:2", b"sess:a"), None);
        assert!(f.handle(b"__keyspace@0__:sess:a", b"set").is_some());
        f.handle(b"own:1", b"sess:a");
        f.reset();
        assert!(f.handle(b"__keyspace@0__:sess:a", b"set").is_some());
    }

    #[test]
    fn r32_on_a_cluster_a_del_is_a_change_to_reload_not_an_end() {
        // A slot migration deletes the key on its old node: only a reload
        // tells whether the session ended.
        assert_eq!(
            cluster_keyspace_change(b"del"),
            Some(KeyChange::Written(None))
        );
        for (event, same) in [
            (&b"expired"[..], Some(KeyChange::Expired)),
            (b"evicted", Some(KeyChange::Deleted)),
            (b"set", Some(KeyChange::Written(None))),
            (b"restore", Some(KeyChange::Written(None))),
            (b"expire", None),
        ] {
            assert_eq!(cluster_keyspace_change(event), same);
            assert_eq!(keyspace_change(event), same);
        }
        let mut f = KeyspaceFilter::new(b"own:1").cluster(true);
        assert_eq!(
            f.handle(b"__keyspace@0__:sess:a", b"del"),
            Some(key(b"sess:a", KeyChange::Written(None)))
        );
        let ev = session_event(&config(), &key(b"sess:a", KeyChange::Written(None))).unwrap();
        assert_eq!(
            ev.change,
            SessionChange::Changed(None),
            "reloaded, not ended"
        );
        // Own writes are still dropped.
        assert_eq!(f.handle(b"own:1", b"sess:a"), None);
        assert_eq!(f.handle(b"__keyspace@0__:sess:a", b"set"), None);
        // Without the option, a del ends the session at once.
        let mut single = KeyspaceFilter::new(b"own:1").cluster(false);
        assert_eq!(
            single.handle(b"__keyspace@0__:sess:a", b"del"),
            Some(key(b"sess:a", KeyChange::Deleted))
        );
    }

    #[test]
    fn r16_debug_redacts_keys() {
        let d = format!("{:?}", key(b"sess:secret-id", KeyChange::Deleted));
        assert!(!d.contains("secret"), "{d}");
    }
}
