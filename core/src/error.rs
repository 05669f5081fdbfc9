//! The error vocabulary of every machine: why a handshake or a reload found
//! no session ([`HandshakeError`]), why a write did not happen
//! ([`WriteError`]), and the failures both share, defined once
//! ([`Failure`]). Every message says what to check; none holds a session
//! id, cookie value or secret ([R16]).
//!
//! [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16

use std::error::Error;

use crate::codec::cookie::LimitExceeded;
use crate::codec::record::RecordError;
use crate::codec::set_cookie::CookieSyntaxError;
pub use crate::fault::Fault;
use crate::format::CookieError;
use crate::origin::OriginRejection;
use crate::request::Reply;
use crate::store_error::StoreError;

/// What can go wrong between any machine and its store, for loads and
/// writes alike. [`HandshakeError::Failed`] and [`WriteError::Failed`]
/// carry it, so each kind, its [`reason`](Self::reason) code and its message
/// exist once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The session id is too long or holds control characters, so it is not
    /// used as a store key ([R15]).
    ///
    /// [R15]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r15
    InvalidSessionId,
    /// The store returned something that is not an express-session record.
    MalformedRecord(RecordError),
    /// The store failed, or answered out of protocol; the error keeps the
    /// store's cause ([`Error::source`]).
    Store(StoreError),
    /// The store did not answer before the deadline ([R23]).
    ///
    /// [R23]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r23
    Timeout,
    /// The handle is stopping (a graceful shutdown began), so it takes no
    /// new operation ([R38]).
    ///
    /// [R38]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r38
    ShuttingDown,
}

impl Failure {
    /// A stable snake_case code: `invalid_session_id`, `malformed_record`,
    /// `store_error`, `timeout` or `shutting_down`.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::InvalidSessionId => "invalid_session_id",
            Failure::MalformedRecord(_) => "malformed_record",
            Failure::Store(_) => "store_error",
            Failure::Timeout => "timeout",
            Failure::ShuttingDown => "shutting_down",
        }
    }

    /// Whose fault it is: the request's for an unusable id, the server's
    /// while it stops, the store's otherwise.
    pub fn fault(&self) -> Fault {
        match self {
            Failure::InvalidSessionId => Fault::Request,
            Failure::MalformedRecord(_) | Failure::Store(_) | Failure::Timeout => Fault::Store,
            Failure::ShuttingDown => Fault::Server,
        }
    }

    /// A short hint for the person at the browser ([R35]): what to do, in
    /// their words, with nothing about the server's insides (no store
    /// address, no error chain). [`Display`](std::fmt::Display) is the
    /// operator's message.
    ///
    /// [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35
    pub fn hint(&self) -> &'static str {
        match self {
            Failure::InvalidSessionId => HINT_BAD_COOKIE,
            Failure::MalformedRecord(_) => {
                "Your session could not be read on the server: please sign in again."
            }
            Failure::Store(_) | Failure::Timeout => HINT_UNAVAILABLE,
            Failure::ShuttingDown => "The server is restarting: please try again in a moment.",
        }
    }
}

const HINT_SIGN_IN: &str = "You are not signed in: please sign in.";
const HINT_BAD_COOKIE: &str = "Your session cookie is not valid here: please sign in again.";
const HINT_UNAVAILABLE: &str =
    "Sessions are unavailable on the server right now: please try again shortly.";
const HINT_ENDED: &str = "Your session has ended: please sign in again.";

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::InvalidSessionId => f.write_str(
                "the session id is longer than max_sid_len or contains control characters \
                 (or is not an id of the configured format), so it is not used as a store key",
            ),
            Failure::MalformedRecord(RecordError::Format(e)) => {
                write!(f, "the stored session cannot be read: {e}")
            }
            Failure::MalformedRecord(e) => write!(
                f,
                "the stored session is not an express-session record ({e}): is another \
                 application writing under the same key prefix?"
            ),
            Failure::Store(e) => write!(
                f,
                "the session store failed ({e}): is it up and reachable, and is it the store \
                 the HTTP app uses?"
            ),
            Failure::Timeout => f.write_str(
                "the session store did not answer before the deadline: is it up and reachable? \
                 (Config::store_deadline sets the deadline)",
            ),
            Failure::ShuttingDown => f.write_str(
                "the session handle is shutting down (SessionSockets::shutdown was called), so \
                 it takes no new operation",
            ),
        }
    }
}

/// The chain goes on past the store error: its message is already part of
/// this one's, so `source` is the store's own cause (the driver's `Stalled`,
/// a Redis error, ...).
impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Failure::Store(e) => e.source(),
            Failure::MalformedRecord(e) => e.source(),
            Failure::InvalidSessionId | Failure::Timeout | Failure::ShuttingDown => None,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// The failure for an answer of the wrong kind: it names the reply, never
/// its payload.
pub(crate) fn unexpected(request: &str, reply: &Reply, expected: &str) -> Failure {
    Failure::Store(StoreError::new(format!(
        "the store answered a {request} with {}; expected {expected}",
        reply.name()
    )))
}

/// Why a handshake (or a reload) ended without a session.
///
/// The variants say whose fault it is (see [`HandshakeError::fault`]):
/// the request's (no cookie, bad signature, bad origin, ...), the session's
/// state (not found, expired), or the store's (error, malformed record,
/// timeout: a [`Failure`]). None of them carries a session id, cookie value
/// or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request has no `Cookie` header at all.
    NoCookieHeader,
    /// `Cookie` headers are present but none holds the session cookie.
    CookieAbsent {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The session cookie is present with an empty value.
    EmptyValue {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The value lacks express-session's `s:` signature prefix and unsigned
    /// ids are not accepted.
    Unsigned {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// No configured secret verifies the signature.
    SignatureInvalid {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The signature verifies but the signed id is empty.
    SignedEmptySid {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The `Cookie` header lines exceed a configured bound ([R4]).
    ///
    /// [R4]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r4
    HeaderTooLarge(LimitExceeded),
    /// actix-session: a `Cookie` header line is not UTF-8, and actix-web
    /// then reads no cookie at all.
    NotUtf8Header {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// tower-sessions or actix-session signed cookies: the value is not a
    /// signed value of the `cookie` crate at all ([R36]).
    ///
    /// [R36]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r36
    NotSigned {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// tower-sessions or actix-session private cookies: the value is not a
    /// private value of the `cookie` crate at all ([R36]).
    ///
    /// [R36]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r36
    NotSealed {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// tower-sessions or actix-session private cookies: no configured key
    /// opens the value (another key, tampered with, or sealed for another
    /// cookie name, [R36]).
    ///
    /// [R36]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r36
    SealInvalid {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// tower-sessions: the cookie does not hold a session id of the format
    /// (22 characters of base64url naming 16 bytes).
    InvalidId {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// actix-session: the session key in the cookie is over its 4064
    /// bytes.
    KeyTooLong {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The `Origin` check refused the request ([R5]-[R8]).
    ///
    /// [R5]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r5
    /// [R8]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r8
    OriginRejected(OriginRejection),
    /// The store has no record for the id.
    SessionNotFound,
    /// The record's `cookie.expires` has passed ([R13]).
    ///
    /// [R13]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r13
    Expired,
    /// An unusable id, a malformed record, a store error or a timeout.
    Failed(Failure),
}

/// Why a write ([`Create`](crate::machines::Create), [`Save`](crate::machines::Save),
/// [`Touch`](crate::machines::Touch), [`Destroy`](crate::machines::Destroy),
/// [`Regenerate`](crate::machines::Regenerate)) did not happen, or may not have.
///
/// None of the variants carries a session id, cookie value or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// Other writers changed the record before every one of this save's
    /// compare-and-set attempts; nothing of this save was written.
    Conflict {
        /// How many compare-and-set requests were sent.
        attempts: u32,
    },
    /// The record no longer exists (destroyed, e.g. by a logout, or
    /// expired); nothing was written and the session was not re-created
    /// ([R24]).
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    Gone,
    /// The session's `cookie.expires` has passed, so the record was
    /// destroyed instead of written (connect-redis's rule for a TTL <= 0).
    Expired,
    /// The session was never stored (built with `Session::new`), so there
    /// is nothing to update; a save never creates ([R24]).
    ///
    /// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
    NotStored,
    /// Every fresh id collided with an existing record.
    IdCollision {
        /// How many ids were tried.
        attempts: u32,
    },
    /// The session's cookie cannot be written into a `Set-Cookie` header
    /// (npm `cookie`'s `serialize` would throw on it, [R3]): the error names
    /// the field.
    ///
    /// [R3]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r3
    InvalidCookie(CookieSyntaxError),
    /// An unusable id, a malformed record, a store error or a timeout. After
    /// a [`Failure::Timeout`] the write may or may not have happened: reload
    /// to find out.
    Failed(Failure),
}

impl WriteError {
    /// A stable snake_case code, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            WriteError::Conflict { .. } => "conflict",
            WriteError::Gone => "gone",
            WriteError::Expired => "expired",
            WriteError::NotStored => "not_stored",
            WriteError::IdCollision { .. } => "id_collision",
            WriteError::InvalidCookie(_) => "invalid_cookie",
            WriteError::Failed(f) => f.reason(),
        }
    }

    /// The shared failure, if it is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            WriteError::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// Whose fault it is: the session's when it ended, the store's (or the
    /// data's) when it failed, the server's when it is stopping or
    /// misconfigured.
    pub fn fault(&self) -> Fault {
        match self {
            WriteError::Gone | WriteError::Expired | WriteError::NotStored => Fault::Session,
            WriteError::Conflict { .. } | WriteError::IdCollision { .. } => Fault::Store,
            WriteError::InvalidCookie(_) => Fault::Server,
            WriteError::Failed(f) => f.fault(),
        }
    }

    /// A short hint for the person at the browser ([R35]): what to do, with
    /// nothing about the server's insides. [`Display`](std::fmt::Display) is
    /// the operator's message.
    ///
    /// [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35
    pub fn hint(&self) -> &'static str {
        match self {
            WriteError::Conflict { .. } => {
                "Your change met other changes to the same session and was not saved: please \
                 try again."
            }
            WriteError::Gone | WriteError::Expired => {
                "Your session has ended, so your change was not saved: please sign in again."
            }
            WriteError::NotStored => HINT_SIGN_IN,
            WriteError::IdCollision { .. } | WriteError::InvalidCookie(_) => {
                "The server could not start your session: please try again later."
            }
            WriteError::Failed(Failure::Timeout) => {
                "The server did not confirm your change in time; it may or may not be saved: \
                 please reload to check."
            }
            WriteError::Failed(Failure::Store(_)) => {
                "Your change could not be saved right now: please try again shortly."
            }
            WriteError::Failed(f) => f.hint(),
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Conflict { attempts } => write!(
                f,
                "the session changed under this save {attempts} times in a row, until its \
                 store deadline (or Config::max_save_attempts) ran out: other writers keep \
                 saving it; nothing was written: retry, or give saves more time with \
                 Config::store_deadline"
            ),
            WriteError::Gone => f.write_str(
                "the session no longer exists in the store (destroyed, e.g. by a logout, or \
                 expired); the save was refused so that it is not brought back: the client \
                 must start a new session",
            ),
            WriteError::Expired => f.write_str(
                "the session's cookie.expires has passed, so it was destroyed instead of saved: \
                 the client must start a new session",
            ),
            WriteError::NotStored => f.write_str(
                "this session was never stored, so there is nothing to save over: create it with \
                 Create (a save only updates, it never creates)",
            ),
            WriteError::IdCollision { attempts } => write!(
                f,
                "{attempts} fresh session ids in a row already existed in the store: is the \
                 random source a CSPRNG returning fresh bytes each time?"
            ),
            WriteError::InvalidCookie(e) => write!(
                f,
                "{e}: check the cookie options and the stored record's cookie"
            ),
            WriteError::Failed(e @ Failure::Timeout) => write!(
                f,
                "{e}; the write may or may not have happened: reload to find out"
            ),
            WriteError::Failed(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl Error for WriteError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WriteError::Failed(f) => f.source(),
            _ => None,
        }
    }
}

impl From<Failure> for WriteError {
    fn from(f: Failure) -> Self {
        WriteError::Failed(f)
    }
}

impl HandshakeError {
    /// A stable snake_case code. The cookie-level codes are the `reason`
    /// strings of the express-session vectors and of `inspect`.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::NoCookieHeader => "no_cookie_header",
            HandshakeError::CookieAbsent { .. } => "cookie_absent",
            HandshakeError::EmptyValue { .. } => "empty_value",
            HandshakeError::Unsigned { .. } => "unsigned",
            HandshakeError::SignatureInvalid { .. } => "signature_invalid",
            HandshakeError::SignedEmptySid { .. } => "signed_empty_sid",
            HandshakeError::HeaderTooLarge(_) => "header_too_large",
            HandshakeError::NotUtf8Header { .. } => "not_utf8_header",
            HandshakeError::NotSigned { .. } => "not_signed",
            HandshakeError::NotSealed { .. } => "not_sealed",
            HandshakeError::SealInvalid { .. } => "seal_invalid",
            HandshakeError::InvalidId { .. } => "invalid_id",
            HandshakeError::KeyTooLong { .. } => "key_too_long",
            HandshakeError::OriginRejected(_) => "origin_rejected",
            HandshakeError::SessionNotFound => "session_not_found",
            HandshakeError::Expired => "expired",
            HandshakeError::Failed(f) => f.reason(),
        }
    }

    /// The shared failure, if it is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            HandshakeError::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            HandshakeError::SessionNotFound | HandshakeError::Expired => Fault::Session,
            HandshakeError::Failed(f) => f.fault(),
            _ => Fault::Request,
        }
    }

    /// A short hint for the person at the browser ([R35]): what to do, with
    /// nothing about the server's insides (no store address, cookie name,
    /// secret or error chain). [`Display`](std::fmt::Display) is the
    /// operator's message, saying what to check.
    ///
    /// [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35
    pub fn hint(&self) -> &'static str {
        match self {
            HandshakeError::NoCookieHeader
            | HandshakeError::CookieAbsent { .. }
            | HandshakeError::EmptyValue { .. } => HINT_SIGN_IN,
            HandshakeError::Unsigned { .. }
            | HandshakeError::SignatureInvalid { .. }
            | HandshakeError::SignedEmptySid { .. }
            | HandshakeError::NotSigned { .. }
            | HandshakeError::NotSealed { .. }
            | HandshakeError::SealInvalid { .. }
            | HandshakeError::InvalidId { .. }
            | HandshakeError::KeyTooLong { .. } => HINT_BAD_COOKIE,
            HandshakeError::NotUtf8Header { .. } => {
                "Your browser sent cookies this site cannot read: please clear this site's \
                 cookies and sign in again."
            }
            HandshakeError::HeaderTooLarge(_) => {
                "Your browser sent too many cookies for this site: please clear this site's \
                 cookies and sign in again."
            }
            HandshakeError::OriginRejected(_) => {
                "This connection came from a page on another site, so it was refused."
            }
            HandshakeError::SessionNotFound => HINT_ENDED,
            HandshakeError::Expired => "Your session has expired: please sign in again.",
            HandshakeError::Failed(f) => f.hint(),
        }
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::NoCookieHeader => f.write_str(
                "the request has no Cookie header: is the client sending credentials \
                 (withCredentials for cross-origin socket.io) and is the cookie's Path/Domain \
                 covering this URL?",
            ),
            HandshakeError::CookieAbsent { cookie_name } => write!(
                f,
                "the request's Cookie header (empty, or other cookies only) holds no \
                 `{cookie_name}`: is the cookie name the same as the HTTP app's (express-session's \
                 `name`; tower-sessions and actix-session default to `id`), and has the client \
                 logged in?"
            ),
            HandshakeError::EmptyValue { cookie_name } => {
                write!(
                    f,
                    "cookie `{cookie_name}` is empty: the client has no session"
                )
            }
            HandshakeError::Unsigned { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` is not signed (no `s:` prefix): express-session ignores \
                 such cookies; enable accept_unsigned only if your HTTP app issues unsigned ids"
            ),
            HandshakeError::SignatureInvalid { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` has a signature that no configured secret verifies: \
                 is the secret the same as the HTTP app's (express-session's `secret`, or the 64 \
                 bytes of tower-sessions' or actix-session's cookie::Key)?"
            ),
            HandshakeError::SignedEmptySid { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` is validly signed but names an empty session id: \
                 express-session treats it as no session"
            ),
            HandshakeError::HeaderTooLarge(LimitExceeded::Bytes { limit }) => write!(
                f,
                "the Cookie header lines exceed {limit} bytes; raise Limits::max_header_bytes \
                 if your site really sets that many cookies"
            ),
            HandshakeError::HeaderTooLarge(LimitExceeded::Pairs { limit }) => write!(
                f,
                "the session cookie is not among the first {limit} cookies; raise \
                 Limits::max_pairs if your site really sets that many cookies"
            ),
            HandshakeError::NotUtf8Header { cookie_name } => std::fmt::Display::fmt(
                &CookieError::NotUtf8Header {
                    cookie_name: cookie_name.clone(),
                },
                f,
            ),
            HandshakeError::NotSigned { cookie_name } => std::fmt::Display::fmt(
                &CookieError::NotSigned {
                    cookie_name: cookie_name.clone(),
                },
                f,
            ),
            HandshakeError::NotSealed { cookie_name } => std::fmt::Display::fmt(
                &CookieError::NotSealed {
                    cookie_name: cookie_name.clone(),
                },
                f,
            ),
            HandshakeError::SealInvalid { cookie_name } => std::fmt::Display::fmt(
                &CookieError::SealInvalid {
                    cookie_name: cookie_name.clone(),
                },
                f,
            ),
            HandshakeError::InvalidId { cookie_name } => std::fmt::Display::fmt(
                &CookieError::InvalidId {
                    cookie_name: cookie_name.clone(),
                },
                f,
            ),
            HandshakeError::KeyTooLong { cookie_name } => std::fmt::Display::fmt(
                &CookieError::KeyTooLong {
                    cookie_name: cookie_name.clone(),
                },
                f,
            ),
            HandshakeError::OriginRejected(r) => write!(f, "cross-site request refused: {r}"),
            HandshakeError::SessionNotFound => f.write_str(
                "the store has no session for this cookie: it was destroyed or expired, or the \
                 store (or its key prefix) is not the one the HTTP app uses",
            ),
            HandshakeError::Expired => {
                f.write_str("the session's cookie.expires has passed: the client must log in again")
            }
            HandshakeError::Failed(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl Error for HandshakeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            HandshakeError::Failed(f) => f.source(),
            _ => None,
        }
    }
}

impl From<Failure> for HandshakeError {
    fn from(f: Failure) -> Self {
        HandshakeError::Failed(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of error, with a store message that names its address.
    fn every_error() -> (Vec<HandshakeError>, Vec<WriteError>) {
        let store = || StoreError::new("Redis at 10.0.0.7:6379 refused the connection (GET)");
        let failures = vec![
            Failure::InvalidSessionId,
            Failure::MalformedRecord(crate::codec::record::decode(b"[1]").unwrap_err()),
            Failure::Store(store()),
            Failure::Timeout,
            Failure::ShuttingDown,
        ];
        let name = || "connect.sid".to_owned();
        let mut handshake = vec![
            HandshakeError::NoCookieHeader,
            HandshakeError::CookieAbsent {
                cookie_name: name(),
            },
            HandshakeError::EmptyValue {
                cookie_name: name(),
            },
            HandshakeError::Unsigned {
                cookie_name: name(),
            },
            HandshakeError::SignatureInvalid {
                cookie_name: name(),
            },
            HandshakeError::SignedEmptySid {
                cookie_name: name(),
            },
            HandshakeError::HeaderTooLarge(LimitExceeded::Bytes { limit: 8 }),
            HandshakeError::NotUtf8Header {
                cookie_name: name(),
            },
            HandshakeError::NotSigned {
                cookie_name: name(),
            },
            HandshakeError::NotSealed {
                cookie_name: name(),
            },
            HandshakeError::SealInvalid {
                cookie_name: name(),
            },
            HandshakeError::InvalidId {
                cookie_name: name(),
            },
            HandshakeError::KeyTooLong {
                cookie_name: name(),
            },
            HandshakeError::OriginRejected(OriginRejection::NotAllowed(
                "https://evil.example".into(),
            )),
            HandshakeError::SessionNotFound,
            HandshakeError::Expired,
        ];
        let mut write = vec![
            WriteError::Conflict { attempts: 3 },
            WriteError::Gone,
            WriteError::Expired,
            WriteError::NotStored,
            WriteError::IdCollision { attempts: 3 },
        ];
        for f in failures {
            handshake.push(HandshakeError::Failed(f.clone()));
            write.push(WriteError::Failed(f));
        }
        (handshake, write)
    }

    #[test]
    fn r35_hints_name_no_address_cookie_name_or_store_message() {
        let (handshake, write) = every_error();
        let hints = handshake
            .iter()
            .map(|e| (e.reason(), e.hint(), e.to_string()))
            .chain(write.iter().map(|e| (e.reason(), e.hint(), e.to_string())));
        for (reason, hint, detail) in hints {
            assert!(hint.ends_with('.') && hint.len() > 20, "{reason}: {hint:?}");
            for internal in [
                "10.0.0.7",
                "6379",
                "Redis",
                "connect.sid",
                "evil.example",
                "Config",
            ] {
                assert!(
                    !hint.contains(internal),
                    "{reason}: {hint:?} names {internal:?}"
                );
            }
            // The operator's message is not the hint.
            assert_ne!(hint, detail, "{reason}");
        }
    }

    #[test]
    fn a_stopping_handle_is_the_servers_fault_and_says_so() {
        let e = WriteError::Failed(Failure::ShuttingDown);
        assert_eq!(e.reason(), "shutting_down");
        assert_eq!(e.fault(), Fault::Server);
        assert!(e.fault().needs_operator());
        assert!(e.to_string().contains("shutdown"), "{e}");
        assert_eq!(HandshakeError::Expired.fault(), Fault::Session);
        assert!(!HandshakeError::NoCookieHeader.fault().needs_operator());
    }
}
