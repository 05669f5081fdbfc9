//! tower-sessions 0.14 with tower-sessions-redis-store 0.16 (and axum-login
//! 0.18 on top), byte for byte.
//!
//! - **Cookie** `id` (default): the session [`Id`], 22 characters of
//!   base64url (no padding) of the 16 little-endian bytes of an `i128`.
//!   Plain (the default), signed or private with the `cookie` crate
//!   ([`Protection`]). Read as tower-cookies reads it: every `Cookie` line,
//!   a line that is not UTF-8 skipped, names and values percent-decoded,
//!   quotes kept, and **the last cookie named `id` wins** (no fallback to an
//!   earlier one when it fails) ([`resolve`]).
//! - **Store key**: the bare id, no prefix ([`store_key`]).
//! - **Record**: `rmp_serde::to_vec(&Record)`, a MessagePack array
//!   `[id as bin8(16) big-endian, data map string -> JSON value, expiry as
//!   time's 9-tuple]` ([`Record::decode`], [`Record::encode`]).
//! - **Expiry**: Redis `SET .. EXAT <expiry's unix seconds>`, `NX` to create
//!   and `XX` to save; the store never checks the stored date, the TTL is
//!   the authority ([`Expiry`], [`ExpiryDate::unix_timestamp`],
//!   [`ttl_secs`]).
//! - **Set-Cookie**: `id=<value>; HttpOnly; SameSite=Strict; Secure; Path=/`
//!   plus `Max-Age` from the expiry, never percent-encoded ([`set_cookie`]);
//!   the removal has only `Path` (and `Domain`), `Max-Age=0` and `Expires`
//!   ([`removal_cookie`]).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use session_sockets_core::Limits;
//! use session_sockets_core::format::tower_sessions::{self, Id, Record, Settings};
//!
//! let settings = Settings::default(); // plain `id` cookies
//! let id = tower_sessions::resolve(
//!     &settings,
//!     [&b"theme=dark; id=EA8ODQwLCgkIBwYFBAMCAQ"[..]],
//!     Limits::default(),
//! ).unwrap();
//! assert_eq!(id, Id::from_i128(0x0102030405060708090a0b0c0d0e0f10));
//! assert_eq!(tower_sessions::store_key(&id).as_bytes(), b"EA8ODQwLCgkIBwYFBAMCAQ");
//!
//! let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
//! let mut record = Record::new(id, tower_sessions::expiry_date(settings.expiry.as_ref(), now));
//! record.data.insert("n".into(), 5.into());
//! let bytes = record.encode();
//! assert_eq!(Record::decode(&bytes).unwrap(), record);
//! assert_eq!(tower_sessions::ttl_secs(&record.expiry_date, now), 14 * 86_400);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::cookie_crate::{IntoKeys, KeyError, Keys, NONCE_LEN, Rejected};
use super::header::{self, Found};
use super::msgpack::{self, Head, Reader};
use super::{CookieError, RecordError, push_removal_dates};
use crate::codec::cookie::Limits;
use crate::codec::cookie_syntax::{CookieSyntaxError, check_domain, check_name, check_path};
use crate::cookie_options::SameSite;
use crate::request::StoreKey;
use crate::session_id::SessionId;

/// tower-sessions' default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "id";
/// How many random bytes a new [`Id`] takes (an `i128`, [R10]).
///
/// [R10]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r10
pub const ID_RANDOM_BYTES: usize = 16;
/// How long a record lives without an expiry setting, or with
/// [`Expiry::OnSessionEnd`]: two weeks, hard-coded in tower-sessions.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(14 * 86_400);
/// The session key axum-login keeps its user under (its default
/// `with_data_key`).
pub const AXUM_LOGIN_KEY: &str = "axum-login.data";

/// A tower-sessions session id: an `i128`. Its text is 22 characters of
/// base64url without padding of the 16 little-endian bytes. `Debug` is
/// redacted ([R16]).
///
/// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id(i128);

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Id(<redacted>)")
    }
}

impl Id {
    /// The id holding `value` (`tower_sessions::session::Id(value)`).
    pub fn from_i128(value: i128) -> Id {
        Id(value)
    }

    /// The `i128` inside.
    pub fn as_i128(&self) -> i128 {
        self.0
    }

    /// A new id from the first [`ID_RANDOM_BYTES`] of `random` (drawn by the
    /// caller from a CSPRNG, [R10]); `None` if fewer are given.
    ///
    /// [R10]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r10
    pub fn from_random(random: &[u8]) -> Option<Id> {
        let bytes: [u8; 16] = random.get(..ID_RANDOM_BYTES)?.try_into().ok()?;
        Some(Id(i128::from_le_bytes(bytes)))
    }

    /// Parses an id as `Id::from_str` does: base64url without padding that
    /// decodes to exactly 16 bytes, canonically (so exactly 22 characters
    /// whose last is one of `AQgw`).
    pub fn parse(text: &str) -> Option<Id> {
        let mut bytes = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(16) => Some(Id(i128::from_le_bytes(bytes))),
            _ => None,
        }
    }

    /// The id's text, as `Display` writes it. Never log it.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_le_bytes())
    }

    /// The id as the core's [`SessionId`].
    pub fn to_session_id(&self) -> SessionId {
        SessionId::new(self.expose())
    }
}

/// The store key of session `id`: its text, with no prefix
/// (tower-sessions-redis-store 0.16).
pub fn store_key(id: &Id) -> StoreKey {
    StoreKey::new(b"", id.expose().as_bytes())
}

/// Whether `key` has the shape of a tower-sessions store key (an [`Id`]'s
/// text: 22 characters of base64url, the last one of `AQgw`): how keyspace
/// events for keys without a prefix are told apart from other keys in the
/// same Redis database. A key of another application can have this shape
/// too; the record decode is the final word.
pub fn is_store_key(key: &[u8]) -> bool {
    std::str::from_utf8(key).is_ok_and(|k| Id::parse(k).is_some())
}

/// How the cookie's value carries the id.
#[derive(Clone, Debug)]
pub enum Protection {
    /// The value is the id (tower-sessions' default).
    Plain,
    /// `SessionManagerLayer::with_signed(key)`: the `cookie` crate's signed
    /// value of the id.
    Signed(Keys),
    /// `SessionManagerLayer::with_private(key)`: the `cookie` crate's
    /// private value of the id, sealed for the cookie's name.
    Private(Keys),
}

/// When a session expires (`tower_sessions::Expiry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// When the browser session ends: no `Max-Age`; the record lives
    /// [`DEFAULT_DURATION`].
    OnSessionEnd,
    /// This long after the last save (the record's date and the cookie's
    /// `Max-Age` are renewed on each save).
    OnInactivity(Duration),
    /// At this date.
    AtDateTime(ExpiryDate),
}

/// A tower-sessions app's session settings (`SessionManagerLayer`'s
/// `with_*` options). The defaults are tower-sessions': cookie `id`,
/// plain, `HttpOnly`, `SameSite=Strict`, `Secure`, `Path=/`, no domain, no
/// expiry.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `with_name`.
    pub cookie_name: String,
    /// `with_signed` / `with_private`.
    pub protection: Protection,
    /// `with_http_only`.
    pub http_only: bool,
    /// `with_same_site`.
    pub same_site: SameSite,
    /// `with_secure`.
    pub secure: bool,
    /// `with_path`.
    pub path: String,
    /// `with_domain`.
    pub domain: Option<String>,
    /// `with_expiry`.
    pub expiry: Option<Expiry>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cookie_name: DEFAULT_COOKIE_NAME.into(),
            protection: Protection::Plain,
            http_only: true,
            same_site: SameSite::Strict,
            secure: true,
            path: "/".into(),
            domain: None,
            expiry: None,
        }
    }
}

impl Settings {
    /// Checks that the name, path and domain can be written into a
    /// `Set-Cookie` header without injecting anything ([R3]).
    ///
    /// [R3]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r3
    pub fn check(&self) -> Result<(), CookieSyntaxError> {
        check_name(self.cookie_name.as_bytes())?;
        check_path(&self.path)?;
        if let Some(domain) = &self.domain {
            check_domain(domain)?;
        }
        Ok(())
    }
}

/// Builders named after `SessionManagerLayer`'s, so that a tower-sessions
/// app's settings read the same on both sides:
///
/// ```
/// use std::time::Duration;
/// use session_sockets_core::Format;
/// use session_sockets_core::format::tower_sessions::Expiry;
///
/// // SessionManagerLayer::new(store).with_signed(key).with_expiry(Expiry::OnInactivity(..))
/// let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// let settings = Format::tower_sessions()
///     .with_signed(key)?
///     .with_expiry(Expiry::OnInactivity(Duration::from_secs(3600)));
/// assert_eq!(settings.cookie_name, "id");
/// # Ok::<(), session_sockets_core::format::cookie_crate::KeyError>(())
/// ```
impl Settings {
    /// `with_signed(key)`: the cookie is the `cookie` crate's signed value
    /// of the id, with these keys (the standard base64 of the app's 64-byte
    /// `cookie::Key`, or a list to rotate: see [`IntoKeys`]).
    pub fn with_signed(mut self, keys: impl IntoKeys) -> Result<Settings, KeyError> {
        self.protection = Protection::Signed(keys.into_keys()?);
        Ok(self)
    }

    /// `with_private(key)`: the cookie is the `cookie` crate's private
    /// value of the id, sealed for the cookie's name, with these keys.
    pub fn with_private(mut self, keys: impl IntoKeys) -> Result<Settings, KeyError> {
        self.protection = Protection::Private(keys.into_keys()?);
        Ok(self)
    }

    /// `with_name`: the cookie's name (default `id`).
    pub fn with_name(mut self, name: impl Into<String>) -> Settings {
        self.cookie_name = name.into();
        self
    }

    /// `with_expiry`: when sessions expire (default: two weeks after each
    /// save, and a browser-session cookie).
    pub fn with_expiry(mut self, expiry: Expiry) -> Settings {
        self.expiry = Some(expiry);
        self
    }

    /// `with_http_only` (default `true`).
    pub fn with_http_only(mut self, http_only: bool) -> Settings {
        self.http_only = http_only;
        self
    }

    /// `with_same_site` (default `Strict`).
    pub fn with_same_site(mut self, same_site: SameSite) -> Settings {
        self.same_site = same_site;
        self
    }

    /// `with_secure` (default `true`).
    pub fn with_secure(mut self, secure: bool) -> Settings {
        self.secure = secure;
        self
    }

    /// `with_path` (default `/`).
    pub fn with_path(mut self, path: impl Into<String>) -> Settings {
        self.path = path.into();
        self
    }

    /// `with_domain` (default none).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Settings {
        self.domain = Some(domain.into());
        self
    }
}

/// The session id a request's `Cookie` header lines name for a
/// tower-sessions app with `settings`, found and checked exactly as
/// tower-sessions does, with no store lookup: the last cookie named
/// `settings.cookie_name`, verified or opened with any of the keys, then
/// parsed as an [`Id`].
pub fn resolve<'a, I>(settings: &Settings, lines: I, limits: Limits) -> Result<Id, CookieError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let name = || settings.cookie_name.clone();
    let value = match header::find(lines, &settings.cookie_name, header::TOWER, limits) {
        Err(e) => return Err(CookieError::HeaderTooLarge(e)),
        Ok(Found::NoHeader) => return Err(CookieError::NoCookieHeader),
        // tower-cookies skips bad lines; `BadLine` is not among its answers.
        Ok(Found::Absent | Found::BadLine) => {
            return Err(CookieError::CookieAbsent {
                cookie_name: name(),
            });
        }
        Ok(Found::Value(v)) => v,
    };
    if value.is_empty() {
        return Err(CookieError::EmptyValue {
            cookie_name: name(),
        });
    }
    let inner = match &settings.protection {
        Protection::Plain => Id::parse(&value),
        Protection::Signed(keys) => match keys.verify(&value) {
            Ok(inner) => Id::parse(inner),
            Err(e) => return Err(rejected(e, name())),
        },
        Protection::Private(keys) => match keys.open(&settings.cookie_name, &value) {
            Ok(inner) => Id::parse(&inner),
            Err(e) => return Err(rejected(e, name())),
        },
    };
    inner.ok_or(CookieError::InvalidId {
        cookie_name: name(),
    })
}

/// The [`CookieError`] for a value the keys refused.
pub(crate) fn rejected(e: Rejected, cookie_name: String) -> CookieError {
    match e {
        Rejected::NotSigned => CookieError::NotSigned { cookie_name },
        Rejected::BadSignature => CookieError::SignatureInvalid { cookie_name },
        Rejected::NotSealed => CookieError::NotSealed { cookie_name },
        Rejected::BadSeal => CookieError::SealInvalid { cookie_name },
        Rejected::NotUtf8 | Rejected::TooLong => CookieError::InvalidId { cookie_name },
    }
}

/// The cookie value tower-sessions writes for `id`: the id, its signed
/// value, or its private value sealed with `nonce` (12 random bytes the
/// caller draws; only [`Protection::Private`] uses them). Not encoded.
pub fn cookie_value(settings: &Settings, id: &Id, nonce: [u8; NONCE_LEN]) -> String {
    let text = id.expose();
    match &settings.protection {
        Protection::Plain => text,
        Protection::Signed(keys) => keys.sign(&text),
        // An id is 22 bytes, far below the sealing bound: this cannot fail.
        Protection::Private(keys) => keys
            .seal(&settings.cookie_name, &text, nonce)
            .unwrap_or_default(),
    }
}

/// The `Set-Cookie` header tower-sessions sends after a save of session
/// `id` at `now` (cookie 0.18's attribute order: `HttpOnly`, `SameSite`,
/// `Secure`, `Path`, `Domain`, `Max-Age`), e.g.
/// `id=<value>; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=3600`.
/// The value is not percent-encoded (tower-cookies writes `Display`). It
/// holds the id: never log it.
pub fn set_cookie(settings: &Settings, id: &Id, nonce: [u8; NONCE_LEN], now: SystemTime) -> String {
    let value = cookie_value(settings, id, nonce);
    let mut out = String::with_capacity(settings.cookie_name.len() + value.len() + 64);
    out.push_str(&settings.cookie_name);
    out.push('=');
    out.push_str(&value);
    if settings.http_only {
        out.push_str("; HttpOnly");
    }
    out.push_str("; SameSite=");
    out.push_str(same_site_name(settings.same_site));
    if settings.secure {
        out.push_str("; Secure");
    }
    out.push_str("; Path=");
    out.push_str(&settings.path);
    if let Some(domain) = &settings.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    if let Some(max_age) = max_age_secs(settings.expiry.as_ref(), now) {
        out.push_str("; Max-Age=");
        out.push_str(&max_age.to_string());
    }
    out
}

/// The `Set-Cookie` header tower-sessions sends to remove the cookie (after
/// `flush`, or for a cookie whose session is gone) at `now`: the request's
/// cookie with `Path` (and `Domain`) set, made a removal, e.g.
/// `id=; Path=/; Max-Age=0; Expires=Sun, 07 Dec 2025 05:41:43 GMT`. It has
/// no `HttpOnly`, `SameSite` or `Secure`, as tower-sessions sends it.
pub fn removal_cookie(settings: &Settings, now: SystemTime) -> String {
    let mut out = String::with_capacity(settings.cookie_name.len() + 80);
    out.push_str(&settings.cookie_name);
    out.push_str("=; Path=");
    out.push_str(&settings.path);
    if let Some(domain) = &settings.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    push_removal_dates(&mut out, now);
    out
}

/// cookie's `SameSite` display.
pub(crate) fn same_site_name(s: SameSite) -> &'static str {
    match s {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
        SameSite::None => "None",
    }
}

/// The expiry date a save at `now` stores under `expiry` (the session's
/// `expiry_date()`): `now + d` for [`Expiry::OnInactivity`], the date for
/// [`Expiry::AtDateTime`], `now + 2 weeks` otherwise. Saturates at the
/// years tower-sessions can store.
pub fn expiry_date(expiry: Option<&Expiry>, now: SystemTime) -> ExpiryDate {
    let from_now = |d: Duration| {
        let nanos =
            unix_nanos(now).saturating_add(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        ExpiryDate::from_unix_nanos_saturating(nanos)
    };
    match expiry {
        Some(Expiry::OnInactivity(d)) => from_now(*d),
        Some(Expiry::AtDateTime(t)) => *t,
        Some(Expiry::OnSessionEnd) | None => from_now(DEFAULT_DURATION),
    }
}

/// The cookie's `Max-Age` for `expiry` at `now`, in whole seconds (cut
/// toward zero, as `time::Duration::whole_seconds`): the duration for
/// [`Expiry::OnInactivity`], the time left (negative once passed) for
/// [`Expiry::AtDateTime`], none otherwise.
pub fn max_age_secs(expiry: Option<&Expiry>, now: SystemTime) -> Option<i64> {
    match expiry? {
        Expiry::OnSessionEnd => None,
        Expiry::OnInactivity(d) => Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        Expiry::AtDateTime(t) => {
            let left = t.unix_nanos() - unix_nanos(now);
            Some(i64::try_from(left / 1_000_000_000).unwrap_or(i64::MAX))
        }
    }
}

/// The store time to live, in seconds from `now`, that ends the record
/// when Redis's `EXAT <expiry.unix_timestamp()>` would: the seconds up to
/// that instant, rounded up. `<= 0`: the record has expired (Redis deletes
/// it at once; a write must destroy instead).
pub fn ttl_secs(expiry: &ExpiryDate, now: SystemTime) -> i64 {
    let at = i128::from(expiry.unix_timestamp()) * 1_000_000_000;
    let left = at - unix_nanos(now);
    let secs = left.div_euclid(1_000_000_000) + i128::from(left.rem_euclid(1_000_000_000) != 0);
    i64::try_from(secs).unwrap_or(if secs > 0 { i64::MAX } else { i64::MIN })
}

/// Nanoseconds since the Unix epoch (negative before it).
fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => i128::try_from(e.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    }
}

/// A record's expiry date exactly as `time::OffsetDateTime` serializes it
/// (the 9-tuple rmp-serde writes), kept as stored so that it is written
/// back byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpiryDate {
    /// The year, -9999..=9999.
    pub year: i32,
    /// The day of the year, 1..=365 (366 in leap years).
    pub ordinal: u16,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// 0..=999_999_999.
    pub nanosecond: u32,
    /// The UTC offset's whole hours, -25..=25.
    pub offset_hours: i8,
    /// The offset's minutes past the hour, -59..=59, with the hours' sign.
    pub offset_minutes: i8,
    /// The offset's seconds past the minute, -59..=59, with the sign.
    pub offset_seconds: i8,
}

/// The first and last years `time` handles without `large-dates`.
const MIN_YEAR: i32 = -9999;
const MAX_YEAR: i32 = 9999;

impl ExpiryDate {
    /// The UTC date of `t`, as `OffsetDateTime::from(t)` (`None` past the
    /// years tower-sessions can store).
    pub fn from_system_time(t: SystemTime) -> Option<ExpiryDate> {
        ExpiryDate::from_unix_nanos(unix_nanos(t))
    }

    /// The UTC date `nanos` nanoseconds after the Unix epoch.
    pub fn from_unix_nanos(nanos: i128) -> Option<ExpiryDate> {
        let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
        // In 0..1e9: fits.
        let nanosecond = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        // Outside the years `time` handles: refused before the year search,
        // which then takes a few steps at most.
        if days < days_before_year(i64::from(MIN_YEAR))
            || days >= days_before_year(i64::from(MAX_YEAR) + 1)
        {
            return None;
        }
        // An estimate within a few years, then steps to the exact year.
        let mut year = 1970 + days.div_euclid(365);
        while days_before_year(year) > days {
            year -= 1;
        }
        while days_before_year(year + 1) <= days {
            year += 1;
        }
        let ordinal = u16::try_from(days - days_before_year(year) + 1).ok()?;
        let year = i32::try_from(year)
            .ok()
            .filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))?;
        Some(ExpiryDate {
            year,
            ordinal,
            // Each is below 24 or 60: fits.
            hour: u8::try_from(of_day / 3600).ok()?,
            minute: u8::try_from(of_day / 60 % 60).ok()?,
            second: u8::try_from(of_day % 60).ok()?,
            nanosecond,
            offset_hours: 0,
            offset_minutes: 0,
            offset_seconds: 0,
        })
    }

    fn from_unix_nanos_saturating(nanos: i128) -> ExpiryDate {
        ExpiryDate::from_unix_nanos(nanos).unwrap_or(if nanos > 0 {
            ExpiryDate::LAST
        } else {
            ExpiryDate::FIRST
        })
    }

    /// `+9999-12-31 23:59:59.999999999 UTC`.
    const LAST: ExpiryDate = ExpiryDate {
        year: MAX_YEAR,
        ordinal: 365,
        hour: 23,
        minute: 59,
        second: 59,
        nanosecond: 999_999_999,
        offset_hours: 0,
        offset_minutes: 0,
        offset_seconds: 0,
    };

    /// `-9999-01-01 00:00 UTC`.
    const FIRST: ExpiryDate = ExpiryDate {
        year: MIN_YEAR,
        ordinal: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanosecond: 0,
        offset_hours: 0,
        offset_minutes: 0,
        offset_seconds: 0,
    };

    /// The offset in seconds east of UTC.
    fn offset_secs(&self) -> i64 {
        i64::from(self.offset_hours) * 3600
            + i64::from(self.offset_minutes) * 60
            + i64::from(self.offset_seconds)
    }

    /// The instant, in nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        let days = days_before_year(i64::from(self.year)) + i64::from(self.ordinal) - 1;
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - self.offset_secs();
        i128::from(secs) * 1_000_000_000 + i128::from(self.nanosecond)
    }

    /// `OffsetDateTime::unix_timestamp`: whole seconds since the epoch,
    /// rounded down. What the Redis store passes as `EXAT`.
    pub fn unix_timestamp(&self) -> i64 {
        // Years are bounded: the seconds fit an i64.
        i64::try_from(self.unix_nanos().div_euclid(1_000_000_000)).unwrap_or(i64::MAX)
    }

    /// Milliseconds since the epoch, rounded down (the core's time unit).
    pub fn unix_millis(&self) -> i64 {
        i64::try_from(self.unix_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
    }

    /// Whether the date has passed at `now` (`date <= now`).
    pub fn has_passed(&self, now: SystemTime) -> bool {
        self.unix_nanos() <= unix_nanos(now)
    }

    /// Whether every part is in the range `time` accepts when it reads one.
    fn is_valid(&self) -> bool {
        let days_in_year = if is_leap(self.year) { 366 } else { 365 };
        (MIN_YEAR..=MAX_YEAR).contains(&self.year)
            && (1..=days_in_year).contains(&self.ordinal)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
            && self.nanosecond < 1_000_000_000
            && (-25..=25).contains(&self.offset_hours)
            && (-59..=59).contains(&self.offset_minutes)
            && (-59..=59).contains(&self.offset_seconds)
    }

    /// `UtcOffset::from_hms`'s sign rule: minutes and seconds take the sign
    /// of the larger parts.
    fn normalize_offset(&mut self) {
        let (h, m) = (self.offset_hours, self.offset_minutes);
        if (h > 0 && m < 0) || (h < 0 && m > 0) {
            self.offset_minutes = -m;
        }
        let (m, s) = (self.offset_minutes, self.offset_seconds);
        if (h > 0 && s < 0) || (h < 0 && s > 0) || (m > 0 && s < 0) || (m < 0 && s > 0) {
            self.offset_seconds = -s;
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(0x99);
        msgpack::write_sint(out, i64::from(self.year));
        msgpack::write_uint(out, u64::from(self.ordinal));
        msgpack::write_uint(out, u64::from(self.hour));
        msgpack::write_uint(out, u64::from(self.minute));
        msgpack::write_uint(out, u64::from(self.second));
        msgpack::write_uint(out, u64::from(self.nanosecond));
        msgpack::write_sint(out, i64::from(self.offset_hours));
        msgpack::write_sint(out, i64::from(self.offset_minutes));
        msgpack::write_sint(out, i64::from(self.offset_seconds));
    }
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days from 1970-01-01 to January 1st of `year` (proleptic Gregorian).
fn days_before_year(year: i64) -> i64 {
    let leaps = |y: i64| y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400);
    365 * (year - 1970) + leaps(year - 1) - leaps(1969)
}

/// A tower-sessions record (`tower_sessions::session::Record`). `Debug`
/// lists the data's keys, not the id or values.
#[derive(Clone, PartialEq)]
pub struct Record {
    /// The session id, as stored in the record.
    pub id: Id,
    /// The session data, in stored order.
    pub data: Map<String, Value>,
    /// When the session expires.
    pub expiry_date: ExpiryDate,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("expiry_date", &self.expiry_date)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// An empty record.
    pub fn new(id: Id, expiry_date: ExpiryDate) -> Record {
        Record {
            id,
            data: Map::new(),
            expiry_date,
        }
    }

    /// Decodes a stored record as `rmp_serde::from_slice::<Record>` does:
    /// the 3-item array tower-sessions writes (the `id` as bin8 of 16
    /// big-endian bytes or an integer, the data map with string keys, the
    /// 9-item date in `time`'s ranges); bytes after the record are ignored,
    /// as there. (rmp-serde also reads a map with field names, which
    /// tower-sessions never writes; that is refused here.)
    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        let mut r = Reader::new(bytes);
        let mp = |e: msgpack::Error| RecordError::MessagePack {
            offset: e.offset,
            problem: e.problem,
        };
        let shape = RecordError::NotTowerRecord;
        if r.head().map_err(mp)? != Head::Array(3) {
            return Err(shape("not an array of id, data and expiry date"));
        }
        let id_marker = bytes.get(r.pos()).copied();
        let id = match r.head().map_err(mp)? {
            Head::Bin(b) if id_marker == Some(0xc4) => {
                let be: [u8; 16] = b.try_into().map_err(|_| shape("the id is not 16 bytes"))?;
                i128::from_be_bytes(be)
            }
            Head::Uint(u) => i128::from(u),
            Head::Int(i) => i128::from(i),
            _ => return Err(shape("the id is not a 16-byte binary")),
        };
        let Head::Map(n) = r.head().map_err(mp)? else {
            return Err(shape("the data is not a map"));
        };
        let n = r.count(n, 2).map_err(mp)?;
        let mut data = Map::new();
        for _ in 0..n {
            let at = r.pos();
            // `String`'s deserializer also takes UTF-8 binaries as keys.
            let key = match r.head().map_err(mp)? {
                Head::Str(k) | Head::Bin(k) => r.utf8(k, at).map_err(mp)?,
                _ => return Err(shape("a data key is not a string")),
            };
            let value = r.value(2).map_err(mp)?;
            data.insert(key, value);
        }
        if r.head().map_err(mp)? != Head::Array(9) {
            return Err(shape("the expiry date is not a 9-item array"));
        }
        let mut parts = [0i64; 9];
        for part in &mut parts {
            *part = match r.head().map_err(mp)? {
                Head::Uint(u) => i64::try_from(u).unwrap_or(i64::MAX),
                Head::Int(i) => i,
                _ => return Err(shape("a part of the expiry date is not an integer")),
            };
        }
        let bad = || shape("the expiry date is out of range");
        let mut expiry_date = ExpiryDate {
            year: i32::try_from(parts[0]).map_err(|_| bad())?,
            ordinal: u16::try_from(parts[1]).map_err(|_| bad())?,
            hour: u8::try_from(parts[2]).map_err(|_| bad())?,
            minute: u8::try_from(parts[3]).map_err(|_| bad())?,
            second: u8::try_from(parts[4]).map_err(|_| bad())?,
            nanosecond: u32::try_from(parts[5]).map_err(|_| bad())?,
            offset_hours: i8::try_from(parts[6]).map_err(|_| bad())?,
            offset_minutes: i8::try_from(parts[7]).map_err(|_| bad())?,
            offset_seconds: i8::try_from(parts[8]).map_err(|_| bad())?,
        };
        if !expiry_date.is_valid() {
            return Err(bad());
        }
        expiry_date.normalize_offset();
        Ok(Record {
            id: Id(id),
            data,
            expiry_date,
        })
    }

    /// The record as `rmp_serde::to_vec(&record)` writes it: byte for byte
    /// the same as the real crate for the same id, data (in this map's
    /// order) and date.
    pub fn encode(&self) -> Vec<u8> {
        encode_record(&self.id, &self.data, &self.expiry_date)
    }
}

/// [`Record::encode`] of a record's parts, without building a [`Record`].
pub fn encode_record(id: &Id, data: &Map<String, Value>, expiry_date: &ExpiryDate) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(0x93);
    msgpack::write_bin(&mut out, &id.0.to_be_bytes());
    msgpack::write_map_len(&mut out, data.len());
    for (k, v) in data {
        msgpack::write_str(&mut out, k);
        msgpack::write_value(&mut out, v);
    }
    expiry_date.write(&mut out);
    out
}

/// What axum-login keeps under [`AXUM_LOGIN_KEY`]: `{"user_id": ..,
/// "auth_hash": [..]}` (its `Data<UserId>`).
#[derive(Clone, PartialEq, Eq)]
pub struct AxumLogin<'a> {
    /// The user's id, as the app's `AuthUser::Id` serializes (a number or
    /// a string, usually).
    pub user_id: &'a Value,
    /// The session auth hash axum-login compares with the user's current
    /// one on every request (a password change ends the session there).
    pub auth_hash: Option<Vec<u8>>,
}

impl std::fmt::Debug for AxumLogin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AxumLogin(<redacted>)")
    }
}

/// The axum-login user in session `data`, if one is logged in (a non-null
/// `user_id` under [`AXUM_LOGIN_KEY`]).
///
/// The record alone does not say whether the user is still valid:
/// axum-login checks the auth hash against its backend on every request.
/// A socket that must match it exactly compares `auth_hash` the same way.
pub fn axum_login(data: &Map<String, Value>) -> Option<AxumLogin<'_>> {
    let entry = data.get(AXUM_LOGIN_KEY)?.as_object()?;
    let user_id = entry.get("user_id").filter(|v| !v.is_null())?;
    let auth_hash = entry.get("auth_hash").and_then(|h| {
        h.as_array()?
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<Vec<u8>>>()
    });
    Some(AxumLogin { user_id, auth_hash })
}

/// The value axum-login stores under [`AXUM_LOGIN_KEY`] at login, fields
/// in its struct order: `{"user_id": user_id, "auth_hash": [..]}`.
pub fn axum_login_value(user_id: Value, auth_hash: &[u8]) -> Value {
    let mut m = Map::new();
    m.insert("user_id".into(), user_id);
    m.insert(
        "auth_hash".into(),
        Value::Array(auth_hash.iter().map(|&b| Value::from(b)).collect()),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    const PROBE_ID: i128 = 0x0102030405060708090a0b0c0d0e0f10;

    fn keys() -> Keys {
        Keys::from_bytes([(0u8..64).collect::<Vec<_>>()]).unwrap()
    }

    fn resolve_with(p: Protection, header: &str) -> Result<Id, CookieError> {
        let settings = Settings {
            protection: p,
            ..Settings::default()
        };
        resolve(&settings, [header.as_bytes()], Limits::default())
    }

    #[test]
    fn r15_ids_parse_exactly_as_tower_sessions() {
        let id = Id::from_i128(PROBE_ID);
        assert_eq!(id.expose(), "EA8ODQwLCgkIBwYFBAMCAQ");
        assert_eq!(Id::parse("EA8ODQwLCgkIBwYFBAMCAQ"), Some(id));
        for bad in [
            "EA8ODQwLCgkIBwYFBAMCAQ==",
            "EA8ODQwLCgkIBwYFBAMCAQA",
            "EA8ODQwLCgkIBwYFBAMCA",
            "EA8ODQwLCgkIBwYFBAMCAR",
            "EA8ODQwLCgkIBwYFBAMC+Q",
            "",
            "ééééééééééé",
        ] {
            assert_eq!(Id::parse(bad), None, "{bad}");
        }
        assert_eq!(format!("{id:?}"), "Id(<redacted>)");
    }

    #[test]
    fn store_keys_are_told_apart_by_shape() {
        assert!(is_store_key(b"EA8ODQwLCgkIBwYFBAMCAQ"));
        assert!(!is_store_key(b"EA8ODQwLCgkIBwYFBAMCAR"));
        assert!(!is_store_key(b"sess:EA8ODQwLCgkIBwYFBAMCAQ"));
        assert!(!is_store_key(b"\xff"));
    }

    #[test]
    fn r10_new_ids_take_16_random_bytes() {
        let id = Id::from_random(&[0xff; 16]).unwrap();
        assert_eq!(id.as_i128(), -1);
        assert_eq!(id.expose(), "_____________________w");
        assert_eq!(Id::from_random(&[0; 15]), None);
        assert_eq!(Id::parse(&id.expose()), Some(id));
    }

    #[test]
    fn plain_cookies_resolve_with_towers_rules() {
        let a = "MxbEIhDXR1g0Veb--2SIwQ";
        let b = "FvIqMnIDHlgoXA62XDs97Q";
        let p = || Protection::Plain;
        let text = |r: Result<Id, CookieError>| r.map(|i| i.expose());
        assert_eq!(
            text(resolve_with(p(), &format!("id={a}; id={b}"))),
            Ok(b.into())
        );
        assert_eq!(
            text(resolve_with(p(), &format!("id=garbage; id={a}"))),
            Ok(a.into())
        );
        assert_eq!(
            resolve_with(p(), &format!("id={a}; id=garbage"))
                .unwrap_err()
                .reason(),
            "invalid_id"
        );
        assert_eq!(
            text(resolve_with(p(), &format!(" id = {a} "))),
            Ok(a.into())
        );
        assert_eq!(
            resolve_with(p(), &format!("id=\"{a}\""))
                .unwrap_err()
                .reason(),
            "invalid_id"
        );
        assert_eq!(
            text(resolve_with(p(), "id=Mxb%45IhDXR1g0Veb--2SIwQ")),
            Ok(a.into())
        );
        assert_eq!(
            resolve_with(p(), "x=1").unwrap_err().reason(),
            "cookie_absent"
        );
        assert_eq!(
            resolve_with(p(), "id=").unwrap_err().reason(),
            "empty_value"
        );
        let none: [&[u8]; 0] = [];
        assert_eq!(
            resolve(&Settings::default(), none, Limits::default()),
            Err(CookieError::NoCookieHeader)
        );
    }

    #[test]
    fn r36_signed_and_private_cookies_of_the_real_crate_resolve() {
        let signed = "+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ";
        let id = resolve_with(Protection::Signed(keys()), &format!("id={signed}")).unwrap();
        assert_eq!(id.expose(), "vNPPFgK-j7a-idNRnFp0KQ");
        // Percent-encoded by a client: decoded before verifying (R19).
        let encoded = signed
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(
            resolve_with(Protection::Signed(keys()), &format!("id={encoded}")),
            Ok(id)
        );
        let sealed = "P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M=";
        let id = resolve_with(Protection::Private(keys()), &format!("id={sealed}")).unwrap();
        assert_eq!(id.expose(), "Ufp3NWpswET9tC9C-z8isg");
        // The wrong mode says so.
        assert_eq!(
            resolve_with(Protection::Signed(keys()), &format!("id={sealed}"))
                .unwrap_err()
                .reason(),
            "not_signed"
        );
        let forged = format!("id={}{}", &signed[..44], "Ufp3NWpswET9tC9C-z8isg");
        assert_eq!(
            resolve_with(Protection::Signed(keys()), &forged)
                .unwrap_err()
                .reason(),
            "signature_invalid"
        );
        assert_eq!(
            resolve_with(Protection::Private(keys()), "id=vNPPFgK-j7a-idNRnFp0KQ")
                .unwrap_err()
                .reason(),
            "not_sealed"
        );
        assert_eq!(
            resolve_with(Protection::Plain, &format!("id={signed}"))
                .unwrap_err()
                .reason(),
            "invalid_id"
        );
    }

    #[test]
    fn r36_a_private_cookie_moved_to_another_name_does_not_open() {
        let sealed = "P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M=";
        let settings = Settings {
            cookie_name: "sid".into(),
            protection: Protection::Private(keys()),
            ..Settings::default()
        };
        let header = format!("sid={sealed}");
        assert_eq!(
            resolve(&settings, [header.as_bytes()], Limits::default())
                .unwrap_err()
                .reason(),
            "seal_invalid"
        );
    }

    #[test]
    fn records_decode_and_encode_byte_exact_as_the_real_crate_wrote_them() {
        // tower_sessions_probe.out.txt: "record(2 keys)" and "record(numbers)".
        let two = hex(
            "93 c4 10 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 82 a1 6e 05 af 61 78 75 6d \
             2d 6c 6f 67 69 6e 2e 64 61 74 61 82 a9 61 75 74 68 5f 68 61 73 68 93 01 02 03 a7 75 \
             73 65 72 5f 69 64 01 99 cd 07 ea 79 0c 22 38 ce 2f 07 2f 40 00 00 00",
        );
        let rec = Record::decode(&two).unwrap();
        assert_eq!(rec.id, Id::from_i128(PROBE_ID));
        assert_eq!(rec.data["n"], json!(5));
        assert_eq!(
            rec.data[AXUM_LOGIN_KEY],
            json!({"auth_hash": [1, 2, 3], "user_id": 1})
        );
        assert_eq!(
            (
                rec.expiry_date.year,
                rec.expiry_date.ordinal,
                rec.expiry_date.nanosecond
            ),
            (2026, 121, 789_000_000)
        );
        // 2026-05-01T12:34:56.789Z
        assert_eq!(rec.expiry_date.unix_millis(), 1_777_638_896_789);
        assert_eq!(rec.encode(), two);
        let numbers = hex(
            "93 c4 10 ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff 81 a1 66 87 a1 61 ff a1 62 \
             c3 a3 62 69 67 cf ff ff ff ff ff ff ff ff a3 6e 65 67 d3 80 00 00 00 00 00 00 00 a3 \
             6e 75 6c c0 a1 73 a1 78 a1 7a cb 3f f8 00 00 00 00 00 00 99 cd 07 ea cd 01 6d 17 3b \
             3b 00 02 1e 00",
        );
        let rec = Record::decode(&numbers).unwrap();
        assert_eq!(rec.id.as_i128(), -1);
        assert_eq!(rec.data["f"]["neg"], json!(i64::MIN));
        assert_eq!(rec.data["f"]["big"], json!(u64::MAX));
        assert_eq!(
            (rec.expiry_date.offset_hours, rec.expiry_date.offset_minutes),
            (2, 30)
        );
        // 2026-12-31T23:59:59+02:30
        assert_eq!(rec.expiry_date.unix_timestamp(), 1_798_752_599);
        assert_eq!(rec.encode(), numbers);
    }

    #[test]
    fn the_record_id_is_the_reversed_cookie_bytes() {
        let rec = Record::new(Id::from_i128(PROBE_ID), ExpiryDate::FIRST);
        let bytes = rec.encode();
        let mut cookie_bytes = URL_SAFE_NO_PAD.decode("EA8ODQwLCgkIBwYFBAMCAQ").unwrap();
        cookie_bytes.reverse();
        assert_eq!(bytes[3..19], cookie_bytes[..]);
    }

    #[test]
    fn r18_malformed_records_are_errors_with_a_place() {
        let good = Record::new(Id::from_i128(7), ExpiryDate::LAST).encode();
        for cut in 0..good.len() {
            assert!(Record::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Trailing bytes are ignored, as rmp-serde's from_slice does.
        let mut longer = good.clone();
        longer.push(0xc1);
        assert!(Record::decode(&longer).is_ok());
        let mut bad_ordinal = good.clone();
        // The date's ordinal 365 (`cd 01 6d`) is followed by 11 bytes.
        let at = bad_ordinal.len() - 14;
        assert_eq!(bad_ordinal[at..at + 3], [0xcd, 0x01, 0x6d]);
        bad_ordinal[at + 2] = 0x6f; // 367
        assert_eq!(
            Record::decode(&bad_ordinal),
            Err(RecordError::NotTowerRecord(
                "the expiry date is out of range"
            ))
        );
        assert!(matches!(
            Record::decode(b"{}"),
            Err(RecordError::NotTowerRecord(_))
        ));
        // An integer id is read as rmp-serde reads it.
        let mut int_id = vec![0x93, 0x05, 0x80];
        ExpiryDate::LAST.write(&mut int_id);
        assert_eq!(Record::decode(&int_id).unwrap().id.as_i128(), 5);
    }

    #[test]
    fn expiry_dates_follow_towers_rules() {
        let now = UNIX_EPOCH + Duration::from_millis(1_796_622_103_106);
        let two_weeks = expiry_date(None, now);
        assert_eq!(two_weeks.unix_timestamp(), 1_796_622_103 + 14 * 86_400);
        assert_eq!(expiry_date(Some(&Expiry::OnSessionEnd), now), two_weeks);
        let hour = Expiry::OnInactivity(Duration::from_secs(3600));
        assert_eq!(
            expiry_date(Some(&hour), now).unix_timestamp(),
            1_796_625_703
        );
        assert_eq!(max_age_secs(Some(&hour), now), Some(3600));
        assert_eq!(max_age_secs(None, now), None);
        assert_eq!(max_age_secs(Some(&Expiry::OnSessionEnd), now), None);
        // AtDateTime: the time left, cut toward zero; negative once passed.
        let at = ExpiryDate::from_unix_nanos(unix_nanos(now) + 172_799_900_000_000).unwrap();
        assert_eq!(
            max_age_secs(Some(&Expiry::AtDateTime(at)), now),
            Some(172_799)
        );
        let past = ExpiryDate::from_unix_nanos(unix_nanos(now) - 5_300_000_000).unwrap();
        assert_eq!(max_age_secs(Some(&Expiry::AtDateTime(past)), now), Some(-5));
        assert_eq!(expiry_date(Some(&Expiry::AtDateTime(at)), now), at);
    }

    #[test]
    fn r13_ttl_is_exat_seconds_from_now_and_nonpositive_once_passed() {
        let now = UNIX_EPOCH + Duration::from_millis(1_000_000_400);
        let date =
            |secs: i64| ExpiryDate::from_unix_nanos(i128::from(secs) * 1_000_000_000).unwrap();
        // EXAT 1_003_600 is 3599.6 s away: 3600 s keeps the key until then.
        assert_eq!(ttl_secs(&date(1_003_600), now), 3600);
        assert_eq!(ttl_secs(&date(1_000_001), now), 1);
        assert_eq!(ttl_secs(&date(1_000_000), now), 0);
        assert_eq!(ttl_secs(&date(999_999), now), -1);
        assert!(date(1_000_000).has_passed(now));
        assert!(!date(1_000_001).has_passed(now));
    }

    #[test]
    fn dates_convert_both_ways_across_years() {
        for secs in [
            0i64,
            -1,
            86_399,
            951_782_400,     // 2000-02-29
            4_107_542_400,   // 2100-03-01
            -62_135_596_800, // 0001-01-01
            253_402_300_799, // 9999-12-31T23:59:59
        ] {
            let d = ExpiryDate::from_unix_nanos(i128::from(secs) * 1_000_000_000).unwrap();
            assert!(d.is_valid(), "{secs}");
            assert_eq!(d.unix_timestamp(), secs);
        }
        let leap_day = ExpiryDate::from_unix_nanos(951_782_400_000_000_000).unwrap();
        assert_eq!((leap_day.year, leap_day.ordinal), (2000, 60));
        assert_eq!(
            ExpiryDate::from_unix_nanos(253_402_300_800_000_000_000),
            None
        );
        assert_eq!(
            ExpiryDate::from_unix_nanos_saturating(i128::MAX),
            ExpiryDate::LAST
        );
        // Far outside the range: refused at once, not searched year by year.
        let far = i128::from(i64::MAX) * 1_000_000_000;
        assert_eq!(ExpiryDate::from_unix_nanos(far), None);
        assert_eq!(ExpiryDate::from_unix_nanos(-far), None);
        let min = ExpiryDate::from_unix_nanos(ExpiryDate::FIRST.unix_nanos()).unwrap();
        assert_eq!(min, ExpiryDate::FIRST);
    }

    #[test]
    fn offsets_take_times_sign_rule() {
        let mut d = ExpiryDate::FIRST;
        d.offset_hours = -2;
        d.offset_minutes = 30;
        d.offset_seconds = 5;
        d.normalize_offset();
        assert_eq!((d.offset_minutes, d.offset_seconds), (-30, -5));
    }

    #[test]
    fn set_cookie_headers_are_towers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_622_103);
        let id = Id::parse("s8Y5LdxhA7fF4IHePT46eA").unwrap();
        let mut s = Settings::default();
        assert_eq!(
            set_cookie(&s, &id, [0; 12], now),
            "id=s8Y5LdxhA7fF4IHePT46eA; HttpOnly; SameSite=Strict; Secure; Path=/"
        );
        s.expiry = Some(Expiry::OnInactivity(Duration::from_secs(3600)));
        s.domain = Some("example.com".into());
        assert_eq!(
            set_cookie(&s, &id, [0; 12], now),
            "id=s8Y5LdxhA7fF4IHePT46eA; HttpOnly; SameSite=Strict; Secure; Path=/; \
             Domain=example.com; Max-Age=3600"
        );
        assert_eq!(
            removal_cookie(&s, now),
            "id=; Path=/; Domain=example.com; Max-Age=0; Expires=Sun, 07 Dec 2025 05:41:43 GMT"
        );
        let signed = Settings {
            protection: Protection::Signed(keys()),
            ..Settings::default()
        };
        let v = Id::parse("vNPPFgK-j7a-idNRnFp0KQ").unwrap();
        assert_eq!(
            set_cookie(&signed, &v, [0; 12], now),
            "id=+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ; HttpOnly; \
             SameSite=Strict; Secure; Path=/"
        );
        let private = Settings {
            protection: Protection::Private(keys()),
            ..Settings::default()
        };
        let value = cookie_value(&private, &v, [9; 12]);
        assert_eq!(value.len(), 68);
        let header = format!("id={value}");
        assert_eq!(
            resolve(&private, [header.as_bytes()], Limits::default()),
            Ok(v)
        );
        assert!(Settings::default().check().is_ok());
        let bad = Settings {
            path: "/; Domain=evil".into(),
            ..Settings::default()
        };
        assert_eq!(bad.check(), Err(CookieSyntaxError::Path));
    }

    #[test]
    fn axum_login_data_is_read_and_written_in_its_shape() {
        let mut data = Map::new();
        assert!(axum_login(&data).is_none());
        data.insert(
            AXUM_LOGIN_KEY.into(),
            axum_login_value(json!(42), &[1, 2, 255]),
        );
        assert_eq!(
            serde_json::to_string(&data[AXUM_LOGIN_KEY]).unwrap(),
            r#"{"user_id":42,"auth_hash":[1,2,255]}"#
        );
        let login = axum_login(&data).unwrap();
        assert_eq!(login.user_id, &json!(42));
        assert_eq!(login.auth_hash.as_deref(), Some(&[1u8, 2, 255][..]));
        data.insert(
            AXUM_LOGIN_KEY.into(),
            json!({"user_id": null, "auth_hash": null}),
        );
        assert!(axum_login(&data).is_none());
    }
}
