//! Configuration shared by every machine, built once and shared in an `Arc`.

use std::time::Duration;

use crate::codec::cookie::Limits;
use crate::codec::cookie_syntax::{check_domain, check_max_age, check_name, check_path};
use crate::codec::signature::Key;
use crate::cookie_options::{CookieOptions, SameSite};
use crate::format::Format;
use crate::origin::{AllowedOrigins, OriginPolicy, is_well_formed};

/// Settings shared by every session machine. Build with [`Config::builder`].
///
/// The session [`Format`] is one of them: express-session (the default),
/// tower-sessions or actix-session. Secrets and keys are keyed once here
/// (one pre-keyed HMAC state each) and never printed: `Debug` shows only
/// how many there are.
#[derive(Clone)]
pub struct Config {
    pub(crate) cookie_name: String,
    /// A searcher for `cookie_name`, built once.
    pub(crate) cookie_finder: memchr::memmem::Finder<'static>,
    pub(crate) keys: Vec<Key>,
    pub(crate) accept_unsigned: bool,
    pub(crate) key_prefix: String,
    pub(crate) origin: OriginPolicy,
    pub(crate) store_deadline: Duration,
    pub(crate) limits: Limits,
    pub(crate) max_sid_len: usize,
    pub(crate) default_ttl_secs: u64,
    pub(crate) max_save_attempts: u32,
    pub(crate) cookie: CookieOptions,
    pub(crate) rolling: bool,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) format: Format,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cookie_name", &self.cookie_name)
            .field("secrets", &format_args!("<{} redacted>", self.keys.len()))
            .field("accept_unsigned", &self.accept_unsigned)
            .field("key_prefix", &self.key_prefix)
            .field("origin", &self.origin)
            .field("store_deadline", &self.store_deadline)
            .field("limits", &self.limits)
            .field("max_sid_len", &self.max_sid_len)
            .field("default_ttl_secs", &self.default_ttl_secs)
            .field("max_save_attempts", &self.max_save_attempts)
            .field("cookie", &self.cookie)
            .field("rolling", &self.rolling)
            .field("keep_alive", &self.keep_alive)
            .field("format", &self.format)
            .finish()
    }
}

impl Config {
    /// A builder with express-session's defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The session cookie's name (default `connect.sid`; the format's
    /// settings name it for tower-sessions and actix-session, `id` by
    /// default).
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The store key prefix (default `sess:`, connect-redis's; none for
    /// tower-sessions and actix-session, whose keys are bare ids).
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Whether ids without the `s:` signature prefix are accepted.
    pub fn accepts_unsigned(&self) -> bool {
        self.accept_unsigned
    }

    /// The `Origin` policy.
    pub fn origin_policy(&self) -> &OriginPolicy {
        &self.origin
    }

    /// How long a machine waits for the store before failing closed.
    pub fn store_deadline(&self) -> Duration {
        self.store_deadline
    }

    /// Bounds on `Cookie` header parsing.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The longest session id (in bytes) used as a store key.
    pub fn max_sid_len(&self) -> usize {
        self.max_sid_len
    }

    /// The pre-keyed secrets; the first signs, all verify.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The store time to live of a record without `cookie.expires`
    /// (connect-redis's `ttl`, default 86400 s).
    pub fn default_ttl(&self) -> Duration {
        Duration::from_secs(self.default_ttl_secs)
    }

    /// The most compare-and-set attempts a save makes before it gives up
    /// with a conflict (default: no bound but the store deadline).
    pub fn max_save_attempts(&self) -> u32 {
        self.max_save_attempts
    }

    /// The cookie settings new sessions get (express-session's `cookie`
    /// option).
    pub fn cookie(&self) -> &CookieOptions {
        &self.cookie
    }

    /// Whether a touch re-sends the `Set-Cookie` header (express-session's
    /// `rolling` option).
    pub fn rolling(&self) -> bool {
        self.rolling
    }

    /// How often a session with connected sockets has its store TTL
    /// refreshed (a touch), so that socket-only activity keeps it alive as
    /// HTTP requests do; `None`: never.
    pub fn keep_alive(&self) -> Option<Duration> {
        self.keep_alive
    }

    /// Whether `sid` may be used as a store key ([R15]): at most
    /// [`Self::max_sid_len`] bytes and no ASCII control character. Every
    /// machine checks it before it sends a request for the id.
    ///
    /// [R15]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r15
    pub fn usable_sid(&self, sid: &[u8]) -> bool {
        // Every byte is looked at, without an early exit, so the loop
        // vectorizes; ids are short.
        let control = sid
            .iter()
            .fold(false, |seen, &b| seen | (b < 0x20) | (b == 0x7f));
        sid.len() <= self.max_sid_len && !control
    }

    /// express-session's cookie value for `sid` (`s:` + sid + `.` +
    /// signature), signed with the first secret. Not yet percent-encoded.
    /// (With another [`Format`] there is no secret, and it is `s:` alone.)
    pub fn sign(&self, sid: &str) -> String {
        let mut out = String::with_capacity(2 + sid.len() + 44);
        out.push_str("s:");
        // The first key always exists: `build` refuses an empty list. Every
        // byte pushed is from `sid` or base64, so the result is UTF-8.
        if let Some(key) = self.keys.first() {
            out.push_str(&String::from_utf8_lossy(&key.sign(sid.as_bytes())));
        }
        out
    }
}

/// The longest store deadline or default TTL `build` accepts: 100 years.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Builder for [`Config`]. `Debug` never prints the secrets.
#[derive(Clone)]
pub struct ConfigBuilder {
    cookie_name: String,
    secrets: Vec<Vec<u8>>,
    accept_unsigned: bool,
    key_prefix: String,
    origin: OriginPolicy,
    store_deadline: Duration,
    limits: Limits,
    max_sid_len: usize,
    default_ttl: Duration,
    max_save_attempts: u32,
    cookie: CookieOptions,
    rolling: bool,
    keep_alive: Option<Duration>,
    format: Format,
    /// The express-session settings that were set, by name: refused with
    /// another format, which would ignore them.
    express_only: Vec<&'static str>,
}

impl std::fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("cookie_name", &self.cookie_name)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("accept_unsigned", &self.accept_unsigned)
            .field("key_prefix", &self.key_prefix)
            .field("origin", &self.origin)
            .field("cookie", &self.cookie)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            cookie_name: "connect.sid".into(),
            secrets: Vec::new(),
            accept_unsigned: false,
            key_prefix: "sess:".into(),
            origin: OriginPolicy::default(),
            store_deadline: Duration::from_secs(3),
            limits: Limits::default(),
            max_sid_len: 256,
            default_ttl: Duration::from_secs(86_400),
            // Conflicts are retried until the store deadline.
            max_save_attempts: u32::MAX,
            cookie: CookieOptions::default(),
            rolling: false,
            keep_alive: Some(Duration::from_secs(60)),
            format: Format::Express,
            express_only: Vec::new(),
        }
    }
}

impl ConfigBuilder {
    /// The session format: express-session (the default), tower-sessions
    /// or actix-session, with that framework's settings (its cookie name,
    /// keys and expiry). With a format other than express-session, the
    /// express-session settings of this builder (`cookie_name`, `secrets`,
    /// `accept_unsigned`, `key_prefix`, `cookie`, `rolling`, `default_ttl`)
    /// are refused at build: the format's settings hold them.
    ///
    /// ```
    /// use session_sockets_core::{Config, Format};
    ///
    /// let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
    /// let config = Config::builder()
    ///     .format(Format::tower_sessions().with_signed(key)?)
    ///     .build()?;
    /// # let _ = config;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn format(mut self, format: impl Into<Format>) -> Self {
        self.format = format.into();
        self
    }

    /// The session cookie's name, as in express-session's `name` option.
    /// Default `connect.sid`. (express-session only.)
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self.express_only.push("cookie_name");
        self
    }

    /// The secrets, as in express-session's `secret` option: the first signs
    /// new cookies, every one verifies (rotation, [R21]). Required.
    ///
    /// [R21]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r21
    pub fn secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.secrets = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
        self.express_only.push("secrets");
        self
    }

    /// One secret; shorthand for `secrets([secret])`.
    pub fn secret(self, secret: impl AsRef<[u8]>) -> Self {
        self.secrets([secret])
    }

    /// Accept cookie values without the `s:` signature prefix as raw session
    /// ids. Off by default, which is express-session's behaviour; on
    /// reproduces session.socket.io's looser lookup. Anyone who can set a
    /// cookie can then pick a session id ([R12]): use only with a store whose
    /// ids are unguessable and never issued unsigned.
    ///
    /// [R12]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r12
    pub fn accept_unsigned(mut self, yes: bool) -> Self {
        self.accept_unsigned = yes;
        self.express_only.push("accept_unsigned");
        self
    }

    /// The store key prefix, as connect-redis's `prefix`. Default `sess:`.
    /// (express-session only: tower-sessions' and actix-session's Redis
    /// stores use bare ids.)
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self.express_only.push("key_prefix");
        self
    }

    /// Allow exactly these origins (`scheme://host[:port]`, as browsers send
    /// them). Replaces the default same-host check.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.origin.allowed = AllowedOrigins::List(origins.into_iter().map(Into::into).collect());
        self
    }

    /// The origin browsers load your site from, e.g. `https://chat.example`,
    /// when it is served behind a proxy or TLS terminator: the same-host
    /// `Origin` check (the default) then knows the site's scheme and
    /// compares it too, and accepts this origin whatever `Host` the proxy
    /// forwards ([R28]). Checked at build (an `http` or `https` origin).
    ///
    /// [R28]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r28
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin.public_origin = Some(origin.into());
        self
    }

    /// Allow any well-formed origin. This turns off the defence against
    /// cross-site WebSocket hijacking ([R5]); prefer [`Self::allowed_origins`].
    ///
    /// [R5]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r5
    pub fn allow_any_origin(mut self) -> Self {
        self.origin.allowed = AllowedOrigins::Any;
        self
    }

    /// Whether a request without an `Origin` header passes (default `true`:
    /// non-browser clients and same-origin polling send none).
    pub fn allow_missing_origin(mut self, yes: bool) -> Self {
        self.origin.allow_missing = yes;
        self
    }

    /// Whether `Origin: null` passes (default `false`, [R7]).
    ///
    /// [R7]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r7
    pub fn allow_null_origin(mut self, yes: bool) -> Self {
        self.origin.allow_null = yes;
        self
    }

    /// The whole origin policy at once.
    pub fn origin_policy(mut self, policy: OriginPolicy) -> Self {
        self.origin = policy;
        self
    }

    /// How long to wait for the store on each operation before failing
    /// closed with a timeout ([R23]). Default 3 s.
    ///
    /// [R23]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r23
    pub fn store_deadline(mut self, deadline: Duration) -> Self {
        self.store_deadline = deadline;
        self
    }

    /// Bounds on `Cookie` header parsing ([R4]).
    ///
    /// [R4]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r4
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The longest session id, in bytes, that is used as a store key ([R15]).
    /// Default 256; express-session's ids are 32.
    ///
    /// [R15]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r15
    pub fn max_sid_len(mut self, len: usize) -> Self {
        self.max_sid_len = len;
        self
    }

    /// The store time to live, in whole seconds, of a record whose cookie has
    /// no `expires` (a browser-session cookie): connect-redis's `ttl` option.
    /// Default 86400 s (one day). Sub-second parts are dropped.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self.express_only.push("default_ttl");
        self
    }

    /// At most this many compare-and-set attempts per save when other
    /// writers keep changing the record, before it fails with
    /// [`WriteError::Conflict`](crate::WriteError::Conflict). By default
    /// there is no such count: a save retries (with a random backoff) until
    /// the store deadline, counted from its start, has passed.
    pub fn max_save_attempts(mut self, attempts: u32) -> Self {
        self.max_save_attempts = attempts;
        self
    }

    /// The cookie settings of new sessions, as express-session's `cookie`
    /// option (default: `Path=/; HttpOnly`, no `Max-Age`, so a
    /// browser-session cookie). Path and domain are checked at build ([R3]).
    ///
    /// [R3]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r3
    pub fn cookie(mut self, cookie: CookieOptions) -> Self {
        self.cookie = cookie;
        self.express_only.push("cookie");
        self
    }

    /// express-session's `rolling` option: every touch re-sends the
    /// `Set-Cookie` header with the refreshed expiry. Default off.
    ///
    /// Set it when the HTTP app is rolling. connect-redis's touch refreshes
    /// only the store's TTL and leaves the stored `cookie.expires` behind
    /// while the browser's cookie keeps being renewed, so with `rolling` the
    /// store's TTL is the authority on expiry (as it is for express-session)
    /// and loads do not refuse a record whose stored `expires` has passed.
    /// Without it, such a record is no session ([R13]).
    ///
    /// [R13]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r13
    pub fn rolling(mut self, yes: bool) -> Self {
        self.rolling = yes;
        self.express_only.push("rolling");
        self
    }

    /// While a session has connected sockets, refresh its store TTL (a
    /// touch) at most once per `interval`, as express-session refreshes it
    /// on every HTTP request it serves, so a user active only on a socket
    /// stays signed in. Default one minute; `None` turns it off.
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// Checks the settings and keys the secrets.
    pub fn build(mut self) -> Result<Config, ConfigError> {
        match &self.format {
            Format::Express => {
                if self.secrets.is_empty() {
                    return Err(ConfigError::NoSecret);
                }
                if self.secrets.iter().any(Vec::is_empty) {
                    return Err(ConfigError::EmptySecret);
                }
            }
            other => {
                if let Some(&setting) = self.express_only.first() {
                    return Err(ConfigError::NotForFormat {
                        setting,
                        format: other.name(),
                    });
                }
                match other {
                    Format::TowerSessions(s) => s
                        .check()
                        .map_err(|e| ConfigError::InvalidFormatSettings(e.to_string()))?,
                    Format::ActixSession(s) => s
                        .check()
                        .map_err(|e| ConfigError::InvalidFormatSettings(e.to_string()))?,
                    Format::Express => {}
                }
                // The format's settings name the cookie; its keys have no
                // prefix.
                self.cookie_name = other.cookie_name().unwrap_or_default().to_owned();
                self.key_prefix = String::new();
            }
        }
        if check_name(self.cookie_name.as_bytes()).is_err() {
            return Err(ConfigError::InvalidCookieName(self.cookie_name));
        }
        if let AllowedOrigins::List(list) = &self.origin.allowed
            && let Some(bad) = list.iter().find(|o| !is_well_formed(o.as_bytes()))
        {
            return Err(ConfigError::InvalidOrigin(bad.clone()));
        }
        if let Some(public) = &self.origin.public_origin
            && !(is_well_formed(public.as_bytes())
                && (public.starts_with("http://") || public.starts_with("https://")))
        {
            return Err(ConfigError::InvalidOrigin(public.clone()));
        }
        if self.store_deadline.is_zero() {
            return Err(ConfigError::ZeroDeadline);
        }
        if self.keep_alive.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroKeepAlive);
        }
        if self.store_deadline > MAX_DURATION
            || self.default_ttl > MAX_DURATION
            || self.keep_alive.is_some_and(|d| d > MAX_DURATION)
        {
            return Err(ConfigError::DurationTooLong);
        }
        if self.limits.max_header_bytes == 0 || self.limits.max_pairs == 0 || self.max_sid_len == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        if self.default_ttl.as_secs() == 0 {
            return Err(ConfigError::ZeroTtl);
        }
        if self.max_save_attempts == 0 {
            return Err(ConfigError::ZeroSaveAttempts);
        }
        if self
            .cookie
            .max_age
            .is_some_and(|d| check_max_age(d).is_err())
        {
            return Err(ConfigError::InvalidMaxAge);
        }
        if check_path(&self.cookie.path).is_err() {
            return Err(ConfigError::InvalidCookiePath(self.cookie.path));
        }
        if let Some(domain) = &self.cookie.domain
            && check_domain(domain).is_err()
        {
            return Err(ConfigError::InvalidCookieDomain(domain.clone()));
        }
        if self.cookie.same_site == Some(SameSite::None) && !self.cookie.secure {
            return Err(ConfigError::SameSiteNoneWithoutSecure);
        }
        Ok(Config {
            cookie_finder: memchr::memmem::Finder::new(self.cookie_name.as_bytes()).into_owned(),
            cookie_name: self.cookie_name,
            keys: self.secrets.iter().map(|s| Key::new(s)).collect(),
            accept_unsigned: self.accept_unsigned,
            key_prefix: self.key_prefix,
            origin: self.origin,
            store_deadline: self.store_deadline,
            limits: self.limits,
            max_sid_len: self.max_sid_len,
            default_ttl_secs: self.default_ttl.as_secs(),
            max_save_attempts: self.max_save_attempts,
            cookie: self.cookie,
            rolling: self.rolling,
            keep_alive: self.keep_alive,
            format: self.format,
        })
    }
}

/// A setting [`ConfigBuilder::build`] refused. The message says what to fix.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No secret was given.
    NoSecret,
    /// A secret is empty.
    EmptySecret,
    /// The cookie name is not an RFC 6265 token.
    InvalidCookieName(String),
    /// An allowed origin is not of the form `scheme://host[:port]`.
    InvalidOrigin(String),
    /// The store deadline is zero.
    ZeroDeadline,
    /// A parse bound or the id length bound is zero.
    ZeroLimit,
    /// The default time to live is under one second.
    ZeroTtl,
    /// The store deadline, the default time to live or the keep-alive
    /// interval is over 100 years.
    DurationTooLong,
    /// `max_save_attempts` is zero.
    ZeroSaveAttempts,
    /// The keep-alive interval is zero.
    ZeroKeepAlive,
    /// The cookie path has a control character, `;` or a non-ASCII byte.
    InvalidCookiePath(String),
    /// The cookie domain is not a host name.
    InvalidCookieDomain(String),
    /// The cookie `max_age` is over 1000 years.
    InvalidMaxAge,
    /// `SameSite=None` without `Secure`: browsers drop such a cookie, so no
    /// one could stay signed in.
    SameSiteNoneWithoutSecure,
    /// An express-session setting (`setting`) was given with another
    /// session format, which would ignore it.
    NotForFormat {
        /// The builder method.
        setting: &'static str,
        /// The format's name.
        format: &'static str,
    },
    /// The format's settings cannot be used (the message says which).
    InvalidFormatSettings(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NoSecret => f.write_str(
                "no secret configured: pass the same secret(s) as the HTTP app's \
                 express-session `secret` option to Config::builder().secrets([..])",
            ),
            ConfigError::EmptySecret => {
                f.write_str("a configured secret is empty: use the HTTP app's non-empty secret")
            }
            ConfigError::InvalidCookieName(n) => write!(
                f,
                "cookie name `{}` is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only); \
                 use the HTTP app's session cookie name, express-session's default is connect.sid",
                n.escape_default()
            ),
            ConfigError::InvalidOrigin(o) => write!(
                f,
                "allowed origin `{}` is not of the form scheme://host[:port] \
                 (lowercase scheme, no path, no trailing slash), e.g. https://app.example",
                o.escape_default()
            ),
            ConfigError::ZeroDeadline => {
                f.write_str("the store deadline is zero: give the store time to answer, e.g. 3 s")
            }
            ConfigError::ZeroLimit => f.write_str(
                "Limits::max_header_bytes, Limits::max_pairs or max_sid_len is zero: every \
                 request would be refused; use the defaults (16384, 256, 256)",
            ),
            ConfigError::DurationTooLong => f.write_str(
                "the store deadline, the default TTL or the keep-alive interval is over 100 years: give the store seconds \
                 to answer (default 3 s) and sessions a TTL like connect-redis's (86400 s)",
            ),
            ConfigError::ZeroTtl => f.write_str(
                "the default TTL is under one second: stores keep records for whole seconds; \
                 use connect-redis's `ttl` (default 86400 s)",
            ),
            ConfigError::ZeroKeepAlive => f.write_str(
                "the keep-alive interval is zero: a session with sockets would be touched \
                 without pause; use an interval (default one minute), or None to turn it off",
            ),
            ConfigError::ZeroSaveAttempts => f.write_str(
                "max_save_attempts is zero: a save needs at least one attempt; the default is 8",
            ),
            ConfigError::InvalidCookiePath(p) => write!(
                f,
                "cookie path `{}` is not a valid cookie path (printable ASCII except `;` and `<`, \
                 as npm cookie's serialize checks); use the HTTP app's cookie.path, e.g. /",
                p.escape_default()
            ),
            ConfigError::InvalidMaxAge => f.write_str(
                "the cookie max_age is over 1000 years: use the HTTP app's cookie.maxAge \
                 (milliseconds there) as a Duration, e.g. Some(Duration::from_secs(86_400)) \
                 for one day",
            ),
            ConfigError::InvalidCookieDomain(d) => write!(
                f,
                "cookie domain `{}` is not a host name (letters, digits, `-` and `.`, \
                 as npm cookie's serialize checks); use the HTTP app's cookie.domain, e.g. example.com",
                d.escape_default()
            ),
            ConfigError::NotForFormat { setting, format } => write!(
                f,
                "`{setting}` is an express-session setting, and the format is {format}: set the \
                 cookie, keys and expiry in the format's settings (Format::tower_sessions() or \
                 Format::actix_session(key)) instead"
            ),
            ConfigError::InvalidFormatSettings(e) => {
                write!(f, "the session format's settings cannot be used: {e}")
            }
            ConfigError::SameSiteNoneWithoutSecure => f.write_str(
                "the cookie has SameSite=None but not Secure: browsers drop such a cookie, so \
                 no login would stick; set CookieOptions { secure: true, .. } (and serve over \
                 HTTPS), or use SameSite::Lax",
            ),
        }
    }
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_express_sessions() {
        let c = Config::builder().secret("s").build().unwrap();
        assert_eq!(c.cookie_name(), "connect.sid");
        assert_eq!(c.key_prefix(), "sess:");
        assert!(!c.accepts_unsigned());
        assert_eq!(c.origin_policy(), &OriginPolicy::default());
    }

    #[test]
    fn build_refuses_bad_settings_with_a_message() {
        let e = Config::builder().build().unwrap_err();
        assert_eq!(e, ConfigError::NoSecret);
        assert!(e.to_string().contains("secret"));
        assert_eq!(
            Config::builder().secrets(["a", ""]).build().unwrap_err(),
            ConfigError::EmptySecret
        );
        assert!(matches!(
            Config::builder().secret("s").cookie_name("a b").build(),
            Err(ConfigError::InvalidCookieName(_))
        ));
        assert!(matches!(
            Config::builder().secret("s").cookie_name("a=b").build(),
            Err(ConfigError::InvalidCookieName(_))
        ));
        assert!(matches!(
            Config::builder()
                .secret("s")
                .allowed_origins(["https://a.example/"])
                .build(),
            Err(ConfigError::InvalidOrigin(_))
        ));
        assert_eq!(
            Config::builder()
                .secret("s")
                .store_deadline(Duration::ZERO)
                .build()
                .unwrap_err(),
            ConfigError::ZeroDeadline
        );
    }

    #[test]
    fn durations_past_a_century_are_refused_not_overflowed() {
        let far = Duration::from_secs(u64::MAX);
        assert_eq!(
            Config::builder()
                .secret("s")
                .store_deadline(far)
                .build()
                .unwrap_err(),
            ConfigError::DurationTooLong
        );
        assert_eq!(
            Config::builder()
                .secret("s")
                .default_ttl(far)
                .build()
                .unwrap_err(),
            ConfigError::DurationTooLong
        );
    }

    #[test]
    fn r16_debug_never_prints_secrets() {
        let c = Config::builder()
            .secrets(["hunter2-secret", "old-secret"])
            .build()
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("old-secret"), "{dbg}");
        assert!(dbg.contains("<2 redacted>"), "{dbg}");
        let b = format!("{:?}", Config::builder().secret("hunter2-secret"));
        assert!(!b.contains("hunter2"), "{b}");
        // Not as bytes either (`Vec<u8>`'s Debug prints numbers).
        assert!(!b.contains("104, 117"), "{b}");
        assert!(b.contains("<1 redacted>"), "{b}");
    }
}
