//! The format a [`Config`] speaks ([`Format`]), and what every machine asks
//! of it: the store key of an id, the record's codec, its expiry and TTL,
//! a new session's id and `Set-Cookie`, the removal cookie. The machines
//! stay format-agnostic (compare-and-set on the exact bytes loaded, the
//! same conflict rule); these are the only places that look at the
//! format.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::actix_session::{self, SessionKey, StoredTexts};
use super::cookie_crate::{IntoKeys, KeyError, NONCE_LEN};
use super::tower_sessions::{self, Expiry, Id};
use super::{CookieError, RecordError as FormatRecordError};
use crate::codec::cookie::{LimitExceeded, ValueBuf};
use crate::codec::record::{self, RecordError};
use crate::codec::set_cookie::{CookieSyntaxError, clear_cookie_header, cookie_header};
use crate::config::Config;
use crate::error::{Failure, HandshakeError, WriteError};
use crate::machines::write::{SID_RANDOM_BYTES, sid_from_random, ttl_secs};
use crate::request::StoreKey;
use crate::session::{Meta, Session, SessionId};
use crate::time::millis;

/// The session format of the HTTP app whose sessions the sockets share: it
/// decides the cookie (name, and how its value names a session: express's
/// `s:` signature, or the `cookie` crate's plain, signed or private
/// values), the store key, the record's codec, and expiry and TTL. Chosen
/// once, in [`ConfigBuilder::format`](crate::ConfigBuilder::format);
/// express-session is the default.
///
/// ```
/// use session_sockets_core::{Config, Format};
///
/// // A tower-sessions app: `SessionManagerLayer::new(store).with_private(key)`.
/// let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// let config = Config::builder()
///     .format(Format::tower_sessions().with_private(key)?)
///     .build()?;
/// assert_eq!(config.cookie_name(), "id");
/// assert_eq!(config.key_prefix(), ""); // tower-sessions-redis-store keys are bare ids
///
/// // An actix-session app: `SessionMiddleware::new(store, key)` (private cookies).
/// let config = Config::builder().format(Format::actix_session(key)?).build()?;
/// assert_eq!(config.format().name(), "actix-session");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Format {
    /// express-session 1.x with connect-redis: cookie `connect.sid`, `s:`
    /// signatures with the config's secrets, JSON records under `sess:`.
    /// Its settings are the [`ConfigBuilder`](crate::ConfigBuilder)'s own.
    #[default]
    Express,
    /// tower-sessions 0.14 with tower-sessions-redis-store 0.16 (and
    /// axum-login on top): see [`tower_sessions`](super::tower_sessions).
    TowerSessions(tower_sessions::Settings),
    /// actix-session 0.10 / 0.11 with its Redis store: see
    /// [`actix_session`](super::actix_session).
    ActixSession(actix_session::Settings),
}

impl From<tower_sessions::Settings> for Format {
    fn from(settings: tower_sessions::Settings) -> Self {
        Format::TowerSessions(settings)
    }
}

impl From<actix_session::Settings> for Format {
    fn from(settings: actix_session::Settings) -> Self {
        Format::ActixSession(settings)
    }
}

impl Format {
    /// tower-sessions' defaults (plain `id` cookies, two weeks), to adjust
    /// with the same `with_*` calls as the app's `SessionManagerLayer`,
    /// e.g. `Format::tower_sessions().with_signed(key)?`.
    pub fn tower_sessions() -> tower_sessions::Settings {
        tower_sessions::Settings::default()
    }

    /// actix-session's defaults with the app's key (private `id` cookies, a
    /// browser session of a day), to adjust with the same calls as the
    /// app's `SessionMiddleware::builder(store, key)`. `keys` is the
    /// standard base64 of the app's 64-byte `cookie::Key`, or a list to
    /// rotate ([`IntoKeys`]).
    pub fn actix_session(keys: impl IntoKeys) -> Result<actix_session::Settings, KeyError> {
        actix_session::Settings::private(keys)
    }

    /// `express-session`, `tower-sessions` or `actix-session`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Express => "express-session",
            Format::TowerSessions(_) => "tower-sessions",
            Format::ActixSession(_) => "actix-session",
        }
    }

    /// The cookie name the format's settings give; `None` for
    /// express-session, whose name is the config's.
    pub(crate) fn cookie_name(&self) -> Option<&str> {
        match self {
            Format::Express => None,
            Format::TowerSessions(s) => Some(&s.cookie_name),
            Format::ActixSession(s) => Some(&s.cookie_name),
        }
    }

    /// Whether `sid` (a store key without the prefix) has the shape of the
    /// keys this format's HTTP app creates: how keyspace events of a Redis
    /// database that holds other keys too are told apart. Every key for
    /// express-session (its prefix tells them apart).
    pub(crate) fn is_event_key(&self, sid: &[u8]) -> bool {
        match self {
            Format::Express => true,
            Format::TowerSessions(_) => tower_sessions::is_store_key(sid),
            Format::ActixSession(_) => actix_session::is_generated_store_key(sid),
        }
    }
}

/// A new session's parts, from fresh random bytes.
pub(crate) struct NewSession {
    pub(crate) sid: SessionId,
    pub(crate) meta: Meta,
    pub(crate) set_cookie: String,
    pub(crate) ttl_secs: i64,
}

/// Why no new session could be made.
pub(crate) enum NewError {
    /// Fewer random bytes than asked for.
    ShortRandom(usize),
    /// The cookie cannot be written.
    Cookie(CookieSyntaxError),
    /// The template is of another format than the config's (a caller's
    /// mistake: templates come from [`Config::new_meta`]).
    OtherFormat,
}

/// What a touch does in the configured format.
pub(crate) enum TouchPlan {
    /// express-session's: a new `expires`, then `EXPIRE`.
    Express,
    /// Nothing: the format refreshes nothing without a write.
    Nothing,
    /// tower-sessions with `OnInactivity`: the record rewritten with a new
    /// expiry date (the date lives in the record), compare-and-set.
    Rewrite,
    /// actix-session with `OnEveryRequest`: `EXPIRE` with this TTL.
    Expire(u64),
}

/// The record error of a session held in another format than the
/// config's.
fn wrong_format() -> Failure {
    Failure::MalformedRecord(RecordError::Format(FormatRecordError::OtherFormat))
}

impl Config {
    /// The session format.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The store key of session `sid`, if `sid` may be one ([R15]): usable
    /// ([`Config::usable_sid`]) and of the format's shape (a tower-sessions
    /// id, an actix-session key of at most 4064 bytes).
    ///
    /// [R15]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r15
    pub(crate) fn store_key(&self, sid: &[u8]) -> Option<StoreKey> {
        if !self.usable_sid(sid) {
            return None;
        }
        let shaped = match &self.format {
            Format::Express => true,
            Format::TowerSessions(_) => tower_sessions::is_store_key(sid),
            Format::ActixSession(_) => !sid.is_empty() && sid.len() <= actix_session::MAX_KEY_LEN,
        };
        shaped.then(|| StoreKey::new(self.key_prefix.as_bytes(), sid))
    }

    /// The session id the `Cookie` lines name in a format other than
    /// express-session's, resolved by the format's own rules, written into
    /// `buf` (from 0).
    pub(crate) fn resolve_format<'a, I>(
        &self,
        lines: I,
        buf: &mut ValueBuf,
    ) -> Result<(), HandshakeError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        buf.clear();
        match &self.format {
            // The express path is the zero-copy scan; it never comes here.
            Format::Express => return Err(HandshakeError::NoCookieHeader),
            Format::TowerSessions(s) => {
                let id = tower_sessions::resolve(s, lines, self.limits)?;
                // The id's 22 characters, without a `String` on the way.
                let mut text = [0u8; 22];
                // 16 bytes are always 22 characters: this cannot fail.
                let Ok(22) = URL_SAFE_NO_PAD.encode_slice(id.as_i128().to_le_bytes(), &mut text)
                else {
                    return Err(HandshakeError::InvalidId {
                        cookie_name: s.cookie_name.clone(),
                    });
                };
                buf.extend_from_slice(&text);
            }
            Format::ActixSession(s) => {
                let key = actix_session::resolve(s, lines, self.limits)?;
                buf.extend_from_slice(key.expose().as_bytes());
            }
        }
        Ok(())
    }

    /// Decodes the record of session `sid` in the configured format.
    pub(crate) fn decode_record(
        &self,
        sid: &str,
        bytes: &[u8],
    ) -> Result<(Meta, Map<String, Value>), RecordError> {
        match &self.format {
            Format::Express => record::decode(bytes).map(|r| (Meta::Express(r.cookie), r.data)),
            Format::TowerSessions(_) => {
                let r = tower_sessions::Record::decode(bytes).map_err(RecordError::Format)?;
                // tower-sessions saves a record under the id it holds: one
                // that holds another id is not this session's.
                if Id::parse(sid) != Some(r.id) {
                    return Err(RecordError::Format(FormatRecordError::NotTowerRecord(
                        "the record's id is not the id of its key",
                    )));
                }
                Ok((
                    Meta::TowerSessions {
                        id: r.id,
                        expiry_date: r.expiry_date,
                    },
                    r.data,
                ))
            }
            Format::ActixSession(_) => {
                let (data, texts) = actix_session::State::decode(bytes)
                    .map_err(RecordError::Format)?
                    .into_parts();
                Ok((Meta::ActixSession(texts), data))
            }
        }
    }

    /// Whether a record with `meta` is no session at `now` although the
    /// store returned it ([R13]): express-session's `cookie.expires` passed
    /// (unless `rolling`, where the store's TTL decides), tower-sessions'
    /// expiry date passed (the store ends it then too); actix-session's
    /// records hold no date: its TTL decides.
    ///
    /// [R13]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r13
    pub(crate) fn meta_expired(&self, meta: &Meta, now: SystemTime) -> bool {
        match meta {
            Meta::Express(cookie) => !self.rolling && cookie.is_expired(millis(now)),
            Meta::TowerSessions { expiry_date, .. } => expiry_date.has_passed(now),
            Meta::ActixSession(_) => false,
        }
    }

    /// Whether a record's own date can end its session
    /// ([`has_expired`](Self::has_expired) can be `true`): express-session
    /// without `rolling`, tower-sessions. Where it cannot (`rolling`, whose
    /// store TTL is the authority; actix-session, whose records hold no
    /// date), a server need not look at its sessions' dates at all.
    pub fn records_can_expire(&self) -> bool {
        match &self.format {
            Format::Express => !self.rolling,
            Format::TowerSessions(_) => true,
            Format::ActixSession(_) => false,
        }
    }

    /// Whether `session` has expired at `now` by what its record says
    /// ([R13]), as a load would find: express-session's `cookie.expires`
    /// (not with `rolling`, where the store's TTL is the authority), or
    /// tower-sessions' expiry date. actix-session's records hold no date:
    /// never. What a server holding sessions for long checks now and then.
    ///
    /// [R13]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r13
    pub fn has_expired(&self, session: &Session, now: SystemTime) -> bool {
        self.meta_expired(session.meta(), now)
    }

    /// Renews what a write renews in the format (tower-sessions' expiry
    /// date, as its save sets it) and returns the store TTL of the write in
    /// seconds (`<= 0`: destroy instead).
    pub(crate) fn prepare_write(
        &self,
        session: &mut Session,
        now: SystemTime,
    ) -> Result<i64, WriteError> {
        match (&self.format, session.meta_mut()) {
            (Format::Express, Meta::Express(cookie)) => Ok(ttl_secs(self, cookie, now)),
            (Format::TowerSessions(s), Meta::TowerSessions { expiry_date, .. }) => {
                *expiry_date = tower_sessions::expiry_date(s.expiry.as_ref(), now);
                Ok(tower_sessions::ttl_secs(expiry_date, now))
            }
            (Format::ActixSession(s), Meta::ActixSession(_)) => {
                Ok(i64::try_from(s.lifecycle.ttl_secs()).unwrap_or(i64::MAX))
            }
            _ => Err(wrong_format().into()),
        }
    }

    /// How many random bytes a new session takes: its id, and the nonce of
    /// a private cookie.
    pub(crate) fn random_len(&self) -> usize {
        match &self.format {
            Format::Express => SID_RANDOM_BYTES,
            Format::TowerSessions(s) => {
                tower_sessions::ID_RANDOM_BYTES
                    + match s.protection {
                        tower_sessions::Protection::Private(_) => NONCE_LEN,
                        _ => 0,
                    }
            }
            Format::ActixSession(s) => {
                actix_session::KEY_RANDOM_BYTES
                    + match s.security {
                        actix_session::ContentSecurity::Private(_) => NONCE_LEN,
                        actix_session::ContentSecurity::Signed(_) => 0,
                    }
            }
        }
    }

    /// The metadata of a session created at `now`, before its id is known.
    pub(crate) fn new_meta(&self, now: SystemTime) -> Meta {
        match &self.format {
            Format::Express => Meta::Express(self.cookie.to_session_cookie(now)),
            Format::TowerSessions(s) => Meta::TowerSessions {
                id: Id::from_i128(0),
                expiry_date: tower_sessions::expiry_date(s.expiry.as_ref(), now),
            },
            Format::ActixSession(_) => Meta::ActixSession(StoredTexts::default()),
        }
    }

    /// A new session from `random` (at least [`Config::random_len`] bytes)
    /// with metadata from `template` ([`Config::new_meta`]), at `now`: its
    /// id, the `Set-Cookie` that gives it to the client and its store TTL.
    pub(crate) fn new_session(
        &self,
        template: &Meta,
        random: &[u8],
        now: SystemTime,
    ) -> Result<NewSession, NewError> {
        let short = || NewError::ShortRandom(random.len());
        let nonce = |at: usize| -> [u8; NONCE_LEN] {
            let mut n = [0u8; NONCE_LEN];
            if let Some(bytes) = random.get(at..at + NONCE_LEN) {
                n.copy_from_slice(bytes);
            }
            n
        };
        if random.len() < self.random_len() {
            return Err(short());
        }
        match (&self.format, template) {
            (Format::TowerSessions(s), Meta::TowerSessions { expiry_date, .. }) => {
                let id = Id::from_random(random).ok_or_else(short)?;
                let set_cookie =
                    tower_sessions::set_cookie(s, &id, nonce(tower_sessions::ID_RANDOM_BYTES), now);
                Ok(NewSession {
                    sid: id.to_session_id(),
                    meta: Meta::TowerSessions {
                        id,
                        expiry_date: *expiry_date,
                    },
                    set_cookie,
                    ttl_secs: tower_sessions::ttl_secs(expiry_date, now),
                })
            }
            (Format::ActixSession(s), meta) => {
                let key = random
                    .get(..actix_session::KEY_RANDOM_BYTES)
                    .and_then(SessionKey::from_random)
                    .ok_or_else(short)?;
                let set_cookie =
                    actix_session::set_cookie(s, &key, nonce(actix_session::KEY_RANDOM_BYTES));
                Ok(NewSession {
                    sid: key.to_session_id(),
                    meta: meta.clone(),
                    set_cookie,
                    ttl_secs: i64::try_from(s.lifecycle.ttl_secs()).unwrap_or(i64::MAX),
                })
            }
            (Format::Express, Meta::Express(cookie)) => {
                let sid = SessionId::new(sid_from_random(random).ok_or_else(short)?);
                let set_cookie = cookie_header(self, &sid, cookie).map_err(NewError::Cookie)?;
                Ok(NewSession {
                    sid,
                    meta: Meta::Express(cookie.clone()),
                    set_cookie,
                    ttl_secs: ttl_secs(self, cookie, now),
                })
            }
            _ => Err(NewError::OtherFormat),
        }
    }

    /// What a touch does in the configured format.
    pub(crate) fn touch_plan(&self) -> TouchPlan {
        match &self.format {
            Format::Express => TouchPlan::Express,
            Format::TowerSessions(s) => match s.expiry {
                Some(Expiry::OnInactivity(_)) => TouchPlan::Rewrite,
                _ => TouchPlan::Nothing,
            },
            Format::ActixSession(s) if s.lifecycle.extends_on_every_request() => {
                TouchPlan::Expire(s.lifecycle.ttl_secs())
            }
            Format::ActixSession(_) => TouchPlan::Nothing,
        }
    }

    /// The `Set-Cookie` header value that removes the session cookie from
    /// the browser (logout), as the format's HTTP app writes it at `now`:
    /// Express's `res.clearCookie` with the cookie's options; the `cookie`
    /// crate's removal (`Max-Age=0` and an `Expires` a year back) with
    /// tower-sessions' `Path` and `Domain`, or with actix-session's flags.
    pub fn removal_cookie(&self, now: SystemTime) -> Result<String, CookieSyntaxError> {
        match &self.format {
            Format::Express => clear_cookie_header(self),
            Format::TowerSessions(s) => Ok(tower_sessions::removal_cookie(s, now)),
            Format::ActixSession(s) => Ok(actix_session::removal_cookie(s, now)),
        }
    }

    /// Whether an HTTP request that leaves its stored session unchanged
    /// refreshes it (a [`Touch`](crate::machines::Touch)): express-session
    /// touches on every request; tower-sessions writes only changed
    /// sessions; actix-session refreshes the TTL only under
    /// `TtlExtensionPolicy::OnEveryRequest`.
    pub fn touches_after_request(&self) -> bool {
        match &self.format {
            Format::Express => true,
            Format::TowerSessions(_) => false,
            Format::ActixSession(s) => s.lifecycle.extends_on_every_request(),
        }
    }

    /// The `Set-Cookie` header the format's HTTP app sends at the end of a
    /// request that `saved` the stored `session` (or left it unchanged), at
    /// `now`; `nonce` is 12 fresh random bytes for a private cookie's seal.
    /// tower-sessions and actix-session send the cookie again after every
    /// save (its `Max-Age` renewed), and actix-session after an unchanged
    /// request too for a persistent session under `OnEveryRequest`.
    /// `None` when the app sends nothing, and for express-session, whose
    /// headers the machines' outcomes carry (`Created`, `Touched`).
    pub fn cookie_after_request(
        &self,
        session: &Session,
        saved: bool,
        nonce: [u8; NONCE_LEN],
        now: SystemTime,
    ) -> Option<String> {
        match (&self.format, session.meta()) {
            (Format::TowerSessions(s), Meta::TowerSessions { id, .. }) if saved => {
                Some(tower_sessions::set_cookie(s, id, nonce, now))
            }
            (Format::ActixSession(s), Meta::ActixSession(_))
                if saved
                    || (s.lifecycle.extends_on_every_request()
                        && s.lifecycle.max_age_secs().is_some()) =>
            {
                let key = SessionKey::new(session.id().expose().to_owned())?;
                Some(actix_session::set_cookie(s, &key, nonce))
            }
            _ => None,
        }
    }
}

impl From<CookieError> for HandshakeError {
    fn from(e: CookieError) -> Self {
        match e {
            CookieError::NoCookieHeader => HandshakeError::NoCookieHeader,
            CookieError::CookieAbsent { cookie_name } => {
                HandshakeError::CookieAbsent { cookie_name }
            }
            CookieError::NotUtf8Header { cookie_name } => {
                HandshakeError::NotUtf8Header { cookie_name }
            }
            CookieError::HeaderTooLarge(e) => HandshakeError::HeaderTooLarge(e),
            CookieError::EmptyValue { cookie_name } => HandshakeError::EmptyValue { cookie_name },
            CookieError::NotSigned { cookie_name } => HandshakeError::NotSigned { cookie_name },
            CookieError::SignatureInvalid { cookie_name } => {
                HandshakeError::SignatureInvalid { cookie_name }
            }
            CookieError::NotSealed { cookie_name } => HandshakeError::NotSealed { cookie_name },
            CookieError::SealInvalid { cookie_name } => HandshakeError::SealInvalid { cookie_name },
            CookieError::InvalidId { cookie_name } => HandshakeError::InvalidId { cookie_name },
            CookieError::KeyTooLong { cookie_name } => HandshakeError::KeyTooLong { cookie_name },
        }
    }
}

/// The error of `Cookie` lines past the byte bound, before they are read.
pub(crate) fn too_large(limit: usize) -> HandshakeError {
    HandshakeError::HeaderTooLarge(LimitExceeded::Bytes { limit })
}
