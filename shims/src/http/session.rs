//! [`HttpSession`]: the session of an HTTP request, as an axum extractor.
//! It reads and edits the request's [`Slot`]; the layer decides, after the
//! handler, what to store and which `Set-Cookie` to send.

use ::http::{StatusCode, request::Parts};
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::reply::ClientError;
use super::slot::{Redacted, RequestSession, Slot};
use crate::runtime::Runtime;
use crate::runtime::tokio::Tokio;
use crate::{HandshakeError, Session, SessionId, WriteError};
use session_sockets_core::codec::record::SessionCookie;

/// The session of an HTTP request: the one its cookie names, shared with
/// the sockets (the same store, the same save path), or an anonymous one.
///
/// Extract it in any axum handler behind [`SessionLayer`](super::SessionLayer).
/// Extraction loads the session (so a handler that does not extract it makes
/// no store call); changes made with [`insert`](Self::insert) and
/// [`remove`](Self::remove) are saved by the layer at the end of the
/// request, only if something changed, with the compare-and-set every save
/// uses (R24, R25). Clones share one session.
///
/// ```no_run
/// use session_sockets::http::HttpSession;
///
/// async fn visit(session: HttpSession) -> String {
///     let views = session.get::<u64>("views").ok().flatten().unwrap_or(0) + 1;
///     session.insert("views", views).ok();
///     format!("{views} views")
/// }
/// ```
pub struct HttpSession<R = Tokio> {
    slot: Slot<R>,
}

impl<R> Clone for HttpSession<R> {
    fn clone(&self) -> Self {
        HttpSession {
            slot: self.slot.clone(),
        }
    }
}

impl<R> std::fmt::Debug for HttpSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.slot.lock();
        let mut d = f.debug_struct("HttpSession");
        match &state.copy {
            RequestSession::Stored { session, .. } => d.field("session", session),
            RequestSession::Anonymous(data) => {
                d.field("anonymous_keys", &data.keys().collect::<Vec<_>>())
            }
            RequestSession::Ended => d.field("ended", &true),
            RequestSession::Unloaded => d.field("loaded", &false),
        };
        d.finish_non_exhaustive()
    }
}

impl<S, R> FromRequestParts<S> for HttpSession<R>
where
    S: Send + Sync,
    R: Runtime + Clone,
{
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, SessionRejection> {
        let slot = parts
            .extensions
            .get::<Slot<R>>()
            .cloned()
            .ok_or(SessionRejection::LayerMissing)?;
        if matches!(slot.lock().copy, RequestSession::Unloaded) {
            let (copy, why) = slot
                .load(&parts.headers)
                .await
                .map_err(SessionRejection::Store)?;
            let mut state = slot.lock();
            if matches!(state.copy, RequestSession::Unloaded) {
                state.copy = copy;
                state.why = why;
            }
        }
        Ok(HttpSession { slot })
    }
}

impl<R> HttpSession<R> {
    /// Whether the request has a stored session (it came with a valid
    /// cookie, or this request created one). `false` for an anonymous
    /// session and after [`logout`](Self::logout).
    pub fn is_stored(&self) -> bool {
        matches!(self.slot.lock().copy, RequestSession::Stored { .. })
    }

    /// Why the request came without a stored session (no cookie, a bad
    /// signature, a session that ended, ...), as the socket handshake would
    /// say it; `None` when it came with one. Never holds the cookie or id.
    pub fn error(&self) -> Option<HandshakeError> {
        self.slot.lock().why.clone()
    }

    /// The value under `key`, deserialized; `Ok(None)` if absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        match &self.slot.lock().copy {
            RequestSession::Stored { session, .. } => session.get(key),
            RequestSession::Anonymous(data) => data.get(key).map(T::deserialize).transpose(),
            RequestSession::Ended | RequestSession::Unloaded => Ok(None),
        }
    }

    /// All data, in stored order (empty for an anonymous session).
    pub fn data(&self) -> Map<String, Value> {
        match &self.slot.lock().copy {
            RequestSession::Stored { session, .. } => session.data().clone(),
            RequestSession::Anonymous(data) => data.clone(),
            RequestSession::Ended | RequestSession::Unloaded => Map::new(),
        }
    }

    /// The user axum-login keeps in a tower-sessions session (its
    /// `axum-login.data` entry's `user_id`), as your `AuthUser::Id`:
    /// `Ok(None)` when no one is logged in. See
    /// [`Session::axum_login_user_id`].
    pub fn axum_login_user_id<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        match &self.slot.lock().copy {
            RequestSession::Stored { session, .. } => session.axum_login_user_id(),
            _ => Ok(None),
        }
    }

    /// Reads the stored session; `None` when there is none.
    pub fn with<T>(&self, f: impl FnOnce(&Session) -> T) -> Option<T> {
        match &self.slot.lock().copy {
            RequestSession::Stored { session, .. } => Some(f(session)),
            _ => None,
        }
    }

    /// Sets `key` to `value`. Stored at the end of the request (a new
    /// session is created, with its cookie, if there was none). `cookie` is
    /// not a data key (express-session keeps its cookie there) and is
    /// ignored.
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(value)?;
        let mut state = self.slot.lock();
        match &mut state.copy {
            RequestSession::Stored { session, .. } => {
                session.insert_value(key, value);
            }
            RequestSession::Anonymous(data) => {
                if key != "cookie" {
                    data.insert(key.to_owned(), value);
                }
            }
            copy @ (RequestSession::Ended | RequestSession::Unloaded) => {
                let mut data = Map::new();
                if key != "cookie" {
                    data.insert(key.to_owned(), value);
                }
                *copy = RequestSession::Anonymous(data);
            }
        }
        Ok(())
    }

    /// Removes `key`, returning its value. Stored at the end of the request.
    pub fn remove(&self, key: &str) -> Option<Value> {
        match &mut self.slot.lock().copy {
            RequestSession::Stored { session, .. } => session.remove(key),
            RequestSession::Anonymous(data) => data.shift_remove(key),
            RequestSession::Ended | RequestSession::Unloaded => None,
        }
    }
}

impl<R: Runtime + Clone> HttpSession<R> {
    /// Stores the changes now instead of at the end of the request (no
    /// store call if nothing changed).
    pub async fn save(&self) -> Result<(), WriteError> {
        self.slot.save().await
    }

    /// Applies `update` to the session and saves it now; if another writer
    /// (a socket, another request, another server) saved first, `update`
    /// runs again on the record as it is now, so read-modify-write changes
    /// such as counters never lose an increment. Returns what `update`
    /// returned on the stored record (this call's own result, even when the
    /// write was grouped with others). Without a stored session, creates one
    /// holding the update's result.
    ///
    /// ```no_run
    /// # async fn demo(session: session_sockets::http::HttpSession) -> Result<(), session_sockets::WriteError> {
    /// let n: i64 = session
    ///     .update(|s| {
    ///         let n = s.get::<i64>("counter").ok().flatten().unwrap_or(0) + 1;
    ///         let _ = s.insert("counter", n);
    ///         n
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn update<F, T>(&self, mut update: F) -> Result<T, WriteError>
    where
        F: FnMut(&mut Session) -> T + Send + 'static,
        T: Send + 'static,
    {
        let sessions = &self.slot.sessions();
        let stored = match &self.slot.lock().copy {
            RequestSession::Stored { session, .. } => Some(session.clone()),
            _ => None,
        };
        match stored {
            Some(sent) => {
                let (saved, value) = sessions.update(sent, update).await?;
                self.slot.adopt(&saved);
                Ok(value)
            }
            None => {
                let mut fresh =
                    Session::new(SessionId::new(""), SessionCookie::new(None, 0), self.data());
                let value = update(&mut fresh);
                let created = sessions.create(fresh.data().clone()).await?;
                let mut state = self.slot.lock();
                state.copy = RequestSession::Stored {
                    session: created.session,
                    written: true,
                };
                state.cookie = Some(Redacted(created.set_cookie));
                Ok(value)
            }
        }
    }

    /// Signs in: the request gets a new session holding `data` with a fresh
    /// id, every time (R11, against session fixation). The old session, if
    /// any, is destroyed and (with socket.io attached to the layer) its
    /// sockets are disconnected. The layer sends the new cookie.
    ///
    /// On an error nothing changed for the client: its old session, if
    /// any, may still be valid, so treat the login as failed (`503`).
    pub async fn login<I, K, V>(&self, data: I) -> Result<(), WriteError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Value>,
    {
        let data: Map<String, Value> = data
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k != "cookie")
            .collect();
        self.renew(Some(data)).await
    }

    /// A new id for the same data (R11: on any privilege change without a
    /// new login). The old record is destroyed and its sockets
    /// disconnected; the layer sends the new cookie. Without a stored
    /// session, stores the request's data as a new one.
    pub async fn regenerate(&self) -> Result<(), WriteError> {
        self.renew(None).await
    }

    async fn renew(&self, data: Option<Map<String, Value>>) -> Result<(), WriteError> {
        let sessions = &self.slot.sessions();
        let (old, data) = {
            let state = self.slot.lock();
            match &state.copy {
                RequestSession::Stored { session, .. } => {
                    let data = data.unwrap_or_else(|| session.data().clone());
                    (Some(session.clone()), data)
                }
                RequestSession::Anonymous(d) => (None, data.unwrap_or_else(|| d.clone())),
                RequestSession::Ended | RequestSession::Unloaded => {
                    (None, data.unwrap_or_default())
                }
            }
        };
        let created = match old {
            Some(mut old) => {
                // The new record holds `data`, not the old session's.
                let keys: Vec<String> = old.data().keys().cloned().collect();
                for k in keys {
                    old.remove(&k);
                }
                for (k, v) in data {
                    old.insert_value(&k, v);
                }
                // Ends the old session's sockets too.
                sessions.regenerate(old, true).await?
            }
            None => sessions.create(data).await?,
        };
        let mut state = self.slot.lock();
        state.copy = RequestSession::Stored {
            session: created.session,
            written: true,
        };
        state.cookie = Some(Redacted(created.set_cookie));
        Ok(())
    }

    /// Signs out: destroys the session in the store, disconnects its
    /// sockets (with socket.io attached to the layer) and clears the cookie.
    ///
    /// If the destroy fails (the store is down), the error says so and the
    /// session is still valid: answer `503` and let the user retry. A logout
    /// never reports success while the session still exists (R31).
    pub async fn logout(&self) -> Result<(), WriteError> {
        let sessions = &self.slot.sessions();
        let id = match &self.slot.lock().copy {
            RequestSession::Stored { session, .. } => Some(session.id().clone()),
            _ => None,
        };
        if let Some(id) = id {
            // Ends the session's sockets too.
            sessions.destroy(&id).await?;
        }
        self.slot.lock().copy = RequestSession::Ended;
        self.slot.clear_cookie();
        Ok(())
    }
}

/// Why [`HttpSession`] could not be extracted. As a response: `500` when
/// the layer is missing, `503` when the store failed (the request is not
/// served without its session: fail closed, R23), with a `text/plain`
/// body `reason: hint` that says nothing of the server's insides (R35), or
/// JSON under [`SessionLayer::json_errors_under`](super::SessionLayer::json_errors_under).
/// [`Display`](std::fmt::Display) is the operator's message.
///
/// To answer otherwise, take `Result<HttpSession, SessionRejection>` in the
/// handler and use [`status`](Self::status), [`reason`](Self::reason) and
/// [`hint`](Self::hint).
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No [`SessionLayer`](super::SessionLayer) in front of the handler.
    LayerMissing,
    /// The store failed or did not answer in time.
    Store(HandshakeError),
}

impl std::fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionRejection::LayerMissing => f.write_str(
                "HttpSession needs the SessionLayer in front of this route: add \
                 `.layer(SessionLayer::new(sessions))` to the router, after its routes",
            ),
            SessionRejection::Store(e) => write!(f, "{}: {e}", e.reason()),
        }
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionRejection::Store(e) => Some(e),
            SessionRejection::LayerMissing => None,
        }
    }
}

impl SessionRejection {
    /// The status to answer with: `500` when the layer is missing, `503`
    /// when the store failed.
    pub fn status(&self) -> StatusCode {
        match self {
            SessionRejection::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
            SessionRejection::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable code: `session_layer_missing`, or the store failure's
    /// ([`HandshakeError::reason`]: `store_error`, `timeout`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            SessionRejection::LayerMissing => "session_layer_missing",
            SessionRejection::Store(e) => e.reason(),
        }
    }

    /// A short hint for the person at the browser (R35).
    pub fn hint(&self) -> &'static str {
        match self {
            SessionRejection::LayerMissing => {
                "The server cannot handle sessions on this page: please try again later."
            }
            SessionRejection::Store(e) => e.hint(),
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        if let SessionRejection::LayerMissing = self {
            // A mistake in the application, not in the request: say it
            // where its developer looks.
            tracing::error!(reason = self.reason(), "{self}");
        }
        ClientError {
            reason: self.reason(),
            hint: self.hint(),
        }
        .reply(self.status(), false)
    }
}
