//! The session id a request names: its `Cookie` header lines resolved as
//! the configured format's HTTP app resolves them (express-session 1.x by
//! default: cookie 0.7.2 parsing, cookie-signature 1.0.7 verification,
//! secret rotation; tower-sessions' and actix-session's `cookie` crate
//! rules otherwise), and the checks a handshake makes before it asks the
//! store ([`precheck`]). No IO.

use crate::codec::cookie::{Lookup, Scan, ValueBuf};
use crate::codec::signature::{SIGNED_PREFIX, unsign};
use crate::config::Config;
use crate::error::{Failure, HandshakeError};
use crate::format::{Format, too_large};
use crate::origin::{Gathered, eq_ignore_case};
use crate::session::SessionId;

/// The session id a request's cookie names, after verification. `Debug` is
/// redacted.
pub struct ResolvedSid {
    buf: ValueBuf,
    start: usize,
}

impl ResolvedSid {
    /// The id's bytes (UTF-8: the JavaScript string express-session sees).
    pub fn expose(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The id as a [`SessionId`].
    pub fn to_session_id(&self) -> SessionId {
        SessionId::new(&*String::from_utf8_lossy(self.expose()))
    }
}

impl std::fmt::Debug for ResolvedSid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResolvedSid(<redacted>)")
    }
}

/// Resolves the session id named by a request's `Cookie` header lines
/// exactly as the configured format's HTTP app does, without any IO:
/// express-session 1.x (cookie 0.7.2 parsing, cookie-signature 1.0.7
/// verification, secret rotation), or tower-sessions / actix-session (the
/// `cookie` crate's parsing, its plain, signed or private values with a
/// list of keys, and each framework's rule for duplicates).
///
/// Errors are the cookie-level [`HandshakeError`]s: `NoCookieHeader`,
/// `CookieAbsent`, `EmptyValue`, `Unsigned`, `SignatureInvalid`,
/// `SignedEmptySid` and `HeaderTooLarge`; with the `cookie` crate's
/// formats also `NotUtf8Header`, `NotSigned`, `NotSealed`, `SealInvalid`,
/// `InvalidId` and `KeyTooLong`.
pub fn resolve_cookie<'a, I>(config: &Config, lines: I) -> Result<ResolvedSid, HandshakeError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut buf = ValueBuf::new();
    if !matches!(config.format, Format::Express) {
        config.resolve_format(lines, &mut buf)?;
        return Ok(ResolvedSid { buf, start: 0 });
    }
    let mut scan = Scan::new(&config.cookie_finder, config.limits, &mut buf);
    for line in lines {
        scan.line(line);
    }
    let lookup = scan.finish();
    let start = verify(config, lookup, &mut buf)?;
    Ok(ResolvedSid { buf, start })
}

/// Verifies the value a scan found, in `buf`: on success `buf[start..]` is
/// the session id (the buffer is cut after it).
fn verify(config: &Config, lookup: Lookup, buf: &mut ValueBuf) -> Result<usize, HandshakeError> {
    let name = || config.cookie_name.clone();
    match lookup {
        Lookup::NoHeader => return Err(HandshakeError::NoCookieHeader),
        Lookup::Absent => {
            return Err(HandshakeError::CookieAbsent {
                cookie_name: name(),
            });
        }
        Lookup::TooLarge(e) => return Err(HandshakeError::HeaderTooLarge(e)),
        Lookup::Found => {}
    }
    if buf.is_empty() {
        return Err(HandshakeError::EmptyValue {
            cookie_name: name(),
        });
    }
    let Some(signed) = buf.strip_prefix(SIGNED_PREFIX) else {
        return if config.accept_unsigned {
            Ok(0)
        } else {
            Err(HandshakeError::Unsigned {
                cookie_name: name(),
            })
        };
    };
    let Some(sid) = unsign(signed, &config.keys) else {
        return Err(HandshakeError::SignatureInvalid {
            cookie_name: name(),
        });
    };
    if sid.is_empty() {
        return Err(HandshakeError::SignedEmptySid {
            cookie_name: name(),
        });
    }
    let (start, len) = (SIGNED_PREFIX.len(), sid.len());
    buf.truncate(start + len);
    Ok(start)
}

/// What a handshake checks before it asks the store: `Origin`, the session
/// cookie and its signature, the id's shape. On success `buf[start..]` is
/// the session id.
pub(crate) fn check_headers<I, N, V>(
    config: &Config,
    headers: I,
    buf: &mut ValueBuf,
) -> Result<usize, HandshakeError>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    if !matches!(config.format, Format::Express) {
        return check_format_headers(config, headers, buf);
    }
    let mut scan = Scan::new(&config.cookie_finder, config.limits, buf);
    // `Origin` and `Host` are kept as the caller's values, not copied.
    let mut origin = Gathered::new();
    for (name, value) in headers {
        let name = name.as_ref();
        if eq_ignore_case(name, b"cookie") {
            scan.line(value.as_ref());
        } else {
            origin.offer(name, || value);
        }
    }
    if let Err(r) = config.origin.check_seen(&origin.seen()) {
        return Err(HandshakeError::OriginRejected(r));
    }
    let lookup = scan.finish();
    let start = verify(config, lookup, buf)?;
    if !config.usable_sid(buf.get(start..).unwrap_or_default()) {
        return Err(Failure::InvalidSessionId.into());
    }
    Ok(start)
}

/// [`check_headers`] in the `cookie` crate's formats: the `Cookie` lines
/// are copied (within the byte bound) while `Origin` is gathered, then
/// resolved by the format's rules, which need every line (tower-sessions'
/// last duplicate wins; one line that is not UTF-8 hides every cookie from
/// actix-web).
fn check_format_headers<I, N, V>(
    config: &Config,
    headers: I,
    buf: &mut ValueBuf,
) -> Result<usize, HandshakeError>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let limit = config.limits.max_header_bytes;
    let mut raw = smallvec::SmallVec::<[u8; 512]>::new();
    let mut ends = smallvec::SmallVec::<[usize; 4]>::new();
    let mut bytes = 0usize;
    let mut origin = Gathered::new();
    for (name, value) in headers {
        let name = name.as_ref();
        if eq_ignore_case(name, b"cookie") {
            let line = value.as_ref();
            bytes = bytes.saturating_add(line.len());
            if bytes <= limit {
                raw.extend_from_slice(line);
                ends.push(raw.len());
            }
        } else {
            origin.offer(name, || value);
        }
    }
    if let Err(r) = config.origin.check_seen(&origin.seen()) {
        return Err(HandshakeError::OriginRejected(r));
    }
    if bytes > limit {
        return Err(too_large(limit));
    }
    let lines = ends.iter().scan(0, |start, &end| {
        let line = raw.get(*start..end).unwrap_or_default();
        *start = end;
        Some(line)
    });
    config.resolve_format(lines, buf)?;
    if !config.usable_sid(buf) {
        return Err(Failure::InvalidSessionId.into());
    }
    Ok(0)
}

/// The checks a [`Handshake`](crate::machines::Handshake) makes before it asks the store, alone: the
/// `Origin` policy ([R5]), then the session cookie, its signature and the
/// id's shape, with no IO and the same errors in the same order. What a
/// server can afford on every engine.io open, to refuse anonymous ones
/// before anything is allocated for them ([R39]). `Ok` says only that the
/// cookie verifies: the session may still have ended.
///
/// ```
/// use session_sockets_core::codec::resolve::precheck;
/// use session_sockets_core::{Config, HandshakeError};
///
/// let config = Config::builder().secret("keyboard cat").build().unwrap();
/// assert_eq!(precheck(&config, [("accept", "*/*")]), Err(HandshakeError::NoCookieHeader));
/// let cookie = "connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU";
/// assert_eq!(precheck(&config, [("cookie", cookie)]), Ok(()));
/// ```
///
/// [R5]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r5
/// [R39]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r39
pub fn precheck<I, N, V>(config: &Config, headers: I) -> Result<(), HandshakeError>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    check_headers(config, headers, &mut ValueBuf::new()).map(|_| ())
}
