//! [`LiveSession`]: a connection's copy of its session that follows the
//! store ([R32]): refreshed when another writer changes it, ended (the
//! connection is told, through the callback it gave) when it is destroyed
//! or expires, wherever that happens.
//!
//! The socket.io integration builds its [`SocketSession`](crate::socketio::SocketSession)
//! on it; a plain WebSocket server uses it directly:
//!
//! ```no_run
//! # async fn demo(sessions: session_sockets::SessionSockets<session_sockets::runtime::tokio::Tokio>, headers: http::HeaderMap) {
//! let live = sessions
//!     .live_session(&headers, |why| eprintln!("close the connection: {why}"))
//!     .await;
//! match live {
//!     Ok(session) => {
//!         let user = session.with(|s| s.get::<String>("user")).ok().flatten();
//!         # let _ = user;
//!     }
//!     Err(e) => eprintln!("refuse the connection: {e}"),
//! }
//! # }
//! ```
//!
//! [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::live::hub::{Follower, SessionEnd, interchangeable};
use crate::runtime::Runtime;
use crate::{HandshakeError, Session, SessionId, SessionSockets, WriteError};

/// A connection's copy of its session, following the store. Clones share
/// one copy. Changes stay on the copy until [`save`](Self::save) or
/// [`update`](Self::update); both write through the handle's write queue
/// (the same path as HTTP requests' saves).
pub struct LiveSession<R> {
    inner: Arc<Inner<R>>,
}

/// What a connection asked to be told when its session ends.
type OnEnd = dyn Fn(SessionEnd) + Send + Sync;

/// One connection's state. `on_end` is kept inline, last, so that the
/// closure (usually one pointer) shares the allocation; `Inner<R>` is the
/// unsized form every `LiveSession` holds.
struct Inner<R, F: ?Sized = OnEnd> {
    sessions: SessionSockets<R>,
    id: SessionId,
    /// This connection's copy: shared with the hub and the session's other
    /// connections while it has no change of its own, its own from the
    /// first change on (copy on write).
    session: Mutex<Arc<Session>>,
    on_end: F,
}

impl<R: Runtime, F: Fn(SessionEnd) + Send + Sync> Follower for Inner<R, F> {
    fn refresh(&self, fresh: &Arc<Session>) {
        let mut copy = lock(&self.session);
        if copy.rests_on_same(fresh) {
            // Already on that record: at most take the shared copy.
            if interchangeable(&copy, fresh) {
                *copy = Arc::clone(fresh);
            }
            return;
        }
        if copy.is_as_stored() && fresh.is_as_stored() {
            // What refreshing an unchanged copy would make: `fresh` itself.
            *copy = Arc::clone(fresh);
        } else {
            Arc::make_mut(&mut copy).refresh(Session::clone(fresh));
        }
    }

    fn share(&self, loaded: &Arc<Session>, shared: &Arc<Session>) {
        let mut copy = lock(&self.session);
        if Arc::ptr_eq(&copy, loaded) {
            *copy = Arc::clone(shared);
        }
    }

    fn end(&self, why: SessionEnd) {
        (self.on_end)(why);
    }
}

/// The connection is gone: the hub forgets it at once (its counts and
/// gauges stay exact); nothing else removes a follower that left.
impl<R, F: ?Sized> Drop for Inner<R, F> {
    fn drop(&mut self) {
        // The address the hub knows this follower by (`hub::address` of
        // the `Weak` it holds, which points here).
        let at = std::ptr::from_ref(self).cast::<()>().addr();
        self.sessions.hub().unfollow(&self.id, at);
    }
}

fn lock(m: &Mutex<Arc<Session>>) -> MutexGuard<'_, Arc<Session>> {
    // A panic in a user closure while holding the lock leaves the session
    // as it was mid-change; it is still a valid session.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<R> Clone for LiveSession<R> {
    fn clone(&self) -> Self {
        LiveSession {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R> fmt::Debug for LiveSession<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LiveSession")
            .field(&*lock(&self.inner.session))
            .finish()
    }
}

impl<R: Runtime> SessionSockets<R> {
    /// The session of a connection whose handshake request carried
    /// `headers`, as [`session`](Self::session) finds it (`Origin`, cookie,
    /// signature, load), and from then on kept in step with the store:
    /// another writer's change refreshes the copy (keeping its unsaved
    /// changes), and `on_end` is called once when the session is destroyed
    /// or expires, on this server or any other (with a store that reports
    /// events, [`Store::subscribe`](crate::store::Store::subscribe)). A session
    /// that ends while the handshake loads it is refused
    /// ([`HandshakeError::SessionNotFound`]), so no connection outlives its
    /// session ([R32]).
    ///
    /// `on_end` runs on the handle's event task: close the connection (or
    /// send it a message), quickly, without blocking.
    ///
    /// [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32
    pub async fn live_session(
        &self,
        headers: &http::HeaderMap,
        on_end: impl Fn(SessionEnd) + Send + Sync + 'static,
    ) -> Result<LiveSession<R>, HandshakeError> {
        let (outcome, watch) = self.watched_session(headers).await;
        let mut session = outcome?;
        session.shrink_to_fit();
        let session = Arc::new(session);
        let inner = Arc::new(Inner {
            sessions: self.clone(),
            id: session.id().clone(),
            session: Mutex::new(Arc::clone(&session)),
            on_end,
        });
        let weak = Arc::downgrade(&inner);
        let follower: std::sync::Weak<dyn Follower> = weak;
        let inner: Arc<Inner<R>> = inner;
        if let Some(watch) = watch
            && !self.follow(watch, follower, &session)
        {
            // It ended while the handshake loaded it.
            return Err(HandshakeError::SessionNotFound);
        }
        Ok(LiveSession { inner })
    }
}

impl<R> LiveSession<R> {
    fn lock(&self) -> MutexGuard<'_, Arc<Session>> {
        lock(&self.inner.session)
    }

    /// The session id (redacted in `Debug`; never log it).
    pub fn id(&self) -> &SessionId {
        &self.inner.id
    }

    /// The value under `key`, deserialized; `Ok(None)` if absent (the same
    /// verb as `HttpSession::get`).
    pub fn get<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, serde_json::Error> {
        self.with(|s| s.get(key))
    }

    /// The user axum-login keeps in a tower-sessions session (its
    /// `axum-login.data` entry's `user_id`), as your `AuthUser::Id`:
    /// `Ok(None)` when no one is logged in; it follows the store, so a
    /// logout or a login as someone else on the HTTP side shows here. See
    /// [`Session::axum_login_user_id`].
    ///
    /// ```no_run
    /// # #[cfg(feature = "socketioxide")]
    /// # async fn on_connect(socket: socketioxide::extract::SocketRef, session: session_sockets::socketio::SocketSession) {
    /// let user: Option<i64> = session.axum_login_user_id().ok().flatten();
    /// socket.emit("welcome", &user).ok();
    /// # }
    /// ```
    pub fn axum_login_user_id<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<Option<T>, serde_json::Error> {
        self.with(|s| s.axum_login_user_id())
    }

    /// All data, in stored order.
    pub fn data(&self) -> serde_json::Map<String, serde_json::Value> {
        self.with(|s| s.data().clone())
    }

    /// Sets `key` to `value` on this copy; [`save`](Self::save) writes it.
    /// `cookie` is not a data key (express-session keeps its cookie there)
    /// and is ignored.
    pub fn insert<T: serde::Serialize>(
        &self,
        key: &str,
        value: T,
    ) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(value)?;
        self.with_mut(|s| s.insert_value(key, value));
        Ok(())
    }

    /// Removes `key` from this copy, returning its value;
    /// [`save`](Self::save) writes it.
    pub fn remove(&self, key: &str) -> Option<serde_json::Value> {
        self.with_mut(|s| s.remove(key))
    }

    /// Reads the session: `session.with(|s| s.get::<String>("user"))`.
    pub fn with<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
        f(&self.lock())
    }

    /// Changes the copy (not yet in the store: call [`save`](Self::save)):
    /// `session.with_mut(|s| s.insert("foo", "bar"))`.
    pub fn with_mut<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        f(Arc::make_mut(&mut self.lock()))
    }

    /// Takes the hub's copy in place of this one when they are the same
    /// session as stored (after this copy's own save or reload), so that the
    /// session's connections share one copy again.
    fn reshare(&self) {
        let copy = Arc::clone(&self.lock());
        if let Some(shared) = self.inner.sessions.hub().shareable(&self.inner.id, &copy) {
            let mut now = self.lock();
            // Unless a refresh came in between.
            if Arc::ptr_eq(&now, &copy) {
                *now = shared;
            }
        }
    }

    /// A copy of the session as this connection sees it now.
    pub fn snapshot(&self) -> Session {
        Session::clone(&self.lock())
    }
}

impl<R: Runtime> LiveSession<R> {
    /// Writes this copy's changes to the store, so that HTTP routes see
    /// them (session.socket.io's `session.save()`). Does nothing when
    /// nothing changed. Only the keys this copy changed are written, onto
    /// the record as it is now ([R25]). Fails with [`WriteError::Gone`] when
    /// the session was destroyed meanwhile: it is not recreated ([R24]).
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    /// [R25]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r25
    pub async fn save(&self) -> Result<(), WriteError> {
        let snapshot = self.snapshot();
        if !snapshot.is_changed() {
            return Ok(());
        }
        let saved = self.inner.sessions.save(snapshot).await?;
        Arc::make_mut(&mut self.lock()).adopt_saved(&saved);
        self.reshare();
        Ok(())
    }

    /// Applies `update` to the session and saves it, with this copy's other
    /// unsaved changes; if another writer changed the record first, `update`
    /// runs again on the record as it is now (a read-modify-write that
    /// composes, such as a counter). Returns what `update` returned on the
    /// stored record: this call's own result, even when the write was
    /// grouped with others (see [`SessionSockets::save`]).
    pub async fn update<F, T>(&self, update: F) -> Result<T, WriteError>
    where
        F: FnMut(&mut Session) -> T + Send + 'static,
        T: Send + 'static,
    {
        let sent = self.snapshot();
        let (saved, value) = self.inner.sessions.update(sent, update).await?;
        Arc::make_mut(&mut self.lock()).adopt_saved(&saved);
        self.reshare();
        Ok(value)
    }

    /// Loads the session again from the store and makes it this copy
    /// (session.socket.io's `getSession`; with a store that reports events
    /// the copy follows by itself, [R9]). Unsaved changes are dropped.
    /// Returns a copy.
    ///
    /// [R9]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r9
    pub async fn reload(&self) -> Result<Session, HandshakeError> {
        let fresh = self.inner.sessions.reload(&self.inner.id).await?;
        *self.lock() = Arc::new(fresh.clone());
        self.reshare();
        Ok(fresh)
    }

    /// Destroys the session in the store (a logout): every connection of
    /// it, this one included, is ended through its `on_end`.
    pub async fn destroy(&self) -> Result<(), WriteError> {
        self.inner.sessions.destroy(&self.inner.id).await
    }
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::runtime::tokio::Tokio;
    use crate::{Config, MemoryStore};

    /// The handshake headers of a new session holding `{"user": "ada"}`.
    async fn signed_in(sockets: &SessionSockets<Tokio>) -> http::HeaderMap {
        let data = serde_json::Map::from_iter([("user".to_owned(), "ada".into())]);
        let created = sockets.create(data).await.unwrap();
        let pair = created.set_cookie.split(';').next().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, pair.parse().unwrap());
        headers
    }

    fn shared(a: &LiveSession<Tokio>, b: &LiveSession<Tokio>) -> bool {
        Arc::ptr_eq(&a.lock(), &b.lock())
    }

    fn draft(s: &LiveSession<Tokio>) -> Option<i64> {
        s.with(|s| s.get::<i64>("draft").unwrap())
    }

    /// The verbs of `HttpSession`: `get`, `insert`, `remove`, `data`; the
    /// changes are this copy's until `save`.
    #[tokio::test]
    async fn the_same_verbs_as_http_then_save() {
        let config = Config::builder().secret("s").build().unwrap();
        let sockets = SessionSockets::new(config, MemoryStore::new());
        let headers = signed_in(&sockets).await;
        let a = sockets.live_session(&headers, |_| {}).await.unwrap();
        assert_eq!(a.get::<String>("user").unwrap().as_deref(), Some("ada"));
        assert_eq!(a.get::<i64>("n").unwrap(), None);
        a.insert("n", 1).unwrap();
        a.insert("cookie", 5).unwrap();
        assert_eq!(a.get::<i64>("n").unwrap(), Some(1));
        assert_eq!(a.remove("user"), Some(serde_json::json!("ada")));
        assert_eq!(
            sockets
                .session(&headers)
                .await
                .unwrap()
                .get::<String>("user")
                .unwrap()
                .as_deref(),
            Some("ada"),
            "not stored before save"
        );
        a.save().await.unwrap();
        let stored = sockets.session(&headers).await.unwrap();
        assert_eq!(stored.data(), &a.data());
        assert_eq!(a.data().keys().collect::<Vec<_>>(), ["n"]);
    }

    #[tokio::test]
    async fn the_sockets_of_a_session_share_one_copy_until_one_changes_it() {
        let config = Config::builder().secret("s").build().unwrap();
        let sockets = SessionSockets::new(config, MemoryStore::new());
        let headers = signed_in(&sockets).await;
        let a = sockets.live_session(&headers, |_| {}).await.unwrap();
        let b = sockets.live_session(&headers, |_| {}).await.unwrap();
        assert!(shared(&a, &b), "one copy for both sockets");

        // Copy on write: a's unsaved change is a's alone.
        a.with_mut(|s| s.insert("draft", 1)).unwrap();
        assert!(!shared(&a, &b));
        assert_eq!(draft(&a), Some(1));
        assert_eq!(draft(&b), None, "b does not see a's unsaved change");

        // Once saved, b follows (refreshed from the hub's copy, no reload)
        // and a later socket shares that copy too.
        a.save().await.unwrap();
        assert_eq!(draft(&b), Some(1));
        let c = sockets.live_session(&headers, |_| {}).await.unwrap();
        assert!(shared(&b, &c));
        assert_eq!(draft(&c), Some(1));

        // A change on b leaves c's shared copy as it was.
        b.with_mut(|s| s.insert("draft", 2)).unwrap();
        assert_eq!((draft(&b), draft(&c)), (Some(2), Some(1)));

        // The writer shares again once its save is stored.
        b.save().await.unwrap();
        assert!(shared(&a, &b) && shared(&b, &c), "one copy after b's save");
        assert_eq!(
            (draft(&a), draft(&b), draft(&c)),
            (Some(2), Some(2), Some(2))
        );
    }

    /// A keep-alive touch refreshes the hub's cookie but not the stored
    /// record's `expires` (connect-redis's touch): a later socket must see
    /// the record, as an HTTP request with the same headers does.
    #[tokio::test]
    async fn after_a_touch_a_new_socket_sees_what_the_http_app_sees() {
        let config = Config::builder()
            .secret("s")
            .cookie(session_sockets_core::CookieOptions {
                max_age: Some(std::time::Duration::from_secs(3600)),
                ..session_sockets_core::CookieOptions::default()
            })
            .build()
            .unwrap();
        let sockets = SessionSockets::new(config, MemoryStore::new());
        let headers = signed_in(&sockets).await;
        let a = sockets.live_session(&headers, |_| {}).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let touched = sockets.touch(a.snapshot()).await.unwrap();
        sockets.hub().touched(&touched.session);
        let expires = |s: &Session| s.cookie().and_then(|c| c.expires_ms());
        assert_ne!(expires(&touched.session), expires(&a.snapshot()));

        let b = sockets.live_session(&headers, |_| {}).await.unwrap();
        let http = sockets.session(&headers).await.unwrap();
        assert_eq!(expires(&b.snapshot()), expires(&http));
        assert_eq!(b.snapshot().cookie(), http.cookie());
    }

    /// A handshake that loaded a record this process has since replaced
    /// ends on the record as stored now.
    #[tokio::test]
    async fn a_socket_that_loaded_an_older_record_catches_up() {
        let config = Config::builder().secret("s").build().unwrap();
        let sockets = SessionSockets::new(config, MemoryStore::new());
        let headers = signed_in(&sockets).await;
        let a = sockets.live_session(&headers, |_| {}).await.unwrap();
        let id = a.id().clone();

        // A handshake registers and loads the record...
        let watch = sockets.hub().watch(id.clone());
        let old = Arc::new(sockets.session(&headers).await.unwrap());
        // ...then this process writes a newer one before it follows.
        a.with_mut(|s| s.insert("draft", 7)).unwrap();
        a.save().await.unwrap();
        let late = Arc::new(Inner {
            sessions: sockets.clone(),
            id: id.clone(),
            session: Mutex::new(Arc::clone(&old)),
            on_end: |_: SessionEnd| {},
        });
        let weak = Arc::downgrade(&late);
        let weak: std::sync::Weak<dyn Follower> = weak;
        assert!(sockets.follow(watch, weak, &old));
        let late: Arc<Inner<Tokio>> = late;
        let late = LiveSession { inner: late };

        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while draft(&late).is_none() && std::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(draft(&late), Some(7), "the late socket caught up");
        assert!(shared(&a, &late) || a.snapshot().rests_on_same(&late.snapshot()));
    }
}
