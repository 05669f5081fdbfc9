//! [`HttpSession`]: the session of an HTTP request, as an axum extractor.

use std::sync::{Arc, Mutex, MutexGuard};

use ::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use session_sockets_core::record::SessionCookie;
use session_sockets_core::{Failure, clear_cookie_header, resolve_cookie};

use super::layer::{ClientError, Shared};
use crate::runtime::Runtime;
use crate::runtime::tokio::Tokio;
use crate::{HandshakeError, Session, SessionId, WriteError};

/// The request's session slot, shared by the layer and every
/// [`HttpSession`] extracted from the request.
pub(crate) struct Slot<R>(Arc<SlotInner<R>>);

impl<R> Clone for Slot<R> {
    fn clone(&self) -> Self {
        Slot(Arc::clone(&self.0))
    }
}

pub(crate) struct SlotInner<R> {
    shared: Arc<Shared<R>>,
    state: Mutex<State>,
}

struct State {
    copy: Copy,
    /// Why the request came without a stored session, if it did.
    why: Option<HandshakeError>,
    /// The `Set-Cookie` the response must carry.
    cookie: Option<Redacted>,
}

/// The request's copy of its session.
enum Copy {
    /// No handler asked for the session: the layer does nothing.
    Unloaded,
    /// No stored session (no cookie, or one that resolves to none). Data
    /// inserted here is stored as a new session at the end of the request.
    Anonymous(Map<String, Value>),
    /// The stored session. `written`: saved, created or regenerated during
    /// this request (then it is not touched again at the end).
    Stored { session: Session, written: bool },
    /// Logged out during this request.
    Ended,
}

/// A `Set-Cookie` value: it holds the signed id, so `Debug` is redacted.
struct Redacted(String);

impl<R> Slot<R> {
    pub(crate) fn new(shared: Arc<Shared<R>>) -> Self {
        Slot(Arc::new(SlotInner {
            shared,
            state: Mutex::new(State {
                copy: Copy::Unloaded,
                why: None,
                cookie: None,
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation below leaves the state consistent; a panic in a
        // user closure elsewhere cannot leave it half written.
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: Runtime + Clone> Slot<R> {
    /// Resolves the request's session cookie exactly as express-session
    /// does and loads the session. A cookie that names no session is an
    /// anonymous session; a store failure is an error (fail closed, R23).
    async fn load(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Copy, Option<HandshakeError>), HandshakeError> {
        let sessions = &self.0.shared.sessions;
        let lines = headers
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes);
        let sid = match resolve_cookie(sessions.config(), lines) {
            Ok(sid) => sid,
            Err(e) => return Ok((Copy::Anonymous(Map::new()), Some(e))),
        };
        match sessions.reload(&sid.to_session_id()).await {
            Ok(session) => Ok((
                Copy::Stored {
                    session,
                    written: false,
                },
                None,
            )),
            Err(e) if is_outage(&e) => Err(e),
            Err(e) => Ok((Copy::Anonymous(Map::new()), Some(e))),
        }
    }

    /// After the handler: saves a changed session, creates a new one,
    /// touches an unchanged one, and writes the `Set-Cookie`.
    pub(crate) async fn finish(&self, mut res: Response<Body>, json: bool) -> Response<Body> {
        let plan = match &self.lock().copy {
            Copy::Stored { session, .. } if session.is_changed() => Plan::Save,
            Copy::Stored {
                session,
                written: false,
            } => Plan::Touch(Box::new(session.clone())),
            Copy::Anonymous(data) if !data.is_empty() => Plan::Save,
            _ => Plan::Nothing,
        };
        match plan {
            Plan::Nothing => {}
            Plan::Save => {
                if let Err(e) = self.save().await {
                    res = unsaved(&e, json || is_json(&res));
                    if matches!(e, WriteError::Gone | WriteError::Expired) {
                        self.clear_cookie();
                    }
                }
            }
            Plan::Touch(session) => {
                // A failed touch leaves the session as it was; a read-only
                // request still succeeds.
                if let Ok(touched) = self.0.shared.sessions.touch(*session).await
                    && let Some(cookie) = touched.set_cookie
                {
                    self.lock().cookie = Some(Redacted(cookie));
                }
            }
        }
        if let Some(Redacted(cookie)) = self.lock().cookie.take()
            && let Ok(v) = HeaderValue::from_str(&cookie)
        {
            // The core writes only valid cookie values (R3), so this parse
            // does not fail.
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        res
    }

    /// Stores the request's changes now: a save of the stored session (the
    /// same compare-and-set, conflict rule and adopt step as a socket's
    /// save), or the creation of a new one.
    async fn save(&self) -> Result<(), WriteError> {
        let sessions = &self.0.shared.sessions;
        let work = match &self.lock().copy {
            Copy::Stored { session, .. } if session.is_changed() => Work::Save(session.clone()),
            Copy::Anonymous(data) if !data.is_empty() => Work::Create(data.clone()),
            _ => return Ok(()),
        };
        match work {
            Work::Save(sent) => {
                let saved = sessions.save(sent).await?;
                self.adopt(&saved);
            }
            Work::Create(data) => {
                let created = sessions.create(data.clone()).await?;
                let mut state = self.lock();
                // What was inserted while the create ran stays a change.
                let mut session = created.session;
                if let Copy::Anonymous(now) = &state.copy {
                    for (k, v) in now {
                        if data.get(k) != Some(v) {
                            session.insert_value(k, v.clone());
                        }
                    }
                }
                state.copy = Copy::Stored {
                    session,
                    written: true,
                };
                state.cookie = Some(Redacted(created.set_cookie));
            }
        }
        Ok(())
    }

    /// The copy becomes the stored session plus what changed on it while
    /// the save ran.
    fn adopt(&self, saved: &Session) {
        let mut state = self.lock();
        if let Copy::Stored { session, written } = &mut state.copy {
            session.adopt_saved(saved);
            *written = true;
        }
    }

    fn clear_cookie(&self) {
        // `clear_cookie` fails only for a config whose cookie settings
        // cannot be written, which `Config::build` refuses.
        if let Ok(c) = clear_cookie_header(self.0.shared.sessions.config()) {
            self.lock().cookie = Some(Redacted(c));
        }
    }
}

enum Plan {
    Nothing,
    Save,
    Touch(Box<Session>),
}

enum Work {
    Save(Session),
    Create(Map<String, Value>),
}

/// Whether a load failed because of the store (rather than because the
/// cookie names no valid session).
fn is_outage(e: &HandshakeError) -> bool {
    e.fault().needs_operator() && !matches!(e, HandshakeError::Failed(Failure::MalformedRecord(_)))
}

/// The response for a request whose changes could not be stored, in
/// place of the handler's: `401` when the session ended meanwhile, `503`
/// otherwise. The body holds the reason code and a hint, never the
/// store's message (R35; the operation logged that): JSON
/// `{"error": reason, "message": hint}` when the handler answered JSON,
/// `reason: hint` text otherwise.
fn unsaved(e: &WriteError, json: bool) -> Response<Body> {
    let status = match e {
        WriteError::Gone | WriteError::Expired => StatusCode::UNAUTHORIZED,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    ClientError {
        reason: e.reason(),
        hint: e.hint(),
    }
    .reply(status, json)
}

/// Whether `res` is a JSON response.
fn is_json(res: &Response<Body>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
}

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
            Copy::Stored { session, .. } => d.field("session", session),
            Copy::Anonymous(data) => d.field("anonymous_keys", &data.keys().collect::<Vec<_>>()),
            Copy::Ended => d.field("ended", &true),
            Copy::Unloaded => d.field("loaded", &false),
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
        if matches!(slot.lock().copy, Copy::Unloaded) {
            let (copy, why) = slot
                .load(&parts.headers)
                .await
                .map_err(SessionRejection::Store)?;
            let mut state = slot.lock();
            if matches!(state.copy, Copy::Unloaded) {
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
        matches!(self.slot.lock().copy, Copy::Stored { .. })
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
            Copy::Stored { session, .. } => session.get(key),
            Copy::Anonymous(data) => data.get(key).map(T::deserialize).transpose(),
            Copy::Ended | Copy::Unloaded => Ok(None),
        }
    }

    /// All data, in stored order (empty for an anonymous session).
    pub fn data(&self) -> Map<String, Value> {
        match &self.slot.lock().copy {
            Copy::Stored { session, .. } => session.data().clone(),
            Copy::Anonymous(data) => data.clone(),
            Copy::Ended | Copy::Unloaded => Map::new(),
        }
    }

    /// Reads the stored session; `None` when there is none.
    pub fn with<T>(&self, f: impl FnOnce(&Session) -> T) -> Option<T> {
        match &self.slot.lock().copy {
            Copy::Stored { session, .. } => Some(f(session)),
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
            Copy::Stored { session, .. } => {
                session.insert_value(key, value);
            }
            Copy::Anonymous(data) => {
                if key != "cookie" {
                    data.insert(key.to_owned(), value);
                }
            }
            copy @ (Copy::Ended | Copy::Unloaded) => {
                let mut data = Map::new();
                if key != "cookie" {
                    data.insert(key.to_owned(), value);
                }
                *copy = Copy::Anonymous(data);
            }
        }
        Ok(())
    }

    /// Removes `key`, returning its value. Stored at the end of the request.
    pub fn remove(&self, key: &str) -> Option<Value> {
        match &mut self.slot.lock().copy {
            Copy::Stored { session, .. } => session.remove(key),
            Copy::Anonymous(data) => data.shift_remove(key),
            Copy::Ended | Copy::Unloaded => None,
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
        let sessions = &self.slot.0.shared.sessions;
        let stored = match &self.slot.lock().copy {
            Copy::Stored { session, .. } => Some(session.clone()),
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
                state.copy = Copy::Stored {
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
        let sessions = &self.slot.0.shared.sessions;
        let (old, data) = {
            let state = self.slot.lock();
            match &state.copy {
                Copy::Stored { session, .. } => {
                    let data = data.unwrap_or_else(|| session.data().clone());
                    (Some(session.clone()), data)
                }
                Copy::Anonymous(d) => (None, data.unwrap_or_else(|| d.clone())),
                Copy::Ended | Copy::Unloaded => (None, data.unwrap_or_default()),
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
        state.copy = Copy::Stored {
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
        let sessions = &self.slot.0.shared.sessions;
        let id = match &self.slot.lock().copy {
            Copy::Stored { session, .. } => Some(session.id().clone()),
            _ => None,
        };
        if let Some(id) = id {
            // Ends the session's sockets too.
            sessions.destroy(&id).await?;
        }
        self.slot.lock().copy = Copy::Ended;
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
