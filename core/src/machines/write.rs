//! What the write machines share: connect-redis's TTL rule, express-session's
//! ids, and what a destroy's reply means.

use std::time::SystemTime;

use crate::codec::record::SessionCookie;
use crate::config::Config;
use crate::error::{Failure, WriteError, unexpected};
use crate::request::Reply;
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
/// `uid(24)`, 192 bits ([R10]).
///
/// [R10]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r10
pub const SID_RANDOM_BYTES: usize = 24;

/// The session id express-session's `uid-safe` makes from random bytes:
/// the first [`SID_RANDOM_BYTES`] as base64url without padding (32
/// characters). `None` if fewer bytes are given.
pub fn sid_from_random(bytes: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let bytes = bytes.get(..SID_RANDOM_BYTES)?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A string that holds a session id (a `Set-Cookie` value): `Debug` is
/// redacted ([R16]).
///
/// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
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
