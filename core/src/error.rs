//! Why a handshake found no session. Every message says what to check.

use crate::cookie::LimitExceeded;
use crate::origin::OriginRejection;
use crate::record::RecordError;

/// Why a handshake ended without a session.
///
/// The variants say whose fault it is (see [`HandshakeError::fault`]):
/// the request's (no cookie, bad signature, bad origin, ...), the session's
/// state (not found, expired), or the store's (error, malformed record,
/// timeout). None of them carries a session id, cookie value or secret.
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
    /// The id is too long or holds control characters, so it is not used as
    /// a store key (R15).
    InvalidSessionId,
    /// The `Cookie` header lines exceed a configured bound (R4).
    HeaderTooLarge(LimitExceeded),
    /// The `Origin` check refused the request (R5-R8).
    OriginRejected(OriginRejection),
    /// The store has no record for the id.
    SessionNotFound,
    /// The record's `cookie.expires` has passed (R13).
    Expired,
    /// The store returned something that is not an express-session record.
    MalformedRecord(RecordError),
    /// The store failed; the message is the store's.
    Store(String),
    /// The store did not answer before the deadline (R23).
    Timeout,
}

/// Whose fault a [`HandshakeError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The request: no, bad or refused credentials. Expected traffic.
    Request,
    /// The session's state: it ended or never existed.
    Session,
    /// The store or the data in it: an operator should look.
    Store,
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
            HandshakeError::InvalidSessionId => "invalid_session_id",
            HandshakeError::HeaderTooLarge(_) => "header_too_large",
            HandshakeError::OriginRejected(_) => "origin_rejected",
            HandshakeError::SessionNotFound => "session_not_found",
            HandshakeError::Expired => "expired",
            HandshakeError::MalformedRecord(_) => "malformed_record",
            HandshakeError::Store(_) => "store_error",
            HandshakeError::Timeout => "timeout",
        }
    }

    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            HandshakeError::SessionNotFound | HandshakeError::Expired => Fault::Session,
            HandshakeError::MalformedRecord(_)
            | HandshakeError::Store(_)
            | HandshakeError::Timeout => Fault::Store,
            _ => Fault::Request,
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
                "the request has cookies but no `{cookie_name}`: is the cookie name the same as \
                 the HTTP app's express-session `name`, and has the client logged in?"
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
                 is the secret the same as the HTTP app's?"
            ),
            HandshakeError::SignedEmptySid { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` is validly signed but names an empty session id: \
                 express-session treats it as no session"
            ),
            HandshakeError::InvalidSessionId => f.write_str(
                "the session id is longer than max_sid_len or contains control characters, \
                 so it is not used as a store key",
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
            HandshakeError::OriginRejected(r) => write!(f, "cross-site request refused: {r}"),
            HandshakeError::SessionNotFound => f.write_str(
                "the store has no session for this cookie: it was destroyed or expired, or the \
                 store (or its key prefix) is not the one the HTTP app uses",
            ),
            HandshakeError::Expired => {
                f.write_str("the session's cookie.expires has passed: the client must log in again")
            }
            HandshakeError::MalformedRecord(e) => write!(
                f,
                "the stored session is not an express-session record ({e}): is another \
                 application writing under the same key prefix?"
            ),
            HandshakeError::Store(e) => write!(f, "the session store failed: {e}"),
            HandshakeError::Timeout => f.write_str(
                "the session store did not answer before the deadline: is it up and reachable? \
                 (Config::store_deadline sets the deadline)",
            ),
        }
    }
}

impl std::error::Error for HandshakeError {}
