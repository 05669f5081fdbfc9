//! Creating sessions: [`Create`] (insert-only, R24) and [`Regenerate`]
//! (a new id for the same user, the old one destroyed, R11).
//!
//! ```text
//! Create::new(config, data, now)
//!   poll_request()  -> Request::Random { len: 24 }
//!   handle_reply(id, Random(bytes), now)
//!   poll_request()  -> Request::Create { key, value, ttl_secs }   SET NX EX
//!   handle_reply(id, Created, now)      -> Ok(Created { session, set_cookie })
//!   handle_reply(id, Exists, now)       -> Request::Random again (bounded)
//! Regenerate: the same, then Request::Destroy { old key } -> Ok(Created)
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::header::cookie_header;
use crate::record::{self, SessionCookie};
use crate::request::{Bytes, Reply, Request, RequestId, StoreKey};
use crate::session::{Session, SessionId};
use crate::store_error::StoreError;
use crate::write::{Ending, Io, Redacted, SID_RANDOM_BYTES, destroyed, sid_from_random, ttl_secs};

/// How many fresh ids a create tries before giving up. With 192-bit ids a
/// single collision already means a broken random source.
const MAX_ID_ATTEMPTS: u32 = 3;

/// A newly stored session and the header that gives it to the client.
#[derive(Clone)]
pub struct Created {
    /// The session as stored: [`Session::is_changed`] is `false` and a
    /// [`Save`](crate::Save) of it compares against the stored bytes.
    pub session: Session,
    /// The full `Set-Cookie` header value, exactly as express-session writes
    /// it, e.g. `connect.sid=s%3A<sid>.<signature>; Path=/; HttpOnly`. It
    /// holds the signed id: never log it.
    pub set_cookie: String,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("session", &self.session)
            .field("set_cookie", &"<redacted>")
            .finish()
    }
}

/// The create steps shared by [`Create`] and [`Regenerate`].
#[derive(Debug)]
struct Creating {
    data: Map<String, Value>,
    cookie: SessionCookie,
    attempts: u32,
    /// After the random bytes: the id, its `Set-Cookie` and the record.
    inserting: Option<(SessionId, Redacted, Bytes)>,
}

impl Creating {
    fn new(config: &Config, data: Map<String, Value>, now: SystemTime) -> Self {
        Creating {
            data,
            cookie: config.cookie.to_session_cookie(now),
            attempts: 0,
            inserting: None,
        }
    }

    fn ask_random(&mut self, config: &Config, io: &mut Io, now: SystemTime) {
        self.inserting = None;
        io.issue(config, now, |id| Request::Random {
            id,
            len: SID_RANDOM_BYTES,
        });
    }

    /// Takes a reply; `Some` when creating is over.
    fn on_reply(
        &mut self,
        config: &Config,
        io: &mut Io,
        reply: Reply,
        now: SystemTime,
    ) -> Option<Result<Created, WriteError>> {
        match self.inserting.take() {
            None => match reply {
                Reply::Random(bytes) => {
                    let Some(sid) = sid_from_random(&bytes) else {
                        let e = StoreError::new(format!(
                            "the random source returned {} bytes; a session id needs {SID_RANDOM_BYTES}",
                            bytes.len()
                        ));
                        return Some(Err(Failure::Store(e).into()));
                    };
                    let sid = SessionId::new(sid);
                    let header = match cookie_header(config, &sid, &self.cookie) {
                        Ok(h) => h,
                        Err(e) => return Some(Err(WriteError::InvalidCookie(e))),
                    };
                    let ttl = ttl_secs(config, &self.cookie, now);
                    let Ok(ttl_secs @ 1..) = u64::try_from(ttl) else {
                        // maxAge 0: connect-redis would delete, not store.
                        return Some(Err(WriteError::Expired));
                    };
                    let value = Bytes::from(record::encode(&self.cookie, &self.data));
                    let key = StoreKey::new(config.key_prefix.as_bytes(), sid.expose().as_bytes());
                    self.attempts += 1;
                    io.issue(config, now, |id| Request::Create {
                        id,
                        key,
                        value: value.clone(),
                        ttl_secs,
                    });
                    self.inserting = Some((sid, Redacted(header), value));
                    None
                }
                Reply::Failed(e) => Some(Err(Failure::Store(e).into())),
                other => Some(Err(unexpected("Random", &other, "Random").into())),
            },
            Some((sid, header, value)) => match reply {
                Reply::Created => {
                    let mut session =
                        Session::new(sid, self.cookie.clone(), std::mem::take(&mut self.data));
                    session.mark_stored(value.0);
                    Some(Ok(Created {
                        session,
                        set_cookie: header.0,
                    }))
                }
                Reply::Exists if self.attempts < MAX_ID_ATTEMPTS => {
                    self.ask_random(config, io, now);
                    None
                }
                Reply::Exists => Some(Err(WriteError::IdCollision {
                    attempts: self.attempts,
                })),
                Reply::Failed(e) => Some(Err(Failure::Store(e).into())),
                other => Some(Err(unexpected(
                    "Create",
                    &other,
                    "Created, Exists or Failed",
                )
                .into())),
            },
        }
    }
}

/// Creates a session: asks for fresh random bytes for its id (express-
/// session's 24 bytes, 32 base64url characters), then inserts the record
/// only if the key is free (`SET NX EX`, R24). On an id collision it asks
/// for fresh bytes and retries (at most 3 ids).
///
/// ```text
/// Create::new(config, data, now)
///   poll_request()  -> Request::Random { len: 24 }
///   handle_reply(id, Random(bytes), now)
///   poll_request()  -> Request::Create { key, value, ttl_secs }   SET NX EX
///   handle_reply(id, Created, now)      -> Ok(Created { session, set_cookie })
///   handle_reply(id, Exists, now)       -> Request::Random again (bounded)
/// Regenerate: the same, then Request::Destroy { old key } -> Ok(Created)
/// ```
///
/// The outcome is `Ok(`[`Created`]`)` with the stored session and its
/// `Set-Cookie` header, or a [`WriteError`]: `IdCollision`, `Expired` (a
/// zero `max_age`), `InvalidCookie`, `Store` or `Timeout`.
#[must_use = "a create does nothing until its requests are run"]
pub struct Create {
    config: Arc<Config>,
    end: Ending<Created>,
    creating: Creating,
}

impl std::fmt::Debug for Create {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Create")
            .field("io", &self.end.io)
            .field("finished", &self.end.is_finished())
            .finish_non_exhaustive()
    }
}

impl Create {
    /// A session holding `data`, with the configured cookie settings and
    /// its expiry counted from `now`.
    pub fn new(config: Arc<Config>, data: Map<String, Value>, now: SystemTime) -> Self {
        let mut end = Ending::new();
        let mut creating = Creating::new(&config, data, now);
        creating.ask_random(&config, &mut end.io, now);
        Create {
            config,
            end,
            creating,
        }
    }

    /// The next request, if any.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.end.poll_request()
    }

    /// Feeds the answer to request `id`. Answers to unknown, already
    /// answered or not yet polled ids are ignored; one at or after the
    /// deadline fails with [`Failure::Timeout`](crate::Failure::Timeout).
    pub fn handle_reply(&mut self, id: RequestId, reply: Reply, now: SystemTime) {
        let Some(reply) = self.end.accept(id, reply, now) else {
            return;
        };
        if let Some(result) = self
            .creating
            .on_reply(&self.config, &mut self.end.io, reply, now)
        {
            self.end.finish(result);
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.end.poll_timeout()
    }

    /// Fails with [`Failure::Timeout`](crate::Failure::Timeout) once the outstanding request's
    /// deadline has passed; safe to call early or often.
    pub fn handle_timeout(&mut self, now: SystemTime) {
        self.end.handle_timeout(now);
    }

    /// The outcome, once.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<Created, WriteError>> {
        self.end.poll_outcome()
    }

    /// Whether the machine has finished (its outcome may already be taken).
    pub fn is_finished(&self) -> bool {
        self.end.is_finished()
    }
}

/// Gives a session a new id (on login or any privilege change, R11): creates
/// a new record, with the old data if `carry_over`, else empty, and fresh
/// cookie settings, exactly as [`Create`]; then destroys the old record.
///
/// The outcome is `Ok(`[`Created`]`)` with the new session and the
/// `Set-Cookie` header to send, or a [`WriteError`]. If the new record was
/// stored but destroying the old one failed, the outcome is that error
/// (fail closed): the old id may still be valid, so treat the login as
/// failed.
#[must_use = "a regenerate does nothing until its requests are run"]
pub struct Regenerate {
    config: Arc<Config>,
    end: Ending<Created>,
    creating: Creating,
    old_key: Option<StoreKey>,
    /// The new session, while the old record's destroy is outstanding.
    created: Option<Created>,
}

impl std::fmt::Debug for Regenerate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Regenerate")
            .field("io", &self.end.io)
            .field("finished", &self.end.is_finished())
            .finish_non_exhaustive()
    }
}

impl Regenerate {
    /// Regenerates `session` at `now`.
    pub fn new(config: Arc<Config>, session: Session, carry_over: bool, now: SystemTime) -> Self {
        let old = session.id().expose().as_bytes();
        let old_key = config
            .usable_sid(old)
            .then(|| StoreKey::new(config.key_prefix.as_bytes(), old));
        let data = if carry_over {
            session.data().clone()
        } else {
            Map::new()
        };
        let mut end = Ending::new();
        let mut creating = Creating::new(&config, data, now);
        if old_key.is_some() {
            creating.ask_random(&config, &mut end.io, now);
        } else {
            end.finish(Err(WriteError::Failed(Failure::InvalidSessionId)));
        }
        Regenerate {
            config,
            end,
            creating,
            old_key,
            created: None,
        }
    }

    /// The next request, if any.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.end.poll_request()
    }

    /// Feeds the answer to request `id`. Answers to unknown, already
    /// answered or not yet polled ids are ignored; one at or after the
    /// deadline fails with [`Failure::Timeout`](crate::Failure::Timeout).
    pub fn handle_reply(&mut self, id: RequestId, reply: Reply, now: SystemTime) {
        let Some(reply) = self.end.accept(id, reply, now) else {
            return;
        };
        if let Some(created) = self.created.take() {
            return self.end.finish(destroyed(reply).map(|()| created));
        }
        match self
            .creating
            .on_reply(&self.config, &mut self.end.io, reply, now)
        {
            None => {}
            Some(Err(e)) => self.end.finish(Err(e)),
            Some(Ok(created)) => {
                if let Some(key) = self.old_key.take() {
                    self.end
                        .io
                        .issue(&self.config, now, |id| Request::Destroy { id, key });
                    self.created = Some(created);
                } else {
                    // `new` finishes at once without an old key.
                    self.end
                        .finish(Err(WriteError::Failed(Failure::InvalidSessionId)));
                }
            }
        }
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.end.poll_timeout()
    }

    /// Fails with [`Failure::Timeout`](crate::Failure::Timeout) once the outstanding request's
    /// deadline has passed; safe to call early or often.
    pub fn handle_timeout(&mut self, now: SystemTime) {
        self.end.handle_timeout(now);
    }

    /// The outcome, once.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<Created, WriteError>> {
        self.end.poll_outcome()
    }

    /// Whether the machine has finished (its outcome may already be taken).
    pub fn is_finished(&self) -> bool {
        self.end.is_finished()
    }
}

crate::machine::forward_machine!(Create, Result<Created, WriteError>);
crate::machine::forward_machine!(Regenerate, Result<Created, WriteError>);
