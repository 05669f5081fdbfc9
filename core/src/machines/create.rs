//! Creating sessions: [`Create`] (insert-only, [R24]) and [`Regenerate`]
//! (a new id for the same user, the old one destroyed, [R11]).
//!
//! The order of calls is [`Machine`](crate::Machine)'s; each type shows its
//! transcript.
//!
//! [R11]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r11
//! [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::format::{NewError, NewSession};
use crate::machines::op::{Cx, Op, Step};
use crate::machines::write::Redacted;
use crate::request::{Bytes, Reply, Request, StoreKey};
use crate::session::{Meta, Session, SessionId};
use crate::store_error::StoreError;
use crate::time::Now;

/// How many fresh ids a create tries before giving up. With 128-bit ids or
/// longer a single collision already means a broken random source.
const MAX_ID_ATTEMPTS: u32 = 3;

/// A newly stored session and the header that gives it to the client.
#[derive(Clone)]
pub struct Created {
    /// The session as stored: [`Session::is_changed`] is `false` and a
    /// [`Save`](crate::machines::Save) of it compares against the stored bytes.
    pub session: Session,
    /// The full `Set-Cookie` header value, exactly as the format's HTTP app
    /// writes it, e.g. express-session's
    /// `connect.sid=s%3A<sid>.<signature>; Path=/; HttpOnly`. It holds the
    /// (signed or sealed) id: never log it.
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
pub(crate) struct Creating {
    data: Map<String, Value>,
    /// The new session's metadata, but for its id (express-session's
    /// cookie, tower-sessions' expiry date), as of the machine's start.
    meta: Meta,
    attempts: u32,
    /// After the random bytes: the id, its `Set-Cookie` and the record.
    inserting: Option<(SessionId, Redacted, Bytes)>,
}

impl Creating {
    pub(crate) fn new(config: &Config, data: Map<String, Value>, now: Now) -> Self {
        Creating {
            data,
            meta: config.new_meta(now.wall),
            attempts: 0,
            inserting: None,
        }
    }

    pub(crate) fn ask_random(&mut self, cx: &mut Cx<'_>) {
        self.inserting = None;
        let len = cx.config.random_len();
        cx.issue(|id| Request::Random { id, len });
    }

    /// Takes a reply; `Some` when creating is over.
    pub(crate) fn on_reply(
        &mut self,
        cx: &mut Cx<'_>,
        reply: Reply,
    ) -> Option<Result<Created, WriteError>> {
        let config = cx.config;
        match self.inserting.take() {
            None => match reply {
                Reply::Random(bytes) => {
                    let NewSession {
                        sid,
                        meta,
                        set_cookie: header,
                        ttl_secs: ttl,
                    } = match config.new_session(&self.meta, &bytes, cx.now.wall) {
                        Ok(new) => new,
                        Err(NewError::ShortRandom(got)) => {
                            let e = StoreError::new(format!(
                                "the random source returned {got} bytes; a session id needs {}",
                                config.random_len()
                            ));
                            return Some(Err(Failure::Store(e).into()));
                        }
                        Err(NewError::Cookie(e)) => return Some(Err(WriteError::InvalidCookie(e))),
                        Err(NewError::OtherFormat) => {
                            let e = crate::codec::record::RecordError::Format(
                                crate::format::RecordError::OtherFormat,
                            );
                            return Some(Err(Failure::MalformedRecord(e).into()));
                        }
                    };
                    let Ok(ttl_secs @ 1..) = u64::try_from(ttl) else {
                        // maxAge 0 (or a tower-sessions date passed): the
                        // store would delete, not store.
                        return Some(Err(WriteError::Expired));
                    };
                    let value = Bytes::from(meta.encode_with(&self.data));
                    // Kept with the id in it: the session the create gives.
                    self.meta = meta;
                    let key = StoreKey::new(config.key_prefix.as_bytes(), sid.expose().as_bytes());
                    self.attempts += 1;
                    cx.issue(|id| Request::Create {
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
                        Session::with_meta(sid, self.meta.clone(), std::mem::take(&mut self.data));
                    session.mark_stored(value.0);
                    Some(Ok(Created {
                        session,
                        set_cookie: header.0,
                    }))
                }
                Reply::Exists if self.attempts < MAX_ID_ATTEMPTS => {
                    self.ask_random(cx);
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

/// The create's step.
pub struct CreateStep {
    creating: Creating,
}

impl Step for CreateStep {
    type Output = Created;
    type Error = WriteError;
    const NAME: &'static str = "Create";

    fn on_reply(&mut self, cx: &mut Cx<'_>, reply: Reply) -> Option<Result<Created, WriteError>> {
        self.creating.on_reply(cx, reply)
    }
}

/// Creates a session: asks for fresh random bytes for its id (express-
/// session's 24 bytes, 32 base64url characters; tower-sessions' 16;
/// actix-session's 64 alphanumerics from 96; plus 12 for the nonce of a
/// private cookie), then inserts the record only if the key is free (`SET
/// NX EX`, [R24]). On an id collision it asks for fresh bytes and retries
/// (at most 3 ids). Drive it through [`Machine`](crate::Machine).
///
/// ```text
/// Create::new(config, data, now)
///   poll_request()  -> Request::Random { len: 24 }   (express-session)
///   handle_reply(id, Random(bytes), now)
///   poll_request()  -> Request::Create { key, value, ttl_secs }   SET NX EX
///   handle_reply(id, Created, now)      -> Ok(Created { session, set_cookie })
///   handle_reply(id, Exists, now)       -> Request::Random again (bounded)
/// ```
///
/// The outcome is `Ok(`[`Created`]`)` with the stored session and its
/// `Set-Cookie` header, or a [`WriteError`]: `IdCollision`, `Expired` (a
/// zero `max_age`), `InvalidCookie`, or a [`Failure`] (`Store`, `Timeout`).
///
/// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
pub type Create = Op<CreateStep>;

impl Op<CreateStep> {
    /// A session holding `data`, with the configured cookie settings and
    /// its expiry counted from `now`.
    pub fn new(config: Arc<Config>, data: Map<String, Value>, now: Now) -> Self {
        let creating = Creating::new(&config, data, now);
        let mut op = Op::with_step(config, now, CreateStep { creating });
        op.begin(|step, cx| {
            step.creating.ask_random(cx);
            None
        });
        op
    }
}
