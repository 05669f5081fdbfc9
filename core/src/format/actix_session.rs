//! actix-session 0.11 (and 0.10: the same bytes) with its Redis store
//! (`RedisSessionStore`), byte for byte.
//!
//! - **Cookie** `id` (default): the session key, private (the default) or
//!   signed with the `cookie` crate ([`ContentSecurity`]). Read as
//!   actix-web 4 reads it: every `Cookie` line, but **one line that is not
//!   UTF-8 and no cookie is read**; names and values trimmed, one pair of
//!   surrounding quotes stripped, percent-decoded; **the first cookie named
//!   `id` wins** (no fallback when it fails) ([`resolve`]). Any verified
//!   key of at most 4064 bytes is accepted; actix-session issues 64
//!   alphanumerics ([`SessionKey::from_random`]).
//! - **Store key**: the session key itself (`cache_keygen` is the identity
//!   by default) ([`store_key`]).
//! - **Record**: a JSON object mapping each key to the JSON text of its
//!   value (`{"user":"{\"id\":7}","n":"1"}`) ([`State`]).
//! - **TTL**: every write is `SET .. EX <ttl>` (`NX` for a new key, `XX` to
//!   update; an update that finds no key saves under a *new* key), with the
//!   lifecycle's TTL in whole seconds; `EXPIRE` on unchanged requests only
//!   with [`TtlExtensionPolicy::OnEveryRequest`] ([`Lifecycle`]).
//! - **Set-Cookie**: `id=<percent-encoded value>; HttpOnly; SameSite=Lax;
//!   Secure; Path=/` plus `Max-Age` for a persistent session
//!   ([`set_cookie`]); the removal keeps the flags ([`removal_cookie`]).
//!
//! ```
//! use session_sockets_core::format::actix_session::{self, ContentSecurity, Settings, State};
//! use session_sockets_core::format::cookie_crate::Keys;
//!
//! let keys = Keys::from_bytes([[7u8; 64]]).unwrap();
//! let settings = Settings::new(ContentSecurity::Private(keys));
//! let key = actix_session::SessionKey::from_random(&[1u8; 96]).unwrap();
//! let header = actix_session::set_cookie(&settings, &key, [0; 12]);
//! let cookie = header.split(';').next().unwrap(); // `id=...`, as a browser sends it back
//! let found = actix_session::resolve(&settings, [cookie.as_bytes()], Default::default()).unwrap();
//! assert_eq!(found, key);
//!
//! let state = State::decode(br#"{"user":"{\"id\":7}","n":"1"}"#).unwrap();
//! assert_eq!(state.data["user"]["id"], 7);
//! assert_eq!(state.encode(), br#"{"user":"{\"id\":7}","n":"1"}"#);
//! ```

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::cookie_crate::{IntoKeys, KeyError, Keys, NONCE_LEN};
use super::header::{self, Found, percent_encode_cookie};
use super::tower_sessions::{rejected, same_site_name};
use super::{CookieError, RecordError, push_removal_dates};
use crate::codec::cookie::Limits;
use crate::codec::cookie_syntax::{CookieSyntaxError, check_domain, check_name, check_path};
use crate::cookie_options::SameSite;
use crate::request::StoreKey;
use crate::session_id::SessionId;

/// actix-session's default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "id";
/// The longest session key actix-session accepts from a cookie.
pub const MAX_KEY_LEN: usize = 4064;
/// The length of the keys actix-session generates.
pub const KEY_LEN: usize = 64;
/// How many random bytes [`SessionKey::from_random`] should be given: 64
/// characters take 64 accepted bytes, and each byte is accepted with
/// probability 62/64, so 96 bytes fall short with probability below
/// 10^-20.
pub const KEY_RANDOM_BYTES: usize = 96;
/// actix-session's default TTL (state and session): one day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);

/// `rand::distr::Alphanumeric`'s characters.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// An actix-session session key: the cookie's content and the store key.
/// `Debug` is redacted ([R16]).
///
/// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// `key` as actix-session's `SessionKey::try_from` takes it: any string
    /// of at most [`MAX_KEY_LEN`] bytes.
    pub fn new(key: String) -> Option<SessionKey> {
        (key.len() <= MAX_KEY_LEN).then_some(SessionKey(key))
    }

    /// A new key of 64 characters of `[A-Za-z0-9]` from `random` (drawn by
    /// the caller from a CSPRNG; give [`KEY_RANDOM_BYTES`]), as
    /// actix-session generates them. Without modulo bias: each byte's low
    /// six bits pick a character when below 62 and the byte is skipped
    /// otherwise (rand's rejection rule), so every character is equally
    /// likely. `None` if the bytes run out first.
    pub fn from_random(random: &[u8]) -> Option<SessionKey> {
        let key: String = random
            .iter()
            .filter_map(|&b| ALPHANUMERIC.get(usize::from(b & 0x3f)))
            .take(KEY_LEN)
            .map(|&c| char::from(c))
            .collect();
        (key.len() == KEY_LEN).then_some(SessionKey(key))
    }

    /// The key. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key as the core's [`SessionId`].
    pub fn to_session_id(&self) -> SessionId {
        SessionId::new(self.0.as_str())
    }
}

/// The store key of session `key`: the key itself (`cache_keygen`'s
/// default).
pub fn store_key(key: &SessionKey) -> StoreKey {
    StoreKey::new(b"", key.0.as_bytes())
}

/// Whether `key` has the shape of a store key actix-session generated (64
/// characters of `[A-Za-z0-9]`): how keyspace events for keys without a
/// prefix are told apart from other keys in the same Redis database.
/// actix-session accepts longer or other verified keys from a cookie, but
/// only ever creates these.
pub fn is_generated_store_key(key: &[u8]) -> bool {
    key.len() == KEY_LEN && key.iter().all(u8::is_ascii_alphanumeric)
}

/// How the cookie carries the session key (`CookieContentSecurity`).
#[derive(Clone, Debug)]
pub enum ContentSecurity {
    /// The `cookie` crate's private value (actix-session's default).
    Private(Keys),
    /// The `cookie` crate's signed value.
    Signed(Keys),
}

/// When the TTL is refreshed (`TtlExtensionPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlExtensionPolicy {
    /// On every request with a session, changed or not (an `EXPIRE`; a
    /// persistent session's cookie is re-sent too).
    OnEveryRequest,
    /// Only when the state changes (actix-session's default).
    OnStateChanges,
}

/// The session's lifecycle (`SessionLifecycle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// A cookie without `Max-Age`; the state lives `state_ttl` in the store
    /// (the default: one day, extended on state changes).
    BrowserSession {
        /// The store TTL.
        state_ttl: Duration,
        /// When it is refreshed.
        extension: TtlExtensionPolicy,
    },
    /// A cookie with `Max-Age = session_ttl`, and the same store TTL.
    PersistentSession {
        /// The cookie's `Max-Age` and the store TTL.
        session_ttl: Duration,
        /// When they are refreshed.
        extension: TtlExtensionPolicy,
    },
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::BrowserSession {
            state_ttl: DEFAULT_TTL,
            extension: TtlExtensionPolicy::OnStateChanges,
        }
    }
}

impl Lifecycle {
    /// The store TTL of every write, in whole seconds (`whole_seconds()`).
    pub fn ttl_secs(&self) -> u64 {
        match self {
            Lifecycle::BrowserSession { state_ttl: t, .. }
            | Lifecycle::PersistentSession { session_ttl: t, .. } => t.as_secs(),
        }
    }

    /// The cookie's `Max-Age`, for a persistent session.
    pub fn max_age_secs(&self) -> Option<u64> {
        match self {
            Lifecycle::BrowserSession { .. } => None,
            Lifecycle::PersistentSession { session_ttl, .. } => Some(session_ttl.as_secs()),
        }
    }

    /// Whether a request that leaves the state unchanged refreshes the TTL
    /// (`EXPIRE <key> <ttl>`), and, for a persistent session, re-sends the
    /// cookie.
    pub fn extends_on_every_request(&self) -> bool {
        match self {
            Lifecycle::BrowserSession { extension, .. }
            | Lifecycle::PersistentSession { extension, .. } => {
                *extension == TtlExtensionPolicy::OnEveryRequest
            }
        }
    }
}

/// An actix-session app's session settings (`SessionMiddleware::builder`'s
/// options). [`Settings::new`] has actix-session's defaults: cookie `id`,
/// `HttpOnly`, `Secure`, `SameSite=Lax`, `Path=/`, no domain, a browser
/// session of one day.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `cookie_name`.
    pub cookie_name: String,
    /// `cookie_content_security` and the key.
    pub security: ContentSecurity,
    /// `cookie_http_only`.
    pub http_only: bool,
    /// `cookie_secure`.
    pub secure: bool,
    /// `cookie_same_site`.
    pub same_site: SameSite,
    /// `cookie_path`.
    pub path: String,
    /// `cookie_domain`.
    pub domain: Option<String>,
    /// `session_lifecycle`.
    pub lifecycle: Lifecycle,
}

impl Settings {
    /// actix-session's defaults with these keys.
    pub fn new(security: ContentSecurity) -> Settings {
        Settings {
            cookie_name: DEFAULT_COOKIE_NAME.into(),
            security,
            http_only: true,
            secure: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            domain: None,
            lifecycle: Lifecycle::default(),
        }
    }

    /// Checks that the name, path and domain can be written into a
    /// `Set-Cookie` header ([R3]) and that the TTL is at least a second
    /// (Redis refuses `EX 0`, so the app could not save).
    ///
    /// [R3]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r3
    pub fn check(&self) -> Result<(), SettingsError> {
        check_name(self.cookie_name.as_bytes()).map_err(SettingsError::Cookie)?;
        check_path(&self.path).map_err(SettingsError::Cookie)?;
        if let Some(domain) = &self.domain {
            check_domain(domain).map_err(SettingsError::Cookie)?;
        }
        if self.lifecycle.ttl_secs() == 0 {
            return Err(SettingsError::TtlUnderOneSecond);
        }
        Ok(())
    }
}

/// Which of the two the cookie is: `actix_session::config::CookieContentSecurity`,
/// for [`Settings::cookie_content_security`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieContentSecurity {
    /// The `cookie` crate's private value (actix-session's default).
    Private,
    /// The `cookie` crate's signed value.
    Signed,
}

/// Builders named after `SessionMiddlewareBuilder`'s, so that an
/// actix-session app's settings read the same on both sides:
///
/// ```
/// use std::time::Duration;
/// use session_sockets_core::Format;
/// use session_sockets_core::format::actix_session::{CookieContentSecurity, Lifecycle, TtlExtensionPolicy};
///
/// // SessionMiddleware::builder(store, key)
/// //     .cookie_content_security(CookieContentSecurity::Signed)
/// //     .session_lifecycle(PersistentSession::default().session_ttl(..))
/// let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// let settings = Format::actix_session(key)?
///     .cookie_content_security(CookieContentSecurity::Signed)
///     .session_lifecycle(Lifecycle::PersistentSession {
///         session_ttl: Duration::from_secs(7 * 86_400),
///         extension: TtlExtensionPolicy::OnStateChanges,
///     });
/// assert_eq!(settings.cookie_name, "id");
/// # Ok::<(), session_sockets_core::format::cookie_crate::KeyError>(())
/// ```
impl Settings {
    /// actix-session's defaults with a private cookie (its default) and
    /// these keys: the standard base64 of the app's 64-byte `cookie::Key`,
    /// or a list to rotate (see [`IntoKeys`]).
    pub fn private(keys: impl IntoKeys) -> Result<Settings, KeyError> {
        Ok(Settings::new(ContentSecurity::Private(keys.into_keys()?)))
    }

    /// actix-session's defaults with a signed cookie and these keys.
    pub fn signed(keys: impl IntoKeys) -> Result<Settings, KeyError> {
        Ok(Settings::new(ContentSecurity::Signed(keys.into_keys()?)))
    }

    /// `cookie_content_security`: private or signed, with the same keys.
    pub fn cookie_content_security(mut self, security: CookieContentSecurity) -> Settings {
        let keys = match self.security {
            ContentSecurity::Private(k) | ContentSecurity::Signed(k) => k,
        };
        self.security = match security {
            CookieContentSecurity::Private => ContentSecurity::Private(keys),
            CookieContentSecurity::Signed => ContentSecurity::Signed(keys),
        };
        self
    }

    /// `cookie_name` (default `id`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Settings {
        self.cookie_name = name.into();
        self
    }

    /// `session_lifecycle` (default: a browser session, one day in the
    /// store, extended on state changes).
    pub fn session_lifecycle(mut self, lifecycle: Lifecycle) -> Settings {
        self.lifecycle = lifecycle;
        self
    }

    /// `cookie_secure` (default `true`).
    pub fn cookie_secure(mut self, secure: bool) -> Settings {
        self.secure = secure;
        self
    }

    /// `cookie_http_only` (default `true`).
    pub fn cookie_http_only(mut self, http_only: bool) -> Settings {
        self.http_only = http_only;
        self
    }

    /// `cookie_same_site` (default `Lax`).
    pub fn cookie_same_site(mut self, same_site: SameSite) -> Settings {
        self.same_site = same_site;
        self
    }

    /// `cookie_path` (default `/`).
    pub fn cookie_path(mut self, path: impl Into<String>) -> Settings {
        self.path = path.into();
        self
    }

    /// `cookie_domain` (default none).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Settings {
        self.domain = Some(domain.into());
        self
    }
}

/// Settings [`Settings::check`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingsError {
    /// The name, path or domain cannot be written into `Set-Cookie`.
    Cookie(CookieSyntaxError),
    /// The TTL is under one second.
    TtlUnderOneSecond,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsError::Cookie(e) => write!(f, "{e}: use the HTTP app's cookie settings"),
            SettingsError::TtlUnderOneSecond => f.write_str(
                "the session TTL is under one second: Redis refuses `EX 0`; use the HTTP app's \
                 state_ttl / session_ttl (default one day)",
            ),
        }
    }
}

impl std::error::Error for SettingsError {}

/// The session key a request's `Cookie` header lines name for an
/// actix-session app with `settings`, found and checked exactly as
/// actix-session does, with no store lookup: the first cookie named
/// `settings.cookie_name`, opened or verified with any of the keys, at most
/// [`MAX_KEY_LEN`] bytes.
pub fn resolve<'a, I>(
    settings: &Settings,
    lines: I,
    limits: Limits,
) -> Result<SessionKey, CookieError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let name = || settings.cookie_name.clone();
    let value = match header::find(lines, &settings.cookie_name, header::ACTIX, limits) {
        Err(e) => return Err(CookieError::HeaderTooLarge(e)),
        Ok(Found::NoHeader) => return Err(CookieError::NoCookieHeader),
        Ok(Found::Absent) => {
            return Err(CookieError::CookieAbsent {
                cookie_name: name(),
            });
        }
        Ok(Found::BadLine) => {
            return Err(CookieError::NotUtf8Header {
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
    let key = match &settings.security {
        ContentSecurity::Private(keys) => keys
            .open(&settings.cookie_name, &value)
            .map_err(|e| rejected(e, name()))?,
        ContentSecurity::Signed(keys) => keys
            .verify(&value)
            .map_err(|e| rejected(e, name()))?
            .to_owned(),
    };
    SessionKey::new(key).ok_or(CookieError::KeyTooLong {
        cookie_name: name(),
    })
}

/// The cookie value actix-session writes for `key`, before percent-encoding:
/// its private value sealed with `nonce` (12 random bytes the caller draws),
/// or its signed value (`nonce` unused).
pub fn cookie_value(settings: &Settings, key: &SessionKey, nonce: [u8; NONCE_LEN]) -> String {
    match &settings.security {
        // A key is at most 4064 bytes, below the sealing bound: this cannot
        // fail.
        ContentSecurity::Private(keys) => keys
            .seal(&settings.cookie_name, &key.0, nonce)
            .unwrap_or_default(),
        ContentSecurity::Signed(keys) => keys.sign(&key.0),
    }
}

/// The `Set-Cookie` header actix-session sends for `key`: name and value
/// percent-encoded as cookie 0.16's `encoded()` does (`/` and `=` become
/// `%2F` and `%3D`, `+` stays), then `HttpOnly`, `SameSite`, `Secure`,
/// `Path`, `Domain`, `Max-Age` as set, e.g.
/// `id=<value>; HttpOnly; SameSite=Lax; Secure; Path=/`. A private value
/// changes with every nonce. It holds the key: never log it.
pub fn set_cookie(settings: &Settings, key: &SessionKey, nonce: [u8; NONCE_LEN]) -> String {
    let value = cookie_value(settings, key, nonce);
    let mut out = String::with_capacity(settings.cookie_name.len() + value.len() * 3 / 2 + 64);
    percent_encode_cookie(&settings.cookie_name, &mut out);
    out.push('=');
    percent_encode_cookie(&value, &mut out);
    push_attributes(settings, &mut out);
    if let Some(max_age) = settings.lifecycle.max_age_secs() {
        out.push_str("; Max-Age=");
        out.push_str(&max_age.to_string());
    }
    out
}

/// The `Set-Cookie` header actix-session sends after `purge()` at `now`:
/// the flags of the session cookie, `Max-Age=0` and an `Expires` a year
/// back, e.g. `id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0;
/// Expires=Sun, 07 Dec 2025 05:45:54 GMT`.
pub fn removal_cookie(settings: &Settings, now: SystemTime) -> String {
    let mut out = String::with_capacity(settings.cookie_name.len() + 96);
    out.push_str(&settings.cookie_name);
    out.push('=');
    push_attributes(settings, &mut out);
    push_removal_dates(&mut out, now);
    out
}

/// cookie 0.16's attributes up to `Domain`.
fn push_attributes(settings: &Settings, out: &mut String) {
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
}

/// An actix-session state as its Redis store keeps it: a JSON object whose
/// values are strings holding the JSON text of each value.
///
/// [`data`](Self::data) holds the values parsed; the texts as stored are
/// kept too ([`StoredTexts`]), so that [`encode`](Self::encode) writes an
/// unchanged value back exactly as it was (whatever formatting the app's
/// serializer chose). `Debug` lists the keys only.
#[derive(Clone, PartialEq)]
pub struct State {
    /// The session data, each value parsed from its JSON text, in stored
    /// order.
    pub data: Map<String, Value>,
    texts: StoredTexts,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for State {
    fn default() -> Self {
        State::new(Map::new())
    }
}

/// The JSON texts an actix-session state was stored with, by key: what
/// lets a value that did not change be written back byte for byte. Empty
/// for a state that did not come from the store. `Debug` shows how many
/// there are, never keys or texts.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredTexts(HashMap<String, Box<str>>);

impl std::fmt::Debug for StoredTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredTexts(<{} texts>)", self.0.len())
    }
}

impl StoredTexts {
    /// The text stored for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|t| &**t)
    }

    /// How many texts are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Gives back spare capacity, for a copy kept for long.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// The text of `value` under `key`: the stored one if it still says
    /// the same.
    fn text_of<'s>(&'s self, key: &str, value: &Value) -> std::borrow::Cow<'s, str> {
        if let Some(text) = self.0.get(key)
            && serde_json::from_str::<Value>(text).is_ok_and(|stored| stored == *value)
        {
            return std::borrow::Cow::Borrowed(text);
        }
        std::borrow::Cow::Owned(value.to_string())
    }
}

impl State {
    /// A state holding `data`, not from the store.
    pub fn new(data: Map<String, Value>) -> State {
        State {
            data,
            texts: StoredTexts::default(),
        }
    }

    /// A state of `data` with the texts a stored state had
    /// ([`State::into_parts`]'s inverse).
    pub fn from_parts(data: Map<String, Value>, texts: StoredTexts) -> State {
        State { data, texts }
    }

    /// The data and the stored texts.
    pub fn into_parts(self) -> (Map<String, Value>, StoredTexts) {
        (self.data, self.texts)
    }

    /// Decodes a stored state as actix-session's Redis store does
    /// (`serde_json::from_str::<HashMap<String, String>>`; a repeated key
    /// takes the later value), then parses each text. A value whose text is
    /// not JSON is refused: actix-session never writes one. (actix-session
    /// itself loads an undecodable state as an empty session under the same
    /// key; what to do with one is the caller's decision.)
    pub fn decode(bytes: &[u8]) -> Result<State, RecordError> {
        let texts: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
            RecordError::Json(format!(
                "{:?} at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let mut data = Map::with_capacity(texts.len());
        let mut kept = HashMap::with_capacity(texts.len());
        for (key, text) in texts {
            let Value::String(text) = text else {
                return Err(RecordError::NotActixState("a value is not a string"));
            };
            let value: Value = serde_json::from_str(&text)
                .map_err(|_| RecordError::NotActixState("a value's string is not a JSON text"))?;
            data.insert(key.clone(), value);
            kept.insert(key, text.into_boxed_str());
        }
        Ok(State {
            data,
            texts: StoredTexts(kept),
        })
    }

    /// The state as actix-session stores it: each value of
    /// [`data`](Self::data) as its JSON text (the stored text when the value
    /// is unchanged, else `serde_json::to_string`), in `data`'s order.
    pub fn encode(&self) -> Vec<u8> {
        encode_state(&self.data, &self.texts)
    }

    /// The JSON text stored for `key`, if the state came from the store.
    pub fn stored_text(&self, key: &str) -> Option<&str> {
        self.texts.get(key)
    }
}

/// [`State::encode`] of `data` with `texts`, without building a [`State`].
pub fn encode_state(data: &Map<String, Value>, texts: &StoredTexts) -> Vec<u8> {
    let texts: Vec<(&str, std::borrow::Cow<'_, str>)> = data
        .iter()
        .map(|(k, v)| (k.as_str(), texts.text_of(k, v)))
        .collect();
    let mut out = Vec::with_capacity(
        2 + texts
            .iter()
            .map(|(k, t)| k.len() + t.len() + 6)
            .sum::<usize>(),
    );
    out.push(b'{');
    for (i, (k, t)) in texts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(&mut out, k);
        out.push(b':');
        push_json_string(&mut out, t);
    }
    out.push(b'}');
    out
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a `&str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    fn keys() -> Keys {
        Keys::from_bytes([(0u8..64).collect::<Vec<_>>()]).unwrap()
    }

    // actix_session_probe.out.txt, key 0x00..0x3f.
    const PRIVATE: &str = "id=lno7UzUHWDVtzcNkpv6lxcOzZoniQOaDgqqQs1TY2bju68mGuafIVscCbpUmpV%2F9uCtGZc9TAmZ%2FmrlWw1yoBGlFmg2T5cO2KH7NluZnwFdKiIlMi9ic1j7QTd0%3D";
    const PRIVATE_KEY: &str = "rHrHQJDJ5W9F0l0d0GjgT1whBFGetSPXeQ4CFDgEzpBQkFk8DOup06PXuYAODMZ7";
    const SIGNED: &str = "id=qQknImLIPUeHFJX1PSBOlJjRODoQ7jmcd1yn9%2FfF2g0%3Dn2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z7GBuq9yP5RNVtaujzWLRacMn5n";
    const SIGNED_KEY: &str = "n2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z7GBuq9yP5RNVtaujzWLRacMn5n";

    fn private() -> Settings {
        Settings::new(ContentSecurity::Private(keys()))
    }

    fn signed() -> Settings {
        Settings::new(ContentSecurity::Signed(keys()))
    }

    fn res(settings: &Settings, header: &str) -> Result<String, CookieError> {
        resolve(settings, [header.as_bytes()], Limits::default()).map(|k| k.0)
    }

    #[test]
    fn r36_cookies_of_the_real_crate_resolve() {
        assert_eq!(res(&private(), PRIVATE), Ok(PRIVATE_KEY.into()));
        assert_eq!(res(&signed(), SIGNED), Ok(SIGNED_KEY.into()));
        // Sent back decoded, or quoted: the same key.
        let decoded = PRIVATE.replace("%2F", "/").replace("%3D", "=");
        assert_eq!(res(&private(), &decoded), Ok(PRIVATE_KEY.into()));
        let quoted = format!("id=\"{}\"", &decoded[3..]);
        assert_eq!(res(&private(), &quoted), Ok(PRIVATE_KEY.into()));
        assert_eq!(
            store_key(&SessionKey(PRIVATE_KEY.into())).as_bytes(),
            PRIVATE_KEY.as_bytes()
        );
    }

    #[test]
    fn r20_the_first_cookie_wins_even_when_it_fails() {
        assert_eq!(
            res(&private(), &format!("{PRIVATE}; id=garbage")),
            Ok(PRIVATE_KEY.into())
        );
        assert_eq!(
            res(&private(), &format!("id=garbage; {PRIVATE}"))
                .unwrap_err()
                .reason(),
            "not_sealed"
        );
        assert_eq!(
            res(&private(), &format!("bad; {PRIVATE}")),
            Ok(PRIVATE_KEY.into())
        );
    }

    #[test]
    fn r18_a_line_that_is_not_utf8_hides_every_cookie() {
        let lines: [&[u8]; 2] = [PRIVATE.as_bytes(), b"x=\xff"];
        assert_eq!(
            resolve(&private(), lines, Limits::default())
                .unwrap_err()
                .reason(),
            "not_utf8_header"
        );
    }

    #[test]
    fn r36_mode_key_and_name_mismatches_are_refused_before_any_lookup() {
        assert_eq!(res(&signed(), PRIVATE).unwrap_err().reason(), "not_signed");
        let forged = format!(
            "{}{}",
            &SIGNED.replace("%2F", "/").replace("%3D", "=")[..47],
            PRIVATE_KEY
        );
        assert_eq!(
            res(&signed(), &forged).unwrap_err().reason(),
            "signature_invalid"
        );
        assert_eq!(res(&private(), SIGNED).unwrap_err().reason(), "not_sealed");
        let foreign = Settings::new(ContentSecurity::Private(
            Keys::from_bytes([[5u8; 64]]).unwrap(),
        ));
        assert_eq!(res(&foreign, PRIVATE).unwrap_err().reason(), "seal_invalid");
        let renamed = Settings {
            cookie_name: "sid".into(),
            ..private()
        };
        assert_eq!(
            res(&renamed, &format!("s{PRIVATE}")).unwrap_err().reason(),
            "seal_invalid"
        );
        // A signed value moves between names: the format cannot tell (R22).
        let renamed = Settings {
            cookie_name: "sid".into(),
            ..signed()
        };
        assert_eq!(res(&renamed, &format!("s{SIGNED}")), Ok(SIGNED_KEY.into()));
        assert_eq!(res(&private(), "id=").unwrap_err().reason(), "empty_value");
        assert_eq!(
            res(&private(), "other=1").unwrap_err().reason(),
            "cookie_absent"
        );
    }

    #[test]
    fn keys_over_4064_bytes_are_refused() {
        let long = "k".repeat(MAX_KEY_LEN + 1);
        let header = format!("id={}", keys().sign(&long));
        assert_eq!(
            res(&signed(), &header).unwrap_err().reason(),
            "key_too_long"
        );
        let ok = "k".repeat(MAX_KEY_LEN);
        let header = format!("id={}", keys().sign(&ok));
        assert_eq!(res(&signed(), &header), Ok(ok));
    }

    #[test]
    fn r10_new_keys_are_64_alphanumerics_without_bias() {
        let key = SessionKey::from_random(&(0u8..=255).collect::<Vec<_>>()).unwrap();
        assert_eq!(key.0.len(), 64);
        assert!(key.0.bytes().all(|b| b.is_ascii_alphanumeric()));
        // Bytes whose low six bits are 62 or 63 are skipped.
        assert_eq!(SessionKey::from_random(&[62; 200]), None);
        assert_eq!(SessionKey::from_random(&[0; 63]), None);
        assert_eq!(SessionKey::from_random(&[0; 64]).unwrap().0, "A".repeat(64));
        // Over every byte value, each character is hit exactly 4 times.
        let mut counts = [0u32; 62];
        for b in 0..=255u8 {
            if let Some(i) = ALPHANUMERIC.get(usize::from(b & 0x3f)) {
                counts[ALPHANUMERIC.iter().position(|c| c == i).unwrap()] += 1;
            }
        }
        assert!(counts.iter().all(|&c| c == 4));
        assert_eq!(format!("{key:?}"), "SessionKey(<redacted>)");
    }

    #[test]
    fn generated_store_keys_are_told_apart_by_shape() {
        assert!(is_generated_store_key(PRIVATE_KEY.as_bytes()));
        assert!(is_generated_store_key(
            SessionKey::from_random(&[7; KEY_RANDOM_BYTES])
                .unwrap()
                .0
                .as_bytes()
        ));
        assert!(!is_generated_store_key(&PRIVATE_KEY.as_bytes()[1..]));
        assert!(!is_generated_store_key(b"sess:abc"));
    }

    #[test]
    fn set_cookie_and_removal_are_actix_sessions() {
        let key = SessionKey(SIGNED_KEY.into());
        assert_eq!(
            set_cookie(&signed(), &key, [0; 12]),
            format!("{SIGNED}; HttpOnly; SameSite=Lax; Secure; Path=/")
        );
        let persistent = Settings {
            lifecycle: Lifecycle::PersistentSession {
                session_ttl: Duration::from_secs(7200),
                extension: TtlExtensionPolicy::OnEveryRequest,
            },
            domain: Some("example.com".into()),
            ..private()
        };
        let header = set_cookie(&persistent, &key, [1; 12]);
        assert!(
            header.ends_with(
                "; HttpOnly; SameSite=Lax; Secure; Path=/; Domain=example.com; Max-Age=7200"
            ),
            "{header}"
        );
        let sent = header.split(';').next().unwrap();
        assert_eq!(res(&persistent, sent), Ok(SIGNED_KEY.into()));
        let now = UNIX_EPOCH + Duration::from_secs(1_796_622_354);
        assert_eq!(
            removal_cookie(&private(), now),
            "id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Sun, 07 Dec 2025 05:45:54 GMT"
        );
        assert!(persistent.lifecycle.extends_on_every_request());
        assert_eq!(persistent.lifecycle.ttl_secs(), 7200);
        assert_eq!(Lifecycle::default().ttl_secs(), 86_400);
        assert_eq!(Lifecycle::default().max_age_secs(), None);
        assert!(private().check().is_ok());
        let zero = Settings {
            lifecycle: Lifecycle::BrowserSession {
                state_ttl: Duration::from_millis(999),
                extension: TtlExtensionPolicy::OnStateChanges,
            },
            ..private()
        };
        assert_eq!(zero.check(), Err(SettingsError::TtlUnderOneSecond));
    }

    #[test]
    fn states_round_trip_byte_exact_and_keep_stored_texts() {
        let stored = br#"{"user":"{\"id\":7,\"name\":\"al\\\"ice\"}","n":"1"}"#;
        let state = State::decode(stored).unwrap();
        assert_eq!(state.data["user"], json!({"id": 7, "name": "al\"ice"}));
        assert_eq!(state.data["n"], json!(1));
        assert_eq!(state.encode(), stored);
        // Unusual formatting survives when unchanged; a change is rewritten.
        let odd = br#"{"a":"{ \"x\" : 1.50 }","b":"2"}"#;
        let mut state = State::decode(odd).unwrap();
        assert_eq!(state.encode(), odd);
        state.data.insert("b".into(), json!(3));
        state.data.insert("c".into(), json!("new"));
        assert_eq!(
            state.encode(),
            br#"{"a":"{ \"x\" : 1.50 }","b":"3","c":"\"new\""}"#
        );
        state.data.shift_remove("a");
        assert_eq!(state.encode(), br#"{"b":"3","c":"\"new\""}"#);
        assert_eq!(State::default().encode(), b"{}");
    }

    #[test]
    fn r18_states_that_are_not_actixs_are_errors() {
        for (bad, reason) in [
            (&b"not json"[..], "json"),
            (b"[]", "json"),
            (br#"{"a":1}"#, "not a string"),
            (br#"{"a":"not json"}"#, "not a JSON text"),
            (b"\xff", "json"),
        ] {
            let e = State::decode(bad).unwrap_err();
            let message = e.to_string().to_lowercase();
            assert!(message.contains(&reason.to_lowercase()), "{e}");
        }
        // A repeated key takes the later value, as a HashMap does.
        let s = State::decode(br#"{"a":"1","a":"2"}"#).unwrap();
        assert_eq!(s.data["a"], json!(2));
        assert_eq!(format!("{s:?}"), r#"State { keys: ["a"], .. }"#);
    }
}
