//! The session a socket handler works with.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::codec::record::{self, Record, SessionCookie};
use crate::format::actix_session::{self, StoredTexts};
use crate::format::tower_sessions::{self, ExpiryDate, Id};
pub use crate::session_id::SessionId;

/// What a session's record holds besides its data, in the record's format
/// ([`Format`](crate::Format)): written back with the data on every save.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Meta {
    /// express-session: the record's `cookie` object.
    Express(SessionCookie),
    /// tower-sessions: the record's id (the session's) and its expiry date,
    /// which a save renews as tower-sessions' own save does.
    TowerSessions {
        /// The id the record holds (the session id's `i128`).
        id: Id,
        /// When the record expires; the store's TTL ends it then.
        expiry_date: ExpiryDate,
    },
    /// actix-session: the JSON text each value was stored as, so that
    /// values this side did not change are written back byte for byte.
    ActixSession(StoredTexts),
}

impl Meta {
    /// The express-session cookie, for an express-session record.
    pub fn cookie(&self) -> Option<&SessionCookie> {
        match self {
            Meta::Express(c) => Some(c),
            _ => None,
        }
    }

    /// When the record says the session ends, in milliseconds since the
    /// epoch (rounded down): express-session's `cookie.expires`,
    /// tower-sessions' expiry date; `None` where it holds none (a browser
    /// session cookie, actix-session, whose TTL alone decides). An instant
    /// to look again at, not the decision: [`Config::has_expired`] decides,
    /// with the options (`rolling`).
    ///
    /// [`Config::has_expired`]: crate::Config::has_expired
    pub fn expires_ms(&self) -> Option<i64> {
        match self {
            Meta::Express(cookie) => cookie.expires_ms(),
            Meta::TowerSessions { expiry_date, .. } => Some(expiry_date.unix_millis()),
            Meta::ActixSession(_) => None,
        }
    }

    /// The record, in its format, with `data`.
    pub(crate) fn encode_with(&self, data: &Map<String, Value>) -> Vec<u8> {
        match self {
            Meta::Express(cookie) => record::encode(cookie, data),
            Meta::TowerSessions { id, expiry_date } => {
                tower_sessions::encode_record(id, data, expiry_date)
            }
            Meta::ActixSession(texts) => actix_session::encode_state(data, texts),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Meta::Express(c) => c.shrink_to_fit(),
            Meta::TowerSessions { .. } => {}
            Meta::ActixSession(t) => t.shrink_to_fit(),
        }
    }
}

/// A session: its id, its record's metadata (express-session's cookie,
/// tower-sessions' expiry date, ...) and its data, plus what is needed to
/// save it safely (the exact bytes it was loaded from, and which keys this
/// side changed).
///
/// Data is read and written through [`get`](Self::get),
/// [`insert`](Self::insert) and [`remove`](Self::remove) so that every
/// change is tracked: a save re-applies only this side's changes when
/// another writer got there first.
#[derive(Clone)]
pub struct Session {
    id: SessionId,
    meta: Meta,
    data: Map<String, Value>,
    loaded: Option<Arc<[u8]>>,
    /// What a save needs to know of this copy's changes; `None` while there
    /// is nothing to know (most copies, e.g. a connected socket's: one
    /// pointer instead of two vectors).
    tracking: Option<Box<Tracking>>,
}

/// The change tracking of a [`Session`].
#[derive(Clone, Debug, Default)]
struct Tracking {
    /// Keys this side changed since it first loaded the session.
    changes: Vec<Change>,
    /// On a session a save returned: each key the session handed to the
    /// save had changed, with the value it had then. What a copy changed
    /// since is what differs from it ([`Session::adopt_saved`]).
    sent: Option<Vec<(String, Option<Value>)>>,
}

/// A key this side changed, with its value when the session was first
/// loaded (what the change is measured against, across rebases) and its
/// value in the record the session now rests on (what a write is measured
/// against). `None`: absent.
#[derive(Clone, Debug)]
struct Change {
    key: String,
    original: Option<Value>,
    base: Option<Value>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("meta", &self.meta)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("changed", &self.is_changed())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session decoded from `bytes`, the exact express-session record the
    /// store returned.
    pub fn from_record(id: SessionId, record: Record, bytes: Arc<[u8]>) -> Self {
        Session::from_stored(id, Meta::Express(record.cookie), record.data, bytes)
    }

    /// A session decoded from `bytes`, the exact record the store returned,
    /// in any format: its metadata and its data.
    pub fn from_stored(
        id: SessionId,
        meta: Meta,
        data: Map<String, Value>,
        bytes: Arc<[u8]>,
    ) -> Self {
        Session {
            id,
            meta,
            data,
            loaded: Some(bytes),
            tracking: None,
        }
    }

    /// An express-session session that is not in any store yet.
    pub fn new(id: SessionId, cookie: SessionCookie, data: Map<String, Value>) -> Self {
        Session::with_meta(id, Meta::Express(cookie), data)
    }

    /// A session of any format that is not in any store yet.
    pub fn with_meta(id: SessionId, meta: Meta, data: Map<String, Value>) -> Self {
        Session {
            id,
            meta,
            data,
            loaded: None,
            tracking: None,
        }
    }

    /// The session id (redacted in `Debug`).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The cookie settings stored with an express-session session; `None`
    /// in the other formats, whose records hold no cookie.
    pub fn cookie(&self) -> Option<&SessionCookie> {
        self.meta.cookie()
    }

    /// Mutable cookie settings of an express-session session (expiry is
    /// managed by the touch machine).
    pub fn cookie_mut(&mut self) -> Option<&mut SessionCookie> {
        match &mut self.meta {
            Meta::Express(c) => Some(c),
            _ => None,
        }
    }

    /// What the record holds besides the data, in its format.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The metadata, for the machines that renew it (touch, save).
    pub(crate) fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    /// The user axum-login keeps in a tower-sessions session (its
    /// `axum-login.data` entry's `user_id`), deserialized: `Ok(None)` when
    /// no one is logged in, an error when the id has another shape than
    /// `T` (your `AuthUser::Id`).
    ///
    /// The record alone does not say the user is still valid: axum-login
    /// compares [`axum_login`](Self::axum_login)'s `auth_hash` with the
    /// user's current one on every HTTP request.
    ///
    /// ```
    /// use serde_json::json;
    /// use session_sockets_core::{Session, SessionId};
    /// use session_sockets_core::codec::record::SessionCookie;
    ///
    /// let mut data = serde_json::Map::new();
    /// data.insert("axum-login.data".into(), json!({"user_id": 7, "auth_hash": [1, 2]}));
    /// let session = Session::new(SessionId::new("x"), SessionCookie::new(None, 0), data);
    /// assert_eq!(session.axum_login_user_id::<i64>().unwrap(), Some(7));
    /// ```
    pub fn axum_login_user_id<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.axum_login()
            .map(|login| T::deserialize(login.user_id))
            .transpose()
    }

    /// What axum-login keeps in the session (its user id and the auth
    /// hash it checks on every request), if a user is logged in.
    pub fn axum_login(&self) -> Option<tower_sessions::AxumLogin<'_>> {
        tower_sessions::axum_login(&self.data)
    }

    /// All data, in stored order.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// The value under `key`, deserialized. `Ok(None)` if absent; an error if
    /// present with another shape.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.data.get(key).map(|v| T::deserialize(v)).transpose()
    }

    /// The raw JSON value under `key`.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// Sets `key` to `value` (serialized), returning the previous value.
    /// `cookie` is not a data key: express-session keeps its cookie there.
    pub fn insert<T: Serialize>(
        &mut self,
        key: &str,
        value: T,
    ) -> Result<Option<Value>, serde_json::Error> {
        let value = serde_json::to_value(value)?;
        Ok(self.insert_value(key, value))
    }

    /// Sets `key` to a JSON value, returning the previous value. In an
    /// express-session session, `cookie` is not a data key and is ignored.
    pub fn insert_value(&mut self, key: &str, value: Value) -> Option<Value> {
        if key == "cookie" && matches!(self.meta, Meta::Express(_)) {
            return None;
        }
        self.note_change(key);
        self.data.insert(key.to_owned(), value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.data.contains_key(key) {
            return None;
        }
        self.note_change(key);
        self.data.shift_remove(key)
    }

    fn note_change(&mut self, key: &str) {
        if !self.changes().iter().any(|c| c.key == key) {
            let at_load = self.data.get(key).cloned();
            let tracking = self.tracking.get_or_insert_default();
            tracking.changes.push(Change {
                key: key.to_owned(),
                original: at_load.clone(),
                base: at_load,
            });
        }
    }

    /// Whether the session rests on a stored record (it was loaded, created
    /// or saved), so that a save has something to compare against; `false`
    /// for one built with [`Session::new`].
    pub fn is_stored(&self) -> bool {
        self.loaded.is_some()
    }

    /// Whether this session rests on exactly the stored record `bytes` (it
    /// was loaded from them, or saved as them).
    pub fn rests_on(&self, bytes: &[u8]) -> bool {
        self.loaded.as_deref() == Some(bytes)
    }

    /// Whether both sessions rest on the same stored record.
    pub fn rests_on_same(&self, other: &Session) -> bool {
        self.loaded.is_some() && self.loaded == other.loaded
    }

    /// Whether the data differs from the record it rests on, i.e. whether a
    /// save has something to write (a value set to what it already was is
    /// no change, as in express-session).
    pub fn is_changed(&self) -> bool {
        self.loaded.is_none()
            || self
                .changes()
                .iter()
                .any(|c| self.data.get(&c.key) != c.base.as_ref())
    }

    /// The keys this side changed since the session was first loaded, with
    /// the new value (`None`: removed). A change stays listed after a save's
    /// conflict (or a [`refresh`](Self::refresh)) rebased the session onto a
    /// record that already holds it, so that a later conflict re-applies it
    /// too.
    pub fn changed_keys(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.changes().iter().filter_map(|c| {
            let now = self.data.get(&c.key);
            (now != c.original.as_ref()).then_some((c.key.as_str(), now))
        })
    }

    /// Whether this copy's data is the stored record it rests on, with no
    /// change of its own listed: nothing changed since it was loaded or
    /// refreshed (a copy a save returned counts as changed until it is
    /// adopted). Changes to the cookie through [`cookie_mut`](Self::cookie_mut)
    /// are not tracked: compare [`cookie`](Self::cookie)s as well before
    /// treating two such copies resting on the same record as the same.
    pub fn is_as_stored(&self) -> bool {
        self.loaded.is_some() && self.tracking.is_none()
    }

    /// A copy of this session as stored, when its data is what its record
    /// holds (no change, or only values set back): what a reload of its
    /// record would give (the save it came from, if any, is forgotten), with
    /// this copy's cookie. `None` when it has unsaved changes or was never
    /// stored.
    pub fn stored_copy(&self) -> Option<Session> {
        (self.loaded.is_some() && !self.is_changed()).then(|| {
            let mut copy = Session {
                id: self.id.clone(),
                meta: self.meta.clone(),
                data: self.data.clone(),
                loaded: self.loaded.clone(),
                tracking: None,
            };
            copy.shrink_to_fit();
            copy
        })
    }

    /// Gives back spare capacity, for a copy kept for long (a connected
    /// socket's): decoding sizes for speed, not for keeping.
    pub fn shrink_to_fit(&mut self) {
        let mut data = Map::with_capacity(self.data.len());
        data.extend(std::mem::take(&mut self.data));
        self.data = data;
        self.meta.shrink_to_fit();
        if let Some(t) = &mut self.tracking {
            t.changes.shrink_to_fit();
        }
    }

    /// The exact bytes this session was loaded from, if it was.
    pub(crate) fn loaded_bytes(&self) -> Option<&Arc<[u8]>> {
        self.loaded.as_ref()
    }

    /// The record as its format stores it now (express-session's JSON,
    /// tower-sessions' MessagePack, actix-session's JSON of JSON texts).
    pub fn encode(&self) -> Vec<u8> {
        self.meta.encode_with(&self.data)
    }

    /// Takes `meta`, `data` and `loaded` as the record this session rests
    /// on, then re-applies this side's changed keys on top.
    pub(crate) fn rest_on(
        &mut self,
        meta: Meta,
        data: Map<String, Value>,
        loaded: Option<Arc<[u8]>>,
    ) {
        let tracking = self.tracking.take().unwrap_or_default();
        let mine: Vec<(Change, Option<Value>)> = tracking
            .changes
            .into_iter()
            .filter_map(|c| {
                let now = self.data.get(&c.key).cloned();
                (now != c.original).then_some((c, now))
            })
            .collect();
        self.meta = meta;
        self.data = data;
        self.loaded = loaded;
        let mut changes = Vec::with_capacity(mine.len());
        for (mut change, value) in mine {
            change.base = self.data.get(&change.key).cloned();
            match value {
                Some(v) => {
                    self.data.insert(change.key.clone(), v);
                }
                None => {
                    self.data.shift_remove(&change.key);
                }
            }
            changes.push(change);
        }
        self.set_tracking(changes, tracking.sent);
    }

    /// The keys this side changed (see [`Tracking`]).
    fn changes(&self) -> &[Change] {
        self.tracking.as_deref().map_or(&[], |t| &t.changes)
    }

    /// Keeps `changes` and `sent`, freeing the tracking when both are empty.
    fn set_tracking(&mut self, changes: Vec<Change>, sent: Option<Vec<(String, Option<Value>)>>) {
        self.tracking =
            (!changes.is_empty() || sent.is_some()).then(|| Box::new(Tracking { changes, sent }));
    }

    /// Re-bases this copy onto `fresh`, the session as just loaded again
    /// (e.g. by a [`Reload`](crate::machines::Reload)): takes its cookie, data and
    /// stored bytes, then re-applies the changes this copy has not saved,
    /// exactly as a save re-applies them after a conflict. A later save
    /// compares against `fresh`'s bytes. The id stays this session's.
    pub fn refresh(&mut self, fresh: Session) {
        self.rest_on(fresh.meta, fresh.data, fresh.loaded);
        self.forget_sent();
    }

    /// Makes this copy the session a save stored (`saved`, the outcome of a
    /// [`Save`](crate::machines::Save) of an earlier copy of this session), plus
    /// whatever changed on this copy since that earlier copy was handed to
    /// the save. Changes that were saved are forgotten, so a later conflict
    /// never re-applies them over another writer's newer values.
    ///
    /// `saved` remembers what the save was handed; a session that did not
    /// come from a save counts as handed nothing, so every unsaved change of
    /// this copy is kept.
    pub fn adopt_saved(&mut self, saved: &Session) {
        let sent = saved
            .tracking
            .as_deref()
            .and_then(|t| t.sent.as_deref())
            .unwrap_or_default();
        let later: Vec<(String, Option<Value>)> = self
            .changes()
            .iter()
            .filter(|c| {
                // What the save was handed for this key: the value sent, or,
                // for a key the copy changed only afterwards, its value then.
                let handed = sent
                    .iter()
                    .find(|(k, _)| *k == c.key)
                    .map_or(c.original.as_ref(), |(_, v)| v.as_ref());
                self.data.get(&c.key) != handed
            })
            .map(|c| (c.key.clone(), self.data.get(&c.key).cloned()))
            .collect();
        *self = saved.clone();
        self.forget_sent();
        for (k, v) in later {
            match v {
                Some(v) => {
                    self.insert_value(&k, v);
                }
                None => {
                    self.remove(&k);
                }
            }
        }
    }

    /// What a save hands on: each key this session changed, with its value
    /// now (see [`Session::adopt_saved`]).
    pub(crate) fn handed(&self) -> Vec<(String, Option<Value>)> {
        self.changes()
            .iter()
            .map(|c| (c.key.clone(), self.data.get(&c.key).cloned()))
            .collect()
    }

    /// Records what the save that stored this session was handed.
    pub(crate) fn set_sent(&mut self, sent: Vec<(String, Option<Value>)>) {
        self.tracking.get_or_insert_default().sent = Some(sent);
    }

    /// Forgets what a save was handed (see [`Session::adopt_saved`]).
    fn forget_sent(&mut self) {
        if let Some(t) = self.tracking.take() {
            self.set_tracking(t.changes, None);
        }
    }

    /// Marks the current state as stored (`bytes`): no pending changes.
    pub(crate) fn mark_stored(&mut self, bytes: Arc<[u8]>) {
        self.loaded = Some(bytes);
        if let Some(t) = self.tracking.take() {
            self.set_tracking(Vec::new(), t.sent);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn r13_expires_ms_reads_the_date_each_format_keeps() {
        use crate::codec::record::SessionCookie;
        use crate::format::tower_sessions::{ExpiryDate, Id};
        use std::time::{Duration, UNIX_EPOCH};
        let express = Meta::Express(SessionCookie::new(Some(60_000), 1_000_000));
        assert_eq!(express.expires_ms(), Some(1_060_000));
        assert_eq!(
            Meta::Express(SessionCookie::new(None, 0)).expires_ms(),
            None
        );
        // Rounded down: never later than the date itself.
        let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_999_999);
        let tower = Meta::TowerSessions {
            id: Id::from_i128(7),
            expiry_date: ExpiryDate::from_system_time(at).unwrap(), // in range: 2023
        };
        assert_eq!(tower.expires_ms(), Some(1_700_000_000_123));
        assert_eq!(Meta::ActixSession(Default::default()).expires_ms(), None);
    }

    #[test]
    fn r16_a_tag_tells_ids_apart_without_holding_them() {
        let a = SessionId::new("4OHeNVatZmP7xDmJlMNKW8Qp0sb8rAgd");
        let b = SessionId::new("4OHeNVatZmP7xDmJlMNKW8Qp0sb8rAge");
        assert_eq!(a.tag(), a.clone().tag(), "stable");
        assert_ne!(a.tag(), b.tag());
        assert_eq!(a.tag().len(), 11);
        assert!(!a.expose().contains(&a.tag()) && !a.tag().contains("4OHe"));
    }

    use super::*;

    fn loaded(json: &str) -> Session {
        let rec = record::decode(json.as_bytes()).unwrap();
        Session::from_record(SessionId::new("sid"), rec, Arc::from(json.as_bytes()))
    }

    #[test]
    fn typed_get_insert_remove_and_change_tracking() {
        let mut s = loaded(
            r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1,"user":{"id":42}}"#,
        );
        assert!(!s.is_changed());
        assert_eq!(s.get::<u32>("n").unwrap(), Some(1));
        assert_eq!(s.get::<u32>("missing").unwrap(), None);
        assert!(s.get::<String>("n").is_err());
        s.insert("n", 1).unwrap();
        assert!(!s.is_changed(), "same value is no change");
        s.insert("n", 2).unwrap();
        assert!(s.is_changed());
        s.insert("n", 1).unwrap();
        assert!(!s.is_changed(), "back to the loaded value");
        assert!(s.remove("user").is_some());
        assert_eq!(s.changed_keys().collect::<Vec<_>>(), vec![("user", None)]);
        assert_eq!(s.remove("nope"), None);
        assert_eq!(s.insert("cookie", 1).unwrap(), None);
        assert!(s.data().get("cookie").is_none());
    }

    #[test]
    fn refresh_keeps_theirs_and_reapplies_mine() {
        let mut s = loaded(r#"{"cookie":{"path":"/"},"a":1,"b":1,"c":1}"#);
        s.insert("a", 2).unwrap();
        s.remove("c");
        let theirs = r#"{"cookie":{"path":"/"},"a":5,"b":7,"c":1,"d":1}"#;
        s.refresh(Session::from_record(
            SessionId::new("sid"),
            record::decode(theirs.as_bytes()).unwrap(),
            Arc::from(theirs.as_bytes()),
        ));
        assert_eq!(
            String::from_utf8(s.encode()).unwrap(),
            r#"{"cookie":{"path":"/"},"a":2,"b":7,"d":1}"#
        );
        assert!(s.is_changed());
    }

    #[test]
    fn r25_a_change_an_earlier_conflict_already_held_is_reapplied_later() {
        let mut s = loaded(r#"{"cookie":{"path":"/"},"a":1}"#);
        s.insert("views", 1).unwrap();
        s.insert("a", 2).unwrap();
        // The first conflicting record holds `views: 1` already, not `a: 2`.
        let first = r#"{"cookie":{"path":"/"},"a":1,"views":1}"#;
        s.refresh(Session::from_record(
            SessionId::new("sid"),
            record::decode(first.as_bytes()).unwrap(),
            Arc::from(first.as_bytes()),
        ));
        assert!(s.is_changed(), "a still has to be written");
        // The next one lost `views` again: this side's value comes back.
        let second = r#"{"cookie":{"path":"/"},"a":1,"b":3}"#;
        s.refresh(Session::from_record(
            SessionId::new("sid"),
            record::decode(second.as_bytes()).unwrap(),
            Arc::from(second.as_bytes()),
        ));
        assert_eq!(
            String::from_utf8(s.encode()).unwrap(),
            r#"{"cookie":{"path":"/"},"a":2,"b":3,"views":1}"#
        );
        // A record that holds every change needs no write.
        let third = r#"{"cookie":{"path":"/"},"a":2,"views":1}"#;
        s.refresh(Session::from_record(
            SessionId::new("sid"),
            record::decode(third.as_bytes()).unwrap(),
            Arc::from(third.as_bytes()),
        ));
        assert!(!s.is_changed());
    }

    /// Runs `sent` through a save the store accepts, as a socket's copy
    /// would be saved.
    fn saved(sent: Session) -> Session {
        use crate::machines::Save;
        use crate::{Config, Machine, Now, Reply};
        let config = Arc::new(Config::builder().secret("s").build().unwrap());
        let now = Now::new(std::time::Instant::now(), std::time::SystemTime::now());
        let mut save = Save::new(config, sent, now);
        let request = save.poll_request().expect("a compare-and-set");
        save.handle_reply(request.id(), Reply::Swapped, now.instant);
        save.poll_outcome().unwrap().unwrap()
    }

    #[test]
    fn a_stored_copy_exists_only_without_changes_and_forgets_the_save() {
        let s = loaded(r#"{"cookie":{"path":"/"},"a":1,"b":[2]}"#);
        assert!(s.is_as_stored());
        let copy = s.stored_copy().expect("a loaded session is as stored");
        assert!(copy.is_as_stored() && copy.rests_on_same(&s));
        assert_eq!(copy.data(), s.data());
        assert_eq!(copy.cookie(), s.cookie());
        assert_eq!(copy.id().expose(), "sid");

        let mut changed = s.clone();
        changed.insert("a", 2).unwrap();
        assert!(!changed.is_as_stored());
        assert!(
            changed.stored_copy().is_none(),
            "changes are not the store's"
        );
        // A value set back is no change to save: the data is the record's,
        // yet the copy is not as stored (its change stays listed).
        changed.insert("a", 1).unwrap();
        assert!(!changed.is_changed() && !changed.is_as_stored());
        let copy = changed.stored_copy().expect("the data is the record's");
        assert!(copy.is_as_stored() && copy.data() == s.data());

        changed.insert("b", 3).unwrap();
        let stored = saved(changed);
        assert!(
            !stored.is_as_stored(),
            "a save's outcome remembers its save"
        );
        let copy = stored
            .stored_copy()
            .expect("a save's outcome rests on its record");
        assert!(copy.is_as_stored() && copy.rests_on_same(&stored));
        assert_eq!(copy.data(), stored.data());
        assert!(
            Session::new(SessionId::new("x"), s.cookie().unwrap().clone(), Map::new())
                .stored_copy()
                .is_none()
        );
    }

    #[test]
    fn shrink_to_fit_keeps_data_order_cookie_and_record() {
        let mut s =
            loaded(r#"{"cookie":{"path":"/","httpOnly":true},"z":1,"a":{"k":"v"},"m":null}"#);
        let before = s.clone();
        s.shrink_to_fit();
        assert_eq!(s.data(), before.data());
        assert_eq!(s.data().keys().collect::<Vec<_>>(), ["z", "a", "m"]);
        assert_eq!(s.cookie(), before.cookie());
        assert_eq!(s.encode(), before.encode());
        assert!(s.is_as_stored() && s.rests_on_same(&before));
    }

    #[test]
    fn r25_saved_changes_are_not_reapplied_by_a_later_save() {
        let mut s = loaded(r#"{"cookie":{"path":"/"},"color":"green"}"#);
        s.insert("color", "red").unwrap();
        let stored = saved(s.clone());
        // Changed on this side while the save ran.
        s.insert("x", 1).unwrap();
        s.adopt_saved(&stored);
        assert_eq!(
            s.changed_keys().collect::<Vec<_>>(),
            vec![("x", Some(&Value::from(1)))]
        );
        // Another writer then sets color; the next conflict keeps theirs.
        let theirs = r#"{"cookie":{"path":"/"},"color":"blue"}"#;
        s.refresh(Session::from_record(
            SessionId::new("sid"),
            record::decode(theirs.as_bytes()).unwrap(),
            Arc::from(theirs.as_bytes()),
        ));
        assert_eq!(
            String::from_utf8(s.encode()).unwrap(),
            r#"{"cookie":{"path":"/"},"color":"blue","x":1}"#
        );
    }

    #[test]
    fn r25_a_key_changed_again_after_the_save_was_handed_the_copy_stays_changed() {
        let mut s = loaded(r#"{"cookie":{"path":"/"},"color":"green","n":1}"#);
        s.insert("color", "red").unwrap();
        let stored = saved(s.clone());
        // Changed again, and one change undone, while the save ran.
        s.insert("color", "blue").unwrap();
        s.insert("n", 2).unwrap();
        s.insert("n", 1).unwrap();
        s.adopt_saved(&stored);
        assert_eq!(
            s.changed_keys().collect::<Vec<_>>(),
            vec![("color", Some(&Value::from("blue")))]
        );
        assert_eq!(s.get::<i64>("n").unwrap(), Some(1));
        // A session that did not come from a save was handed nothing: every
        // unsaved change of the copy is kept.
        let mut copy = loaded(r#"{"cookie":{"path":"/"},"a":1}"#);
        copy.insert("a", 2).unwrap();
        let fresh = loaded(r#"{"cookie":{"path":"/"},"a":1,"b":1}"#);
        copy.adopt_saved(&fresh);
        assert_eq!(copy.get::<i64>("a").unwrap(), Some(2));
        assert_eq!(copy.get::<i64>("b").unwrap(), Some(1));
        assert!(copy.is_changed());
    }

    #[test]
    fn r09_refresh_takes_the_fresh_record_and_keeps_unsaved_changes() {
        let mut s = loaded(r#"{"cookie":{"path":"/"},"a":1,"b":1}"#);
        s.insert("a", 2).unwrap();
        s.remove("b");
        let fresh = r#"{"cookie":{"path":"/x"},"a":5,"b":7,"c":1}"#;
        s.refresh(loaded(fresh));
        assert_eq!(
            String::from_utf8(s.encode()).unwrap(),
            r#"{"cookie":{"path":"/x"},"a":2,"c":1}"#
        );
        assert_eq!(s.loaded_bytes().map(|b| &b[..]), Some(fresh.as_bytes()));
        assert!(s.is_changed());
        // Nothing unsaved: the copy becomes the fresh session.
        let mut s = loaded(r#"{"cookie":{"path":"/"},"a":1}"#);
        s.refresh(loaded(fresh));
        assert!(!s.is_changed());
        assert_eq!(s.data(), loaded(fresh).data());
    }

    #[test]
    fn r16_debug_redacts_the_id_and_values() {
        let s = loaded(r#"{"cookie":{},"token":"s3cr3t-value"}"#);
        let d = format!("{s:?}");
        assert!(!d.contains("\"sid\""), "{d}");
        assert!(!d.contains("s3cr3t"), "{d}");
        assert_eq!(
            format!("{:?}", SessionId::new("abc")),
            "SessionId(<redacted>)"
        );
    }
}
