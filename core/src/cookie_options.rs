//! The cookie settings of new sessions: express-session's `cookie` option.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::codec::record::SessionCookie;
use crate::time::millis;

/// The `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=Lax`: sent on top-level navigations from other sites.
    Lax,
    /// `SameSite=Strict`: never sent from other sites.
    Strict,
    /// `SameSite=None`: always sent (browsers require `Secure` with it).
    None,
}

impl SameSite {
    /// The value express-session stores in the record (`"lax"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "lax",
            SameSite::Strict => "strict",
            SameSite::None => "none",
        }
    }
}

/// The cookie settings of new sessions: express-session's `cookie` option.
///
/// The defaults are express-session's: no `max_age` (a browser-session
/// cookie, stored with `expires: null`), not `Secure`, `HttpOnly`, path `/`,
/// no domain, no `SameSite`. Set them as the HTTP app sets them, so that a
/// session created from a socket gets the same cookie an HTTP route would
/// give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieOptions {
    /// `cookie.maxAge`: the cookie and the record expire this long after
    /// creation (or after each touch). `None`: a browser-session cookie.
    pub max_age: Option<Duration>,
    /// `cookie.secure`: send the cookie over HTTPS only ([R14]).
    ///
    /// [R14]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r14
    pub secure: bool,
    /// `cookie.httpOnly`: hide the cookie from page scripts (default `true`).
    pub http_only: bool,
    /// `cookie.path` (default `/`): printable ASCII except `;` and `<`.
    pub path: String,
    /// `cookie.domain`: a host name such as `example.com`.
    pub domain: Option<String>,
    /// `cookie.sameSite`.
    pub same_site: Option<SameSite>,
}

impl Default for CookieOptions {
    fn default() -> Self {
        CookieOptions {
            max_age: None,
            secure: false,
            http_only: true,
            path: "/".into(),
            domain: None,
            same_site: None,
        }
    }
}

impl CookieOptions {
    /// The `cookie` object express-session gives a session created at `now`:
    /// `originalMaxAge` and `expires` from `max_age`, then the flags.
    pub fn to_session_cookie(&self, now: SystemTime) -> SessionCookie {
        let max_age_ms = self
            .max_age
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut cookie = SessionCookie::new(max_age_ms, millis(now));
        if self.secure {
            cookie.set_field("secure", Value::Bool(true));
        }
        if !self.http_only {
            cookie.set_field("httpOnly", Value::Bool(false));
        }
        if self.path != "/" {
            cookie.set_field("path", Value::String(self.path.clone()));
        }
        if let Some(domain) = &self.domain {
            cookie.set_field("domain", Value::String(domain.clone()));
        }
        if let Some(same_site) = self.same_site {
            cookie.set_field("sameSite", Value::String(same_site.as_str().into()));
        }
        cookie
    }
}
