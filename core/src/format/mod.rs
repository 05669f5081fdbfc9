//! The session formats of Rust HTTP frameworks, as codecs: what a request's
//! `Cookie` header lines name, what the store holds under which key, for
//! how long, and which `Set-Cookie` header the framework sends.
//!
//! - [`cookie_crate`]: the `cookie` crate's signed and private cookie
//!   values (the same bytes in cookie 0.16 and 0.18), with a list of keys
//!   so that keys can rotate ([R36]).
//! - [`tower_sessions`]: tower-sessions 0.14 with tower-sessions-redis-store
//!   0.16 (and axum-login 0.18 on top): plain, signed or private cookies
//!   holding a 128-bit id, records in compact MessagePack.
//! - [`actix_session`]: actix-session 0.11 with its Redis store: private or
//!   signed cookies holding a 64-character session key, records as a JSON
//!   object of JSON texts.
//!
//! [`Format`] is the choice a [`Config`](crate::Config) makes between them
//! and express-session (the default); the machines ask it what the format
//! decides.
//!
//! Like the rest of the core, these are pure functions of their inputs: no
//! IO, no clock (the time is an argument), no randomness (random bytes and
//! nonces are arguments). They never panic on any input: anything a
//! request or a store hands them that the framework itself would not
//! accept is an error with a [`reason`](CookieError::reason) code, a
//! message for the operator that says what to check, and a
//! [`hint`](CookieError::hint) for the person at the browser. No error,
//! `Debug` output or message holds a key, a session id or a cookie value
//! ([R16]).
//!
//! [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
//! [R36]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r36

pub mod actix_session;
pub mod cookie_crate;
mod header;
mod msgpack;
mod select;
pub mod tower_sessions;

pub use select::Format;
pub(crate) use select::{NewError, NewSession, TouchPlan, too_large};

use crate::codec::cookie::LimitExceeded;
use crate::fault::Fault;

/// Why a request's cookies name no session of a format. Every variant is
/// the request's doing ([`Fault::Request`]): expected traffic, checked
/// before any store lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    /// The request has no `Cookie` header at all.
    NoCookieHeader,
    /// `Cookie` headers are present but none holds the session cookie.
    CookieAbsent {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// A `Cookie` header line is not UTF-8, and the framework (actix-web)
    /// then reads no cookie at all.
    NotUtf8Header {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The `Cookie` header lines exceed a configured bound ([R4]).
    ///
    /// [R4]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r4
    HeaderTooLarge(LimitExceeded),
    /// The session cookie is present with an empty value.
    EmptyValue {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The value is not a signed value of the `cookie` crate at all: shorter
    /// than the 44-character signature, or the signature is not base64.
    NotSigned {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// A signed value whose signature no configured key verifies.
    SignatureInvalid {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The value is not a private value of the `cookie` crate at all: not
    /// standard base64, or too short to hold a nonce and a tag.
    NotSealed {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// A private value that no configured key opens (another key, tampered
    /// with, or sealed for another cookie name).
    SealInvalid {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The value (as sent, or inside its signature or seal) is not a
    /// session id of the format (tower-sessions: 22 characters of base64url
    /// naming 16 bytes).
    InvalidId {
        /// The configured cookie name.
        cookie_name: String,
    },
    /// The session key inside the cookie is longer than actix-session's
    /// bound of 4064 bytes.
    KeyTooLong {
        /// The configured cookie name.
        cookie_name: String,
    },
}

const HINT_SIGN_IN: &str = "You are not signed in: please sign in.";
const HINT_BAD_COOKIE: &str = "Your session cookie is not valid here: please sign in again.";

impl CookieError {
    /// A stable snake_case code: `no_cookie_header`, `cookie_absent`,
    /// `not_utf8_header`, `header_too_large`, `empty_value`, `not_signed`,
    /// `signature_invalid`, `not_sealed`, `seal_invalid`, `invalid_id` or
    /// `key_too_long`.
    pub fn reason(&self) -> &'static str {
        match self {
            CookieError::NoCookieHeader => "no_cookie_header",
            CookieError::CookieAbsent { .. } => "cookie_absent",
            CookieError::NotUtf8Header { .. } => "not_utf8_header",
            CookieError::HeaderTooLarge(_) => "header_too_large",
            CookieError::EmptyValue { .. } => "empty_value",
            CookieError::NotSigned { .. } => "not_signed",
            CookieError::SignatureInvalid { .. } => "signature_invalid",
            CookieError::NotSealed { .. } => "not_sealed",
            CookieError::SealInvalid { .. } => "seal_invalid",
            CookieError::InvalidId { .. } => "invalid_id",
            CookieError::KeyTooLong { .. } => "key_too_long",
        }
    }

    /// Whose fault it is: always the request's.
    pub fn fault(&self) -> Fault {
        Fault::Request
    }

    /// A short hint for the person at the browser ([R35]): what to do, with
    /// nothing about the server's insides (no cookie name, key or format).
    /// [`Display`](std::fmt::Display) is the operator's message.
    ///
    /// [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35
    pub fn hint(&self) -> &'static str {
        match self {
            CookieError::NoCookieHeader
            | CookieError::CookieAbsent { .. }
            | CookieError::EmptyValue { .. } => HINT_SIGN_IN,
            CookieError::HeaderTooLarge(_) | CookieError::NotUtf8Header { .. } => {
                "Your browser sent cookies this site cannot read: please clear this site's \
                 cookies and sign in again."
            }
            CookieError::NotSigned { .. }
            | CookieError::SignatureInvalid { .. }
            | CookieError::NotSealed { .. }
            | CookieError::SealInvalid { .. }
            | CookieError::InvalidId { .. }
            | CookieError::KeyTooLong { .. } => HINT_BAD_COOKIE,
        }
    }
}

impl std::fmt::Display for CookieError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CookieError::NoCookieHeader => f.write_str(
                "the request has no Cookie header: is the client sending credentials, and does \
                 the cookie's Path/Domain cover this URL?",
            ),
            CookieError::CookieAbsent { cookie_name } => write!(
                f,
                "the request has cookies but no `{cookie_name}`: is the cookie name the HTTP \
                 app's (tower-sessions and actix-session both default to `id`), and has the \
                 client logged in?"
            ),
            CookieError::NotUtf8Header { cookie_name } => write!(
                f,
                "a Cookie header line is not UTF-8, so actix-web reads no cookie at all \
                 (`{cookie_name}` included): the HTTP app sees no session either"
            ),
            CookieError::HeaderTooLarge(LimitExceeded::Bytes { limit }) => write!(
                f,
                "the Cookie header lines exceed {limit} bytes; raise Limits::max_header_bytes \
                 if your site really sets that many cookies"
            ),
            CookieError::HeaderTooLarge(LimitExceeded::Pairs { limit }) => write!(
                f,
                "the Cookie header lines hold more than {limit} cookies; raise \
                 Limits::max_pairs if your site really sets that many cookies"
            ),
            CookieError::EmptyValue { cookie_name } => {
                write!(
                    f,
                    "cookie `{cookie_name}` is empty: the client has no session"
                )
            }
            CookieError::NotSigned { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` is not a signed value of the cookie crate (44 characters \
                 of base64 HMAC, then the value): does the HTTP app sign its session cookie \
                 (tower-sessions `with_signed`, actix-session `CookieContentSecurity::Signed`)?"
            ),
            CookieError::SignatureInvalid { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` has a signature that no configured key verifies: are the \
                 keys the 64 bytes of the HTTP app's `cookie::Key` (`Key::master()`)?"
            ),
            CookieError::NotSealed { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` is not a private value of the cookie crate (standard \
                 base64 of nonce, ciphertext and tag): does the HTTP app encrypt its session \
                 cookie (tower-sessions `with_private`, actix-session's default)?"
            ),
            CookieError::SealInvalid { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` does not open with any configured key: are the keys the \
                 64 bytes of the HTTP app's `cookie::Key` (`Key::master()`), and is the cookie \
                 name the app's? A private value opens only under the name it was sealed for"
            ),
            CookieError::InvalidId { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` does not hold a session id of the configured format \
                 (tower-sessions: 22 characters of base64url): is the format (and plain, signed \
                 or private) the HTTP app's?"
            ),
            CookieError::KeyTooLong { cookie_name } => write!(
                f,
                "cookie `{cookie_name}` holds a session key over actix-session's 4064 bytes: \
                 actix-session ignores it too"
            ),
        }
    }
}

impl std::error::Error for CookieError {}

/// Why a stored record could not be decoded in a format. The message names
/// the place and the problem, never the data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Not MessagePack that decodes: truncated, an unknown or unsupported
    /// marker, a string that is not UTF-8, nested too deep.
    MessagePack {
        /// Where in the record the problem is.
        offset: usize,
        /// What the problem is.
        problem: &'static str,
    },
    /// MessagePack, but not a tower-sessions record: `problem` names the
    /// part that is not what `tower_sessions::session::Record` holds.
    NotTowerRecord(&'static str),
    /// Not JSON (the message is serde_json's, which never quotes input).
    Json(String),
    /// JSON, but not what actix-session stores (an object whose values are
    /// strings holding JSON texts): `problem` names the part.
    NotActixState(&'static str),
    /// A session read in one format was handed to a machine of a config in
    /// another (a caller's mistake: one config per store).
    OtherFormat,
}

impl RecordError {
    /// A stable snake_case code: `malformed_record`, as
    /// [`Failure::MalformedRecord`](crate::Failure::MalformedRecord).
    pub fn reason(&self) -> &'static str {
        "malformed_record"
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::MessagePack { offset, problem } => write!(
                f,
                "the record is not MessagePack that decodes ({problem} at byte {offset}): is \
                 another application writing under the same keys?"
            ),
            RecordError::NotTowerRecord(problem) => write!(
                f,
                "the record is not a tower-sessions record ({problem}): is the format the HTTP \
                 app's, and is another application writing under the same keys?"
            ),
            RecordError::Json(e) => write!(
                f,
                "the record is not valid JSON ({e}): is the format the HTTP app's?"
            ),
            RecordError::NotActixState(problem) => write!(
                f,
                "the record is not an actix-session state ({problem}): is the format the HTTP \
                 app's, and is another application writing under the same keys?"
            ),
            RecordError::OtherFormat => f.write_str(
                "the session was read in another format than the configured one: use one Config \
                 (one format) per store",
            ),
        }
    }
}

impl std::error::Error for RecordError {}

/// Writes `; Max-Age=`, `; Expires=` of a removal cookie: `Max-Age=0` and
/// a date one year (365 days) before `now`, as the cookie crate's
/// `make_removal` does.
pub(crate) fn push_removal_dates(out: &mut String, now: std::time::SystemTime) {
    let year_ago = crate::time::millis(now).saturating_sub(365 * 86_400_000);
    out.push_str("; Max-Age=0; Expires=");
    out.push_str(&crate::time::to_http_date(year_ago));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_error() -> Vec<CookieError> {
        let n = || "session-cookie".to_owned();
        vec![
            CookieError::NoCookieHeader,
            CookieError::CookieAbsent { cookie_name: n() },
            CookieError::NotUtf8Header { cookie_name: n() },
            CookieError::HeaderTooLarge(LimitExceeded::Bytes { limit: 8 }),
            CookieError::HeaderTooLarge(LimitExceeded::Pairs { limit: 8 }),
            CookieError::EmptyValue { cookie_name: n() },
            CookieError::NotSigned { cookie_name: n() },
            CookieError::SignatureInvalid { cookie_name: n() },
            CookieError::NotSealed { cookie_name: n() },
            CookieError::SealInvalid { cookie_name: n() },
            CookieError::InvalidId { cookie_name: n() },
            CookieError::KeyTooLong { cookie_name: n() },
        ]
    }

    #[test]
    fn r35_cookie_hints_name_nothing_internal_and_reasons_are_distinct() {
        let errors = every_error();
        let mut reasons: Vec<_> = errors.iter().map(CookieError::reason).collect();
        for e in &errors {
            let hint = e.hint();
            assert!(hint.ends_with('.') && hint.len() > 20, "{hint}");
            for internal in ["session-cookie", "key", "Key", "tower", "actix", "HMAC"] {
                assert!(!hint.contains(internal), "{}: {hint}", e.reason());
            }
            assert_ne!(hint, e.to_string());
            assert_eq!(e.fault(), Fault::Request);
        }
        reasons.sort_unstable();
        reasons.dedup();
        // Two HeaderTooLarge variants share a reason.
        assert_eq!(reasons.len(), errors.len() - 1);
    }

    #[test]
    fn record_errors_say_what_to_check() {
        let e = RecordError::MessagePack {
            offset: 3,
            problem: "truncated",
        };
        assert_eq!(e.reason(), "malformed_record");
        assert!(e.to_string().contains("byte 3"), "{e}");
        assert!(
            RecordError::NotTowerRecord("id")
                .to_string()
                .contains("tower-sessions")
        );
    }

    #[test]
    fn removal_dates_are_a_year_back() {
        let mut out = String::new();
        // 2026-12-07T05:41:43Z
        let now = crate::time::from_millis(1_796_622_103_000);
        push_removal_dates(&mut out, now);
        assert_eq!(out, "; Max-Age=0; Expires=Sun, 07 Dec 2025 05:41:43 GMT");
    }
}
