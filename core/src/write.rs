//! What the write machines share: their error, connect-redis's TTL rule and
//! the one-request-at-a-time plumbing that ties replies to requests.

use std::time::SystemTime;

use crate::config::Config;
use crate::record::{RecordError, SessionCookie};
use crate::request::{Reply, Request, RequestId};
use crate::time::millis;

/// Why a write ([`Create`](crate::Create), [`Save`](crate::Save),
/// [`Touch`](crate::Touch), [`Destroy`](crate::Destroy),
/// [`Regenerate`](crate::Regenerate)) did not happen, or may not have.
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
    /// (R24).
    Gone,
    /// The session's `cookie.expires` has passed, so the record was
    /// destroyed instead of written (connect-redis's rule for a TTL <= 0).
    Expired,
    /// The session was never stored (built with `Session::new`), so there
    /// is nothing to update; a save never creates (R24).
    NotStored,
    /// Every fresh id collided with an existing record.
    IdCollision {
        /// How many ids were tried.
        attempts: u32,
    },
    /// The session id is too long or holds control characters, so it is
    /// not used as a store key (R15).
    InvalidSessionId,
    /// The session's cookie cannot be written into a `Set-Cookie` header
    /// (npm `cookie`'s `serialize` would throw on it, R3).
    InvalidCookie {
        /// The offending field: `name`, `domain`, `path`, `priority`,
        /// `sameSite`, or `originalMaxAge` (so large the expiry is past
        /// the year 9999).
        field: &'static str,
    },
    /// The store returned something that is not an express-session record.
    MalformedRecord(RecordError),
    /// The store failed or answered out of protocol; the message is the
    /// store's or names the unexpected answer.
    Store(String),
    /// The store did not answer before the deadline (R23). The write may or
    /// may not have happened; reload to find out.
    Timeout,
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
            WriteError::InvalidSessionId => "invalid_session_id",
            WriteError::InvalidCookie { .. } => "invalid_cookie",
            WriteError::MalformedRecord(_) => "malformed_record",
            WriteError::Store(_) => "store_error",
            WriteError::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Conflict { attempts } => write!(
                f,
                "the session changed under this save {attempts} times in a row (other writers \
                 keep saving it); nothing was written: reload and retry, or raise \
                 Config::max_save_attempts"
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
            WriteError::InvalidSessionId => f.write_str(
                "the session id is longer than max_sid_len or contains control characters, \
                 so it is not used as a store key",
            ),
            WriteError::InvalidCookie {
                field: "originalMaxAge",
            } => f.write_str(
                "the stored record's cookie.originalMaxAge puts the expiry past \
                 9999-12-31, which express-session cannot write: check the record's cookie",
            ),
            WriteError::InvalidCookie { field } => write!(
                f,
                "the session cookie's `{field}` cannot be written into a Set-Cookie header \
                 (npm cookie's serialize refuses it): check the cookie options and the stored \
                 record's cookie"
            ),
            WriteError::MalformedRecord(e) => write!(
                f,
                "the stored session is not an express-session record ({e}): is another \
                 application writing under the same key prefix?"
            ),
            WriteError::Store(e) => write!(
                f,
                "the session store failed ({e}): is it up and reachable, and is it the store \
                 the HTTP app uses?"
            ),
            WriteError::Timeout => f.write_str(
                "the session store did not answer before the deadline, so the write may or may \
                 not have happened: is the store up and reachable? (Config::store_deadline sets \
                 the deadline)",
            ),
        }
    }
}

impl std::error::Error for WriteError {}

/// The store time to live, in seconds, of a record with `cookie` written at
/// `now`, exactly as connect-redis 9 computes it:
/// `Math.ceil((expires - now) / 1000)` when `cookie.expires` is set, else
/// the configured default TTL. A result `<= 0` means the record must be
/// destroyed, not written.
pub fn ttl_secs(config: &Config, cookie: &SessionCookie, now: SystemTime) -> i64 {
    match cookie.expires_ms() {
        Some(expires) => {
            let ms = i128::from(expires) - i128::from(millis(now));
            // Ceiling division; the clamp keeps absurd dates in range.
            let secs = ms.div_euclid(1000) + i128::from(ms.rem_euclid(1000) != 0);
            i64::try_from(secs).unwrap_or(if secs > 0 { i64::MAX } else { i64::MIN })
        }
        None => i64::try_from(config.default_ttl_secs).unwrap_or(i64::MAX),
    }
}

/// How many random bytes a new session id takes: express-session's
/// `uid(24)`, 192 bits (R10).
pub const SID_RANDOM_BYTES: usize = 24;

/// The session id express-session's `uid-safe` makes from random bytes:
/// the first [`SID_RANDOM_BYTES`] as base64url without padding (32
/// characters). `None` if fewer bytes are given.
pub fn sid_from_random(bytes: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let bytes = bytes.get(..SID_RANDOM_BYTES)?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The one outstanding request of a write machine: its id, whether it was
/// handed out, and its deadline. Ids count up from 1 within a machine, so
/// a reply to an earlier request, a duplicate reply or a reply to a request
/// not yet polled is never taken for the current one.
#[derive(Debug)]
pub(crate) struct Io {
    next: u64,
    unsent: Option<Request>,
    waiting: Option<(RequestId, SystemTime)>,
}

impl Io {
    pub(crate) fn new() -> Self {
        Io {
            next: 1,
            unsent: None,
            waiting: None,
        }
    }

    /// Queues the request `build` makes with a fresh id; its deadline is
    /// the store deadline from `now`.
    pub(crate) fn issue(
        &mut self,
        config: &Config,
        now: SystemTime,
        build: impl FnOnce(RequestId) -> Request,
    ) {
        let id = RequestId(self.next);
        self.next += 1;
        // An unrepresentable deadline fails closed at once.
        let deadline = now.checked_add(config.store_deadline).unwrap_or(now);
        self.unsent = Some(build(id));
        self.waiting = Some((id, deadline));
    }

    pub(crate) fn poll_request(&mut self) -> Option<Request> {
        self.unsent.take()
    }

    /// Takes a reply to `id` at `now`: `None` if no such request is
    /// outstanding (unknown, answered, or not yet handed out), else whether
    /// it arrived before the deadline.
    pub(crate) fn accept(&mut self, id: RequestId, now: SystemTime) -> Option<bool> {
        let (waiting, deadline) = self.waiting?;
        if waiting != id || self.unsent.is_some() {
            return None;
        }
        self.waiting = None;
        Some(now < deadline)
    }

    pub(crate) fn deadline(&self) -> Option<SystemTime> {
        self.waiting.map(|(_, d)| d)
    }

    pub(crate) fn is_past_deadline(&self, now: SystemTime) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// Drops whatever is outstanding (the machine finished).
    pub(crate) fn clear(&mut self) {
        self.unsent = None;
        self.waiting = None;
    }
}

/// What every write machine keeps besides its own decisions: the one
/// outstanding request, the outcome and whether it finished. A late reply
/// or a passed deadline finishes it with [`WriteError::Timeout`]; the
/// first outcome is the one that counts.
#[derive(Debug)]
pub(crate) struct Ending<T> {
    pub(crate) io: Io,
    finished: bool,
    failed: bool,
    outcome: Option<Result<T, WriteError>>,
}

impl<T> Ending<T> {
    pub(crate) fn new() -> Self {
        Ending {
            io: Io::new(),
            finished: false,
            failed: false,
            outcome: None,
        }
    }

    pub(crate) fn poll_request(&mut self) -> Option<Request> {
        self.io.poll_request()
    }

    /// The reply to `id`, if it answers the outstanding request in time. A
    /// late answer finishes with [`WriteError::Timeout`]; answers to
    /// unknown, already answered or not yet polled ids are ignored.
    pub(crate) fn accept(&mut self, id: RequestId, reply: Reply, now: SystemTime) -> Option<Reply> {
        match self.io.accept(id, now)? {
            true => Some(reply),
            false => {
                self.finish(Err(WriteError::Timeout));
                None
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<SystemTime> {
        self.io.deadline()
    }

    pub(crate) fn handle_timeout(&mut self, now: SystemTime) {
        if self.io.is_past_deadline(now) {
            self.finish(Err(WriteError::Timeout));
        }
    }

    pub(crate) fn poll_outcome(&mut self) -> Option<Result<T, WriteError>> {
        self.outcome.take()
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the machine finished with an error.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Finishes with `outcome` and drops the outstanding request, unless
    /// already finished.
    pub(crate) fn finish(&mut self, outcome: Result<T, WriteError>) {
        if !self.finished {
            self.finished = true;
            self.failed = outcome.is_err();
            self.io.clear();
            self.outcome = Some(outcome);
        }
    }
}

/// A string that holds a session id (a `Set-Cookie` value): `Debug` is
/// redacted (R16).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Redacted(pub(crate) String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Names a reply in an out-of-protocol error.
pub(crate) fn unexpected(request: &str, reply: &Reply, expected: &str) -> WriteError {
    WriteError::Store(format!(
        "the store answered a {request} with {}; expected {expected}",
        reply.name()
    ))
}

/// What a destroy's reply means: `Ok` whether or not there was a record.
pub(crate) fn destroyed(reply: Reply) -> Result<(), WriteError> {
    match reply {
        Reply::Done | Reply::Gone => Ok(()),
        Reply::Failed(e) => Err(WriteError::Store(e)),
        other => Err(unexpected("Destroy", &other, "Done or Failed")),
    }
}

/// What the destroy of an expired record (connect-redis's rule for a TTL
/// <= 0) ends in: [`WriteError::Expired`] whatever the store did with it.
pub(crate) fn expired(reply: Reply) -> WriteError {
    match reply {
        Reply::Done | Reply::Gone | Reply::Failed(_) => WriteError::Expired,
        other => unexpected("Destroy", &other, "Done or Failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;

    #[test]
    fn ttl_is_connect_redis_ceil() {
        let config = Config::builder().secret("s").build().unwrap();
        let cookie = |expires: Option<i64>| {
            let mut c = SessionCookie::new(None, 0);
            c.set_expires(expires);
            c
        };
        let now = from_millis(1_000_000);
        assert_eq!(ttl_secs(&config, &cookie(None), now), 86_400);
        assert_eq!(
            ttl_secs(&config, &cookie(Some(1_000_000 + 3_600_000)), now),
            3600
        );
        assert_eq!(
            ttl_secs(&config, &cookie(Some(1_000_000 + 3_599_001)), now),
            3600
        );
        assert_eq!(ttl_secs(&config, &cookie(Some(1_000_000 + 1)), now), 1);
        assert_eq!(ttl_secs(&config, &cookie(Some(1_000_000)), now), 0);
        assert_eq!(ttl_secs(&config, &cookie(Some(1_000_000 - 1)), now), 0);
        assert_eq!(ttl_secs(&config, &cookie(Some(1_000_000 - 1000)), now), -1);
        assert_eq!(ttl_secs(&config, &cookie(Some(1_000_000 - 1001)), now), -1);
        assert_eq!(ttl_secs(&config, &cookie(Some(1_000_000 - 2000)), now), -2);
    }

    #[test]
    fn r10_sid_is_uid_safe_of_24_bytes() {
        let sid = sid_from_random(&[0xfb; 30]).unwrap();
        assert_eq!(sid.len(), 32);
        assert_eq!(sid, "-_v7".repeat(8));
        assert_eq!(sid_from_random(&[0; 23]), None);
    }
}
