//! What the write machines share: their error, connect-redis's TTL rule and
//! the one-request-at-a-time plumbing that ties replies to requests.

use std::time::SystemTime;

use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::record::SessionCookie;
use crate::request::{Reply, Request, RequestId};
use crate::time::millis;

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
/// or a passed deadline finishes it with [`Failure::Timeout`](crate::Failure::Timeout); the
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
    /// late answer finishes with [`Failure::Timeout`](crate::Failure::Timeout); answers to
    /// unknown, already answered or not yet polled ids are ignored.
    pub(crate) fn accept(&mut self, id: RequestId, reply: Reply, now: SystemTime) -> Option<Reply> {
        match self.io.accept(id, now)? {
            true => Some(reply),
            false => {
                self.finish(Err(Failure::Timeout.into()));
                None
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<SystemTime> {
        self.io.deadline()
    }

    pub(crate) fn handle_timeout(&mut self, now: SystemTime) {
        if self.io.is_past_deadline(now) {
            self.finish(Err(Failure::Timeout.into()));
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

/// What a destroy's reply means: `Ok` whether or not there was a record.
pub(crate) fn destroyed(reply: Reply) -> Result<(), WriteError> {
    match reply {
        Reply::Done | Reply::Gone => Ok(()),
        Reply::Failed(e) => Err(Failure::Store(e).into()),
        other => Err(unexpected("Destroy", &other, "Done or Failed").into()),
    }
}

/// What the destroy of an expired record (connect-redis's rule for a TTL
/// <= 0) ends in: [`WriteError::Expired`] whatever the store did with it.
pub(crate) fn expired(reply: Reply) -> WriteError {
    match reply {
        Reply::Done | Reply::Gone | Reply::Failed(_) => WriteError::Expired,
        other => unexpected("Destroy", &other, "Done or Failed").into(),
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
