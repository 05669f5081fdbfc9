//! The request's session slot: what one HTTP request holds of its
//! session (the copy it reads and edits, why it has none, the `Set-Cookie`
//! to send), shared by the layer and every [`HttpSession`](super::HttpSession)
//! extracted from the request.

use std::sync::{Arc, Mutex, MutexGuard};

use ::http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value};
use session_sockets_core::Failure;
use session_sockets_core::codec::resolve::resolve_cookie;

use crate::runtime::Runtime;
use crate::{HandshakeError, Session, SessionSockets, WriteError};

/// The request's session slot, shared by the layer and every
/// [`HttpSession`] extracted from the request.
pub(crate) struct Slot<R>(Arc<SlotInner<R>>);

impl<R> Clone for Slot<R> {
    fn clone(&self) -> Self {
        Slot(Arc::clone(&self.0))
    }
}

pub(crate) struct SlotInner<R> {
    sessions: SessionSockets<R>,
    state: Mutex<State>,
}

pub(crate) struct State {
    pub(crate) copy: RequestSession,
    /// Why the request came without a stored session, if it did.
    pub(crate) why: Option<HandshakeError>,
    /// The `Set-Cookie` the response must carry.
    pub(crate) cookie: Option<Redacted>,
}

/// The request's copy of its session.
pub(crate) enum RequestSession {
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
pub(crate) struct Redacted(pub(crate) String);

impl<R> Slot<R> {
    /// The handle the request's session belongs to.
    pub(crate) fn sessions(&self) -> &SessionSockets<R> {
        &self.0.sessions
    }

    pub(crate) fn new(sessions: SessionSockets<R>) -> Self {
        Slot(Arc::new(SlotInner {
            sessions,
            state: Mutex::new(State {
                copy: RequestSession::Unloaded,
                why: None,
                cookie: None,
            }),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
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
    pub(crate) async fn load(
        &self,
        headers: &HeaderMap,
    ) -> Result<(RequestSession, Option<HandshakeError>), HandshakeError> {
        let sessions = &self.0.sessions;
        let lines = headers
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes);
        let sid = match resolve_cookie(sessions.config(), lines) {
            Ok(sid) => sid,
            Err(e) => return Ok((RequestSession::Anonymous(Map::new()), Some(e))),
        };
        match sessions.reload(&sid.to_session_id()).await {
            Ok(session) => Ok((
                RequestSession::Stored {
                    session,
                    written: false,
                },
                None,
            )),
            Err(e) if is_outage(&e) => Err(e),
            Err(e) => Ok((RequestSession::Anonymous(Map::new()), Some(e))),
        }
    }

    /// Stores the request's changes now: a save of the stored session (the
    /// same compare-and-set, conflict rule and adopt step as a socket's
    /// save), or the creation of a new one.
    pub(crate) async fn save(&self) -> Result<(), WriteError> {
        let sessions = &self.0.sessions;
        let work = match &self.lock().copy {
            RequestSession::Stored { session, .. } if session.is_changed() => {
                Work::Save(session.clone())
            }
            RequestSession::Anonymous(data) if !data.is_empty() => Work::Create(data.clone()),
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
                if let RequestSession::Anonymous(now) = &state.copy {
                    for (k, v) in now {
                        if data.get(k) != Some(v) {
                            session.insert_value(k, v.clone());
                        }
                    }
                }
                state.copy = RequestSession::Stored {
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
    pub(crate) fn adopt(&self, saved: &Session) {
        let mut state = self.lock();
        if let RequestSession::Stored { session, written } = &mut state.copy {
            session.adopt_saved(saved);
            *written = true;
        }
    }

    pub(crate) fn clear_cookie(&self) {
        let sessions = &self.0.sessions;
        // It fails only for a config whose cookie settings cannot be
        // written, which `Config::build` refuses.
        if let Ok(c) = sessions.config().removal_cookie(sessions.runtime().wall()) {
            self.lock().cookie = Some(Redacted(c));
        }
    }

    /// The `Set-Cookie` the format's HTTP app sends at the end of a
    /// request that saved the stored session or left it as it was (the
    /// core decides; none for express-session, whose headers come with
    /// creates and touches), unless one is already set.
    pub(crate) fn refresh_cookie(&self) {
        let sessions = &self.0.sessions;
        let mut state = self.lock();
        if state.cookie.is_some() {
            return;
        }
        let RequestSession::Stored { session, written } = &state.copy else {
            return;
        };
        // The seal of a private cookie takes a fresh nonce; without one (no
        // OS randomness) the cookie the browser has stays valid.
        let mut nonce = [0u8; 12];
        if getrandom::fill(&mut nonce).is_err() {
            return;
        }
        let now = sessions.runtime().wall();
        if let Some(c) = sessions
            .config()
            .cookie_after_request(session, *written, nonce, now)
        {
            state.cookie = Some(Redacted(c));
        }
    }
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
